"""family map

Revision ID: 0001
Revises:
Create Date: 2026-11-22 04:35:58.377138
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('entitlement_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('programme', sa.String(length=48), nullable=False),
    sa.Column('change', sa.String(length=8), nullable=False),
    sa.Column('previous_amount_tiyn', sa.BigInteger(), nullable=True),
    sa.Column('amount_tiyn', sa.BigInteger(), nullable=True),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.CheckConstraint("change IN ('new', 'changed', 'ended')", name=op.f('ck_entitlement_changes_change')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entitlement_changes'))
    )
    op.create_index('ix_entitlement_changes_run_id', 'entitlement_changes', ['run_id'])
    op.create_table('entitlements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('beneficiary_key', sa.BigInteger(), nullable=False),
    sa.Column('programme', sa.String(length=48), nullable=False),
    sa.Column('amount_tiyn', sa.BigInteger(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint('amount_tiyn >= 0', name=op.f('ck_entitlements_amount')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entitlements')),
    sa.UniqueConstraint('family_id', 'programme', 'beneficiary_key', name=op.f('uq_entitlements_family_id_programme_beneficiary_key'))
    )
    op.create_table('families',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('housing_owned', sa.Boolean(), nullable=False),
    sa.Column('area_m2', sa.Integer(), nullable=False),
    sa.Column('rooms', sa.SmallInteger(), nullable=False),
    sa.Column('in_social_housing_queue', sa.Boolean(), nullable=False),
    sa.Column('provenance', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('area_m2 >= 0', name=op.f('ck_families_area_m2')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_families'))
    )
    op.create_table('eligibility_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('evaluated_on', sa.Date(), nullable=False),
    sa.Column('parameter_version', sa.String(length=64), nullable=False),
    sa.Column('rule_versions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('families', sa.BigInteger(), nullable=False),
    sa.Column('persons', sa.BigInteger(), nullable=False),
    sa.Column('eligible', sa.BigInteger(), nullable=False),
    sa.Column('new_count', sa.BigInteger(), nullable=False),
    sa.Column('changed_count', sa.BigInteger(), nullable=False),
    sa.Column('ended_count', sa.BigInteger(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("scope IN ('batch', 'families', 'family')", name=op.f('ck_eligibility_runs_scope')),
    sa.CheckConstraint("status IN ('running', 'finished', 'failed')", name=op.f('ck_eligibility_runs_status')),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_eligibility_runs_family_id_families')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_eligibility_runs'))
    )
    op.create_table('persons',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
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
    sa.Column('monthly_income_tiyn', sa.BigInteger(), nullable=False),
    sa.Column('contribution_months', sa.SmallInteger(), nullable=False),
    sa.Column('employment', sa.String(length=24), nullable=False),
    sa.Column('job_lost_on', sa.Date(), nullable=True),
    sa.Column('registered_unemployed', sa.Boolean(), nullable=False),
    sa.Column('disability_group', sa.SmallInteger(), nullable=True),
    sa.Column('disability_child', sa.Boolean(), nullable=False),
    sa.Column('disability_established_on', sa.Date(), nullable=True),
    sa.Column('capacity_loss_pct', sa.SmallInteger(), nullable=False),
    sa.Column('full_time_student', sa.Boolean(), nullable=False),
    sa.Column('school_grade', sa.SmallInteger(), nullable=True),
    sa.Column('school_id', sa.String(length=64), nullable=True),
    sa.Column('kindergarten', sa.Boolean(), nullable=False),
    sa.Column('insured', sa.Boolean(), nullable=False),
    sa.Column('polyclinic_attached', sa.Boolean(), nullable=False),
    sa.Column('chronic_conditions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default=sa.text("'[]'"), nullable=False),
    sa.Column('award', sa.String(length=16), nullable=True),
    sa.Column('kandas_until', sa.Date(), nullable=True),
    sa.Column('provenance', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("award IN ('altyn_alqa', 'kumis_alqa')", name=op.f('ck_persons_award')),
    sa.CheckConstraint("employment IN ('employed', 'unemployed', 'job_lost', 'not_in_labour_force')", name=op.f('ck_persons_employment')),
    sa.CheckConstraint("language IN ('kk', 'ru')", name=op.f('ck_persons_language')),
    sa.CheckConstraint("role IN ('head', 'spouse', 'child', 'dependant', 'other')", name=op.f('ck_persons_role')),
    sa.CheckConstraint("sex IN ('M', 'F')", name=op.f('ck_persons_sex')),
    sa.CheckConstraint('capacity_loss_pct BETWEEN 0 AND 100', name=op.f('ck_persons_capacity_loss_pct')),
    sa.CheckConstraint('contribution_months BETWEEN 0 AND 24', name=op.f('ck_persons_contribution_months')),
    sa.CheckConstraint('disability_group IN (1, 2, 3)', name=op.f('ck_persons_disability_group')),
    sa.CheckConstraint('monthly_income_tiyn >= 0', name=op.f('ck_persons_income')),
    sa.CheckConstraint('school_grade BETWEEN 1 AND 11', name=op.f('ck_persons_school_grade')),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_persons_family_id_families')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_persons')),
    sa.UniqueConstraint('iin', name=op.f('uq_persons_iin'))
    )
    op.create_index('ix_persons_family_id', 'persons', ['family_id'])
    op.create_table('decisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('programme', sa.String(length=48), nullable=False),
    sa.Column('eligible', sa.Boolean(), nullable=False),
    sa.Column('amount_tiyn', sa.BigInteger(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.Column('conditions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('rule_version', sa.String(length=32), nullable=False),
    sa.Column('parameter_version', sa.String(length=64), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_decisions_family_id_families')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_decisions_person_id_persons')),
    sa.ForeignKeyConstraint(['run_id'], ['eligibility_runs.id'], name=op.f('fk_decisions_run_id_eligibility_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions'))
    )
    op.create_index('ix_decisions_family_id', 'decisions', ['family_id'])
    op.create_table('fact_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('record_key', sa.String(length=128), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_fact_records_family_id_families')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_fact_records_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fact_records')),
    sa.UniqueConstraint('record_key', name=op.f('uq_fact_records_record_key'))
    )
    op.create_index('ix_fact_records_family_id', 'fact_records', ['family_id'])
    op.create_table('life_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_life_events_family_id_families')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_life_events_person_id_persons')),
    sa.ForeignKeyConstraint(['run_id'], ['eligibility_runs.id'], name=op.f('fk_life_events_run_id_eligibility_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_life_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_life_events_event_id'))
    )
    op.create_index('ix_life_events_family_id', 'life_events', ['family_id'])


def downgrade() -> None:
    op.drop_index('ix_life_events_family_id', table_name='life_events')
    op.drop_table('life_events')
    op.drop_index('ix_fact_records_family_id', table_name='fact_records')
    op.drop_table('fact_records')
    op.drop_index('ix_decisions_family_id', table_name='decisions')
    op.drop_table('decisions')
    op.drop_index('ix_persons_family_id', table_name='persons')
    op.drop_table('persons')
    op.drop_table('eligibility_runs')
    op.drop_table('families')
    op.drop_table('entitlements')
    op.drop_index('ix_entitlement_changes_run_id', table_name='entitlement_changes')
    op.drop_table('entitlement_changes')
