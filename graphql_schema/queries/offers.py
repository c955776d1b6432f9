"""Queries of the proactive flow for operators (the funnel); a citizen's own offers and notices
are in `me` (graphql_schema/types/wallet.py)."""

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
from graphql_schema.types.offers import OfferFunnelRow
from wallet.funnel import offer_funnel

MAX_FUNNEL_DAYS = 366


async def caller_person_id(session, info: Info[Context, Any]) -> int | None:
    """The registry id of the calling citizen (whose token subject is their IIN)."""
    iin = require_principal(info).subject
    return await session.scalar(select(Person.id).where(Person.iin == iin))


@strawberry.type
class OfferQueries:
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
            raise ApiError("error.until_before_since", code="INVALID_PERIOD")
        if (until - since).days > MAX_FUNNEL_DAYS:
            raise ApiError("error.funnel_period", code="INVALID_PERIOD")
        start = datetime.combine(since, time.min, tzinfo=UTC)
        end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
        async with info.context.session_factory() as session:
            rows = await offer_funnel(
                session=session, since=start, until=end, programme=programme, region=region
            )
        return [OfferFunnelRow.from_row(row) for row in rows]
