"""Single redemptions served in groups (vouchers/meal_groups.py), on PostgreSQL: what a group
decides, what it hands back to run alone, and that the answers are those of one at a time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from app.driver_db import session_transactions
from familymap.audit import Caller, verify_chain
from familymap.audit_tables import AuditRecord
from tests.conftest import SerialisedSessionFactory
from tests.vouchers.test_meals import issued
from tests.vouchers.vouchers_builders import (
    NOW,
    QR_KEY,
    SATURDAY,
    SCHOOL_DAY,
    family_with_pupil,
    school,
)
from vouchers import meal_groups, meals
from vouchers.errors import AlreadyRedeemed, NotEnrolled, QrReplayed
from vouchers.meal_groups import ALONE, GroupItem, MealCoalescer, redeem_meals_together
from vouchers.meals import MealRequest, Redeemed
from vouchers.qr import sign_qr
from wallet import ledger
from wallet.tables import LedgerTransfer

pytestmark = pytest.mark.postgres_only
AUDIT_KEY = b"test-audit-key"  # the suite's settings use it too


def canteen_caller(merchant, n: int) -> Caller:
    return Caller(
        key=AUDIT_KEY, actor=str(merchant.id), role="SCHOOL", operation="RedeemMeal",
        request_id=f"req-{n}",
    )  # fmt: skip


def item(merchant, request: MealRequest, n: int = 0) -> GroupItem:
    return GroupItem(
        merchant_id=merchant.id, request=request, now=NOW, caller=canteen_caller(merchant, n)
    )


async def driver(session):
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


async def pupils_at(session, merchant, count: int):
    children = []
    for _ in range(count):
        _, parent, child = await family_with_pupil(session, school_code=merchant.external_code)
        await issued(session, child, parent)
        children.append(child)
    return children


async def test_a_group_serves_its_good_requests_and_hands_back_the_rest(session):
    # Given two schools with two pupils each, and a pupil of the first at the wrong school
    north, south = await school(session, code="north-1"), await school(session, code="south-1")
    a, b = await pupils_at(session, north, 2)
    c, d = await pupils_at(session, south, 2)
    token, _ = sign_qr(key=QR_KEY, voucher_id=0, child_person_id=a.id,
                       merchant_id=str(north.id), now=NOW)  # fmt: skip
    voucher_a = await session.scalar(
        select(meals.MealVoucher.id).where(meals.MealVoucher.person_id == a.id)
    )
    token, _ = sign_qr(key=QR_KEY, voucher_id=voucher_a, child_person_id=a.id,
                       merchant_id=str(north.id), now=NOW)  # fmt: skip
    items = [
        item(north, MealRequest("g-1", "lunch", SCHOOL_DAY, qr_token=token), 1),
        item(north, MealRequest("g-2", "lunch", SCHOOL_DAY, child_person_id=b.id), 2),
        item(south, MealRequest("g-3", "breakfast", SCHOOL_DAY, child_person_id=c.id), 3),
        item(south, MealRequest("g-4", "lunch", SCHOOL_DAY, child_person_id=d.id), 4),
        item(south, MealRequest("g-5", "lunch", SCHOOL_DAY, child_person_id=a.id), 5),  # wrong
        item(north, MealRequest("g-6", "lunch", SATURDAY, child_person_id=b.id), 6),  # weekend
        item(north, MealRequest("g-7", "lunch", SCHOOL_DAY, child_person_id=b.id), 7),  # again
        item(north, MealRequest("g-1", "lunch", SCHOOL_DAY, qr_token=token), 8),  # replay
    ]
    before = await session.scalar(select(func.count()).select_from(AuditRecord))
    # When they are served as one group
    outcomes = await redeem_meals_together(
        connection=await driver(session), items=items, qr_key=QR_KEY
    )
    # Then the four good ones are served, and the others are handed back to run alone
    assert [isinstance(o, Redeemed) for o in outcomes] == [True] * 4 + [False] * 4
    assert outcomes[4:] == [ALONE] * 4
    served = [o.redemption for o in outcomes[:4]]
    assert [(m.person_id, m.meal_type, m.method) for m in served] == [
        (a.id, "lunch", "qr"), (b.id, "lunch", "list"), (c.id, "breakfast", "list"),
        (d.id, "lunch", "list"),
    ]  # fmt: skip
    # And each meal has its payment at its school's price, and the books balance
    for meal in served:
        paid = await session.scalar(
            select(LedgerTransfer).where(LedgerTransfer.transfer_id == meal.transfer_id)
        )
        assert (paid.amount, paid.reason, paid.person_id) == (
            meal.price_tiyn,
            "MEAL_SERVED",
            meal.person_id,
        )
    assert await ledger.balance(session=session, account=north.account_code) == sum(
        m.price_tiyn for m in served[:2]
    )
    assert await ledger.accounts_disagreeing_with_transfers(session=session) == []
    # And each has its own audit record, by its own caller, and the chains verify
    records = (
        await session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc()).limit(4))
    ).all()
    assert await session.scalar(select(func.count()).select_from(AuditRecord)) == before + 4
    assert sorted(r.request_id for r in records) == ["req-1", "req-2", "req-3", "req-4"]
    assert {r.what for r in records} == {f"meal {m.id} served" for m in served}
    assert (await verify_chain(session=session, key=AUDIT_KEY)).ok


async def test_a_wallet_run_dry_hands_the_whole_group_back_and_writes_nothing(session):
    # Given two pupils, one whose wallet holds less than a lunch
    canteen = await school(session, code="dry-1")
    rich, poor = await pupils_at(session, canteen, 2)
    await ledger.open_account(session=session, code="payout:dry", kind="merchant",
                              purpose="school_meals")  # fmt: skip
    balance = await ledger.balance(session=session, account=meals.wallet_code(poor.id))
    await ledger.transfer(session=session, transfer_id="dry", debit=meals.wallet_code(poor.id),
                          credit="payout:dry", amount=balance - 1, reason="MEAL_SERVED")  # fmt: skip
    meals_before = await session.scalar(select(func.count()).select_from(meals.MealRedemption))
    connection = await driver(session)
    items = [
        item(canteen, MealRequest("dry-a", "lunch", SCHOOL_DAY, child_person_id=rich.id)),
        item(canteen, MealRequest("dry-b", "lunch", SCHOOL_DAY, child_person_id=poor.id)),
    ]
    # When they are served as one group, the ledger refuses it (the coalescer rolls back)
    with pytest.raises(ledger.InsufficientFunds):
        async with connection.transaction():
            await redeem_meals_together(connection=connection, items=items, qr_key=QR_KEY)
    # Then nothing of the group is kept
    assert await session.scalar(select(func.count()).select_from(meals.MealRedemption)) == (
        meals_before
    )


async def test_the_coalescer_answers_each_request_as_one_at_a_time_would(connection):
    # Given a school and three pupils, and a coalescer on the test's transaction
    factory = SerialisedSessionFactory(connection)
    async with factory() as session, session.begin():
        canteen = await school(session, code="coal-1")
        a, b, c = await pupils_at(session, canteen, 3)
        voucher_a = await session.scalar(
            select(meals.MealVoucher.id).where(meals.MealVoucher.person_id == a.id)
        )
    token, _ = sign_qr(key=QR_KEY, voucher_id=voucher_a, child_person_id=a.id,
                       merchant_id=str(canteen.id), now=NOW)  # fmt: skip
    coalescer = MealCoalescer(transactions=session_transactions(factory), qr_key=lambda: QR_KEY)
    requests = [
        MealRequest("c-1", "lunch", SCHOOL_DAY, qr_token=token),
        MealRequest("c-2", "lunch", SCHOOL_DAY, child_person_id=b.id),
        MealRequest("c-3", "breakfast", SCHOOL_DAY, child_person_id=c.id),
        MealRequest("c-1", "lunch", SCHOOL_DAY, qr_token=token),  # the same request again
        MealRequest("c-4", "lunch", SCHOOL_DAY, child_person_id=b.id),  # b's lunch again
        MealRequest("c-5", "breakfast", SCHOOL_DAY, qr_token=token),  # the QR code again
        MealRequest("c-6", "lunch", SCHOOL_DAY - timedelta(days=1), child_person_id=c.id),
    ]

    async def send(n: int, request: MealRequest) -> str:
        try:
            result = await coalescer.redeem(item(canteen, request, n))
        except (AlreadyRedeemed, QrReplayed, NotEnrolled) as refused:
            return refused.code
        return "REPLAYED" if result.replayed else "SERVED"

    # When they arrive at once
    answers = await asyncio.gather(*(send(n, r) for n, r in enumerate(requests)))
    # Then each has the answer it would have had alone
    assert answers == [
        "SERVED", "SERVED", "SERVED", "REPLAYED", "ALREADY_REDEEMED", "QR_REPLAYED", "SERVED",
    ]  # fmt: skip
    async with factory() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(meals.MealRedemption)
            .where(meals.MealRedemption.merchant_id == canteen.id)
        )
        assert count == 4
        assert await ledger.accounts_disagreeing_with_transfers(session=session) == []
        assert (await verify_chain(session=session, key=AUDIT_KEY)).ok
        written = await session.scalar(
            text("SELECT count(*) FROM audit_records WHERE operation = 'RedeemMeal' "
                 "AND request_id LIKE 'req-%'")
        )  # fmt: skip
        assert written == 5  # four meals and the replay


async def test_good_requests_arriving_together_are_served_by_their_group(connection, monkeypatch):
    # Given a school with six pupils, a coalescer on the test's transaction, and a count of
    # the requests that run alone on the hot path
    factory = SerialisedSessionFactory(connection)
    async with factory() as session, session.begin():
        canteen = await school(session, code="coal-2")
        pupils = await pupils_at(session, canteen, 6)
    alone: list[str] = []
    hot_path = meal_groups.redeem_meal_on_driver

    async def counted(**arguments):
        alone.append(arguments["request"].idempotency_key)
        return await hot_path(**arguments)

    monkeypatch.setattr(meal_groups, "redeem_meal_on_driver", counted)
    coalescer = MealCoalescer(transactions=session_transactions(factory), qr_key=lambda: QR_KEY)
    requests = [
        MealRequest(f"t-{n}", "lunch", SCHOOL_DAY, child_person_id=pupil.id)
        for n, pupil in enumerate(pupils)
    ]
    # When they arrive at once
    served = await asyncio.gather(
        *(coalescer.redeem(item(canteen, request, n)) for n, request in enumerate(requests))
    )
    # Then every one is served, and by a group: none was handed back (a group that failed,
    # whatever the reason, would hand them all back and the answers alone would hide it)
    assert [meal.replayed for meal in served] == [False] * 6
    assert alone == []
