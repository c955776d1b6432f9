"""The bank's side of payments: the entries of the payout account's statements, as imported.

An entry is keyed by the bank's own reference for it within the account, so importing a
statement again (or one that overlaps the last) finds its entries there and changes nothing.
Each entry keeps what reconciliation made of it: a payment paid or returned, or a flag for
the operator (an entry that matches no payment, or does not match the one it names).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from familymap.orm import Base, utcnow
from familymap.tables import BigId

DIRECTIONS = ("debit", "credit")
# paid / returned: the entry settled a payment. The rest are flags: the money moved, but not
# as the books expect, and someone must look.
OUTCOMES = (
    "paid",
    "returned",
    "unknown_reference",
    "wrong_amount",
    "paid_twice",
    "unexpected",
)
FLAGS = OUTCOMES[2:]


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class BankStatementEntry(Base):
    """One booked line of the payout account's statement and what it did."""

    __tablename__ = "bank_statement_entries"
    __table_args__ = (
        CheckConstraint(_in("direction", DIRECTIONS), name="direction"),
        CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
        CheckConstraint("amount_tiyn >= 0", name="amount"),
        UniqueConstraint("account", "reference"),
        Index("ix_bank_statement_entries_payment_id", "payment_id"),
        Index("ix_bank_statement_entries_outcome", "outcome"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The statement's account (our payout IBAN) and the bank's reference for the entry.
    account: Mapped[str] = mapped_column(String(34))
    reference: Mapped[str] = mapped_column(String(128))
    statement_id: Mapped[str] = mapped_column(String(64))
    booked_on: Mapped[date] = mapped_column(Date)
    direction: Mapped[str] = mapped_column(String(6))
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Our payment key as the bank echoes it (ISO 20022 EndToEndId); None if it gave none.
    end_to_end_id: Mapped[str | None] = mapped_column(String(128))
    # The bank's reason code for a return (ISO 20022 external return reason: AC04, ...).
    return_reason: Mapped[str | None] = mapped_column(String(8))
    payment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("payments.id"))
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(String(300))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
