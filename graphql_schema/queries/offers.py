"""Queries of the proactive flow: a citizen's own offers and notices, the operators' funnel."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from app.auth import Role
from familymap.tables import Person
from graphql_schema.context import Context
from graphql_schema.errors import ApiError
from graphql_schema.permissions import require_principal, requires
from graphql_schema.types.offers import Notification, Offer, OfferFunnelRow, OfferState
from wallet.funnel import offer_funnel
from wallet.offer_tables import Notification as NotificationRow
from wallet.offer_tables import Offer as OfferRow

MAX_FUNNEL_DAYS = 366


async def caller_person_id(session, info: Info[Context, Any]) -> int | None:
    """The registry id of the calling citizen (whose token subject is their IIN)."""
    iin = require_principal(info).subject
    return await session.scalar(select(Person.id).where(Person.iin == iin))


@strawberry.type
class OfferQueries:
    @strawberry.field(
        description="Your offers, newest first (optionally only those in one state).",
        extensions=requires(Role.CITIZEN),
    )
    async def my_offers(
        self, info: Info[Context, Any], state: OfferState | None = None
    ) -> list[Offer]:
        async with info.context.session_factory() as session:
            person_id = await caller_person_id(session, info)
            if person_id is None:
                return []
            # Only offers addressed to the caller: ownership is in the query itself.
            query = select(OfferRow).where(OfferRow.recipient_person_id == person_id)
            if state is not None:
                query = query.where(OfferRow.state == state.value)
            rows = (await session.scalars(query.order_by(OfferRow.id.desc()).limit(200))).all()
        return [Offer.from_row(row, info.context.language) for row in rows]

    @strawberry.field(
        description="Notices sent to you (pension age, kandas status, employment measures).",
        extensions=requires(Role.CITIZEN),
    )
    async def my_notifications(self, info: Info[Context, Any]) -> list[Notification]:
        async with info.context.session_factory() as session:
            person_id = await caller_person_id(session, info)
            if person_id is None:
                return []
            rows = (
                await session.scalars(
                    select(NotificationRow)
                    .where(NotificationRow.person_id == person_id)
                    .order_by(NotificationRow.id.desc())
                    .limit(200)
                )
            ).all()
        return [Notification.from_row(row, info.context.language) for row in rows]

    @strawberry.field(
        description=(
            "The take-up funnel of offers made from `since` to `until` (inclusive dates, UTC, "
            "at most a year), per programme and region. Operators only."
        ),
        extensions=requires(Role.OPERATOR),
    )
    async def offer_funnel(
        self,
        info: Info[Context, Any],
        since: date,
        until: date,
        programme: str | None = None,
        region: str | None = None,
    ) -> list[OfferFunnelRow]:
        if until < since:
            raise ApiError("`until` is before `since`.", code="INVALID_PERIOD")
        if (until - since).days > MAX_FUNNEL_DAYS:
            raise ApiError("A funnel covers at most a year.", code="INVALID_PERIOD")
        start = datetime.combine(since, time.min, tzinfo=UTC)
        end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
        async with info.context.session_factory() as session:
            rows = await offer_funnel(
                session=session, since=start, until=end, programme=programme, region=region
            )
        return [OfferFunnelRow.from_row(row) for row in rows]
