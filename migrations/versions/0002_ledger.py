"""ledger: accounts and append-only transfers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:30:22.456590
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ledger_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=96), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=True),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('may_go_negative', sa.Boolean(), nullable=False),
    sa.Column('debits_posted', sa.BigInteger(), nullable=False),
    sa.Column('credits_posted', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("NOT may_go_negative OR kind = 'budget_programme'", name=op.f('ck_ledger_accounts_negative_kind')),
    sa.CheckConstraint("kind IN ('budget_programme', 'purpose_wallet', 'merchant', 'bank_payout', 'settlement')", name=op.f('ck_ledger_accounts_kind')),
    sa.CheckConstraint("kind NOT IN ('bank_payout', 'settlement') OR purpose IS NULL", name=op.f('ck_ledger_accounts_purpose_forbidden')),
    sa.CheckConstraint("kind NOT IN ('purpose_wallet', 'merchant') OR purpose IS NOT NULL", name=op.f('ck_ledger_accounts_purpose_required')),
    sa.CheckConstraint("purpose IN ('school_meals', 'medicines', 'technical_aids')", name=op.f('ck_ledger_accounts_purpose')),
    sa.CheckConstraint('debits_posted >= 0 AND credits_posted >= 0', name=op.f('ck_ledger_accounts_posted')),
    sa.CheckConstraint('may_go_negative OR credits_posted - debits_posted >= 0', name=op.f('ck_ledger_accounts_balance_floor')),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_ledger_accounts_family_id_families')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_ledger_accounts_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts')),
    sa.UniqueConstraint('code', name=op.f('uq_ledger_accounts_code'))
    )
    op.create_index('ix_ledger_accounts_family_id', 'ledger_accounts', ['family_id'])
    op.create_table('ledger_transfers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('transfer_id', sa.String(length=128), nullable=False),
    sa.Column('debit_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('credit_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('reverses_transfer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reason <> ''", name=op.f('ck_ledger_transfers_reason')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_ledger_transfers_amount')),
    sa.CheckConstraint('debit_account_id <> credit_account_id', name=op.f('ck_ledger_transfers_two_accounts')),
    sa.ForeignKeyConstraint(['credit_account_id'], ['ledger_accounts.id'], name=op.f('fk_ledger_transfers_credit_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['debit_account_id'], ['ledger_accounts.id'], name=op.f('fk_ledger_transfers_debit_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['reverses_transfer_id'], ['ledger_transfers.id'], name=op.f('fk_ledger_transfers_reverses_transfer_id_ledger_transfers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transfers')),
    sa.UniqueConstraint('reverses_transfer_id', name=op.f('uq_ledger_transfers_reverses_transfer_id')),
    sa.UniqueConstraint('transfer_id', name=op.f('uq_ledger_transfers_transfer_id'))
    )
    op.create_index('ix_ledger_transfers_credit_account_id', 'ledger_transfers', ['credit_account_id'])
    op.create_index('ix_ledger_transfers_debit_account_id', 'ledger_transfers', ['debit_account_id'])
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index('ix_ledger_transfers_debit_account_id', table_name='ledger_transfers')
    op.drop_index('ix_ledger_transfers_credit_account_id', table_name='ledger_transfers')
    op.drop_table('ledger_transfers')
    op.drop_index('ix_ledger_accounts_family_id', table_name='ledger_accounts')
    op.drop_table('ledger_accounts')


# Transfers are append-only: a correction is a new, reversing transfer. The triggers refuse
# UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) whatever code or console issues them; the
# errors are integrity violations on both databases (SQLSTATE 23001, SQLite's ABORT).
_APPEND_ONLY = "ledger_transfers is append-only: post a reversing transfer instead"


def _create_append_only_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION ledger_transfers_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{_APPEND_ONLY} (% refused)', TG_OP
                    USING ERRCODE = 'restrict_violation';
            END
            $$
        """)
        op.execute("""
            CREATE TRIGGER ledger_transfers_append_only
            BEFORE UPDATE OR DELETE ON ledger_transfers
            FOR EACH ROW EXECUTE FUNCTION ledger_transfers_append_only()
        """)
        op.execute("""
            CREATE TRIGGER ledger_transfers_no_truncate
            BEFORE TRUNCATE ON ledger_transfers
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_append_only()
        """)
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER ledger_transfers_no_{operation.lower()}
                BEFORE {operation} ON ledger_transfers
                BEGIN
                    SELECT RAISE(ABORT, '{_APPEND_ONLY} ({operation} refused)');
                END
            """)


def _drop_append_only_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        # Dropping the table drops its triggers; the function stays unless dropped.
        op.execute("DROP TRIGGER IF EXISTS ledger_transfers_no_truncate ON ledger_transfers")
        op.execute("DROP TRIGGER IF EXISTS ledger_transfers_append_only ON ledger_transfers")
        op.execute("DROP FUNCTION IF EXISTS ledger_transfers_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_transfers_no_update")
        op.execute("DROP TRIGGER IF EXISTS ledger_transfers_no_delete")
