"""Tables of the ledger of state spending: accounts and the transfers between them.

The ledger is double-entry and append-only, after TigerBeetle's data model. A transfer moves
one integer amount (tiyn) from one account (debited) to another (credited), so every transfer
balances by construction; an account keeps the running totals of what was debited from it
and credited to it, and its balance is `credits_posted - debits_posted`.

Transfers are never updated or deleted (database triggers refuse it, see migration 0002); a
mistake is corrected by a new transfer that reverses it. The database also refuses any
balance below zero on an account that is not allowed one, whatever code wrote it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from familymap.orm import Base, PortableJSON, utcnow
from familymap.tables import BigId

# What an account is, which decides where its value may flow (see wallet.ledger.FLOWS):
# - budget_programme: a programme's budget, the source of all value; its balance goes
#   negative by what it has paid out;
# - purpose_wallet: a person's (or family's) non-cashable wallet for one purpose;
# - merchant: a school, pharmacy or supplier that redeems purpose-bound value;
# - bank_payout: clearing for cash benefits paid out to bank accounts;
# - settlement: clearing for invoices paid to merchants.
ACCOUNT_KINDS = ("budget_programme", "purpose_wallet", "merchant", "bank_payout", "settlement")
PURPOSES = ("school_meals", "medicines", "technical_aids")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LedgerAccount(Base):
    """An account of the ledger, with the totals posted to it so far."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(_in("kind", ACCOUNT_KINDS), name="kind"),
        CheckConstraint(_in("purpose", PURPOSES), name="purpose"),
        # Purpose-bound kinds name their purpose; the cash clearing kinds have none.
        CheckConstraint(
            "kind NOT IN ('purpose_wallet', 'merchant') OR purpose IS NOT NULL",
            name="purpose_required",
        ),
        CheckConstraint(
            "kind NOT IN ('bank_payout', 'settlement') OR purpose IS NULL",
            name="purpose_forbidden",
        ),
        CheckConstraint("debits_posted >= 0 AND credits_posted >= 0", name="posted"),
        # Only a budget programme, the source of value, may be overdrawn; so a purpose wallet
        # never is, whatever statement wrote to it. This is the last line of defence: the
        # ledger's conditional UPDATE refuses an overdraft before it gets here.
        CheckConstraint("NOT may_go_negative OR kind = 'budget_programme'", name="negative_kind"),
        CheckConstraint(
            "may_go_negative OR credits_posted - debits_posted >= 0", name="balance_floor"
        ),
        Index("ix_ledger_accounts_family_id", "family_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # A stable, readable key: "programme:SCHOOL_MEALS", "person:<id>:school_meals",
    # "merchant:<uuid>", "payout:bank".
    code: Mapped[str] = mapped_column(String(96), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str | None] = mapped_column(String(16))
    # Family-owned wallet accounts carry the family's id, the key a sharded database would
    # distribute by, so that a family's accounts live with its registry rows.
    family_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("persons.id"))
    may_go_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def balance(self) -> int:
        """What the account holds: credits less debits (negative for a programme that paid)."""
        return self.credits_posted - self.debits_posted


class LedgerTransfer(Base):
    """One immutable movement of `amount` tiyn from the debit to the credit account.

    `transfer_id` is the client's own id and the idempotency key: posting it again with the
    same content returns this row. A reversal names the transfer it undoes in
    `reverses_transfer_id`, which is unique, so a transfer is reversed at most once.
    """

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
        CheckConstraint("reason <> ''", name="reason"),
        Index("ix_ledger_transfers_debit_account_id", "debit_account_id"),
        Index("ix_ledger_transfers_credit_account_id", "credit_account_id"),
        Index("ix_ledger_transfers_family_id_created_at", "family_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transfer_id: Mapped[str] = mapped_column(String(128), unique=True)
    debit_account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    reverses_transfer_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("ledger_transfers.id"), unique=True
    )
    # The family (and member) the value was spent on, where there is one: a benefit paid to
    # a person, a meal served to a child. The family's spending view reads these columns
    # instead of walking accounts, and they are set by whoever posts the transfer.
    family_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("persons.id"))
    # `metadata` is taken on declarative classes, so the attribute has another name.
    details: Mapped[dict[str, Any]] = mapped_column(
        "metadata", PortableJSON, default=dict, server_default=text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
