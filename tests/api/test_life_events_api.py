"""`recordLifeEvent`: source systems push life events; refusals are data with stable codes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.auth import Role
from familymap.iin import is_valid_iin
from familymap.tables import Family, LifeEvent, Person
from wallet.offer_tables import Offer

RECORD_LIFE_EVENT = """
mutation Record($input: LifeEventInput!) {
  recordLifeEvent(input: $input) {
    __typename
    ... on LifeEventRecorded {
      eventId kind replayed familyId personId occurredOn newlyEligibleProgrammes
      newEntitlements { programme personId amountTiyn previousAmountTiyn periodStart periodEnd }
      changedEntitlements { programme personId amountTiyn previousAmountTiyn }
      endedEntitlements { programme personId amountTiyn previousAmountTiyn }
    }
    ... on LifeEventRefused { code message }
  }
}
"""

FATHER_IIN = "880412300011"
MOTHER_IIN = "900605400013"
NEWBORN_IIN = "250901500011"
STRANGER_IIN = "880412300021"
CITIZEN_IIN = "900101300126"
# The app evaluates on the (pinned, tests/clock.py) date; events are dated relative to it.
TODAY = date.today()
BORN = TODAY - timedelta(days=10)


def test_fixture_iins_are_valid():
    assert all(is_valid_iin(iin) for iin in (FATHER_IIN, MOTHER_IIN, NEWBORN_IIN, STRANGER_IIN))


@pytest.fixture
async def parents(session) -> tuple[Family, Person, Person]:
    family = Family(region="astana", housing_owned=True, area_m2=80, rooms=3)
    session.add(family)
    await session.flush()
    earner = {
        "employment": "employed", "monthly_income_tiyn": 30_000_000, "contribution_months": 24,
        "insured": True, "polyclinic_attached": True, "language": "kk",
    }  # fmt: skip
    father = Person(
        family_id=family.id, iin=FATHER_IIN, role="head", last_name="Серікбаев",
        first_name="Асқар", birth_date=date(1988, 4, 12), sex="M", **earner,
    )  # fmt: skip
    mother = Person(
        family_id=family.id, iin=MOTHER_IIN, role="spouse", last_name="Серікбаева",
        first_name="Айгүл", birth_date=date(1990, 6, 5), sex="F", **earner,
    )  # fmt: skip
    session.add_all([father, mother])
    await session.commit()
    return family, father, mother


def birth(event_id: str = "gbdfl-birth-1", **changes) -> dict:
    return {
        "input": {
            "eventId": event_id,
            "kind": "BIRTH",
            "occurredOn": BORN.isoformat(),
            "subjectIin": MOTHER_IIN,
            "child": {
                "iin": NEWBORN_IIN, "lastName": "Серікбаева", "firstName": "Аружан",
                "patronymic": "Асқарқызы", "sex": "F", "birthDate": BORN.isoformat(),
            },
            **changes,
        }
    }  # fmt: skip


@pytest.fixture
def source_token(token_for) -> str:
    return token_for(Role.SOURCE_SYSTEM, "gbdfl")


async def life_events(session) -> int:
    return await session.scalar(select(func.count()).select_from(LifeEvent))


async def test_a_birth_is_recorded_and_the_family_offered_its_benefits(
    gql, source_token, session, parents
):
    family, _father, mother = parents
    # When the civil registry pushes a birth
    body = await gql(RECORD_LIFE_EVENT, birth(), token=source_token)
    # Then the event is recorded, and the newborn's benefits are new entitlements
    result = body["data"]["recordLifeEvent"]
    child = await session.scalar(select(Person).where(Person.iin == NEWBORN_IIN))
    assert "errors" not in body
    assert result["__typename"] == "LifeEventRecorded"
    assert (result["eventId"], result["kind"], result["replayed"]) == (
        "gbdfl-birth-1", "BIRTH", False,
    )  # fmt: skip
    assert (result["familyId"], result["personId"]) == (str(family.id), str(mother.id))
    assert result["occurredOn"] == BORN.isoformat()
    new = {(e["programme"], e["personId"]): e for e in result["newEntitlements"]}
    for programme in ("BIRTH_BENEFIT", "CHILDCARE_TO_1_5"):
        entitlement = new[(programme, str(child.id))]
        assert entitlement["amountTiyn"] > 0 and entitlement["previousAmountTiyn"] is None
        assert programme in result["newlyEligibleProgrammes"]
    assert new[("BIRTH_BENEFIT", str(child.id))]["periodStart"] == BORN.isoformat()
    # and the pushing system is the event's source
    event = await session.scalar(select(LifeEvent).where(LifeEvent.event_id == "gbdfl-birth-1"))
    assert event.source == "gbdfl"
    # and in the same transaction the father (the head) was offered both, once
    offers = (await session.scalars(select(Offer).where(Offer.family_id == family.id))).all()
    assert sorted(o.programme for o in offers) == ["BIRTH_BENEFIT", "CHILDCARE_TO_1_5"]
    assert {o.recipient_person_id for o in offers} == {_father.id}
    await gql(RECORD_LIFE_EVENT, birth(), token=source_token)  # a replay makes no second offer
    assert await session.scalar(select(func.count()).select_from(Offer)) == 2


async def test_the_same_event_again_is_a_replay_with_the_same_result(
    gql, source_token, session, parents
):
    first = await gql(RECORD_LIFE_EVENT, birth(), token=source_token)
    again = await gql(RECORD_LIFE_EVENT, birth(), token=source_token)
    first_result, again_result = first["data"]["recordLifeEvent"], again["data"]["recordLifeEvent"]
    assert again_result["replayed"] is True
    assert {**again_result, "replayed": False} == first_result
    assert await life_events(session) == 1


async def test_a_reused_event_id_is_refused_as_data(gql, source_token, session, parents):
    await gql(RECORD_LIFE_EVENT, birth(), token=source_token)
    other = birth(occurredOn=(BORN - timedelta(days=1)).isoformat())
    other["input"]["child"]["birthDate"] = other["input"]["occurredOn"]
    body = await gql(RECORD_LIFE_EVENT, other, token=source_token)
    assert body["data"]["recordLifeEvent"]["code"] == "EVENT_ID_REUSED"


async def test_an_unknown_person_is_refused_as_data_and_nothing_is_written(
    gql, source_token, session, parents
):
    # Given an event about a person the registry does not hold
    event = {
        "input": {
            "eventId": "labour-1", "kind": "JOB_LOST", "occurredOn": TODAY.isoformat(),
            "subjectIin": STRANGER_IIN, "registeredUnemployed": True,
        }
    }  # fmt: skip
    # When it is pushed
    body = await gql(RECORD_LIFE_EVENT, event, token=source_token)
    # Then it is refused as data with a stable code, the IIN masked, and nothing is written;
    # without Accept-Language the message is in the default language, Russian
    assert "errors" not in body
    refused = body["data"]["recordLifeEvent"]
    assert refused == {
        "__typename": "LifeEventRefused",
        "code": "UNKNOWN_PERSON",
        "message": "Нет человека с ИИН 88********21",
    }
    assert STRANGER_IIN not in str(body)
    assert await life_events(session) == 0


async def record_in(client, token: str, variables: dict, language: str) -> dict:
    response = await client.post(
        "/graphql",
        json={"query": RECORD_LIFE_EVENT, "variables": variables},
        headers={"authorization": f"Bearer {token}", "accept-language": language},
    )
    return response.json()["data"]["recordLifeEvent"]


@pytest.mark.parametrize(
    ("language", "unknown_person", "future_date"),
    [
        (
            "kk-KZ,kk;q=0.9",
            "ЖСН-і 88********21 адам жоқ",
            "occurred_on бүгінгі күннен кейін (2026\u202fж. 18 қараша)",
        ),
        (
            "ru-RU",
            "Нет человека с ИИН 88********21",
            "occurred_on позже сегодняшнего дня (18 ноября 2026\u202fг.)",
        ),
        (
            "en-US,en;q=0.9",
            "no person with IIN 88********21",
            "occurred_on is after today (November 18, 2026)",
        ),
    ],
)
async def test_a_refused_event_is_said_in_the_callers_language(
    client, source_token, session, parents, language, unknown_person, future_date
):
    # Given an event about a person the registry does not hold, and a birth dated tomorrow
    stranger = {
        "input": {
            "eventId": "labour-2", "kind": "JOB_LOST", "occurredOn": TODAY.isoformat(),
            "subjectIin": STRANGER_IIN,
        }
    }  # fmt: skip
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    future = birth(occurredOn=tomorrow)

    # When a source system pushes them, asking for its language
    refused_person = await record_in(client, source_token, stranger, language)
    refused_date = await record_in(client, source_token, future, language)

    # Then each refusal keeps its stable code and is written in that language, the date of
    # today in the language's own form (the pinned day, tests/clock.py)
    assert refused_person == {
        "__typename": "LifeEventRefused", "code": "UNKNOWN_PERSON", "message": unknown_person,
    }  # fmt: skip
    assert refused_date == {
        "__typename": "LifeEventRefused", "code": "FUTURE_DATE", "message": future_date,
    }  # fmt: skip
    assert await life_events(session) == 0


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"kind": "JOB_LOST", "schoolGrade": 3}, "BAD_FIELD"),  # another kind's field
        ({"kind": "DISABILITY_ESTABLISHED", "child": None}, "BAD_FIELD"),  # no group
        ({"occurredOn": (TODAY + timedelta(days=1)).isoformat()}, "FUTURE_DATE"),
        ({"kind": "DEATH", "child": None, "occurredOn": "1980-01-01"}, "DEATH_BEFORE_BIRTH"),
    ],
)
async def test_bad_events_are_refused_as_data(gql, source_token, session, parents, changes, code):
    body = await gql(RECORD_LIFE_EVENT, birth(**changes), token=source_token)
    assert body["data"]["recordLifeEvent"]["code"] == code
    assert await life_events(session) == 0


@pytest.mark.parametrize(
    ("role", "subject"), [(Role.CITIZEN, CITIZEN_IIN), (Role.OPERATOR, "op-1")]
)
async def test_other_roles_are_forbidden(gql, token_for, session, parents, role, subject):
    body = await gql(RECORD_LIFE_EVENT, birth(), token=token_for(role, subject))
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert await life_events(session) == 0


async def test_anonymous_is_unauthenticated(gql, session, parents):
    body = await gql(RECORD_LIFE_EVENT, birth())
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert await life_events(session) == 0


@pytest.mark.parametrize("where", ["subjectIin", "child"])
async def test_a_bad_iin_is_invalid_iin(gql, source_token, session, parents, where):
    variables = birth()
    bad = "900605400012"
    if where == "child":
        variables["input"]["child"]["iin"] = bad
    else:
        variables["input"]["subjectIin"] = bad
    body = await gql(RECORD_LIFE_EVENT, variables, token=source_token)
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_IIN"]
    assert bad not in str(body)
    assert await life_events(session) == 0


async def test_mutations_are_refused_over_get(client, source_token, session, parents):
    response = await client.get(
        "/graphql",
        params={"query": RECORD_LIFE_EVENT, "variables": '{"input": {}}'},
        headers={"authorization": f"Bearer {source_token}"},
    )
    # GraphQL over HTTP: a mutation over GET is 405, and the answer says what is allowed.
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert await life_events(session) == 0


async def test_today_is_kazakhstans_day_not_the_utc_date(gql, token_for, session, parents):
    """At 01:00 in Astana (20:00 UTC the day before) a birth of today in Astana is not in the
    future; one of the day after is (familymap.clock.astana_today)."""
    astana_night = datetime.combine(TODAY, time(20, 0), tzinfo=UTC)
    astana_day = TODAY + timedelta(days=1)
    with time_machine.travel(astana_night, tick=True):
        token = token_for(Role.SOURCE_SYSTEM, "gbdfl")
        tomorrow = await gql(
            RECORD_LIFE_EVENT,
            birth(occurredOn=(astana_day + timedelta(days=1)).isoformat()),
            token=token,
        )
        today = await gql(
            RECORD_LIFE_EVENT,
            birth(
                occurredOn=astana_day.isoformat(),
                child={**birth()["input"]["child"], "birthDate": astana_day.isoformat()},
            ),
            token=token,
        )
    assert tomorrow["data"]["recordLifeEvent"]["code"] == "FUTURE_DATE"
    assert today["data"]["recordLifeEvent"]["__typename"] == "LifeEventRecorded", today
    assert today["data"]["recordLifeEvent"]["occurredOn"] == astana_day.isoformat()
