"""A standing consent: the monthly medicines voucher is funded month after month after one yes.

MEDICINES is decided a month at a time. On the month's turn the family map finds the same
entitlement with its period moved (a `changed` row whose period starts after the previous
one ended). A person who consented to the previous month is not asked again: the new month
is consented to under its own offer key, funded through the same fulfiller as an accepted
offer, and the person told by SMS (docs/money.md, "Renewals"). A person who declined is
asked again, with consent. A rerun, the batch job (COPY or INSERT) or a life event makes
nothing twice, and the ledger stays clean.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from familymap.batch import reevaluate_family
from familymap.rules import RULES_BY_CODE
from familymap.tables import Family, Person
from tests.wallet.offer_builders import iin, offer_job_from_the_start
from vouchers.fulfilment import register_voucher_fulfillers
from vouchers.medicines import wallet_code
from vouchers.tables import MedicineVoucher
from wallet import ledger
from wallet.offer_tables import Offer, OfferTransition
from wallet.offered import RENEWED, STANDING
from wallet.offers import (
    FulfilmentRefused,
    answer_offer,
    issue_pending_offers,
    offer_new_entitlements,
)
from wallet.outbox_tables import OutboxMessage
from wallet.verify import verify_ledger

PATIENT_PHONE = "+77015550202"
# 14:30 in Astana: the November offer, the first days of December and of January.
NOVEMBER = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
JANUARY = datetime(2027, 1, 4, 9, 30, tzinfo=UTC)
NOVEMBER_MONTH = (date(2026, 11, 1), date(2026, 11, 30))
DECEMBER_MONTH = (date(2026, 12, 1), date(2026, 12, 31))


@pytest.fixture
def fulfillers(monkeypatch):
    """The vouchers package's fulfillers, as the app registers them, for this test only."""
    from wallet import offers as offers_module

    monkeypatch.setattr(offers_module, "_FULFILLERS", {})
    register_voucher_fulfillers()


async def patient(session) -> Person:
    """A woman living alone with two chronic conditions, attached to a polyclinic and insured
    (entitled to the medicines voucher every month), with a phone."""
    family = Family(region="astana", housing_owned=True, area_m2=45, rooms=2)
    session.add(family)
    await session.flush()
    person = Person(
        family_id=family.id, iin=iin("70050540001"), role="head", last_name="Standing",
        first_name="Gulnar", birth_date=date(1970, 5, 5), sex="F", phone=PATIENT_PHONE,
        employment="employed", monthly_income_tiyn=40_000_000, contribution_months=24,
        insured=True, polyclinic_attached=True, chronic_conditions=["E11", "I10"],
        language="ru",
    )  # fmt: skip
    session.add(person)
    await session.flush()
    return person


def local(at: datetime) -> date:
    return (at + timedelta(hours=5)).date()


async def run_and_offer(session, person: Person, at: datetime):
    """The person's family decided as of Astana's day at `at`, and its changes offered."""
    summary, _ = await reevaluate_family(
        await session.connection(), family_id=person.family_id, on=local(at)
    )
    return await offer_new_entitlements(session=session, run_id=summary.run_id, now=at)


async def medicines_offers(session, person: Person) -> list[Offer]:
    return list(
        await session.scalars(
            select(Offer)
            .where(Offer.beneficiary_person_id == person.id, Offer.programme == "MEDICINES")
            .order_by(Offer.period_start)
        )
    )


async def vouchers_of(session, person: Person) -> list[tuple[date, date, int]]:
    rows = await session.execute(
        select(MedicineVoucher.period_start, MedicineVoucher.period_end, MedicineVoucher.amount_tiyn)
        .where(MedicineVoucher.person_id == person.id)
        .order_by(MedicineVoucher.period_start)
    )  # fmt: skip
    return [tuple(row) for row in rows]


async def answer(session, offer: Offer, person: Person, *, accept: bool, at: datetime) -> str:
    answered = await answer_offer(
        session=session, offer_id=offer.id, recipient_person_id=person.id, accept=accept,
        channel="sms", now=at,
    )  # fmt: skip
    return answered.offer.state


async def consented_in_november(session) -> tuple[Person, Offer]:
    person = await patient(session)
    await run_and_offer(session, person, NOVEMBER)
    [november] = await medicines_offers(session, person)
    assert (november.period_start, november.period_end) == NOVEMBER_MONTH
    assert await answer(session, november, person, accept=True, at=NOVEMBER) == "assigned"
    return person, november


def test_medicines_is_renewed_with_a_standing_consent():
    # The monthly voucher is renewed, and its consent stands; ASP and meals are asked again
    assert RULES_BY_CODE["MEDICINES"].renewed and RULES_BY_CODE["MEDICINES"].standing
    assert {"MEDICINES"} == STANDING < RENEWED
    assert not RULES_BY_CODE["ASP"].standing and not RULES_BY_CODE["SCHOOL_MEALS"].standing


async def test_the_first_offer_says_the_consent_stands_monthly(session, fulfillers):
    # When the patient is offered the medicines voucher in November
    person = await patient(session)
    await run_and_offer(session, person, NOVEMBER)
    [november] = await medicines_offers(session, person)
    # Then its SMS says that consent stands, month after month, while she is entitled
    sms = await session.get(OutboxMessage, november.sms_message_id)
    assert sms.body.startswith("1414: Вам положено: бесплатное лекарственное обеспечение")
    assert "Согласие действует, пока есть право" in sms.body
    assert f"1 {november.reply_code} (согласен)" in sms.body


async def test_one_consent_funds_the_next_month_once_without_asking(session, fulfillers):
    # Given the patient consented to November's voucher (funded)
    person, november = await consented_in_november(session)
    amount = november.amount_tiyn
    assert amount > 0
    # When the family map decides her again on 2 December (the month turned)
    made = await run_and_offer(session, person, DECEMBER)
    # Then December's voucher is consented to under its own key and funded, asking nothing
    assert made.offers == 1
    november_again, december = await medicines_offers(session, person)
    assert november_again.id == november.id
    assert (december.period_start, december.period_end) == DECEMBER_MONTH
    assert (december.state, december.renewal, december.reply_code) == ("assigned", True, None)
    assert december.sms_message_id is None  # no question was sent
    assert await vouchers_of(session, person) == [(*NOVEMBER_MONTH, amount),
                                                  (*DECEMBER_MONTH, amount)]  # fmt: skip
    assert await ledger.balance(session=session, account=wallet_code(person.id)) == 2 * amount
    # and its history names the consent it stands on
    moves = (
        await session.scalars(
            select(OfferTransition)
            .where(OfferTransition.offer_id == december.id)
            .order_by(OfferTransition.id)
        )
    ).all()
    assert [(m.from_state, m.to_state) for m in moves] == [
        (None, "offered"), ("offered", "accepted"), ("accepted", "assigned"),
    ]  # fmt: skip
    assert moves[1].detail == {"standing_consent_of": november.id}
    # and she is told by SMS that this month's voucher is funded
    told = (
        await session.scalars(
            select(OutboxMessage.body).where(
                OutboxMessage.message_key == f"offer:{december.id}:assigned"
            )
        )
    ).all()
    assert len(told) == 1 and told[0].startswith(
        "1414: бесплатное лекарственное обеспечение: ваучер этого месяца"
    )
    assert "по вашему действующему согласию" in told[0]
    # and the ledger is clean
    assert await verify_ledger(session=session) == []


async def test_the_consent_keeps_standing_month_after_month(session, fulfillers):
    # Given November consented, December funded by the standing consent
    person, _ = await consented_in_november(session)
    await run_and_offer(session, person, DECEMBER)
    # When January comes
    await run_and_offer(session, person, JANUARY)
    # Then January is funded too: the consent stands on December's, which stood on November's
    states = [(o.period_start, o.state) for o in await medicines_offers(session, person)]
    assert states == [
        (date(2026, 11, 1), "assigned"), (date(2026, 12, 1), "assigned"),
        (date(2027, 1, 1), "assigned"),
    ]  # fmt: skip
    assert len(await vouchers_of(session, person)) == 3
    assert await verify_ledger(session=session) == []


@pytest.mark.parametrize("copy", [True, False])
async def test_a_rerun_and_the_batch_job_fund_nothing_twice(
    session, session_factory, fulfillers, copy
):
    # Given December funded by the standing consent on 2 December
    person, _ = await consented_in_november(session)
    await run_and_offer(session, person, DECEMBER)
    await session.commit()
    messages = await session.scalar(select(func.count()).select_from(OutboxMessage))
    # When she is decided again the next day (a life event), and the batch job reads every
    # change there is from the start (COPY on PostgreSQL, or INSERT)
    again = await run_and_offer(session, person, DECEMBER + timedelta(days=1))
    job = await offer_job_from_the_start(
        session, session_factory, now=DECEMBER + timedelta(days=1), copy=copy
    )
    # Then nothing is offered, funded or sent twice
    assert again.offers == 0 and job.offers == 0 and job.already >= 2
    offers = await medicines_offers(session, person)
    assert [(o.period_start, o.state) for o in offers] == [
        (NOVEMBER_MONTH[0], "assigned"), (DECEMBER_MONTH[0], "assigned"),
    ]  # fmt: skip
    assert len(await vouchers_of(session, person)) == 2
    assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == messages
    assert await verify_ledger(session=session) == []


@pytest.mark.parametrize("copy", [True, False])
async def test_the_batch_job_funds_the_standing_renewal(session, session_factory, fulfillers, copy):
    # Given November consented, and the family map's December run written (not yet offered)
    person, november = await consented_in_november(session)
    await reevaluate_family(await session.connection(), family_id=person.family_id,
                            on=local(DECEMBER))  # fmt: skip
    await session.commit()
    # When the offer job reads the changes (COPY on PostgreSQL, or INSERT)
    job = await issue_pending_offers(session_factory=session_factory, now=DECEMBER, copy=copy)
    # Then December is consented to and funded once, without a question
    assert job.offers >= 1
    _, december = await medicines_offers(session, person)
    await session.refresh(december)
    assert (december.state, december.reply_code, december.sms_message_id) == (
        "assigned", None, None,
    )  # fmt: skip
    amount = november.amount_tiyn
    assert await vouchers_of(session, person) == [(*NOVEMBER_MONTH, amount),
                                                  (*DECEMBER_MONTH, amount)]  # fmt: skip
    assert await verify_ledger(session=session) == []


async def test_a_declined_first_offer_is_asked_again_not_renewed(session, fulfillers):
    # Given the patient declined November's voucher
    person = await patient(session)
    await run_and_offer(session, person, NOVEMBER)
    [november] = await medicines_offers(session, person)
    assert await answer(session, november, person, accept=False, at=NOVEMBER) == "declined"
    # When December comes
    made = await run_and_offer(session, person, DECEMBER)
    # Then December is offered with consent asked (a renewal whose SMS says consent stands),
    # and nothing is funded
    assert made.offers == 1
    _, december = await medicines_offers(session, person)
    assert (december.state, december.renewal) == ("offered", True)
    assert december.reply_code is not None
    sms = await session.get(OutboxMessage, december.sms_message_id)
    assert sms.body.startswith(
        "1414: Продление: бесплатное лекарственное обеспечение на 01.12.2026–31.12.2026"
    )
    assert "Согласие действует, пока есть право" in sms.body
    assert await vouchers_of(session, person) == []
    # and consenting to it funds December, from which the consent then stands
    assert await answer(session, december, person, accept=True, at=DECEMBER) == "assigned"
    await run_and_offer(session, person, JANUARY)
    *_, january = await medicines_offers(session, person)
    assert (january.period_start, january.state) == (date(2027, 1, 1), "assigned")
    assert await verify_ledger(session=session) == []


async def test_an_unanswered_offer_is_not_renewed_without_consent(session, fulfillers):
    # Given November's offer left unanswered (it expires in December)
    person = await patient(session)
    await run_and_offer(session, person, NOVEMBER)
    # When December comes
    await run_and_offer(session, person, DECEMBER)
    # Then December is asked, not funded
    states = [(o.state, o.reply_code is not None) for o in await medicines_offers(session, person)]
    assert states == [("offered", True), ("offered", True)]
    assert await vouchers_of(session, person) == []


async def test_a_refused_funding_withdraws_that_month_and_moves_nothing(session, fulfillers):
    # Given November consented and funded, and a fulfiller that refuses December's voucher
    from wallet import offers as offers_module

    person, november = await consented_in_november(session)

    fund = offers_module._FULFILLERS["MEDICINES"]  # the fixture's registry, this test's own

    async def fund_then_refuse(session, offer, amount, start, end):
        await fund(session, offer, amount, start, end)
        raise FulfilmentRefused("NOT_ELIGIBLE", "no medicines entitlement")

    offers_module._FULFILLERS["MEDICINES"] = fund_then_refuse
    # When December comes
    await run_and_offer(session, person, DECEMBER)
    # Then December's offer is withdrawn with the refusal's code, she is told, and what the
    # fulfiller began (the voucher, its funding) is undone
    _, december = await medicines_offers(session, person)
    assert (december.state, december.note) == ("withdrawn", "NOT_ELIGIBLE")
    told = await session.scalar(
        select(OutboxMessage.body).where(
            OutboxMessage.message_key == f"offer:{december.id}:withdrawn"
        )
    )
    assert told is not None and "не подтвердилось" in told
    assert [v[0] for v in await vouchers_of(session, person)] == [NOVEMBER_MONTH[0]]
    balance = await ledger.balance(session=session, account=wallet_code(person.id))
    assert balance == november.amount_tiyn
    assert await verify_ledger(session=session) == []
