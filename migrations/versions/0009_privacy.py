"""privacy: a fallback identity check's reason code, from a fixed list

Revision ID: 0009_privacy
Revises: 0008
Create Date: 2026-12-02 08:00:00

A pharmacy that dispenses without eGov QR or Face-ID now names why, with a code from
`vouchers.tables.FALLBACK_REASONS` as well as its written account, so that operators can
count fallbacks per pharmacy, month and reason. Dispensings before this have no code.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_privacy"
down_revision: str | None = "0009_consent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REASONS = "'no_smartphone', 'face_id_failed', 'camera_unavailable', 'egov_unavailable'"


def upgrade() -> None:
    with op.batch_alter_table("dispensings") as batch:
        batch.add_column(sa.Column("identity_reason_code", sa.String(length=32), nullable=True))
        batch.create_check_constraint(
            op.f("ck_dispensings_reason_code"), f"identity_reason_code IN ({_REASONS})"
        )


def downgrade() -> None:
    with op.batch_alter_table("dispensings") as batch:
        batch.drop_constraint(op.f("ck_dispensings_reason_code"), type_="check")
        batch.drop_column("identity_reason_code")
