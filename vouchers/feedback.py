"""Feedback: a family rates a service event (a meal served, a medicine dispensed), once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.tables import Person
from vouchers.errors import FeedbackExists, Forbidden, InvalidInput, NotFound
from vouchers.tables import Dispensing, Feedback, MealRedemption

EVENT_TABLES: dict[str, type[MealRedemption | Dispensing]] = {
    "meal": MealRedemption,
    "dispensing": Dispensing,
}
MAX_TAGS = 10
MAX_COMMENT = 2000


async def leave_feedback(
    *,
    session: AsyncSession,
    author_iin: str,
    event_kind: str,
    event_id: int,
    rating: int,
    tags: list[str] | None = None,
    comment: str | None = None,
) -> Feedback:
    """Record the author's family's rating of one of its service events; one per event."""
    if event_kind not in EVENT_TABLES:
        raise InvalidInput("refusal.event_kind")
    if not 1 <= rating <= 5:
        raise InvalidInput("refusal.rating_range")
    tags = [t.strip() for t in tags or [] if t.strip()]
    if len(tags) > MAX_TAGS or any(len(t) > 32 for t in tags):
        raise InvalidInput("refusal.feedback_tags", count=MAX_TAGS, length=32)
    if comment is not None and len(comment) > MAX_COMMENT:
        raise InvalidInput("refusal.feedback_comment", count=MAX_COMMENT)
    author = await session.scalar(select(Person).where(Person.iin == author_iin))
    event: MealRedemption | Dispensing | None = await session.get(
        EVENT_TABLES[event_kind], event_id
    )
    if event is None:
        raise NotFound("refusal.no_such_service_event")
    if author is None or author.family_id != event.family_id:
        # Only the family the service was for may rate it.
        raise Forbidden("refusal.feedback_not_your_service")
    feedback = Feedback(
        event_kind=event_kind,
        event_id=event.id,
        merchant_id=event.merchant_id,
        family_id=event.family_id,
        author_person_id=author.id,
        service_date=event.service_date,
        rating=rating,
        tags=tags,
        comment=comment,
    )
    try:
        async with session.begin_nested():
            session.add(feedback)
    except IntegrityError as exc:
        raise FeedbackExists("refusal.feedback_exists") from exc
    return feedback
