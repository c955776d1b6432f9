"""One meal redemption on a bare asyncpg connection (PostgreSQL): the canteen's hot path.

At a national lunch peak a thousand canteens a second scan a QR code. Through the ORM a
redemption took about fourteen round trips and six milliseconds of Python, so two cores
served about a hundred a second. This path keeps `vouchers.meals`' rules and refusals (its
validation, `refusal_for_taken_keys`, `replay_of` and `meal_payment` are used as they are)
and does the database's part in two statements:

1. one read of the school, the child with their voucher of the school year and the child's
   identity, which also takes a place in an audit chain (`familymap.audit.ADVANCE_HEAD_CTE`)
   and an id for the meal;
2. one write of the meal (`INSERT ... ON CONFLICT DO NOTHING`), its payment
   (`wallet.ledger_driver.TRANSFER_CTES`: the ledger's own locking order and overdraft rule)
   and its audit record (`familymap.audit.LINK_CTES`), the last two only if the meal went in.

Refusals and replays, which are rare, cost a statement or two more. Any refusal raises, and
the caller rolls the transaction back (the ledger's part may have been written by then).

Double spending stays impossible by construction, as on the portable path: the meal row is
unique per (voucher, day, meal type), per school's idempotency key and per QR nonce, and the ledger
refuses to overdraw the wallet. SQLite, which has no driver connection to share, takes
`vouchers.meals.redeem_meal`; the tests run on both.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import cast

import asyncpg
from sqlalchemy import Table

from familymap.audit import (
    ADVANCE_HEAD_CTE,
    LINK_CTES,
    AuditChainMissing,
    Caller,
    append_after,
    link_values,
    pick_chain,
)
from familymap.driver_sql import driver_statement, insert_from_parameters
from familymap.orm import utcnow
from familymap.parameters import ParameterSet
from vouchers.calendar import school_year
from vouchers.errors import QrInvalid, VoucherError
from vouchers.meals import (
    MEAL_COLUMNS,
    PURPOSE,
    ChildVoucher,
    MealRequest,
    Redeemed,
    meal_payment,
    refusal_for_taken_keys,
    replay_of,
    served_entry,
    validate_meal_request,
)
from vouchers.merchants import checked_merchant, merchant_key
from vouchers.qr import verify_qr
from vouchers.tables import MealRedemption, Merchant
from wallet.ledger import TransferIdReused
from wallet.ledger_driver import (
    TRANSFER_CTES,
    TRANSFER_RESULT_COLUMNS,
    TRANSFER_RESULT_JOINS,
    check_posted,
    transfer_values,
)

# The school, the child with their voucher of the school year, a place in an audit chain
# and an id for the meal, in one read. The LEFT JOINs from a single row keep the answer one
# row whatever is missing. Moving the chain's head locks it until the transaction ends.
_LOOKUP = driver_statement(f"""
WITH {ADVANCE_HEAD_CTE}
SELECT m.id AS merchant_id, m.external_code, m.name, m.category, m.region, m.created_at,
       p.id AS person_id, p.family_id, p.school_id, p.iin, v.id AS voucher_id,
       audit_head.seq AS audit_seq, audit_head.hash AS audit_prev_hash,
       nextval(pg_get_serial_sequence('meal_redemptions', 'id')) AS meal_id
FROM (SELECT 1) AS one
LEFT JOIN merchants m ON m.id = :merchant_id
LEFT JOIN persons p ON p.id = CAST(:child_id AS bigint)
LEFT JOIN meal_vouchers v ON v.person_id = p.id AND v.school_year_start = :year_start
LEFT JOIN audit_head ON true
""")  # noqa: S608 (constant fragments, no input: every value is a bound parameter)
_CHILD = """
SELECT p.id, p.family_id, p.school_id, v.id
FROM persons p
LEFT JOIN meal_vouchers v ON v.person_id = p.id AND v.school_year_start = $2
WHERE p.id = $1
"""
MEALS = cast(Table, MealRedemption.__table__)  # a mapped class's table, typed as a FromClause
# The meal, its payment and its audit record in one statement: the payment and the record
# only if the meal went in (a refusal or a replay inserts nothing). Every column list and
# type comes from the tables' definitions.
_SERVE = driver_statement(f"""
WITH meal AS (
    {insert_from_parameters(MEALS, prefix="", columns=MEAL_COLUMNS)}
    ON CONFLICT DO NOTHING
    RETURNING id
),
{TRANSFER_CTES.format(guard="EXISTS (SELECT 1 FROM meal)")},
{LINK_CTES.format(guard="EXISTS (SELECT 1 FROM meal)")}
SELECT (SELECT count(*) FROM meal) AS served, {TRANSFER_RESULT_COLUMNS}
FROM (SELECT 1) AS one {TRANSFER_RESULT_JOINS}
""")  # noqa: S608 (constant fragments, no input: every value is a bound parameter)
_BY_KEY = "SELECT * FROM meal_redemptions WHERE merchant_id = $1 AND idempotency_key = $2"
_TAKEN = """
SELECT EXISTS (SELECT 1 FROM meal_redemptions WHERE merchant_id = $1 AND idempotency_key = $2),
       $3::varchar IS NOT NULL AND EXISTS (SELECT 1 FROM meal_redemptions WHERE qr_nonce = $3)
"""


async def redeem_meal_on_driver(
    *,
    connection: asyncpg.Connection,
    merchant_id: uuid.UUID | str,
    request: MealRequest,
    qr_key: bytes,
    now: datetime,
    caller: Caller,
    parameters: ParameterSet | None = None,
) -> Redeemed:
    """`vouchers.meals.redeem_meal` and its audit record (by `caller`) in the connection's
    transaction: two statements when the meal is served."""
    school_key = merchant_key(merchant_id)
    child_id = claimed_child(request, qr_key)
    year = school_year(request.served_on, parameters=parameters)
    year_start = year.start if year is not None else None
    chain = pick_chain()
    found = await connection.fetchrow(
        _LOOKUP.sql,
        *_LOOKUP.args({"audit_chain": chain, "merchant_id": school_key, "child_id": child_id,
                       "year_start": year_start}),
    )  # fmt: skip
    assert found is not None  # a SELECT of scalar subqueries answers one row
    if found["audit_seq"] is None:
        raise AuditChainMissing(f"audit chain {chain} has no head (run the migrations)")
    school = school_from(found)
    iins = {} if found["person_id"] is None else {found["person_id"]: found["iin"]}
    children: dict[int, ChildVoucher] = {}
    if found["person_id"] is not None and year_start is not None:
        children[found["person_id"]] = ChildVoucher(
            found["person_id"], found["family_id"], found["school_id"], found["voucher_id"],
            year_start,
        )  # fmt: skip

    async def load_child(person_id: int, start: date) -> ChildVoucher | None:
        if (person_id, start) == (child_id, year_start):
            return None  # the read above found no such person
        row = await connection.fetchrow(_CHILD, person_id, start)
        if row is None:
            return None
        return ChildVoucher(row[0], row[1], row[2], row[3], year_start=start)

    try:
        values = await validate_meal_request(
            None, school, request, qr_key=qr_key, now=now, parameters=parameters,
            children=children, load_child=load_child,
        )  # fmt: skip
        values |= {"id": found["meal_id"], "created_at": utcnow()}
        redemption = MealRedemption(**values)
        payment = meal_payment(school, redemption)
        record = link_values(
            entry=served_entry(caller, Redeemed(redemption, replayed=False), iins),
            chain=chain, seq=found["audit_seq"], prev_hash=found["audit_prev_hash"],
        )  # fmt: skip
        arguments = values | transfer_values(payment) | record
        try:
            served = await connection.fetchrow(_SERVE.sql, *_SERVE.args(arguments))
        except asyncpg.UniqueViolationError as exc:
            raise TransferIdReused(f"transfer id {payment.transfer_id!r} was used before") from exc
        assert served is not None  # the statement ends in a SELECT of one row
        if not served["served"]:
            taken = await connection.fetchrow(
                _TAKEN, school.id, values["idempotency_key"], values["qr_nonce"]
            )
            assert taken is not None  # a SELECT of two EXISTS answers one row
            key_taken, nonce_taken = taken
            raise refusal_for_taken_keys(values, key_taken=key_taken, nonce_taken=nonce_taken)
    except VoucherError:
        # As on the portable path: a replay of a request that succeeded returns its first
        # result (and is audited as one); every refusal leaves nothing of this transaction.
        first = await connection.fetchrow(_BY_KEY, school.id, request.idempotency_key)
        replay = replay_of(
            MealRedemption(**dict(first)) if first is not None else None, school, request, qr_key
        )
        if replay is None:
            raise
        # The read moved the head to audit_seq: the record goes in that place (about the
        # child only if the first meal was this request's child's).
        await append_after(
            connection=connection, chain=chain,
            head=(found["audit_seq"] - 1, found["audit_prev_hash"]),
            entries=[served_entry(caller, replay, iins)],
        )  # fmt: skip
        return replay
    check_posted(payment, served)
    return Redeemed(redemption, replayed=False)


def claimed_child(request: MealRequest, qr_key: bytes) -> int | None:
    """The child the request names, to read up front; validation checks the claim again."""
    if request.qr_token is None:
        return request.child_person_id
    try:
        return verify_qr(key=qr_key, token=request.qr_token, now=None).child_person_id
    except QrInvalid:
        return None


def school_from(found: asyncpg.Record) -> Merchant:
    """The school as `get_merchant` would give it, or its refusal (the same check)."""
    school = None
    if found["merchant_id"] is not None:
        school = Merchant(
            id=found["merchant_id"],
            external_code=found["external_code"],
            name=found["name"],
            category=found["category"],
            region=found["region"],
            created_at=found["created_at"],
        )
    return checked_merchant(school, category=PURPOSE)
