"""Life events pushed by a source system: applied, kept, replayed, refused, re-evaluated.

Runs on SQLite and on PostgreSQL with the same expectations.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from familymap.events import EventCode, EventRefused, LifeEventResult, record_life_event
from familymap.iin import is_valid_iin
from familymap.tables import (
    Decision,
    EligibilityRun,
    Entitlement,
    EntitlementChange,
    FactRecord,
    Family,
    LifeEvent,
    Person,
)

TODAY = date(2025, 9, 15)
MRP = 393_200  # 2025, tiyn
SOURCE = "gbdfl"

FATHER_IIN = "880412300011"
MOTHER_IIN = "900605400013"
PUPIL_IIN = "180301600010"
NEWBORN_IIN = "250901500011"
GRANDMOTHER_IIN = "600202300013"  # deceased
OTHER_HEAD_IIN = "700303300013"  # head of another family
PENSIONER_IIN = "620710400015"
WIDOW_IIN = "990101300013"
TEEN_IIN = "120515500017"
STRANGER_IIN = "880412300021"  # valid, in no family


def test_iins_are_valid():
    iins = (
        FATHER_IIN, MOTHER_IIN, PUPIL_IIN, NEWBORN_IIN, GRANDMOTHER_IIN, OTHER_HEAD_IIN,
        PENSIONER_IIN, WIDOW_IIN, TEEN_IIN, STRANGER_IIN,
    )  # fmt: skip
    assert all(is_valid_iin(iin) for iin in iins)


def _person(family_id: int, iin: str, **facts) -> Person:
    base = {
        "role": "head", "last_name": "Серікбаев", "first_name": "Асқар", "patronymic": None,
        "birth_date": date(1988, 4, 12), "sex": "M", "language": "kk",
    }  # fmt: skip
    return Person(family_id=family_id, iin=iin, **{**base, **facts})


def _earner(**facts) -> dict:
    return {
        "employment": "employed", "monthly_income_tiyn": 30_000_000, "contribution_months": 24,
        "insured": True, "polyclinic_attached": True, **facts,
    }  # fmt: skip


@pytest.fixture
async def family(session):
    """Two employed parents, a pupil born 2018, a deceased grandmother; and another family."""
    home = Family(region="astana", housing_owned=True, area_m2=80, rooms=3)
    other = Family(region="almaty_city", housing_owned=True, area_m2=60, rooms=2)
    session.add_all([home, other])
    await session.flush()
    people = {
        "father": _person(home.id, FATHER_IIN, **_earner()),
        "mother": _person(
            home.id, MOTHER_IIN, role="spouse", sex="F", first_name="Айгүл",
            birth_date=date(1990, 6, 5), **_earner(),
        ),
        "pupil": _person(
            home.id, PUPIL_IIN, role="child", sex="F", first_name="Дана",
            birth_date=date(2018, 3, 1), insured=True, polyclinic_attached=True,
        ),
        "grandmother": _person(
            home.id, GRANDMOTHER_IIN, role="dependant", sex="F", birth_date=date(1960, 2, 2),
            date_of_death=date(2025, 1, 10),
        ),
        "other_head": _person(other.id, OTHER_HEAD_IIN, birth_date=date(1970, 3, 3)),
    }  # fmt: skip
    session.add_all(people.values())
    await session.commit()
    return home, other, people


@pytest.fixture
async def breadwinner_family(session):
    """A working pensioner with a group-2 disability, his wife and their 13-year-old."""
    home = Family(region="karaganda", housing_owned=True, area_m2=70, rooms=3)
    session.add(home)
    await session.flush()
    people = {
        "pensioner": _person(
            home.id, PENSIONER_IIN, birth_date=date(1962, 7, 10), disability_group=2,
            disability_established_on=date(2020, 1, 15), **_earner(contribution_months=12),
        ),
        "widow": _person(
            home.id, WIDOW_IIN, role="spouse", sex="F", birth_date=date(1999, 1, 1), **_earner()
        ),
        "teen": _person(home.id, TEEN_IIN, role="child", birth_date=date(2012, 5, 15)),
    }  # fmt: skip
    session.add_all(people.values())
    await session.commit()
    return home, people


async def record(session, *, event_id: str = "ev-1", **event) -> LifeEventResult:
    arguments = {"source": SOURCE, "today": TODAY, "data": {}, **event}
    return await record_life_event(session=session, event_id=event_id, **arguments)


COUNTED = (Person, FactRecord, LifeEvent, EligibilityRun, Decision, Entitlement, EntitlementChange)


async def counts(session) -> dict[str, int]:
    return {
        table.__tablename__: await session.scalar(select(func.count()).select_from(table))
        for table in COUNTED
    }


def programmes(deltas) -> set[tuple[str, int | None]]:
    return {(d.programme, d.person_id) for d in deltas}


def amounts(deltas) -> dict[tuple[str, int | None], int | None]:
    return {(d.programme, d.person_id): d.amount_tiyn for d in deltas}


CHILD = {
    "iin": NEWBORN_IIN,
    "last_name": "Серікбаева",
    "first_name": "Аружан",
    "patronymic": "Асқарқызы",
    "sex": "F",
    "birth_date": "2025-09-01",
}


# --- each kind, applied -----------------------------------------------------------------------


async def test_a_birth_adds_the_child_and_the_family_gets_birth_and_childcare_benefits(
    session, family
):
    home, _other, people = family
    # When the civil registry reports the mother gave birth
    result = await record(
        session, event_id="birth-1", kind="birth", subject_iin=MOTHER_IIN,
        occurred_on=date(2025, 9, 1), data={"child": CHILD},
    )  # fmt: skip
    # Then the child is in the family, with the registry's provenance of the event
    child = await session.scalar(select(Person).where(Person.iin == NEWBORN_IIN))
    assert (child.family_id, child.role, child.sex) == (home.id, "child", "F")
    assert (child.birth_date, child.patronymic, child.language) == (
        date(2025, 9, 1), "Асқарқызы", "kk",
    )  # fmt: skip
    assert child.provenance["persons"] == {
        "source": SOURCE, "as_of": "2025-09-01", "event_id": "birth-1",
    }  # fmt: skip
    # and the fact and the event are kept, the event pointing at the family's re-evaluation
    fact = await session.scalar(select(FactRecord).where(FactRecord.record_key == "event:birth-1"))
    assert (fact.kind, fact.person_id, fact.source, fact.as_of) == (
        "persons", child.id, SOURCE, date(2025, 9, 1),
    )  # fmt: skip
    event = await session.scalar(select(LifeEvent).where(LifeEvent.event_id == "birth-1"))
    assert (event.kind, event.person_id, event.family_id) == ("birth", people["mother"].id, home.id)
    assert len(event.payload_hash) == 64 and event.run_id == result.run_id
    run = await session.get(EligibilityRun, result.run_id)
    assert (run.scope, run.family_id, run.evaluated_on) == ("family", home.id, TODAY)
    # and the newborn, the family's second child, brings the birth and childcare benefits
    assert not result.replayed and result.family_id == home.id
    new = amounts(result.new)
    assert new[("BIRTH_BENEFIT", child.id)] == 38 * MRP
    # 40% of the higher parental income (300,000 tenge) beats the 2nd-child minimum of 6.81 MRP
    assert new[("CHILDCARE_TO_1_5", child.id)] == 12_000_000
    assert {"BIRTH_BENEFIT", "CHILDCARE_TO_1_5"} <= set(result.newly_eligible)
    held = await session.scalars(select(Entitlement).where(Entitlement.family_id == home.id))
    assert {(e.programme, e.person_id) for e in held} >= programmes(result.new)


async def test_a_death_ends_the_benefits_and_brings_the_funeral_and_breadwinner_payments(
    session, breadwinner_family
):
    _home, people = breadwinner_family
    pensioner = people["pensioner"]
    # Given the family's entitlements before the event
    before = await record(
        session, event_id="enrol-1", kind="school_enrolment", subject_iin=TEEN_IIN,
        occurred_on=date(2025, 9, 1), data={"school_id": "krg-school-12", "school_grade": 8},
    )  # fmt: skip
    assert ("DISABILITY_BENEFIT", pensioner.id) in programmes(before.new)
    # When the civil registry reports the pensioner's death
    result = await record(
        session, event_id="death-1", kind="death", subject_iin=PENSIONER_IIN,
        occurred_on=date(2025, 9, 10),
    )  # fmt: skip
    # Then he is recorded as deceased, and the family gets the funeral payment (he was a
    # pensioner with a disability) and the loss-of-breadwinner payment (a child depends on it)
    assert pensioner.date_of_death == date(2025, 9, 10)
    assert pensioner.provenance["death"]["event_id"] == "death-1"
    new = amounts(result.new)
    assert new[("FUNERAL_PAYMENT", pensioner.id)] == 20_603_680  # 52.4 MRP
    assert ("LOSS_OF_BREADWINNER", None) in new
    assert {"FUNERAL_PAYMENT", "LOSS_OF_BREADWINNER"} <= set(result.newly_eligible)
    # and his disability benefit ends
    assert ("DISABILITY_BENEFIT", pensioner.id) in programmes(result.ended)
    assert all(d.amount_tiyn is None for d in result.ended)


async def test_a_job_lost_sets_employment_and_brings_the_job_loss_payment(session, family):
    _home, _other, people = family
    father = people["father"]
    result = await record(
        session, kind="job_lost", subject_iin=FATHER_IIN, occurred_on=date(2025, 9, 5),
        data={"registered_unemployed": True},
    )  # fmt: skip
    assert (father.employment, father.job_lost_on, father.registered_unemployed) == (
        "job_lost", date(2025, 9, 5), True,
    )  # fmt: skip
    assert father.provenance["employment"] == {
        "source": SOURCE, "as_of": "2025-09-05", "event_id": "ev-1",
    }  # fmt: skip
    assert ("JOB_LOSS", father.id) in programmes(result.new)
    fact = await session.scalar(select(FactRecord).where(FactRecord.record_key == "event:ev-1"))
    assert fact.kind == "employment" and fact.payload["status"] == "job_lost"


async def test_a_disability_established_sets_the_facts_and_brings_the_benefit(session, family):
    _home, _other, people = family
    mother = people["mother"]
    result = await record(
        session, kind="disability_established", subject_iin=MOTHER_IIN,
        occurred_on=date(2025, 8, 20), data={"disability_group": 2, "capacity_loss_pct": 40},
    )  # fmt: skip
    assert (
        mother.disability_group, mother.disability_child, mother.disability_established_on,
        mother.capacity_loss_pct,
    ) == (2, False, date(2025, 8, 20), 40)  # fmt: skip
    assert ("DISABILITY_BENEFIT", mother.id) in programmes(result.new)


async def test_a_disability_of_a_child_is_a_childhood_disability_unless_told(session, family):
    _home, _other, people = family
    pupil = people["pupil"]
    result = await record(
        session, kind="disability_established", subject_iin=PUPIL_IIN,
        occurred_on=date(2025, 9, 2), data={"disability_group": 3},
    )  # fmt: skip
    assert (pupil.disability_group, pupil.disability_child, pupil.capacity_loss_pct) == (3, True, 0)
    assert ("DISABLED_CHILD_CARER", pupil.id) in programmes(result.new)


async def test_a_school_enrolment_sets_the_school(session, family):
    _home, _other, people = family
    pupil = people["pupil"]
    pupil.kindergarten = True
    await session.commit()
    result = await record(
        session, kind="school_enrolment", subject_iin=PUPIL_IIN, occurred_on=date(2025, 9, 1),
        data={"school_id": "astana-school-45", "school_grade": 1},
    )  # fmt: skip
    assert (pupil.school_id, pupil.school_grade, pupil.kindergarten) == (
        "astana-school-45", 1, False,
    )  # fmt: skip
    assert pupil.provenance["education"]["event_id"] == "ev-1"
    assert ("SCHOOL_MEALS", pupil.id) in programmes(result.new)


async def test_an_award_brings_the_mothers_benefit(session, family):
    _home, _other, people = family
    mother = people["mother"]
    result = await record(
        session, kind="award", subject_iin=MOTHER_IIN, occurred_on=date(2025, 6, 1),
        data={"award": "altyn_alqa"},
    )  # fmt: skip
    assert mother.award == "altyn_alqa"
    assert amounts(result.new)[("MOTHER_AWARD", mother.id)] == 2_516_480  # 6.4 MRP


async def test_a_kandas_status_is_granted_and_revoked(session, family):
    _home, _other, people = family
    mother = people["mother"]
    granted = await record(
        session, event_id="k-1", kind="kandas_status_changed", subject_iin=MOTHER_IIN,
        occurred_on=date(2025, 9, 1), data={"kandas_until": date(2025, 10, 1)},
    )  # fmt: skip
    assert mother.kandas_until == date(2025, 10, 1)
    assert ("KANDAS_EXPIRY_NOTICE", mother.id) in programmes(granted.new)
    revoked = await record(
        session, event_id="k-2", kind="kandas_status_changed", subject_iin=MOTHER_IIN,
        occurred_on=date(2025, 9, 2), data={"kandas_until": None},
    )  # fmt: skip
    assert mother.kandas_until is None
    assert ("KANDAS_EXPIRY_NOTICE", mother.id) in programmes(revoked.ended)


async def test_an_event_older_than_the_fact_held_is_kept_but_does_not_replace_it(session, family):
    _home, _other, people = family
    mother = people["mother"]
    await record(
        session, event_id="a-new", kind="award", subject_iin=MOTHER_IIN,
        occurred_on=date(2025, 6, 1), data={"award": "altyn_alqa"},
    )  # fmt: skip
    result = await record(
        session, event_id="a-old", kind="award", subject_iin=MOTHER_IIN,
        occurred_on=date(2024, 6, 1), data={"award": "kumis_alqa"},
    )  # fmt: skip
    assert mother.award == "altyn_alqa"
    assert (result.new, result.changed, result.ended) == ((), (), ())
    assert await session.scalar(select(FactRecord).where(FactRecord.record_key == "event:a-old"))


# --- idempotency ------------------------------------------------------------------------------


JOB_LOST = {
    "event_id": "labour-77",
    "kind": "job_lost",
    "subject_iin": FATHER_IIN,
    "occurred_on": date(2025, 9, 5),
    "data": {"registered_unemployed": True},
}


async def test_the_same_event_again_returns_the_first_result_and_changes_nothing(session, family):
    first = await record(session, **JOB_LOST)
    written = await counts(session)
    # The same content, with an optional field spelled out, is the same event
    again = await record(session, **{**JOB_LOST, "data": {"registered_unemployed": True}})
    assert again.replayed and not first.replayed
    assert (again.run_id, again.new, again.changed, again.ended) == (
        first.run_id, first.new, first.changed, first.ended,
    )  # fmt: skip
    assert await counts(session) == written


async def test_a_reused_event_id_with_other_content_is_refused(session, family):
    await record(session, **JOB_LOST)
    written = await counts(session)
    with pytest.raises(EventRefused) as refused:
        await record(session, **{**JOB_LOST, "occurred_on": date(2025, 9, 6)})
    assert refused.value.code == EventCode.EVENT_ID_REUSED
    with pytest.raises(EventRefused) as refused:
        await record(session, **{**JOB_LOST, "source": "enbek"})
    assert refused.value.code == EventCode.EVENT_ID_REUSED
    assert await counts(session) == written


async def test_a_replayed_death_is_not_refused_as_an_event_for_a_dead_person(session, family):
    death = {"event_id": "d-1", "kind": "death", "subject_iin": FATHER_IIN}
    first = await record(session, occurred_on=date(2025, 9, 1), **death)
    again = await record(session, occurred_on=date(2025, 9, 1), **death)
    assert again.replayed and again.run_id == first.run_id


async def test_a_concurrent_delivery_of_the_same_event_is_a_replay(session, family, monkeypatch):
    # Given an event recorded by one delivery
    from familymap import events

    first = await record(session, **JOB_LOST)
    written = await counts(session)
    # When a second delivery did not see it at its first look (both ran at once) and only
    # finds it when its own insert of the event id is refused
    looks = []

    async def too_early(session, event_id):
        looks.append(event_id)
        return None if len(looks) == 1 else await held_event(session, event_id)

    held_event = events._held_event
    monkeypatch.setattr(events, "_held_event", too_early)
    again = await record(session, **JOB_LOST)
    # Then it replays the first outcome and writes nothing
    assert len(looks) == 2
    assert again.replayed and again.run_id == first.run_id
    assert await counts(session) == written


async def test_nulls_for_fields_the_kind_does_not_use_are_ignored(session, family):
    result = await record(
        session, kind="death", subject_iin=FATHER_IIN, occurred_on=date(2025, 9, 1),
        data={"child": None, "school_grade": None},
    )  # fmt: skip
    event = await session.scalar(select(LifeEvent).where(LifeEvent.event_id == result.event_id))
    assert event.payload["data"] == {}


# --- refusals ---------------------------------------------------------------------------------


def child(**changes) -> dict:
    return {"child": {**CHILD, **changes}}


REFUSALS = [
    pytest.param(
        {"kind": "job_lost", "subject_iin": STRANGER_IIN}, EventCode.UNKNOWN_PERSON, id="unknown"
    ),
    pytest.param(
        {"kind": "job_lost", "subject_iin": "880412300012"}, EventCode.INVALID_IIN, id="bad-iin"
    ),
    pytest.param(
        {"kind": "birth", "data": child(iin="250901500012")}, EventCode.INVALID_IIN,
        id="bad-child-iin",
    ),
    pytest.param(
        {"kind": "job_lost", "occurred_on": TODAY + timedelta(days=1)}, EventCode.FUTURE_DATE,
        id="future",
    ),
    pytest.param({"kind": "marriage"}, EventCode.BAD_EVENT_KIND, id="kind"),
    pytest.param(
        {"kind": "job_lost", "data": {"salary": 1}}, EventCode.BAD_FIELD, id="unknown-field"
    ),
    pytest.param(
        {"kind": "disability_established", "data": {"disability_group": 4}}, EventCode.BAD_FIELD,
        id="group",
    ),
    pytest.param(
        {"kind": "disability_established", "data": {}}, EventCode.BAD_FIELD, id="no-group"
    ),
    pytest.param({"kind": "award", "data": {"award": "gold"}}, EventCode.BAD_FIELD, id="award"),
    pytest.param(
        {"kind": "school_enrolment", "data": {"school_id": "s-1", "school_grade": 12}},
        EventCode.BAD_FIELD, id="grade",
    ),
    pytest.param(
        {"kind": "job_lost", "data": {"registered_unemployed": "yes"}}, EventCode.BAD_FIELD,
        id="not-a-boolean",
    ),
    pytest.param({"kind": "kandas_status_changed"}, EventCode.BAD_FIELD, id="no-kandas-until"),
    pytest.param({"kind": "birth", "data": {}}, EventCode.BAD_FIELD, id="no-child"),
    pytest.param(
        {"kind": "birth", "data": child(birth_date="2025-08-30")}, EventCode.BAD_FIELD,
        id="birth-date-differs",
    ),
    pytest.param({"kind": "birth", "data": child(sex="X")}, EventCode.BAD_FIELD, id="child-sex"),
    pytest.param({"event_id": "x" * 101, "kind": "death"}, EventCode.BAD_FIELD, id="long-id"),
    pytest.param(
        {"kind": "job_lost", "subject_iin": GRANDMOTHER_IIN}, EventCode.PERSON_DECEASED,
        id="deceased",
    ),
    pytest.param(
        {"kind": "death", "subject_iin": GRANDMOTHER_IIN}, EventCode.PERSON_DECEASED,
        id="dies-twice",
    ),
    pytest.param(
        {"kind": "birth", "data": child(iin=OTHER_HEAD_IIN)}, EventCode.PERSON_IN_TWO_FAMILIES,
        id="two-families",
    ),
    pytest.param(
        {"kind": "birth", "data": child(iin=PUPIL_IIN)}, EventCode.DUPLICATE_PERSON,
        id="duplicate",
    ),
    pytest.param(
        {
            "kind": "birth", "subject_iin": FATHER_IIN, "occurred_on": date(1989, 1, 1),
            "data": child(birth_date="1989-01-01"),
        },
        EventCode.CHILD_OLDER_THAN_PARENT, id="older-than-parent",
    ),
    pytest.param(
        {"kind": "death", "occurred_on": date(1980, 1, 1)}, EventCode.DEATH_BEFORE_BIRTH,
        id="death-before-birth",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("event", "code"), REFUSALS)
async def test_a_refused_event_has_a_stable_code_and_leaves_nothing_written(
    session, family, event, code
):
    # Given the registry as it stands
    _home, _other, people = family
    father_id = people["father"].id
    before = await counts(session)
    event = {
        "subject_iin": MOTHER_IIN, "occurred_on": date(2025, 9, 1), "data": {}, **event,
    }  # fmt: skip
    # When the event is refused
    with pytest.raises(EventRefused) as refused:
        await record(session, **event)
    assert refused.value.code == code
    # Then no IIN travels back whole, and nothing is written even if the caller commits
    for iin in (MOTHER_IIN, FATHER_IIN, OTHER_HEAD_IIN, PUPIL_IIN, STRANGER_IIN, GRANDMOTHER_IIN):
        assert iin not in str(refused.value)
    await session.commit()
    assert await counts(session) == before
    session.expire_all()
    father = await session.get(Person, father_id)
    assert (father.date_of_death, father.employment) == (None, "employed")
