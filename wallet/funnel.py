"""The take-up funnel of proactive offers, for operators: per programme and region, how many
offers were made, delivered, accepted, declined, expired and paid, the take-up rate and the
median time from offer to payment.

Delivered means the SMS gateway took the offer's SMS (the outbox message was sent); the
gateways report no handset delivery. Take-up is the share of offers the person accepted
(whatever followed). Only cash benefits reach `paid`, and only when the bank's statement
booked the first payment (wallet.reconcile), at the time the bank booked it: the bank's API
taking an order is not payment. A voucher's consent ends in `assigned`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.orm import as_utc
from wallet.offer_tables import Offer
from wallet.outbox_tables import OutboxMessage

ACCEPTED_STATES = frozenset({"accepted", "needs_bank_account", "assigned", "paid", "withdrawn"})


@dataclass
class FunnelRow:
    programme: str
    region: str
    sent: int = 0
    delivered: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0
    paid: int = 0
    median_seconds_to_payment: float | None = None

    @property
    def take_up_rate(self) -> float:
        return self.accepted / self.sent if self.sent else 0.0


async def offer_funnel(
    *,
    session: AsyncSession,
    since: datetime,
    until: datetime,
    programme: str | None = None,
    region: str | None = None,
) -> list[FunnelRow]:
    """The funnel of offers made in [since, until), per programme and region."""
    query = (
        select(
            Offer.programme,
            Offer.region,
            Offer.state,
            Offer.created_at,
            Offer.paid_at,
            OutboxMessage.status,
        )
        .outerjoin(OutboxMessage, OutboxMessage.id == Offer.sms_message_id)
        .where(Offer.created_at >= since, Offer.created_at < until)
    )
    if programme is not None:
        query = query.where(Offer.programme == programme)
    if region is not None:
        query = query.where(Offer.region == region)
    rows: dict[tuple[str, str], FunnelRow] = {}
    waits: dict[tuple[str, str], list[float]] = {}
    for prog, reg, state, created, paid_at, sms_status in (await session.execute(query)).all():
        row = rows.setdefault((prog, reg), FunnelRow(programme=prog, region=reg))
        row.sent += 1
        row.delivered += sms_status == "sent"
        row.accepted += state in ACCEPTED_STATES
        row.declined += state == "declined"
        row.expired += state == "expired"
        if state == "paid" and paid_at is not None:
            row.paid += 1
            waits.setdefault((prog, reg), []).append(
                (as_utc(paid_at) - as_utc(created)).total_seconds()
            )
    for key, row in rows.items():
        if key in waits:
            row.median_seconds_to_payment = statistics.median(waits[key])
    return sorted(rows.values(), key=lambda r: (r.programme, r.region))
