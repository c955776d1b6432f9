"""offers: the reason a person gave for declining, for the take-up funnel

Revision ID: 0010_funnel
Revises: 0009_vouchers
Create Date: 2026-12-02 08:30:00

Declining in the app takes an optional reason from a short list, and so does an SMS reply
"2 <code> <digit>" (docs/funnel.md). The list is checked by the domain (wallet.offers), not
by a constraint: adding one would make SQLite rebuild the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_funnel"
down_revision: str | None = "0009_vouchers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("decline_reason", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("decline_reason")
