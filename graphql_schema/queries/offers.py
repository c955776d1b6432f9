"""Queries of the proactive flow for operators (the funnel); a citizen's own offers and notices
are in `me` (graphql_schema/types/wallet.py)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from familymap.access import Role
from familymap.clock import utc_now
from familymap.tables import Person
from graphql_schema.context import Context
from graphql_schema.errors import ApiError
from graphql_schema.permissions import require_principal, requires
from graphql_schema.types.offers import FunnelDimension, OfferFunnelRow
from wallet.funnel import ASTANA, offer_funnel

MAX_FUNNEL_DAYS = 366
DEFAULT_GROUPING = (FunnelDimension.PROGRAMME, FunnelDimension.REGION)


async def caller_person_id(session, info: Info[Context, Any]) -> int | None:
    """The registry id of the calling citizen (whose token subject is their IIN)."""
    iin = require_principal(info).subject
    return await session.scalar(select(Person.id).where(Person.iin == iin))


@strawberry.type
class OfferQueries:
    @strawberry.field(
        description=(
            "The take-up funnel of the offers made from `since` to `until` (inclusive days in "
            "Astana time, at most a year), grouped by `groupBy` (programme and region unless "
            "said; none gives the total), as they stand now: sent → delivered → answered → "
            "accepted → received, and why the others failed. Operators only."
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
        group_by: list[FunnelDimension] | None = DEFAULT_GROUPING,
    ) -> list[OfferFunnelRow]:
        if until < since:
            raise ApiError("error.until_before_since", code="INVALID_PERIOD")
        if (until - since).days > MAX_FUNNEL_DAYS:
            raise ApiError("error.funnel_period", code="INVALID_PERIOD")
        start = datetime.combine(since, time.min, tzinfo=ASTANA)
        end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=ASTANA)
        async with info.context.read_session_factory() as session:
            rows = await offer_funnel(
                session=session,
                since=start,
                until=end,
                now=utc_now(),
                group_by=tuple(dimension.value for dimension in group_by or ()),
                programme=programme,
                region=region,
            )
        return [OfferFunnelRow.from_row(row) for row in rows]
