"""The audit trail in the API: the helper resolvers call, and the two ways to read it.

- `audit(...)` appends a record for the current request (actor, role, operation, request
  id) in the resolver's own transaction.
- `auditRecords(subjectIin)`: operators list who accessed one person's data (itself audited),
  as a relay connection (opaque cursors, `first`/`after`).
- `myDataAccess`: a citizen sees who accessed their data and their family's, and why, as a
  relay connection (opaque cursors, `first`/`after`, down to the first record); their own
  requests are left out. Records about a member are shown to those who see that member
  fully (wallet/view.py), records about the family as a whole to every member, health
  details only to their subject, and identical reads of a day as one entry with a count
  (familymap/audit_reads.py). Actors are shown by role and id (a staff id, a merchant id,
  a source system's name); a citizen actor by role only.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay
from strawberry.types import Info

from familymap.access import Role
from familymap.audit import (
    IIN_ROLES,
    Caller,
    record_access,
    records_for_subject,
    subject_hash,
)
from familymap.audit_reads import AccessLine, BadCursor, Position, access_lines, shown_what
from familymap.audit_tables import AuditRecord
from familymap.tables import Person
from graphql_schema.context import Context
from graphql_schema.errors import BAD_USER_INPUT, ApiError
from graphql_schema.permissions import require_principal, requires
from graphql_schema.scalars import IIN
from wallet.view import Visibility, visibility

MAX_RECORDS = 200


async def audit(
    info: Info[Context, Any],
    *,
    session: AsyncSession,
    role: Role,
    subject_iin: str | None,
    family_id: int | None,
    action: str,
    what: str,
) -> None:
    """Record this request's access in `session`'s transaction (call it last in it)."""
    principal = require_principal(info)
    operation = info.operation.name.value if info.operation.name else info.field_name
    await record_access(
        session=session,
        key=info.context.settings.audit_key,
        actor=principal.subject,
        role=role.value,
        subject_iin=subject_iin,
        family_id=family_id,
        action=action,
        what=what,
        operation=operation,
        request_id=info.context.request_id,
    )


def audit_caller(info: Info[Context, Any], *, role: Role) -> Caller:
    """This request's caller as the trail records them, for appends on a driver connection."""
    principal = require_principal(info)
    return Caller(
        key=info.context.settings.audit_key,
        actor=principal.subject,
        role=role.value,
        operation=info.operation.name.value if info.operation.name else info.field_name,
        request_id=info.context.request_id,
    )


async def audit_reads(
    info: Info[Context, Any], *, role: Role, about: set[tuple[int, str | None]], what: str
) -> None:
    """A list read of other people's data: one record per (family id, subject IIN or None)
    it showed, so each sees the read in their own trail (and only those who may)."""
    if not about:
        return
    async with info.context.session_factory() as session, session.begin():
        for family_id, subject_iin in sorted(about, key=lambda a: (a[0], a[1] or "")):
            await audit(
                info,
                session=session,
                role=role,
                subject_iin=subject_iin,
                family_id=family_id,
                action="read",
                what=what,
            )


@strawberry.type(description="One access to personal data, as the audit trail recorded it.")
class AuditRecordView:
    seq: int = strawberry.field(description="The record's place in the hash chain.")
    recorded_at: datetime
    actor_role: str
    actor_id: str | None = strawberry.field(
        description="A staff id, merchant id or source system name; null for a citizen."
    )
    family_id: strawberry.ID | None
    action: str = strawberry.field(description="read or write")
    what: str = strawberry.field(description="What was read or changed, and why.")
    operation: str = strawberry.field(description="The API operation that did it.")
    request_id: str | None

    @classmethod
    def from_row(cls, row: AuditRecord) -> AuditRecordView:
        return cls(
            seq=row.seq,
            recorded_at=row.recorded_at,
            actor_role=row.role,
            actor_id=None if row.role in IIN_ROLES else row.actor,
            family_id=None if row.family_id is None else strawberry.ID(str(row.family_id)),
            action=row.action,
            what=row.what,
            operation=row.operation,
            request_id=row.request_id,
        )


@strawberry.type(
    description="Someone who accessed your family's data, and why; identical reads of one day "
    "are one entry with their count."
)
class DataAccess:
    at: datetime = strawberry.field(description="When (the latest, for repeated reads).")
    first_at: datetime = strawberry.field(description="When first, for repeated reads.")
    count: int = strawberry.field(description="How many identical reads that day (1 for a write).")
    actor_role: str
    actor_id: str | None = strawberry.field(
        description="A staff id, merchant id or source system name; null for a citizen."
    )
    action: str
    what: str
    operation: str

    @classmethod
    def from_line(cls, line: AccessLine, *, own_hash: str) -> DataAccess:
        return cls(
            at=line.last_at,
            first_at=line.first_at,
            count=line.count,
            actor_role=line.role,
            actor_id=None if line.role in IIN_ROLES else line.actor,
            action=line.action,
            what=shown_what(line.what, to_subject=line.subject_hash == own_hash),
            operation=line.operation,
        )


@strawberry.type(
    name="DataAccessConnection", description="Who accessed your data, a page at a time."
)
class DataAccessConnection(relay.Connection[DataAccess]):
    pass


@strawberry.type(
    name="AuditRecordConnection", description="The audit trail about a person, a page at a time."
)
class AuditRecordConnection(relay.Connection[AuditRecordView]):
    pass


_RECORD_CURSOR = "audit-record:"


def record_cursor(record_id: int) -> str:
    """An opaque cursor after the record `record_id` (the trail is read newest first)."""
    return base64.urlsafe_b64encode(f"{_RECORD_CURSOR}{record_id}".encode()).decode()


def record_id_of(cursor: str) -> int:
    """The record id a cursor of `auditRecords` names; BadCursor for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (ValueError, UnicodeError, binascii.Error):
        raise BadCursor("that cursor is not one this list gave out") from None
    record_id = text.removeprefix(_RECORD_CURSOR)
    # Digits that fit a bigint, after our own prefix.
    if not text.startswith(_RECORD_CURSOR) or not (
        record_id.isascii() and record_id.isdigit() and len(record_id) <= 18
    ):
        raise BadCursor("that cursor is not one this list gave out")
    return int(record_id)


@strawberry.type
class AuditQueries:
    @strawberry.field(
        description="The audit trail about one person, newest first (operators only). Page on "
        "with `after` (the last endCursor).",
        extensions=requires(Role.OPERATOR),
    )
    async def audit_records(
        self, info: Info[Context, Any], subject_iin: IIN, first: int = 50, after: str | None = None
    ) -> AuditRecordConnection:
        try:
            before_id = None if after is None else record_id_of(after)
        except BadCursor as refused:
            raise ApiError(str(refused), code=BAD_USER_INPUT) from None
        size = max(1, min(first, MAX_RECORDS))
        key = info.context.settings.audit_key
        async with info.context.session_factory() as session, session.begin():
            rows = await records_for_subject(
                session=session, key=key, subject_iin=subject_iin, limit=size + 1,
                before_id=before_id,
            )  # fmt: skip
            edges = [
                relay.Edge(node=AuditRecordView.from_row(row), cursor=record_cursor(row.id))
                for row in rows[:size]
            ]
            # Reading the trail about a person is itself an access to their data.
            await audit(
                info,
                session=session,
                role=Role.OPERATOR,
                subject_iin=subject_iin,
                family_id=None,
                action="read",
                what="audit trail",
            )
        return AuditRecordConnection(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=len(rows) > size,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field(
        description="Who accessed your data and your family's, and why, newest first "
        "(citizens): records about the members you see fully, and about the family as a whole; "
        "health details only about yourself. Page on with `after` (the last endCursor).",
        extensions=requires(Role.CITIZEN),
    )
    async def my_data_access(
        self, info: Info[Context, Any], first: int = 50, after: str | None = None
    ) -> DataAccessConnection:
        own_iin = require_principal(info).subject
        key = info.context.settings.audit_key
        try:
            position = None if after is None else Position.from_cursor(after)
        except BadCursor:
            raise ApiError("error.bad_cursor", code=BAD_USER_INPUT) from None
        size = max(1, min(first, MAX_RECORDS))
        async with info.context.session_factory() as session:
            caller = await session.scalar(select(Person).where(Person.iin == own_iin))
            members = (
                []
                if caller is None
                else list(
                    await session.scalars(
                        select(Person).where(Person.family_id == caller.family_id)
                    )
                )
            )
            seen_fully = (
                [own_iin]
                if caller is None
                else [
                    m.iin for m in members if visibility(caller=caller, member=m) is Visibility.FULL
                ]
            )
            lines = await access_lines(
                session=session,
                subject_hashes=[subject_hash(iin=iin, key=key) for iin in seen_fully],
                family_id=None if caller is None else caller.family_id,
                exclude_actor=subject_hash(iin=own_iin, key=key),
                after=position,
                limit=size + 1,
            )
        own_hash = subject_hash(iin=own_iin, key=key)
        edges = [
            relay.Edge(
                node=DataAccess.from_line(line, own_hash=own_hash), cursor=line.position.cursor()
            )
            for line in lines[:size]
        ]
        return DataAccessConnection(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=len(lines) > size,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )
