"""The proactive flow in the domain: offers from new entitlements, answers, consent with a
fresh eligibility check, assignment, payment through the ledger and the bank outbox, notices.

Runs on SQLite and PostgreSQL; each test's data is rolled back with it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from familymap.batch import reevaluate_family
from familymap.i18n import numeric_day
from familymap.iin import complete_iin
from familymap.orm import utcnow
from familymap.tables import EntitlementChange, Person
from tests.clock import PINNED_TODAY
from tests.wallet.offer_builders import (
    FATHER_PHONE,
    IBAN,
    asp_family,
    evaluate,
    later,
    newborn_household,
)
from tests.wallet.sms_codes import mask_reply_code
from wallet import ledger
from wallet.bank import LogBank
from wallet.offer_tables import (
    BenefitAssignment,
    Notification,
    Offer,
    OfferTransition,
    Payment,
    WalletCursor,
)
from wallet.offers import (
    CHANGE_COLUMNS,
    DEFAULT_OFFER_DAYS,
    FulfilmentUnavailable,
    InvalidIban,
    OfferAlreadyAnswered,
    OfferExpired,
    OfferNotFound,
    answer_offer,
    choose_recipient,
    expire_offers,
    issue_pending_offers,
    offer_key,
    offer_new_entitlements,
    plan_changes,
    prepare_changes,
    register_bank_account,
    register_fulfiller,
    validate_iban,
)
from wallet.outbox import relay_once
from wallet.outbox_tables import OutboxMessage
from wallet.payments import due_months, settle_payments
from wallet.reconcile import reconcile_statement
from wallet.statements import Statement, StatementLine


async def offers_by_programme(session, household) -> dict[str, Offer]:
    rows = await session.scalars(select(Offer).where(Offer.family_id == household.family.id))
    return {row.programme: row for row in rows}


async def history(session, offer: Offer) -> list[tuple[str | None, str, str]]:
    rows = await session.scalars(
        select(OfferTransition)
        .where(OfferTransition.offer_id == offer.id)
        .order_by(OfferTransition.id)
    )
    return [(row.from_state, row.to_state, row.channel) for row in rows]


@pytest.fixture
async def offered(session):
    """The newborn household, evaluated, with its offers made."""
    household = await newborn_household(session)
    run_id = await evaluate(session, household)
    await offer_new_entitlements(session=session, run_id=run_id, now=utcnow())
    return household


async def test_new_entitlements_become_offers_to_the_head_with_an_sms_from_1414(session, offered):
    # Given the household evaluated and offered (fixture)
    offers = await offers_by_programme(session, offered)
    # Then the child's two new benefits are offered to the father, who is asked and paid
    assert {"BIRTH_BENEFIT", "CHILDCARE_TO_1_5"} <= set(offers)
    birth = offers["BIRTH_BENEFIT"]
    assert birth.state == "offered"
    assert birth.beneficiary_person_id == offered.child.id
    assert birth.recipient_person_id == offered.father.id
    assert birth.phone == FATHER_PHONE and birth.amount_tiyn > 0
    # and each has its SMS queued in the same transaction, with how to reply (with the
    # offer's own code, ASCII digits) and no link
    sms = await session.get(OutboxMessage, birth.sms_message_id)
    assert sms.channel == "sms" and sms.recipient == FATHER_PHONE
    code = birth.reply_code
    assert code.isascii() and code.isdigit() and len(code) == 4
    assert code != offers["CHILDCARE_TO_1_5"].reply_code
    assert "1414" in sms.body and f"1 {code} (согласен)" in sms.body
    assert f"2 {code} (отказ)" in sms.body and "{code}" not in sms.body
    assert "http" not in sms.body and "www" not in sms.body
    assert await history(session, birth) == [(None, "offered", "system")]


async def test_the_sms_is_in_kazakh_for_a_kazakh_speaker(session):
    household = await newborn_household(session, language="kk")
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    birth = (await offers_by_programme(session, household))["BIRTH_BENEFIT"]
    sms = await session.get(OutboxMessage, birth.sms_message_id)
    assert "бала тууына байланысты" in sms.body and "келісемін" in sms.body


async def test_the_sms_names_the_deadline_as_a_day_in_kazakhstan(session):
    """An offer made at 00:30 in Astana (19:30 UTC the day before) expires 30 days later at
    00:30 in Astana: the SMS names that day, not the UTC date one day earlier."""
    astana_half_past_midnight = datetime.combine(PINNED_TODAY, time(19, 30), tzinfo=UTC)
    household = await newborn_household(session)
    run_id = await evaluate(session, household)
    await offer_new_entitlements(session=session, run_id=run_id, now=astana_half_past_midnight)
    birth = (await offers_by_programme(session, household))["BIRTH_BENEFIT"]
    sms = await session.get(OutboxMessage, birth.sms_message_id)
    astana_deadline = PINNED_TODAY + timedelta(days=DEFAULT_OFFER_DAYS + 1)
    assert numeric_day(astana_deadline, "ru") in sms.body
    assert numeric_day(astana_deadline - timedelta(days=1), "ru") not in sms.body


async def test_re_running_eligibility_never_duplicates_an_offer(session, offered, session_factory):
    # Given offers made for the household's new entitlements
    before = await session.scalar(select(func.count()).select_from(Offer))
    # When the family is evaluated again, and the batch job reads every change there is
    run_id = await evaluate(session, offered)
    again = await offer_new_entitlements(session=session, run_id=run_id, now=utcnow())
    await session.commit()
    pending = await issue_pending_offers(session_factory=session_factory, now=utcnow())
    # Then no offer is made twice
    assert again.offers == 0
    assert pending.offers == 0 and pending.already >= 2
    assert await session.scalar(select(func.count()).select_from(Offer)) == before


async def test_consent_assigns_pays_through_the_ledger_and_the_bank(session, offered):
    birth = (await offers_by_programme(session, offered))["BIRTH_BENEFIT"]
    # When the father accepts in the app
    answer = await answer_offer(
        session=session, offer_id=birth.id, recipient_person_id=offered.father.id,
        accept=True, channel="app",
    )  # fmt: skip
    # Then the benefit is assigned (one-off) and its payment ordered
    assert answer.offer.state == "assigned"
    assignment = await session.scalar(
        select(BenefitAssignment).where(BenefitAssignment.offer_id == birth.id)
    )
    assert assignment.schedule == "one_off" and assignment.amount_tiyn == birth.amount_tiyn
    payment = await session.scalar(select(Payment).where(Payment.assignment_id == assignment.id))
    assert (payment.state, payment.iban, payment.amount_tiyn) == (
        "ordered",
        IBAN,
        birth.amount_tiyn,
    )
    # with the money moved in the ledger from the programme to bank payout, for this family
    transfer = (await ledger.statement(session=session, account="payout:bank"))[-1]
    assert transfer.amount == birth.amount_tiyn and transfer.reason == "BENEFIT_PAYMENT"
    assert (
        await ledger.balance(session=session, account="programme:BIRTH_BENEFIT")
        == -birth.amount_tiyn
    )
    assert await ledger.trial_balance(session=session) == 0
    # and the order queued for the bank
    order = await session.get(OutboxMessage, payment.order_message_id)
    assert order.channel == "bank" and order.recipient == IBAN
    # When the bank relay delivers the order and the payments are settled
    await session.commit()
    assert (
        await relay_once(
            session_factory=lambda: session_ctx(session), gateway=LogBank(), channel="bank"
        )
    ).sent == 1
    settled = await settle_payments(session=session)
    # Then the payment is sent, not paid: only the bank's statement says paid (test_reconcile)
    assert settled.sent == 1
    await session.refresh(payment)
    await session.refresh(birth)
    assert payment.state == "sent"
    assert birth.state == "assigned" and birth.paid_at is None
    assert await history(session, birth) == [
        (None, "offered", "system"), ("offered", "accepted", "app"),
        ("accepted", "assigned", "system"),
    ]  # fmt: skip
    # and the father is told by SMS what his consent did
    confirmation = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.message_key == f"offer:{birth.id}:assigned")
    )
    assert confirmation is not None and "Согласие принято" in confirmation.body


def booked(payment: Payment, *, at) -> Statement:
    """A bank statement that books the payment out at `at`."""
    line = StatementLine(
        statement_id="S1", account="KZ12125KZT1001300335", reference=f"ref-{payment.id}",
        booked_on=at.date(), booked_at=at, direction="debit", amount_tiyn=payment.amount_tiyn,
        currency="KZT", end_to_end_id=payment.payment_key, return_reason=None,
    )  # fmt: skip
    return Statement(format="camt.053", lines=(line,))


def session_ctx(session):
    """A session factory handing out the test's own session (the relay opens and closes it)."""

    class _Borrowed:
        async def __aenter__(self):
            return session

        async def __aexit__(self, *exc):
            return False

    return _Borrowed()


async def test_a_failed_bank_order_is_reversed_in_the_ledger(session, offered):
    birth = (await offers_by_programme(session, offered))["BIRTH_BENEFIT"]
    await answer_offer(
        session=session, offer_id=birth.id, recipient_person_id=offered.father.id,
        accept=True, channel="app",
    )  # fmt: skip
    payment = await session.scalar(select(Payment))
    order = await session.get(OutboxMessage, payment.order_message_id)
    order.status = "failed"  # the bank refused the account for good
    await session.flush()
    settled = await settle_payments(session=session)
    assert settled.failed == 1
    await session.refresh(payment)
    assert payment.state == "failed"
    assert await ledger.balance(session=session, account="programme:BIRTH_BENEFIT") == 0
    assert await ledger.balance(session=session, account="payout:bank") == 0
    # and settling again changes nothing
    assert (await settle_payments(session=session)).failed == 0


async def test_a_monthly_benefit_pays_the_months_due(session, offered):
    childcare = (await offers_by_programme(session, offered))["CHILDCARE_TO_1_5"]
    await answer_offer(
        session=session, offer_id=childcare.id, recipient_person_id=offered.father.id,
        accept=True, channel="sms",
    )  # fmt: skip
    assignment = await session.scalar(
        select(BenefitAssignment).where(BenefitAssignment.offer_id == childcare.id)
    )
    assert assignment.schedule == "monthly"
    payments = (
        await session.scalars(select(Payment).where(Payment.assignment_id == assignment.id))
    ).all()
    assert [p.for_month for p in payments] == due_months(
        start=assignment.period_start, end=assignment.period_end, today=date.today()
    )


def test_due_months_runs_from_the_start_month_to_today_or_the_end():
    assert due_months(start=date(2026, 10, 15), end=date(2027, 4, 14), today=date(2026, 12, 1)) == [
        date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1),
    ]  # fmt: skip
    assert due_months(start=date(2026, 11, 1), end=date(2026, 11, 30), today=date(2027, 3, 1)) == [
        date(2026, 11, 1)
    ]
    assert due_months(start=date(2027, 1, 1), end=date(2027, 6, 30), today=date(2026, 12, 31)) == []


async def test_without_an_iban_the_offer_waits_then_pays_when_one_is_added(session):
    household = await newborn_household(session, iban=None)
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    birth = (await offers_by_programme(session, household))["BIRTH_BENEFIT"]
    answer = await answer_offer(
        session=session, offer_id=birth.id, recipient_person_id=household.father.id,
        accept=True, channel="app",
    )  # fmt: skip
    assert answer.offer.state == "needs_bank_account"
    assert await session.scalar(select(func.count()).select_from(Payment)) == 0
    told = await session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.message_key == f"offer:{birth.id}:needs_bank_account"
        )
    )
    assert "IBAN" in told.body and "eGov Mobile" in told.body
    # When the father adds his IBAN (with spaces, lower case: as people type it)
    paid = await register_bank_account(
        session=session, person_id=household.father.id, iban="kz86 125K ZT50 0410 0100"
    )
    # Then the waiting offer is assigned and paid to it
    assert [offer.id for offer in paid] == [birth.id]
    await session.refresh(birth)
    assert birth.state == "assigned"
    payment = await session.scalar(select(Payment))
    assert payment.iban == IBAN
    assert (await session.get(Person, household.father.id)).iban == IBAN


@pytest.mark.parametrize(
    "iban",
    [
        "",
        "KZ86125KZT500410010",
        "KZ87125KZT5004100100",
        "RU86125KZT5004100100",
        "KZ86-125KZT50041001",
    ],
)
def test_an_iban_must_be_kazakh_with_valid_check_digits(iban):
    with pytest.raises(InvalidIban) as refused:
        validate_iban(iban)
    assert refused.value.code == "INVALID_IBAN"


async def test_decline_and_every_refusal_changes_nothing(session, offered):
    offers = await offers_by_programme(session, offered)
    birth, childcare = offers["BIRTH_BENEFIT"], offers["CHILDCARE_TO_1_5"]
    # Someone else's offer (the mother is not its recipient) is not found
    with pytest.raises(OfferNotFound):
        await answer_offer(
            session=session,
            offer_id=birth.id,
            recipient_person_id=offered.mother.id,
            accept=True,
            channel="app",
        )
    with pytest.raises(OfferNotFound):
        await answer_offer(
            session=session,
            offer_id=10**9,
            recipient_person_id=offered.father.id,
            accept=True,
            channel="app",
        )
    await session.refresh(birth)
    assert birth.state == "offered"
    # A decline is recorded with its channel
    declined = await answer_offer(
        session=session,
        offer_id=birth.id,
        recipient_person_id=offered.father.id,
        accept=False,
        channel="sms",
    )
    assert declined.offer.state == "declined"
    assert await history(session, birth) == [
        (None, "offered", "system"),
        ("offered", "declined", "sms"),
    ]
    # and declining again is refused (changing one's mind to consent is tested apart)
    with pytest.raises(OfferAlreadyAnswered) as refused:
        await answer_offer(
            session=session,
            offer_id=birth.id,
            recipient_person_id=offered.father.id,
            accept=False,
            channel="app",
        )
    assert refused.value.code == "OFFER_ALREADY_ANSWERED"
    # An answer after the deadline is refused, and the expiry job closes the offer
    with pytest.raises(OfferExpired):
        await answer_offer(
            session=session, offer_id=childcare.id, recipient_person_id=offered.father.id,
            accept=True, channel="app", now=later(31),
        )  # fmt: skip
    assert await expire_offers(session=session, now=later(31)) >= 1
    await session.refresh(childcare)
    assert childcare.state == "expired"
    assert await session.scalar(select(func.count()).select_from(Payment)) == 0


async def test_a_declined_offer_can_be_accepted_until_it_expires(session, offered):
    birth = (await offers_by_programme(session, offered))["BIRTH_BENEFIT"]
    # Given the father declined by SMS, and was told he can still consent in the app
    await answer_offer(
        session=session, offer_id=birth.id, recipient_person_id=offered.father.id,
        accept=False, channel="sms",
    )  # fmt: skip
    sms = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.message_key == f"offer:{birth.id}:declined")
    )
    assert "eGov Mobile" in sms.body and f"{birth.expires_at:%d.%m.%Y}" in sms.body
    # When he accepts in the app before the deadline
    answer = await answer_offer(
        session=session, offer_id=birth.id, recipient_person_id=offered.father.id,
        accept=True, channel="app", now=later(1),
    )  # fmt: skip
    # Then the benefit is assigned and paid once, and the history shows both answers
    assert answer.offer.state == "assigned" and answer.offer.answer_channel == "app"
    assert await session.scalar(select(func.count()).select_from(Payment)) == 1
    assert [(f, t) for f, t, _ in await history(session, birth)][:3] == [
        (None, "offered"), ("offered", "declined"), ("declined", "accepted"),
    ]  # fmt: skip
    # and a consent cannot be declined afterwards
    with pytest.raises(OfferAlreadyAnswered):
        await answer_offer(
            session=session, offer_id=birth.id, recipient_person_id=offered.father.id,
            accept=False, channel="app", now=later(2),
        )  # fmt: skip


async def test_a_declined_offer_cannot_be_accepted_after_its_deadline(session, offered):
    birth = (await offers_by_programme(session, offered))["BIRTH_BENEFIT"]
    # Given a declined offer
    await answer_offer(
        session=session, offer_id=birth.id, recipient_person_id=offered.father.id,
        accept=False, channel="app",
    )  # fmt: skip
    # When the father accepts after the deadline, then it is refused as expired
    with pytest.raises(OfferExpired):
        await answer_offer(
            session=session, offer_id=birth.id, recipient_person_id=offered.father.id,
            accept=True, channel="app", now=later(31),
        )  # fmt: skip
    await session.refresh(birth)
    assert birth.state == "declined"
    assert await session.scalar(select(func.count()).select_from(Payment)) == 0


async def test_a_double_accept_pays_once(session, offered):
    birth = (await offers_by_programme(session, offered))["BIRTH_BENEFIT"]
    await answer_offer(
        session=session,
        offer_id=birth.id,
        recipient_person_id=offered.father.id,
        accept=True,
        channel="sms",
    )
    with pytest.raises(OfferAlreadyAnswered):
        await answer_offer(
            session=session,
            offer_id=birth.id,
            recipient_person_id=offered.father.id,
            accept=True,
            channel="app",
        )
    assert await session.scalar(select(func.count()).select_from(Payment)) == 1


async def test_consent_rechecks_eligibility_and_withdraws_when_it_no_longer_holds(session, offered):
    birth = (await offers_by_programme(session, offered))["BIRTH_BENEFIT"]
    # Given the registry now says the child was registered long ago (a corrected record)
    offered.child.birth_date = date.today() - timedelta(days=800)
    await session.flush()
    # When the father accepts
    answer = await answer_offer(
        session=session,
        offer_id=birth.id,
        recipient_person_id=offered.father.id,
        accept=True,
        channel="app",
    )
    # Then the offer is withdrawn with the failed condition, and nothing is paid
    assert answer.offer.state == "withdrawn" and answer.offer.note
    assert await session.scalar(select(func.count()).select_from(Payment)) == 0
    assert [t[1] for t in await history(session, birth)] == ["offered", "accepted", "withdrawn"]


@pytest.fixture
def no_fulfillers(monkeypatch):
    """An empty registry of fulfillers for the test (the app registers the real ones)."""
    from wallet import offers as offers_module

    registry: dict = {}
    monkeypatch.setattr(offers_module, "_FULFILLERS", registry)
    return registry


async def pupil_offered_meals(session):
    household = await newborn_household(session, born_days_ago=7 * 365 + 100)
    household.child.school_grade, household.child.school_id = 1, "astana-school-001"
    await session.flush()
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    meals = (await offers_by_programme(session, household)).get("SCHOOL_MEALS")
    assert meals is not None and meals.kind == "voucher"
    return household, meals


async def test_a_voucher_offer_is_fulfilled_by_its_registered_fulfiller(session, no_fulfillers):
    # Given a child entitled to school meals, offered to the father
    household, meals = await pupil_offered_meals(session)
    issued = []

    async def fulfil(session, offer, amount, start, end):
        issued.append((offer.id, amount, start, end))

    register_fulfiller("SCHOOL_MEALS", fulfil)
    # When he accepts, then the fulfiller issues it and no cash moves
    answer = await answer_offer(
        session=session, offer_id=meals.id, recipient_person_id=household.father.id,
        accept=True, channel="app",
    )  # fmt: skip
    assert answer.offer.state == "assigned" and issued and issued[0][0] == meals.id
    assert await session.scalar(select(func.count()).select_from(Payment)) == 0


async def test_a_voucher_offer_without_a_fulfiller_is_refused(session, no_fulfillers):
    household, meals = await pupil_offered_meals(session)
    with pytest.raises(FulfilmentUnavailable):
        await answer_offer(
            session=session, offer_id=meals.id, recipient_person_id=household.father.id,
            accept=True, channel="app",
        )  # fmt: skip


async def test_consent_to_school_meals_issues_and_funds_the_meal_voucher(session, no_fulfillers):
    # Given the vouchers package's own fulfillers, as the app registers them
    from vouchers.fulfilment import register_voucher_fulfillers
    from vouchers.tables import MealVoucher

    register_voucher_fulfillers()
    household, meals = await pupil_offered_meals(session)
    # When the father accepts the meals offer by SMS
    answer = await answer_offer(
        session=session, offer_id=meals.id, recipient_person_id=household.father.id,
        accept=True, channel="sms",
    )  # fmt: skip
    # Then the child's voucher exists and its purpose wallet is funded from the programme
    assert answer.offer.state == "assigned"
    voucher = await session.scalar(
        select(MealVoucher).where(MealVoucher.person_id == household.child.id)
    )
    assert voucher is not None
    assert (voucher.consented_by_person_id, voucher.channel) == (household.father.id, "sms")
    wallet = f"person:{household.child.id}:school_meals"
    assert await ledger.balance(session=session, account=wallet) > 0
    assert await ledger.trial_balance(session=session) == 0


async def test_the_meals_offer_quotes_what_the_voucher_is_funded_with(session, no_fulfillers):
    # Given the vouchers package's fulfillers and a first-grader in Astana offered meals
    from vouchers.fulfilment import register_voucher_fulfillers
    from vouchers.tables import MealVoucher

    register_voucher_fulfillers()
    household, meals = await pupil_offered_meals(session)
    quoted = meals.amount_tiyn
    # When the father accepts
    answer = await answer_offer(
        session=session, offer_id=meals.id, recipient_person_id=household.father.id,
        accept=True, channel="app",
    )  # fmt: skip
    # Then the voucher is funded with exactly the amount the offer quoted and consent decided
    voucher = await session.scalar(
        select(MealVoucher).where(MealVoucher.person_id == household.child.id)
    )
    wallet = f"person:{household.child.id}:school_meals"
    funded = await ledger.balance(session=session, account=wallet)
    assert quoted == answer.offer.amount_tiyn == voucher.amount_tiyn == funded
    # and that is the 2026-27 calendar's 168 school days x Astana's lunch and breakfast (60%)
    assert quoted == 168 * (98_000 + 58_800)


async def test_notices_are_sent_once_per_fact(session):
    # Given a head who reaches pension age (63 for a man) 20 days after the pinned today,
    # inside the 30-day notice window
    household = await newborn_household(session)
    turns_63 = PINNED_TODAY + timedelta(days=20)
    household.father.birth_date = turns_63.replace(year=turns_63.year - 63)
    household.father.sex = "M"
    await session.flush()
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    notes = (
        await session.scalars(
            select(Notification).where(Notification.person_id == household.father.id)
        )
    ).all()
    assert [n.programme for n in notes] == ["PENSION_AGE_NOTICE"]
    sms = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.message_key == f"notice:{notes[0].id}")
    )
    assert "пенсионного возраста" in sms.body
    # When eligibility runs again (the entitlement ended and came back, even)
    for _ in range(2):
        await offer_new_entitlements(
            session=session, run_id=await evaluate(session, household), now=utcnow()
        )
    # Then the fact is not notified twice
    assert await session.scalar(select(func.count()).select_from(Notification)) == 1


def test_the_recipient_is_the_adult_beneficiary_or_the_head():
    today = date(2026, 11, 22)
    head = Person(id=1, role="head", birth_date=date(1980, 1, 1))
    spouse = Person(id=2, role="spouse", birth_date=date(1982, 1, 1))
    child = Person(id=3, role="child", birth_date=date(2020, 1, 1))
    grandmother = Person(id=4, role="other", birth_date=date(1950, 1, 1))
    members = [head, spouse, child, grandmother]
    assert choose_recipient(members, 2, on=today) is spouse  # an adult beneficiary herself
    assert choose_recipient(members, 3, on=today) is head  # a child's benefit: the head
    assert choose_recipient(members, None, on=today) is head  # a family benefit: the head
    head.date_of_death = date(2026, 1, 1)
    assert choose_recipient(members, 3, on=today) is spouse
    assert choose_recipient([child, grandmother], 3, on=today) is grandmother
    assert choose_recipient([child], 3, on=today) is None


@pytest.mark.postgres_only
async def test_concurrent_answers_to_one_offer_one_wins(engine):
    # Given, committed, a household whose father has no IBAN (consent ends in
    # needs_bank_account, so the race touches no ledger) and its offers
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession

    iins = ("880412300108", "900605400104", "250901500103")
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        household = await newborn_household(setup, iban=None, iins=iins, phones=(None, None))
        await offer_new_entitlements(
            session=setup, run_id=await evaluate(setup, household), now=utcnow()
        )
        await setup.commit()
        birth = (await offers_by_programme(setup, household))["BIRTH_BENEFIT"]
    try:
        # When ten answers (five accepts by SMS, five declines in the app) arrive at once
        start = asyncio.Event()

        async def answer(n: int) -> str:
            async with AsyncSession(engine) as session:
                await session.execute(text("SELECT 1"))
                await start.wait()
                try:
                    result = await answer_offer(
                        session=session, offer_id=birth.id, recipient_person_id=household.father.id,
                        accept=n % 2 == 0, channel="sms" if n % 2 == 0 else "app",
                    )  # fmt: skip
                except OfferAlreadyAnswered as refused:
                    await session.rollback()
                    return refused.code
                state = result.offer.state
                await session.commit()
                return state

        tasks = [asyncio.create_task(answer(n)) for n in range(10)]
        await asyncio.sleep(0.2)
        start.set()
        outcomes = await asyncio.gather(*tasks)
        # Then exactly one answer stands and the other nine are refused
        winners = [o for o in outcomes if o != "OFFER_ALREADY_ANSWERED"]
        assert len(winners) == 1 and winners[0] in ("needs_bank_account", "declined")
        async with AsyncSession(engine) as check:
            moves = await check.scalar(
                select(func.count())
                .select_from(OfferTransition)
                .where(
                    OfferTransition.offer_id == birth.id, OfferTransition.from_state == "offered"
                )
            )
            assert moves == 1
    finally:
        await _delete_household(engine, household.family.id)


async def _delete_household(engine, family_id: int) -> None:
    from sqlalchemy import text

    statements = [
        "DELETE FROM offer_transitions WHERE offer_id IN (SELECT id FROM offers WHERE family_id = :f)",
        "DELETE FROM benefit_assignments WHERE family_id = :f",
        "UPDATE offers SET sms_message_id = NULL WHERE family_id = :f",
        "DELETE FROM offers WHERE family_id = :f",
        "DELETE FROM notifications WHERE family_id = :f",
        "DELETE FROM decisions WHERE family_id = :f",
        "DELETE FROM entitlement_changes WHERE family_id = :f",
        "DELETE FROM entitlements WHERE family_id = :f",
        "DELETE FROM eligibility_runs WHERE family_id = :f",
        "DELETE FROM persons WHERE family_id = :f",
        "DELETE FROM families WHERE id = :f",
    ]
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement), {"f": family_id})


async def test_the_funnel_counts_stages_and_the_median_time_to_payment(session, offered):
    from datetime import timedelta as td

    from wallet.funnel import offer_funnel

    offers = await offers_by_programme(session, offered)
    birth, childcare = offers["BIRTH_BENEFIT"], offers["CHILDCARE_TO_1_5"]
    # Given the birth benefit accepted and paid two hours after the offer, childcare declined
    await answer_offer(
        session=session,
        offer_id=birth.id,
        recipient_person_id=offered.father.id,
        accept=True,
        channel="sms",
    )
    await answer_offer(
        session=session,
        offer_id=childcare.id,
        recipient_person_id=offered.father.id,
        accept=False,
        channel="app",
    )
    payment = await session.scalar(select(Payment))
    (await session.get(OutboxMessage, payment.order_message_id)).status = "sent"
    (await session.get(OutboxMessage, birth.sms_message_id)).status = "sent"
    await session.flush()
    await settle_payments(session=session, now=birth.created_at)
    await reconcile_statement(
        session=session, statement=booked(payment, at=birth.created_at + td(hours=2)), now=utcnow()
    )
    # When the operator reads the funnel for today
    rows = await offer_funnel(session=session, since=later(-1), until=later(1), now=utcnow())
    by_programme = {row.programme: row for row in rows}
    # Then each stage is counted and the median wait is the two hours
    paid = by_programme["BIRTH_BENEFIT"]
    assert (paid.sent, paid.delivered, paid.accepted, paid.paid) == (1, 1, 1, 1)
    assert paid.take_up_rate == 1.0
    assert paid.median_seconds_to_payment == pytest.approx(7200, abs=1)
    declined = by_programme["CHILDCARE_TO_1_5"]
    assert (declined.sent, declined.declined, declined.accepted, declined.take_up_rate) == (
        1,
        1,
        0,
        0.0,
    )
    # and a filter by region that matches nothing gives nothing
    assert (
        await offer_funnel(
            session=session, since=later(-1), until=later(1), now=utcnow(), region="nowhere"
        )
        == []
    )


# --- One set of rules, two drivers: the one-family path and the batch job ------------------


def _iins(n: int) -> tuple[str, str, str]:
    """Valid IINs of a father, a mother and a child, distinct for each n."""
    made = []
    for stem in (f"8804123{n:02d}0", f"9006054{n:02d}0", f"2509015{n:02d}0"):
        for last in range(10):
            if (iin := complete_iin(f"{stem[:10]}{last}")) is not None:
                made.append(iin)
                break
    return made[0], made[1], made[2]


async def _families_for_both_paths(session) -> list[int]:
    """Households evaluated (their changes recorded, no offers yet): a Russian and a Kazakh
    speaker, a father turning 63 (a notice), one without phones, one whose registry
    phones are malformed (offers and notices in the app only), and a family entitled to ASP
    decided in this quarter and the next (its quarter, and the next one's renewal)."""
    kinds = [
        {"language": "ru"},
        {"language": "kk"},
        {"language": "ru", "pension": True},
        {"language": "ru", "phones": (None, None)},
        {"language": "kk", "phones": ("+7701", "87017654321"), "pension": True},
    ]
    families = []
    for n, kind in enumerate(kinds, start=1):
        household = await newborn_household(
            session,
            language=kind["language"],
            iins=_iins(n),
            phones=kind.get("phones", (f"+7701000{n:04d}", f"+7702000{n:04d}")),
        )
        if kind.get("pension"):
            turns_63 = PINNED_TODAY + timedelta(days=20)
            household.father.birth_date = turns_63.replace(year=turns_63.year - 63)
            await session.flush()
        await evaluate(session, household)
        families.append(household.family.id)
    poor = await asp_family(session)
    for on in (PINNED_TODAY, date(2027, 1, 4)):
        await reevaluate_family(await session.connection(), family_id=poor.family.id, on=on)
    families.append(poor.family.id)
    return families


async def _made_for(session, family_ids: list[int]) -> dict[str, list[tuple]]:
    """What the offer flow made for these families, without ids, times and random codes."""
    offers = (await session.scalars(select(Offer).where(Offer.family_id.in_(family_ids)))).all()
    messages = {
        m.id: m
        for m in await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.id.in_([o.sms_message_id for o in offers if o.sms_message_id])
            )
        )
    }
    notifications = (
        await session.scalars(select(Notification).where(Notification.family_id.in_(family_ids)))
    ).all()
    notice_sms = {
        m.message_key: m
        for m in await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.message_key.in_([f"notice:{n.id}" for n in notifications])
            )
        )
    }
    transitions = await session.scalar(
        select(func.count())
        .select_from(OfferTransition)
        .where(OfferTransition.offer_id.in_([o.id for o in offers]))
    )

    def without_code(offer: Offer, body: str) -> str:
        return mask_reply_code(body, offer.reply_code)

    return {
        "offers": sorted(
            (
                o.offer_key,
                o.family_id,
                o.beneficiary_person_id,
                o.recipient_person_id,
                o.programme,
                o.kind,
                o.region,
                o.amount_tiyn,
                o.period_start,
                o.period_end,
                str(o.monthly_amounts),
                o.state,
                o.phone,
                o.language,
                o.source_change_id,
                o.renewal,
                o.reply_code is not None,
                o.expires_at,
                None
                if o.sms_message_id is None
                else (
                    messages[o.sms_message_id].message_key,
                    messages[o.sms_message_id].recipient,
                    without_code(o, messages[o.sms_message_id].body),
                    messages[o.sms_message_id].status,
                ),
            )
            for o in offers
        ),
        "notices": sorted(
            (
                n.fact_key,
                n.family_id,
                n.person_id,
                n.programme,
                n.about_date,
                n.language,
                n.body,
                n.sms_queued,
                None
                if (m := notice_sms.get(f"notice:{n.id}")) is None
                else (m.recipient, m.body, m.status),
            )
            for n in notifications
        ),
        "transitions": [transitions],
    }


async def test_the_batch_job_and_the_one_family_path_make_the_same_offers_sms_and_notices(
    session, session_factory
):
    # Given households evaluated, their changes recorded and no offers made yet
    family_ids = await _families_for_both_paths(session)
    runs = (
        await session.scalars(
            select(EntitlementChange.run_id)
            .where(EntitlementChange.family_id.in_(family_ids))
            .distinct()
        )
    ).all()
    now = utcnow()
    # When the one-family path (as after a life event) offers each run's changes
    one_by_one = session.begin_nested()
    await one_by_one.start()
    for run_id in runs:
        await offer_new_entitlements(session=session, run_id=run_id, now=now)
    by_events = await _made_for(session, family_ids)
    await one_by_one.rollback()
    # and, instead, the batch job offers the same changes (COPY on PostgreSQL)
    await session.commit()
    await issue_pending_offers(session_factory=session_factory, now=now, chunk_size=3)
    by_batch = await _made_for(session, family_ids)
    # Then both made the same offers, SMS and notices (a renewal among them)
    assert by_events["offers"] and by_events["notices"]
    assert any(o[15] is True for o in by_events["offers"])
    assert by_batch == by_events
    # and the rules held: no SMS to the malformed phones, the notices' SMS to the valid ones
    phones = {o[12] for o in by_batch["offers"]}
    assert "+7701" not in phones and "87017654321" not in phones
    assert any(n[7] is False for n in by_batch["notices"])  # the malformed phone's notice
    assert any(n[7] is True and n[8] is not None for n in by_batch["notices"])


async def test_a_notice_to_a_malformed_phone_is_in_the_app_and_the_chunk_goes_on(session):
    # Given a father turning 63 whose registry phone is malformed
    household = await newborn_household(session, phones=("+7701", None))
    turns_63 = PINNED_TODAY + timedelta(days=20)
    household.father.birth_date = turns_63.replace(year=turns_63.year - 63)
    await session.flush()
    # When the offer flow runs on his family's changes
    summary = await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    # Then the notice is made without an SMS, and the offers of the same chunk are made too
    [notice] = (
        await session.scalars(
            select(Notification).where(Notification.person_id == household.father.id)
        )
    ).all()
    assert notice.sms_queued is False
    assert summary.notifications == 1 and summary.offers >= 2


@pytest.mark.parametrize("copy", [True, False])
async def test_a_rerun_of_the_batch_job_from_the_start_makes_nothing_twice(
    session, session_factory, copy
):
    # Given households evaluated and the batch job run once
    family_ids = await _families_for_both_paths(session)
    await session.commit()
    first = await issue_pending_offers(session_factory=session_factory, now=utcnow(), copy=copy)
    made = await _made_for(session, family_ids)
    messages = await session.scalar(select(func.count()).select_from(OutboxMessage))
    # When its cursor is lost and it runs again over every change
    cursor = await session.get(WalletCursor, "offers")
    cursor.position = 0
    await session.commit()
    again = await issue_pending_offers(session_factory=session_factory, now=later(1), copy=copy)
    # Then nothing is made twice
    assert first.offers > 0 and first.notifications > 0
    assert (again.offers, again.notifications) == (0, 0)
    assert again.already == first.offers + first.notifications
    assert await _made_for(session, family_ids) == made
    assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == messages


def test_plan_changes_decides_without_the_database():
    # Given a family's members and its changes: a child's new benefit, a notice to the
    # head, an ended entitlement, and a changed one of a programme that is not re-notified
    head = SimpleNamespace(
        id=1, family_id=9, role="head", birth_date=date(1980, 1, 1), date_of_death=None,
        phone="+77010000001", language="kk", job_lost_on=None,
    )  # fmt: skip
    child = SimpleNamespace(
        id=2, family_id=9, role="child", birth_date=date(2026, 11, 1), date_of_death=None,
        phone=None, language="kk", job_lost_on=None,
    )  # fmt: skip

    def change(i, programme, kind="new", person_id=2):
        return SimpleNamespace(
            id=i, family_id=9, person_id=person_id, programme=programme, change=kind,
            amount_tiyn=100, period_start=date(2026, 11, 1), period_end=date(2026, 11, 1),
        )  # fmt: skip

    changes = [
        change(1, "BIRTH_BENEFIT"),
        change(2, "PENSION_AGE_NOTICE", person_id=1),
        change(3, "CHILDCARE_TO_1_5", kind="ended"),
        change(4, "BIRTH_BENEFIT", kind="changed"),
        change(5, "PENSION_AGE_NOTICE", person_id=1),  # the same fact again
    ]
    # When the offers and notices are planned
    plan = plan_changes(changes=changes, members={9: [head, child]}, today=PINNED_TODAY)
    # Then the child's benefit is offered to the head, once, and one notice is due
    [offer] = plan.offers
    assert offer.key == offer_key("BIRTH_BENEFIT", 9, 2, date(2026, 11, 1))
    assert offer.recipient is head and offer.phone == "+77010000001"
    [notice] = plan.notices
    assert notice.fact_key == "PENSION_AGE_NOTICE:1:2026-11-01" and notice.language == "kk"
    assert notice.phone == "+77010000001" and plan.no_recipient == 0


async def test_a_chunk_prepared_while_the_last_is_written_draws_codes_unlike_its_codes(session):
    # Given a household evaluated, and every reply code but one already drawn for the
    # father's phone by a chunk not committed yet (the batch job writes it meanwhile)
    household = await newborn_household(session)
    await evaluate(session, household)
    changes = (
        await session.execute(
            select(*(getattr(EntitlementChange, n) for n in CHANGE_COLUMNS)).where(
                EntitlementChange.family_id == household.family.id,
                EntitlementChange.programme == "BIRTH_BENEFIT",
            )
        )
    ).all()
    pending = {FATHER_PHONE: {str(code) for code in range(1000, 10_000)} - {"4821"}}
    # When the next chunk is prepared
    prepared = await prepare_changes(
        session=session, changes=changes, now=utcnow(), pending_codes=pending
    )
    # Then its offer draws the one code left, and reports it as drawn
    [row] = prepared.rows
    assert row["reply_code"] == "4821" and "1 4821" in row["body"]
    assert prepared.codes == {FATHER_PHONE: {"4821"}}
