"""The day a meal is for, and whose idempotency key it is, on every path that serves meals:
the portable ORM path and the batch (both databases), the hot path and the groups
(PostgreSQL). Each rule has the same refusal code everywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from familymap.audit import Caller
from tests.vouchers.test_meals import issued
from tests.vouchers.vouchers_builders import NOW, QR_KEY, SCHOOL_DAY, family_with_pupil, school
from vouchers.calendar import local_day, school_days_after
from vouchers.errors import VoucherError
from vouchers.meal_groups import ALONE, GroupItem, redeem_meals_together
from vouchers.meal_hotpath import redeem_meal_on_driver
from vouchers.meals import MealRequest, redeem_meal, redeem_meals_batch
from vouchers.qr import sign_qr
from vouchers.tables import MealRedemption, MealVoucher

PATHS = [
    "portable",
    "batch",
    pytest.param("hotpath", marks=pytest.mark.postgres_only),
    pytest.param("groups", marks=pytest.mark.postgres_only),
]
CANTEEN = Caller(
    key=b"test-audit-key", actor="canteen", role="SCHOOL", operation="RedeemMeal", request_id="t"
)
# 19:30 UTC on the 18th is 00:30 on Thursday the 19th in Kazakhstan.
AFTER_MIDNIGHT_IN_ASTANA = datetime(2026, 11, 18, 19, 30, tzinfo=UTC)


async def serve(session, path: str, merchant_id, request: MealRequest, now: datetime) -> str:
    """The request served on `path`: SERVED, REPLAYED or the refusal's code."""
    if path == "batch":
        (result,) = await redeem_meals_batch(
            session=session, merchant_id=merchant_id, requests=[request], qr_key=QR_KEY, now=now
        )
        if result.redeemed is None:
            return result.code
        return "REPLAYED" if result.redeemed.replayed else "SERVED"
    try:
        if path == "portable":
            async with session.begin_nested():
                redeemed = await redeem_meal(
                    session=session, merchant_id=merchant_id, request=request, qr_key=QR_KEY,
                    now=now,
                )  # fmt: skip
        else:
            connection = await _driver(session)
            async with connection.transaction():
                redeemed = await _on_driver(connection, path, merchant_id, request, now)
    except VoucherError as refused:
        return refused.code
    return "REPLAYED" if redeemed.replayed else "SERVED"


async def _driver(session):
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


async def _on_driver(connection, path: str, merchant_id, request: MealRequest, now: datetime):
    if path == "groups":
        (outcome,) = await redeem_meals_together(
            connection=connection, qr_key=QR_KEY,
            items=[GroupItem(merchant_id=merchant_id, request=request, now=now, caller=CANTEEN)],
        )  # fmt: skip
        if outcome is not ALONE:
            return outcome
        # What the group hands back runs alone, as the coalescer runs it.
    return await redeem_meal_on_driver(
        connection=connection, merchant_id=merchant_id, request=request, qr_key=QR_KEY,
        now=now, caller=CANTEEN,
    )  # fmt: skip


async def pupil_with_voucher(session, canteen):
    _, parent, child = await family_with_pupil(session, school_code=canteen.external_code)
    await issued(session, child, parent)
    voucher_id = await session.scalar(
        select(MealVoucher.id).where(MealVoucher.person_id == child.id)
    )
    return child, voucher_id


def qr(canteen, child, voucher_id: int, issued_at: datetime) -> str:
    token, _ = sign_qr(key=QR_KEY, voucher_id=voucher_id, child_person_id=child.id,
                       merchant_id=str(canteen.id), now=issued_at)  # fmt: skip
    return token


def test_the_day_is_kazakhstans():
    # 23:59 UTC is the next morning in Astana; a naive moment is UTC
    assert local_day(datetime(2026, 11, 18, 19, 0, tzinfo=UTC)) == date(2026, 11, 19)
    assert local_day(datetime(2026, 11, 18, 18, 59, tzinfo=UTC)) == date(2026, 11, 18)
    assert local_day(datetime(2026, 11, 18, 19, 0)) == date(2026, 11, 19)
    # Friday 13th to Wednesday 18th: Monday to Wednesday are three school days after it
    assert school_days_after(date(2026, 11, 13), through=SCHOOL_DAY) == 3


@pytest.mark.parametrize("path", PATHS)
async def test_a_qr_code_pays_only_for_the_day_it_was_issued(session, path):
    # Given a pupil and a QR code the parent showed today
    canteen = await school(session, code=f"qr-day-{path}")
    child, voucher_id = await pupil_with_voucher(session, canteen)
    token = qr(canteen, child, voucher_id, NOW)
    # When the canteen records it for an earlier school day, then for today
    earlier = MealRequest(f"{path}-1", "lunch", SCHOOL_DAY - timedelta(days=1), qr_token=token)
    today = MealRequest(f"{path}-2", "lunch", SCHOOL_DAY, qr_token=token)
    # Then only today's meal is paid
    assert await serve(session, path, canteen.id, earlier, NOW) == "QR_NOT_FOR_THIS_DAY"
    assert await serve(session, path, canteen.id, today, NOW) == "SERVED"


@pytest.mark.parametrize("path", PATHS)
async def test_the_qr_day_is_the_schools_local_day(session, path):
    # Given a QR code issued at 00:30 on Thursday in Astana (still Wednesday in UTC)
    canteen = await school(session, code=f"qr-local-{path}")
    child, voucher_id = await pupil_with_voucher(session, canteen)
    token = qr(canteen, child, voucher_id, AFTER_MIDNIGHT_IN_ASTANA)
    thursday = SCHOOL_DAY + timedelta(days=1)
    # When it is recorded for Wednesday, then for Thursday
    wednesday_meal = MealRequest(f"{path}-w", "breakfast", SCHOOL_DAY, qr_token=token)
    thursday_meal = MealRequest(f"{path}-t", "breakfast", thursday, qr_token=token)
    # Then it is Thursday's meal (not "a day in the future", as the UTC date made it)
    now = AFTER_MIDNIGHT_IN_ASTANA + timedelta(seconds=5)
    assert await serve(session, path, canteen.id, wednesday_meal, now) == "QR_NOT_FOR_THIS_DAY"
    assert await serve(session, path, canteen.id, thursday_meal, now) == "SERVED"


@pytest.mark.parametrize("path", PATHS)
async def test_a_list_meal_is_claimed_within_the_window_and_marked_late(session, path):
    # Given a pupil picked from the school's list
    canteen = await school(session, code=f"window-{path}")
    child, _ = await pupil_with_voucher(session, canteen)

    def meal(n: int, day: date) -> MealRequest:
        return MealRequest(f"{path}-{n}", "lunch", day, child_person_id=child.id)

    # When the school claims the first school day (three months back), a day four school
    # days back, one three school days back and today's
    answers = [
        await serve(session, path, canteen.id, meal(1, date(2026, 9, 1)), NOW),
        await serve(session, path, canteen.id, meal(2, date(2026, 11, 12)), NOW),
        await serve(session, path, canteen.id, meal(3, date(2026, 11, 13)), NOW),
        await serve(session, path, canteen.id, meal(4, SCHOOL_DAY), NOW),
    ]
    # Then the window (three school days) closes the first two, and the late one says so
    assert answers == ["CLAIM_WINDOW_CLOSED", "CLAIM_WINDOW_CLOSED", "SERVED", "SERVED"]
    served = (
        await session.scalars(
            select(MealRedemption)
            .where(MealRedemption.merchant_id == canteen.id)
            .order_by(MealRedemption.service_date)
        )
    ).all()
    assert [(m.service_date, m.claimed_on) for m in served] == [
        (date(2026, 11, 13), SCHOOL_DAY), (SCHOOL_DAY, SCHOOL_DAY),
    ]  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
async def test_idempotency_keys_are_each_schools_own(session, path):
    # Given two schools, each with a pupil, that number their meals the same way
    north = await school(session, code=f"keys-north-{path}")
    south = await school(session, code=f"keys-south-{path}")
    a, _ = await pupil_with_voucher(session, north)
    b, _ = await pupil_with_voucher(session, south)
    north_meal = MealRequest("meal-0001", "lunch", SCHOOL_DAY, child_person_id=a.id)
    south_meal = MealRequest("meal-0001", "lunch", SCHOOL_DAY, child_person_id=b.id)
    # When both use the key, and the north school sends its request again
    answers = [
        await serve(session, path, north.id, north_meal, NOW),
        await serve(session, path, south.id, south_meal, NOW),
        await serve(session, path, north.id, north_meal, NOW),
        await serve(session, path, south.id, north_meal, NOW),
    ]
    # Then each school has its own meal and the replay is the north's; the north's request
    # sent by the south is the south's own key reused for another meal
    assert answers == ["SERVED", "SERVED", "REPLAYED", "IDEMPOTENCY_KEY_REUSED"]
    rows = (
        await session.scalars(
            select(MealRedemption).where(MealRedemption.idempotency_key == "meal-0001")
        )
    ).all()
    assert sorted((r.merchant_id, r.person_id) for r in rows) == sorted(
        [(north.id, a.id), (south.id, b.id)]
    )


@pytest.mark.postgres_only
async def test_a_group_serves_two_schools_same_key(session):
    # Given two schools' requests under one key, in one group
    north, south = await school(session, code="grp-north"), await school(session, code="grp-south")
    a, _ = await pupil_with_voucher(session, north)
    b, _ = await pupil_with_voucher(session, south)
    items = [
        GroupItem(merchant_id=north.id, now=NOW, caller=CANTEEN,
                  request=MealRequest("k-1", "lunch", SCHOOL_DAY, child_person_id=a.id)),
        GroupItem(merchant_id=south.id, now=NOW, caller=CANTEEN,
                  request=MealRequest("k-1", "lunch", SCHOOL_DAY, child_person_id=b.id)),
    ]  # fmt: skip
    # When the group is served
    outcomes = await redeem_meals_together(
        connection=await _driver(session), items=items, qr_key=QR_KEY
    )
    # Then both are served in it: neither waits on the other's key
    assert [o is not ALONE and not o.replayed for o in outcomes] == [True, True]
    assert {o.redemption.merchant_id for o in outcomes} == {north.id, south.id}
