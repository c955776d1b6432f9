"""offers: proactive offers, consent, assignments, payments, notices, inbound SMS

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 06:22:57.276087
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=48), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint(
            "subject", "operation", "key", name=op.f("uq_idempotency_records_subject_operation_key")
        ),
    )
    op.create_table(
        "wallet_cursors",
        sa.Column("name", sa.String(length=48), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_wallet_cursors")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fact_key", sa.String(length=128), nullable=False),
        sa.Column(
            "family_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("programme", sa.String(length=48), nullable=False),
        sa.Column("about_date", sa.Date(), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sms_queued", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_notifications_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_notifications_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("fact_key", name=op.f("uq_notifications_fact_key")),
    )
    op.create_index("ix_notifications_person_id", "notifications", ["person_id"])

    op.create_table(
        "offers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("offer_key", sa.String(length=128), nullable=False),
        sa.Column(
            "family_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "beneficiary_person_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "recipient_person_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("programme", sa.String(length=48), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("amount_tiyn", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column(
            "source_change_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "sms_message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_channel", sa.String(length=8), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.CheckConstraint(
            "state IN ('offered', 'accepted', 'declined', 'expired', 'needs_bank_account', 'assigned', 'paid', 'withdrawn')",
            name=op.f("ck_offers_state"),
        ),
        sa.CheckConstraint("amount_tiyn >= 0", name=op.f("ck_offers_amount")),
        sa.ForeignKeyConstraint(
            ["beneficiary_person_id"],
            ["persons.id"],
            name=op.f("fk_offers_beneficiary_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_offers_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["recipient_person_id"],
            ["persons.id"],
            name=op.f("fk_offers_recipient_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["sms_message_id"],
            ["outbox_messages.id"],
            name=op.f("fk_offers_sms_message_id_outbox_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
        sa.UniqueConstraint("offer_key", name=op.f("uq_offers_offer_key")),
    )
    op.create_index("ix_offers_phone_state", "offers", ["phone", "state"])
    op.create_index("ix_offers_programme_created_at", "offers", ["programme", "created_at"])
    op.create_index(
        "ix_offers_recipient_person_id_state", "offers", ["recipient_person_id", "state"]
    )
    op.create_index("ix_offers_state_expires_at", "offers", ["state", "expires_at"])

    op.create_table(
        "benefit_assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("offer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "family_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "recipient_person_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "beneficiary_person_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("programme", sa.String(length=48), nullable=False),
        sa.Column("amount_tiyn", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("schedule", sa.String(length=8), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "schedule IN ('one_off', 'monthly', 'in_kind')",
            name=op.f("ck_benefit_assignments_schedule"),
        ),
        sa.CheckConstraint("amount_tiyn >= 0", name=op.f("ck_benefit_assignments_amount")),
        sa.ForeignKeyConstraint(
            ["beneficiary_person_id"],
            ["persons.id"],
            name=op.f("fk_benefit_assignments_beneficiary_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_benefit_assignments_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_benefit_assignments_offer_id_offers")
        ),
        sa.ForeignKeyConstraint(
            ["recipient_person_id"],
            ["persons.id"],
            name=op.f("fk_benefit_assignments_recipient_person_id_persons"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit_assignments")),
        sa.UniqueConstraint("offer_id", name=op.f("uq_benefit_assignments_offer_id")),
    )
    op.create_index("ix_benefit_assignments_family_id", "benefit_assignments", ["family_id"])

    op.create_table(
        "inbound_sms",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gateway_message_id", sa.String(length=128), nullable=False),
        sa.Column("sender_masked", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("offer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_inbound_sms_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_sms")),
        sa.UniqueConstraint("gateway_message_id", name=op.f("uq_inbound_sms_gateway_message_id")),
    )
    op.create_table(
        "offer_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("offer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "channel IN ('system', 'sms', 'app', 'operator')",
            name=op.f("ck_offer_transitions_channel"),
        ),
        sa.CheckConstraint(
            "to_state IN ('offered', 'accepted', 'declined', 'expired', 'needs_bank_account', 'assigned', 'paid', 'withdrawn')",
            name=op.f("ck_offer_transitions_to_state"),
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_transitions_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_transitions")),
    )
    op.create_index("ix_offer_transitions_offer_id", "offer_transitions", ["offer_id"])

    op.create_table(
        "payments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("payment_key", sa.String(length=96), nullable=False),
        sa.Column(
            "assignment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "family_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("programme", sa.String(length=48), nullable=False),
        sa.Column("for_month", sa.Date(), nullable=False),
        sa.Column("amount_tiyn", sa.BigInteger(), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("transfer_id", sa.String(length=128), nullable=False),
        sa.Column(
            "order_message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('ordered', 'paid', 'failed')", name=op.f("ck_payments_state")
        ),
        sa.CheckConstraint("amount_tiyn > 0", name=op.f("ck_payments_amount")),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["benefit_assignments.id"],
            name=op.f("fk_payments_assignment_id_benefit_assignments"),
        ),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_payments_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["order_message_id"],
            ["outbox_messages.id"],
            name=op.f("fk_payments_order_message_id_outbox_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_payments_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("payment_key", name=op.f("uq_payments_payment_key")),
    )
    op.create_index("ix_payments_family_id", "payments", ["family_id"])
    op.create_index("ix_payments_state", "payments", ["state"])


def downgrade() -> None:
    op.drop_index("ix_payments_state", table_name="payments")
    op.drop_index("ix_payments_family_id", table_name="payments")

    op.drop_table("payments")
    op.drop_index("ix_offer_transitions_offer_id", table_name="offer_transitions")

    op.drop_table("offer_transitions")
    op.drop_table("inbound_sms")
    op.drop_index("ix_benefit_assignments_family_id", table_name="benefit_assignments")

    op.drop_table("benefit_assignments")
    op.drop_index("ix_offers_state_expires_at", table_name="offers")
    op.drop_index("ix_offers_recipient_person_id_state", table_name="offers")
    op.drop_index("ix_offers_programme_created_at", table_name="offers")
    op.drop_index("ix_offers_phone_state", table_name="offers")

    op.drop_table("offers")
    op.drop_index("ix_notifications_person_id", table_name="notifications")

    op.drop_table("notifications")
    op.drop_table("wallet_cursors")
    op.drop_table("idempotency_records")
