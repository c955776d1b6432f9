"""vouchers: merchants, meals, medicines, feedback, acts and invoices

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 06:24:18.116887

Besides the tables, a trigger refuses any UPDATE or DELETE of an approved act on both
databases: the service only ever changes acts by conditional UPDATEs on their status, and
the trigger holds whatever other code writes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('merchants',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('external_code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("category IN ('school_meals', 'medicines')", name=op.f('ck_merchants_category')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants')),
    sa.UniqueConstraint('external_code', name=op.f('uq_merchants_external_code'))
    )
    op.create_table('merchant_acts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('sequence', sa.SmallInteger(), nullable=False),
    sa.Column('adjusts_act_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('lines', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('services', sa.Integer(), nullable=False),
    sa.Column('total_tiyn', sa.BigInteger(), nullable=False),
    sa.Column('feedback_count', sa.Integer(), nullable=False),
    sa.Column('feedback_average_x100', sa.Integer(), nullable=True),
    sa.Column('complaints', sa.Integer(), nullable=False),
    sa.Column('flagged_for_review', sa.Boolean(), nullable=False),
    sa.Column('flag_reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'submitted', 'approved')", name=op.f('ck_merchant_acts_status')),
    sa.CheckConstraint('(sequence = 0) = (adjusts_act_id IS NULL)', name=op.f('ck_merchant_acts_adjustment')),
    sa.ForeignKeyConstraint(['adjusts_act_id'], ['merchant_acts.id'], name=op.f('fk_merchant_acts_adjusts_act_id_merchant_acts')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_merchant_acts_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchant_acts')),
    sa.UniqueConstraint('merchant_id', 'month', 'sequence', name=op.f('uq_merchant_acts_merchant_id_month_sequence'))
    )
    op.create_table('feedback',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_kind', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('author_person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('rating', sa.SmallInteger(), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("event_kind IN ('meal', 'dispensing')", name=op.f('ck_feedback_event_kind')),
    sa.CheckConstraint('rating BETWEEN 1 AND 5', name=op.f('ck_feedback_rating')),
    sa.ForeignKeyConstraint(['author_person_id'], ['persons.id'], name=op.f('fk_feedback_author_person_id_persons')),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_feedback_family_id_families')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_feedback_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback')),
    sa.UniqueConstraint('event_kind', 'event_id', name=op.f('uq_feedback_event_kind_event_id'))
    )
    op.create_index('ix_feedback_merchant_id_service_date', 'feedback', ['merchant_id', 'service_date'])
    op.create_table('invoices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('act_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('amount_tiyn', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('transfer_id', sa.String(length=128), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('issued', 'paid')", name=op.f('ck_invoices_status')),
    sa.ForeignKeyConstraint(['act_id'], ['merchant_acts.id'], name=op.f('fk_invoices_act_id_merchant_acts')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_invoices_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('act_id', name=op.f('uq_invoices_act_id'))
    )
    op.create_table('meal_vouchers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('school_year_start', sa.Date(), nullable=False),
    sa.Column('school_year_end', sa.Date(), nullable=False),
    sa.Column('amount_tiyn', sa.BigInteger(), nullable=False),
    sa.Column('consented_by_person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['consented_by_person_id'], ['persons.id'], name=op.f('fk_meal_vouchers_consented_by_person_id_persons')),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_meal_vouchers_family_id_families')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_meal_vouchers_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meal_vouchers')),
    sa.UniqueConstraint('person_id', 'school_year_start', name=op.f('uq_meal_vouchers_person_id_school_year_start'))
    )
    op.create_index('ix_meal_vouchers_family_id', 'meal_vouchers', ['family_id'])
    op.create_table('medicine_vouchers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('amount_tiyn', sa.BigInteger(), nullable=False),
    sa.Column('consented_by_person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['consented_by_person_id'], ['persons.id'], name=op.f('fk_medicine_vouchers_consented_by_person_id_persons')),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_medicine_vouchers_family_id_families')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_medicine_vouchers_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_medicine_vouchers')),
    sa.UniqueConstraint('person_id', 'period_start', name=op.f('uq_medicine_vouchers_person_id_period_start'))
    )
    op.create_table('prescriptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('drug_code', sa.String(length=32), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_tiyn', sa.BigInteger(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('prescribing_org', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('dispensed_quantity', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('dispensed_quantity >= 0 AND dispensed_quantity <= quantity', name=op.f('ck_prescriptions_dispensed')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_prescriptions_quantity')),
    sa.CheckConstraint('unit_price_tiyn > 0', name=op.f('ck_prescriptions_unit_price')),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_prescriptions_family_id_families')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_prescriptions_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prescriptions')),
    sa.UniqueConstraint('external_id', name=op.f('uq_prescriptions_external_id'))
    )
    op.create_index('ix_prescriptions_person_id', 'prescriptions', ['person_id'])
    op.create_table('dispensings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('prescription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('drug_code', sa.String(length=32), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount_tiyn', sa.BigInteger(), nullable=False),
    sa.Column('identity_method', sa.String(length=16), nullable=False),
    sa.Column('identity_reason', sa.String(length=500), nullable=True),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('transfer_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("identity_method <> 'fallback' OR identity_reason IS NOT NULL", name=op.f('ck_dispensings_fallback_reason')),
    sa.CheckConstraint("identity_method IN ('egov_qr', 'face_id', 'fallback')", name=op.f('ck_dispensings_identity_method')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_dispensings_quantity')),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_dispensings_family_id_families')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_dispensings_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_dispensings_person_id_persons')),
    sa.ForeignKeyConstraint(['prescription_id'], ['prescriptions.id'], name=op.f('fk_dispensings_prescription_id_prescriptions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispensings')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_dispensings_idempotency_key'))
    )
    op.create_index('ix_dispensings_merchant_id_service_date', 'dispensings', ['merchant_id', 'service_date'])
    op.create_index('ix_dispensings_person_id', 'dispensings', ['person_id'])
    op.create_table('meal_redemptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('voucher_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('family_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('meal_type', sa.String(length=16), nullable=False),
    sa.Column('price_tiyn', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('qr_nonce', sa.String(length=64), nullable=True),
    sa.Column('transfer_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("meal_type IN ('breakfast', 'lunch')", name=op.f('ck_meal_redemptions_meal_type')),
    sa.CheckConstraint("method IN ('qr', 'list')", name=op.f('ck_meal_redemptions_method')),
    sa.CheckConstraint('price_tiyn > 0', name=op.f('ck_meal_redemptions_price')),
    sa.ForeignKeyConstraint(['family_id'], ['families.id'], name=op.f('fk_meal_redemptions_family_id_families')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_meal_redemptions_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_meal_redemptions_person_id_persons')),
    sa.ForeignKeyConstraint(['voucher_id'], ['meal_vouchers.id'], name=op.f('fk_meal_redemptions_voucher_id_meal_vouchers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meal_redemptions')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_meal_redemptions_idempotency_key')),
    sa.UniqueConstraint('qr_nonce', name=op.f('uq_meal_redemptions_qr_nonce')),
    sa.UniqueConstraint('voucher_id', 'service_date', 'meal_type', name=op.f('uq_meal_redemptions_voucher_id_service_date_meal_type'))
    )
    op.create_index('ix_meal_redemptions_family_id', 'meal_redemptions', ['family_id'])
    op.create_index('ix_meal_redemptions_merchant_id_service_date', 'meal_redemptions', ['merchant_id', 'service_date'])
    op.create_index('ix_meal_redemptions_person_id', 'meal_redemptions', ['person_id'])


    _create_approved_act_guard()


def downgrade() -> None:
    _drop_approved_act_guard()
    op.drop_index('ix_meal_redemptions_person_id', table_name='meal_redemptions')
    op.drop_index('ix_meal_redemptions_merchant_id_service_date', table_name='meal_redemptions')
    op.drop_index('ix_meal_redemptions_family_id', table_name='meal_redemptions')
    op.drop_table('meal_redemptions')
    op.drop_index('ix_dispensings_person_id', table_name='dispensings')
    op.drop_index('ix_dispensings_merchant_id_service_date', table_name='dispensings')
    op.drop_table('dispensings')
    op.drop_index('ix_prescriptions_person_id', table_name='prescriptions')
    op.drop_table('prescriptions')
    op.drop_table('medicine_vouchers')
    op.drop_index('ix_meal_vouchers_family_id', table_name='meal_vouchers')
    op.drop_table('meal_vouchers')
    op.drop_table('invoices')
    op.drop_index('ix_feedback_merchant_id_service_date', table_name='feedback')
    op.drop_table('feedback')
    op.drop_table('merchant_acts')
    op.drop_table('merchants')


def _create_approved_act_guard() -> None:
    if op.get_context().dialect.name == 'postgresql':
        op.execute("""
            CREATE FUNCTION merchant_acts_approved_immutable() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'merchant_acts: an approved act is immutable (ACT_IMMUTABLE)';
            END $$
        """)
        op.execute("""
            CREATE TRIGGER merchant_acts_approved_immutable
            BEFORE UPDATE OR DELETE ON merchant_acts
            FOR EACH ROW WHEN (OLD.status = 'approved')
            EXECUTE FUNCTION merchant_acts_approved_immutable()
        """)
        return
    for operation in ('UPDATE', 'DELETE'):
        op.execute(f"""
            CREATE TRIGGER merchant_acts_approved_no_{operation.lower()}
            BEFORE {operation} ON merchant_acts
            FOR EACH ROW WHEN OLD.status = 'approved'
            BEGIN
                SELECT RAISE(ABORT, 'merchant_acts: an approved act is immutable (ACT_IMMUTABLE)');
            END
        """)


def _drop_approved_act_guard() -> None:
    if op.get_context().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS merchant_acts_approved_immutable ON merchant_acts')
        op.execute('DROP FUNCTION IF EXISTS merchant_acts_approved_immutable()')
        return
    op.execute('DROP TRIGGER IF EXISTS merchant_acts_approved_no_update')
    op.execute('DROP TRIGGER IF EXISTS merchant_acts_approved_no_delete')
