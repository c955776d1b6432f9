"""Notices do what they say: the pension notice promises nothing the system never sends, a
kandas status granted or extended is notified, and the employment notice is about the day
the job was lost."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from familymap.events import record_life_event
from familymap.orm import utcnow
from tests.clock import PINNED_TODAY
from tests.wallet.offer_builders import (
    FATHER_IIN,
    MOTHER_IIN,
    MOTHER_PHONE,
    evaluate,
    newborn_household,
)
from wallet.messages import NOTICE_TEMPLATES, SMS_LANGUAGES, sms_text
from wallet.offer_tables import Notification
from wallet.offers import issue_pending_offers, offer_new_entitlements
from wallet.outbox_tables import OutboxMessage


async def notices_of(session, person_id: int, programme: str) -> list[Notification]:
    return list(
        await session.scalars(
            select(Notification)
            .where(Notification.person_id == person_id, Notification.programme == programme)
            .order_by(Notification.id)
        )
    )


async def sms_of(session, notification: Notification) -> OutboxMessage:
    return await session.scalar(
        select(OutboxMessage).where(OutboxMessage.message_key == f"notice:{notification.id}")
    )


async def event(session, event_id: str, kind: str, iin: str, occurred_on: date, data: dict):
    """Record a life event and run the offer flow on its re-evaluation, as the API does."""
    result = await record_life_event(
        session=session, event_id=event_id, kind=kind, source="test-registry",
        occurred_on=occurred_on, subject_iin=iin, data=data, today=PINNED_TODAY,
    )  # fmt: skip
    await offer_new_entitlements(session=session, run_id=result.run_id, now=utcnow())
    return result


@pytest.mark.parametrize("language", SMS_LANGUAGES)
@pytest.mark.parametrize("template", NOTICE_TEMPLATES)
def test_no_notice_promises_an_sms_that_nothing_sends(template, language):
    # Given a notice's text (no notice is followed by another SMS: nothing here sends one)
    text = sms_text(template, language=language, about=date(2026, 12, 8))
    # Then it does not tell the citizen to wait for an SMS
    assert "SMS" not in text.removeprefix("1414:")


async def test_the_pension_notice_says_the_date_and_where_to_apply(session):
    # Given a head who reaches pension age (63 for a man) 20 days after today
    household = await newborn_household(session)
    turns_63 = PINNED_TODAY + timedelta(days=20)
    household.father.birth_date = turns_63.replace(year=turns_63.year - 63)
    await session.flush()
    # When the family map evaluates the family and the offer flow runs
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    # Then his notice names the date and where to apply, and promises no assignment by itself
    [notice] = await notices_of(session, household.father.id, "PENSION_AGE_NOTICE")
    body = (await sms_of(session, notice)).body
    assert notice.about_date == turns_63 and turns_63.strftime("%d.%m.%Y") in body
    assert "eGov" in body and "без заявления" not in body


async def test_a_kandas_status_granted_then_extended_is_notified_each_time(
    session, session_factory
):
    # Given a mother with a phone and no kandas status
    household = await newborn_household(session)
    mother = household.mother
    granted_until = PINNED_TODAY + timedelta(days=365)
    # When the migration service grants her the status for a year
    await event(
        session, "kandas-1", "kandas_status_changed", MOTHER_IIN, PINNED_TODAY,
        {"kandas_until": granted_until},
    )  # fmt: skip
    # Then she is told by SMS that it is valid until then
    [granted] = await notices_of(session, mother.id, "KANDAS_STATUS_NOTICE")
    sms = await sms_of(session, granted)
    assert granted.about_date == granted_until and sms.recipient == MOTHER_PHONE
    assert "подтверждён" in sms.body and granted_until.strftime("%d.%m.%Y") in sms.body
    # When it is extended by a year, and the offer job reads the change from its cursor
    extended_until = granted_until + timedelta(days=365)
    result = await record_life_event(
        session=session, event_id="kandas-2", kind="kandas_status_changed",
        source="test-registry", occurred_on=PINNED_TODAY, subject_iin=MOTHER_IIN,
        data={"kandas_until": extended_until}, today=PINNED_TODAY,
    )  # fmt: skip
    assert [d.programme for d in result.changed] == ["KANDAS_STATUS_NOTICE"]
    await session.commit()
    await issue_pending_offers(session_factory=session_factory, now=utcnow())
    # Then she is told the new date, in the words for a change
    notices = await notices_of(session, mother.id, "KANDAS_STATUS_NOTICE")
    assert [n.about_date for n in notices] == [granted_until, extended_until]
    body = (await sms_of(session, notices[1])).body
    assert "изменён" in body and extended_until.strftime("%d.%m.%Y") in body
    # and the same facts found again are not notified twice
    await offer_new_entitlements(
        session=session, run_id=await evaluate(session, household), now=utcnow()
    )
    assert len(await notices_of(session, mother.id, "KANDAS_STATUS_NOTICE")) == 2


async def test_the_employment_notice_is_about_the_day_the_job_was_lost(session):
    # Given a father who lost his job 20 days ago and registered as unemployed
    household = await newborn_household(session)
    lost_on = PINNED_TODAY - timedelta(days=20)
    # When the labour exchange's event arrives and the offer flow runs
    await event(
        session, "job-1", "job_lost", FATHER_IIN, lost_on, {"registered_unemployed": True},
    )  # fmt: skip
    # Then his employment notice is about the day the job was lost, not today
    [notice] = await notices_of(session, household.father.id, "EMPLOYMENT_MEASURES_NOTICE")
    assert notice.about_date == lost_on
    # and a run on a later day finds the same fact: no second notice
    run_id = await evaluate(session, household, on=PINNED_TODAY + timedelta(days=3))
    await offer_new_entitlements(session=session, run_id=run_id, now=utcnow())
    assert len(await notices_of(session, household.father.id, "EMPLOYMENT_MEASURES_NOTICE")) == 1
