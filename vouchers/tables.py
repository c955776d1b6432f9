"""Tables of the vouchers: merchants, meal vouchers and redemptions, prescriptions and
dispensings, feedback, monthly acts and invoices.

Double spending is refused by the database itself: a meal is unique per (voucher, day, meal
type), a QR token's nonce is unique, a merchant's idempotency key is unique (per merchant: one
school cannot use up another's keys), and the value moves
through the ledger's conditional UPDATE in the same transaction as the redemption row.
Every family-owned row carries `family_id`, the key a sharded database would distribute by.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from familymap.orm import Base, PortableJSON, new_id, utcnow
from familymap.tables import BigId

# A merchant's category is the ledger purpose it may redeem (wallet.tables.PURPOSES).
MERCHANT_CATEGORIES = ("school_meals", "medicines")
MEAL_TYPES = ("breakfast", "lunch")
IDENTITY_METHODS = ("egov_qr", "face_id", "fallback")
# Why a pharmacy fell back from eGov QR and Face-ID (with a written account besides).
FALLBACK_REASONS = ("no_smartphone", "face_id_failed", "camera_unavailable", "egov_unavailable")
ACT_STATES = ("draft", "submitted", "approved")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Merchant(Base):
    """A school canteen or a pharmacy/polyclinic; its id is its staff tokens' subject."""

    __tablename__ = "merchants"
    __table_args__ = (CheckConstraint(_in("category", MERCHANT_CATEGORIES), name="category"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The code the source system knows it by: a school's code from the education system is
    # what `persons.school_id` holds for its pupils.
    external_code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def account_code(self) -> str:
        """The merchant's business-wallet account in the ledger."""
        return f"merchant:{self.id}"


class MealVoucher(Base):
    """A child's school-meals voucher for one school year, funded into the child's wallet."""

    __tablename__ = "meal_vouchers"
    __table_args__ = (
        UniqueConstraint("person_id", "school_year_start"),
        Index("ix_meal_vouchers_family_id", "family_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"))
    school_year_start: Mapped[date] = mapped_column(Date)
    school_year_end: Mapped[date] = mapped_column(Date)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    consented_by_person_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("persons.id"))
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MealRedemption(Base):
    """One meal served to a child by a school canteen: the voucher's value moved in the ledger."""

    __tablename__ = "meal_redemptions"
    __table_args__ = (
        # At most one meal of a type per child and day: the double-spend guard.
        UniqueConstraint("voucher_id", "service_date", "meal_type"),
        # The canteen's own id of this redemption: a replay returns the first result.
        UniqueConstraint("merchant_id", "idempotency_key"),
        CheckConstraint(_in("meal_type", MEAL_TYPES), name="meal_type"),
        CheckConstraint("method IN ('qr', 'list')", name="method"),
        CheckConstraint("price_tiyn > 0", name="price"),
        Index("ix_meal_redemptions_merchant_id_service_date", "merchant_id", "service_date"),
        Index("ix_meal_redemptions_person_id", "person_id"),
        Index("ix_meal_redemptions_family_id", "family_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    voucher_id: Mapped[int] = mapped_column(BigId, ForeignKey("meal_vouchers.id"))
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"))
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    service_date: Mapped[date] = mapped_column(Date)
    meal_type: Mapped[str] = mapped_column(String(16))
    price_tiyn: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(8))
    # A QR token is single use: its nonce is recorded with the meal it paid for.
    qr_nonce: Mapped[str | None] = mapped_column(String(64), unique=True)
    transfer_id: Mapped[str] = mapped_column(String(128))
    # The school's local day it was claimed on: after `service_date`, a late claim (list or
    # offline meals, within the claim window), which the month's act shows.
    claimed_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MedicineVoucher(Base):
    """A person's medicines voucher for one month, funded into the person's wallet."""

    __tablename__ = "medicine_vouchers"
    __table_args__ = (UniqueConstraint("person_id", "period_start"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    consented_by_person_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("persons.id"))
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prescription(Base):
    """An e-prescription from the health system; `dispensed_quantity` only grows, up to
    `quantity`, by a conditional UPDATE."""

    __tablename__ = "prescriptions"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint(
            "dispensed_quantity >= 0 AND dispensed_quantity <= quantity", name="dispensed"
        ),
        CheckConstraint("unit_price_tiyn > 0", name="unit_price"),
        Index("ix_prescriptions_person_id", "person_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The health system's id of the prescription: pushing it again is a replay.
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"))
    drug_code: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    # What the state reimburses per unit (our model: the health system sends it).
    unit_price_tiyn: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[date] = mapped_column(Date)
    prescribing_org: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(64))
    dispensed_quantity: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dispensing(Base):
    """Medicine dispensed by a pharmacy against a prescription, with the identity check."""

    __tablename__ = "dispensings"
    __table_args__ = (
        CheckConstraint(_in("identity_method", IDENTITY_METHODS), name="identity_method"),
        # The audited fallback is allowed only with its reason written down.
        CheckConstraint(
            "identity_method <> 'fallback' OR identity_reason IS NOT NULL", name="fallback_reason"
        ),
        CheckConstraint(_in("identity_reason_code", FALLBACK_REASONS), name="reason_code"),
        CheckConstraint("quantity > 0", name="quantity"),
        # The pharmacy's own id of the dispensing, per pharmacy: a replay returns the first.
        UniqueConstraint("merchant_id", "idempotency_key"),
        Index("ix_dispensings_merchant_id_service_date", "merchant_id", "service_date"),
        Index("ix_dispensings_person_id", "person_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    prescription_id: Mapped[int] = mapped_column(BigId, ForeignKey("prescriptions.id"))
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"))
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    drug_code: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    identity_method: Mapped[str] = mapped_column(String(16))
    identity_reason: Mapped[str | None] = mapped_column(String(500))
    # One of FALLBACK_REASONS for a fallback (null before migration 0009 and otherwise).
    identity_reason_code: Mapped[str | None] = mapped_column(String(32))
    service_date: Mapped[date] = mapped_column(Date)
    transfer_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Feedback(Base):
    """A family's rating of one service event (a meal or a dispensing); one per event."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("event_kind", "event_id"),
        CheckConstraint("event_kind IN ('meal', 'dispensing')", name="event_kind"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
        Index("ix_feedback_merchant_id_service_date", "merchant_id", "service_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_kind: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[int] = mapped_column(BigInteger)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    author_person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"))
    service_date: Mapped[date] = mapped_column(Date)
    rating: Mapped[int] = mapped_column(SmallInteger)
    tags: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MerchantAct(Base):
    """A monthly act of services rendered by one merchant; `sequence` 0 is the month's act,
    1.. its adjustment acts. Approved acts never change (conditional UPDATEs on `status`)."""

    __tablename__ = "merchant_acts"
    __table_args__ = (
        UniqueConstraint("merchant_id", "month", "sequence"),
        CheckConstraint(_in("status", ACT_STATES), name="status"),
        CheckConstraint("(sequence = 0) = (adjusts_act_id IS NULL)", name="adjustment"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    month: Mapped[date] = mapped_column(Date)
    sequence: Mapped[int] = mapped_column(SmallInteger, default=0)
    adjusts_act_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("merchant_acts.id"))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # [{"day": "2026-11-02", "services": 12, "amount_tiyn": 912000}, ...]
    lines: Mapped[list[dict[str, Any]]] = mapped_column(PortableJSON, default=list)
    services: Mapped[int] = mapped_column(Integer, default=0)
    total_tiyn: Mapped[int] = mapped_column(BigInteger, default=0)
    feedback_count: Mapped[int] = mapped_column(Integer, default=0)
    # Average rating × 100, an integer so that it compares exactly with its threshold.
    feedback_average_x100: Mapped[int | None] = mapped_column(Integer)
    # The sum of the ratings counted, so that an adjustment act reports only the feedback its
    # predecessors did not (None on acts drawn before it was kept).
    feedback_rating_total: Mapped[int | None] = mapped_column(Integer)
    complaints: Mapped[int] = mapped_column(Integer, default=0)
    flagged_for_review: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reasons: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    submitted_at: Mapped[datetime | None] = mapped_column()
    approved_at: Mapped[datetime | None] = mapped_column()
    approved_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Invoice(Base):
    """The payment claim built on one approved act, for exactly its total."""

    __tablename__ = "invoices"
    __table_args__ = (CheckConstraint("status IN ('issued', 'paid')", name="status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    act_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchant_acts.id"), unique=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(8), default="issued")
    transfer_id: Mapped[str | None] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column()
