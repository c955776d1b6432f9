"""Who sees what of whom, and where an entitlement's status comes from."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from familymap.engine.results import ConditionResult
from familymap.tables import Family, Person
from wallet.view import (
    EntitlementStatus,
    Visibility,
    entitlement_statuses,
    evaluate,
    fully_visible_ids,
    reasons,
    visibility,
    visible_members,
)

ON = date(2026, 11, 22)


def person(id: int, role: str, born: date, **facts) -> Person:
    return Person(
        id=id, family_id=1, iin=f"{id:012d}", role=role, last_name="Нұрланов",
        first_name=f"P{id}", patronymic=None, birth_date=born, sex=facts.pop("sex", "M"),
        monthly_income_tiyn=0, contribution_months=0, employment="not_in_labour_force",
        registered_unemployed=False, disability_child=False, capacity_loss_pct=0,
        full_time_student=False, kindergarten=False, insured=True, polyclinic_attached=True,
        chronic_conditions=[], **facts,
    )  # fmt: skip


HEAD = person(1, "head", date(1980, 1, 1))
SPOUSE = person(2, "spouse", date(1982, 1, 1), sex="F")
CHILD = person(3, "child", date(2016, 1, 1), school_grade=4)
SIBLING = person(4, "child", date(2019, 1, 1), school_grade=1)
GRANDPA = person(5, "other", date(1950, 1, 1))
MEMBERS = [HEAD, SPOUSE, CHILD, SIBLING, GRANDPA]
FAMILY = Family(id=1, region="astana", housing_owned=True, area_m2=60, rooms=3,
                in_social_housing_queue=False)  # fmt: skip


@pytest.mark.parametrize(
    ("caller", "member", "expected"),
    [
        (HEAD, HEAD, Visibility.FULL),
        (HEAD, CHILD, Visibility.FULL),
        (SPOUSE, SIBLING, Visibility.FULL),
        (HEAD, SPOUSE, Visibility.NAME_MASKED_IIN),
        (HEAD, GRANDPA, Visibility.NAME_MASKED_IIN),
        (GRANDPA, CHILD, Visibility.NAME_MASKED_IIN),
        (GRANDPA, HEAD, Visibility.NAME_MASKED_IIN),
        (CHILD, HEAD, Visibility.NAME_ONLY),
        (CHILD, SIBLING, None),
        (CHILD, GRANDPA, None),
        (CHILD, CHILD, Visibility.FULL),
    ],
)
def test_visibility_between_members(caller, member, expected):
    assert visibility(caller=caller, member=member) == expected


def test_masked_and_hidden_fields_never_carry_the_iin_or_birth_date():
    # when the grandfather and a child look at the family
    seen_by_grandpa = {m.person_id: m for m in visible_members(caller=GRANDPA, members=MEMBERS)}
    seen_by_child = {m.person_id: m for m in visible_members(caller=CHILD, members=MEMBERS)}

    # then others' IINs are masked (or absent) and birth dates hidden
    assert seen_by_grandpa[HEAD.id].iin == "00********01"
    assert seen_by_grandpa[HEAD.id].birth_date is None
    assert set(seen_by_child) == {HEAD.id, SPOUSE.id, CHILD.id}
    assert seen_by_child[HEAD.id].iin is None
    assert fully_visible_ids(caller=HEAD, members=MEMBERS) == {HEAD.id, CHILD.id, SIBLING.id}


def test_status_comes_from_the_evaluation_unless_an_offer_state_says_more():
    # given the family's evaluation (both children eligible for school meals)
    evaluation = evaluate(family=FAMILY, members=MEMBERS, on=ON)

    # when statuses are asked without offers, then with an offer and an assignment recorded
    plain = entitlement_statuses(evaluation=evaluation, language="en")
    with_offers = entitlement_statuses(
        evaluation=evaluation, language="en",
        offer_states={(CHILD.id, "SCHOOL_MEALS"): EntitlementStatus.RECEIVING,
                      (SIBLING.id, "SCHOOL_MEALS"): EntitlementStatus.OFFERED},
    )  # fmt: skip

    # then the evaluation gives ELIGIBLE, the offer records give RECEIVING and OFFERED first
    def meals(views):
        return {v.person_id: v.status for v in views if v.programme == "SCHOOL_MEALS"}

    assert meals(plain)[CHILD.id] == EntitlementStatus.ELIGIBLE
    assert meals(with_offers)[CHILD.id] == EntitlementStatus.RECEIVING
    assert meals(with_offers)[SIBLING.id] == EntitlementStatus.OFFERED
    assert [v.status for v in with_offers[:2]] == [
        EntitlementStatus.RECEIVING,
        EntitlementStatus.OFFERED,
    ]
    assert with_offers[0].status_title == "receiving"


def test_only_the_visible_members_programmes_are_listed_with_family_ones():
    evaluation = evaluate(family=FAMILY, members=MEMBERS, on=ON)
    views = entitlement_statuses(
        evaluation=evaluation, language="ru", visible_person_ids=frozenset({GRANDPA.id})
    )
    assert {v.person_id for v in views} == {GRANDPA.id, None}
    large = next(v for v in views if v.programme == "LARGE_FAMILY")
    (reason,) = large.reasons
    assert (reason.value, reason.threshold, reason.passed) == ("2", "4", False)
    assert large.reference.startswith("Social Code")


def test_a_reason_is_rendered_once_and_an_int_is_not_taken_for_a_bool():
    # given a condition seen with the value 1 and, elsewhere, with True (1 == True in Python)
    as_int = ConditionResult("children", "", 1, ">=", 4, False)
    as_bool = ConditionResult("children", "", True, ">=", 4, False)
    decision = SimpleNamespace(programme="LARGE_FAMILY", conditions=[as_int, as_bool])

    # when the decision's reasons are rendered twice
    first = reasons(decision=decision, language="en")
    again = reasons(decision=decision, language="en")

    # then each value reads as its own type, and the second rendering reuses the first's
    assert [r.value for r in first] == ["1", "yes"]
    assert "1" in first[0].text and "yes" in first[1].text
    assert all(a is b for a, b in zip(first, again, strict=True))
