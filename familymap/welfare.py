"""Welfare of a family on the five criteria of the Digital Family Map (our model).

Criteria (DOMAIN.md §1): economic living conditions; health coverage and disability; housing;
social conditions; education. Each gets a score 0..100 from a few facts (banded ratios and
penalties); the weighted total places the family on one of five levels. Every band, penalty,
weight and level threshold is a dated parameter (`welfare.*` in parameters/welfare.yaml).

Like the rules, one definition works over columns: `assess(ctx)` scores every family of the
context at once (a million families, or the one family being explained) with numpy, reading
the intermediates the rules already computed (living members, family income, adults...).
Education level of adults is not among our facts yet, so the education criterion covers
children's coverage by school and kindergarten only.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from familymap.parameters import ParameterError

if TYPE_CHECKING:  # the engine imports welfare, not the reverse
    from familymap.engine.context import Context, Snapshot

CRITERIA: tuple[str, ...] = ("economic", "health", "housing", "social", "education")
LEVELS: tuple[str, ...] = ("stable", "satisfactory", "unstable", "crisis_risk", "crisis")


@dataclass(frozen=True, slots=True)
class WelfareColumns:
    """Scores of many families: per-criterion score, total, level code (index into LEVELS)."""

    scores: dict[str, np.ndarray]  # criterion -> uint8 per family
    total: np.ndarray  # uint8 per family
    level: np.ndarray  # int8 per family, index into LEVELS
    facts: dict[str, dict[str, np.ndarray]]  # criterion -> fact -> per-family values


@dataclass(frozen=True, slots=True)
class CriterionScore:
    """One criterion of one family: its score and the facts that produced it."""

    criterion: str
    score: int
    facts: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WelfareAssessment:
    """The welfare of one family, explained."""

    level: str
    total: int
    criteria: tuple[CriterionScore, ...]


def assess(ctx: Context) -> WelfareColumns:
    """Score every family of the evaluation context on the five criteria."""
    p, k = ctx.person, _constants(ctx.p)
    alive, adult = ctx.alive, ctx.adult
    minor = alive & ~ctx.reached(k.adult_months)
    school_age = minor & ctx.reached(k.school_months)
    preschool = alive & ctx.reached(k.preschool_months) & ~ctx.reached(k.school_months)
    not_at_school = p.school_grade == 0
    # One pass for every per-family count the criteria need.
    (
        earners,
        uninsured,
        disabled,
        unattached,
        minors,
        unemployed,
        pensioners,
        out_of_school,
        no_kindergarten,
    ) = ctx.family_sums(
        [
            adult & (p.monthly_income > 0),
            alive & ~p.insured,
            alive & ((p.disability_group > 0) | p.disability_child),
            alive & (p.chronic_count > 0) & ~p.polyclinic_attached,
            minor,
            alive & p.registered_unemployed,
            alive & ~ctx.below_pension_age,
            school_age & not_at_school & ~p.full_time_student,
            preschool & ~p.kindergarten & not_at_school,
        ]
    )
    living = ctx.family_living.astype(np.int64)
    members = np.maximum(living, 1)

    # Economic: per-capita income against the subsistence minimum, and whether anyone earns.
    ratio = ctx.family_income * 100 // (k.subsistence_minimum * members)
    economic = _band(ratio, k.income_bands) - (earners == 0) * k.no_earner_penalty

    # Health: members without insurance, members with a disability, chronic without a polyclinic.
    health = (
        100
        - uninsured * k.uninsured_penalty
        - disabled * k.disability_penalty
        - unattached * k.unattached_penalty
    )

    # Housing: floor area per living member, ownership, waiting for social housing.
    area = ctx.family.area_m2.astype(np.int64) // members
    owned, queue = ctx.family.housing_owned, ctx.family.housing_queue
    housing = _band(area, k.area_bands) - ~owned * k.not_owned_penalty - queue * k.queue_penalty

    # Social: a single adult raising minors, registered unemployment, a recent death, a pensioner alone.
    single_parent = (ctx.family_adults == 1) & (minors >= 1)
    death = p.date_of_death
    recent_deaths = ctx.family_count_rows(
        ((death <= ctx.day) & (death > ctx.cutoff(k.death_months))).nonzero()[0]
    )
    lone_pensioner = (living == 1) & (pensioners == 1)
    social = (
        100
        - single_parent * k.single_parent_penalty
        - unemployed * k.unemployed_penalty
        - (recent_deaths > 0) * k.recent_death_penalty
        - lone_pensioner * k.lone_pensioner_penalty
    )

    # Education: school-age children not at school or college, pre-schoolers without a kindergarten.
    education = (
        100 - out_of_school * k.out_of_school_penalty - no_kindergarten * k.no_kindergarten_penalty
    )

    raw = np.array([economic, health, housing, social, education])
    clipped = np.minimum(np.maximum(raw, 0), 100)
    total = (clipped * k.weights).sum(axis=0, dtype=np.int32) // k.weight_sum
    level = k.level_of_total[total]  # 0 = stable .. 4 = crisis
    scores = dict(zip(CRITERIA, clipped.astype(np.uint8), strict=True))
    facts = {
        "economic": {
            "per_capita_income_tiyn": ctx.family_income // members,
            "income_to_subsistence_pct": ratio,
            "earners": earners,
        },
        "health": {
            "uninsured": uninsured,
            "with_disability": disabled,
            "chronic_not_attached": unattached,
        },
        "housing": {"area_m2_per_person": area, "owned": owned, "in_social_housing_queue": queue},
        "social": {
            "single_adult_with_minors": single_parent,
            "registered_unemployed": unemployed,
            "deaths_in_period": recent_deaths,
            "lone_pensioner": lone_pensioner,
        },
        "education": {
            "school_age_out_of_school": out_of_school,
            "preschool_without_kindergarten": no_kindergarten,
        },
    }
    return WelfareColumns(scores, total.astype(np.uint8), level, facts)


def explain(columns: WelfareColumns, family_row: int) -> WelfareAssessment:
    """The assessment of one family (row) of a WelfareColumns, with plain Python values."""
    # `tolist()` of a one-element slice converts without creating a numpy scalar first.
    row = slice(family_row, family_row + 1 or None)
    criteria = tuple(
        CriterionScore(
            c,
            columns.scores[c][row].tolist()[0],
            {k: v[row].tolist()[0] for k, v in columns.facts[c].items()},
        )
        for c in CRITERIA
    )
    return WelfareAssessment(
        LEVELS[columns.level[row].tolist()[0]], columns.total[row].tolist()[0], criteria
    )


def _band(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Score of the highest band whose lower bound the value reaches (a lookup per integer value)."""
    scores: np.ndarray = table[np.minimum(values, len(table) - 1)]
    return scores


def _constants(snapshot: Snapshot) -> SimpleNamespace:
    """Every welfare parameter in force, as int32 scalars and lookup tables, built once per date.

    int32 numpy scalars keep the per-family arithmetic in int32 (a Python int would promote
    bool × penalty to int64), and bands become lookup tables indexed by the integer value.
    """
    return snapshot.table("welfare", lambda: _build_constants(snapshot))


def _build_constants(w: Snapshot) -> SimpleNamespace:
    def band_table(name: str) -> NDArray[np.int32]:
        bands = {int(k): int(v) for k, v in w.value(name).items()}
        if min(bands) != 0:
            raise ParameterError(
                "PARAMETER_INVALID", f"{name}: the first band must start at 0", name=name
            )
        table = np.empty(max(bands) + 1, dtype=np.int32)
        for bound in sorted(bands):
            table[bound:] = bands[bound]
        return table

    def penalty(name: str) -> np.int32:
        return np.int32(w.int(name))

    weights = w.value("welfare.weights")
    minimums = [int(w.value("welfare.level_min_scores")[level]) for level in LEVELS[:-1]]
    if minimums != sorted(minimums, reverse=True):
        raise ParameterError(
            "PARAMETER_INVALID", "welfare.level_min_scores must fall from stable to crisis_risk"
        )
    level_of_total = np.full(101, len(LEVELS) - 1, dtype=np.int8)
    for code in range(len(LEVELS) - 2, -1, -1):  # crisis_risk first, so the best level wins
        level_of_total[minimums[code] :] = code
    return SimpleNamespace(
        adult_months=w.int("adult_age_months"),
        school_months=w.int("welfare.education.school_age_months"),
        preschool_months=w.int("welfare.education.preschool_age_months"),
        death_months=w.int("welfare.social.recent_death_months"),
        subsistence_minimum=w.int("subsistence_minimum"),
        income_bands=band_table("welfare.economic.income_ratio_bands"),
        area_bands=band_table("welfare.housing.area_per_person_bands"),
        no_earner_penalty=penalty("welfare.economic.no_earner_penalty"),
        uninsured_penalty=penalty("welfare.health.uninsured_penalty"),
        disability_penalty=penalty("welfare.health.disability_penalty"),
        unattached_penalty=penalty("welfare.health.chronic_unattached_penalty"),
        not_owned_penalty=penalty("welfare.housing.not_owned_penalty"),
        queue_penalty=penalty("welfare.housing.queue_penalty"),
        single_parent_penalty=penalty("welfare.social.single_parent_penalty"),
        unemployed_penalty=penalty("welfare.social.unemployed_penalty"),
        recent_death_penalty=penalty("welfare.social.recent_death_penalty"),
        lone_pensioner_penalty=penalty("welfare.social.lone_pensioner_penalty"),
        out_of_school_penalty=penalty("welfare.education.out_of_school_penalty"),
        no_kindergarten_penalty=penalty("welfare.education.no_kindergarten_penalty"),
        weights=np.array([int(weights[c]) for c in CRITERIA], dtype=np.int32)[:, None],
        weight_sum=np.int32(sum(int(weights[c]) for c in CRITERIA)),
        level_of_total=level_of_total,
    )
