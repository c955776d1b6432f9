"""Renewals: a family still entitled to a renewed programme in its next period is asked again.

ASP is assigned a quarter at a time. On the quarter's turn the family map finds the same
entitlement with its period moved (a `changed` row whose period starts after the previous
one ended); the offer flow offers it with consent, as a renewal (docs/money.md, "Renewals").
The same quarter recomputed, or a monthly benefit whose period start moves with the month,
sends nothing. A rerun makes nothing twice; no month is assigned or paid twice across the
quarter's assignment and its renewal's; a declined renewal ends the payments with the quarter.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select

from familymap.batch import reevaluate_family, run_batch
from familymap.registry_load import load_synthetic_registry
from familymap.rules import RULES_BY_CODE
from familymap.tables import EntitlementChange
from graphql_schema.types.offers import Offer as ApiOffer
from tests.wallet.offer_builders import (
    ASP_PHONE,
    asp_family,
    evaluate,
    newborn_household,
    offer_job_from_the_start,
)
from wallet.offer_tables import BenefitAssignment, Offer, Payment
from wallet.offered import OFFERED, RENEWED, offered, offered_clause
from wallet.offers import answer_offer, issue_pending_offers, offer_new_entitlements
from wallet.outbox_tables import OutboxMessage
from wallet.payments import order_due_payments

# Times in UTC at 14:30 in Astana: the fourth quarter's offer, and days of the next quarter.
NOVEMBER = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
DECEMBER_20 = datetime(2026, 12, 20, 9, 30, tzinfo=UTC)
JANUARY = datetime(2027, 1, 4, 9, 30, tzinfo=UTC)
FEBRUARY = datetime(2027, 2, 3, 9, 30, tzinfo=UTC)
Q4 = (date(2026, 10, 1), date(2026, 12, 31))
Q1 = (date(2027, 1, 1), date(2027, 3, 31))


async def run_and_offer(session, household, at: datetime):
    """The family decided again as of Astana's day at `at`, and its changes offered."""
    summary, _ = await reevaluate_family(
        await session.connection(), family_id=household.family.id, on=local(at)
    )
    return await offer_new_entitlements(session=session, run_id=summary.run_id, now=at)


def local(at: datetime) -> date:
    return (at + timedelta(hours=5)).date()


async def asp_offers(session, household) -> list[Offer]:
    return list(
        await session.scalars(
            select(Offer)
            .where(Offer.family_id == household.family.id, Offer.programme == "ASP")
            .order_by(Offer.period_start)
        )
    )


async def accept(session, offer: Offer, household, at: datetime) -> str:
    answer = await answer_offer(
        session=session, offer_id=offer.id, recipient_person_id=household.mother.id,
        accept=True, channel="app", now=at,
    )  # fmt: skip
    return answer.offer.state


async def paid_months(session, household) -> list[tuple[date, date, date]]:
    """Each ASP payment: its month and its assignment's period."""
    rows = await session.execute(
        select(Payment.for_month, BenefitAssignment.period_start, BenefitAssignment.period_end)
        .join(BenefitAssignment, BenefitAssignment.id == Payment.assignment_id)
        .where(Payment.family_id == household.family.id, Payment.programme == "ASP")
        .order_by(Payment.for_month)
    )
    return [tuple(row) for row in rows]


def test_the_renewed_programmes_are_declared_with_their_rules():
    # ASP (a quarter), school meals (a school year) and medicines (a month, with a standing
    # consent: tests/wallet/test_standing_consent.py) are renewed; a benefit paid monthly to
    # its natural end, and a notice, are not
    assert RULES_BY_CODE["ASP"].renewed and RULES_BY_CODE["SCHOOL_MEALS"].renewed
    assert not RULES_BY_CODE["CHILDCARE_TO_1_5"].renewed
    assert {"ASP", "SCHOOL_MEALS", "MEDICINES"} == RENEWED


async def test_the_python_rule_and_the_sql_clause_offer_the_same_changes(session):
    # Given a change row of every kind: each change, renewed or not, a notice sent again,
    # a period that starts after, on or before the previous end, without a previous end
    starts_and_ends = [
        (date(2027, 1, 1), date(2026, 12, 31)),  # the next period
        (date(2026, 12, 31), date(2026, 12, 31)),  # starts on the old end: the same period
        (date(2026, 10, 1), date(2026, 12, 31)),  # the same quarter recomputed
        (date(2027, 1, 1), None),  # a row written before the previous end was kept
        (None, None),
    ]
    programmes = ["ASP", "SCHOOL_MEALS", "CHILDCARE_TO_1_5", "KANDAS_STATUS_NOTICE", "UNKNOWN"]
    rows = [
        {"run_id": 0, "family_id": 1, "person_id": None, "programme": programme,
         "change": change, "amount_tiyn": 1, "period_start": start, "period_end": start,
         "previous_period_end": previous}
        for programme in programmes
        for change in ("new", "changed", "ended")
        for start, previous in starts_and_ends
    ]  # fmt: skip
    await session.execute(delete(EntitlementChange))
    await session.execute(insert(EntitlementChange), rows)
    # When the SQL clause selects them and the Python rule judges each
    chosen_by_sql = set(await session.scalars(select(EntitlementChange.id).where(offered_clause())))
    every = (await session.execute(select(EntitlementChange))).scalars().all()
    chosen_by_python = {row.id for row in every if offered(row)}
    # Then they agree, row for row, and both offer what the declaration says
    assert chosen_by_sql == chosen_by_python
    kinds = {
        (row.programme, row.change, row.period_start, row.previous_period_end)
        for row in every
        if row.id in chosen_by_python
    }
    assert ("ASP", "changed", date(2027, 1, 1), date(2026, 12, 31)) in kinds
    assert ("ASP", "changed", date(2026, 10, 1), date(2026, 12, 31)) not in kinds
    assert ("ASP", "changed", date(2026, 12, 31), date(2026, 12, 31)) not in kinds
    assert ("ASP", "changed", date(2027, 1, 1), None) not in kinds
    assert not any(programme in ("UNKNOWN", "CHILDCARE_TO_1_5") and change == "changed"
                   for programme, change, _, _ in kinds)  # fmt: skip
    assert not any(change == "ended" for _, change, _, _ in kinds)
    assert len(OFFERED) == 3


async def test_a_family_still_entitled_next_quarter_is_offered_the_renewal(session):
    # Given a family offered the fourth quarter's ASP in November, which accepted
    household = await asp_family(session)
    await run_and_offer(session, household, NOVEMBER)
    [autumn] = await asp_offers(session, household)
    assert (autumn.period_start, autumn.period_end, autumn.renewal) == (*Q4, False)
    assert await accept(session, autumn, household, NOVEMBER) == "assigned"
    # When the family map decides again on 4 January (the national run of the new quarter)
    made = await run_and_offer(session, household, JANUARY)
    # Then the first quarter's ASP is offered, with consent, as a renewal
    assert made.offers == 1
    autumn_again, winter = await asp_offers(session, household)
    assert autumn_again.id == autumn.id
    assert (winter.period_start, winter.period_end) == Q1
    assert winter.state == "offered" and winter.renewal is True
    assert winter.amount_tiyn > 0 and winter.reply_code is not None
    assert [m["month"] for m in winter.monthly_amounts] == ["2027-01-01", "2027-02-01",
                                                            "2027-03-01"]  # fmt: skip
    # and its SMS from 1414 says it is a renewal, for which period, and how to consent
    sms = await session.get(OutboxMessage, winter.sms_message_id)
    assert sms.recipient == ASP_PHONE
    assert sms.body.startswith("1414: Продление: ") and "на 01.01.2027–31.03.2027" in sms.body
    # and the app says the same, in the reader's language
    assert ApiOffer.from_row(winter, "ru").renewal_for == (
        "Продление на 1 января 2027\u202fг. – 31 марта 2027\u202fг."
    )
    assert ApiOffer.from_row(winter, "en").renewal_for == (
        "Renewal for January 1, 2027 – March 31, 2027"
    )
    assert ApiOffer.from_row(autumn, "ru").renewal_for is None
    assert f"1 {winter.reply_code} (согласен)" in sms.body and "http" not in sms.body


async def test_the_same_quarter_recomputed_sends_no_new_offer(session):
    # Given the family offered the fourth quarter's ASP
    household = await asp_family(session)
    await run_and_offer(session, household, NOVEMBER)
    messages = await session.scalar(select(func.count()).select_from(OutboxMessage))
    # When the mother's income changes in December and the quarter's amount is recomputed
    household.mother.monthly_income_tiyn = 5_000_000
    await session.flush()
    made = await run_and_offer(session, household, DECEMBER_20)
    # Then the change is recorded (same period, another amount) but nobody is asked again
    change = await session.scalar(
        select(EntitlementChange)
        .where(EntitlementChange.family_id == household.family.id,
               EntitlementChange.programme == "ASP", EntitlementChange.change == "changed")
    )  # fmt: skip
    assert change is not None and (change.period_start, change.previous_period_end) == (
        Q4[0],
        Q4[1],
    )
    assert made.offers == 0
    assert len(await asp_offers(session, household)) == 1
    assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == messages


async def test_a_monthly_benefit_whose_period_moves_with_the_month_is_not_renewed(session):
    # Given a newborn's household offered its benefits (childcare: monthly, to its end)
    household = await newborn_household(session)
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=NOVEMBER
    )
    before = await session.scalar(select(func.count()).select_from(Offer))
    # When it is decided again next month (childcare's start moves to the new month)
    run_id = await evaluate(session, household, on=date(2026, 12, 2))
    moved = await session.scalar(
        select(EntitlementChange).where(
            EntitlementChange.run_id == run_id, EntitlementChange.programme == "CHILDCARE_TO_1_5"
        )
    )
    made = await offer_new_entitlements(session=session, run_id=run_id, now=DECEMBER_20)
    # Then its period start moved, inside the same award: no offer
    assert moved is not None and moved.change == "changed"
    assert moved.period_start <= moved.previous_period_end
    assert made.offers == 0
    assert await session.scalar(select(func.count()).select_from(Offer)) == before


@pytest.mark.parametrize("copy", [True, False])
async def test_a_rerun_makes_no_renewal_twice(session, session_factory, copy):
    # Given the renewal offered on 4 January
    household = await asp_family(session)
    await run_and_offer(session, household, NOVEMBER)
    await run_and_offer(session, household, JANUARY)
    await session.commit()
    # When the family is decided again the next day, and the batch job reads every change
    # there is from the start (COPY on PostgreSQL, or INSERT)
    again = await run_and_offer(session, household, JANUARY + timedelta(days=1))
    job = await offer_job_from_the_start(
        session, session_factory, now=JANUARY + timedelta(days=1), copy=copy
    )
    # Then nothing is offered twice: one offer a quarter (the key holds the period's start)
    assert again.offers == 0 and job.offers == 0 and job.already >= 2
    offers = await asp_offers(session, household)
    assert [(o.period_start, o.renewal) for o in offers] == [(Q4[0], False), (Q1[0], True)]


async def test_an_accepted_renewal_pays_the_new_quarter_and_no_month_twice(session):
    # Given the fourth quarter accepted in November and paid month by month to December
    household = await asp_family(session)
    await run_and_offer(session, household, NOVEMBER)
    [autumn] = await asp_offers(session, household)
    await accept(session, autumn, household, NOVEMBER)
    await order_due_payments(session=session, today=date(2026, 12, 1))
    # When the renewal is offered in January and accepted, and the daily job runs in February
    await run_and_offer(session, household, JANUARY)
    _, winter = await asp_offers(session, household)
    assert await accept(session, winter, household, JANUARY) == "assigned"
    await order_due_payments(session=session, today=local(FEBRUARY))
    # Then October to December are the quarter's, January and February the renewal's, once
    assert await paid_months(session, household) == [
        (date(2026, 10, 1), *Q4), (date(2026, 11, 1), *Q4), (date(2026, 12, 1), *Q4),
        (date(2027, 1, 1), *Q1), (date(2027, 2, 1), *Q1),
    ]  # fmt: skip


async def test_a_declined_renewal_stops_the_payments_after_the_quarter(session):
    # Given the fourth quarter accepted and its renewal declined in January
    household = await asp_family(session)
    await run_and_offer(session, household, NOVEMBER)
    [autumn] = await asp_offers(session, household)
    await accept(session, autumn, household, NOVEMBER)
    await run_and_offer(session, household, JANUARY)
    _, winter = await asp_offers(session, household)
    await answer_offer(
        session=session, offer_id=winter.id, recipient_person_id=household.mother.id,
        accept=False, channel="sms", now=JANUARY,
    )  # fmt: skip
    # When the daily payments job runs in January and February
    await order_due_payments(session=session, today=local(JANUARY))
    await order_due_payments(session=session, today=local(FEBRUARY))
    # Then the quarter's months are paid and nothing after it
    assert [month for month, _, _ in await paid_months(session, household)] == [
        date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1),
    ]  # fmt: skip


async def test_consent_to_last_quarters_offer_after_the_turn_assigns_that_quarter(session):
    # Given the fourth quarter's ASP offered on 20 December (its deadline in January)
    household = await asp_family(session)
    await run_and_offer(session, household, DECEMBER_20)
    [autumn] = await asp_offers(session, household)
    # When the mother accepts it on 4 January, after the quarter turned
    assert await accept(session, autumn, household, JANUARY) == "assigned"
    # Then the quarter she was offered is assigned (not the new one), and the new quarter is
    # offered to her as its renewal
    assignment = await session.scalar(
        select(BenefitAssignment).where(BenefitAssignment.offer_id == autumn.id)
    )
    assert (assignment.period_start, assignment.period_end) == Q4
    _, winter = await asp_offers(session, household)
    assert (winter.period_start, winter.renewal, winter.state) == (Q1[0], True, "offered")
    # and when she accepts that too, each month is paid once, by the assignment it is in
    await accept(session, winter, household, JANUARY + timedelta(hours=1))
    await order_due_payments(session=session, today=local(FEBRUARY))
    assert await paid_months(session, household) == [
        (date(2026, 10, 1), *Q4), (date(2026, 11, 1), *Q4), (date(2026, 12, 1), *Q4),
        (date(2027, 1, 1), *Q1), (date(2027, 2, 1), *Q1),
    ]  # fmt: skip


@pytest.mark.parametrize("copy", [True, False])
async def test_the_national_run_of_the_next_quarter_renews_asp_and_offers_nothing_else_again(
    connection, session, session_factory, copy
):
    # Given a registry of 400 families decided in November and offered (the batch job)
    await load_synthetic_registry(connection, families=400, seed=13, as_of=NOVEMBER.date())
    await run_batch(connection, on=NOVEMBER.date())
    await issue_pending_offers(session_factory=session_factory, now=NOVEMBER, copy=copy)
    before = set(await session.scalars(select(Offer.id)))
    asked_in_november = set(
        await session.scalars(select(Offer.family_id).where(Offer.programme == "ASP"))
    )
    # When the national run decides everyone again on 4 January and the job offers (COPY on
    # PostgreSQL, or INSERT)
    await run_batch(connection, on=local(JANUARY))
    january = (
        await session.scalars(select(EntitlementChange).where(EntitlementChange.run_id == (
            select(func.max(EntitlementChange.run_id)).scalar_subquery())))
    ).all()  # fmt: skip
    await issue_pending_offers(session_factory=session_factory, now=JANUARY, copy=copy)
    made = (await session.scalars(select(Offer).where(Offer.id.not_in(before)))).all()
    # Then each family still on ASP is asked for the first quarter, as a renewal; new
    # entitlements are offered as before; nothing else changed (amounts, monthly benefits'
    # months) is offered again
    continuing = {
        c.family_id for c in january
        if c.programme == "ASP" and c.change == "changed" and c.period_start == Q1[0]
        and c.previous_period_end == Q4[1]
    }  # fmt: skip
    assert continuing, "the registry has families on ASP in both quarters"
    renewals = [o for o in made if o.renewal and o.programme == "ASP"]
    # (a family whose quarter nobody could be asked for, minors only, is not asked now either)
    assert sorted(o.family_id for o in renewals) == sorted(continuing & asked_in_november)
    assert len(renewals) >= 20
    assert {(o.period_start, o.period_end) for o in renewals} == {Q1}
    # and the only other renewals are the medicines vouchers' month (asked: no consent was
    # given in November here)
    assert {(o.programme, o.period_start, o.period_end) for o in made
            if o.renewal and o.programme != "ASP"} == {("MEDICINES", Q1[0], date(2027, 1, 31))}  # fmt: skip
    new = {c.id for c in january if c.change == "new" and offered(c)}
    assert {o.source_change_id for o in made if not o.renewal} <= new
    assert any(c.change == "changed" and c.programme != "ASP" for c in january)
