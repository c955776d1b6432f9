"""The ledger's one-transfer post on a bare asyncpg connection (the redemption hot path):
the same rules as `post_new_transfers`, attacked the same way. PostgreSQL only: SQLite has
no driver connection to share, and takes the portable path."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.wallet import test_ledger
from tests.wallet.test_ledger import (
    BANK,
    CHILD,
    MEAL,
    PHARMACY,
    SCHOOL,
    assert_balanced,
    top_up,
    transfer_count,
)
from wallet import ledger
from wallet.ledger import (
    InsufficientFunds,
    InvalidAmount,
    LedgerError,
    NewTransfer,
    NonCashable,
    PurposeMismatch,
    ReasonNotAllowed,
    SameAccount,
    TransferIdReused,
    UnknownAccount,
)
from wallet.ledger_driver import post_new_transfer, post_new_transfers_on_driver
from wallet.tables import LedgerTransfer

books = test_ledger.books  # the fixture: the ledger tests' accounts, nothing posted

pytestmark = pytest.mark.postgres_only


async def driver(session: AsyncSession):
    """The asyncpg connection under the session, inside the test's transaction."""
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


def meal(tid: str = "meal:1", *, debit: str = CHILD, credit: str = SCHOOL, amount: int = MEAL):
    return NewTransfer(
        transfer_id=tid, debit=debit, credit=credit, amount=amount, reason="MEAL_SERVED",
        family_id=None, person_id=None, metadata={"why": "lunch"},
    )  # fmt: skip


async def test_a_meal_moves_value_from_the_wallet_to_the_school(books):
    await top_up(books, 3 * MEAL)
    await post_new_transfer(connection=await driver(books), transfer=meal())
    assert await ledger.balance(session=books, account=CHILD) == 2 * MEAL
    assert await ledger.balance(session=books, account=SCHOOL) == MEAL
    row = await books.scalar(select(LedgerTransfer).where(LedgerTransfer.transfer_id == "meal:1"))
    assert (row.amount, row.reason, row.details) == (MEAL, "MEAL_SERVED", {"why": "lunch"})
    await assert_balanced(books)


@pytest.mark.parametrize(
    ("transfer", "refusal"),
    [
        (meal(amount=0), InvalidAmount),
        (meal(credit="merchant:nowhere"), UnknownAccount),
        (meal(credit=BANK), NonCashable),
        (meal(credit=PHARMACY), PurposeMismatch),
        (meal(amount=4 * MEAL), InsufficientFunds),
        (meal(credit=CHILD), SameAccount),
    ],
)
async def test_refusals_leave_the_books_as_they_were(books, transfer, refusal):
    await top_up(books, 3 * MEAL)
    before = await transfer_count(books)
    connection = await driver(books)
    with pytest.raises(refusal):
        # A refusal may come after the statement wrote its part: the caller rolls back (here
        # a savepoint), as after any ledger refusal.
        async with connection.transaction():
            await post_new_transfer(connection=connection, transfer=transfer)
    assert await transfer_count(books) == before
    assert await ledger.balance(session=books, account=CHILD) == 3 * MEAL
    await assert_balanced(books)


async def test_a_reused_transfer_id_is_refused(books):
    await top_up(books, 3 * MEAL)
    connection = await driver(books)
    await post_new_transfer(connection=connection, transfer=meal("meal:7"))
    with pytest.raises(TransferIdReused):
        # In a savepoint of its own: the refusal aborts what it ran in.
        async with connection.transaction():
            await post_new_transfer(connection=connection, transfer=meal("meal:7"))
    assert await ledger.balance(session=books, account=SCHOOL) == MEAL
    await assert_balanced(books)


@pytest.mark.parametrize("case", list(test_ledger.REUSED_ID_CASES))
@pytest.mark.parametrize("many", [False, True], ids=["one", "many"])
async def test_a_used_transfer_id_is_refused_before_flow_reason_or_money(books, case, many):
    # Given a meal-sized top-up posted under the id "top-up"
    await top_up(books, MEAL)
    before = await transfer_count(books)
    connection = await driver(books)
    content = {"reason": "MEAL_SERVED"} | test_ledger.REUSED_ID_CASES[case]
    item = NewTransfer(transfer_id="top-up", **content)
    # When the driver posts the id again for a transfer that also breaks another rule
    with pytest.raises(LedgerError) as refused:
        async with connection.transaction():
            if many:
                await post_new_transfers_on_driver(connection=connection, transfers=[item])
            else:
                await post_new_transfer(connection=connection, transfer=item)
    # Then the id is what is refused, as on the portable path, and nothing moved
    assert refused.value.code == "TRANSFER_ID_REUSED"
    assert await transfer_count(books) == before
    await assert_balanced(books)


@pytest.mark.parametrize("many", [False, True], ids=["one", "many"])
async def test_the_driver_refuses_a_reason_the_flow_does_not_carry(books, many):
    # Given a programme and a child's meals wallet
    connection = await driver(books)
    item = meal("odd", debit=test_ledger.MEALS, credit=CHILD)
    # When the driver posts programme -> wallet as a meal served
    with pytest.raises(ReasonNotAllowed):
        async with connection.transaction():
            if many:
                await post_new_transfers_on_driver(connection=connection, transfers=[item])
            else:
                await post_new_transfer(connection=connection, transfer=item)
    # Then nothing is posted
    assert await transfer_count(books) == 0
