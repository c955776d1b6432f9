"""The take-up funnel of proactive offers, as the ministry publishes it: how many offers were
sent, delivered, answered, accepted and paid, the drop at each step, and why the others
failed, per programme, region and month (any of them, or none for the national total).

Each offer counts once, in the month (Astana time) it was made, with where it stands now:

- sent: offers made (each is in the app; its SMS is queued when a phone is on file);
- delivered: the SMS gateway took the offer's SMS (gateways report no handset delivery);
- answered: the person accepted or declined, by SMS or in the app (an offer without an SMS
  can be answered in the app, so answered is not a part of delivered);
- accepted: the person consented, whatever followed;
- paid: the bank's statement booked a payment of the offer's benefit (`bank_confirmed`;
  wallet.reconcile): the bank's API taking an order is not payment;
- vouchers_issued: a voucher programme's consent issued the voucher (no bank step);
- received = paid + vouchers_issued: the families who got the benefit, the figure the
  ministry publishes (docs/domain.md); the received rate is received / sent, the take-up
  rate accepted / sent.

Why the others did not get it, each offer in one place: declined (with the reason given, if
any), expired unanswered, still open, withdrawn at consent (no longer eligible), waiting for
a bank account, returned by the bank, and in payment (ordered, not yet confirmed).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Row, Subquery, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.orm import as_utc
from wallet.offer_tables import DECLINE_REASONS, BenefitAssignment, Offer, Payment
from wallet.outbox_tables import OutboxMessage

# Kazakhstan keeps one time zone, UTC+5, without summer time (since March 2024): the
# ministry's months and years are Astana's.
ASTANA = timezone(timedelta(hours=5), "Asia/Astana")
DIMENSIONS = ("programme", "region", "month")
STEPS = ("sent", "delivered", "answered", "accepted", "received")
ACCEPTED_STATES = frozenset({"accepted", "needs_bank_account", "assigned", "paid", "withdrawn"})
# What the bank's statement says of a payment (wallet.reconcile): `paid` booked, `returned`
# sent back. The bank's API taking an order (`sent`) is not payment. Only bank_confirmed
# reads these.
PAID_PAYMENT_STATES = ("paid",)
RETURNED_PAYMENT_STATES = ("returned",)


@dataclass
class FunnelRow:
    """One group's funnel; a dimension not grouped by is None."""

    programme: str | None = None
    region: str | None = None
    month: str | None = None  # YYYY-MM
    sent: int = 0
    delivered: int = 0
    answered: int = 0
    accepted: int = 0
    paid: int = 0
    vouchers_issued: int = 0
    declined: int = 0
    declined_for: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DECLINE_REASONS, 0))
    expired: int = 0
    open: int = 0
    withdrawn: int = 0
    needs_bank_account: int = 0
    returned: int = 0
    in_payment: int = 0
    median_seconds_to_payment: float | None = None

    @property
    def received(self) -> int:
        return self.paid + self.vouchers_issued

    @property
    def declined_without_reason(self) -> int:
        return self.declined - sum(self.declined_for.values())

    @property
    def take_up_rate(self) -> float:
        return self.accepted / self.sent if self.sent else 0.0

    @property
    def received_rate(self) -> float:
        return self.received / self.sent if self.sent else 0.0

    def steps(self) -> list[tuple[str, int, int]]:
        """Each step of sent → delivered → answered → accepted → received: its count and the
        drop from the step before (negative when app answers outnumber delivered SMS)."""
        counts = [getattr(self, step) for step in STEPS]
        return [
            (step, count, (counts[i - 1] - count) if i else 0)
            for i, (step, count) in enumerate(zip(STEPS, counts, strict=True))
        ]


def bank_confirmed() -> Subquery:
    """Per offer with payments: whether the bank confirmed one (`paid`), returned one
    (`returned`), and when it first confirmed one (`paid_at`); the only place that says what
    the bank's answers are."""
    confirmed = Payment.state.in_(PAID_PAYMENT_STATES)
    return (
        select(
            BenefitAssignment.offer_id.label("offer_id"),
            func.max(case((confirmed, 1), else_=0)).label("paid"),
            func.max(case((Payment.state.in_(RETURNED_PAYMENT_STATES), 1), else_=0)).label(
                "returned"
            ),
            func.min(case((confirmed, Payment.settled_at))).label("paid_at"),
        )
        .join(Payment, Payment.assignment_id == BenefitAssignment.id)
        .group_by(BenefitAssignment.offer_id)
        .subquery("bank")
    )


def _utc(moment: datetime) -> datetime:
    return as_utc(moment).astimezone(UTC)


def month_of(moment: datetime) -> str:
    """The month (YYYY-MM, Astana time) of a moment."""
    return as_utc(moment).astimezone(ASTANA).strftime("%Y-%m")


async def offer_funnel(
    *,
    session: AsyncSession,
    since: datetime,
    until: datetime,
    now: datetime,
    group_by: Sequence[str] = ("programme", "region"),
    programme: str | None = None,
    region: str | None = None,
) -> list[FunnelRow]:
    """The funnel of offers made in [since, until) as they stand at `now`, per group."""
    unknown = set(group_by) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"cannot group by {', '.join(sorted(unknown))}")
    bank = bank_confirmed()
    query = (
        select(
            Offer.programme,
            Offer.region,
            Offer.kind,
            Offer.state,
            Offer.created_at,
            Offer.expires_at,
            Offer.answered_at,
            Offer.decline_reason,
            OutboxMessage.status,
            bank.c.paid,
            bank.c.returned,
            bank.c.paid_at,
        )
        .outerjoin(OutboxMessage, OutboxMessage.id == Offer.sms_message_id)
        .outerjoin(bank, bank.c.offer_id == Offer.id)
        # In UTC: SQLite keeps times without their offset, so an Astana bound would shift.
        .where(Offer.created_at >= _utc(since), Offer.created_at < _utc(until))
    )
    if programme is not None:
        query = query.where(Offer.programme == programme)
    if region is not None:
        query = query.where(Offer.region == region)
    rows: dict[tuple[str | None, ...], FunnelRow] = {}
    waits: dict[tuple[str | None, ...], list[float]] = {}
    for offer in (await session.execute(query)).all():
        dims = {
            "programme": offer.programme,
            "region": offer.region,
            "month": month_of(offer.created_at),
        }
        key = tuple(dims[name] if name in group_by else None for name in DIMENSIONS)
        row = rows.get(key)
        if row is None:
            dimensions: dict[str, Any] = dict(zip(DIMENSIONS, key, strict=True))
            row = rows[key] = FunnelRow(**dimensions)
        _count(row, offer, now)
        if offer.paid and offer.paid_at is not None:
            waits.setdefault(key, []).append(
                (as_utc(offer.paid_at) - as_utc(offer.created_at)).total_seconds()
            )
    for key, row in rows.items():
        if key in waits:
            row.median_seconds_to_payment = statistics.median(waits[key])
    return [rows[key] for key in sorted(rows, key=lambda k: tuple(v or "" for v in k))]


def _count(row: FunnelRow, offer: Row[Any], now: datetime) -> None:
    """Add one offer to its row: the steps it reached and the one place it stands."""
    row.sent += 1
    row.delivered += offer.status == "sent"
    row.answered += offer.answered_at is not None
    row.accepted += offer.state in ACCEPTED_STATES
    state = offer.state
    if state == "offered":
        # The expiry job may not have run yet: past its deadline, the offer has expired.
        if as_utc(offer.expires_at) <= now:
            row.expired += 1
        else:
            row.open += 1
    elif state == "declined":
        row.declined += 1
        if offer.decline_reason in row.declined_for:
            row.declined_for[offer.decline_reason] += 1
    elif state == "expired":
        row.expired += 1
    elif state == "withdrawn":
        row.withdrawn += 1
    elif state == "needs_bank_account":
        row.needs_bank_account += 1
    elif offer.kind == "voucher":
        row.vouchers_issued += 1
    elif offer.paid:
        row.paid += 1
    elif offer.returned:
        row.returned += 1
    else:
        # Assigned (or consenting at this very moment): ordered, the bank has not answered.
        row.in_payment += 1


# The columns of the ministry's table (the CSV of `socialwallet report take-up`), in order.
RECORD_COLUMNS = (
    *DIMENSIONS,
    *STEPS[:-1],
    "paid",
    "vouchers_issued",
    "received",
    "take_up_rate",
    "received_rate",
    *(f"drop_to_{step}" for step in STEPS[1:]),
    "declined",
    *(f"declined_{reason.lower()}" for reason in DECLINE_REASONS),
    "declined_no_reason",
    "expired",
    "open",
    "withdrawn",
    "needs_bank_account",
    "returned",
    "in_payment",
    "median_hours_to_payment",
)
# In a record, a dimension the rows are not grouped by.
ALL = "all"


def as_record(row: FunnelRow) -> dict[str, str | int | float]:
    """The row as the ministry's table shows it (rates as fractions to 4 places)."""
    median = row.median_seconds_to_payment
    record: dict[str, str | int | float] = {
        "programme": row.programme or ALL,
        "region": row.region or ALL,
        "month": row.month or ALL,
        "paid": row.paid,
        "vouchers_issued": row.vouchers_issued,
        "take_up_rate": round(row.take_up_rate, 4),
        "received_rate": round(row.received_rate, 4),
        "declined": row.declined,
        "declined_no_reason": row.declined_without_reason,
        "expired": row.expired,
        "open": row.open,
        "withdrawn": row.withdrawn,
        "needs_bank_account": row.needs_bank_account,
        "returned": row.returned,
        "in_payment": row.in_payment,
        "median_hours_to_payment": "" if median is None else round(median / 3600, 2),
    }
    for step, number, drop in row.steps():
        record[step] = number
        if step != STEPS[0]:
            record[f"drop_to_{step}"] = drop
    for reason, number in row.declined_for.items():
        record[f"declined_{reason.lower()}"] = number
    return {column: record[column] for column in RECORD_COLUMNS}
