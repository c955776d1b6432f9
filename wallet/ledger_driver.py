"""`post_new_transfers` for one transfer, on a bare asyncpg connection (PostgreSQL).

The redemption hot path runs its whole transaction on the driver's connection: through the
ORM, a transfer's three statements cost about a millisecond of Python each time, more than
the database spends on them. The rules are the ledger's own (`wallet.ledger`): the accounts
are locked in primary-key order (the order `transfer` and `post_new_transfers` lock in, so
none of them can deadlock with another), the flow must be allowed, a wallet may not be
overdrawn (and the CHECK constraint refuses it again), and a reused transfer id fails on the
unique index. Any refusal leaves the caller's transaction to be rolled back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

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

_LOCK_ACCOUNTS = """
SELECT id, code, kind, purpose, may_go_negative, debits_posted, credits_posted
FROM ledger_accounts WHERE code = ANY($1::varchar[]) ORDER BY id FOR UPDATE
"""
# The transfer row and both accounts' totals in one statement (the rows are locked already).
_POST = """
WITH posted AS (
    INSERT INTO ledger_transfers (transfer_id, debit_account_id, credit_account_id, amount,
                                  reason, metadata, family_id, person_id, created_at)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)
)
UPDATE ledger_accounts
SET debits_posted = debits_posted + CASE WHEN id = $2 THEN $4 ELSE 0 END,
    credits_posted = credits_posted + CASE WHEN id = $3 THEN $4 ELSE 0 END
WHERE id IN ($2, $3)
"""


@dataclass(frozen=True, slots=True)
class _Account:
    id: int
    code: str
    kind: str
    purpose: str | None
    may_go_negative: bool
    debits_posted: int
    credits_posted: int


async def post_new_transfer(*, connection: asyncpg.Connection, transfer: NewTransfer) -> None:
    """Post one transfer whose id is fresh by construction, in the connection's transaction."""
    check_amount(transfer.amount)
    rows = await connection.fetch(_LOCK_ACCOUNTS, [transfer.debit, transfer.credit])
    accounts = {row["code"]: _Account(**dict(row)) for row in rows}
    for code in (transfer.debit, transfer.credit):
        if code not in accounts:
            raise UnknownAccount(f"no ledger account {code!r}")
    debit, credit = accounts[transfer.debit], accounts[transfer.credit]
    if debit.id == credit.id:
        raise SameAccount(f"{debit.code} cannot pay itself")
    check_flow(debit, credit)
    if not debit.may_go_negative and debit.credits_posted - debit.debits_posted < transfer.amount:
        raise InsufficientFunds(f"{debit.code} holds less than {transfer.amount} tiyn")
    try:
        await connection.execute(
            _POST, transfer.transfer_id, debit.id, credit.id, transfer.amount, transfer.reason,
            json.dumps(transfer.metadata or {}), transfer.family_id, transfer.person_id, utcnow(),
        )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise TransferIdReused(f"transfer id {transfer.transfer_id!r} was used before") from exc
