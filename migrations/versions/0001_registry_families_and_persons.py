"""registry: families and persons

Revision ID: 0001
Revises:
Create Date: 2026-11-22 03:53:04.684087
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('families',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_families'))
    )
    op.create_table('persons',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('family_id', sa.Uuid(), nullable=False),
    sa.Column('iin', sa.String(length=12), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('patronymic', sa.String(length=100), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('iban', sa.String(length=34), nullable=True),
    sa.Column('date_of_death', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("language IN ('kk', 'ru')", name=op.f('ck_persons_language')),
    sa.CheckConstraint("role IN ('head', 'spouse', 'child', 'dependant', 'other')", name=op.f('ck_persons_role')),
    sa.CheckConstraint("sex IN ('M', 'F')", name=op.f('ck_persons_sex')),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_persons_family_id_families')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_persons')),
    sa.UniqueConstraint('iin', name=op.f('uq_persons_iin'))
    )
    op.create_index('ix_persons_family_id', 'persons', ['family_id'])


def downgrade() -> None:
    op.drop_index('ix_persons_family_id', table_name='persons')
    op.drop_table('persons')
    op.drop_table('families')
