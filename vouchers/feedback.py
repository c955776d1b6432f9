"""Feedback: a family rates a service event (a meal served, a medicine dispensed), once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.tables import Person
from vouchers.errors import FeedbackExists, Forbidden, InvalidInput, NotFound
from vouchers.tables import Dispensing, Feedback, MealRedemption

EVENT_TABLES = {"meal": MealRedemption, "dispensing": Dispensing}
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
        raise InvalidInput("event kind must be meal or dispensing")
    if not 1 <= rating <= 5:
        raise InvalidInput("rating must be 1 to 5")
    tags = [t.strip() for t in tags or [] if t.strip()]
    if len(tags) > MAX_TAGS or any(len(t) > 32 for t in tags):
        raise InvalidInput(f"at most {MAX_TAGS} tags of up to 32 characters")
    if comment is not None and len(comment) > MAX_COMMENT:
        raise InvalidInput(f"a comment has at most {MAX_COMMENT} characters")
    author = await session.scalar(select(Person).where(Person.iin == author_iin))
    event = await session.get(EVENT_TABLES[event_kind], event_id)
    if event is None:
        raise NotFound("no such service event")
    if author is None or author.family_id != event.family_id:
        # Only the family the service was for may rate it.
        raise Forbidden("only the family this service was for may rate it")
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
        raise FeedbackExists("this service was rated already") from exc
    return feedback
