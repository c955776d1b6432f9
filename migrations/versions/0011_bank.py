"""bank: payments are sent until the bank's statement says paid or returned; statement entries

Revision ID: 0011_bank
Revises: 0010_funnel
Create Date: 2026-12-02 08:00:00

The bank's API taking an order no longer makes a payment paid: it is `sent` (with the time and
the bank's reference) until an imported statement books it `paid` or `returned`. Payments
already `paid` by the old rule stay paid: nothing tells them apart now, and the operator's
unreconciled list starts from the new ones. The statement entries are kept, keyed by the
account and the bank's reference, so a statement imported twice changes nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_bank"
down_revision: str | None = "0010_funnel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NEW_STATES = "state IN ('ordered', 'sent', 'paid', 'returned', 'failed')"
_OLD_STATES = "state IN ('ordered', 'paid', 'failed')"


def upgrade() -> None:
    op.drop_index("ix_payments_state", table_name="payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("ck_payments_state"), type_="check")
        batch.create_check_constraint(op.f("ck_payments_state"), _NEW_STATES)
        batch.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("bank_reference", sa.String(length=128), nullable=True))
    op.create_index("ix_payments_state_ordered_at", "payments", ["state", "ordered_at"])
    op.create_index("ix_payments_transfer_id", "payments", ["transfer_id"], unique=True)
    op.create_table(
        "bank_statement_entries",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("account", sa.String(length=34), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("statement_id", sa.String(length=64), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("direction", sa.String(length=6), nullable=False),
        sa.Column("amount_tiyn", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=128), nullable=True),
        sa.Column("return_reason", sa.String(length=8), nullable=True),
        sa.Column("payment_id", _BIG_ID, nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "direction IN ('debit', 'credit')", name=op.f("ck_bank_statement_entries_direction")
        ),
        sa.CheckConstraint(
            "outcome IN ('paid', 'returned', 'unknown_reference', 'wrong_amount', "
            "'paid_twice', 'unexpected')",
            name=op.f("ck_bank_statement_entries_outcome"),
        ),
        sa.CheckConstraint("amount_tiyn >= 0", name=op.f("ck_bank_statement_entries_amount")),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_bank_statement_entries_payment_id_payments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_statement_entries")),
        sa.UniqueConstraint(
            "account", "reference", name=op.f("uq_bank_statement_entries_account_reference")
        ),
    )
    op.create_index(
        "ix_bank_statement_entries_payment_id", "bank_statement_entries", ["payment_id"]
    )
    op.create_index("ix_bank_statement_entries_outcome", "bank_statement_entries", ["outcome"])


def downgrade() -> None:
    op.drop_index("ix_bank_statement_entries_outcome", table_name="bank_statement_entries")
    op.drop_index("ix_bank_statement_entries_payment_id", table_name="bank_statement_entries")
    op.drop_table("bank_statement_entries")
    op.drop_index("ix_payments_transfer_id", table_name="payments")
    op.drop_index("ix_payments_state_ordered_at", table_name="payments")
    # The old states cannot hold `sent` or `returned`: a sent payment was `paid` by the old
    # rule; a returned one was reversed in the ledger like a failed order.
    op.execute("UPDATE payments SET state = 'paid' WHERE state = 'sent'")
    op.execute("UPDATE payments SET state = 'failed' WHERE state = 'returned'")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("bank_reference")
        batch.drop_column("sent_at")
        batch.drop_constraint(op.f("ck_payments_state"), type_="check")
        batch.create_check_constraint(op.f("ck_payments_state"), _OLD_STATES)
    op.create_index("ix_payments_state", "payments", ["state"])
