"""months: what each month of an offer and of a benefit assignment pays

Revision ID: 0009_months
Revises: 0008
Create Date: 2026-12-02 08:00:00

A benefit's months are paid at the amount of the family as it was in each month (wallet.months):
offers quote the months, assignments keep them, payments take their month's amount from there.
Rows made before keep an empty list and are paid at their single amount, as they were.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_months"
down_revision: str | None = "0009_privacy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("offers", "benefit_assignments")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "monthly_amounts",
                    sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                    server_default=sa.text("'[]'"),
                    nullable=False,
                )
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("monthly_amounts")
