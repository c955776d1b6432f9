"""Amounts per month: each month of a benefit is paid at the family as it was in that month.

The story (issue 13): a birth is reported on 2 December into a family with an open ASP offer
for the quarter 1 October - 31 December, quoted at 46,787.10 tenge a month for 3 members. The
family accepts. October and November are paid for 3 members, December for 4; every payment
names its month, and the SMS says what is paid for which month.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from familymap.amounts import AsOf, amounts_as_of
from familymap.batch import reevaluate_family
from familymap.engine.evaluate import explain_population_family
from familymap.store import FamilySelection, read_registry_slice
from familymap.tables import Family, Person
from tests.wallet.offer_builders import IBAN
from wallet import ledger
from wallet.messages import money_text
from wallet.months import MonthAmount, Quote, from_json, month_amounts, months_between
from wallet.offer_tables import BenefitAssignment, Offer, Payment
from wallet.offers import answer_offer, offer_new_entitlements
from wallet.outbox_tables import OutboxMessage
from wallet.payments import order_due_payments
from wallet.spending import family_payments

OFFERED_AT = datetime(2026, 11, 18, 4, 30, tzinfo=UTC)  # the pinned test clock
BORN_ON = date(2026, 12, 2)
ACCEPTED_AT = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
OCTOBER, NOVEMBER, DECEMBER = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)
# 70% of the 2026 subsistence minimum (50,851 tenge) per member, less the family's income.
THREE_MEMBERS = 3 * 3_559_570 - 6_000_000  # 46,787.10 tenge
FOUR_MEMBERS = 4 * 3_559_570 - 6_000_000  # 82,382.80 tenge
PHONE = "+77019876543"


def plain(text: str) -> str:
    """Babel groups digits with a no-break space; the tests write a plain one."""
    return text.replace("\xa0", " ")


async def asp_family(session) -> tuple[Family, Person]:
    """A mother earning 60,000 tenge, her husband registered unemployed, a son: ASP."""
    family = Family(region="shymkent", housing_owned=False, area_m2=40, rooms=2)
    session.add(family)
    await session.flush()
    mother = Person(
        family_id=family.id, iin="900101400011", role="head", last_name="Омарова",
        first_name="Сауле", birth_date=date(1990, 1, 1), sex="F", phone=PHONE, iban=IBAN,
        employment="employed", monthly_income_tiyn=6_000_000, contribution_months=24,
        language="ru",
    )  # fmt: skip
    father = Person(
        family_id=family.id, iin="880202300012", role="spouse", last_name="Омаров",
        first_name="Ерлан", birth_date=date(1988, 2, 2), sex="M", employment="unemployed",
        registered_unemployed=True, language="ru",
    )  # fmt: skip
    son = Person(
        family_id=family.id, iin="180303500013", role="child", last_name="Омаров",
        first_name="Нурлан", birth_date=date(2018, 3, 3), sex="M",
    )  # fmt: skip
    session.add_all([mother, father, son])
    await session.flush()
    return family, mother


async def offered_asp(session) -> tuple[Family, Person, Offer]:
    family, mother = await asp_family(session)
    summary, _ = await reevaluate_family(
        await session.connection(), family_id=family.id, on=OFFERED_AT.date()
    )
    await offer_new_entitlements(session=session, run_id=summary.run_id, now=OFFERED_AT)
    offer = await session.scalar(
        select(Offer).where(Offer.family_id == family.id, Offer.programme == "ASP")
    )
    assert offer is not None
    return family, mother, offer


async def test_a_birth_during_an_open_asp_offer_pays_each_month_for_the_family_then(session):
    # Given an ASP offer for the quarter, quoted for 3 members
    family, mother, offer = await offered_asp(session)
    assert (offer.period_start, offer.period_end) == (OCTOBER, date(2026, 12, 31))
    assert offer.amount_tiyn == THREE_MEMBERS
    # and a daughter born on 2 December, reported the same day
    session.add(
        Person(
            family_id=family.id, iin="261202600014", role="child", last_name="Омарова",
            first_name="Айым", birth_date=BORN_ON, sex="F",
        )
    )  # fmt: skip
    await session.flush()
    await reevaluate_family(await session.connection(), family_id=family.id, on=BORN_ON)
    # When the mother accepts the next day
    answer = await answer_offer(
        session=session, offer_id=offer.id, recipient_person_id=mother.id, accept=True,
        channel="app", now=ACCEPTED_AT,
    )  # fmt: skip
    # Then October and November are paid for 3 members, December for 4, each naming its month
    assert answer.offer.state == "assigned"
    payments = (
        await session.scalars(
            select(Payment).where(Payment.family_id == family.id).order_by(Payment.for_month)
        )
    ).all()
    assert [(p.for_month, p.amount_tiyn) for p in payments] == [
        (OCTOBER, THREE_MEMBERS),
        (NOVEMBER, THREE_MEMBERS),
        (DECEMBER, FOUR_MEMBERS),
    ]
    assert sum(p.amount_tiyn for p in payments) == 2 * 4_678_710 + 8_238_280
    # and the ledger moved exactly that, each transfer recording its month
    assert await ledger.balance(session=session, account="payout:bank") == sum(
        p.amount_tiyn for p in payments
    )
    shown = await family_payments(session=session, family_ids=[family.id])
    assert sorted((p.for_month, p.amount_tiyn) for p in shown) == [
        (p.for_month, p.amount_tiyn) for p in payments
    ]
    # and the offer and the assignment say what each month pays and as of which day
    assignment = await session.scalar(
        select(BenefitAssignment).where(BenefitAssignment.offer_id == offer.id)
    )
    decided = [
        MonthAmount(OCTOBER, THREE_MEMBERS, date(2026, 10, 31)),
        MonthAmount(NOVEMBER, THREE_MEMBERS, date(2026, 11, 30)),
        MonthAmount(DECEMBER, FOUR_MEMBERS, ACCEPTED_AT.date()),
    ]
    assert from_json(assignment.monthly_amounts) == decided
    assert from_json(answer.offer.monthly_amounts) == decided
    # and the confirmation SMS says what is paid for which month
    sms = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.message_key == f"offer:{offer.id}:assigned")
    )
    assert "46 787,10 ₸ в месяц за 10–11.2026, 82 382,80 ₸ в месяц за 12.2026" in plain(sms.body)


async def test_the_offer_sms_and_the_offer_quote_each_month(session):
    # Given an ASP family, when the quarter's offer is made in November
    _, _, offer = await offered_asp(session)
    # Then the offer lists the three months, October priced as of its own last day
    assert from_json(offer.monthly_amounts) == [
        MonthAmount(OCTOBER, THREE_MEMBERS, date(2026, 10, 31)),
        MonthAmount(NOVEMBER, THREE_MEMBERS, OFFERED_AT.date()),
        MonthAmount(DECEMBER, THREE_MEMBERS, OFFERED_AT.date()),
    ]
    sms = await session.get(OutboxMessage, offer.sms_message_id)
    assert "46 787,10 ₸ в месяц за 10–12.2026" in plain(sms.body)


async def test_a_month_the_family_was_not_entitled_in_pays_nothing(session):
    # Given an ASP family whose son was born only in November (in October: mother and father)
    family, mother = await asp_family(session)
    son = await session.scalar(
        select(Person).where(Person.family_id == family.id, Person.role == "child")
    )
    son.birth_date = date(2026, 11, 5)
    # and a mother earning more than two members' threshold (2 × 35,595.70 = 71,191.40)
    mother.monthly_income_tiyn = 7_200_000
    await session.flush()
    # When the months of the quarter are priced in December
    (schedule,) = await month_amounts(
        connection=await session.connection(),
        quotes=[
            Quote("ASP", "benefit", family.id, None, 3 * 3_559_570 - 7_200_000, OCTOBER,
                  date(2026, 12, 31), ACCEPTED_AT.date())
        ],
    )  # fmt: skip
    # Then October pays nothing (two members were above the threshold), November pays three
    assert [(m.month, m.amount_tiyn) for m in schedule] == [
        (OCTOBER, 0),
        (NOVEMBER, 3 * 3_559_570 - 7_200_000),
        (DECEMBER, 3 * 3_559_570 - 7_200_000),
    ]


async def test_months_due_later_are_ordered_at_their_own_amount(session):
    # Given the ASP accepted in November, before the birth: October and November are paid
    family, mother, offer = await offered_asp(session)
    await answer_offer(
        session=session, offer_id=offer.id, recipient_person_id=mother.id, accept=True,
        channel="sms", now=OFFERED_AT,
    )  # fmt: skip
    # When the daily job orders December on its first day
    await order_due_payments(session=session, today=DECEMBER)
    # Then December is ordered once, naming its month, at the amount decided for it
    payments = (
        await session.scalars(
            select(Payment).where(Payment.family_id == family.id).order_by(Payment.for_month)
        )
    ).all()
    assert [(p.for_month, p.amount_tiyn) for p in payments] == [
        (OCTOBER, THREE_MEMBERS),
        (NOVEMBER, THREE_MEMBERS),
        (DECEMBER, THREE_MEMBERS),
    ]


def test_months_between_spans_years():
    assert months_between(date(2026, 11, 15), date(2027, 1, 3)) == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
    ]


@pytest.mark.parametrize(
    ("months", "language", "text"),
    [
        ((), "ru", "125 400 ₸"),
        (((OCTOBER, 4_678_710), (NOVEMBER, 4_678_710)), "ru", "46 787,10 ₸ в месяц за 10–11.2026"),
        (((DECEMBER, 100), (date(2027, 1, 1), 100)), "ru", "1 ₸ в месяц за 12.2026–01.2027"),
        (((OCTOBER, 4_678_710), (NOVEMBER, 8_238_280)), "kk",
         "10.2026 үшін айына 46 787,10 ₸, 11.2026 үшін айына 82 382,80 ₸"),
    ],
)  # fmt: skip
def test_the_sms_says_briefly_what_each_run_of_months_pays(months, language, text):
    assert plain(money_text(12_540_000, months, language)) == text


async def test_a_backpay_month_is_the_rules_own_decision_on_that_day(session):
    # Given the ASP family with the daughter born on 2 December
    family, _ = await asp_family(session)
    session.add(
        Person(
            family_id=family.id, iin="261202600014", role="child", last_name="Омарова",
            first_name="Айым", birth_date=BORN_ON, sex="F",
        )
    )  # fmt: skip
    await session.flush()
    connection = await session.connection()
    registry = await read_registry_slice(connection, families=FamilySelection.of(family.id))
    days = [date(2026, 10, 31), date(2026, 11, 30), BORN_ON, date(2026, 12, 31)]
    # When each day is asked of the month pricing and of the explained one-family evaluation
    answers = await amounts_as_of(
        connection=connection, questions=[AsOf("ASP", family.id, None, day) for day in days]
    )
    # Then they agree: one definition, evaluated as of the day
    for day in days:
        decision = explain_population_family(population=registry.population, on=day).decision("ASP")
        assert answers[AsOf("ASP", family.id, None, day)] == decision.amount_tiyn
    assert [answers[AsOf("ASP", family.id, None, day)] for day in days] == [
        THREE_MEMBERS, THREE_MEMBERS, FOUR_MEMBERS, FOUR_MEMBERS,
    ]  # fmt: skip


# 00:30 in Astana on 1 December is still 30 November in UTC.
ASTANA_DECEMBER_FIRST = datetime(2026, 11, 30, 19, 30, tzinfo=UTC)


async def test_a_consent_just_after_midnight_in_astana_is_decided_on_that_day(session):
    # Given the ASP offer and a daughter born on 1 December, reported at once
    family, mother, offer = await offered_asp(session)
    session.add(
        Person(
            family_id=family.id, iin="261201600014", role="child", last_name="Омарова",
            first_name="Айым", birth_date=date(2026, 12, 1), sex="F",
        )
    )  # fmt: skip
    await session.flush()
    # When the mother accepts at 00:30 on 1 December in Astana (still 30 November in UTC)
    await answer_offer(
        session=session, offer_id=offer.id, recipient_person_id=mother.id, accept=True,
        channel="app", now=ASTANA_DECEMBER_FIRST,
    )  # fmt: skip
    # Then the decision is of 1 December: December (4 members) is ordered with the backpay
    payments = await session.scalars(
        select(Payment).where(Payment.family_id == family.id).order_by(Payment.for_month)
    )
    assert [(p.for_month, p.amount_tiyn) for p in payments] == [
        (OCTOBER, THREE_MEMBERS),
        (NOVEMBER, THREE_MEMBERS),
        (DECEMBER, FOUR_MEMBERS),
    ]


async def test_a_month_the_daily_job_missed_is_ordered_after_the_period_ended(session):
    # Given the ASP accepted in November: October and November ordered
    family, mother, offer = await offered_asp(session)
    await answer_offer(
        session=session, offer_id=offer.id, recipient_person_id=mother.id, accept=True,
        channel="app", now=OFFERED_AT,
    )  # fmt: skip
    # When the daily job did not run in December, and runs again on 4 January
    await order_due_payments(session=session, today=date(2027, 1, 4))
    # Then December, owed, is ordered all the same (once: the next run orders nothing)
    again = await order_due_payments(session=session, today=date(2027, 1, 5))
    months = await session.scalars(
        select(Payment.for_month).where(Payment.family_id == family.id).order_by(Payment.for_month)
    )
    assert list(months) == [OCTOBER, NOVEMBER, DECEMBER]
    assert again.ordered == 0 and again.assignments == 0
