"""Digits that are not digits (issue 13 item 7), and schools that do not exist (14.10).

Python's int(), str.isdigit() and regex \\d read "１２" (full width) as 12. A BIRTH event
with the child's IIN in full-width digits made a second person and a second birth benefit;
a full-width IBAN was stored; an IBAN with a Cyrillic К was a 500.
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import func, select

from app.auth import Role, TokenRejected, principal_from_claims
from familymap.tables import Person
from tests.api import test_life_events_api as life_events
from tests.api.test_life_events_api import MOTHER_IIN, NEWBORN_IIN, RECORD_LIFE_EVENT, TODAY, birth
from vouchers.merchants import register_merchant
from wallet.offers import InvalidIban, validate_iban

parents = life_events.parents  # the fixture: a family of two earners
GOOD_IBAN = "KZ86125KZT5004100100"
SCHOOL_ID = "5c0001a0-0000-4000-8000-000000000001"
REGISTER_IBAN = """
mutation($iban: String!, $key: String!) {
  registerBankAccount(iban: $iban, idempotencyKey: $key) {
    __typename ... on BankAccountRefused { code } ... on BankAccountRegistered { ibanMasked }
  }
}
"""


def wide(text: str) -> str:
    """`text` with its ASCII digits in full width (U+FF10..U+FF19)."""
    return "".join(chr(0xFF10 + int(c)) if c.isascii() and c.isdigit() else c for c in text)


@pytest.fixture
def source_token(token_for) -> str:
    return token_for(Role.SOURCE_SYSTEM, "gbdfl")


async def test_a_birth_with_a_full_width_child_iin_makes_no_second_child(
    gql, source_token, session, parents
):
    # given a birth recorded with the child's IIN in ASCII digits
    first = await gql(RECORD_LIFE_EVENT, birth(), token=source_token)
    assert first["data"]["recordLifeEvent"]["__typename"] == "LifeEventRecorded"
    # when the same birth arrives again under another event id, the IIN in full width
    again = birth("gbdfl-birth-2")
    again["input"]["child"]["iin"] = wide(NEWBORN_IIN)
    body = await gql(RECORD_LIFE_EVENT, again, token=source_token)
    # then it is refused as an invalid IIN, and the family still has one newborn
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_IIN"]
    family_id = (await session.scalar(select(Person).where(Person.iin == MOTHER_IIN))).family_id
    members = await session.scalar(
        select(func.count()).select_from(Person).where(Person.family_id == family_id)
    )
    assert members == 3


@pytest.mark.parametrize(
    "iban",
    [wide(GOOD_IBAN), "К" + GOOD_IBAN[1:], GOOD_IBAN[:-1] + "٠", "KZ86125KZT500410010\x00"],
    ids=["full-width digits", "Cyrillic К", "an Arabic-Indic zero", "NUL"],
)
def test_an_iban_with_letters_or_digits_that_are_not_ascii_is_invalid_iban(iban):
    # when such an IBAN is validated, then it is refused with the stable code
    with pytest.raises(InvalidIban) as refused:
        validate_iban(iban)
    assert refused.value.code == "INVALID_IBAN"


def test_an_iban_is_normalised_in_one_place():
    # given the same account written with spaces and in lower case
    # then it is stored in one normal form
    assert validate_iban(" kz86 125k zt50 0410 0100 ") == GOOD_IBAN


@pytest.mark.parametrize("iban", [wide(GOOD_IBAN), "К" + GOOD_IBAN[1:]])
async def test_register_bank_account_refuses_a_non_ascii_iban_as_data(gql, token_for, iban):
    # given a citizen
    token = token_for(Role.CITIZEN, "900101300126")
    # when they register an IBAN with a full-width digit or a Cyrillic letter
    body = await gql(REGISTER_IBAN, {"iban": iban, "key": "iban-1"}, token=token)
    # then it is a typed refusal, not INTERNAL_SERVER_ERROR
    assert "errors" not in body, body
    assert body["data"]["registerBankAccount"] == {
        "__typename": "BankAccountRefused",
        "code": "INVALID_IBAN",
    }


def enrolment(school_id: str) -> dict:
    return {
        "input": {
            "eventId": f"mon-enrol-{school_id}",
            "kind": "SCHOOL_ENROLMENT",
            "occurredOn": TODAY.isoformat(),
            "subjectIin": MOTHER_IIN,
            "schoolId": school_id,
            "schoolGrade": 1,
        }
    }


async def test_a_school_enrolment_at_an_unknown_school_is_refused(
    gql, source_token, session, parents
):
    # given a registered school, and a school id nobody registered
    await register_merchant(
        session=session,
        external_code="astana-school-45",
        name="School No. 45, Astana",
        category="school_meals",
        region="astana",
    )
    await session.commit()
    # when enrolments at each are pushed
    unknown = await gql(RECORD_LIFE_EVENT, enrolment("no-such-school"), token=source_token)
    known = await gql(RECORD_LIFE_EVENT, enrolment("astana-school-45"), token=source_token)
    # then the unknown school is a typed refusal, and the known one is recorded
    assert unknown["data"]["recordLifeEvent"]["code"] == "UNKNOWN_SCHOOL"
    assert known["data"]["recordLifeEvent"]["__typename"] == "LifeEventRecorded", known
    mother = await session.scalar(select(Person).where(Person.iin == MOTHER_IIN))
    await session.refresh(mother)
    assert mother.school_id == "astana-school-45"


@pytest.mark.parametrize(
    ("role", "subject"),
    [
        (Role.CITIZEN, wide("900101300126")),
        (Role.SCHOOL, wide("5c0001a0-0000-4000-8000-000000000001")),
        (Role.OPERATOR, "op\x00-1"),
        (Role.SOURCE_SYSTEM, "gbdfl" + "x" * 200),
    ],
    ids=["full-width IIN", "full-width merchant id", "NUL", "too long"],
)
def test_a_token_subject_is_printable_ascii(role, subject):
    # given the claims of a token whose subject is not plain ASCII (or far too long)
    claims = {"sub": subject, "roles": [role.value], "iat": 0, "exp": 0}
    # then no principal is made of it
    with pytest.raises(TokenRejected):
        principal_from_claims(claims)


def test_an_ascii_merchant_subject_still_signs_in():
    claims = {"sub": SCHOOL_ID, "roles": ["SCHOOL"], "iat": 0, "exp": 0}
    assert principal_from_claims(claims).subject == SCHOOL_ID


def test_a_prescription_csv_with_full_width_digits_is_refused_line_by_line(tmp_path, monkeypatch):
    # given the demo registry, and a CSV whose second prescription counts in full width
    from typer.testing import CliRunner

    from app.cli.commands import cli

    runner = CliRunner()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/rx.db")
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    assert runner.invoke(cli, ["seed-demo"]).exit_code == 0
    with sqlite3.connect(tmp_path / "rx.db") as db:
        (patient,) = db.execute(
            "SELECT iin FROM persons WHERE role = 'head' ORDER BY id LIMIT 1"
        ).fetchone()
    rows = [
        f"RX-1,{patient},A10BA02,30,1500,2030-01-01,polyclinic-1",
        f"RX-2,{patient},A10BA02,{wide('30')},1500,2030-01-01,polyclinic-1",
    ]
    header = (
        "external_id,patient_iin,drug_code,quantity,unit_price_tiyn,valid_until,prescribing_org"
    )
    csv_file = tmp_path / "rx.csv"
    csv_file.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    # when it is imported
    result = runner.invoke(cli, ["vouchers", "import-prescriptions", str(csv_file)])
    # then the first is recorded and the second refused with its line
    assert result.exit_code == 1, result.output
    assert "rx.csv:3 BAD_USER_INPUT" in result.output
    assert "1 prescriptions recorded" in result.output
