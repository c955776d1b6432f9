"""Serving meals, behind one signature: the service the API calls.

`redeem_meal` serves one meal on the fastest path the deployment has, with the same rules,
answers and refusal codes on each (the reference model in tests/model holds them to that):

- group commit (`vouchers.meal_groups.MealCoalescer`, PostgreSQL), when a coalescer is given;
- the hot path on a driver connection (`vouchers.meal_hotpath`, PostgreSQL), when driver
  transactions are given;
- the portable ORM path (`vouchers.meals.redeem_meal`, SQLite and PostgreSQL) otherwise.

`redeem_meals_batch` serves a canteen's offline batch (`vouchers.meals.redeem_meals_batch`).

Each runs in one transaction of its own with its audit records, written last in it. What a
served meal's record says is decided once for every path (`vouchers.meals.served_entry`; a
batch's, `batch_entries`), and every record is filled, hashed and chained by
`familymap.audit.link_rows`: on the ORM paths through `familymap.audit.append`, on the
driver's paths inside their own statements.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from familymap.audit import Caller, Entry, append
from familymap.driver_sql import DriverTransactions
from familymap.parameters import ParameterSet
from familymap.tables import Person
from vouchers import meals
from vouchers.meal_groups import GroupItem
from vouchers.meal_hotpath import redeem_meal_on_driver
from vouchers.meals import BatchItemResult, MealRequest, Redeemed, served_entry

if TYPE_CHECKING:
    from vouchers.meal_groups import MealCoalescer


@dataclass(frozen=True, slots=True)
class MealPaths:
    """The ways this deployment can serve a meal: the ORM's sessions always; on PostgreSQL
    also the driver's transactions (the hot path) and a coalescer (group commit)."""

    sessions: async_sessionmaker[AsyncSession]
    driver: DriverTransactions | None = None
    coalescer: MealCoalescer | None = None


async def redeem_meal(
    *,
    paths: MealPaths,
    merchant_id: uuid.UUID,
    request: MealRequest,
    qr_key: bytes,
    now: datetime,
    caller: Caller,
    parameters: ParameterSet | None = None,
) -> Redeemed:
    """Serve one meal and audit it, committed; a refusal (VoucherError, LedgerError) leaves
    nothing behind."""
    if paths.coalescer is not None:
        return await paths.coalescer.redeem(
            GroupItem(merchant_id=merchant_id, request=request, now=now, caller=caller)
        )
    if paths.driver is not None:
        async with paths.driver() as connection:
            return await redeem_meal_on_driver(
                connection=connection, merchant_id=merchant_id, request=request, qr_key=qr_key,
                now=now, caller=caller, parameters=parameters,
            )  # fmt: skip
    async with paths.sessions() as session, session.begin():
        redeemed = await meals.redeem_meal(
            session=session, merchant_id=merchant_id, request=request, qr_key=qr_key, now=now,
            parameters=parameters,
        )  # fmt: skip
        iins = await _iins(session, [redeemed.redemption.person_id])
        await append(session=session, entries=[served_entry(caller, redeemed, iins)])
        return redeemed


async def redeem_meals_batch(
    *,
    paths: MealPaths,
    merchant_id: uuid.UUID,
    requests: Sequence[MealRequest],
    qr_key: bytes,
    now: datetime,
    caller: Caller,
    parameters: ParameterSet | None = None,
) -> list[BatchItemResult]:
    """Serve an offline batch and audit it (a record per family served), committed: a
    result per item, in order."""
    async with paths.sessions() as session, session.begin():
        results = await meals.redeem_meals_batch(
            session=session, merchant_id=merchant_id, requests=requests, qr_key=qr_key, now=now,
            parameters=parameters,
        )  # fmt: skip
        redeemed = [result.redeemed for result in results if result.redeemed is not None]
        iins = await _iins(session, sorted({meal.redemption.person_id for meal in redeemed}))
        await append(session=session, entries=batch_entries(caller, results, iins))
        return results


def batch_entries(
    caller: Caller, results: Sequence[BatchItemResult], iins: dict[int, str]
) -> list[Entry]:
    """A batch's audit records: one per family it served (about the child, when the batch
    served one child of that family), or one about no one when it served none."""
    redeemed = [result.redeemed for result in results if result.redeemed is not None]
    if not redeemed:
        refused = len(results) - len(redeemed)
        return [Entry(caller, None, None, "write", f"meal batch: 0 served, {refused} refused")]
    by_family: dict[int, list[Redeemed]] = defaultdict(list)
    for meal in redeemed:
        by_family[meal.redemption.family_id].append(meal)
    entries = []
    for family_id, served in sorted(by_family.items()):
        replays = sum(meal.replayed for meal in served)
        children = {meal.redemption.person_id for meal in served}
        ids = ", ".join(str(meal.redemption.id) for meal in served)
        what = f"meal batch: {len(served) - replays} served, {replays} replayed (meals {ids})"
        only = iins.get(next(iter(children))) if len(children) == 1 else None
        entries.append(Entry(caller, only, family_id, "write", what[:200]))
    return entries


async def _iins(session: AsyncSession, person_ids: Sequence[int]) -> dict[int, str]:
    """The IINs of the children meals were served to, for their audit records (one read)."""
    if not person_ids:
        return {}
    rows = await session.execute(select(Person.id, Person.iin).where(Person.id.in_(person_ids)))
    return {person_id: iin for person_id, iin in rows}
