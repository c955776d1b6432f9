"""Privacy and abuse, round two (issue 14, items 2-4): who sees which audit record and how
much of it; paging to the first record and collapsed reads; a meal batch in each family's
trail; prescription lookups limited and their misses recorded; a real reason for FALLBACK,
and the operators' report of fallbacks."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.asgi import create_app
from app.auth import Role
from app.cli.commands import cli
from app.db import create_engine, create_session_factory
from app.migrate import upgrade_to_head
from app.settings import Settings
from familymap.audit import record_access, verify_chain
from familymap.audit_tables import AuditRecord
from familymap.tables import Person
from tests.vouchers.vouchers_builders import (
    SCHOOL_DAY,
    family_with_pupil,
    fresh_iin,
    pharmacy,
    school,
)
from vouchers.fallback_report import PRESCRIPTION_MISS
from vouchers.medicines import (
    DispenseRequest,
    PrescriptionInput,
    dispense,
    issue_medicine_voucher,
    record_prescription,
)

ACCESS = """
query($first: Int! = 50, $after: String) {
  myDataAccess(first: $first, after: $after) {
    edges { cursor node { actorRole actorId action what count } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
PRESCRIBE = """
mutation($input: PrescriptionInput!) { recordPrescription(input: $input) {
  __typename ... on VoucherRefused { code }
} }
"""
LOOKUP = "query($x: String!) { prescription(externalId: $x) { drugCode remaining } }"
DISPENSE = """
mutation($input: DispenseMedicineInput!) { dispenseMedicine(input: $input) {
  __typename ... on MedicineDispensed { dispensing { identityMethod } }
  ... on VoucherRefused { code message }
} }
"""
BATCH = """
mutation($items: [RedeemMealInput!]!) { redeemMealsBatch(items: $items) {
  __typename ... on MealBatchResult { served } ... on VoucherRefused { code }
} }
"""
CONSENT = "mutation($c: ID!) { consentToMealVoucher(childId: $c) { __typename } }"
REPORT = """
query($month: Date!) { fallbackReport(month: $month) {
  merchantId pharmacyName dispensings fallbacks fallbackShare lookupMisses
  byReason { reason count }
} }
"""
DRUG = "N02BE01"
runner = CliRunner()


def prescription(external_id: str, patient_iin: str) -> dict:
    return {"input": {"externalId": external_id, "patientIin": patient_iin, "drugCode": DRUG,
                      "quantity": 3, "unitPriceTiyn": 150_000, "validUntil": "2099-01-01",
                      "prescribingOrg": "Polyclinic No. 4"}}  # fmt: skip


def dispensing(external_id: str, **changes) -> dict:
    return {"input": {"idempotencyKey": uuid.uuid4().hex, "prescriptionId": external_id,
                      "drugCode": DRUG, "quantity": 1, "identityMethod": "FACE_ID",
                      **changes}}  # fmt: skip


def nodes(body: dict) -> list[dict]:
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["myDataAccess"]["edges"]]


@pytest.fixture
async def household(session):
    """(parent, spouse, pupil, pharmacy, school, sibling): the parent (head) has a medicines
    voucher; the pupil goes to the school, the sibling to none."""
    family, parent, child = await family_with_pupil(session, chronic=True)
    spouse = Person(
        family_id=family.id, iin="900605400013", role="spouse", last_name="Ахметов",
        first_name="Нұрлан", birth_date=date(1990, 6, 5), sex="M", insured=True,
    )  # fmt: skip
    sibling = Person(
        family_id=family.id, iin=fresh_iin(birth=date(2015, 3, 4)), role="child", last_name="Ахметова",
        first_name="Әсел", birth_date=date(2015, 3, 4), sex="F",
    )  # fmt: skip
    session.add_all([spouse, sibling])
    chemist = await pharmacy(session)
    canteen = await school(session)
    await issue_medicine_voucher(
        session=session, person_id=parent.id, consented_by=parent.id, channel="app"
    )
    await session.commit()
    return parent, spouse, child, chemist, canteen, sibling


# --- item 2: who sees which record, and how much of it ----------------------------------


async def test_a_parents_prescription_is_not_shown_to_the_child_or_the_spouse(
    gql, token_for, household
):
    parent, spouse, child, chemist, *_ = household
    at_pharmacy = token_for(Role.PHARMACY, str(chemist.id))
    # Given the parent's prescription recorded, looked up and dispensed against
    await gql(
        PRESCRIBE, prescription("RX-2-SP", parent.iin), token=token_for(Role.SOURCE_SYSTEM, "eisz")
    )
    assert (await gql(LOOKUP, {"x": "RX-2-SP"}, token=at_pharmacy))["data"]["prescription"]
    done = await gql(DISPENSE, dispensing("RX-2-SP"), token=at_pharmacy)
    assert done["data"]["dispenseMedicine"]["__typename"] == "MedicineDispensed"
    # When the child and the spouse ask who accessed their data
    seen_by_child = nodes(await gql(ACCESS, token=token_for(Role.CITIZEN, child.iin)))
    seen_by_spouse = nodes(await gql(ACCESS, token=token_for(Role.CITIZEN, spouse.iin)))
    # Then neither sees anything of the parent's medicines
    for seen in (seen_by_child, seen_by_spouse):
        assert not [n for n in seen if "RX-2-SP" in n["what"] or DRUG in n["what"]]
        assert not [n for n in seen if n["what"].startswith(("prescription", "medicine"))]
    # while the parent sees every detail of their own
    own = [n["what"] for n in nodes(await gql(ACCESS, token=token_for(Role.CITIZEN, parent.iin)))]
    assert {"prescription recorded: RX-2-SP", "prescription looked up: RX-2-SP",
            f"medicine dispensed: {DRUG}"} <= set(own)  # fmt: skip


async def test_a_parent_sees_that_a_childs_prescription_was_read_but_not_which(
    gql, token_for, household
):
    parent, _, child, chemist, *_ = household
    # Given a prescription for the child, recorded and looked up by a pharmacy
    await gql(
        PRESCRIBE,
        prescription("RX-CHILD-7", child.iin),
        token=token_for(Role.SOURCE_SYSTEM, "eisz"),
    )
    await gql(LOOKUP, {"x": "RX-CHILD-7"}, token=token_for(Role.PHARMACY, str(chemist.id)))
    # When the parent (who sees the child fully) and the child look
    by_parent = [
        n["what"] for n in nodes(await gql(ACCESS, token=token_for(Role.CITIZEN, parent.iin)))
    ]
    by_child = [
        n["what"] for n in nodes(await gql(ACCESS, token=token_for(Role.CITIZEN, child.iin)))
    ]
    # Then the parent sees what happened without the prescription's id; the child sees it all
    assert {"prescription recorded", "prescription looked up"} <= set(by_parent)
    assert not [what for what in by_parent if "RX-CHILD-7" in what]
    assert {"prescription recorded: RX-CHILD-7", "prescription looked up: RX-CHILD-7"} <= set(
        by_child
    )


async def test_a_pharmacys_list_is_recorded_about_each_patient_not_the_family(
    gql, token_for, household
):
    parent, _, child, chemist, *_ = household
    at_pharmacy = token_for(Role.PHARMACY, str(chemist.id))
    await gql(
        PRESCRIBE, prescription("RX-3", parent.iin), token=token_for(Role.SOURCE_SYSTEM, "eisz")
    )
    await gql(DISPENSE, dispensing("RX-3"), token=at_pharmacy)
    # When the pharmacy lists what it dispensed
    assert "errors" not in await gql("{ pharmacyDispensings { id } }", token=at_pharmacy)
    # Then the patient sees the read; the child (to whom the parent's medicines are none of
    # their business) does not
    listed = "pharmacy's dispensings listed"
    by_parent = nodes(await gql(ACCESS, token=token_for(Role.CITIZEN, parent.iin)))
    by_child = nodes(await gql(ACCESS, token=token_for(Role.CITIZEN, child.iin)))
    assert [n["actorId"] for n in by_parent if n["what"] == listed] == [str(chemist.id)]
    assert [n for n in by_child if n["what"] == listed] == []


async def test_a_schools_read_of_a_pupil_is_seen_by_the_pupil_and_the_parents_only(
    gql, token_for, household
):
    parent, spouse, child, _, canteen, sibling = household
    # When the school lists its pupils
    body = await gql("{ schoolPupils { childId } }", token=token_for(Role.SCHOOL, str(canteen.id)))
    assert body["data"]["schoolPupils"] == [{"childId": str(child.id)}]

    async def school_reads(iin: str) -> list[str]:
        seen = nodes(await gql(ACCESS, token=token_for(Role.CITIZEN, iin)))
        return [n["what"] for n in seen if n["actorRole"] == "SCHOOL"]

    # Then the pupil and the head (who sees the child fully) see it; the spouse does too (a
    # parent sees a child fully); the sibling, who sees nothing of a sibling, does not
    for iin in (child.iin, parent.iin, spouse.iin):
        assert await school_reads(iin) == ["school's pupil list read"]
    assert await school_reads(sibling.iin) == []


# --- item 3: paging to the first record, collapsed reads, batches --------------------------


async def test_paging_reaches_the_first_record_with_opaque_cursors(
    gql, token_for, household, session, settings
):
    parent, *_ = household
    # Given 230 changes to the parent's data (writes are never collapsed)
    for n in range(230):
        await record_access(
            session=session, key=settings.audit_key, actor="op-1", role="OPERATOR",
            subject_iin=parent.iin, family_id=None, action="write", what=f"change #{n}",
            operation="Change", request_id=None,
        )  # fmt: skip
    await session.commit()
    token = token_for(Role.CITIZEN, parent.iin)
    # When the parent pages through 100 at a time
    seen, after, pages = [], None, 0
    while True:
        body = await gql(ACCESS, {"first": 100, "after": after}, token=token)
        page = body["data"]["myDataAccess"]
        seen += [edge["node"]["what"] for edge in page["edges"]]
        cursors = [edge["cursor"] for edge in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == cursors[-1]
    # Then every change is there once, newest first, down to the very first
    assert pages == 3
    assert seen == [f"change #{n}" for n in reversed(range(230))]
    # and a cursor says nothing readable by itself
    assert all("change" not in c and not c.isdigit() for c in cursors)


async def test_a_cursor_not_given_out_is_refused(gql, token_for, household):
    parent, *_ = household
    made_up = [b"arrayconnection:3", b"access:9999-12-31:1", b"access:2026-11-18:" + b"9" * 30]
    for after in ["not a cursor", "дата", *(base64.urlsafe_b64encode(t).decode() for t in made_up)]:
        body = await gql(ACCESS, {"after": after}, token=token_for(Role.CITIZEN, parent.iin))
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_repeated_list_reads_cannot_push_a_lookup_out_of_sight(
    gql, token_for, household, session, settings
):
    parent, _, child, _, canteen, *_ = household
    # Given an operator looked the child up, and then the school listed its pupils 250 times
    await gql("query($i: IIN!) { person(iin: $i) { lastName } }", {"i": child.iin},
              token=token_for(Role.OPERATOR, "op-7"))  # fmt: skip
    for _ in range(250):
        await record_access(
            session=session, key=settings.audit_key, actor=str(canteen.id), role="SCHOOL",
            subject_iin=None, family_id=parent.family_id, action="read",
            what="school's pupil list read", operation="SchoolPupils", request_id=None,
        )  # fmt: skip
    await session.commit()
    # When the parent looks at the first page, of 5 entries
    body = await gql(ACCESS, {"first": 5}, token=token_for(Role.CITIZEN, parent.iin))
    # Then the school's reads are one entry with their count, and the lookup is there too
    seen = [(n["actorRole"], n["what"], n["count"]) for n in nodes(body)]
    assert seen == [
        ("SCHOOL", "school's pupil list read", 250),
        ("OPERATOR", "registry person", 1),
    ]
    # and the trail still holds every read, and its chains verify: collapsing changed nothing
    reads = select(func.count()).where(AuditRecord.what == "school's pupil list read")
    assert await session.scalar(reads) == 250
    assert (await verify_chain(session=session, key=settings.audit_key)).ok


async def test_a_meal_batch_is_in_the_familys_trail(gql, token_for, household):
    parent, _, child, _, canteen, *_ = household
    await gql(CONSENT, {"c": str(child.id)}, token=token_for(Role.CITIZEN, parent.iin))
    items = [{"idempotencyKey": f"pb-{n}", "mealType": meal, "servedOn": SCHOOL_DAY.isoformat(),
              "childId": str(child.id)} for n, meal in enumerate(["BREAKFAST", "LUNCH"])]  # fmt: skip
    school_token = token_for(Role.SCHOOL, str(canteen.id))
    # When the canteen sends an offline batch of the child's two meals
    body = await gql(BATCH, {"items": items}, token=school_token)
    assert body["data"]["redeemMealsBatch"]["served"] == 2, body
    # Then the parent and the child see one record of it, by the school
    for iin in (parent.iin, child.iin):
        seen = nodes(await gql(ACCESS, token=token_for(Role.CITIZEN, iin)))
        batches = [n for n in seen if n["what"].startswith("meal batch")]
        assert [(n["actorId"], n["action"]) for n in batches] == [(str(canteen.id), "write")]
        assert batches[0]["what"].startswith("meal batch: 2 served, 0 replayed")


# --- item 4: prescription lookups, misses, FALLBACK reasons, the report ---------------------


@pytest.fixture
async def lookup_limited_client(settings, engine, session_factory):
    limited = settings.model_copy(update={"rate_limit_prescription_lookups_per_minute": 5})
    app = create_app(limited, engine=engine, session_factory=session_factory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_prescription_lookups_are_limited_per_staff_token(
    lookup_limited_client, token_for, household
):
    _, _, _, chemist, *_ = household
    headers = {"authorization": f"Bearer {token_for(Role.PHARMACY, str(chemist.id))}"}

    async def look(guess: str) -> dict:
        payload = {"query": LOOKUP, "variables": {"x": guess}}
        return (await lookup_limited_client.post("/graphql", json=payload, headers=headers)).json()

    # Given a limit of 5 lookups a minute, when the staff token guesses 8 ids
    codes = [(await look(f"RX-GUESS-{n}"))["errors"][0]["extensions"]["code"] for n in range(8)]
    # Then the first 5 are answered (not found) and the rest refused
    assert codes == ["NOT_FOUND"] * 5 + ["RATE_LIMITED"] * 3
    # and another pharmacy's token is not held back
    other = {"authorization": f"Bearer {token_for(Role.PHARMACY, str(uuid.uuid4()))}"}
    payload = {"query": LOOKUP, "variables": {"x": "RX-1"}}
    body = (await lookup_limited_client.post("/graphql", json=payload, headers=other)).json()
    assert body["errors"][0]["extensions"]["code"] != "RATE_LIMITED"


async def test_a_lookup_that_misses_is_recorded(gql, token_for, household, session):
    _, _, _, chemist, *_ = household
    # When a pharmacy looks up an id that does not exist
    body = await gql(LOOKUP, {"x": "RX-NOPE-1"}, token=token_for(Role.PHARMACY, str(chemist.id)))
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Then the trail has it: who, and which id
    [record] = (
        await session.scalars(
            select(AuditRecord).where(AuditRecord.what.like(f"{PRESCRIPTION_MISS}%"))
        )
    ).all()
    assert (record.actor, record.role, record.what) == (
        str(chemist.id), "PHARMACY", f"{PRESCRIPTION_MISS}: RX-NOPE-1",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"identityReason": "."}, True),
        ({"identityReasonCode": "NO_SMARTPHONE", "identityReason": "."}, True),
        ({"identityReasonCode": "NO_SMARTPHONE", "identityReason": "no phone"}, True),
        ({"identityReasonCode": "NO_SMARTPHONE", "identityReason": "1 2 3 4 5"}, True),
        ({"identityReason": "patient has no smartphone"}, True),
        (
            {"identityReasonCode": "NO_SMARTPHONE", "identityReason": "у пациента нет смартфона"},
            False,
        ),
    ],
)
async def test_fallback_needs_a_coded_reason_and_an_account(
    gql, token_for, household, changes, refused
):
    parent, _, _, chemist, *_ = household
    await gql(
        PRESCRIBE, prescription("RX-FB", parent.iin), token=token_for(Role.SOURCE_SYSTEM, "eisz")
    )
    # When the pharmacy dispenses with the fallback check and this reason
    body = await gql(
        DISPENSE, dispensing("RX-FB", identityMethod="FALLBACK", **changes),
        token=token_for(Role.PHARMACY, str(chemist.id)),
    )  # fmt: skip
    result = body["data"]["dispenseMedicine"]
    # Then a reason without a code from the list, or without a few words, is refused
    if refused:
        assert result["code"] == "IDENTITY_CHECK_REQUIRED"
    else:
        assert result["dispensing"]["identityMethod"] == "FALLBACK"


async def test_operators_see_fallback_use_per_pharmacy_and_month(
    gql, token_for, household, session, settings, tmp_path
):
    parent, _, _, chemist, *_ = household
    at_pharmacy = token_for(Role.PHARMACY, str(chemist.id))
    await gql(
        PRESCRIBE, prescription("RX-R", parent.iin), token=token_for(Role.SOURCE_SYSTEM, "eisz")
    )
    # Given three dispensings this month, two of them by the fallback, and two missed lookups
    account = "the web camera is out of order"
    for changes in (
        {"identityMethod": "FALLBACK", "identityReasonCode": "CAMERA_UNAVAILABLE",
         "identityReason": account},
        {"identityMethod": "FALLBACK", "identityReasonCode": "NO_SMARTPHONE",
         "identityReason": "patient has no smartphone"},
        {},
    ):  # fmt: skip
        done = await gql(DISPENSE, dispensing("RX-R", **changes), token=at_pharmacy)
        assert done["data"]["dispenseMedicine"]["__typename"] == "MedicineDispensed", done
    for guess in ("RX-X1", "RX-X2"):
        await gql(LOOKUP, {"x": guess}, token=at_pharmacy)
    # When an operator asks for the month's report
    body = await gql(REPORT, {"month": "2026-11-01"}, token=token_for(Role.OPERATOR, "op-1"))
    # Then the pharmacy's row counts them, by reason
    assert body["data"]["fallbackReport"] == [
        {"merchantId": str(chemist.id), "pharmacyName": chemist.name, "dispensings": 3,
         "fallbacks": 2, "fallbackShare": 0.6667, "lookupMisses": 2,
         "byReason": [{"reason": "camera_unavailable", "count": 1},
                      {"reason": "no_smartphone", "count": 1}]},
    ]  # fmt: skip
    # and the month before has nothing
    before = await gql(REPORT, {"month": "2026-10-01"}, token=token_for(Role.OPERATOR, "op-1"))
    assert before["data"]["fallbackReport"] == []


def test_cli_reports_fallback_use_for_a_month(tmp_path, monkeypatch):
    # Given a database of its own with one fallback dispensing in November 2026
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'report.db'}")
    settings = Settings()

    async def prepare() -> str:
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
            async with create_session_factory(engine)() as session, session.begin():
                _, patient, _ = await family_with_pupil(session, chronic=True)
                chemist = await pharmacy(session)
                await issue_medicine_voucher(
                    session=session, person_id=patient.id, consented_by=patient.id, channel="app"
                )
                await record_prescription(
                    session=session, source="eisz",
                    prescription=PrescriptionInput("RX-CLI", patient.iin, DRUG, 2, 150_000,
                                                   date(2099, 1, 1), "Polyclinic No. 4"),
                )  # fmt: skip
                await dispense(
                    session=session, merchant_id=chemist.id, today=date(2026, 11, 18),
                    request=DispenseRequest(
                        idempotency_key="cli-1", prescription_external_id="RX-CLI",
                        drug_code=DRUG, quantity=1, identity_method="fallback",
                        identity_reason_code="face_id_failed",
                        identity_reason="the face was not recognised twice",
                    ),
                )  # fmt: skip
                return str(chemist.id)
        finally:
            await engine.dispose()

    chemist = asyncio.run(prepare())
    # When an operator asks for November and for October
    november = runner.invoke(cli, ["report", "fallback", "--month", "2026-11"])
    october = runner.invoke(cli, ["report", "fallback", "--month", "2026-10"])
    # Then November has the pharmacy's line, October none
    assert november.exit_code == 0, november.output
    [line] = [json.loads(text) for text in november.stdout.splitlines() if text.startswith("{")]
    assert (line["merchant_id"], line["dispensings"], line["fallbacks"], line["by_reason"]) == (
        chemist, 1, 1, {"face_id_failed": 1},
    )  # fmt: skip
    assert not [text for text in october.stdout.splitlines() if text.startswith("{")]
    # and a month not written YYYY-MM is refused
    assert runner.invoke(cli, ["report", "fallback", "--month", "11/2026"]).exit_code == 2
