"""Operators' report of the fallback identity check: per pharmacy and month, how often it
dispensed without eGov QR or Face-ID, and why; and how many prescription ids it looked up in
vain (someone guessing ids shows here first).

Half of 2025's medical services bypassed Face-ID (public reporting): the fallback is allowed,
but only recorded, with a reason from a list, and watched per pharmacy.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.audit_reads import LOCAL
from familymap.audit_tables import AuditRecord
from vouchers.errors import InvalidInput
from vouchers.tables import Dispensing, Merchant

# The text of a prescription lookup that found nothing, before the id looked for.
PRESCRIPTION_MISS = "prescription looked up, no match"
# Fallbacks dispensed before reasons had codes (migration 0009).
UNCODED = "uncoded"


@dataclass(frozen=True, slots=True)
class FallbackUse:
    """One pharmacy's month: dispensings, fallbacks by reason code, lookups that missed."""

    merchant_id: uuid.UUID
    pharmacy_name: str
    dispensings: int = 0
    fallbacks: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    lookup_misses: int = 0

    @property
    def fallback_share(self) -> float:
        return self.fallbacks / self.dispensings if self.dispensings else 0.0


def parse_month(text: str) -> date:
    """The first day of a month written YYYY-MM; InvalidInput otherwise."""
    try:
        year, month = text.split("-")
        if not (len(year) == 4 and len(month) == 2 and (year + month).isascii()):
            raise ValueError(text)
        return date(int(year), int(month), 1)
    except ValueError:
        raise InvalidInput("refusal.month_format") from None


def _next_month(start: date) -> date:
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


async def fallback_use(*, session: AsyncSession, month: date) -> list[FallbackUse]:
    """Every pharmacy that dispensed or missed a lookup in `month` (any day of it), most
    fallbacks first."""
    start = month.replace(day=1)
    end = _next_month(start)
    dispensed = await session.execute(
        select(
            Dispensing.merchant_id,
            Dispensing.identity_method,
            Dispensing.identity_reason_code,
            func.count(),
        )
        .where(Dispensing.service_date >= start, Dispensing.service_date < end)
        .group_by(
            Dispensing.merchant_id, Dispensing.identity_method, Dispensing.identity_reason_code
        )
    )
    totals: dict[uuid.UUID, int] = defaultdict(int)
    reasons: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    for merchant_id, method, code, count in dispensed:
        totals[merchant_id] += count
        if method == "fallback":
            reasons[merchant_id][code or UNCODED] = count
    misses = await _lookup_misses(session, start, end)
    ids = set(totals) | set(misses)
    names = dict(
        (
            await session.execute(select(Merchant.id, Merchant.name).where(Merchant.id.in_(ids)))
        ).all()
    )
    rows = [
        FallbackUse(
            merchant_id=merchant_id,
            pharmacy_name=names.get(merchant_id, ""),
            dispensings=totals.get(merchant_id, 0),
            fallbacks=sum(reasons[merchant_id].values()),
            by_reason=dict(sorted(reasons[merchant_id].items())),
            lookup_misses=misses.get(merchant_id, 0),
        )
        for merchant_id in ids
    ]
    return sorted(rows, key=lambda r: (-r.fallbacks, -r.lookup_misses, r.pharmacy_name))


async def _lookup_misses(session: AsyncSession, start: date, end: date) -> dict[uuid.UUID, int]:
    # A day of the trail is a day in Kazakhstan; the trail holds UTC.
    since, until = (datetime.combine(d, time(), LOCAL).astimezone(UTC) for d in (start, end))
    rows = await session.execute(
        select(AuditRecord.actor, func.count())
        .where(
            AuditRecord.role == "PHARMACY",
            AuditRecord.what.startswith(f"{PRESCRIPTION_MISS}:", autoescape=True),
            AuditRecord.recorded_at >= since,
            AuditRecord.recorded_at < until,
        )
        .group_by(AuditRecord.actor)
    )
    misses = {}
    for actor, count in rows:
        try:
            misses[uuid.UUID(actor)] = count
        except ValueError:
            continue  # not a merchant's token: no pharmacy to report it under
    return misses
