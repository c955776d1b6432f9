"""audit: hash-chained, append-only audit records and the chain's head

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 06:35:45.669560
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_chain_head',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_chain_head_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    op.create_table('audit_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('subject_hash', sa.String(length=64), nullable=True),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('what', sa.String(length=200), nullable=False),
    sa.Column('operation', sa.String(length=100), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint("action IN ('read', 'write')", name=op.f('ck_audit_records_action')),
    sa.CheckConstraint('seq >= 1', name=op.f('ck_audit_records_seq')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_records')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_records_seq'))
    )
    op.create_index('ix_audit_records_family_id_seq', 'audit_records', ['family_id', 'seq'])
    op.create_index('ix_audit_records_subject_hash_seq', 'audit_records', ['subject_hash', 'seq'])
    # The chain starts empty: seq 0, and the genesis hash the first record chains to.
    op.execute("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')")
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index('ix_audit_records_subject_hash_seq', table_name='audit_records')
    op.drop_index('ix_audit_records_family_id_seq', table_name='audit_records')
    op.drop_table('audit_records')
    op.drop_table('audit_chain_head')

# Audit records are append-only, like ledger transfers (0002): triggers refuse UPDATE and
# DELETE of a record (and TRUNCATE on PostgreSQL), and DELETE of the chain's head, whatever
# code or console issues them. The head's one row is updated by every append.
_APPEND_ONLY = "audit_records is append-only"
_HEAD_STAYS = "audit_chain_head cannot be deleted"


def _create_append_only_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        for name, message in (("audit_records_append_only", _APPEND_ONLY),
                              ("audit_chain_head_stays", _HEAD_STAYS)):
            op.execute(f"""
                CREATE FUNCTION {name}() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION '{message} (% refused)', TG_OP
                        USING ERRCODE = 'restrict_violation';
                END
                $$
            """)
        op.execute("""
            CREATE TRIGGER audit_records_append_only
            BEFORE UPDATE OR DELETE ON audit_records
            FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()
        """)
        op.execute("""
            CREATE TRIGGER audit_records_no_truncate
            BEFORE TRUNCATE ON audit_records
            FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()
        """)
        op.execute("""
            CREATE TRIGGER audit_chain_head_stays
            BEFORE DELETE ON audit_chain_head
            FOR EACH ROW EXECUTE FUNCTION audit_chain_head_stays()
        """)
        op.execute("""
            CREATE TRIGGER audit_chain_head_no_truncate
            BEFORE TRUNCATE ON audit_chain_head
            FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_stays()
        """)
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER audit_records_no_{operation.lower()}
                BEFORE {operation} ON audit_records
                BEGIN
                    SELECT RAISE(ABORT, '{_APPEND_ONLY} ({operation} refused)');
                END
            """)
        op.execute(f"""
            CREATE TRIGGER audit_chain_head_no_delete
            BEFORE DELETE ON audit_chain_head
            BEGIN
                SELECT RAISE(ABORT, '{_HEAD_STAYS} (DELETE refused)');
            END
        """)


def _drop_append_only_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        # Dropping the tables drops their triggers; the functions stay unless dropped.
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_stays ON audit_chain_head")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_truncate ON audit_records")
        op.execute("DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records")
        op.execute("DROP FUNCTION IF EXISTS audit_chain_head_stays()")
        op.execute("DROP FUNCTION IF EXISTS audit_records_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_delete")
