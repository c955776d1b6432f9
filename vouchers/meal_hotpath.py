"""One meal redemption on a bare asyncpg connection (PostgreSQL): the canteen's hot path.

At a national lunch peak a thousand canteens a second scan a QR code. Through the ORM a
redemption took about fourteen round trips and six milliseconds of Python, so two cores
served about a hundred a second. This path keeps `vouchers.meals`' rules and refusals (its
validation, `refusal_for_taken_keys`, `replay_of`, `meal_payment` are used as they are) and
does the database's part in four statements: one read of the school, the child, the
child's voucher and the child's identity; the insert of the meal; and the ledger transfer's
two (`wallet.ledger_driver`). Refusals and replays, which are rare, cost a statement more.

Double spending stays impossible by construction, as on the portable path: the meal row is
unique per (voucher, day, meal type), per idempotency key and per QR nonce, inserted with
`ON CONFLICT DO NOTHING`, and the ledger refuses to overdraw the wallet. SQLite, which has
no driver connection to share, takes `vouchers.meals.redeem_meal`; the tests run on both.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from familymap.orm import utcnow
from familymap.parameters import ParameterSet
from vouchers.calendar import school_year
from vouchers.errors import NotFound, QrInvalid, VoucherError, WrongCategory
from vouchers.meals import (
    PURPOSE,
    ChildVoucher,
    MealRequest,
    Redeemed,
    meal_payment,
    refusal_for_taken_keys,
    replay_of,
    validate_meal_request,
)
from vouchers.qr import verify_qr
from vouchers.tables import MealRedemption, Merchant
from wallet.ledger_driver import post_new_transfer

# The school, and the child with their voucher of the school year, in one read. The LEFT
# JOINs from a single row keep the answer one row whatever is missing.
_LOOKUP = """
SELECT m.id AS merchant_id, m.external_code, m.name, m.category, m.region, m.created_at,
       p.id AS person_id, p.family_id, p.school_id, p.iin, v.id AS voucher_id
FROM (SELECT 1) AS one
LEFT JOIN merchants m ON m.id = $1
LEFT JOIN persons p ON p.id = $2
LEFT JOIN meal_vouchers v ON v.person_id = p.id AND v.school_year_start = $3
"""
_CHILD = """
SELECT p.id, p.family_id, p.school_id, v.id
FROM persons p
LEFT JOIN meal_vouchers v ON v.person_id = p.id AND v.school_year_start = $2
WHERE p.id = $1
"""
_COLUMNS = (
    "idempotency_key", "voucher_id", "family_id", "person_id", "merchant_id", "service_date",
    "meal_type", "price_tiyn", "method", "qr_nonce", "transfer_id", "created_at",
)  # fmt: skip
_INSERT = """
INSERT INTO meal_redemptions (idempotency_key, voucher_id, family_id, person_id, merchant_id,
                              service_date, meal_type, price_tiyn, method, qr_nonce,
                              transfer_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT DO NOTHING RETURNING *
"""
_BY_KEY = "SELECT * FROM meal_redemptions WHERE idempotency_key = $1"
_TAKEN = """
SELECT EXISTS (SELECT 1 FROM meal_redemptions WHERE idempotency_key = $1),
       $2::varchar IS NOT NULL AND EXISTS (SELECT 1 FROM meal_redemptions WHERE qr_nonce = $2)
"""


@dataclass(frozen=True, slots=True)
class HotRedeemed:
    """The meal (or its replay), and whose it is, for the audit record written beside it."""

    redeemed: Redeemed
    child_iin: str | None


async def redeem_meal_on_driver(
    *,
    connection: asyncpg.Connection,
    merchant_id: uuid.UUID | str,
    request: MealRequest,
    qr_key: bytes,
    now: datetime,
    parameters: ParameterSet | None = None,
) -> HotRedeemed:
    """`vouchers.meals.redeem_meal` in the connection's transaction, in four statements."""
    try:
        school_key = merchant_id if isinstance(merchant_id, uuid.UUID) else uuid.UUID(merchant_id)
    except ValueError as exc:
        raise NotFound("no such merchant") from exc
    child_id = _claimed_child(request, qr_key)
    year = school_year(request.served_on, parameters=parameters)
    year_start = year.start if year is not None else None
    found = await connection.fetchrow(_LOOKUP, school_key, child_id, year_start)  # one row, always
    school = _school(found)
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
        return None if row is None else ChildVoucher(*row, year_start=start)

    try:
        values = await validate_meal_request(
            None, school, request, qr_key=qr_key, now=now, parameters=parameters,
            children=children, load_child=load_child,
        )  # fmt: skip
        inserted = await connection.fetchrow(
            _INSERT, *(values[c] if c != "created_at" else utcnow() for c in _COLUMNS)
        )
        if inserted is None:
            key_taken, nonce_taken = await connection.fetchrow(
                _TAKEN, values["idempotency_key"], values["qr_nonce"]
            )
            raise refusal_for_taken_keys(values, key_taken=key_taken, nonce_taken=nonce_taken)
    except VoucherError:
        # As on the portable path: a replay of a request that succeeded returns its first
        # result; every refusal above comes before this transaction wrote anything.
        first = await connection.fetchrow(_BY_KEY, request.idempotency_key)
        replay = replay_of(
            MealRedemption(**dict(first)) if first is not None else None, school, request, qr_key
        )
        if replay is None:
            raise
        same_child = replay.redemption.person_id == found["person_id"]
        return HotRedeemed(replay, found["iin"] if same_child else None)
    redemption = MealRedemption(**dict(inserted))
    await post_new_transfer(connection=connection, transfer=meal_payment(school, redemption))
    return HotRedeemed(Redeemed(redemption, replayed=False), found["iin"])


def _claimed_child(request: MealRequest, qr_key: bytes) -> int | None:
    """The child the request names, to read up front; validation checks the claim again."""
    if request.qr_token is None:
        return request.child_person_id
    try:
        return verify_qr(key=qr_key, token=request.qr_token, now=None).child_person_id
    except QrInvalid:
        return None


def _school(found: asyncpg.Record) -> Merchant:
    """The school as `get_merchant` would give it, or its refusal."""
    if found["merchant_id"] is None:
        raise NotFound("no such merchant")
    if found["category"] != PURPOSE:
        raise WrongCategory(f"a {found['category']} merchant cannot redeem {PURPOSE} vouchers")
    return Merchant(
        id=found["merchant_id"],
        external_code=found["external_code"],
        name=found["name"],
        category=found["category"],
        region=found["region"],
        created_at=found["created_at"],
    )
