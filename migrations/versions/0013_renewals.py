"""renewals: a changed entitlement keeps its previous period end; an offer says it renews

Revision ID: 0013_renewals
Revises: 0012_registry_changes
Create Date: 2026-12-02 14:00:00

A renewed programme's next period (ASP's next quarter, the next school year's meals) is
offered again when its new period starts after the previous one ended; the diff records that
end on the `changed` row (`previous_period_end`) so the offer job can tell a renewal from the
same period recomputed. Rows written before have none and are not renewals. An offer made for
a renewal is marked (`renewal`), for its SMS and the app.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_renewals"
down_revision: str | None = "0012_registry_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entitlement_changes") as batch:
        batch.add_column(sa.Column("previous_period_end", sa.Date(), nullable=True))
    with op.batch_alter_table("offers") as batch:
        batch.add_column(
            sa.Column("renewal", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("renewal")
    with op.batch_alter_table("entitlement_changes") as batch:
        batch.drop_column("previous_period_end")
