"""`ledger verify`: a database with meals, a dispensing, a payment and answered offers verifies
clean; corrupted in each way, around the services with plain SQL, it names what broke.

Each corruption happens inside the test's transaction, which is rolled back (where the
append-only trigger or a CHECK stands in the way, it is lifted inside that transaction only).
The command itself runs on a throwaway demo database of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select, text

from app.settings import Settings
from familymap.orm import utcnow
from tests.clock import pinned_env
from tests.throwaway_db import throwaway_database
from tests.vouchers.vouchers_builders import (
    NOW,
    QR_KEY,
    SCHOOL_DAY,
    family_with_pupil,
    pharmacy,
    school,
)
from tests.wallet.offer_builders import evaluate, newborn_household
from vouchers.meals import MealRequest, issue_meal_voucher, redeem_meal, wallet_code
from vouchers.medicines import (
    DispenseRequest,
    PrescriptionInput,
    dispense,
    issue_medicine_voucher,
    record_prescription,
)
from vouchers.medicines import wallet_code as medicines_wallet
from vouchers.tables import MealRedemption
from wallet import ledger
from wallet.offer_tables import Offer, Payment
from wallet.offers import answer_offer, offer_new_entitlements
from wallet.outbox_tables import OutboxMessage
from wallet.tables import LedgerTransfer
from wallet.verify import INVARIANTS, verify_ledger

SOCIALWALLET = str(Path(sys.executable).parent / "socialwallet")


async def _broken(session) -> set[str]:
    return {finding.invariant for finding in await verify_ledger(session=session)}


@pytest.fixture
async def money(session):
    """A pupil served a meal, a patient dispensed a medicine, a father who accepted one offer
    (paid to his bank) and declined the other: every invariant has something to check."""
    _, _, child = await family_with_pupil(session)
    canteen = await school(session)
    await issue_meal_voucher(
        session=session, child_person_id=child.id, school_year=SCHOOL_DAY, consented_by=None,
        channel="test",
    )  # fmt: skip
    served = await redeem_meal(
        session=session, merchant_id=canteen.id, qr_key=QR_KEY, now=NOW,
        request=MealRequest("verify-meal", "lunch", SCHOOL_DAY, child_person_id=child.id),
    )  # fmt: skip
    _, patient, _ = await family_with_pupil(session, school_code="other-school", chronic=True)
    chemist = await pharmacy(session)
    await issue_medicine_voucher(
        session=session, person_id=patient.id, consented_by=patient.id, channel="app"
    )
    await record_prescription(
        session=session, source="test",
        prescription=PrescriptionInput(
            external_id="erx-verify", patient_iin=patient.iin, drug_code="C09AA05", quantity=2,
            unit_price_tiyn=100_000, valid_until=date(2099, 1, 1), prescribing_org="P",
        ),
    )  # fmt: skip
    await dispense(
        session=session, merchant_id=chemist.id, today=SCHOOL_DAY,
        request=DispenseRequest("verify-dispense", "erx-verify", "C09AA05", 1, "face_id"),
    )  # fmt: skip
    household = await newborn_household(session)
    run_id = await evaluate(session, household)
    await offer_new_entitlements(session=session, run_id=run_id, now=utcnow())
    offers = list(
        await session.scalars(select(Offer).where(Offer.family_id == household.family.id))
    )
    assert len(offers) >= 2, "the newborn household is offered two benefits"
    for offer, accept in zip(offers, (True, False), strict=False):
        await answer_offer(
            session=session, offer_id=offer.id, recipient_person_id=offer.recipient_person_id,
            accept=accept, channel="app",
        )  # fmt: skip
    await session.flush()
    return {"meal": served.redemption, "child": child, "school": canteen, "patient": patient,
            "pharmacy": chemist, "offers": offers}  # fmt: skip


async def test_money_made_through_the_services_verifies_clean(session, money):
    # Given meals, a dispensing, payments and answered offers made through the services
    payments = list(await session.scalars(select(Payment)))
    assert payments, "the accepted offer was paid"
    # When the ledger is verified
    findings = await verify_ledger(session=session)
    # Then nothing is broken
    assert findings == []


async def test_totals_moved_by_hand_unbalance_the_books(session, money):
    # Given a school's credits raised with no transfer behind them
    await session.execute(
        text("UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE code = :c"),
        {"c": money["school"].account_code},
    )
    # Then the books no longer balance, and that account disagrees with its transfers
    assert await _broken(session) == {"books_balance", "balances_match_transfers"}


async def test_a_balanced_edit_of_totals_still_disagrees_with_the_transfers(session, money):
    # Given a tiyn moved from the school to the child by editing both totals (books balance)
    await session.execute(
        text("UPDATE ledger_accounts SET credits_posted = credits_posted - 1 WHERE code = :c"),
        {"c": money["school"].account_code},
    )
    await session.execute(
        text("UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE code = :c"),
        {"c": wallet_code(money["child"].id)},
    )
    # Then only the agreement of balances with transfers is broken
    findings = await verify_ledger(session=session)
    assert [f.invariant for f in findings] == ["balances_match_transfers"]
    assert findings[0].broken == 2


async def test_a_wallet_below_zero_is_named(session, money):
    # Given the CHECK that keeps wallets at or above zero lifted (in this transaction only)
    # and the child's wallet debited past its credits
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("ALTER TABLE ledger_accounts DROP CONSTRAINT ck_ledger_accounts_balance_floor")
        )
    else:
        await session.execute(text("PRAGMA ignore_check_constraints = ON"))
    try:
        await session.execute(
            text("UPDATE ledger_accounts SET debits_posted = credits_posted + 500 WHERE code = :c"),
            {"c": wallet_code(money["child"].id)},
        )
        # Then the negative wallet is named (and its totals no longer match its transfers)
        findings = await verify_ledger(session=session)
    finally:
        if session.get_bind().dialect.name != "postgresql":
            await session.execute(text("PRAGMA ignore_check_constraints = OFF"))
    assert {f.invariant for f in findings} == {
        "no_negative_wallet",
        "balances_match_transfers",
        "books_balance",
    }
    negative = next(f for f in findings if f.invariant == "no_negative_wallet")
    assert negative.examples == (f"account {wallet_code(money['child'].id)} holds -500 tiyn",)


async def test_a_transfer_for_a_reason_its_flow_does_not_carry_is_named(session, money):
    # Given a transfer written around the ledger, programme -> wallet as "pocket money", with
    # both accounts' totals moved to match it
    child = await ledger.get_account(session=session, account=wallet_code(money["child"].id))
    programme = await ledger.get_account(session=session, account="programme:SCHOOL_MEALS")
    await session.execute(
        LedgerTransfer.__table__.insert().values(
            transfer_id="pocket-money", debit_account_id=programme.id,
            credit_account_id=child.id, amount=100, reason="POCKET_MONEY", created_at=utcnow(),
        )
    )  # fmt: skip
    await session.execute(
        text("UPDATE ledger_accounts SET debits_posted = debits_posted + 100 WHERE id = :a"),
        {"a": programme.id},
    )
    await session.execute(
        text("UPDATE ledger_accounts SET credits_posted = credits_posted + 100 WHERE id = :a"),
        {"a": child.id},
    )
    # Then only the reasons' invariant is broken, naming the transfer
    findings = await verify_ledger(session=session)
    assert [f.invariant for f in findings] == ["reason_fits_flow"]
    assert findings[0].examples == (
        "transfer pocket-money: POCKET_MONEY from a budget_programme to a purpose_wallet",
    )


async def test_a_meal_whose_transfer_was_removed_is_named(session, money):
    # Given the meal's transfer deleted, the append-only trigger lifted for it (in this
    # transaction only), and the accounts put back as if it had never been posted
    meal = money["meal"]
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.execute(
            text("ALTER TABLE ledger_transfers DISABLE TRIGGER ledger_transfers_append_only")
        )
    else:
        await session.execute(text("DROP TRIGGER ledger_transfers_no_delete"))
    await session.execute(
        text("DELETE FROM ledger_transfers WHERE transfer_id = :t"), {"t": meal.transfer_id}
    )
    if postgres:
        await session.execute(
            text("ALTER TABLE ledger_transfers ENABLE TRIGGER ledger_transfers_append_only")
        )
    await session.execute(
        text("UPDATE ledger_accounts SET debits_posted = debits_posted - :a WHERE code = :c"),
        {"a": meal.price_tiyn, "c": wallet_code(meal.person_id)},
    )
    await session.execute(
        text("UPDATE ledger_accounts SET credits_posted = credits_posted - :a WHERE code = :c"),
        {"a": meal.price_tiyn, "c": money["school"].account_code},
    )
    # Then the meal is named as unpaid, and nothing else is broken
    findings = await verify_ledger(session=session)
    assert [f.invariant for f in findings] == ["meal_one_transfer"]
    assert findings[0].examples == (f"meal {meal.id} (transfer {meal.transfer_id}): no transfer",)


async def test_a_meal_payment_without_a_meal_is_named(session, money):
    # Given a MEAL_SERVED transfer posted through the ledger with no meal behind it
    await ledger.transfer(
        session=session, transfer_id="meal:stray", debit=wallet_code(money["child"].id),
        credit=money["school"].account_code, amount=1_000, reason="MEAL_SERVED",
        person_id=money["child"].id,
    )  # fmt: skip
    # Then the meals' invariant names it
    findings = await verify_ledger(session=session)
    assert [f.invariant for f in findings] == ["meal_one_transfer"]
    assert findings[0].examples == ("transfer meal:stray pays no meal",)


async def test_two_meals_paid_by_one_transfer_are_named(session, money):
    # Given a second meal row that names the first meal's transfer
    meal = money["meal"]
    values = {c.name: getattr(meal, c.key) for c in MealRedemption.__table__.c if c.name != "id"}
    values |= {"idempotency_key": "verify-copy", "meal_type": "breakfast"}
    await session.execute(MealRedemption.__table__.insert().values(**values))
    # Then the shared transfer is named
    findings = await verify_ledger(session=session)
    assert [f.invariant for f in findings] == ["meal_one_transfer"]
    assert f"transfer {meal.transfer_id} pays 2 meals" in findings[0].examples


async def test_a_dispensing_payment_without_a_dispensing_is_named(session, money):
    # Given a MEDICINE_DISPENSED transfer with no dispensing behind it
    await ledger.transfer(
        session=session, transfer_id="dispensing:stray",
        debit=medicines_wallet(money["patient"].id), credit=money["pharmacy"].account_code,
        amount=1_000, reason="MEDICINE_DISPENSED", person_id=money["patient"].id,
    )  # fmt: skip
    # Then the dispensings' invariant names it
    findings = await verify_ledger(session=session)
    assert [f.invariant for f in findings] == ["dispensing_one_transfer"]
    assert findings[0].examples == ("transfer dispensing:stray pays no dispensing",)


async def test_a_payment_pointing_at_another_message_is_named(session, money):
    # Given a payment whose bank order is swapped for the offer's SMS
    payment = await session.scalar(select(Payment).limit(1))
    sms = await session.scalar(select(OutboxMessage.id).where(OutboxMessage.channel == "sms"))
    await session.execute(
        text("UPDATE payments SET order_message_id = :m WHERE id = :p"),
        {"m": sms, "p": payment.id},
    )
    # Then the payment has no bank order of its own, and its order no payment
    findings = await verify_ledger(session=session)
    assert [f.invariant for f in findings] == ["payment_one_bank_order"]
    assert f"payment {payment.payment_key}: no bank order of its own" in findings[0].examples
    assert f"bank order payment:{payment.payment_key} has no payment" in findings[0].examples


async def test_an_answer_without_its_sms_is_named(session, money):
    # Given the SMS confirming the declined offer removed from the outbox
    declined = money["offers"][1]
    await session.execute(
        text("DELETE FROM outbox_messages WHERE message_key = :k"),
        {"k": f"offer:{declined.id}:declined"},
    )
    # Then the consent's invariant names the offer
    findings = await verify_ledger(session=session)
    assert [f.invariant for f in findings] == ["consent_one_sms"]
    assert findings[0].examples == (f"offer {declined.id}: answered, no SMS confirms it",)


# --- the command, on a throwaway demo database ------------------------------------------


@pytest.fixture
async def demo_database(settings: Settings, tmp_path: Path):
    """A database of the test's own (a file on SQLite, a database on PostgreSQL)."""
    async with throwaway_database(settings, tmp_path, "verify") as url:
        yield url


def _socialwallet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own command, fixed arguments)
        [SOCIALWALLET, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


async def test_the_command_passes_the_demo_and_names_what_a_corruption_broke(
    demo_database, tmp_path
):
    # Given the demo registry with its offers made, in a database of the test's own
    env = pinned_env({
        **os.environ, "DATABASE_URL": demo_database,
        "DEV_JWT_KEY_PATH": str(tmp_path / "jwt.pem"), "DEV_QR_KEY_PATH": str(tmp_path / "qr"),
    })  # fmt: skip
    for command in (["migrate"], ["seed-demo"], ["offers", "issue"]):
        done = _socialwallet(env, *command)
        assert done.returncode == 0, done.stderr[-2000:]
    # When the ledger is verified
    clean = _socialwallet(env, "ledger", "verify")
    # Then it exits 0 and its last line says every invariant holds
    assert clean.returncode == 0, clean.stderr[-2000:]
    report = json.loads(clean.stdout.strip().splitlines()[-1])
    assert report == {"ok": True, "checked": list(INVARIANTS), "broken": []}
    # When a wallet's credits are raised by hand and it is verified again
    if demo_database.startswith("sqlite"):
        connection = await _sqlite(demo_database)
    else:
        connection = await asyncpg.connect(demo_database)
    try:
        await connection.execute(
            "UPDATE ledger_accounts SET credits_posted = credits_posted + 7 "
            "WHERE kind = 'purpose_wallet' AND id = (SELECT min(id) FROM ledger_accounts "
            "WHERE kind = 'purpose_wallet')"
        )
    finally:
        await connection.close()
    broken = _socialwallet(env, "ledger", "verify")
    # Then it exits 1 naming both broken invariants, on the screen and in its last line
    assert broken.returncode == 1
    report = json.loads(broken.stdout.strip().splitlines()[-1])
    assert not report["ok"]
    assert [b["invariant"] for b in report["broken"]] == [
        "books_balance",
        "balances_match_transfers",
    ]
    assert "BROKEN books_balance" in broken.stderr
    assert "BROKEN balances_match_transfers" in broken.stderr


async def _sqlite(url: str):
    """A minimal connection to the SQLite file with asyncpg's execute/close shape."""
    import aiosqlite

    database = await aiosqlite.connect(url.removeprefix("sqlite:///"))

    class Connection:
        async def execute(self, sql: str) -> None:
            await database.execute(sql)
            await database.commit()

        async def close(self) -> None:
            await database.close()

    return Connection()
