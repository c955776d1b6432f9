"""`post_new_transfers` for one transfer, as SQL a hot path runs on asyncpg (PostgreSQL).

The redemption hot path does its whole transaction on the driver's connection in few
statements: through the ORM, a transfer's statements cost about a millisecond of Python,
more than the database spends on them. The rules are the ledger's own (`wallet.ledger`):

- the two accounts are locked in primary-key order (`ORDER BY id FOR UPDATE`), the order
  `transfer` and `post_new_transfers` lock in, so none of them deadlocks with another;
- the refusals come in the ledger's one order: the accounts, a used transfer id, the flow and
  its reason (`check_flow`), the money;
- a wallet is not overdrawn: the UPDATE moves its totals only under the ledger's overdraft
  rule (`wallet.ledger.floor_condition`, rendered into these statements), and the transfer
  row goes in only when both accounts moved;
- the transfer row's columns and their types are read from the table's definition
  (`wallet.ledger.TRANSFER_COLUMNS`, `transfer_row`), not written out again.

`TRANSFER_CTES` are common table expressions for a hot path's own statement, under a guard of
its own ({guard}: SQL that is true when the transfer is to be posted); `TRANSFER_RESULT`
selects what they did, and `check_posted` turns that into the ledger's refusal, if any. A
refusal raises after the statement wrote its part: the caller's transaction must roll back,
as it must after any ledger refusal. `post_new_transfer` is the same as a statement alone.

`post_new_transfers_on_driver` posts many transfers (a group of redemptions) in three
statements, every rule checked before anything is written.
"""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg
from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql

from familymap.driver_sql import driver_statement
from familymap.orm import utcnow
from wallet.ledger import (
    TRANSFER_COLUMNS,
    InsufficientFunds,
    NewTransfer,
    SameAccount,
    TransferIdReused,
    UnknownAccount,
    check_amount,
    check_flow,
    floor_condition,
    transfer_row,
)
from wallet.tables import LedgerAccount, LedgerTransfer

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialects are unannotated
# Each column's type, without a length: a cast to VARCHAR(n) would cut a longer value short
# where the column itself refuses it.
_TYPES = {
    c.name: re.sub(r"\(\d+\)", "", c.type.compile(dialect=_DIALECT))
    for c in LedgerTransfer.__table__.c
}


def _floor(account: str, *, debit: str, credit: str) -> str:
    """`floor_condition` as SQL text over the accounts row named `account`."""
    accounts = LedgerAccount.__table__.alias(account)
    condition = floor_condition(
        accounts, debit=literal_column(debit), credit=literal_column(credit)
    )
    return f"({condition.compile(dialect=_DIALECT, compile_kwargs={'literal_binds': True})})"


# What each side of the transfer adds to a locked account's totals.
_DEBITED = "CASE WHEN account.code = :ledger_debit THEN CAST(:ledger_amount AS bigint) ELSE 0 END"
_CREDITED = "CASE WHEN account.code = :ledger_credit THEN CAST(:ledger_amount AS bigint) ELSE 0 END"
# The inserted row: the two accounts as locked, every other column a parameter of its type.
_ROW = {
    name: {"debit_account_id": "debit.id", "credit_account_id": "credit.id"}.get(
        name, f"CAST(:ledger_{name} AS {_TYPES[name]})"
    )
    for name in TRANSFER_COLUMNS
}

TRANSFER_CTES = f"""
ledger_locked AS (
    SELECT id, code, kind, purpose, may_go_negative, debits_posted, credits_posted
    FROM ledger_accounts
    WHERE code IN (:ledger_debit, :ledger_credit) AND {{guard}}
    ORDER BY id
    FOR UPDATE
),
ledger_moved AS (
    UPDATE ledger_accounts AS account
    SET debits_posted = account.debits_posted + {_DEBITED},
        credits_posted = account.credits_posted + {_CREDITED}
    FROM ledger_locked AS locked
    WHERE account.id = locked.id
      AND {_floor("account", debit=_DEBITED, credit=_CREDITED)}
    RETURNING account.id
),
ledger_posted AS (
    INSERT INTO ledger_transfers ({", ".join(_ROW)})
    SELECT {", ".join(_ROW.values())}
    FROM ledger_locked AS debit, ledger_locked AS credit
    WHERE debit.code = :ledger_debit AND credit.code = :ledger_credit AND debit.id <> credit.id
      AND (SELECT count(*) FROM ledger_moved) = 2
    RETURNING id
)"""  # noqa: S608 (constant fragments, no input: every value is a bound parameter)
# What the CTEs did: the two accounts as locked (NULL where there is none), whether the
# transfer id was taken before the statement, how many accounts moved, and whether the
# transfer went in. To follow FROM (SELECT 1) AS one.
TRANSFER_RESULT_COLUMNS = """
    debit.id AS ledger_debit_id, debit.code AS ledger_debit_code,
    debit.kind AS ledger_debit_kind, debit.purpose AS ledger_debit_purpose,
    credit.id AS ledger_credit_id, credit.code AS ledger_credit_code,
    credit.kind AS ledger_credit_kind, credit.purpose AS ledger_credit_purpose,
    EXISTS (SELECT 1 FROM ledger_transfers WHERE transfer_id = :ledger_transfer_id)
        AS ledger_id_taken,
    (SELECT count(*) FROM ledger_moved) AS ledger_moved,
    (SELECT count(*) FROM ledger_posted) AS ledger_posted"""
TRANSFER_RESULT_JOINS = """
    LEFT JOIN ledger_locked AS debit ON debit.code = :ledger_debit
    LEFT JOIN ledger_locked AS credit ON credit.code = :ledger_credit"""

# Constant fragments, no input: every value is a bound parameter.
_POST = driver_statement(
    f"WITH {TRANSFER_CTES.format(guard='true')} "  # noqa: S608
    f"SELECT {TRANSFER_RESULT_COLUMNS} FROM (SELECT 1) AS one {TRANSFER_RESULT_JOINS}"
)


def transfer_values(transfer: NewTransfer) -> dict[str, Any]:
    """The parameters of `TRANSFER_CTES` for `transfer` (its amount checked)."""
    check_amount(transfer.amount)
    row = transfer_row(transfer, 0, 0, utcnow())
    row["metadata"] = json.dumps(row["metadata"])
    return {f"ledger_{name}": value for name, value in row.items()} | {
        "ledger_debit": transfer.debit,
        "ledger_credit": transfer.credit,
    }


class _End:
    """An account as `check_flow` reads it, from the result's columns."""

    __slots__ = ("code", "kind", "purpose")

    def __init__(self, code: str, kind: str, purpose: str | None) -> None:
        self.code, self.kind, self.purpose = code, kind, purpose


def check_posted(transfer: NewTransfer, result: asyncpg.Record) -> None:
    """Raise the ledger's refusal, in its order, if the CTEs did not post `transfer` as the
    rules allow."""
    if result["ledger_debit_id"] is None:
        raise UnknownAccount(f"no ledger account {transfer.debit!r}")
    if result["ledger_credit_id"] is None:
        raise UnknownAccount(f"no ledger account {transfer.credit!r}")
    if result["ledger_debit_id"] == result["ledger_credit_id"]:
        raise SameAccount(f"{transfer.debit} cannot pay itself")
    if result["ledger_id_taken"]:
        raise TransferIdReused(f"transfer id {transfer.transfer_id!r} was used before")
    check_flow(
        _End(transfer.debit, result["ledger_debit_kind"], result["ledger_debit_purpose"]),
        _End(transfer.credit, result["ledger_credit_kind"], result["ledger_credit_purpose"]),
        transfer.reason,
    )
    if not result["ledger_posted"]:
        raise InsufficientFunds(f"{transfer.debit} holds less than {transfer.amount} tiyn")


async def post_new_transfer(*, connection: asyncpg.Connection, transfer: NewTransfer) -> None:
    """Post one transfer whose id is fresh by construction, in the connection's transaction."""
    try:
        result = await connection.fetchrow(_POST.sql, *_POST.args(transfer_values(transfer)))
    except asyncpg.UniqueViolationError as exc:
        raise TransferIdReused(f"transfer id {transfer.transfer_id!r} was used before") from exc
    assert result is not None  # the statement always answers one row
    check_posted(transfer, result)


# --- many transfers at once (a group of redemptions) --------------------------------------

_LOCK_ACCOUNTS = """
SELECT id, code, kind, purpose, may_go_negative, debits_posted, credits_posted
FROM ledger_accounts WHERE code = ANY($1::varchar[]) ORDER BY id FOR UPDATE
"""
_MOVE_TOTALS = f"""
UPDATE ledger_accounts AS account
SET debits_posted = account.debits_posted + moving.debit,
    credits_posted = account.credits_posted + moving.credit
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS moving(id, debit, credit)
WHERE account.id = moving.id AND {_floor("account", debit="moving.debit", credit="moving.credit")}
RETURNING account.id
"""  # noqa: S608 (constant fragments, no input)
_INSERT_TRANSFERS = f"""
INSERT INTO ledger_transfers ({", ".join(TRANSFER_COLUMNS)})
SELECT * FROM unnest({
    ", ".join(f"${n}::{_TYPES[name]}[]" for n, name in enumerate(TRANSFER_COLUMNS, start=1))
})
"""  # noqa: S608 (constant fragments, no input)


async def post_new_transfers_on_driver(
    *, connection: asyncpg.Connection, transfers: list[NewTransfer]
) -> None:
    """`wallet.ledger.post_new_transfers` in three statements on an asyncpg connection, with
    its order of refusals: the accounts locked in primary-key order, then the rows (a used id
    fails on its unique index), the flows, and the totals moved under the overdraft rule.
    A refusal may come after a write: the caller's transaction must roll back."""
    if not transfers:
        return
    for item in transfers:
        check_amount(item.amount)
    codes = sorted({code for item in transfers for code in (item.debit, item.credit)})
    accounts = {row["code"]: row for row in await connection.fetch(_LOCK_ACCOUNTS, codes)}
    if missing := [code for code in codes if code not in accounts]:
        raise UnknownAccount(f"no ledger account {missing[0]!r}")
    for item in transfers:
        if accounts[item.debit]["id"] == accounts[item.credit]["id"]:
            raise SameAccount(f"{item.debit} cannot pay itself")
    stamp = utcnow()
    rows = [
        transfer_row(item, accounts[item.debit]["id"], accounts[item.credit]["id"], stamp)
        for item in transfers
    ]
    for row in rows:
        row["metadata"] = json.dumps(row["metadata"])
    try:
        await connection.execute(
            _INSERT_TRANSFERS, *([row[name] for row in rows] for name in TRANSFER_COLUMNS)
        )
    except asyncpg.UniqueViolationError as exc:
        raise TransferIdReused("a transfer id of the batch was used before") from exc
    debits: dict[int, int] = {}
    credits: dict[int, int] = {}
    for item in transfers:
        debit, credit = accounts[item.debit], accounts[item.credit]
        check_flow(
            _End(item.debit, debit["kind"], debit["purpose"]),
            _End(item.credit, credit["kind"], credit["purpose"]),
            item.reason,
        )
        debits[debit["id"]] = debits.get(debit["id"], 0) + item.amount
        credits[credit["id"]] = credits.get(credit["id"], 0) + item.amount
    ids = sorted(set(debits) | set(credits))
    moved = await connection.fetch(
        _MOVE_TOTALS, ids, [debits.get(i, 0) for i in ids], [credits.get(i, 0) for i in ids]
    )
    if len(moved) != len(ids):
        raise InsufficientFunds("a debit of the batch would overdraw its account")
