"""Tables of the proactive flow: offers and their history, benefit assignments, payments,
notifications, inbound SMS replies and the idempotency records of mutations.

An offer moves through these states (every move is a row of `offer_transitions`, with the
time and the channel it came by):

    offered ──accept──▶ accepted ──eligible, IBAN on file──▶ assigned ◀─────────────▶ paid
       │                   │                                  first payment booked by the bank;
       │                   │                                  back if every booked one returned
       │                   ├──eligible, no IBAN──▶ needs_bank_account ──IBAN added──▶ assigned
       │                   └──no longer eligible at consent──▶ withdrawn
       ├──decline──▶ declined ──accept before the deadline──▶ accepted
       └──not answered in time──▶ expired

`accepted` lasts only inside the consenting transaction, but it is recorded, so the history
shows the consent itself apart from what followed it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from familymap.orm import Base, PortableJSON, utcnow
from familymap.tables import BigId

OFFER_STATES = (
    "offered",
    "accepted",
    "declined",
    "expired",
    "needs_bank_account",
    "assigned",
    "paid",
    "withdrawn",
)
OPEN_STATES = ("offered",)
CHANNELS = ("system", "sms", "app", "operator")
# ordered: queued for the bank; sent: the bank's API took the order; paid or returned: the
# bank's statement says so (wallet.reconcile); failed: the bank refused the order for good.
PAYMENT_STATES = ("ordered", "sent", "paid", "returned", "failed")
# Why a person declined, if they said (in the app, or by SMS "2 <code> <digit>"): the digit
# is the reason's place in this tuple, counted from 1 (wallet.inbound, docs/funnel.md).
DECLINE_REASONS = ("NOT_NEEDED", "WRONG_DATA", "DO_NOT_TRUST_SMS", "OTHER")
SCHEDULES = ("one_off", "monthly", "in_kind")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Offer(Base):
    """A proactive offer of one programme to one person for one entitlement period.

    `offer_key` (programme, family, beneficiary, period start) is unique: re-running
    eligibility finds the offer already there and never makes a second one.
    """

    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint(_in("state", OFFER_STATES), name="state"),
        CheckConstraint("amount_tiyn >= 0", name="amount"),
        Index("ix_offers_recipient_person_id_state", "recipient_person_id", "state"),
        Index("ix_offers_phone_state", "phone", "state"),
        Index("ix_offers_state_expires_at", "state", "expires_at"),
        Index("ix_offers_programme_created_at", "programme", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    offer_key: Mapped[str] = mapped_column(String(128), unique=True)
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    # Whom the programme is for (a child, a person with a disability); None for a programme
    # of the whole family.
    beneficiary_person_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("persons.id"))
    # Who is asked, consents and is paid: the beneficiary if an adult, else a parent.
    recipient_person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"))
    programme: Mapped[str] = mapped_column(String(48))
    kind: Mapped[str] = mapped_column(String(8))  # benefit | voucher
    region: Mapped[str] = mapped_column(String(32))
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    # What each month of the period pays, quoted at the offer and again at consent
    # (wallet.months): [{"month", "amount_tiyn", "as_of"}], empty for a voucher.
    monthly_amounts: Mapped[list[dict[str, Any]]] = mapped_column(
        PortableJSON, default=list, server_default=text("'[]'")
    )
    state: Mapped[str] = mapped_column(String(20), default="offered")
    # The phone the offer SMS went to: only a reply from this number answers it. None when
    # the recipient has no phone on file (the offer is then in the app only).
    phone: Mapped[str | None] = mapped_column(String(16))
    # The code the offer's SMS asks the reply to carry ("1 4821"), unique among the offers
    # sent to that phone, so a reply answers the offer it names and no other
    # (wallet.reply_codes). None for an offer without an SMS, or made before codes existed.
    reply_code: Mapped[str | None] = mapped_column(String(8))
    language: Mapped[str] = mapped_column(String(2))
    source_change_id: Mapped[int | None] = mapped_column(BigId)
    # The next period of an entitlement offered before (wallet.offered): its SMS and the app
    # say so.
    renewal: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The offer's SMS in the outbox, whose delivery status the funnel reports.
    sms_message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("outbox_messages.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    answer_channel: Mapped[str | None] = mapped_column(String(8))
    paid_at: Mapped[datetime | None] = mapped_column()
    # Why the offer was withdrawn at consent (the condition that no longer held).
    note: Mapped[str | None] = mapped_column(String(300))
    # Why it was declined, when the person said (one of DECLINE_REASONS); for the funnel.
    decline_reason: Mapped[str | None] = mapped_column(String(24))


class OfferTransition(Base):
    """One move of an offer from a state to another: when, by which channel, and why."""

    __tablename__ = "offer_transitions"
    __table_args__ = (
        CheckConstraint(_in("to_state", OFFER_STATES), name="to_state"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        Index("ix_offer_transitions_offer_id", "offer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    offer_id: Mapped[int] = mapped_column(BigId, ForeignKey("offers.id"))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(
        PortableJSON, default=dict, server_default=text("'{}'")
    )


class BenefitAssignment(Base):
    """A benefit assigned after consent: how much, for which period, paid on which schedule."""

    __tablename__ = "benefit_assignments"
    __table_args__ = (
        CheckConstraint(_in("schedule", SCHEDULES), name="schedule"),
        CheckConstraint("amount_tiyn >= 0", name="amount"),
        Index("ix_benefit_assignments_family_id", "family_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    offer_id: Mapped[int] = mapped_column(BigId, ForeignKey("offers.id"), unique=True)
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    recipient_person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"))
    beneficiary_person_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("persons.id"))
    programme: Mapped[str] = mapped_column(String(48))
    # The whole sum for a one-off; for a monthly benefit, the monthly sum decided at consent.
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    # What each month pays, as decided at consent (wallet.months); a payment takes its
    # month's amount from here.
    monthly_amounts: Mapped[list[dict[str, Any]]] = mapped_column(
        PortableJSON, default=list, server_default=text("'[]'")
    )
    schedule: Mapped[str] = mapped_column(String(8))
    # The eligibility run that re-checked the family at consent.
    run_id: Mapped[int | None] = mapped_column(BigId)
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class Payment(Base):
    """One payment order of an assignment to the recipient's bank account.

    `payment_key` (assignment and month) is unique, so a month is never ordered twice; the
    ledger transfer and the bank order carry the same key, and the bank's statement names it
    as the entry's end-to-end id.
    """

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(_in("state", PAYMENT_STATES), name="state"),
        CheckConstraint("amount_tiyn > 0", name="amount"),
        Index("ix_payments_family_id", "family_id"),
        Index("ix_payments_state_ordered_at", "state", "ordered_at"),
        # The family's payment list finds a ledger transfer's payment by it.
        Index("ix_payments_transfer_id", "transfer_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_key: Mapped[str] = mapped_column(String(96), unique=True)
    assignment_id: Mapped[int] = mapped_column(BigId, ForeignKey("benefit_assignments.id"))
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"))
    programme: Mapped[str] = mapped_column(String(48))
    for_month: Mapped[date] = mapped_column(Date)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    iban: Mapped[str] = mapped_column(String(34))
    state: Mapped[str] = mapped_column(String(8), default="ordered")
    transfer_id: Mapped[str] = mapped_column(String(128))
    # The order in the outbox (bank channel): its delivery makes the payment `sent`.
    order_message_id: Mapped[int] = mapped_column(BigId, ForeignKey("outbox_messages.id"))
    ordered_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the bank's API took the order, and the reference it answered with.
    sent_at: Mapped[datetime | None] = mapped_column()
    bank_reference: Mapped[str | None] = mapped_column(String(128))
    # When the payment reached its end: booked paid or returned on the bank's statement, or
    # refused for good (failed).
    settled_at: Mapped[datetime | None] = mapped_column()


class Notification(Base):
    """A notice to a person (pension age, kandas expiry, employment measures), in the app and
    by SMS. `fact_key` is unique: one fact is never notified twice."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_person_id", "person_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fact_key: Mapped[str] = mapped_column(String(128), unique=True)
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"))
    programme: Mapped[str] = mapped_column(String(48))
    about_date: Mapped[date | None] = mapped_column(Date)
    language: Mapped[str] = mapped_column(String(2))
    body: Mapped[str] = mapped_column(Text)
    sms_queued: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column()


class InboundSms(Base):
    """A reply received on 1414, kept with what it did. The gateway's message id is unique,
    so a webhook delivered twice is answered from here and changes nothing the second time."""

    __tablename__ = "inbound_sms"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gateway_message_id: Mapped[str] = mapped_column(String(128), unique=True)
    # The sender's number masked: enough to read the log, not enough to call back.
    sender_masked: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(String(500))
    outcome: Mapped[str] = mapped_column(String(24))
    offer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("offers.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    """The first result of a mutation under a caller's idempotency key.

    The same key again with the same input returns `result`; with other input it is refused.
    Keys are scoped by caller and operation, so two citizens cannot collide.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("subject", "operation", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(48))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WalletCursor(Base):
    """How far a job has read an append-only table (the offer job reads entitlement_changes)."""

    __tablename__ = "wallet_cursors"

    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
