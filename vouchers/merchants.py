"""Merchants: school canteens and pharmacies, each with its business-wallet account."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.situation import REGIONS
from vouchers.errors import IdempotencyKeyReused, InvalidInput, NotFound, WrongCategory
from vouchers.tables import MERCHANT_CATEGORIES, Merchant
from wallet.ledger import open_account


async def register_merchant(
    *,
    session: AsyncSession,
    external_code: str,
    name: str,
    category: str,
    region: str,
    merchant_id: uuid.UUID | None = None,
) -> tuple[Merchant, bool]:
    """Register a merchant and open its account; idempotent by `external_code`.

    Returns (merchant, created). The same code with other content is refused.
    """
    if category not in MERCHANT_CATEGORIES:
        raise InvalidInput("refusal.merchant_category", choices=", ".join(MERCHANT_CATEGORIES))
    if region not in REGIONS:
        raise InvalidInput("refusal.unknown_region", region=repr(region))
    if not external_code.strip() or not name.strip():
        raise InvalidInput("refusal.merchant_code_and_name")
    existing = await session.scalar(select(Merchant).where(Merchant.external_code == external_code))
    if existing is not None:
        same = (existing.name, existing.category, existing.region) == (name, category, region)
        if not same or (merchant_id is not None and existing.id != merchant_id):
            raise IdempotencyKeyReused(
                "refusal.merchant_registered_otherwise", code=repr(external_code)
            )
        return existing, False
    merchant = Merchant(
        id=merchant_id or uuid.uuid4(),
        external_code=external_code,
        name=name,
        category=category,
        region=region,
    )
    session.add(merchant)
    await session.flush()
    await open_account(
        session=session, code=merchant.account_code, kind="merchant", purpose=category
    )
    return merchant, True


async def is_registered_school(*, session: AsyncSession, external_code: str) -> bool:
    """Tell whether a school canteen is registered under `external_code` (a pupil's schoolId)."""
    found = await session.scalar(
        select(Merchant.id).where(
            Merchant.external_code == external_code, Merchant.category == "school_meals"
        )
    )
    return found is not None


async def get_merchant(
    *, session: AsyncSession, merchant_id: uuid.UUID | str, category: str | None = None
) -> Merchant:
    """The merchant with this id, of `category` if given (WRONG_CATEGORY otherwise)."""
    merchant = await session.get(Merchant, merchant_key(merchant_id))
    return checked_merchant(merchant, category=category)


def merchant_key(merchant_id: uuid.UUID | str) -> uuid.UUID:
    """A merchant id as a UUID; NOT_FOUND for anything that is not one."""
    try:
        return merchant_id if isinstance(merchant_id, uuid.UUID) else uuid.UUID(merchant_id)
    except ValueError as exc:
        raise NotFound("refusal.no_such_merchant") from exc


def checked_merchant(merchant: Merchant | None, *, category: str | None) -> Merchant:
    """The merchant check of every path (the ORM's and the driver's): NOT_FOUND without one,
    WRONG_CATEGORY if it is not of `category` (when given)."""
    if merchant is None:
        raise NotFound("refusal.no_such_merchant")
    if category is not None and merchant.category != category:
        raise WrongCategory(
            "refusal.wrong_category", merchant_category=merchant.category, category=category
        )
    return merchant


def read_merchant_file(path: Path) -> list[dict[str, str]]:
    """Rows of a merchants CSV: external_code,name,category,region[,merchant_id]."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def import_merchants(
    *, session: AsyncSession, rows: Iterable[dict[str, str]]
) -> tuple[int, list[str]]:
    """Register every row (each in a savepoint); returns (registered, refusals as text)."""
    registered, refused = 0, []
    for line, row in enumerate(rows, start=2):
        try:
            async with session.begin_nested():
                _, created = await register_merchant(
                    session=session,
                    external_code=row.get("external_code", ""),
                    name=row.get("name", ""),
                    category=row.get("category", ""),
                    region=row.get("region", ""),
                    merchant_id=uuid.UUID(row["merchant_id"]) if row.get("merchant_id") else None,
                )
            registered += created
        except (InvalidInput, IdempotencyKeyReused, ValueError) as exc:
            refused.append(f"line {line}: {getattr(exc, 'code', 'BAD_USER_INPUT')} {exc}")
    return registered, refused
