"""vouchers: idempotency keys per merchant, the day a meal was claimed, acts' rating totals

Revision ID: 0009_vouchers
Revises: 0008
Create Date: 2026-12-02 08:10:00

- A meal's or a dispensing's idempotency key was unique across all merchants, so one school
  could use up another's predictable keys (or be answered with another school's meal). It is
  unique per merchant now: (merchant_id, idempotency_key).
- `meal_redemptions.claimed_on`: the school's local day a meal was claimed on, so that an
  act shows late claims. Meals recorded before are taken as claimed on their day.
- `merchant_acts.feedback_rating_total`: the sum of the ratings an act counted, so that an
  adjustment act reports only the feedback its predecessors did not. Added by plain ADD
  COLUMN (no table rebuild), which keeps the approved-act triggers on SQLite.

SQLite rebuilds `meal_redemptions` and `dispensings` to change their constraints; neither has
triggers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_vouchers"
down_revision: str | None = "0009_months"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("meal_redemptions", sa.Column("claimed_on", sa.Date(), nullable=True))
    op.execute("UPDATE meal_redemptions SET claimed_on = service_date")
    with op.batch_alter_table("meal_redemptions") as batch:
        batch.alter_column("claimed_on", existing_type=sa.Date(), nullable=False)
        batch.drop_constraint(op.f("uq_meal_redemptions_idempotency_key"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_meal_redemptions_merchant_id_idempotency_key"),
            ["merchant_id", "idempotency_key"],
        )
    with op.batch_alter_table("dispensings") as batch:
        batch.drop_constraint(op.f("uq_dispensings_idempotency_key"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_dispensings_merchant_id_idempotency_key"), ["merchant_id", "idempotency_key"]
        )
    op.add_column("merchant_acts", sa.Column("feedback_rating_total", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Going back needs keys unique across merchants again: it fails if two merchants share one.
    op.drop_column("merchant_acts", "feedback_rating_total")
    with op.batch_alter_table("dispensings") as batch:
        batch.drop_constraint(op.f("uq_dispensings_merchant_id_idempotency_key"), type_="unique")
        batch.create_unique_constraint(op.f("uq_dispensings_idempotency_key"), ["idempotency_key"])
    with op.batch_alter_table("meal_redemptions") as batch:
        batch.drop_constraint(
            op.f("uq_meal_redemptions_merchant_id_idempotency_key"), type_="unique"
        )
        batch.create_unique_constraint(
            op.f("uq_meal_redemptions_idempotency_key"), ["idempotency_key"]
        )
        batch.drop_column("claimed_on")
