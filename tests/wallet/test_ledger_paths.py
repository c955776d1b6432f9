"""One input, one answer, on every path that posts to the ledger.

Each case below is posted through every path this database has: the idempotent `transfer`
and the posting primitive on the ORM (`post_new_transfers`), on SQLite and PostgreSQL; on
PostgreSQL also the hot path's single statement (`post_new_transfer`) and the primitive on
the driver (`post_new_transfers_on_driver`). Every path must answer with the same code (or
post), and a refusal must leave the books as they were. Each case starts from the same
books: a child's meals wallet holding one meal, funded under the id "top-up".
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.wallet import test_ledger
from tests.wallet.test_ledger import (
    BANK,
    CHILD,
    MEAL,
    MEALS,
    PHARMACY,
    SCHOOL,
    assert_balanced,
    top_up,
    transfer_count,
)
from wallet import ledger
from wallet.ledger import LedgerError, NewTransfer
from wallet.ledger_driver import post_new_transfer, post_new_transfers_on_driver

books = test_ledger.books  # the fixture: the ledger tests' accounts, nothing posted

POSTED = "POSTED"
MEAL_PAID = {"debit": CHILD, "credit": SCHOOL, "amount": MEAL, "reason": "MEAL_SERVED"}

# name -> (the transfer's content, over a meal paid to the school; the answer on every path)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "a meal paid": ({}, POSTED),
    "zero": ({"amount": 0}, "INVALID_AMOUNT"),
    "a bool for an amount": ({"amount": True}, "INVALID_AMOUNT"),
    "a float for an amount": ({"amount": 850.0}, "INVALID_AMOUNT"),
    "an unknown debit": ({"debit": "person:999:school_meals"}, "UNKNOWN_ACCOUNT"),
    "an unknown credit": ({"credit": "merchant:nowhere"}, "UNKNOWN_ACCOUNT"),
    "one account on both sides": ({"credit": CHILD}, "SAME_ACCOUNT"),
    "a used id, too little money": (
        {"transfer_id": "top-up", "amount": 10 * MEAL},
        "TRANSFER_ID_REUSED",
    ),
    "a used id, a refused flow": ({"transfer_id": "top-up", "credit": BANK}, "TRANSFER_ID_REUSED"),
    "a used id, the wrong reason": (
        {"transfer_id": "top-up", "debit": MEALS, "credit": CHILD},
        "TRANSFER_ID_REUSED",
    ),
    "a used id, an unknown account": (
        {"transfer_id": "top-up", "credit": "merchant:nowhere"},
        "UNKNOWN_ACCOUNT",
    ),
    "meals money to a bank": ({"credit": BANK}, "NON_CASHABLE"),
    "meals money to a pharmacy": ({"credit": PHARMACY}, "PURPOSE_MISMATCH"),
    "a school paying a child": ({"debit": SCHOOL, "credit": CHILD}, "FLOW_NOT_ALLOWED"),
    "a programme paying a meal": ({"debit": MEALS, "credit": CHILD}, "REASON_NOT_ALLOWED"),
    "a reason the ledger does not know": ({"reason": "POCKET_MONEY"}, "REASON_NOT_ALLOWED"),
    "too little money": ({"amount": 2 * MEAL}, "INSUFFICIENT_FUNDS"),
    "too little money, the wrong reason": (
        {"amount": 2 * MEAL, "reason": "VOUCHER_FUNDING"},
        "REASON_NOT_ALLOWED",
    ),
    "the whole wallet": ({"amount": MEAL}, POSTED),
    "one tiyn more than the wallet": ({"amount": MEAL + 1}, "INSUFFICIENT_FUNDS"),
}


async def _driver(session: AsyncSession):
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


async def _post_orm(session: AsyncSession, path: str, item: NewTransfer) -> None:
    if path == "transfer":
        await ledger.transfer(
            session=session, transfer_id=item.transfer_id, debit=item.debit,
            credit=item.credit, amount=item.amount, reason=item.reason,
        )  # fmt: skip
    else:
        await ledger.post_new_transfers(session=session, transfers=[item])


async def _answer(session: AsyncSession, path: str, item: NewTransfer) -> str:
    """What `path` answers to `item`, the books put back as they were afterwards."""
    before = (await transfer_count(session), await ledger.balance(session=session, account=CHILD))
    if path.startswith("driver"):
        connection = await _driver(session)
        savepoint = connection.transaction()
        await savepoint.start()
        try:
            if path == "driver one":
                await post_new_transfer(connection=connection, transfer=item)
            else:
                await post_new_transfers_on_driver(connection=connection, transfers=[item])
            answer = POSTED
        except LedgerError as refused:
            answer = refused.code
        await savepoint.rollback()
    else:
        savepoint = await session.begin_nested()
        try:
            await _post_orm(session, path, item)
            answer = POSTED
        except LedgerError as refused:
            answer = refused.code
        await savepoint.rollback()
    # The next path starts from the same books.
    assert (
        await transfer_count(session),
        await ledger.balance(session=session, account=CHILD),
    ) == before
    return answer


def _paths(session: AsyncSession) -> list[str]:
    paths = ["transfer", "post_new_transfers"]
    if session.get_bind().dialect.name == "postgresql":
        paths += ["driver one", "driver many"]
    return paths


@pytest.mark.parametrize("case", list(CASES))
async def test_every_path_gives_the_same_answer(books, case):
    # Given a child's wallet holding one meal, funded under "top-up"
    await top_up(books, MEAL)
    content, expected = CASES[case]
    item = NewTransfer(**({"transfer_id": "meal:1:2026-11-18:lunch"} | MEAL_PAID | content))
    # When the same transfer is posted through every path, each from the same books
    answers = {path: await _answer(books, path, item) for path in _paths(books)}
    # Then every path gives the same answer, the expected one
    assert answers == dict.fromkeys(answers, expected)
    assert await ledger.balance(session=books, account=CHILD) == MEAL
    await assert_balanced(books)


async def test_a_repeat_is_replayed_only_where_the_caller_may_repeat(books):
    # Given a meal paid under its id
    await top_up(books, 3 * MEAL)
    item = NewTransfer(transfer_id="meal:1", **MEAL_PAID)
    await ledger.post_new_transfers(session=books, transfers=[item])
    # When the same transfer is posted again on every path
    answers = {path: await _answer(books, path, item) for path in _paths(books)}
    # Then the idempotent `transfer` replays it, and the paths for ids fresh by construction
    # (a meal's, guarded by its row) refuse it: the reference model's `fresh` flag
    assert answers.pop("transfer") == POSTED
    assert answers == dict.fromkeys(answers, "TRANSFER_ID_REUSED")
    assert await ledger.balance(session=books, account=CHILD) == 2 * MEAL
