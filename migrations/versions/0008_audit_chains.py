"""audit: several chains instead of one, so concurrent audited transactions rarely wait

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 12:30:00

With one chain head, every audited transaction held the head's row lock from its append to
its commit, so the country's audited writes went one at a time (the redemption benchmark
showed it). Each record now names its chain; `seq` counts within a chain; the chain head
table holds one row per chain. The records of 0007 are chain 1, whose links are unchanged:
a record's HMAC covers its predecessor's hash, so it stays bound to its place in its chain
without the chain's number in it.

SQLite rebuilds the two tables to change their constraints; its append-only triggers go with
the old tables and are created again afterwards.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHAINS = 64  # familymap.audit.CHAINS: the heads made here are the chains appended to
GENESIS = "0" * 64
_APPEND_ONLY = "audit_records is append-only"
_HEAD_STAYS = "audit_chain_head cannot be deleted"


def upgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        _drop_sqlite_triggers()
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.drop_constraint(op.f("ck_audit_chain_head_single_row"), type_="check")
        batch.create_check_constraint(
            op.f("ck_audit_chain_head_chain_number"), "id BETWEEN 1 AND 64"
        )
    op.drop_index("ix_audit_records_subject_hash_seq", table_name="audit_records")
    op.drop_index("ix_audit_records_family_id_seq", table_name="audit_records")
    with op.batch_alter_table("audit_records") as batch:
        batch.add_column(sa.Column("chain", sa.SmallInteger(), server_default="1", nullable=False))
        batch.drop_constraint(op.f("uq_audit_records_seq"), type_="unique")
        batch.create_unique_constraint(op.f("uq_audit_records_chain_seq"), ["chain", "seq"])
    op.create_index("ix_audit_records_subject_hash_id", "audit_records", ["subject_hash", "id"])
    op.create_index("ix_audit_records_family_id_id", "audit_records", ["family_id", "id"])
    heads = sa.table("audit_chain_head", sa.column("id"), sa.column("seq"), sa.column("hash"))
    op.bulk_insert(heads, [{"id": n, "seq": 0, "hash": GENESIS} for n in range(2, CHAINS + 1)])
    if sqlite:
        _create_sqlite_triggers()


def downgrade() -> None:
    # Only a trail that never used a chain but the first can go back to one chain.
    connection = op.get_bind()
    if connection.scalar(sa.text("SELECT count(*) FROM audit_records WHERE chain <> 1")):
        raise RuntimeError("audit records exist on chains other than 1; cannot merge chains")
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        _drop_sqlite_triggers()
        op.execute("DELETE FROM audit_chain_head WHERE id <> 1")  # its trigger is gone now
    else:
        op.execute("ALTER TABLE audit_chain_head DISABLE TRIGGER USER")
        op.execute("DELETE FROM audit_chain_head WHERE id <> 1")
        op.execute("ALTER TABLE audit_chain_head ENABLE TRIGGER USER")
    op.drop_index("ix_audit_records_family_id_id", table_name="audit_records")
    op.drop_index("ix_audit_records_subject_hash_id", table_name="audit_records")
    with op.batch_alter_table("audit_records") as batch:
        batch.drop_constraint(op.f("uq_audit_records_chain_seq"), type_="unique")
        batch.create_unique_constraint(op.f("uq_audit_records_seq"), ["seq"])
        batch.drop_column("chain")
    op.create_index("ix_audit_records_family_id_seq", "audit_records", ["family_id", "seq"])
    op.create_index("ix_audit_records_subject_hash_seq", "audit_records", ["subject_hash", "seq"])
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.drop_constraint(op.f("ck_audit_chain_head_chain_number"), type_="check")
        batch.create_check_constraint(op.f("ck_audit_chain_head_single_row"), "id = 1")
    if sqlite:
        _create_sqlite_triggers()


# The same triggers as 0007 creates on SQLite (PostgreSQL keeps its own through ALTER TABLE).
def _drop_sqlite_triggers() -> None:
    for name in (
        "audit_chain_head_no_delete",
        "audit_records_no_update",
        "audit_records_no_delete",
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _create_sqlite_triggers() -> None:
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
