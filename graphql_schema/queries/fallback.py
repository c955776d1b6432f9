"""Operators' report of the fallback identity check per pharmacy and month
(vouchers/fallback_report.py); the same as `socialwallet report fallback --month YYYY-MM`."""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry
from strawberry.types import Info

from familymap.access import Role
from graphql_schema.context import Context
from graphql_schema.permissions import requires
from vouchers.fallback_report import FallbackUse, fallback_use


@strawberry.type(description="How many fallbacks gave one reason.")
class ReasonCount:
    reason: str = strawberry.field(description="A FallbackReason code, lower case; 'uncoded'.")
    count: int


@strawberry.type(description="A pharmacy's month: dispensings, fallbacks, missed lookups.")
class FallbackUseRow:
    merchant_id: strawberry.ID
    pharmacy_name: str
    dispensings: int
    fallbacks: int
    fallback_share: float = strawberry.field(description="fallbacks / dispensings, 0 to 1.")
    by_reason: list[ReasonCount]
    lookup_misses: int = strawberry.field(
        description="Prescription lookups that found nothing (guessed ids show here)."
    )

    @classmethod
    def from_use(cls, use: FallbackUse) -> FallbackUseRow:
        return cls(
            merchant_id=strawberry.ID(str(use.merchant_id)),
            pharmacy_name=use.pharmacy_name,
            dispensings=use.dispensings,
            fallbacks=use.fallbacks,
            fallback_share=round(use.fallback_share, 4),
            by_reason=[ReasonCount(reason=r, count=n) for r, n in use.by_reason.items()],
            lookup_misses=use.lookup_misses,
        )


@strawberry.type
class FallbackQueries:
    @strawberry.field(
        description="The fallback identity check per pharmacy in the month of `month` (any "
        "day of it), most fallbacks first. Operators only.",
        extensions=requires(Role.OPERATOR),
    )
    async def fallback_report(self, info: Info[Context, Any], month: date) -> list[FallbackUseRow]:
        async with info.context.session_factory() as session:
            uses = await fallback_use(session=session, month=month)
        return [FallbackUseRow.from_use(use) for use in uses]
