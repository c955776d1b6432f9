"""School meals in the domain: issuing, the QR code, redeeming, batches; all refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.vouchers.vouchers_builders import (
    HOLIDAY,
    NOW,
    QR_KEY,
    SATURDAY,
    SCHOOL_DAY,
    family_with_pupil,
    key,
    school,
)
from vouchers import meals
from vouchers.calendar import is_school_day, meal_price, school_year
from vouchers.errors import (
    AlreadyRedeemed,
    IdempotencyKeyReused,
    NotASchoolDay,
    NotEligible,
    NotEnrolled,
    NotYourChild,
    NoVoucher,
    QrExpired,
    QrInvalid,
    QrReplayed,
    WrongSchool,
)
from vouchers.meals import MealRequest, redeem_meal, redeem_meals_batch
from vouchers.tables import MealRedemption
from wallet import ledger
from wallet.tables import LedgerTransfer


def test_school_days_follow_the_calendar():
    assert is_school_day(SCHOOL_DAY)
    assert not is_school_day(SATURDAY)
    assert not is_school_day(HOLIDAY)
    assert not is_school_day(SCHOOL_DAY.replace(month=7))  # summer
    year = school_year(SCHOOL_DAY)
    assert year is not None and 150 < year.school_days() < 175


def test_meal_prices_come_from_the_regional_parameters():
    start = school_year(SCHOOL_DAY).start
    lunch = meal_price(region="astana", meal_type="lunch", school_year_start=start)
    breakfast = meal_price(region="astana", meal_type="breakfast", school_year_start=start)
    assert lunch == 98_000
    assert breakfast == 58_800


async def issued(session, child, parent):
    voucher, _ = await meals.issue_meal_voucher(
        session=session,
        child_person_id=child.id,
        school_year=SCHOOL_DAY,
        consented_by=parent.id,
        channel="app",
    )
    return voucher


async def test_issuing_funds_the_childs_wallet_once(session):
    # Given an entitled pupil
    _, parent, child = await family_with_pupil(session)
    # When the voucher is issued twice
    first, created = await meals.issue_meal_voucher(
        session=session, child_person_id=child.id, school_year=SCHOOL_DAY,
        consented_by=parent.id, channel="app",
    )  # fmt: skip
    again, created_again = await meals.issue_meal_voucher(
        session=session, child_person_id=child.id, school_year=SCHOOL_DAY,
        consented_by=parent.id, channel="sms",
    )  # fmt: skip
    # Then one voucher funds the wallet with school days × (breakfast + lunch)
    assert created and not created_again and again.id == first.id
    days = school_year(SCHOOL_DAY).school_days()
    assert first.amount_tiyn == days * (98_000 + 58_800)
    assert await ledger.balance(session=session, account=meals.wallet_code(child.id)) == (
        first.amount_tiyn
    )


async def test_a_child_without_the_entitlement_gets_no_voucher(session):
    _, parent, child = await family_with_pupil(session, entitled=False)
    with pytest.raises(NotEligible):
        await issued(session, child, parent)


async def test_a_parent_consents_only_for_their_own_child(session):
    _, parent, child = await family_with_pupil(session)
    _, stranger, _ = await family_with_pupil(session)
    with pytest.raises(NotYourChild):
        await meals.consent_to_meal_voucher(
            session=session, parent_iin=stranger.iin, child_person_id=child.id, on=SCHOOL_DAY
        )
    voucher, created = await meals.consent_to_meal_voucher(
        session=session, parent_iin=parent.iin, child_person_id=child.id, on=SCHOOL_DAY
    )
    assert created and voucher.consented_by_person_id == parent.id


async def test_a_qr_meal_moves_the_price_from_the_child_to_the_school(session):
    # Given a pupil with a voucher and the parent's fresh QR code
    _, parent, child = await family_with_pupil(session)
    canteen = await school(session)
    voucher = await issued(session, child, parent)
    token, _ = await meals.meal_qr_token(
        session=session, parent_iin=parent.iin, child_person_id=child.id, key=QR_KEY, now=NOW
    )
    # When the canteen scans it for lunch
    result = await redeem_meal(
        session=session, merchant_id=canteen.id, qr_key=QR_KEY, now=NOW,
        request=MealRequest(key(), "lunch", SCHOOL_DAY, qr_token=token),
    )  # fmt: skip
    # Then the meal is recorded and paid in the ledger, naming the family and child
    meal = result.redemption
    assert (meal.method, meal.price_tiyn, meal.person_id) == ("qr", 98_000, child.id)
    assert await ledger.balance(session=session, account=canteen.account_code) == 98_000
    assert await ledger.balance(session=session, account=meals.wallet_code(child.id)) == (
        voucher.amount_tiyn - 98_000
    )
    posted = await session.scalar(
        select(LedgerTransfer).where(LedgerTransfer.transfer_id == meal.transfer_id)
    )
    assert (posted.reason, posted.family_id, posted.person_id) == (
        "MEAL_SERVED", child.family_id, child.id,
    )  # fmt: skip


async def test_refusals_have_stable_codes_and_change_nothing(session):
    # Given a pupil with a voucher at one school, and another school
    _, parent, child = await family_with_pupil(session)
    canteen = await school(session)
    other = await school(session, code="astana-school-002")
    await issued(session, child, parent)
    token, _ = await meals.meal_qr_token(
        session=session, parent_iin=parent.iin, child_person_id=child.id, key=QR_KEY, now=NOW
    )
    body, _, signature = token.partition(".")
    cases = [
        (other.id, MealRequest(key(), "lunch", SCHOOL_DAY, qr_token=token), WrongSchool, NOW),
        (other.id, MealRequest(key(), "lunch", SCHOOL_DAY, child_person_id=child.id),
         NotEnrolled, NOW),
        (canteen.id, MealRequest(key(), "lunch", SCHOOL_DAY, qr_token=token), QrExpired,
         NOW + timedelta(seconds=61)),
        (canteen.id, MealRequest(key(), "lunch", SCHOOL_DAY, qr_token=body + "x." + signature),
         QrInvalid, NOW),
        (canteen.id, MealRequest(key(), "lunch", SCHOOL_DAY, qr_token="not-a-token"),
         QrInvalid, NOW),
        (canteen.id, MealRequest(key(), "lunch", HOLIDAY, child_person_id=child.id),
         NotASchoolDay, NOW.replace(month=12, day=20)),
        (canteen.id, MealRequest(key(), "lunch", SATURDAY, child_person_id=child.id),
         NotASchoolDay, NOW + timedelta(days=3)),
        (canteen.id, MealRequest(key(), "lunch", SCHOOL_DAY + timedelta(days=1),
         child_person_id=child.id), NotASchoolDay, NOW),  # tomorrow
    ]  # fmt: skip
    for merchant_id, request, refusal, now in cases:
        with pytest.raises(refusal):
            await redeem_meal(
                session=session, merchant_id=merchant_id, request=request, qr_key=QR_KEY, now=now
            )
    # Then nothing was written
    assert await session.scalar(select(func.count()).select_from(MealRedemption)) == 0
    assert await ledger.balance(session=session, account=canteen.account_code) == 0


async def test_a_pupil_without_a_voucher_is_refused(session):
    _, _, child = await family_with_pupil(session)
    canteen = await school(session)
    with pytest.raises(NoVoucher):
        await redeem_meal(
            session=session, merchant_id=canteen.id, qr_key=QR_KEY, now=NOW,
            request=MealRequest(key(), "lunch", SCHOOL_DAY, child_person_id=child.id),
        )  # fmt: skip


async def test_one_meal_per_child_day_and_type_and_a_qr_code_once(session):
    _, parent, child = await family_with_pupil(session)
    canteen = await school(session)
    await issued(session, child, parent)
    token, _ = await meals.meal_qr_token(
        session=session, parent_iin=parent.iin, child_person_id=child.id, key=QR_KEY, now=NOW
    )
    await redeem_meal(
        session=session, merchant_id=canteen.id, qr_key=QR_KEY, now=NOW,
        request=MealRequest(key(), "lunch", SCHOOL_DAY, qr_token=token),
    )  # fmt: skip
    # The same lunch picked from the list, and the same QR code for breakfast, are refused
    with pytest.raises(AlreadyRedeemed):
        await redeem_meal(
            session=session, merchant_id=canteen.id, qr_key=QR_KEY, now=NOW,
            request=MealRequest(key(), "lunch", SCHOOL_DAY, child_person_id=child.id),
        )  # fmt: skip
    with pytest.raises(QrReplayed):
        await redeem_meal(
            session=session, merchant_id=canteen.id, qr_key=QR_KEY, now=NOW,
            request=MealRequest(key(), "breakfast", SCHOOL_DAY, qr_token=token),
        )  # fmt: skip
    # But breakfast from the list is another meal
    breakfast = await redeem_meal(
        session=session, merchant_id=canteen.id, qr_key=QR_KEY, now=NOW,
        request=MealRequest(key(), "breakfast", SCHOOL_DAY, child_person_id=child.id),
    )  # fmt: skip
    assert breakfast.redemption.method == "list"
    assert await ledger.balance(session=session, account=canteen.account_code) == 98_000 + 58_800


async def test_a_replay_returns_the_first_result_even_after_the_qr_expired(session):
    _, parent, child = await family_with_pupil(session)
    canteen = await school(session)
    await issued(session, child, parent)
    token, _ = await meals.meal_qr_token(
        session=session, parent_iin=parent.iin, child_person_id=child.id, key=QR_KEY, now=NOW
    )
    request = MealRequest("canteen-7:0001", "lunch", SCHOOL_DAY, qr_token=token)
    first = await redeem_meal(
        session=session, merchant_id=canteen.id, request=request, qr_key=QR_KEY, now=NOW
    )
    replay = await redeem_meal(
        session=session, merchant_id=canteen.id, request=request, qr_key=QR_KEY,
        now=NOW + timedelta(minutes=5),
    )  # fmt: skip
    assert replay.replayed and replay.redemption.id == first.redemption.id
    with pytest.raises(IdempotencyKeyReused):
        await redeem_meal(
            session=session, merchant_id=canteen.id, qr_key=QR_KEY, now=NOW,
            request=MealRequest("canteen-7:0001", "breakfast", SCHOOL_DAY, child_person_id=child.id),
        )  # fmt: skip
    assert await ledger.balance(session=session, account=canteen.account_code) == 98_000


async def test_a_batch_answers_each_item(session):
    # Given two pupils with vouchers and one without, at one school
    canteen = await school(session)
    pupils = []
    for entitled in (True, True, False):
        _, parent, child = await family_with_pupil(session, entitled=entitled)
        if entitled:
            await issued(session, child, parent)
        pupils.append(child)
    a, b, c = pupils
    day_before = SCHOOL_DAY - timedelta(days=1)
    requests = [
        MealRequest("off-1", "lunch", SCHOOL_DAY, child_person_id=a.id),
        MealRequest("off-2", "lunch", day_before, child_person_id=a.id),
        MealRequest("off-3", "lunch", SCHOOL_DAY, child_person_id=a.id),  # again
        MealRequest("off-4", "lunch", SCHOOL_DAY, child_person_id=c.id),  # no voucher
        MealRequest("off-5", "lunch", SATURDAY - timedelta(days=7), child_person_id=b.id),
        MealRequest("off-1", "lunch", SCHOOL_DAY, child_person_id=a.id),  # replay in batch
        MealRequest("off-6", "breakfast", SCHOOL_DAY, child_person_id=b.id),
    ]
    # When the offline canteen sends them
    results = await redeem_meals_batch(
        session=session, merchant_id=canteen.id, requests=requests, qr_key=QR_KEY, now=NOW
    )
    # Then each has its own answer, and only the good ones moved value
    codes = [r.code or ("REPLAYED" if r.redeemed.replayed else "OK") for r in results]
    assert codes == [
        "OK", "OK", "ALREADY_REDEEMED", "NO_VOUCHER", "NOT_A_SCHOOL_DAY", "REPLAYED", "OK",
    ]  # fmt: skip
    assert await ledger.balance(session=session, account=canteen.account_code) == (
        2 * 98_000 + 58_800
    )
    # And sending the batch again changes nothing
    again = await redeem_meals_batch(
        session=session, merchant_id=canteen.id, requests=requests, qr_key=QR_KEY, now=NOW
    )
    assert [r.redeemed.replayed for r in again if r.redeemed] == [True, True, True, True]
    assert await ledger.accounts_disagreeing_with_transfers(session=session) == []


async def test_parents_see_their_childs_meals_and_nobody_elses(session):
    _, parent, child = await family_with_pupil(session)
    _, stranger, _ = await family_with_pupil(session)
    canteen = await school(session)
    await issued(session, child, parent)
    await redeem_meal(
        session=session, merchant_id=canteen.id, qr_key=QR_KEY, now=NOW,
        request=MealRequest(key(), "lunch", SCHOOL_DAY, child_person_id=child.id),
    )  # fmt: skip
    seen = await meals.child_meals(session=session, parent_iin=parent.iin, child_person_id=child.id)
    assert [(m.served_on, m.meal_type, m.price_tiyn, m.school_name) for m in seen] == [
        (SCHOOL_DAY, "lunch", 98_000, canteen.name)
    ]
    with pytest.raises(NotYourChild):
        await meals.child_meals(session=session, parent_iin=stranger.iin, child_person_id=child.id)


async def test_a_wallet_run_dry_refuses_only_its_own_items_of_a_batch(session):
    # Given two pupils, one whose wallet holds less than a lunch
    canteen = await school(session)
    _, parent, rich = await family_with_pupil(session)
    await issued(session, rich, parent)
    _, other_parent, poor = await family_with_pupil(session)
    await issued(session, poor, other_parent)
    await ledger.open_account(session=session, code="payout:test", kind="merchant",
                              purpose="school_meals")  # fmt: skip
    balance = await ledger.balance(session=session, account=meals.wallet_code(poor.id))
    await ledger.transfer(session=session, transfer_id="drain", debit=meals.wallet_code(poor.id),
                          credit="payout:test", amount=balance - 1, reason="MEAL_SERVED")  # fmt: skip
    # When a batch holds a lunch for each
    results = await redeem_meals_batch(
        session=session, merchant_id=canteen.id, qr_key=QR_KEY, now=NOW,
        requests=[
            MealRequest("dry-1", "lunch", SCHOOL_DAY, child_person_id=rich.id),
            MealRequest("dry-2", "lunch", SCHOOL_DAY, child_person_id=poor.id),
        ],
    )  # fmt: skip
    # Then the first is served and the second refused by the ledger, nothing half-written
    assert [(r.redeemed is not None, r.code) for r in results] == [
        (True, None), (False, "INSUFFICIENT_FUNDS"),
    ]  # fmt: skip
    assert await ledger.balance(session=session, account=canteen.account_code) == 98_000
    assert await session.scalar(select(func.count()).select_from(MealRedemption)) == 1
    assert await ledger.accounts_disagreeing_with_transfers(session=session) == []
