"""What a citizen sees of their family in the wallet: members, welfare, entitlements.

Everything here is plain data computed from registry rows already read (the GraphQL layer's
DataLoaders read them, one statement per relation); nothing here queries the database, so the
cost of a wallet view does not grow in statements with the family's size.

Who sees what of whom (the caller is a member of the family, found by their IIN):

    caller            sees of themself   of a child (role child)       of another adult
    head or spouse    everything         everything                    name, IIN masked
    other adult       everything         name, IIN masked              name, IIN masked
    child             everything         nothing (siblings hidden)     parents' names only

"Everything" is the member's name, full IIN, birth date and role; it is also what decides
whose entitlements the caller is shown (their own, the children they see fully, and the
family-level programmes). A child's view of a parent carries no IIN at all.

Entitlement status is decided in one place, `entitlement_statuses`: RECEIVING and OFFERED
come from the offer and assignment records (issue 4), given as `offer_states`, keyed by
(person id or None for a family programme, programme code); without a record, the engine's
decision says ELIGIBLE or NOT_ELIGIBLE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Any

from familymap.engine import evaluate_family
from familymap.engine.evaluate import family_welfare
from familymap.engine.results import ConditionResult, Decision, FamilyEvaluation
from familymap.i18n import language_of
from familymap.iin import mask_iin
from familymap.rules import RULES
from familymap.situation import Family as FamilyFacts
from familymap.situation import Housing
from familymap.situation import Person as PersonFacts
from familymap.tables import Family, Person
from familymap.welfare import WelfareAssessment
from wallet import texts
from wallet.i18n import programme_title

PARENT_ROLES = frozenset({"head", "spouse"})
CHILD_ROLE = "child"


class Visibility(StrEnum):
    """How much of a family member the caller may see."""

    FULL = "FULL"  # name, full IIN, birth date, role
    NAME_MASKED_IIN = "NAME_MASKED_IIN"  # name and role, IIN masked
    NAME_ONLY = "NAME_ONLY"  # name and role


class EntitlementStatus(StrEnum):
    """Where a programme stands for one beneficiary, most advanced first."""

    RECEIVING = "RECEIVING"
    OFFERED = "OFFERED"
    ELIGIBLE = "ELIGIBLE"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"


_STATUS_ORDER = {status: n for n, status in enumerate(EntitlementStatus)}


# --- Members ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberView:
    """A family member as the caller may see them."""

    person_id: int
    visibility: Visibility
    first_name: str
    last_name: str
    patronymic: str | None
    role: str
    iin: str | None  # full, masked, or None (see Visibility)
    birth_date: date | None  # FULL only
    is_caller: bool


def visibility(*, caller: Person, member: Person) -> Visibility | None:
    """How much of `member` the `caller` (of the same family) may see; None: nothing."""
    if member.id == caller.id:
        return Visibility.FULL
    if caller.role == CHILD_ROLE:
        return Visibility.NAME_ONLY if member.role in PARENT_ROLES else None
    if member.role == CHILD_ROLE and caller.role in PARENT_ROLES:
        return Visibility.FULL
    return Visibility.NAME_MASKED_IIN


def visible_members(*, caller: Person, members: Sequence[Person]) -> list[MemberView]:
    """The members of the caller's family the caller may see, as much as they may see."""
    shown = []
    for member in members:
        level = visibility(caller=caller, member=member)
        if level is None or member.family_id != caller.family_id:
            continue
        full = level is Visibility.FULL
        shown.append(
            MemberView(
                person_id=member.id,
                visibility=level,
                first_name=member.first_name,
                last_name=member.last_name,
                patronymic=member.patronymic,
                role=member.role,
                iin=member.iin
                if full
                else mask_iin(member.iin)
                if level is Visibility.NAME_MASKED_IIN
                else None,
                birth_date=member.birth_date if full else None,
                is_caller=member.id == caller.id,
            )
        )
    return shown


def fully_visible_ids(*, caller: Person, members: Sequence[Person]) -> frozenset[int]:
    """Ids of the members whose entitlements and spending the caller may see one by one."""
    return frozenset(
        m.id for m in members if visibility(caller=caller, member=m) is Visibility.FULL
    )


# --- Evaluation -------------------------------------------------------------------------------


def family_facts(*, family: Family, members: Sequence[Person]) -> FamilyFacts:
    """The engine's facts of a family from its registry rows (members in id order)."""
    return FamilyFacts(
        family_id=str(family.id),
        region=family.region,
        housing=Housing(
            owned=family.housing_owned,
            area_m2=family.area_m2,
            rooms=family.rooms,
            in_social_housing_queue=family.in_social_housing_queue,
        ),
        members=tuple(
            PersonFacts(
                person_id=str(m.id),
                iin=m.iin,
                birth_date=m.birth_date,
                sex=m.sex,
                role=m.role,
                date_of_death=m.date_of_death,
                monthly_income=m.monthly_income_tiyn,
                social_contributions_months=m.contribution_months,
                employment=m.employment,
                job_lost_on=m.job_lost_on,
                registered_unemployed=m.registered_unemployed,
                disability_group=m.disability_group,
                disability_child=m.disability_child,
                disability_established_on=m.disability_established_on,
                working_capacity_loss_pct=m.capacity_loss_pct,
                full_time_student=m.full_time_student,
                school_grade=m.school_grade,
                school_id=m.school_id,
                kindergarten=m.kindergarten,
                insured=m.insured,
                polyclinic_attached=m.polyclinic_attached,
                chronic_conditions=tuple(m.chronic_conditions or ()),
                award=m.award,
                kandas_until=m.kandas_until,
            )
            for m in sorted(members, key=lambda m: m.id)
        ),
    )


def evaluate(*, family: Family, members: Sequence[Person], on: date) -> FamilyEvaluation:
    """Evaluate a family live, with explanations and welfare (about a millisecond)."""
    return evaluate_family(family=family_facts(family=family, members=members), on=on)


def welfare(*, family: Family, members: Sequence[Person], on: date) -> WelfareAssessment:
    """The family's welfare as `evaluate` gives it, without evaluating every rule."""
    return family_welfare(family=family_facts(family=family, members=members), on=on)


# --- Welfare ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CriterionView:
    criterion: str
    title: str
    score: int
    explanation: str
    facts: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WelfareView:
    level: str
    level_title: str
    total: int
    criteria: tuple[CriterionView, ...]


def welfare_view(*, assessment: WelfareAssessment, language: str) -> WelfareView:
    """The family's welfare level and its five criteria explained in `language`."""
    return WelfareView(
        level=assessment.level,
        level_title=texts.text(texts.LEVELS, assessment.level, language),
        total=assessment.total,
        criteria=tuple(
            CriterionView(
                criterion=c.criterion,
                title=texts.text(texts.CRITERIA, c.criterion, language),
                score=c.score,
                explanation=texts.criterion_explanation(
                    criterion=c.criterion, score=c.score, facts=c.facts, language=language
                ),
                facts=c.facts,
            )
            for c in assessment.criteria
        ),
    )


# --- Entitlements -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    """One condition of a decision, with its values and the verdict, in plain language."""

    condition: str
    label: str
    value: str
    threshold: str
    passed: bool
    text: str


@dataclass(frozen=True, slots=True)
class EntitlementView:
    """A programme for one beneficiary, with its status and the reasons for it."""

    programme: str
    kind: str
    person_id: int | None  # None for a family-level programme
    status: EntitlementStatus
    status_title: str
    title: str
    amount_tiyn: int
    period_start: date | None
    period_end: date | None
    reference: str
    decision: Decision
    language: str

    @property
    def key(self) -> str:
        return f"{self.programme}:{self.person_id or 0}"

    @property
    def reasons(self) -> list[Reason]:
        """Every condition of the decision explained (computed when asked for)."""
        return reasons(decision=self.decision, language=self.language)


@cache
def _condition_formats() -> dict[tuple[str, str], Any]:
    return {(r.code, c.id): c.fmt for r in RULES for c in r.conditions}


def reasons(*, decision: Decision, language: str) -> list[Reason]:
    """The conditions of a decision in plain language, values formatted for `language`."""
    lang = language_of(language)
    programme = decision.programme
    return [_reason(programme, c, lang) for c in decision.conditions]


# A screen of 50 entitlements shows ~160 conditions, and across families the same few recur
# (the same rule, condition, values and language: today's date, a threshold, yes/no), so each
# is rendered once and kept: a Reason is immutable and shared by every answer that shows it.
# The key carries the values' types, since 1 == True and a bool reads "yes", an int "1".
_REASONS: dict[tuple[Any, ...], Reason] = {}
_REASONS_KEPT = 65_536  # then the cache starts again, so it stays bounded


def _reason(programme: str, c: ConditionResult, lang: str) -> Reason:
    value, threshold = c.value, c.threshold
    if isinstance(value, tuple | list) or isinstance(threshold, tuple | list):
        return _render_reason(programme, c, lang)  # element types would escape the key
    key = (programme, c.id, c.op, c.passed, type(value), value, type(threshold), threshold, lang)
    try:
        found = _REASONS.get(key)
    except TypeError:  # an unhashable value: render it without the cache
        return _render_reason(programme, c, lang)
    if found is None:
        found = _render_reason(programme, c, lang)
        if len(_REASONS) >= _REASONS_KEPT:
            _REASONS.clear()
        _REASONS[key] = found
    return found


def _render_reason(programme: str, c: ConditionResult, lang: str) -> Reason:
    fmt = _condition_formats().get((programme, c.id))
    return Reason(
        condition=c.id,
        label=texts.condition_label(programme, c.id, lang),
        value=texts.format_value(c.value, fmt, lang),
        threshold=texts.format_value(c.threshold, fmt, lang),
        passed=c.passed,
        text=texts.reason_text(
            programme=programme,
            condition_id=c.id,
            value=c.value,
            op=c.op,
            threshold=c.threshold,
            passed=c.passed,
            fmt=fmt,
            language=lang,
        ),
    )


OfferKey = tuple[int | None, str]


# What an offer's state means for its programme's status. A declined, expired or withdrawn
# offer says nothing: the evaluation decides (ELIGIBLE again after a decline, say).
_OFFER_STATUS = {
    "offered": EntitlementStatus.OFFERED,
    "needs_bank_account": EntitlementStatus.OFFERED,  # consented; waits for the person
    "accepted": EntitlementStatus.RECEIVING,
    "assigned": EntitlementStatus.RECEIVING,
    "paid": EntitlementStatus.RECEIVING,
}


def offer_states(offers: Iterable[Any]) -> dict[OfferKey, EntitlementStatus]:
    """The statuses a family's offers give its programmes; the newest offer of each wins."""
    states: dict[OfferKey, EntitlementStatus] = {}
    for offer in sorted(offers, key=lambda o: o.id):
        status = _OFFER_STATUS.get(offer.state)
        key = (offer.beneficiary_person_id, offer.programme)
        if status is not None:
            states[key] = status
        else:
            states.pop(key, None)
    return states


def entitlement_statuses(
    *,
    evaluation: FamilyEvaluation,
    language: str,
    visible_person_ids: frozenset[int] | None = None,
    offer_states: Mapping[OfferKey, EntitlementStatus] | None = None,
) -> list[EntitlementView]:
    """Every programme of the family for the members the caller sees, with its status.

    `offer_states` is the seam for offers and assignments (issue 4): a record for
    (person id or None, programme) says RECEIVING or OFFERED and wins over the evaluation;
    without one the decision gives ELIGIBLE or NOT_ELIGIBLE. Ordered by status, most
    advanced first, then programme and member.
    """
    offer_states = offer_states or {}
    views = []
    for d in evaluation.decisions:
        person_id = int(d.person_id) if d.person_id is not None else None
        hidden = visible_person_ids is not None and person_id not in visible_person_ids
        if person_id is not None and hidden:
            continue
        status = offer_states.get((person_id, d.programme)) or (
            EntitlementStatus.ELIGIBLE if d.eligible else EntitlementStatus.NOT_ELIGIBLE
        )
        views.append(
            EntitlementView(
                programme=d.programme,
                kind=d.kind,
                person_id=person_id,
                status=status,
                status_title=texts.text(texts.STATUSES, status, language),
                title=programme_title(d.programme, language),
                amount_tiyn=d.amount_tiyn,
                period_start=d.period_start,
                period_end=d.period_end,
                reference=d.reference,
                decision=d,
                language=language,
            )
        )
    views.sort(key=lambda v: (_STATUS_ORDER[v.status], v.programme, v.person_id or 0))
    return views
