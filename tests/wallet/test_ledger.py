"""The ledger: each invariant is attacked through the service and, where the database is the
last line of defence, around it with plain SQL.

Runs on SQLite and on PostgreSQL; the race test needs PostgreSQL's concurrent writers.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.tables import Family
from wallet import ledger
from wallet.ledger import (
    AccountConflict,
    FlowNotAllowed,
    InsufficientFunds,
    InvalidAmount,
    NonCashable,
    PurposeMismatch,
    ReversedAlready,
    SameAccount,
    TransferIdReused,
    UnknownAccount,
    UnknownTransfer,
)
from wallet.tables import LedgerAccount, LedgerTransfer

MEALS = "programme:SCHOOL_MEALS"
MEDICINES = "programme:MEDICINES"
CASH = "programme:SOCIAL_ASSISTANCE"
CHILD = "person:101:school_meals"
SIBLING = "person:102:school_meals"
SCHOOL = "merchant:school-17"
PHARMACY = "merchant:pharmacy-3"
BANK = "payout:bank"
SETTLEMENT = "settlement:treasury"

# (code, kind, purpose)
ACCOUNTS = [
    (MEALS, "budget_programme", "school_meals"),
    (MEDICINES, "budget_programme", "medicines"),
    (CASH, "budget_programme", None),
    (CHILD, "purpose_wallet", "school_meals"),
    (SIBLING, "purpose_wallet", "school_meals"),
    (SCHOOL, "merchant", "school_meals"),
    (PHARMACY, "merchant", "medicines"),
    (BANK, "bank_payout", None),
    (SETTLEMENT, "settlement", None),
]

MEAL = 85_000  # one hot meal, in tiyn


def _reason_between(debit: str, credit: str) -> str:
    """A reason the flow between the two accounts carries (any one, for refused flows)."""
    kinds = {code: kind for code, kind, _ in ACCOUNTS}
    flow = ledger.FLOWS.get((kinds[debit], kinds[credit]))
    return min(flow.reasons) if flow else ledger.Reason.VOUCHER_FUNDING


@pytest.fixture
async def books(session: AsyncSession) -> AsyncSession:
    """The accounts above, the two children's wallets owned by one family; nothing posted."""
    family = Family(region="Astana")
    session.add(family)
    await session.flush()
    for code, kind, purpose in ACCOUNTS:
        family_id = family.id if kind == "purpose_wallet" else None
        await ledger.open_account(
            session=session, code=code, kind=kind, purpose=purpose, family_id=family_id
        )
    return session


async def top_up(session: AsyncSession, amount: int, *, wallet: str = CHILD, tid: str = "top-up"):
    return await ledger.transfer(
        session=session,
        transfer_id=tid,
        debit=MEALS,
        credit=wallet,
        amount=amount,
        reason="VOUCHER_FUNDING",
    )


async def transfer_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(LedgerTransfer))


async def assert_balanced(session: AsyncSession) -> None:
    assert await ledger.trial_balance(session=session) == 0
    assert await ledger.accounts_disagreeing_with_transfers(session=session) == []


# --- the happy path -------------------------------------------------------------------------


async def test_meal_value_flows_programme_wallet_school_settlement(books):
    # Given a child's meals wallet topped up with three meals
    await top_up(books, 3 * MEAL)
    # When the school serves two and its invoice is paid
    for n in (1, 2):
        await ledger.transfer(
            session=books,
            transfer_id=f"meal-{n}",
            debit=CHILD,
            credit=SCHOOL,
            amount=MEAL,
            reason="MEAL_SERVED",
            metadata={"date": f"2026-09-0{n}"},
        )
    await ledger.transfer(
        session=books,
        transfer_id="invoice-1",
        debit=SCHOOL,
        credit=SETTLEMENT,
        amount=2 * MEAL,
        reason="INVOICE_PAID",
    )
    # Then every balance says where the value is, and the books balance
    balances = {
        code: await ledger.balance(session=books, account=code)
        for code in (MEALS, CHILD, SCHOOL, SETTLEMENT)
    }
    assert balances == {
        MEALS: -3 * MEAL,
        CHILD: MEAL,
        SCHOOL: 0,
        SETTLEMENT: 2 * MEAL,
    }
    await assert_balanced(books)
    lines = await ledger.statement(session=books, account=CHILD)
    assert [
        (line.transfer_id, line.amount, line.counterparty, line.balance_after) for line in lines
    ] == [
        ("top-up", 3 * MEAL, MEALS, 3 * MEAL),
        ("meal-1", -MEAL, SCHOOL, 2 * MEAL),
        ("meal-2", -MEAL, SCHOOL, MEAL),
    ]


async def test_cash_benefit_goes_to_the_bank_payout(books):
    # When a programme that is not purpose-bound pays a cash benefit
    await ledger.transfer(
        session=books,
        transfer_id="asp-1",
        debit=CASH,
        credit=BANK,
        amount=5_000_000,
        reason="BENEFIT_PAYMENT",
    )
    # Then the payout clearing holds it
    assert await ledger.balance(session=books, account=BANK) == 5_000_000
    await assert_balanced(books)


async def test_open_account_is_get_or_create_and_refuses_a_different_account(books):
    again = await ledger.open_account(
        session=books, code=SCHOOL, kind="merchant", purpose="school_meals"
    )
    assert again.code == SCHOOL
    assert await books.scalar(select(func.count()).select_from(LedgerAccount)) == len(ACCOUNTS)
    with pytest.raises(AccountConflict):
        await ledger.open_account(session=books, code=SCHOOL, kind="merchant", purpose="medicines")


# --- every transfer balances, with a positive amount between two accounts -------------------


@pytest.mark.parametrize("amount", [0, -1, -MEAL, 1.5, float(MEAL), True, "85000", 2**63])
async def test_an_amount_must_be_whole_tiyn_above_zero(books, amount):
    with pytest.raises(InvalidAmount) as refused:
        await ledger.transfer(
            session=books, transfer_id="bad", debit=MEALS, credit=CHILD, amount=amount, reason="X"
        )
    assert refused.value.code == "INVALID_AMOUNT"
    assert await transfer_count(books) == 0


async def test_an_account_cannot_pay_itself(books):
    with pytest.raises(SameAccount):
        await ledger.transfer(
            session=books, transfer_id="loop", debit=MEALS, credit=MEALS, amount=1, reason="X"
        )


async def test_an_unknown_account_is_refused(books):
    with pytest.raises(UnknownAccount) as refused:
        await top_up(books, MEAL, wallet="person:999:school_meals")
    assert refused.value.code == "UNKNOWN_ACCOUNT"
    with pytest.raises(UnknownAccount):
        await ledger.balance(session=books, account=10**12)


@pytest.mark.parametrize(
    ("amount", "same_account"),
    [(0, False), (-MEAL, False), (MEAL, True)],
    ids=["zero", "negative", "one-account"],
)
async def test_the_database_refuses_a_transfer_row_that_does_not_balance(
    books, amount, same_account
):
    # Given the two accounts' ids, and SQL that bypasses the service
    meals = await ledger.get_account(session=books, account=MEALS)
    child = await ledger.get_account(session=books, account=CHILD)
    credit = meals if same_account else child
    # Then a transfer with a non-positive amount, or one account on both sides, is refused
    with pytest.raises(IntegrityError):
        async with books.begin_nested():
            await books.execute(
                LedgerTransfer.__table__.insert().values(
                    transfer_id="raw",
                    debit_account_id=meals.id,
                    credit_account_id=credit.id,
                    amount=amount,
                    reason="RAW",
                    created_at=func.now(),
                )
            )


# --- a non-cashable account never goes negative ---------------------------------------------


async def test_a_purpose_wallet_cannot_be_overdrawn(books):
    # Given a wallet holding two meals
    await top_up(books, 2 * MEAL)
    # When three are charged
    await ledger.transfer(
        session=books,
        transfer_id="m1",
        debit=CHILD,
        credit=SCHOOL,
        amount=MEAL,
        reason="MEAL_SERVED",
    )
    with pytest.raises(InsufficientFunds) as refused:
        await ledger.transfer(
            session=books,
            transfer_id="m2",
            debit=CHILD,
            credit=SCHOOL,
            amount=2 * MEAL,
            reason="MEAL_SERVED",
        )
    # Then the overdraft is refused, nothing of it was written, and the session goes on
    assert refused.value.code == "INSUFFICIENT_FUNDS"
    assert await ledger.balance(session=books, account=CHILD) == MEAL
    assert await books.scalar(select(func.count()).where(LedgerTransfer.transfer_id == "m2")) == 0
    await ledger.transfer(
        session=books,
        transfer_id="m3",
        debit=CHILD,
        credit=SCHOOL,
        amount=MEAL,
        reason="MEAL_SERVED",
    )
    assert await ledger.balance(session=books, account=CHILD) == 0
    await assert_balanced(books)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_accounts SET debits_posted = credits_posted + 1 WHERE code = :code",
        "UPDATE ledger_accounts SET credits_posted = 0 WHERE code = :code",
        "UPDATE ledger_accounts SET may_go_negative = true WHERE code = :code",
        "UPDATE ledger_accounts SET debits_posted = -1, credits_posted = -1 WHERE code = :code",
    ],
    ids=["overdraw", "erase-credits", "allow-negative", "negative-totals"],
)
async def test_the_database_refuses_an_overdraft_written_around_the_service(books, statement):
    # Given a wallet that got two meals and spent one
    await top_up(books, 2 * MEAL)
    await ledger.transfer(
        session=books,
        transfer_id="m1",
        debit=CHILD,
        credit=SCHOOL,
        amount=MEAL,
        reason="MEAL_SERVED",
    )
    # When SQL overdraws it directly, or unlocks it for overdrafts: the CHECK refuses
    with pytest.raises(IntegrityError):
        async with books.begin_nested():
            await books.execute(text(statement), {"code": CHILD})
    assert await ledger.balance(session=books, account=CHILD) == MEAL


async def test_only_a_programme_opens_with_an_overdraft(books):
    accounts = (await books.scalars(select(LedgerAccount).order_by(LedgerAccount.code))).all()
    assert {a.code for a in accounts if a.may_go_negative} == {MEALS, MEDICINES, CASH}


# --- non-cashable value flows only to a merchant of its purpose -----------------------------


@pytest.mark.parametrize(
    ("debit", "credit", "refusal", "code"),
    [
        (CHILD, BANK, NonCashable, "NON_CASHABLE"),
        (CHILD, SIBLING, NonCashable, "NON_CASHABLE"),
        (CHILD, SETTLEMENT, NonCashable, "NON_CASHABLE"),
        (CHILD, MEALS, NonCashable, "NON_CASHABLE"),
        (CHILD, PHARMACY, PurposeMismatch, "PURPOSE_MISMATCH"),
        (SCHOOL, BANK, NonCashable, "NON_CASHABLE"),
        (MEALS, BANK, NonCashable, "NON_CASHABLE"),
        (MEDICINES, CHILD, PurposeMismatch, "PURPOSE_MISMATCH"),
        (CASH, CHILD, PurposeMismatch, "PURPOSE_MISMATCH"),
        (MEALS, SCHOOL, FlowNotAllowed, "FLOW_NOT_ALLOWED"),
        (BANK, SETTLEMENT, FlowNotAllowed, "FLOW_NOT_ALLOWED"),
    ],
    ids=[
        "meals-to-bank",
        "meals-to-another-person",
        "meals-to-settlement",
        "meals-back-to-programme",
        "meals-to-pharmacy",
        "school-to-bank",
        "meals-budget-to-bank",
        "medicines-budget-to-meals-wallet",
        "cash-budget-to-meals-wallet",
        "programme-skips-the-wallet",
        "bank-to-settlement",
    ],
)
async def test_purpose_bound_value_stays_with_its_purpose(books, debit, credit, refusal, code):
    # Given a child's meals wallet and a school, each holding value
    await top_up(books, 4 * MEAL)
    await ledger.transfer(
        session=books,
        transfer_id="meal",
        debit=CHILD,
        credit=SCHOOL,
        amount=MEAL,
        reason="MEAL_SERVED",
    )
    before = await transfer_count(books)
    # When value is sent where it may not go
    with pytest.raises(refusal) as refused:
        await ledger.transfer(
            session=books, transfer_id="out", debit=debit, credit=credit, amount=MEAL, reason="X"
        )
    # Then it is refused with a stable code, and nothing moved
    assert refused.value.code == code
    assert await transfer_count(books) == before
    assert await ledger.balance(session=books, account=CHILD) == 3 * MEAL
    await assert_balanced(books)


def test_may_flow_lists_the_allowed_flows():
    def flow(debit, credit, dp=None, cp=None):
        return ledger.may_flow(debit, credit, debit_purpose=dp, credit_purpose=cp)

    assert flow("budget_programme", "purpose_wallet", "medicines", "medicines")
    assert flow("budget_programme", "bank_payout")
    assert flow("purpose_wallet", "merchant", "school_meals", "school_meals")
    assert flow("merchant", "settlement", "school_meals")
    assert not flow("purpose_wallet", "merchant", "school_meals", "medicines")
    assert not flow("purpose_wallet", "merchant", None, None)
    assert not flow("budget_programme", "bank_payout", "medicines")
    assert not flow("purpose_wallet", "bank_payout", "medicines")
    assert not flow("purpose_wallet", "purpose_wallet", "medicines", "medicines")


# --- transfers are immutable ----------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_transfers SET amount = amount + 1 WHERE transfer_id = 'top-up'",
        "UPDATE ledger_transfers SET reason = 'EDITED'",
        "DELETE FROM ledger_transfers WHERE transfer_id = 'top-up'",
        "DELETE FROM ledger_transfers",
    ],
    ids=["update-amount", "update-all", "delete-one", "delete-all"],
)
async def test_a_transfer_cannot_be_changed_or_deleted(books, statement):
    await top_up(books, MEAL)
    with pytest.raises(IntegrityError, match="append-only"):
        async with books.begin_nested():
            await books.execute(text(statement))
    assert await transfer_count(books) == 1


# --- idempotency ----------------------------------------------------------------------------


async def test_a_replayed_transfer_is_posted_once(books):
    first = await top_up(books, MEAL, tid="client-42")
    # When the client retries the same transfer (a lost response, a double tap)
    again = await top_up(books, MEAL, tid="client-42")
    # Then it gets the first transfer back and the money moved once
    assert again.id == first.id
    assert await transfer_count(books) == 1
    assert await ledger.balance(session=books, account=CHILD) == MEAL


async def test_a_replay_is_answered_before_balance_rules(books):
    # Given a wallet drained by a redemption
    await top_up(books, MEAL)
    spend = {"debit": CHILD, "credit": SCHOOL, "amount": MEAL, "reason": "MEAL_SERVED"}
    first = await ledger.transfer(session=books, transfer_id="spend", **spend)
    # When the client retries it: the empty wallet does not make the retry fail
    again = await ledger.transfer(session=books, transfer_id="spend", **spend)
    assert again.id == first.id


@pytest.mark.parametrize(
    "change",
    [
        {"amount": MEAL + 1},
        {"credit": SIBLING},
        {"reason": "OTHER"},
        {"metadata": {"note": "different"}},
    ],
    ids=["amount", "account", "reason", "metadata"],
)
async def test_a_transfer_id_reused_for_different_content_is_refused(books, change):
    same = {"debit": MEALS, "credit": CHILD, "amount": MEAL, "reason": "VOUCHER_FUNDING"}
    await ledger.transfer(session=books, transfer_id="client-7", **same)
    with pytest.raises(TransferIdReused) as refused:
        await ledger.transfer(session=books, transfer_id="client-7", **(same | change))
    assert refused.value.code == "TRANSFER_ID_REUSED"
    assert await transfer_count(books) == 1


# --- corrections are reversing transfers, once ----------------------------------------------


async def test_a_redemption_is_reversed_once(books):
    # Given a meal charged by mistake
    await top_up(books, MEAL)
    await ledger.transfer(
        session=books,
        transfer_id="meal",
        debit=CHILD,
        credit=SCHOOL,
        amount=MEAL,
        reason="MEAL_SERVED",
    )
    # When it is reversed (value goes back into the purpose wallet), and the reversal replayed
    reversal = await ledger.reverse(
        session=books, transfer_id="meal-fix", original_transfer_id="meal", reason="REVERSAL"
    )
    replay = await ledger.reverse(
        session=books, transfer_id="meal-fix", original_transfer_id="meal", reason="REVERSAL"
    )
    # Then the meal is back in the wallet, once
    assert replay.id == reversal.id
    assert reversal.amount == MEAL
    assert await ledger.balance(session=books, account=CHILD) == MEAL
    assert await ledger.balance(session=books, account=SCHOOL) == 0
    assert (await ledger.statement(session=books, account=CHILD))[-1].reverses == "meal"
    # and a second reversal under another id is refused
    with pytest.raises(ReversedAlready) as refused:
        await ledger.reverse(session=books, transfer_id="meal-fix-2", original_transfer_id="meal")
    assert refused.value.code == "REVERSED_ALREADY"
    await assert_balanced(books)


async def test_a_transfer_names_whom_it_was_spent_on_and_its_reversal_too(books):
    # Given a meal served to a child of the family that owns the wallet
    family_id = (await ledger.get_account(session=books, account=CHILD)).family_id
    await top_up(books, MEAL)
    meal = await ledger.transfer(
        session=books,
        transfer_id="meal",
        debit=CHILD,
        credit=SCHOOL,
        amount=MEAL,
        reason="MEAL_SERVED",
        family_id=family_id,
    )
    # When it is reversed
    undo = await ledger.reverse(session=books, transfer_id="undo", original_transfer_id="meal")
    # Then both carry the family, so the family's spending nets to zero
    assert (meal.family_id, undo.family_id) == (family_id, family_id)
    # and replaying the meal for another family is another transfer, refused
    with pytest.raises(TransferIdReused):
        await ledger.transfer(
            session=books,
            transfer_id="meal",
            debit=CHILD,
            credit=SCHOOL,
            amount=MEAL,
            reason="MEAL_SERVED",
            family_id=None,
        )


async def test_the_database_refuses_a_second_reversal_written_around_the_service(books):
    first = await top_up(books, 2 * MEAL)
    await ledger.reverse(session=books, transfer_id="undo", original_transfer_id="top-up")
    meals = await ledger.get_account(session=books, account=MEALS)
    child = await ledger.get_account(session=books, account=CHILD)
    with pytest.raises(IntegrityError):
        async with books.begin_nested():
            await books.execute(
                LedgerTransfer.__table__.insert().values(
                    transfer_id="undo-again",
                    debit_account_id=child.id,
                    credit_account_id=meals.id,
                    amount=first.amount,
                    reason="REVERSAL",
                    reverses_transfer_id=first.id,
                    created_at=func.now(),
                )
            )


async def test_a_reversal_obeys_the_balance_floor(books):
    # Given a top-up already spent at the school
    await top_up(books, MEAL)
    await ledger.transfer(
        session=books,
        transfer_id="meal",
        debit=CHILD,
        credit=SCHOOL,
        amount=MEAL,
        reason="MEAL_SERVED",
    )
    # When the top-up is reversed: the wallet no longer holds it
    with pytest.raises(InsufficientFunds):
        await ledger.reverse(session=books, transfer_id="undo", original_transfer_id="top-up")
    # Unless the meal is reversed first
    await ledger.reverse(session=books, transfer_id="undo-meal", original_transfer_id="meal")
    await ledger.reverse(session=books, transfer_id="undo", original_transfer_id="top-up")
    assert await ledger.balance(session=books, account=CHILD) == 0
    assert await ledger.balance(session=books, account=MEALS) == 0
    await assert_balanced(books)


async def test_reversing_an_unknown_transfer_is_refused(books):
    with pytest.raises(UnknownTransfer):
        await ledger.reverse(session=books, transfer_id="undo", original_transfer_id="nothing")


async def test_a_reversal_id_reused_for_another_transfer_is_refused(books):
    await top_up(books, MEAL)
    with pytest.raises(TransferIdReused):
        await ledger.reverse(session=books, transfer_id="top-up", original_transfer_id="top-up")


# --- the trial balance ----------------------------------------------------------------------


async def test_the_books_balance_after_many_operations_some_refused(books):
    # Given a seeded mix of top-ups, redemptions (some too large), settlements, reversals,
    # replays and forbidden flows
    rng = random.Random(20260901)
    codes = [code for code, _kind, _purpose in ACCOUNTS]
    posted: list[str] = []
    refused = 0
    for n in range(300):
        roll = rng.random()
        try:
            if roll < 0.25:
                await top_up(
                    books,
                    rng.randint(1, 5) * MEAL,
                    wallet=rng.choice([CHILD, SIBLING]),
                    tid=f"t{n}",
                )
            elif roll < 0.55:
                await ledger.transfer(
                    session=books,
                    transfer_id=f"t{n}",
                    debit=rng.choice([CHILD, SIBLING]),
                    credit=SCHOOL,
                    amount=rng.randint(1, 3) * MEAL,
                    reason="MEAL_SERVED",
                )
            elif roll < 0.65:
                await ledger.transfer(
                    session=books,
                    transfer_id=f"t{n}",
                    debit=SCHOOL,
                    credit=SETTLEMENT,
                    amount=rng.randint(1, 4) * MEAL,
                    reason="INVOICE_PAID",
                )
            elif roll < 0.80 and posted:
                await ledger.reverse(
                    session=books, transfer_id=f"t{n}", original_transfer_id=rng.choice(posted)
                )
            elif roll < 0.90 and posted:
                again = await books.scalar(
                    select(LedgerTransfer).where(LedgerTransfer.transfer_id == rng.choice(posted))
                )
                if again.reverses_transfer_id is None:
                    await ledger.transfer(
                        session=books,
                        transfer_id=again.transfer_id,
                        debit=again.debit_account_id,
                        credit=again.credit_account_id,
                        amount=again.amount,
                        reason=again.reason,
                        metadata=again.details,
                    )
                continue  # a replay posts nothing new
            else:
                debit, credit = rng.choice(codes), rng.choice(codes)
                await ledger.transfer(
                    session=books,
                    transfer_id=f"t{n}",
                    debit=debit,
                    credit=credit,
                    amount=rng.choice([MEAL, 0, -MEAL]),
                    reason=_reason_between(debit, credit),
                )
            posted.append(f"t{n}")
        except ledger.LedgerError:
            refused += 1
    # Then some of each happened, and the books balance, account by account
    assert refused > 20
    assert await transfer_count(books) > 100
    await assert_balanced(books)
    # and no purpose-bound account is below zero
    wallets = await books.scalars(select(LedgerAccount).where(~LedgerAccount.may_go_negative))
    assert all(account.balance >= 0 for account in wallets)


# --- concurrency (PostgreSQL) ---------------------------------------------------------------


async def _committed_meal_accounts(engine, *, top_up: int) -> tuple[str, str, str, str]:
    """A programme, a child's meal wallet holding `top_up` and a school, committed outside any
    test transaction (the caller deletes them); returns (run, programme, wallet, school)."""
    run = uuid.uuid4().hex[:12]
    programme, wallet, school = (f"{code}:{run}" for code in (MEALS, CHILD, SCHOOL))
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        for code, kind in (
            (programme, "budget_programme"),
            (wallet, "purpose_wallet"),
            (school, "merchant"),
        ):
            await ledger.open_account(session=setup, code=code, kind=kind, purpose="school_meals")
        await ledger.transfer(
            session=setup,
            transfer_id=f"{run}:top-up",
            debit=programme,
            credit=wallet,
            amount=top_up,
            reason="VOUCHER_FUNDING",
        )
        await setup.commit()
    return run, programme, wallet, school


@pytest.mark.postgres_only
async def test_twenty_concurrent_spends_from_a_wallet_that_affords_five(engine):
    # Given, committed outside any test transaction, a wallet holding five meals
    run, programme, wallet, school = await _committed_meal_accounts(engine, top_up=5 * MEAL)
    try:
        # When twenty sessions each try to spend one meal at the same time
        start = asyncio.Event()

        async def spend(n: int) -> str:
            async with AsyncSession(engine) as session:
                await session.execute(text("SELECT 1"))  # hold a connection before the start
                await start.wait()
                try:
                    await ledger.transfer(
                        session=session,
                        transfer_id=f"{run}:meal-{n}",
                        debit=wallet,
                        credit=school,
                        amount=MEAL,
                        reason="MEAL_SERVED",
                    )
                except InsufficientFunds as refused:
                    await session.rollback()
                    return refused.code
                await session.commit()
                return "POSTED"

        tasks = [asyncio.create_task(spend(n)) for n in range(20)]
        await asyncio.sleep(0.2)
        start.set()
        outcomes = await asyncio.gather(*tasks)
        # Then exactly five succeed, and the wallet is empty, not negative
        assert sorted(outcomes).count("POSTED") == 5
        assert outcomes.count("INSUFFICIENT_FUNDS") == 15
        async with AsyncSession(engine) as check:
            assert await ledger.balance(session=check, account=wallet) == 0
            assert await ledger.balance(session=check, account=school) == 5 * MEAL
            assert await ledger.accounts_disagreeing_with_transfers(session=check) == []
    finally:
        await _delete_committed_accounts(engine, codes=[programme, wallet, school])


@pytest.mark.postgres_only
async def test_opposite_concurrent_transfers_do_not_deadlock(engine):
    # Given a wallet and a school committed outside any test transaction, each holding value
    run, programme, wallet, school = await _committed_meal_accounts(engine, top_up=40 * MEAL)
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        for n in range(10):
            await ledger.transfer(
                session=setup,
                transfer_id=f"{run}:meal-{n}",
                debit=wallet,
                credit=school,
                amount=MEAL,
                reason="MEAL_SERVED",
            )
        await setup.commit()
    try:
        # When redemptions (wallet -> school) and reversals (school -> wallet) race
        async def post(n: int) -> None:
            async with AsyncSession(engine) as session:
                if n % 2:
                    await ledger.reverse(
                        session=session,
                        transfer_id=f"{run}:undo-{n}",
                        original_transfer_id=f"{run}:meal-{n // 2}",
                    )
                else:
                    await ledger.transfer(
                        session=session,
                        transfer_id=f"{run}:more-{n}",
                        debit=wallet,
                        credit=school,
                        amount=MEAL,
                        reason="MEAL_SERVED",
                    )
                await session.commit()

        await asyncio.wait_for(asyncio.gather(*(post(n) for n in range(20))), timeout=30)
        # Then all posted, and the totals agree with the transfers
        async with AsyncSession(engine) as check:
            assert await ledger.balance(session=check, account=school) == 10 * MEAL
            assert await ledger.balance(session=check, account=wallet) == 30 * MEAL
            assert await ledger.accounts_disagreeing_with_transfers(session=check) == []
    finally:
        await _delete_committed_accounts(engine, codes=[programme, wallet, school])


async def _delete_committed_accounts(engine, *, codes: list[str]) -> None:
    """Remove what a race test committed; transfers are append-only, so only here, briefly,
    in one transaction, does the table's owner switch the guard off."""
    async with engine.begin() as connection:
        ids = select(LedgerAccount.id).where(LedgerAccount.code.in_(codes)).scalar_subquery()
        mine = (LedgerTransfer.debit_account_id.in_(ids)) | (
            LedgerTransfer.credit_account_id.in_(ids)
        )
        await connection.execute(
            text("ALTER TABLE ledger_transfers DISABLE TRIGGER ledger_transfers_append_only")
        )
        # Reversals first: they refer to the transfers they reverse.
        await connection.execute(
            LedgerTransfer.__table__.delete().where(
                mine, LedgerTransfer.reverses_transfer_id.is_not(None)
            )
        )
        await connection.execute(LedgerTransfer.__table__.delete().where(mine))
        await connection.execute(
            text("ALTER TABLE ledger_transfers ENABLE TRIGGER ledger_transfers_append_only")
        )
        await connection.execute(
            LedgerAccount.__table__.delete().where(LedgerAccount.code.in_(codes))
        )


# --- one order of refusals on every path ------------------------------------------------------

# A used id with other content, which also breaks a later rule: the money, the flow, the reason.
REUSED_ID_CASES = {
    "too-little-money": {"debit": CHILD, "credit": SCHOOL, "amount": 10 * MEAL},
    "refused-flow": {"debit": CHILD, "credit": BANK, "amount": MEAL},
    "wrong-reason": {"debit": MEALS, "credit": CHILD, "amount": MEAL, "reason": "MEAL_SERVED"},
}


async def post_on(path: str, session: AsyncSession, transfer_id: str, **content) -> None:
    """Post one transfer through one of the ORM's two entries to the ledger."""
    content = {"reason": "MEAL_SERVED"} | content
    if path == "transfer":
        await ledger.transfer(session=session, transfer_id=transfer_id, **content)
    else:
        await ledger.post_new_transfers(
            session=session, transfers=[ledger.NewTransfer(transfer_id=transfer_id, **content)]
        )


@pytest.mark.parametrize("path", ["transfer", "post_new_transfers"])
@pytest.mark.parametrize("case", list(REUSED_ID_CASES))
async def test_a_used_transfer_id_is_refused_before_flow_reason_or_money(books, path, case):
    # Given a meal-sized top-up posted under the id "top-up"
    await top_up(books, MEAL)
    before = await transfer_count(books)
    # When the id is used again for a transfer that also breaks another rule
    with pytest.raises(ledger.LedgerError) as refused:
        async with books.begin_nested():
            await post_on(path, books, "top-up", **REUSED_ID_CASES[case])
    # Then the id is what is refused, on every path, and nothing moved
    assert refused.value.code == "TRANSFER_ID_REUSED"
    assert await transfer_count(books) == before
    await assert_balanced(books)


@pytest.mark.parametrize("path", ["transfer", "post_new_transfers"])
async def test_each_flow_carries_only_its_own_reasons(books, path):
    # Given a programme and a child's meals wallet
    # When the programme pays the wallet for a reason that belongs to another flow
    with pytest.raises(ledger.ReasonNotAllowed) as refused:
        async with books.begin_nested():
            await post_on(path, books, "odd", debit=MEALS, credit=CHILD, amount=MEAL)
    # Then it is refused with its own code, and an unknown reason is refused alike
    assert refused.value.code == "REASON_NOT_ALLOWED"
    with pytest.raises(ledger.ReasonNotAllowed):
        async with books.begin_nested():
            await post_on(path, books, "odd", debit=MEALS, credit=CHILD, amount=MEAL,
                          reason="POCKET_MONEY")  # fmt: skip
    assert await transfer_count(books) == 0
    with pytest.raises(ledger.ReasonNotAllowed):
        await ledger.reverse(
            session=books, transfer_id="r", original_transfer_id="x", reason="MEAL_SERVED"
        )


async def test_the_overdraft_rule_lets_a_wallet_reach_zero_and_no_further(books):
    # Given a child's wallet holding one meal, and the programme that paid it
    await top_up(books, MEAL)
    accounts = LedgerAccount.__table__

    async def allows(code: str, debit: int) -> bool:
        rule = ledger.floor_condition(accounts, debit=debit, credit=0)
        return await books.scalar(select(rule).where(accounts.c.code == code))

    # Then the rule lets the wallet pay its last tiyn but not one more; a programme any sum
    assert await allows(CHILD, MEAL) and not await allows(CHILD, MEAL + 1)
    assert await allows(MEALS, 10**12)
