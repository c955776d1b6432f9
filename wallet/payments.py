"""Paying assigned benefits: payment orders to the bank, recorded in the ledger.

A payment is ordered in one transaction that (1) posts the ledger transfer from the
programme's budget account to bank payout clearing, (2) records the payment, and (3) queues
the order to the bank in the outbox. All three stand or none does. The payment's key
(assignment and month) is the ledger transfer id and the outbox message key, so ordering a
month again, by a retry or a second job, finds what is there and pays nothing twice. Each
payment names the month it covers and pays that month's amount (wallet.months): a backpay
month at the family as it was then, not at today's amount.

The bank's API taking the order is not payment: `settle_payments` marks the payment `sent`
(with the bank's reference) and nothing more. Only the bank's statement says the money
arrived (wallet.reconcile): it books the payment `paid`, and the offer it came from reaches
`paid`, or `returned`, reversed in the ledger. An order the bank refused for good is failed,
and its ledger transfer is reversed, so the books never show money that did not leave.

    ordered ──API took it──▶ sent ──statement: booked──▶ paid ──statement: returned──▶ returned
       │                       └──statement: returned──────────────────────────────▶ returned
       └──refused for good──▶ failed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Update, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.orm import utcnow
from familymap.tables import Person
from wallet import ledger
from wallet.bank import payment_order
from wallet.months import amount_for, from_json, month_of, next_month
from wallet.offer_tables import BenefitAssignment, Offer, OfferTransition, Payment
from wallet.outbox import enqueue
from wallet.outbox_tables import OutboxMessage

PAYOUT_ACCOUNT = "payout:bank"
BENEFIT_PAYMENT = "BENEFIT_PAYMENT"
PAYMENT_RETURNED = "PAYMENT_RETURNED"


def programme_account(programme: str) -> str:
    """The ledger code of a programme's budget account."""
    return f"programme:{programme}"


def due_months(*, start: date, end: date, today: date) -> list[date]:
    """The months of [start, end] that are due by `today` (a month is due from its first day)."""
    months, month = [], month_of(start)
    last = min(month_of(end), month_of(today))
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def month_amount(assignment: BenefitAssignment, month: date) -> int:
    """What the assignment pays for `month`: its month's amount as decided at consent
    (wallet.months); an assignment made before months were kept pays its single amount."""
    return amount_for(
        from_json(assignment.monthly_amounts), month, otherwise=assignment.amount_tiyn
    )


async def order_payment(
    *, session: AsyncSession, assignment: BenefitAssignment, month: date, iban: str
) -> Payment | None:
    """Order one month of an assignment (or its one-off sum) at that month's amount;
    idempotent by assignment+month. None for a month that pays nothing."""
    key = f"assignment:{assignment.id}:{month:%Y-%m}"
    existing = await session.scalar(select(Payment).where(Payment.payment_key == key))
    if existing is not None:
        return existing
    amount = month_amount(assignment, month)
    if amount <= 0:
        # The family was not entitled in that month (e.g. a backpay month before it was).
        return None
    programme = programme_account(assignment.programme)
    await ledger.open_account(session=session, code=programme, kind="budget_programme")
    await ledger.open_account(session=session, code=PAYOUT_ACCOUNT, kind="bank_payout")
    spent_on = assignment.beneficiary_person_id or assignment.recipient_person_id
    transfer = await ledger.transfer(
        session=session,
        transfer_id=f"payment:{key}",
        debit=programme,
        credit=PAYOUT_ACCOUNT,
        amount=amount,
        reason=BENEFIT_PAYMENT,
        metadata={
            "payment_key": key,
            "programme": assignment.programme,
            "for_month": f"{month:%Y-%m}",
        },
        family_id=assignment.family_id,
        person_id=spent_on,
    )
    order = await enqueue(
        session=session,
        message_key=f"payment:{key}",
        channel="bank",
        recipient=iban,
        body=payment_order(
            payment_key=key,
            iban=iban,
            amount_tiyn=amount,
            programme=assignment.programme,
            for_month=f"{month:%Y-%m}",
        ),
    )
    payment = Payment(
        payment_key=key,
        assignment_id=assignment.id,
        family_id=assignment.family_id,
        person_id=assignment.recipient_person_id,
        programme=assignment.programme,
        for_month=month,
        amount_tiyn=amount,
        iban=iban,
        state="ordered",
        transfer_id=transfer.transfer_id,
        order_message_id=order.id,
    )
    session.add(payment)
    await session.flush()
    return payment


async def order_assignment_payments(
    *, session: AsyncSession, assignment: BenefitAssignment, iban: str, today: date
) -> list[Payment]:
    """Order every month of an assignment that is due by `today` and not yet ordered, each
    at its own amount (a month that pays nothing is skipped)."""
    if assignment.schedule == "one_off":
        months = [month_of(assignment.period_start)]
    else:
        months = due_months(start=assignment.period_start, end=assignment.period_end, today=today)
    payments = []
    for month in months:
        payment = await order_payment(
            session=session, assignment=assignment, month=month, iban=iban
        )
        if payment is not None:
            payments.append(payment)
    return payments


@dataclass
class PaymentRunSummary:
    assignments: int = 0
    ordered: int = 0


async def order_due_payments(*, session: AsyncSession, today: date) -> PaymentRunSummary:
    """Order the months now due of every monthly assignment still running, and of one that
    ended within the year with its last month not ordered (a daily job: a month is owed even
    if the job did not run while it was the current one)."""
    summary = PaymentRunSummary()
    this_month = month_of(today)
    found = (
        await session.execute(
            # The registry holds the current IBAN: a changed account is paid from then on.
            select(BenefitAssignment, Person.iban, func.max(Payment.for_month))
            .join(Person, Person.id == BenefitAssignment.recipient_person_id)
            .outerjoin(Payment, Payment.assignment_id == BenefitAssignment.id)
            .where(
                BenefitAssignment.schedule == "monthly",
                BenefitAssignment.period_end >= this_month - timedelta(days=366),
            )
            .group_by(BenefitAssignment.id, Person.iban)
            .order_by(BenefitAssignment.id)
        )
    ).all()
    # An ended assignment whose last month was ordered is done.
    rows = [
        (assignment, iban)
        for assignment, iban, last_ordered in found
        if assignment.period_end >= this_month
        or last_ordered is None
        or last_ordered < month_of(assignment.period_end)
    ]
    for assignment, iban in rows:
        if not iban:
            continue
        summary.assignments += 1
        before = await session.scalar(
            select(Payment.id)
            .where(Payment.assignment_id == assignment.id)
            .order_by(Payment.id.desc())
            .limit(1)
        )
        payments = await order_assignment_payments(
            session=session, assignment=assignment, iban=iban, today=today
        )
        summary.ordered += sum(1 for p in payments if before is None or p.id > before)
    return summary


@dataclass
class SettleSummary:
    sent: int = 0
    failed: int = 0


async def settle_payments(*, session: AsyncSession, now: datetime | None = None) -> SettleSummary:
    """Mark ordered payments sent (the bank's API took the order) or failed (it never will)."""
    now = now or utcnow()
    summary = SettleSummary()
    rows = (
        await session.execute(
            select(
                Payment,
                OutboxMessage.status,
                OutboxMessage.sent_at,
                OutboxMessage.gateway_message_id,
            )
            .join(OutboxMessage, OutboxMessage.id == Payment.order_message_id)
            .where(Payment.state == "ordered", OutboxMessage.status.in_(("sent", "failed", "dead")))
            .order_by(Payment.id)
        )
    ).all()
    for payment, status, sent_at, bank_reference in rows:
        # Accepted is not paid: the payment waits in `sent` for the bank's statement.
        values = (
            {"state": "sent", "sent_at": sent_at or now, "bank_reference": bank_reference}
            if status == "sent"
            else {"state": "failed", "settled_at": now}
        )
        # Conditional, so that two settling jobs cannot both reverse a failed payment, and a
        # statement imported meanwhile is not overwritten.
        moved = await _execute_update(
            session,
            update(Payment)
            .where(Payment.id == payment.id, Payment.state == "ordered")
            .values(**values)
            .execution_options(synchronize_session=False),
        )
        if moved.rowcount != 1:
            continue
        if status == "sent":
            summary.sent += 1
            continue
        await ledger.reverse(
            session=session,
            transfer_id=f"{payment.transfer_id}:returned",
            original_transfer_id=payment.transfer_id,
            reason=PAYMENT_RETURNED,
        )
        summary.failed += 1
    return summary


async def mark_offer_paid(*, session: AsyncSession, assignment_id: int, now: datetime) -> None:
    """The first payment of an assignment the bank booked completes its offer."""
    offer_id = await session.scalar(
        select(BenefitAssignment.offer_id).where(BenefitAssignment.id == assignment_id)
    )
    moved = await _execute_update(
        session,
        update(Offer)
        .where(Offer.id == offer_id, Offer.state == "assigned")
        .values(state="paid", paid_at=now)
        .execution_options(synchronize_session=False),
    )
    if moved.rowcount == 1:
        session.add(
            OfferTransition(
                offer_id=offer_id, from_state="assigned", to_state="paid", channel="system", at=now
            )
        )


async def unmark_offer_paid(
    *, session: AsyncSession, assignment_id: int, now: datetime, detail: dict[str, str]
) -> None:
    """An offer whose every booked payment came back is no longer paid: back to `assigned`."""
    still_paid = await session.scalar(
        select(Payment.id)
        .where(Payment.assignment_id == assignment_id, Payment.state == "paid")
        .limit(1)
    )
    if still_paid is not None:
        return
    offer_id = await session.scalar(
        select(BenefitAssignment.offer_id).where(BenefitAssignment.id == assignment_id)
    )
    moved = await _execute_update(
        session,
        update(Offer)
        .where(Offer.id == offer_id, Offer.state == "paid")
        .values(state="assigned", paid_at=None)
        .execution_options(synchronize_session=False),
    )
    if moved.rowcount == 1:
        session.add(
            OfferTransition(
                offer_id=offer_id,
                from_state="paid",
                to_state="assigned",
                channel="system",
                at=now,
                detail=detail,
            )
        )


async def _execute_update(session: AsyncSession, statement: Update) -> CursorResult[Any]:
    """Run an UPDATE; its result is a cursor's (SQLAlchemy types it as a plain Result)."""
    return cast(CursorResult[Any], await session.execute(statement))
