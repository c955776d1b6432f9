"""The coalescer's own bookkeeping, without a database: every request is answered, groups
form while one is written, and a group's failure hands its requests back to run alone."""

from __future__ import annotations

import asyncio
import random
import uuid
from contextlib import asynccontextmanager

import pytest

from familymap.audit import Caller
from tests.vouchers.vouchers_builders import NOW, SCHOOL_DAY
from vouchers import meal_groups
from vouchers.meal_groups import ALONE, GroupItem, MealCoalescer
from vouchers.meals import MealRequest, Redeemed
from vouchers.tables import MealRedemption

CALLER = Caller(key=b"k", actor="school", role="SCHOOL", operation="RedeemMeal", request_id=None)


def item(n: int) -> GroupItem:
    request = MealRequest(f"k-{n}", "lunch", SCHOOL_DAY, child_person_id=n)
    return GroupItem(merchant_id=uuid.uuid4(), request=request, now=NOW, caller=CALLER)


def served(group_item: GroupItem) -> Redeemed:
    return Redeemed(MealRedemption(idempotency_key=group_item.request.idempotency_key), False)


@asynccontextmanager
async def no_database():
    yield None


@pytest.fixture
def groups(monkeypatch) -> list[int]:
    """Groups are 'written' by a stand-in that takes a moment and serves every even child;
    odd ones are handed back and 'run alone' by a stand-in of the hot path."""
    sizes: list[int] = []

    async def together(*, connection, items, qr_key, parameters=None):
        sizes.append(len(items))
        await asyncio.sleep(random.random() / 1000)
        return [served(i) if i.request.child_person_id % 2 == 0 else ALONE for i in items]

    async def alone(*, connection, merchant_id, request, qr_key, now, caller, parameters=None):
        return Redeemed(MealRedemption(idempotency_key=request.idempotency_key), True)

    monkeypatch.setattr(meal_groups, "redeem_meals_together", together)
    monkeypatch.setattr(meal_groups, "redeem_meal_on_driver", alone)
    return sizes


async def test_every_request_is_answered_however_they_interleave(groups):
    # Given a coalescer writing one group at a time
    coalescer = MealCoalescer(transactions=no_database, qr_key=lambda: b"k", runners=1)

    async def send(n: int) -> Redeemed:
        # Arrivals spread over the groups' lifetimes, some right as a runner finishes
        for _ in range(n % 4):
            await asyncio.sleep(0)
        return await coalescer.redeem(item(n))

    # When 2,000 requests come in waves
    results = []
    for wave in range(20):
        results += await asyncio.wait_for(
            asyncio.gather(*(send(wave * 100 + n) for n in range(100))), timeout=10
        )
    # Then every one is answered: the even ones by their group, the odd ones alone
    assert [r.redemption.idempotency_key for r in results] == [f"k-{n}" for n in range(2000)]
    assert [r.replayed for r in results] == [n % 2 == 1 for n in range(2000)]
    # And requests that came while a group was written formed groups of several
    assert sum(groups) == 2000 and max(groups) > 1


async def test_a_failed_group_hands_every_request_back(monkeypatch):
    async def broken(**_):
        raise RuntimeError("the database went away")

    async def alone(*, request, **_):
        return Redeemed(MealRedemption(idempotency_key=request.idempotency_key), True)

    monkeypatch.setattr(meal_groups, "redeem_meals_together", broken)
    monkeypatch.setattr(meal_groups, "redeem_meal_on_driver", alone)
    coalescer = MealCoalescer(transactions=no_database, qr_key=lambda: b"k", runners=1)
    results = await asyncio.gather(*(coalescer.redeem(item(n)) for n in range(10)))
    assert [r.redemption.idempotency_key for r in results] == [f"k-{n}" for n in range(10)]


async def test_a_request_arriving_as_the_last_group_finishes_is_not_left_waiting(monkeypatch):
    # Given a request that wakes up exactly as the only runner writes its last group: its
    # wake-up is queued in the same step in which the runner finds no one waiting and ends
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def together(*, items, **_):
        if not gate.done():
            gate.set_result(None)  # the late request is woken now, the runner ends right after
        return [served(i) for i in items]

    monkeypatch.setattr(meal_groups, "redeem_meals_together", together)
    coalescer = MealCoalescer(transactions=no_database, qr_key=lambda: b"k", runners=1)

    async def late() -> Redeemed:
        await gate
        return await coalescer.redeem(item(2))

    late_task = asyncio.create_task(late())
    first = await coalescer.redeem(item(0))
    # Then the late request is served too (by a runner of its own), not left waiting
    second = await asyncio.wait_for(late_task, timeout=5)
    assert (first.redemption.idempotency_key, second.redemption.idempotency_key) == ("k-0", "k-2")
