"""The 11 benefit types the map offers without an application (DOMAIN.md §1).

Amounts and thresholds come from the dated parameters (familymap/parameters/*.yaml); the
figures that are our simplification are marked `our_model` there. Periods: one-off payments
carry the date of the event as both start and end; monthly payments run from the first day of
the evaluation month (or the event, if later) to their natural end or the end of the
assignment horizon (`assignment_months`), whichever comes first.
"""

from __future__ import annotations

import numpy as np

from familymap.engine.context import CHILD, DEPENDANT, JOB_LOST, Context
from familymap.engine.dates import NEVER, add_months_days
from familymap.rules.base import (
    ALIVE,
    BELOW_PENSION_AGE,
    BENEFIT,
    BOOL,
    DATE,
    EMPLOYMENT_LABELS,
    FAMILY,
    HAS_CARER,
    HAS_INCOME,
    PCT,
    PERSON,
    TIYN,
    Award,
    RowIndex,
    Rows,
    Rule,
    Verdict,
    condition,
    contributions_condition,
    full,
)

SOCIAL_CODE = "Social Code of the Republic of Kazakhstan of 20 April 2023 No. 224-VII"


def _capped_share(income: np.ndarray, rate_bp: int, cap: int) -> np.ndarray:
    """min(income × rate, cap) in integer tiyn (rate in basis points, rounded down)."""
    return np.minimum(income.astype(np.int64) * rate_bp // 10_000, cap)


def _horizon(
    ctx: Context, rows: RowIndex, start: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    begin = (
        full(rows, ctx.month_start_day) if start is None else np.maximum(start, ctx.month_start_day)
    )
    return begin.astype(np.int32), full(rows, ctx.horizon_end_day)


class LossOfWorkingCapacity(Rule):
    """A monthly social payment, from the State Social Insurance Fund, to an insured person who
    has lost at least 30% of their ability to work and has not reached pension age. It replaces
    a share of the insured income in proportion to the degree of the loss."""

    code = "LOSS_OF_WORKING_CAPACITY"
    title = "Social payment for loss of working capacity"
    kind, unit, version = BENEFIT, PERSON, "2025.1"
    reference = f"{SOCIAL_CODE}: social payments from the State Social Insurance Fund, loss of working capacity"

    @condition("capacity_loss", "Degree of loss of working capacity", op=">=", fmt=PCT)
    def capacity_loss(ctx: Context, rows: Rows) -> Verdict:
        pct = ctx.person.capacity_loss_pct[rows]
        minimum = ctx.p.int("loss_of_working_capacity.min_loss_pct")
        return pct, minimum, pct >= minimum

    contributions = contributions_condition("loss_of_working_capacity.min_contribution_months")
    has_income = HAS_INCOME
    below_pension_age = BELOW_PENSION_AGE
    alive = ALIVE

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        p = ctx.person
        income, pct = p.monthly_income[rows], p.capacity_loss_pct[rows].astype(np.int64)
        rate = ctx.p.bp("loss_of_working_capacity.replacement_rate")
        amount = np.minimum(
            income * pct * rate // (100 * 10_000), ctx.p.mrp("loss_of_working_capacity.max_mrp")
        )
        start, end = _horizon(ctx, rows)
        return Award(amount, start, end, {"insured_income": (TIYN, income), "loss_pct": (PCT, pct)})


class JobLoss(Rule):
    """A social payment, from the State Social Insurance Fund, to a person who lost their job
    recently, registered as unemployed, and paid social contributions for long enough. It is
    45% of the insured income, for 1 to 3 months depending on the months of contributions."""

    code = "JOB_LOSS"
    title = "Social payment for loss of job"
    kind, unit, version = BENEFIT, PERSON, "2025.1"
    reference = f"{SOCIAL_CODE}: social payments from the State Social Insurance Fund, loss of job"

    @condition("job_lost", "Employment status is 'job lost'", op="==", fmt=EMPLOYMENT_LABELS)
    def job_lost(ctx: Context, rows: Rows) -> Verdict:
        status = ctx.person.employment[rows]
        return status, JOB_LOST, status == JOB_LOST

    @condition("job_lost_recently", "The job was lost within the claim window", op=">=", fmt=DATE)
    def job_lost_recently(ctx: Context, rows: Rows) -> Verdict:
        lost = ctx.person.job_lost_on[rows]
        earliest = ctx.day - ctx.p.int("job_loss.claim_window_days")
        return lost, earliest, (lost >= earliest) & (lost <= ctx.day)

    @condition(
        "registered_unemployed",
        "Registered as unemployed with the employment centre",
        op="==",
        fmt=BOOL,
    )
    def registered(ctx: Context, rows: Rows) -> Verdict:
        registered = ctx.person.registered_unemployed[rows]
        return registered, True, registered

    contributions = contributions_condition("job_loss.min_contribution_months")
    has_income = HAS_INCOME
    below_pension_age = BELOW_PENSION_AGE
    alive = ALIVE

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        p = ctx.person
        income = p.monthly_income[rows]
        amount = _capped_share(
            income, ctx.p.bp("job_loss.replacement_rate"), ctx.p.mrp("job_loss.max_mrp")
        )
        months = np.zeros(len(rows), dtype=np.int64)
        contributions = p.contribution_months[rows]
        for minimum, duration in sorted(ctx.p.value("job_loss.duration_months").items()):
            months = np.where(contributions >= int(minimum), int(duration), months)
        start = p.job_lost_on[rows]
        end = add_months_days(start, months) - 1
        return Award(
            amount,
            start,
            end,
            {"insured_income": (TIYN, income), "duration_months": ("int", months)},
        )


class LossOfBreadwinner(Rule):
    """A monthly social payment to a family whose breadwinner (a member who paid social
    contributions) has died, while the family has dependants: children under 18 (23 if in
    full-time study) or members with a disability. The rate grows with the number of
    dependants and applies to the breadwinner's last insured income."""

    code = "LOSS_OF_BREADWINNER"
    title = "Social payment for loss of breadwinner"
    kind, unit, version = BENEFIT, FAMILY, "2025.1"
    reference = (
        f"{SOCIAL_CODE}: social payments from the State Social Insurance Fund, loss of breadwinner"
    )

    @condition("breadwinner_died", "Deceased members who paid social contributions", op=">=")
    def breadwinner_died(ctx: Context, rows: Rows) -> Verdict:
        count = _breadwinners(ctx)[rows]
        return count, 1, count >= 1

    @condition(
        "dependants", "Living dependants (children, students, members with a disability)", op=">="
    )
    def dependants(ctx: Context, rows: Rows) -> Verdict:
        count = _dependants(ctx)[rows]
        return count, 1, count >= 1

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        p = ctx.person
        minimum = ctx.p.int("loss_of_breadwinner.min_contribution_months")
        income = ctx.family_max(
            rows,
            lambda r: p.monthly_income[r],
            lambda r: (p.date_of_death[r] <= ctx.day) & (p.contribution_months[r] >= minimum),
        )
        table = ctx.p.by_index("loss_of_breadwinner.rate_by_dependants", 10_000)  # basis points
        count = _dependants(ctx)[rows]
        rate = table[np.minimum(count, len(table) - 1)]
        amount = np.minimum(income * rate // 10_000, ctx.p.mrp("loss_of_breadwinner.max_mrp"))
        start, end = _horizon(ctx, rows)
        return Award(
            amount, start, end, {"breadwinner_income": (TIYN, income), "dependants": ("int", count)}
        )


def _breadwinners(ctx: Context) -> np.ndarray:
    """Per family: deceased members with enough contributions (sparse: deaths are rare)."""
    key = "breadwinners"
    if key not in ctx.memo:
        p = ctx.person
        minimum = ctx.p.int("loss_of_breadwinner.min_contribution_months")
        rows = np.flatnonzero(p.date_of_death <= ctx.day)
        rows = rows[p.contribution_months[rows] >= minimum]
        ctx.memo[key] = ctx.family_count_rows(rows)
    counts: np.ndarray = ctx.memo[key]
    return counts


def _dependants(ctx: Context) -> np.ndarray:
    key = "dependants"
    if key not in ctx.memo:
        p = ctx.person
        disabled = (
            ctx.alive & ((p.role == CHILD) | (p.role == DEPENDANT)) & (p.disability_group > 0)
        )
        ctx.memo[key] = ctx.family_sum(ctx.dependent_child | disabled, np.int32)
    counts: np.ndarray = ctx.memo[key]
    return counts


class BirthBenefit(Rule):
    """A one-time benefit at the birth of a child: 38 MRP for the first to third child,
    63 MRP for the fourth and every later child (birth order among the family's children)."""

    code = "BIRTH_BENEFIT"
    title = "One-time benefit at the birth of a child"
    kind, unit, version = BENEFIT, PERSON, "2025.1"
    reference = f"{SOCIAL_CODE}: state benefits to families with children, one-time birth benefit"

    @condition(
        "born_recently", "Born within the claim period (born after the cutoff)", op=">", fmt=DATE
    )
    def born_recently(ctx: Context, rows: Rows) -> Verdict:
        birth = ctx.person.birth_date[rows]
        cutoff = ctx.cutoff(ctx.p.int("birth_benefit.claim_months"))
        return birth, cutoff, birth > cutoff

    @condition("is_child", "Registered as a child of the family", op="==", fmt=BOOL)
    def is_child(ctx: Context, rows: Rows) -> Verdict:
        child = ctx.person.role[rows] == CHILD
        return child, True, child

    alive = ALIVE

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        order = ctx.young_child_order[rows]
        amount = np.where(
            order >= 4,
            ctx.p.mrp("birth_benefit.fourth_plus_mrp"),
            ctx.p.mrp("birth_benefit.first_to_third_mrp"),
        ).astype(np.int64)
        birth = ctx.person.birth_date[rows]
        return Award(amount, birth, birth, {"birth_order": ("int", order)})


class ChildcareToOneAndHalf(Rule):
    """A monthly benefit for caring for a child until the child is 1.5 years old. It is the
    larger of a minimum set in MRP by birth order and 40% of the highest insured income of the
    child's parents (head or spouse with enough contributions), capped."""

    code = "CHILDCARE_TO_1_5"
    title = "Childcare benefit until the child is 1.5 years old"
    kind, unit, version = BENEFIT, PERSON, "2025.1"
    reference = f"{SOCIAL_CODE}: childcare benefit and social payment for childcare until 1.5 years"

    @condition("under_age", "Has not reached 1.5 years (born after the cutoff)", op=">", fmt=DATE)
    def under_age(ctx: Context, rows: Rows) -> Verdict:
        birth = ctx.person.birth_date[rows]
        cutoff = ctx.cutoff(ctx.p.int("childcare.until_months"))
        return birth, cutoff, birth > cutoff

    is_child = BirthBenefit.is_child
    alive = ALIVE
    has_carer = HAS_CARER

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        p = ctx.person
        order = ctx.young_child_order[rows]
        table = ctx.p.by_index("childcare.minimum_mrp_by_order", ctx.p.int("mrp"))
        minimum = table[np.minimum(order, len(table) - 1)]
        families, where = ctx.family_groups(rows)
        least = ctx.p.int("childcare.min_contribution_months")
        income = ctx.family_max(
            families,
            lambda r: p.monthly_income[r],
            lambda r: ctx.alive[r] & (p.role[r] <= 1) & (p.contribution_months[r] >= least),
        )[where]
        share = _capped_share(
            income, ctx.p.bp("childcare.income_share"), ctx.p.mrp("childcare.max_mrp")
        )
        birth = p.birth_date[rows]
        start = np.maximum(birth, ctx.month_start_day).astype(np.int32)
        end = add_months_days(birth, ctx.p.int("childcare.until_months")) - 1
        factors = {"birth_order": ("int", order), "parent_insured_income": (TIYN, income)}
        return Award(np.maximum(minimum, share), start, end, factors)


class DisabledChildCarer(Rule):
    """A monthly benefit to the parent or guardian raising a child with a disability under 18,
    set as a share of the subsistence minimum."""

    code = "DISABLED_CHILD_CARER"
    title = "Benefit to a parent (guardian) raising a child with a disability"
    kind, unit, version = BENEFIT, PERSON, "2025.1"
    reference = (
        f"{SOCIAL_CODE}: state benefits, benefit to a person raising a child with a disability"
    )

    @condition(
        "child_with_disability", "Recognised as a child with a disability", op="==", fmt=BOOL
    )
    def child_with_disability(ctx: Context, rows: Rows) -> Verdict:
        flag = ctx.person.disability_child[rows]
        return flag, True, flag

    @condition("under_age", "Has not reached 18 (born after the cutoff)", op=">", fmt=DATE)
    def under_age(ctx: Context, rows: Rows) -> Verdict:
        birth = ctx.person.birth_date[rows]
        cutoff = ctx.cutoff(ctx.p.int("disabled_child_carer.until_months"))
        return birth, cutoff, birth > cutoff

    alive = ALIVE
    has_carer = HAS_CARER

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        amount = full(
            rows,
            ctx.p.scaled(
                "disabled_child_carer.subsistence_share", ctx.p.int("subsistence_minimum")
            ),
            np.int64,
        )
        start, end = _horizon(ctx, rows)
        adult_on = add_months_days(
            ctx.person.birth_date[rows], ctx.p.int("disabled_child_carer.until_months")
        )
        return Award(amount, start, np.minimum(end, adult_on - 1))


class DisabilityBenefit(Rule):
    """A monthly state benefit to a person with a disability of group 1, 2 or 3, set as a share
    of the subsistence minimum by group; a higher share if disabled since childhood."""

    code = "DISABILITY_BENEFIT"
    title = "Disability benefit"
    kind, unit, version = BENEFIT, PERSON, "2025.1"
    reference = f"{SOCIAL_CODE}: state social benefits for disability"

    @condition("disability_group", "Disability group established (1, 2 or 3)", op="in")
    def disability_group(ctx: Context, rows: Rows) -> Verdict:
        group = ctx.person.disability_group[rows]
        return group, (1, 2, 3), (group >= 1) & (group <= 3)

    @condition(
        "established", "Disability established on or before the date", op="none or <=", fmt=DATE
    )
    def established(ctx: Context, rows: Rows) -> Verdict:
        on = ctx.person.disability_established_on[rows]
        return on, ctx.day, on <= ctx.day

    alive = ALIVE

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        p = ctx.person
        pm = ctx.p.int("subsistence_minimum")
        adult_table = ctx.p.by_index("disability.subsistence_share", pm)
        child_table = ctx.p.by_index("disability.childhood_subsistence_share", pm)
        group = p.disability_group[rows]
        amount = np.where(p.disability_child[rows], child_table[group], adult_table[group])
        established = p.disability_established_on[rows]
        start, end = _horizon(ctx, rows, start=established)
        return Award(amount, start, end, {"group": ("int", group)})


class LargeFamily(Rule):
    """A monthly benefit to a large family: four or more children under 18 (or under 23 in
    full-time study). 16.03 MRP for four children and 3.21 MRP for each further child. Not
    means-tested."""

    code = "LARGE_FAMILY"
    title = "Benefit to large families"
    kind, unit, version = BENEFIT, FAMILY, "2025.1"
    reference = (
        f"{SOCIAL_CODE}: state benefits to families with children, benefit to large families"
    )

    @condition("children", "Children under 18, or under 23 in full-time study", op=">=")
    def children(ctx: Context, rows: Rows) -> Verdict:
        count = ctx.family_dependent_children[rows]
        minimum = ctx.p.int("large_family.min_children")
        return count, minimum, count >= minimum

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        count = ctx.family_dependent_children[rows].astype(np.int64)
        base = ctx.p.mrp("large_family.four_children_mrp")
        extra = ctx.p.mrp("large_family.per_additional_child_mrp")
        amount = base + extra * (count - ctx.p.int("large_family.min_children"))
        start, end = _horizon(ctx, rows)
        return Award(amount, start, end, {"children": ("int", count)})


class MotherAward(Rule):
    """A monthly benefit to a mother of many children awarded the 'Altyn alqa' (6.4 MRP) or
    'Kumis alqa' (5.2 MRP) pendant, for life, regardless of income."""

    code = "MOTHER_AWARD"
    title = "Benefit to mothers awarded 'Altyn alqa' or 'Kumis alqa'"
    kind, unit, version = BENEFIT, PERSON, "2025.1"
    reference = (
        f"{SOCIAL_CODE}: state benefits to mothers of many children awarded Altyn alqa, Kumis alqa"
    )

    @condition(
        "award",
        "Holds the 'Altyn alqa' or 'Kumis alqa' pendant",
        op="in",
        fmt=("none", "altyn_alqa", "kumis_alqa"),
    )
    def award_held(ctx: Context, rows: Rows) -> Verdict:
        award = ctx.person.award[rows]
        return award, (1, 2), award > 0

    @condition("is_mother", "Is a woman", op="==", fmt=BOOL)
    def is_mother(ctx: Context, rows: Rows) -> Verdict:
        female = ctx.person.is_female[rows]
        return female, True, female

    alive = ALIVE

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        table = ctx.p.table(
            "mother_award",
            lambda: np.array(
                [
                    0,
                    ctx.p.mrp("mother_award.altyn_alqa_mrp"),
                    ctx.p.mrp("mother_award.kumis_alqa_mrp"),
                ],
                dtype=np.int64,
            ),
        )
        amount = table[ctx.person.award[rows]]
        start, end = _horizon(ctx, rows)
        return Award(amount, start, end)


class TargetedSocialAssistance(Rule):
    """Targeted social assistance (ASP): a quarterly-assigned monthly payment to a family whose
    per-capita income is below 70% of the subsistence minimum (strictly), provided no
    able-bodied working-age member is idle (unemployed and not registered). The amount fills
    the gap: (threshold − per-capita income) × living members, computed exactly as
    threshold × members − family income."""

    code = "ASP"
    title = "Targeted social assistance"
    kind, unit, version = BENEFIT, FAMILY, "2025.1"
    # Assigned a quarter at a time: a family still entitled next quarter is asked again.
    renewed = True
    reference = f"{SOCIAL_CODE}: targeted social assistance"

    @condition(
        "per_capita_income", "Per-capita monthly income of the living members", op="<", fmt=TIYN
    )
    def per_capita_income(ctx: Context, rows: Rows) -> Verdict:
        income, members = ctx.family_income[rows], ctx.family_living[rows].astype(np.int64)
        threshold = _asp_threshold(ctx)
        # Compare income with threshold × members: exact, no rounding of the per-capita figure.
        passed = income < threshold * members
        # The per-capita figure is only shown in explanations; the test above does not need it.
        value = income // np.maximum(members, 1) if ctx.explain else None
        return value, threshold, passed

    @condition("members", "Living members in the family", op=">=")
    def members(ctx: Context, rows: Rows) -> Verdict:
        count = ctx.family_living[rows]
        return count, 1, count >= 1

    @condition(
        "no_idle_able_bodied",
        "Able-bodied working-age members who are idle (not registered)",
        op="==",
    )
    def no_idle(ctx: Context, rows: Rows) -> Verdict:
        idle = ctx.family_idle[rows]
        return idle, 0, idle == 0

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        members = ctx.family_living[rows].astype(np.int64)
        income = ctx.family_income[rows]
        amount = _asp_threshold(ctx) * members - income
        start, end = ctx.quarter_days
        factors = {"family_income": (TIYN, income), "members": ("int", members)}
        return Award(amount, full(rows, start), full(rows, end), factors)


def _asp_threshold(ctx: Context) -> int:
    return ctx.p.scaled("asp.subsistence_share", ctx.p.int("subsistence_minimum"))


class FuneralPayment(Rule):
    """A one-time payment (52.4 MRP) to the family for the funeral of a member who died within
    the last 12 months and was a pensioner (had reached pension age) or had a disability."""

    code = "FUNERAL_PAYMENT"
    title = "One-time funeral payment"
    kind, unit, version = BENEFIT, PERSON, "2025.1"
    reference = f"{SOCIAL_CODE}: one-time payment for funeral"

    @condition(
        "died_recently", "Died within the claim period (died after the cutoff)", op=">", fmt=DATE
    )
    def died_recently(ctx: Context, rows: Rows) -> Verdict:
        death = ctx.person.date_of_death[rows]
        cutoff = ctx.cutoff(ctx.p.int("funeral.claim_months"))
        return death, cutoff, (death > cutoff) & (death <= ctx.day)

    @condition(
        "pensioner_or_disabled",
        "Had reached pension age by death, or had a disability",
        op="==",
        fmt=BOOL,
    )
    def pensioner_or_disabled(ctx: Context, rows: Rows) -> Verdict:
        p = ctx.person
        death = p.date_of_death[rows]
        covered = (death != NEVER) & (p.disability_group[rows] > 0)
        # The calendar work only for the dead without a disability (a handful of rows).
        check = np.flatnonzero((death != NEVER) & ~covered)
        if len(check):
            at = check if isinstance(rows, slice) else rows[check]
            pension_date = add_months_days(p.birth_date[at], ctx.pension_months(at))
            covered[check] = pension_date <= death[check]
        return covered, True, covered

    @condition("survivors", "Living members left in the family to receive it", op=">=")
    def survivors(ctx: Context, rows: Rows) -> Verdict:
        count = ctx.of_family(ctx.family_living, rows)
        return count, 1, count >= 1

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        death = ctx.person.date_of_death[rows]
        return Award(full(rows, ctx.p.mrp("funeral.mrp"), np.int64), death, death)


BENEFITS = (
    LossOfWorkingCapacity,
    JobLoss,
    LossOfBreadwinner,
    BirthBenefit,
    ChildcareToOneAndHalf,
    DisabledChildCarer,
    DisabilityBenefit,
    LargeFamily,
    MotherAward,
    TargetedSocialAssistance,
    FuneralPayment,
)
