"""The audit trail in the API: the helper resolvers call, and the two ways to read it.

- `audit(...)` appends a record for the current request (actor, role, operation, request
  id) in the resolver's own transaction.
- `auditRecords(subjectIin)`: operators list who accessed one person's data (itself audited).
- `myDataAccess`: a citizen sees who accessed their family's data, and why; their own
  requests are left out. Actors are shown by role and id (a staff id, a merchant id, a
  source system's name); a citizen actor by role only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app.auth import Role
from familymap.audit import (
    IIN_ROLES,
    Caller,
    record_access,
    records_for_family,
    records_for_subject,
)
from familymap.audit_tables import AuditRecord
from familymap.tables import Person
from graphql_schema.context import Context
from graphql_schema.permissions import require_principal, requires
from graphql_schema.scalars import IIN

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


async def audit_family_reads(
    info: Info[Context, Any], *, role: Role, family_ids: set[int], what: str
) -> None:
    """A list read of other families' data (a school's pupils, a pharmacy's dispensings): one
    record per family it showed, so each family sees the read in its own trail."""
    if not family_ids:
        return
    async with info.context.session_factory() as session, session.begin():
        for family_id in sorted(family_ids):
            await audit(
                info,
                session=session,
                role=role,
                subject_iin=None,
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


@strawberry.type(description="Someone who accessed your family's data, and why.")
class DataAccess:
    at: datetime
    actor_role: str
    actor_id: str | None = strawberry.field(
        description="A staff id, merchant id or source system name; null for a citizen."
    )
    action: str
    what: str
    operation: str

    @classmethod
    def from_row(cls, row: AuditRecord) -> DataAccess:
        return cls(
            at=row.recorded_at,
            actor_role=row.role,
            actor_id=None if row.role in IIN_ROLES else row.actor,
            action=row.action,
            what=row.what,
            operation=row.operation,
        )


@strawberry.type
class AuditQueries:
    @strawberry.field(
        description="The audit trail about one person, newest first (operators only).",
        extensions=requires(Role.OPERATOR),
    )
    async def audit_records(
        self, info: Info[Context, Any], subject_iin: IIN, first: int = 50
    ) -> list[AuditRecordView]:
        key = info.context.settings.audit_key
        async with info.context.session_factory() as session, session.begin():
            rows = await records_for_subject(
                session=session,
                key=key,
                subject_iin=subject_iin,
                limit=max(1, min(first, MAX_RECORDS)),
            )
            views = [AuditRecordView.from_row(row) for row in rows]
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
        return views

    @strawberry.field(
        description="Who accessed your family's data, and why, newest first (citizens).",
        extensions=requires(Role.CITIZEN),
    )
    async def my_data_access(self, info: Info[Context, Any], first: int = 50) -> list[DataAccess]:
        own_iin = require_principal(info).subject
        async with info.context.session_factory() as session:
            family_id = await session.scalar(select(Person.family_id).where(Person.iin == own_iin))
            members = (
                [own_iin]
                if family_id is None
                else list(
                    await session.scalars(select(Person.iin).where(Person.family_id == family_id))
                )
            )
            rows = await records_for_family(
                session=session,
                key=info.context.settings.audit_key,
                family_id=family_id,
                member_iins=members,
                exclude_actor_iin=own_iin,
                limit=max(1, min(first, MAX_RECORDS)),
            )
        return [DataAccess.from_row(row) for row in rows]
