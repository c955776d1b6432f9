"""Notices without consent: pension age ahead, kandas status expiry ahead, employment measures
for the newly unemployed. Each is a notification in the app and an SMS from 1414.

A notice is about one fact (`fact_key`, unique): the programme, the person and the date the
notice is about, so re-running eligibility, or the same fact found by two runs, never sends
it twice. The date is the entitlement's period start, which each rule sets to the fact: the
pension date, the day a kandas status runs until, the day the job was lost.

Most notices are sent when their entitlement is new. A kandas status is notified again when
its term changes (an extension): the changed entitlement carries the new date, so it is a
new fact with its own text (`ON_CHANGE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.tables import Person
from wallet.messages import sms_language, sms_text
from wallet.offer_tables import Notification
from wallet.outbox import enqueue


async def notifications_of_families(
    *, session: AsyncSession, family_ids: Sequence[int]
) -> list[Notification]:
    """Every notice sent to these families' members, newest first, in one statement."""
    return list(
        await session.scalars(
            select(Notification)
            .where(Notification.family_id.in_(family_ids))
            .order_by(Notification.id.desc())
        )
    )


# The notices sent again when their entitlement changes, and the text they are sent with.
ON_CHANGE = {"KANDAS_STATUS_NOTICE": "KANDAS_STATUS_CHANGED"}


def fact_key(programme: str, person: Person, about: date | None) -> str:
    """The one fact a notice is about."""
    return f"{programme}:{person.id}:{about.isoformat() if about else '-'}"


async def notify(
    *,
    session: AsyncSession,
    programme: str,
    person: Person,
    about: date | None,
    now: datetime,
    changed: bool = False,
) -> bool:
    """Record the notice and queue its SMS, unless this fact was notified before."""
    key = fact_key(programme, person, about)
    if await session.scalar(select(Notification.id).where(Notification.fact_key == key)):
        return False
    template = ON_CHANGE.get(programme, programme) if changed else programme
    body = sms_text(template, language=person.language, about=about)
    notification = Notification(
        fact_key=key,
        family_id=person.family_id,
        person_id=person.id,
        programme=programme,
        about_date=about,
        language=sms_language(person.language),
        body=body,
        sms_queued=bool(person.phone),
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(notification)
            await session.flush()
    except IntegrityError:
        return False  # the same fact, notified concurrently
    if person.phone:
        await enqueue(
            session=session,
            message_key=f"notice:{notification.id}",
            channel="sms",
            recipient=person.phone,
            body=body,
        )
    return True
