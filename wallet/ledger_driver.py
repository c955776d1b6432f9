"""`post_new_transfers` for one transfer, as SQL a hot path runs on asyncpg (PostgreSQL).

The redemption hot path does its whole transaction on the driver's connection in few
statements: through the ORM, a transfer's statements cost about a millisecond of Python,
more than the database spends on them. The rules are the ledger's own (`wallet.ledger`):

- the two accounts are locked in primary-key order (`ORDER BY id FOR UPDATE`), the order
  `transfer` and `post_new_transfers` lock in, so none of them deadlocks with another;
- a wallet is not overdrawn: the UPDATE moves its totals only if the funds are there (and a
  CHECK constraint refuses an overdraft again), and the transfer row goes in only when both
  accounts moved;
- the flow must be allowed (`check_flow`), and a reused transfer id fails on its unique index.

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
from typing import Any

import asyncpg

from familymap.driver_sql import driver_statement
from familymap.orm import utcnow
from wallet.ledger import (
    InsufficientFunds,
    NewTransfer,
    SameAccount,
    TransferIdReused,
    UnknownAccount,
    check_amount,
    check_flow,
)

TRANSFER_CTES = """
ledger_locked AS (
    SELECT id, code, kind, purpose, may_go_negative, debits_posted, credits_posted
    FROM ledger_accounts
    WHERE code IN (:ledger_debit, :ledger_credit) AND {guard}
    ORDER BY id
    FOR UPDATE
),
ledger_moved AS (
    UPDATE ledger_accounts AS account
    SET debits_posted = account.debits_posted
            + CASE WHEN account.code = :ledger_debit THEN CAST(:ledger_amount AS bigint) ELSE 0 END,
        credits_posted = account.credits_posted
            + CASE WHEN account.code = :ledger_credit THEN CAST(:ledger_amount AS bigint) ELSE 0 END
    FROM ledger_locked AS locked
    WHERE account.id = locked.id
      AND (locked.code <> :ledger_debit OR locked.may_go_negative
           OR locked.credits_posted - locked.debits_posted >= CAST(:ledger_amount AS bigint))
    RETURNING account.id
),
ledger_posted AS (
    INSERT INTO ledger_transfers (transfer_id, debit_account_id, credit_account_id, amount,
                                  reason, metadata, family_id, person_id, created_at)
    SELECT :ledger_transfer_id, debit.id, credit.id, CAST(:ledger_amount AS bigint),
           :ledger_reason, CAST(:ledger_metadata AS jsonb), CAST(:ledger_family_id AS bigint),
           CAST(:ledger_person_id AS bigint), :ledger_created_at
    FROM ledger_locked AS debit, ledger_locked AS credit
    WHERE debit.code = :ledger_debit AND credit.code = :ledger_credit AND debit.id <> credit.id
      AND (SELECT count(*) FROM ledger_moved) = 2
    RETURNING id
)"""
# What the CTEs did: the two accounts as locked (NULL where there is none), how many moved,
# and whether the transfer went in. To follow FROM (SELECT 1) AS one.
TRANSFER_RESULT_COLUMNS = """
    debit.id AS ledger_debit_id, debit.code AS ledger_debit_code,
    debit.kind AS ledger_debit_kind, debit.purpose AS ledger_debit_purpose,
    credit.id AS ledger_credit_id, credit.code AS ledger_credit_code,
    credit.kind AS ledger_credit_kind, credit.purpose AS ledger_credit_purpose,
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
    return {
        "ledger_transfer_id": transfer.transfer_id,
        "ledger_debit": transfer.debit,
        "ledger_credit": transfer.credit,
        "ledger_amount": transfer.amount,
        "ledger_reason": transfer.reason,
        "ledger_metadata": json.dumps(transfer.metadata or {}),
        "ledger_family_id": transfer.family_id,
        "ledger_person_id": transfer.person_id,
        "ledger_created_at": utcnow(),
    }


class _End:
    """An account as `check_flow` reads it, from the result's columns."""

    __slots__ = ("code", "kind", "purpose")

    def __init__(self, code: str, kind: str, purpose: str | None) -> None:
        self.code, self.kind, self.purpose = code, kind, purpose


def check_posted(transfer: NewTransfer, result: asyncpg.Record) -> None:
    """Raise the ledger's refusal if the CTEs did not post `transfer`."""
    if result["ledger_debit_id"] is None:
        raise UnknownAccount(f"no ledger account {transfer.debit!r}")
    if result["ledger_credit_id"] is None:
        raise UnknownAccount(f"no ledger account {transfer.credit!r}")
    if result["ledger_debit_id"] == result["ledger_credit_id"]:
        raise SameAccount(f"{transfer.debit} cannot pay itself")
    check_flow(
        _End(transfer.debit, result["ledger_debit_kind"], result["ledger_debit_purpose"]),
        _End(transfer.credit, result["ledger_credit_kind"], result["ledger_credit_purpose"]),
    )
    if not result["ledger_posted"]:
        raise InsufficientFunds(f"{transfer.debit} holds less than {transfer.amount} tiyn")


async def post_new_transfer(*, connection: asyncpg.Connection, transfer: NewTransfer) -> None:
    """Post one transfer whose id is fresh by construction, in the connection's transaction."""
    try:
        result = await connection.fetchrow(_POST.sql, *_POST.args(transfer_values(transfer)))
    except asyncpg.UniqueViolationError as exc:
        raise TransferIdReused(f"transfer id {transfer.transfer_id!r} was used before") from exc
    check_posted(transfer, result)


# --- many transfers at once (a group of redemptions) --------------------------------------

_LOCK_ACCOUNTS = """
SELECT id, code, kind, purpose, may_go_negative, debits_posted, credits_posted
FROM ledger_accounts WHERE code = ANY($1::varchar[]) ORDER BY id FOR UPDATE
"""
_MOVE_TOTALS = """
UPDATE ledger_accounts AS account
SET debits_posted = account.debits_posted + moving.debit,
    credits_posted = account.credits_posted + moving.credit
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS moving(id, debit, credit)
WHERE account.id = moving.id
"""
_INSERT_TRANSFERS = """
INSERT INTO ledger_transfers (transfer_id, debit_account_id, credit_account_id, amount, reason,
                              metadata, family_id, person_id, created_at)
SELECT transfer_id, debit_id, credit_id, amount, reason, metadata::jsonb, family_id, person_id,
       $9
FROM unnest($1::varchar[], $2::bigint[], $3::bigint[], $4::bigint[], $5::varchar[],
            $6::text[], $7::bigint[], $8::bigint[])
     AS t(transfer_id, debit_id, credit_id, amount, reason, metadata, family_id, person_id)
"""


async def post_new_transfers_on_driver(
    *, connection: asyncpg.Connection, transfers: list[NewTransfer]
) -> None:
    """`wallet.ledger.post_new_transfers` in three statements on an asyncpg connection: the
    accounts locked in primary-key order, every rule checked before anything is written (a
    refusal writes nothing), then the totals and the transfer rows."""
    if not transfers:
        return
    for item in transfers:
        check_amount(item.amount)
    codes = sorted({code for item in transfers for code in (item.debit, item.credit)})
    accounts = {row["code"]: row for row in await connection.fetch(_LOCK_ACCOUNTS, codes)}
    if missing := [code for code in codes if code not in accounts]:
        raise UnknownAccount(f"no ledger account {missing[0]!r}")
    debits: dict[int, int] = {}
    credits: dict[int, int] = {}
    for item in transfers:
        debit, credit = accounts[item.debit], accounts[item.credit]
        if debit["id"] == credit["id"]:
            raise SameAccount(f"{item.debit} cannot pay itself")
        check_flow(
            _End(item.debit, debit["kind"], debit["purpose"]),
            _End(item.credit, credit["kind"], credit["purpose"]),
        )
        debits[debit["id"]] = debits.get(debit["id"], 0) + item.amount
        credits[credit["id"]] = credits.get(credit["id"], 0) + item.amount
    for account in accounts.values():
        spent = debits.get(account["id"], 0)
        held = account["credits_posted"] - account["debits_posted"]
        if spent and not account["may_go_negative"] and held < spent:
            raise InsufficientFunds(f"{account['code']} holds less than {spent} tiyn")
    ids = sorted(set(debits) | set(credits))
    await connection.execute(
        _MOVE_TOTALS, ids, [debits.get(i, 0) for i in ids], [credits.get(i, 0) for i in ids]
    )
    stamp = utcnow()
    try:
        await connection.execute(
            _INSERT_TRANSFERS,
            [item.transfer_id for item in transfers],
            [accounts[item.debit]["id"] for item in transfers],
            [accounts[item.credit]["id"] for item in transfers],
            [item.amount for item in transfers],
            [item.reason for item in transfers],
            [json.dumps(item.metadata or {}) for item in transfers],
            [item.family_id for item in transfers],
            [item.person_id for item in transfers],
            stamp,
        )
    except asyncpg.UniqueViolationError as exc:
        raise TransferIdReused("a transfer id of the batch was used before") from exc
