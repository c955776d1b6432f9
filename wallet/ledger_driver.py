"""The ledger's posting on a bare asyncpg connection (PostgreSQL), for the hot paths.

Through the ORM a transfer's statements cost about a millisecond of Python, more than the
database spends on them. Nothing here decides anything: the rules are the ledger's own
(`wallet.ledger`), and the SQL is built from the tables' definitions.

- `DriverLedger` is the `LedgerStore` of `wallet.ledger.post_transfers` on a connection:
  `post_new_transfers_on_driver` posts many transfers (a group of redemptions) through the
  one posting primitive, in three statements.
- `TRANSFER_CTES` does the same I/O for one transfer inside a hot path's own statement,
  under a guard of its own ({guard}: SQL that is true when the transfer is to be posted):
  the two accounts locked in primary-key order, the totals moved under the overdraft rule
  (`floor_condition`, rendered into the statement), the row inserted (`transfer_row`'s
  columns, typed from the table) only when both accounts moved. `TRANSFER_RESULT` selects
  what they did, and `check_posted` refuses through the ledger's own checks (`check_ends`,
  `check_flow`, `check_moved`), in its order. A refusal raises after the statement wrote
  its part: the caller's transaction must roll back, as after any ledger refusal.
  `post_new_transfer` is the same as a statement alone.
"""

from __future__ import annotations

import json
from typing import Any, cast

import asyncpg
from sqlalchemy import Table, literal_column
from sqlalchemy.dialects import postgresql

from familymap.driver_sql import driver_statement, insert_from_arrays, insert_from_parameters
from familymap.orm import utcnow
from wallet.ledger import (
    TRANSFER_COLUMNS,
    AccountEnd,
    Move,
    NewTransfer,
    TransferIdReused,
    account_moves,
    check_amount,
    check_ends,
    check_flow,
    check_moved,
    floor_condition,
    post_transfers,
    transfer_row,
)
from wallet.tables import LedgerAccount, LedgerTransfer

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy: no annotations
_TRANSFERS = cast(Table, LedgerTransfer.__table__)  # typed as a FromClause


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
_INSERT_ONE = insert_from_parameters(
    _TRANSFERS,
    prefix="ledger_",
    columns=TRANSFER_COLUMNS,
    sources={"debit_account_id": "debit.id", "credit_account_id": "credit.id"},
)

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
    {_INSERT_ONE}
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
    """An account as the ledger's checks read it, from a statement's columns."""

    __slots__ = ("code", "id", "kind", "purpose")

    def __init__(self, id: int, code: str, kind: str, purpose: str | None) -> None:
        self.id, self.code, self.kind, self.purpose = id, code, kind, purpose


def check_posted(transfer: NewTransfer, result: asyncpg.Record) -> None:
    """Raise the ledger's refusal, in its order, if the CTEs did not post `transfer` as the
    rules allow: the same checks `post_transfers` makes."""
    debit, credit = (
        None
        if result[f"ledger_{side}_id"] is None
        else _End(
            result[f"ledger_{side}_id"],
            code,
            result[f"ledger_{side}_kind"],
            result[f"ledger_{side}_purpose"],
        )
        for side, code in (("debit", transfer.debit), ("credit", transfer.credit))
    )
    check_ends(debit, credit, debit_code=transfer.debit, credit_code=transfer.credit)
    assert debit is not None and credit is not None
    if result["ledger_id_taken"]:
        raise TransferIdReused(f"transfer id {transfer.transfer_id!r} was used before")
    check_flow(debit, credit, transfer.reason)
    moves = account_moves([(debit.id, credit.id, transfer.amount)])
    moved = result["ledger_moved"] if result["ledger_posted"] else 0
    check_moved(moved, moves, f"{transfer.debit} holds less than {transfer.amount} tiyn")


async def post_new_transfer(*, connection: asyncpg.Connection, transfer: NewTransfer) -> None:
    """Post one transfer whose id is fresh by construction, in the connection's transaction."""
    try:
        result = await connection.fetchrow(_POST.sql, *_POST.args(transfer_values(transfer)))
    except asyncpg.UniqueViolationError as exc:
        raise TransferIdReused(f"transfer id {transfer.transfer_id!r} was used before") from exc
    assert result is not None  # the statement always answers one row
    check_posted(transfer, result)


# --- many transfers at once: the posting primitive's store on a connection -----------------

_LOCK_ACCOUNTS = """
SELECT id, code, kind, purpose FROM ledger_accounts
WHERE code = ANY($1::varchar[]) ORDER BY id FOR UPDATE
"""
_MOVE_TOTALS = f"""
UPDATE ledger_accounts AS account
SET debits_posted = account.debits_posted + moving.debit,
    credits_posted = account.credits_posted + moving.credit
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS moving(id, debit, credit)
WHERE account.id = moving.id AND {_floor("account", debit="moving.debit", credit="moving.credit")}
RETURNING account.id, account.debits_posted, account.credits_posted
"""  # noqa: S608 (constant fragments, no input)
_INSERT_TRANSFERS = insert_from_arrays(_TRANSFERS, columns=TRANSFER_COLUMNS)


class DriverLedger:
    """`wallet.ledger.LedgerStore` on an asyncpg connection, in its transaction."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def lock_accounts(self, codes: list[str]) -> dict[str, AccountEnd]:
        rows = await self._connection.fetch(_LOCK_ACCOUNTS, codes)
        return {row["code"]: _End(*row) for row in rows}

    async def insert_transfers(self, rows: list[dict[str, Any]]) -> None:
        columns = [[row[name] for row in rows] for name in TRANSFER_COLUMNS]
        metadata = TRANSFER_COLUMNS.index("metadata")
        columns[metadata] = [json.dumps(value) for value in columns[metadata]]
        try:
            await self._connection.execute(_INSERT_TRANSFERS, *columns)
        except asyncpg.UniqueViolationError as exc:
            raise TransferIdReused("a transfer id of the batch was used before") from exc

    async def move_totals(self, moves: list[Move]) -> dict[int, tuple[int, int]]:
        ids, debits, credits = (list(column) for column in zip(*moves, strict=True))
        rows = await self._connection.fetch(_MOVE_TOTALS, ids, debits, credits)
        return {row["id"]: (row["debits_posted"], row["credits_posted"]) for row in rows}


async def post_new_transfers_on_driver(
    *, connection: asyncpg.Connection, transfers: list[NewTransfer]
) -> None:
    """`wallet.ledger.post_transfers` on an asyncpg connection, in its transaction."""
    await post_transfers(DriverLedger(connection), transfers)
