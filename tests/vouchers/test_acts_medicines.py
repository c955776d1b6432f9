"""Acts guarded in the database, prescriptions shared by racing pharmacies' checks, the QR key
in prod, and the merchants import."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError
from typer.testing import CliRunner

from app.settings import Settings
from graphql_schema.mutations.vouchers import qr_signing_key
from tests.vouchers.vouchers_builders import SCHOOL_DAY, family_with_pupil, pharmacy, school
from vouchers import acts
from vouchers.errors import ActImmutable, QuantityExceeded
from vouchers.medicines import (
    DispenseRequest,
    PrescriptionInput,
    dispense,
    issue_medicine_voucher,
    record_prescription,
)
from vouchers.tables import MerchantAct


async def test_an_approved_act_is_refused_by_the_database_itself(session):
    # Given an approved act
    canteen = await school(session)
    act = await acts.prepare_act(session=session, merchant_id=canteen.id, month=SCHOOL_DAY)
    await acts.submit_act(session=session, act_id=act.id, merchant_id=canteen.id)
    await acts.approve_act(session=session, act_id=act.id, operator="op-1")
    # When any code tries to change it behind the service's back, the trigger refuses
    with pytest.raises((IntegrityError, DBAPIError)):
        async with session.begin_nested():
            await session.execute(
                update(MerchantAct).where(MerchantAct.id == act.id).values(total_tiyn=1)
            )
    # And the service says ACT_IMMUTABLE
    with pytest.raises(ActImmutable):
        await acts.submit_act(session=session, act_id=act.id, merchant_id=canteen.id)


async def test_dispensing_never_passes_the_prescribed_quantity(session):
    _, patient, _ = await family_with_pupil(session, chronic=True)
    chemist = await pharmacy(session)
    await issue_medicine_voucher(
        session=session, person_id=patient.id, consented_by=patient.id, channel="app"
    )
    await record_prescription(
        session=session,
        source="test",
        prescription=PrescriptionInput(
            external_id="erx-q", patient_iin=patient.iin, drug_code="C09AA05", quantity=2,
            unit_price_tiyn=100_000, valid_until=date(2099, 1, 1), prescribing_org="P",
        ),
    )  # fmt: skip

    def request(key: str, quantity: int) -> DispenseRequest:
        return DispenseRequest(key, "erx-q", "C09AA05", quantity, "face_id")

    first, replayed = await dispense(
        session=session, merchant_id=chemist.id, request=request("d-1", 2), today=SCHOOL_DAY
    )
    again, replayed_again = await dispense(
        session=session, merchant_id=chemist.id, request=request("d-1", 2), today=SCHOOL_DAY
    )
    assert not replayed and replayed_again and again.id == first.id
    with pytest.raises(QuantityExceeded):
        await dispense(
            session=session, merchant_id=chemist.id, request=request("d-2", 1), today=SCHOOL_DAY
        )
    # And the pharmacy's act for the month claims exactly what was dispensed
    act = await acts.prepare_act(session=session, merchant_id=chemist.id, month=SCHOOL_DAY)
    assert (act.services, act.total_tiyn, act.lines) == (
        1, 200_000, [{"day": SCHOOL_DAY.isoformat(), "services": 1, "amount_tiyn": 200_000}],
    )  # fmt: skip


def test_the_qr_key_is_required_in_prod(tmp_path):
    with pytest.raises(ValueError, match="QR_SIGNING_KEY"):
        Settings(
            environment="prod", jwt_jwks_url="https://idp.example/jwks.json", audit_hash_key="k"
        )
    # Settings made without validation (model_copy) still cannot sign with no key
    prod = Settings().model_copy(update={"environment": "prod", "qr_signing_key": None})
    with pytest.raises(RuntimeError, match="QR_SIGNING_KEY"):
        qr_signing_key(prod)
    given = Settings(
        environment="prod",
        jwt_jwks_url="https://idp.example/jwks.json",
        audit_hash_key="k",
        qr_signing_key="s3cret-key",
        # prod refuses the log gateways (they send nothing)
        sms_gateway="http",
        sms_gateway_url="https://sms.example/api",
        sms_gateway_token="t",
        bank_gateway="http",
        bank_gateway_url="https://bank.example/orders",
        bank_gateway_token="t",
    )
    assert qr_signing_key(given) == b"s3cret-key"
    dev = Settings(dev_qr_key_path=tmp_path / "qr")
    assert qr_signing_key(dev) == qr_signing_key(dev) and len(qr_signing_key(dev)) == 32
    assert (tmp_path / "qr").stat().st_mode & 0o777 == 0o600


def test_merchants_import_from_csv(tmp_path, monkeypatch, settings):
    from app.cli import cli

    # Given a file with a good row and a bad one, and a database of our own
    database = tmp_path / "import.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    file = tmp_path / "merchants.csv"
    file.write_text(
        "external_code,name,category,region\n"
        "astana-school-900,School 900,school_meals,astana\n"
        "bad-1,Bad,groceries,astana\n",
        encoding="utf-8",
    )
    # When it is imported twice
    first = runner.invoke(cli, ["vouchers", "import-merchants", str(file)])
    second = runner.invoke(cli, ["vouchers", "import-merchants", str(file)])
    # Then the good row is registered once, and the bad one named with its line and code
    assert first.exit_code == 1 and "1 merchants registered" in first.output
    assert "line 3: BAD_USER_INPUT" in first.output
    assert "0 merchants registered" in second.output
    import sqlite3

    rows = sqlite3.connect(database).execute("SELECT external_code FROM merchants").fetchall()
    assert rows == [("astana-school-900",)]


async def test_an_act_for_a_month_no_rules_cover_is_refused(session):
    # Found by the fuzzer: a month long before the programme has no review rules
    from vouchers.acts import prepare_act
    from vouchers.errors import InvalidInput

    canteen = await school(session)
    with pytest.raises(InvalidInput) as refused:
        await prepare_act(session=session, merchant_id=canteen.id, month=date(1904, 12, 1))
    assert refused.value.code == "BAD_USER_INPUT"
