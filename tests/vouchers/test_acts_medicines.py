"""Acts guarded in the database, prescriptions shared by racing pharmacies' checks, the QR key
in prod, and the merchants import."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError
from typer.testing import CliRunner

from app.qr_key import qr_signing_key
from app.settings import Settings
from familymap.parameters import DEFAULT_PATH, load_parameters
from tests.vouchers.vouchers_builders import (
    NOW,
    SCHOOL_DAY,
    family_with_pupil,
    pharmacy,
    school,
)
from vouchers import acts
from vouchers.errors import (
    ActImmutable,
    IdempotencyKeyReused,
    MonthNotEnded,
    NoVoucher,
    QuantityExceeded,
    VoucherSpent,
)
from vouchers.feedback import leave_feedback
from vouchers.meals import MealRequest, issue_meal_voucher, redeem_meal
from vouchers.medicines import (
    DispenseRequest,
    PrescriptionInput,
    dispense,
    issue_medicine_voucher,
    record_prescription,
)
from vouchers.tables import MerchantAct

# The first day after the pinned month (November 2026) has ended: its acts can be drawn.
MONTH_ENDED = date(2026, 12, 1)


async def test_an_approved_act_is_refused_by_the_database_itself(session):
    # Given an approved act
    canteen = await school(session)
    act = await acts.prepare_act(
        session=session, merchant_id=canteen.id, month=SCHOOL_DAY, today=MONTH_ENDED
    )
    await acts.submit_act(session=session, act_id=act.id, merchant_id=canteen.id, today=MONTH_ENDED)
    await acts.approve_act(session=session, act_id=act.id, operator="op-1", today=MONTH_ENDED)
    # When any code tries to change it behind the service's back, the trigger refuses
    with pytest.raises((IntegrityError, DBAPIError)):
        async with session.begin_nested():
            await session.execute(
                update(MerchantAct).where(MerchantAct.id == act.id).values(total_tiyn=1)
            )
    # And the service says ACT_IMMUTABLE
    with pytest.raises(ActImmutable):
        await acts.submit_act(
            session=session, act_id=act.id, merchant_id=canteen.id, today=MONTH_ENDED
        )


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
    act = await acts.prepare_act(
        session=session, merchant_id=chemist.id, month=SCHOOL_DAY, today=MONTH_ENDED
    )
    assert (act.services, act.total_tiyn, act.lines) == (
        1, 200_000, [{"day": SCHOOL_DAY.isoformat(), "services": 1, "amount_tiyn": 200_000}],
    )  # fmt: skip


# A production key: 32 random bytes in hex (weaker ones are refused in prod).
AK = "9c1f4e7a2d5b8c0e3f6a9d2c5b8e1f4a7d0c3b6e9f2a5d8c1b4e7f0a3d6c9b2e"


def test_the_qr_key_is_required_in_prod(tmp_path):
    with pytest.raises(ValueError, match="QR_SIGNING_KEY"):
        Settings(
            environment="prod", jwt_jwks_url="https://idp.example/jwks.json", audit_hash_key=AK
        )
    # Settings made without validation (model_copy) still cannot sign with no key
    prod = Settings().model_copy(update={"environment": "prod", "qr_signing_key": None})
    with pytest.raises(RuntimeError, match="QR_SIGNING_KEY"):
        qr_signing_key(prod)
    given = Settings(
        environment="prod",
        jwt_jwks_url="https://idp.example/jwks.json",
        audit_hash_key=AK,
        qr_signing_key="4b7e0a3d6c9f2b5e8a1d4c7f0b3e6a9d2c5f8b1e4a7d0c3f6b9e2a5d8c1f4b7e",
        # prod refuses the log gateways (they send nothing)
        sms_gateway="http",
        sms_gateway_url="https://sms.example/api",
        sms_gateway_token="t",
        bank_gateway="http",
        bank_gateway_url="https://bank.example/orders",
        bank_gateway_token="t",
    )
    assert (
        qr_signing_key(given) == b"4b7e0a3d6c9f2b5e8a1d4c7f0b3e6a9d2c5f8b1e4a7d0c3f6b9e2a5d8c1f4b7e"
    )
    dev = Settings(dev_qr_key_path=tmp_path / "qr")
    assert qr_signing_key(dev) == qr_signing_key(dev) and len(qr_signing_key(dev)) == 32
    assert (tmp_path / "qr").stat().st_mode & 0o777 == 0o600


def test_merchants_import_from_csv(tmp_path, monkeypatch, settings):
    from app.cli.commands import cli

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
        await prepare_act(
            session=session, merchant_id=canteen.id, month=date(1904, 12, 1), today=SCHOOL_DAY
        )
    assert refused.value.code == "BAD_USER_INPUT"


# --- Acts are for ended months, and an adjustment reports its own figures -------------------


async def test_an_act_is_only_for_an_ended_month(session):
    # Given a school
    canteen = await school(session)
    november, december = date(2026, 11, 1), date(2026, 12, 1)
    # When its acts are asked for before their month is over, in Kazakhstan's days
    for month, today in ((november, date(2026, 11, 30)), (december, date(2026, 12, 2))):
        with pytest.raises(MonthNotEnded) as refused:
            await acts.prepare_act(
                session=session, merchant_id=canteen.id, month=month, today=today
            )
        assert refused.value.code == "MONTH_NOT_ENDED"
    # Then November's act is drawn from the 1st of December
    act = await acts.prepare_act(
        session=session, merchant_id=canteen.id, month=november, today=MONTH_ENDED
    )
    assert (act.month, act.status) == (november, "draft")


async def test_acts_of_a_month_not_ended_drawn_before_go_no_further(session):
    # Given December's acts drawn on the 2nd of December, before months had to end
    canteen = await school(session)
    today = date(2026, 12, 2)
    draft, submitted, approved = (
        MerchantAct(merchant_id=canteen.id, month=date(2026, 12, 1), sequence=n,
                    adjusts_act_id=None, status="draft", lines=[], services=1,
                    total_tiyn=98_000, feedback_count=0, complaints=0,
                    flagged_for_review=False, flag_reasons=[])
        for n in range(3)
    )  # fmt: skip
    session.add(draft)
    await session.flush()
    for act in (submitted, approved):
        act.adjusts_act_id = draft.id
        session.add(act)
    await session.flush()
    for act, status in ((submitted, "submitted"), (approved, "approved")):
        await session.execute(
            update(MerchantAct).where(MerchantAct.id == act.id).values(status=status)
        )
    # When the merchant submits, an operator approves and invoices them on that day
    refusals = []
    for step in (
        acts.submit_act(session=session, act_id=draft.id, merchant_id=canteen.id, today=today),
        acts.approve_act(session=session, act_id=submitted.id, operator="op-1", today=today),
        acts.issue_invoice(session=session, act_id=approved.id, today=today),
    ):
        with pytest.raises(MonthNotEnded) as refused:
            await step
        refusals.append(refused.value.code)
    # Then each is refused, and nothing moved on
    assert refusals == ["MONTH_NOT_ENDED"] * 3
    await session.refresh(draft)
    await session.refresh(submitted)
    assert (draft.status, submitted.status) == ("draft", "submitted")


async def test_an_adjustment_act_reports_its_own_figures(session):
    # Given three November meals the family rated badly, in an approved act
    _, parent, child = await family_with_pupil(session)
    canteen = await school(session)
    await issue_meal_voucher(session=session, child_person_id=child.id, school_year=SCHOOL_DAY,
                             consented_by=parent.id, channel="app")  # fmt: skip

    async def lunch(day: date, now: datetime, rating: int) -> None:
        served = await redeem_meal(
            session=session, merchant_id=canteen.id, qr_key=b"k" * 32, now=now,
            request=MealRequest(f"lunch-{day}", "lunch", day, child_person_id=child.id),
        )  # fmt: skip
        await leave_feedback(session=session, author_iin=parent.iin, event_kind="meal",
                             event_id=served.redemption.id, rating=rating)  # fmt: skip

    for day, rating in ((date(2026, 11, 16), 1), (date(2026, 11, 17), 2), (SCHOOL_DAY, 2)):
        await lunch(day, NOW.replace(day=day.day), rating)
    act = await acts.prepare_act(
        session=session, merchant_id=canteen.id, month=SCHOOL_DAY, today=MONTH_ENDED
    )
    assert act.flag_reasons == ["LOW_AVERAGE_RATING", "MANY_COMPLAINTS"]
    await acts.submit_act(session=session, act_id=act.id, merchant_id=canteen.id, today=MONTH_ENDED)
    await acts.approve_act(session=session, act_id=act.id, operator="op-1", today=MONTH_ENDED)
    # When Monday 30th's lunch is claimed on 1 December (late, in the window) and rated well
    await lunch(date(2026, 11, 30), datetime(2026, 12, 1, 5, 0, tzinfo=UTC), 5)
    adjustment = await acts.prepare_act(
        session=session, merchant_id=canteen.id, month=SCHOOL_DAY, today=MONTH_ENDED
    )
    # Then the adjustment reports that one lunch, its late claim and its one rating, not the
    # month's three bad ones again
    assert (adjustment.sequence, adjustment.adjusts_act_id) == (1, act.id)
    assert (adjustment.services, adjustment.total_tiyn) == (1, 98_000)
    assert adjustment.lines == [
        {"day": "2026-11-30", "services": 1, "amount_tiyn": 98_000, "late_services": 1}
    ]
    assert (adjustment.feedback_count, adjustment.feedback_average_x100) == (1, 500)
    assert (adjustment.complaints, adjustment.flag_reasons) == (0, ["LATE_CLAIMS"])


# --- Dispensing: a voucher in force, in words for people, each pharmacy's own keys ------------


async def _patient_with_prescription(session, *, voucher: bool, unit_price: int = 150_000):
    _, patient, _ = await family_with_pupil(session, chronic=True)
    if voucher:
        await issue_medicine_voucher(
            session=session, person_id=patient.id, consented_by=patient.id, channel="app"
        )
    prescription, _ = await record_prescription(
        session=session,
        source="test",
        prescription=PrescriptionInput(
            external_id=f"erx-{patient.id}", patient_iin=patient.iin, drug_code="A10BA02",
            quantity=10, unit_price_tiyn=unit_price, valid_until=date(2099, 1, 1),
            prescribing_org="P",
        ),
    )  # fmt: skip
    return prescription


async def test_dispensing_without_a_voucher_is_no_voucher_in_words_for_people(session):
    # Given a patient with a prescription but no medicines voucher
    prescription = await _patient_with_prescription(session, voucher=False)
    chemist = await pharmacy(session)
    # When the pharmacist dispenses
    with pytest.raises(NoVoucher) as refused:
        await dispense(
            session=session, merchant_id=chemist.id, today=SCHOOL_DAY,
            request=DispenseRequest("d-1", prescription.external_id, "A10BA02", 3, "face_id"),
        )  # fmt: skip
    # Then the answer is NO_VOUCHER, without the ledger's names, and nothing was taken
    assert refused.value.code == "NO_VOUCHER"
    assert "person:" not in str(refused.value) and "tiyn" not in str(refused.value)
    await session.refresh(prescription)
    assert prescription.dispensed_quantity == 0


async def test_a_voucher_with_too_little_left_says_so_in_words_for_people(session):
    # Given a voucher of 12 975 tenge and medicine that costs 20 000 tenge a pack
    prescription = await _patient_with_prescription(session, voucher=True, unit_price=2_000_000)
    chemist = await pharmacy(session)
    # When a pack is dispensed
    with pytest.raises(VoucherSpent) as refused:
        await dispense(
            session=session, merchant_id=chemist.id, today=SCHOOL_DAY,
            request=DispenseRequest("d-1", prescription.external_id, "A10BA02", 1, "face_id"),
        )  # fmt: skip
    # Then the code is the ledger's, the message the pharmacist's
    assert refused.value.code == "INSUFFICIENT_FUNDS"
    assert "person:" not in str(refused.value)
    # (in each language, by the one money formatter of its locale)
    assert "has ₸12,975 left; this costs ₸20,000" in str(refused.value)
    assert "осталось 12\xa0975\xa0₸; это стоит 20\xa0000\xa0₸" in refused.value.text("ru")


async def test_dispensing_idempotency_keys_are_each_pharmacys_own(session):
    # Given two pharmacies, and two patients with vouchers
    north = await pharmacy(session, code="pharmacy-north")
    south = await pharmacy(session, code="pharmacy-south")
    first = await _patient_with_prescription(session, voucher=True)
    second = await _patient_with_prescription(session, voucher=True)

    async def at(merchant, prescription) -> tuple[int, bool]:
        row, replayed = await dispense(
            session=session, merchant_id=merchant.id, today=SCHOOL_DAY,
            request=DispenseRequest("sale-1", prescription.external_id, "A10BA02", 1, "face_id"),
        )  # fmt: skip
        return row.id, replayed

    # When both use the same key, and the north pharmacy sends its request again
    north_id, north_replayed = await at(north, first)
    south_id, south_replayed = await at(south, second)
    again_id, again_replayed = await at(north, first)
    # Then there are two dispensings, and the replay is the north's own
    assert north_id != south_id and not north_replayed and not south_replayed
    assert (again_id, again_replayed) == (north_id, True)
    with pytest.raises(IdempotencyKeyReused):
        await at(south, first)


async def test_a_month_without_feedback_is_not_flagged_when_any_count_is_enough(session, tmp_path):
    # given parameters under which even no rating at all is "enough feedback" to review a month
    # (found by mypy: the average of no ratings is None and was compared with the minimum)
    for source in DEFAULT_PATH.glob("*.yaml"):
        text = source.read_text(encoding="utf-8")
        if source.name == "vouchers.yaml":
            minimum = "  review_min_feedback:\n"
            head, tail = text.split(minimum)
            tail = tail.replace("value: 3,", "value: 0,", 1)
            text = head + minimum + tail
        (tmp_path / source.name).write_text(text, encoding="utf-8")
    parameters = load_parameters(tmp_path)
    assert parameters.get("acts.review_min_feedback", MONTH_ENDED) == 0
    # when a merchant's month with no feedback is summed up
    summary = await acts._feedback_summary(
        session, uuid.uuid4(), date(2026, 11, 1), parameters, counted=[]
    )
    # then it has no average and nothing to review, instead of a TypeError
    assert summary["feedback_count"] == 0
    assert summary["feedback_average_x100"] is None
    assert summary["flagged_for_review"] is False
