"""registry_changes: the families whose facts or entitlements changed since the last batch run

Revision ID: 0012_registry_changes
Revises: 0011_bank
Create Date: 2026-12-02 14:00:00

A batch eligibility run keeps the registry it read (and the entitlements it left) on local
disk and, next time, re-reads only the families named here (familymap/registry_snapshot.py).
Triggers fill the log on every table a run reads, so no write path (importer, life events,
SQL by hand) can forget to name a family: persons and families per statement (one row per
family a statement touched, from its transition tables), entitlements per row unless the
batch run itself is writing them (it keeps its own copy up to date), and a TRUNCATE of any
of them logs NULL: every family. Each row carries the writing transaction's id, so a run
deletes exactly the rows its snapshot saw. `eligibility_runs.registry_snapshot` names the
files a batch run left, in the transaction that consumed the log. PostgreSQL only: on SQLite
every run reads everything.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_registry_changes"
down_revision: str | None = "0011_bank"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Set (transaction-local) by a batch run while it writes entitlements it also keeps on disk.
_WRITER_SETTING = "socialwallet.eligibility_batch_writing"


def _statement_function(name: str, family: str) -> str:
    """The families of the rows a statement inserted, deleted or updated (both sides of an
    update: a person may move to another family); `family` is the rows' family id column."""
    return f"""
    CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO registry_changes (family_id) SELECT DISTINCT {family} FROM new_rows;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO registry_changes (family_id) SELECT DISTINCT {family} FROM old_rows;
        ELSE
            INSERT INTO registry_changes (family_id)
                SELECT {family} FROM new_rows UNION SELECT {family} FROM old_rows;
        END IF;
        RETURN NULL;
    END $$
    """


_FUNCTIONS = (
    _statement_function("registry_changes_from_persons", "family_id"),
    _statement_function("registry_changes_from_families", "id"),
    """
    CREATE FUNCTION registry_changes_from_entitlement() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            INSERT INTO registry_changes (family_id) VALUES (OLD.family_id);
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') THEN
            INSERT INTO registry_changes (family_id) VALUES (NEW.family_id);
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION registry_changes_everything() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO registry_changes (family_id) VALUES (NULL);
        RETURN NULL;
    END $$
    """,
)


def _statement_triggers(table: str, function: str) -> list[str]:
    # Transition tables allow one event per trigger: three of them.
    return [
        f"CREATE TRIGGER registry_changes_{event.lower()} AFTER {event} ON {table}"
        f" REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        for event, tables in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        )
    ]


def _triggers() -> list[str]:
    return [
        *_statement_triggers("persons", "registry_changes_from_persons"),
        *_statement_triggers("families", "registry_changes_from_families"),
        # Per row, and not while the batch run writes: a first run inserts millions.
        "CREATE TRIGGER registry_changes_row AFTER INSERT OR UPDATE OR DELETE ON entitlements"
        f" FOR EACH ROW WHEN (current_setting('{_WRITER_SETTING}', true) IS DISTINCT FROM 'on')"
        " EXECUTE FUNCTION registry_changes_from_entitlement()",
        *(
            f"CREATE TRIGGER registry_changes_truncate AFTER TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION registry_changes_everything()"
            for table in ("persons", "families", "entitlements")
        ),
    ]


def upgrade() -> None:
    with op.batch_alter_table("eligibility_runs") as batch:
        batch.add_column(sa.Column("registry_snapshot", sa.String(length=64), nullable=True))
    postgres = op.get_bind().dialect.name == "postgresql"
    # No key, no index: rows are only appended, and a run reads and deletes them all. The
    # table exists on SQLite too (the models are one schema), where nothing fills it.
    op.create_table(
        "registry_changes",
        sa.Column("family_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "xid",
            sa.BigInteger(),
            nullable=False,
            server_default=sa.text("(pg_current_xact_id()::text)::bigint") if postgres else None,
        ),
    )
    if not postgres:
        return
    for statement in (*_FUNCTIONS, *_triggers()):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("persons", "families", "entitlements"):
            for name in ("insert", "update", "delete", "row", "truncate"):
                op.execute(f"DROP TRIGGER IF EXISTS registry_changes_{name} ON {table}")
        for function in (
            "registry_changes_from_persons",
            "registry_changes_from_families",
            "registry_changes_from_entitlement",
            "registry_changes_everything",
        ):
            op.execute(f"DROP FUNCTION {function}()")
    op.drop_table("registry_changes")
    with op.batch_alter_table("eligibility_runs") as batch:
        batch.drop_column("registry_snapshot")
