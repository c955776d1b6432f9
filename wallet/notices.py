"""Notices without consent: pension age ahead, kandas status expiry ahead, employment measures
for the newly unemployed. Each is a notification in the app and an SMS from 1414.

A notice is about one fact (`fact_key`, unique): the programme, the person and the date the
notice is about, so re-running eligibility, or the same fact found by two runs, never sends
it twice. The date is the entitlement's period start, which each rule sets to the fact: the
pension date, the day a kandas status runs until, the day the job was lost.

Most notices are sent when their entitlement is new. A kandas status is notified again when
its term changes (an extension): the changed entitlement carries the new date, so it is a
new fact with its own text (`ON_CHANGE`).

Notices are decided (`plan_notice`) and written (`write_notices`) apart, a chunk of them in
two statements, by the one-family path and the batch path alike (wallet.offers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from wallet.bulk import dialect_insert, sms_row
from wallet.messages import sms_language, sms_text
from wallet.offer_tables import Notification
from wallet.outbox_tables import OutboxMessage


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


def fact_key(programme: str, person: Any, about: date | None) -> str:
    """The one fact a notice is about."""
    return f"{programme}:{person.id}:{about.isoformat() if about else '-'}"


@dataclass(frozen=True, slots=True)
class PlannedNotice:
    """A notice decided (its fact, text and phone), not yet written."""

    fact_key: str
    programme: str
    family_id: int
    person_id: int
    about: date | None
    language: str
    body: str
    # The phone its SMS goes to; None when the person has no phone an SMS can reach.
    phone: str | None


def plan_notice(
    *, programme: str, person: Any, about: date | None, changed: bool, phone: str | None
) -> PlannedNotice:
    """The notice of one fact: its key, and its text (a changed term has its own)."""
    template = ON_CHANGE.get(programme, programme) if changed else programme
    return PlannedNotice(
        fact_key=fact_key(programme, person, about),
        programme=programme,
        family_id=person.family_id,
        person_id=person.id,
        about=about,
        language=sms_language(person.language),
        body=sms_text(template, language=person.language, about=about),
        phone=phone,
    )


def notification_row(notice: PlannedNotice, *, now: datetime) -> dict[str, Any]:
    """The `notifications` row of a planned notice (the same for every driver)."""
    return {
        "fact_key": notice.fact_key,
        "family_id": notice.family_id,
        "person_id": notice.person_id,
        "programme": notice.programme,
        "about_date": notice.about,
        "language": notice.language,
        "body": notice.body,
        "sms_queued": notice.phone is not None,
        "created_at": now,
    }


def notice_message_key(notification_id: int) -> str:
    """The outbox key of a notice's SMS."""
    return f"notice:{notification_id}"


async def write_notices(
    *, connection: AsyncConnection, notices: Sequence[PlannedNotice], now: datetime
) -> int:
    """Record the notices whose fact was not notified before, with their SMS; how many.

    Two statements for any number of notices: the notifications (ON CONFLICT DO NOTHING on
    the fact, so a fact notified before, or concurrently, is skipped), then the SMS of those
    just made, which are keyed by the notification's id.
    """
    if not notices:
        return 0
    table = Notification.__table__
    made = (
        await connection.execute(
            dialect_insert(connection, table)
            .on_conflict_do_nothing(index_elements=["fact_key"])
            .returning(table.c.id, table.c.fact_key),
            [notification_row(notice, now=now) for notice in notices],
        )
    ).all()
    by_fact = {notice.fact_key: notice for notice in notices}
    messages = [
        sms_row(
            message_key=notice_message_key(notification_id),
            phone=notice.phone,
            body=notice.body,
            now=now,
        )
        for notification_id, key in made
        if (notice := by_fact[key]).phone is not None
    ]
    if messages:
        outbox = OutboxMessage.__table__
        await connection.execute(
            dialect_insert(connection, outbox).on_conflict_do_nothing(
                index_elements=["message_key"]
            ),
            messages,
        )
    return len(made)
