"""The audit trail through the API: reads and changes are recorded in their transaction; an
operator lists a person's trail; a citizen sees who accessed their family's data."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from app.auth import Role
from app.cli.commands import cli
from app.db import create_engine, create_session_factory
from app.migrate import upgrade_to_head
from app.settings import Settings
from familymap.audit import record_access
from familymap.audit_tables import AuditRecord
from familymap.tables import Family, Person

PERSON = "query Person($iin: IIN!) { person(iin: $iin) { lastName } }"
AUDIT = """
query Trail($iin: IIN!) {
  auditRecords(subjectIin: $iin) {
    edges { node { seq actorRole actorId familyId action what operation requestId recordedAt } }
  }
}
"""


def nodes(connection: dict) -> list[dict]:
    return [edge["node"] for edge in connection["edges"]]


MY_DATA_ACCESS = """
query MyDataAccess($first: Int! = 50, $after: String) {
  myDataAccess(first: $first, after: $after) {
    edges { cursor node { actorRole actorId action what operation count } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
RECORD = """
mutation Record($input: LifeEventInput!) {
  recordLifeEvent(input: $input) { __typename ... on LifeEventRefused { code } }
}
"""
HEAD_IIN = "880412300011"
SPOUSE_IIN = "900605400013"
STRANGER_IIN = "850615400016"
runner = CliRunner()


def person(family_id: int, iin: str, role: str, first_name: str, born: date) -> Person:
    return Person(
        family_id=family_id, iin=iin, role=role, last_name="Серікбаев", first_name=first_name,
        birth_date=born, sex="M" if role == "head" else "F", language="kk",
        employment="employed", monthly_income_tiyn=30_000_000,
    )  # fmt: skip


@pytest.fixture
async def families(session) -> tuple[Family, Family]:
    ours, theirs = Family(region="astana"), Family(region="almaty")
    session.add_all([ours, theirs])
    await session.flush()
    session.add_all(
        [
            person(ours.id, HEAD_IIN, "head", "Асқар", date(1988, 4, 12)),
            person(ours.id, SPOUSE_IIN, "spouse", "Айгүл", date(1990, 6, 5)),
            person(theirs.id, STRANGER_IIN, "head", "Сәуле", date(1985, 6, 15)),
        ]
    )
    await session.commit()
    return ours, theirs


def accesses(body: dict) -> list[dict]:
    """The entries of a myDataAccess page, without their counts."""
    nodes = [edge["node"] for edge in body["data"]["myDataAccess"]["edges"]]
    return [{k: v for k, v in node.items() if k != "count"} for node in nodes]


async def audit_count(session) -> int:
    return await session.scalar(select(func.count()).select_from(AuditRecord))


async def test_an_operator_lookup_is_recorded_and_listed(client, token_for, families):
    ours, _ = families
    operator = {"authorization": f"Bearer {token_for(Role.OPERATOR, 'op-7')}"}
    # When an operator looks the spouse up
    looked_up = await client.post(
        "/graphql", json={"query": PERSON, "variables": {"iin": SPOUSE_IIN}}, headers=operator
    )
    assert looked_up.json()["data"]["person"]["lastName"] == "Серікбаев"
    # Then the spouse's trail shows who, what, through which operation and request
    trail = await client.post(
        "/graphql", json={"query": AUDIT, "variables": {"iin": SPOUSE_IIN}}, headers=operator
    )
    [record] = nodes(trail.json()["data"]["auditRecords"])
    assert {k: record[k] for k in ("actorRole", "actorId", "action", "what", "operation")} == {
        "actorRole": "OPERATOR", "actorId": "op-7", "action": "read",
        "what": "registry person", "operation": "Person",
    }  # fmt: skip
    assert record["familyId"] == str(ours.id)
    assert record["requestId"] == looked_up.headers["x-request-id"]


async def test_reading_the_trail_is_itself_recorded(gql, token_for, families, session):
    before = await audit_count(session)
    await gql(AUDIT, {"iin": SPOUSE_IIN}, token=token_for(Role.OPERATOR, "op-7"))
    again = await gql(AUDIT, {"iin": SPOUSE_IIN}, token=token_for(Role.OPERATOR, "op-7"))
    assert await audit_count(session) == before + 2
    assert [r["what"] for r in nodes(again["data"]["auditRecords"])] == ["audit trail"]


async def test_a_life_event_is_recorded_as_a_write(gql, token_for, families, session):
    ours, _ = families
    event = {
        "input": {
            "eventId": "labour-audit-1", "kind": "JOB_LOST", "occurredOn": date.today().isoformat(),
            "subjectIin": HEAD_IIN, "registeredUnemployed": True,
        }
    }  # fmt: skip
    body = await gql(RECORD, event, token=token_for(Role.SOURCE_SYSTEM, "labour-ministry"))
    assert body["data"]["recordLifeEvent"]["__typename"] == "LifeEventRecorded"
    trail = await gql(AUDIT, {"iin": HEAD_IIN}, token=token_for(Role.OPERATOR, "op-1"))
    [record] = nodes(trail["data"]["auditRecords"])
    assert (record["actorRole"], record["actorId"], record["action"], record["what"]) == (
        "SOURCE_SYSTEM", "labour-ministry", "write", "life event JOB_LOST",
    )  # fmt: skip
    assert (record["operation"], record["familyId"]) == ("Record", str(ours.id))


async def test_a_refused_change_writes_no_record(gql, token_for, session):
    before = await audit_count(session)
    event = {
        "input": {
            "eventId": "labour-audit-2", "kind": "JOB_LOST", "occurredOn": date.today().isoformat(),
            "subjectIin": "880412300021", "registeredUnemployed": True,
        }
    }  # fmt: skip
    body = await gql(RECORD, event, token=token_for(Role.SOURCE_SYSTEM, "labour-ministry"))
    assert body["data"]["recordLifeEvent"]["code"] == "UNKNOWN_PERSON"
    assert await audit_count(session) == before


async def test_a_citizen_sees_who_accessed_their_data(gql, token_for, families):
    # Given an operator read the spouse's record and a stranger's
    operator = token_for(Role.OPERATOR, "op-7")
    await gql(PERSON, {"iin": SPOUSE_IIN}, token=operator)
    await gql(PERSON, {"iin": STRANGER_IIN}, token=operator)
    # When the spouse asks who accessed their data
    body = await gql(MY_DATA_ACCESS, token=token_for(Role.CITIZEN, SPOUSE_IIN))
    # Then they see the operator's read of them, and nothing about the stranger
    assert accesses(body) == [
        {"actorRole": "OPERATOR", "actorId": "op-7", "action": "read",
         "what": "registry person", "operation": "Person"},
    ]  # fmt: skip


async def test_another_adult_does_not_see_reads_of_a_member_they_do_not_see_fully(
    gql, token_for, families
):
    # Given an operator read the spouse's record (the head sees the spouse's IIN masked)
    await gql(PERSON, {"iin": SPOUSE_IIN}, token=token_for(Role.OPERATOR, "op-7"))
    # When the head asks who accessed their family's data
    body = await gql(MY_DATA_ACCESS, token=token_for(Role.CITIZEN, HEAD_IIN))
    # Then the spouse's record is not theirs to see
    assert accesses(body) == []


async def test_a_citizen_does_not_see_another_familys_trail(gql, token_for, families):
    await gql(PERSON, {"iin": SPOUSE_IIN}, token=token_for(Role.OPERATOR, "op-7"))
    body = await gql(MY_DATA_ACCESS, token=token_for(Role.CITIZEN, STRANGER_IIN))
    assert accesses(body) == []


async def test_a_citizens_own_reads_are_left_out_and_shown_without_identity(
    gql, token_for, families, session
):
    # Given the spouse (a citizen) read something of the head's, and so did the head
    for actor in (SPOUSE_IIN, HEAD_IIN):
        await record_access(
            session=session, key=Settings().audit_key, actor=actor, role="CITIZEN",
            subject_iin=HEAD_IIN, family_id=None, action="read", what="family benefits",
            operation="MyFamily", request_id=None,
        )  # fmt: skip
    await session.commit()
    body = await gql(MY_DATA_ACCESS, token=token_for(Role.CITIZEN, HEAD_IIN))
    # Then the head sees the spouse's read, by role only, and not their own
    assert accesses(body) == [
        {"actorRole": "CITIZEN", "actorId": None, "action": "read",
         "what": "family benefits", "operation": "MyFamily"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("document", "variables", "role", "subject"),
    [
        (AUDIT, {"iin": SPOUSE_IIN}, Role.CITIZEN, SPOUSE_IIN),
        (AUDIT, {"iin": SPOUSE_IIN}, Role.SOURCE_SYSTEM, "gbdfl"),
        (MY_DATA_ACCESS, {}, Role.OPERATOR, "op-1"),
    ],
)
async def test_the_trail_is_only_for_its_roles(
    gql, token_for, families, document, variables, role, subject
):
    body = await gql(document, variables, token=token_for(role, subject))
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


# --- socialwallet audit verify -----------------------------------------------------------


def test_cli_verify_passes_then_finds_an_edit(tmp_path, monkeypatch):
    # Given a database of its own with three committed records
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    settings = Settings()

    async def prepare(tamper: bool) -> None:
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
            async with create_session_factory(engine)() as session, session.begin():
                if tamper:
                    await session.execute(text("DROP TRIGGER audit_records_no_update"))
                    await session.execute(text("UPDATE audit_records SET what = 'x' WHERE seq = 2"))
                    return
                for n in range(3):
                    await record_access(
                        session=session, key=settings.audit_key, actor="op", role="OPERATOR",
                        subject_iin=SPOUSE_IIN, family_id=None, action="read", what=f"#{n}",
                        operation="Person", request_id=None,
                    )  # fmt: skip
        finally:
            await engine.dispose()

    asyncio.run(prepare(tamper=False))
    whole = runner.invoke(cli, ["audit", "verify"])
    assert whole.exit_code == 0, whole.output
    assert '"checked": 3' in whole.output
    # When someone edits record 2 behind the triggers' back
    asyncio.run(prepare(tamper=True))
    broken = runner.invoke(cli, ["audit", "verify"])
    # Then verify names it and fails
    assert broken.exit_code == 1
    assert '"broken_seq": 2' in broken.output and "edited" in broken.output
