"""Reading the audit trail for a citizen: who accessed whose data, a page at a time.

The trail is append-only and hash-chained, so nothing here changes a record. Two rules shape
what a citizen is shown, both applied as the trail is read:

- Repeated identical reads collapse: every read by one actor, through one operation, of the
  same thing about the same person (or family) on one day (Kazakhstan time, UTC+5) is one
  line with a count. A school listing its pupils 200 times a day is one line, and cannot push
  an operator's lookup out of sight. Writes are never collapsed: each change is its own line.
  Collapsing at read time, rather than keeping a count column on a record, leaves every
  record as it was written: a count updated later would change a chained record's content
  (the triggers refuse the UPDATE, and verify would call it an edit), while new records
  saying "the count is now n" would fill the trail with exactly the noise we want gone.
- Paging is by keyset, newest first: (day, last record id) of the last line shown. A cursor
  reaches the very first record, however many came after it.

Who sees which line, and how much of it, is decided by the caller (`subject_hashes`,
`family_id`) and by `shown_what`: health details (a prescription's id, a drug's code) are
shown only to the person they are about.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from sqlalchemy import Date, and_, case, func, literal_column, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from familymap.audit_tables import AuditRecord

# Kazakhstan has kept one time zone, UTC+5, since 1 March 2024: a day of the trail is a day
# there.
LOCAL = timezone(timedelta(hours=5))
_CURSOR_PREFIX = "access:"
# Texts of records about medicines: a prescription's id and a drug's code follow the kind,
# after a colon ("prescription recorded: RX-2-SP", "medicine dispensed: N02BE01").
HEALTH_PREFIXES = ("prescription", "medicine")
HEALTH_DETAIL_HIDDEN = "medicines data"


class BadCursor(ValueError):
    code = "BAD_CURSOR"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends: the day and the newest record id of its last line."""

    day: date
    last_id: int

    def cursor(self) -> str:
        """An opaque cursor for this position."""
        text = f"{_CURSOR_PREFIX}{self.day.isoformat()}:{self.last_id}"
        return base64.urlsafe_b64encode(text.encode()).decode()

    @classmethod
    def from_cursor(cls, cursor: str) -> Position:
        """The position a cursor of ours names; BadCursor for anything else."""
        try:
            text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
            if not text.startswith(_CURSOR_PREFIX):
                raise ValueError(text)
            day, last_id = text.removeprefix(_CURSOR_PREFIX).split(":")
            # Digits that fit a bigint, and a day with a day after it.
            if not (last_id.isascii() and last_id.isdigit() and len(last_id) <= 18):
                raise ValueError(last_id)
            position = cls(date.fromisoformat(day), int(last_id))
            if position.day >= date.max:
                raise ValueError(day)
            return position
        except (ValueError, UnicodeError, binascii.Error):
            raise BadCursor("that cursor is not one this list gave out") from None


@dataclass(frozen=True, slots=True)
class AccessLine:
    """One line of a citizen's "who accessed my data": a record, or identical reads of a day."""

    position: Position
    first_at: datetime
    last_at: datetime
    count: int
    actor: str
    role: str
    subject_hash: str | None
    family_id: int | None
    action: str
    what: str
    operation: str


def _local_day(dialect: str) -> ColumnElement[date]:
    # No bound parameter inside: PostgreSQL must see the same text in SELECT and GROUP BY.
    column = AuditRecord.recorded_at
    if dialect == "postgresql":
        shifted = func.timezone("UTC", column) + literal_column("INTERVAL '5 hours'")
        return type_coerce(func.date(shifted), Date)
    return type_coerce(func.date(column, literal_column("'+5 hours'")), Date)


async def access_lines(
    *,
    session: AsyncSession,
    subject_hashes: Collection[str],
    family_id: int | None,
    exclude_actor: str | None,
    after: Position | None,
    limit: int,
) -> list[AccessLine]:
    """Up to `limit` lines, newest first, after `after`: records about the people of
    `subject_hashes`, and records about the family as a whole (no person named), not by
    `exclude_actor`."""
    about: list[ColumnElement[bool]] = (
        [AuditRecord.subject_hash.in_(list(subject_hashes))] if subject_hashes else []
    )
    if family_id is not None:
        about.append(and_(AuditRecord.family_id == family_id, AuditRecord.subject_hash.is_(None)))
    if not about or limit < 1:
        return []
    day = _local_day(session.get_bind().dialect.name)
    last_id = func.max(AuditRecord.id)
    # A write is a group of its own (its id); reads group by what they are.
    one_write = case((AuditRecord.action == "read", literal_column("0")), else_=AuditRecord.id)
    alike = (AuditRecord.role, AuditRecord.actor, AuditRecord.action, AuditRecord.what,
             AuditRecord.operation, AuditRecord.subject_hash, AuditRecord.family_id)  # fmt: skip
    first_at, last_at = func.min(AuditRecord.recorded_at), func.max(AuditRecord.recorded_at)
    query = (
        select(day, last_id, first_at, last_at, func.count(), *alike)
        .where(or_(*about))
        .group_by(day, *alike, one_write)
        .order_by(day.desc(), last_id.desc())
        .limit(limit)
    )
    if exclude_actor is not None:
        query = query.where(AuditRecord.actor != exclude_actor)
    if after is not None:
        # Records of later days cannot be in a line after the cursor: not read at all.
        day_end = datetime.combine(after.day + timedelta(days=1), time(), LOCAL).astimezone(UTC)
        query = query.where(AuditRecord.recorded_at < day_end).having(
            or_(day < after.day, and_(day == after.day, last_id < after.last_id))
        )
    rows = (await session.execute(query)).all()
    return [
        AccessLine(
            position=Position(_as_date(r[0]), r[1]), first_at=r[2], last_at=r[3], count=r[4],
            role=r.role, actor=r.actor, action=r.action, what=r.what, operation=r.operation,
            subject_hash=r.subject_hash, family_id=r.family_id,
        )
        for r in rows
    ]  # fmt: skip


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def is_health(what: str) -> bool:
    """Whether a record's text is about someone's medicines."""
    return what.startswith(HEALTH_PREFIXES)


def shown_what(what: str, *, to_subject: bool) -> str:
    """A record's text as the viewer may see it: health details only to their subject."""
    if to_subject or not is_health(what):
        return what
    kind, colon, _ = what.partition(":")
    # Texts written before the "kind: detail" form carry the detail inline: none of it shows.
    return kind if colon else HEALTH_DETAIL_HIDDEN
