"""offers: a reply code per offer, so that an SMS reply names the offer it answers

Revision ID: 0009_consent
Revises: 0008
Create Date: 2026-12-02 08:00:00

Each offer's SMS carries a short code ("1 4821"), unique among the offers sent to its
phone; a reply with the code answers that offer and no other (docs/consent.md). Offers
made before this revision have no code: one is given when a reply first needs to name it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_consent"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("reply_code", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("reply_code")
