"""outbox: messages queued with the business change, sent by a relay

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 05:44:07.924389
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_key', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('gateway_message_id', sa.String(length=128), nullable=True),
    sa.CheckConstraint("channel <> 'sms' OR (recipient LIKE '+7%' AND length(recipient) = 12)", name=op.f('ck_outbox_messages_sms_recipient')),
    sa.CheckConstraint("channel IN ('sms', 'bank')", name=op.f('ck_outbox_messages_channel')),
    sa.CheckConstraint("status <> 'sending' OR claimed_until IS NOT NULL", name=op.f('ck_outbox_messages_claim')),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'dead')", name=op.f('ck_outbox_messages_status')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_outbox_messages_attempts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('message_key', name=op.f('uq_outbox_messages_message_key'))
    )
    op.create_index('ix_outbox_messages_status_next_attempt_at', 'outbox_messages', ['status', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_index('ix_outbox_messages_status_next_attempt_at', table_name='outbox_messages')
    op.drop_table('outbox_messages')
