"""campaigns

Revision ID: 20261122_0002
Revises: 20261122_0001
Created: 2026-11-22 12:54:44.308764
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from core.money import MoneyAmount
revision: str = '20261122_0002'
down_revision: str | None = '20261122_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels')),
    sa.UniqueConstraint('code', name=op.f('uq_channels_code'))
    )
    op.create_table('exchange_rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('rate_date', sa.Date(), nullable=False),
    sa.Column('rate', sa.Numeric(precision=18, scale=8), nullable=False),
    sa.CheckConstraint('rate > 0', name=op.f('ck_exchange_rates_rate_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_rates')),
    sa.UniqueConstraint('currency', 'rate_date', name=op.f('uq_exchange_rates_currency_rate_date'))
    )
    channels = sa.table(
        "channels", sa.column("code", sa.String), sa.column("name", sa.String),
        sa.column("active", sa.Boolean),
    )
    op.bulk_insert(channels, [
        {"code": code, "name": name, "active": True}
        for code, name in [
            ("wechat", "WeChat"), ("douyin", "Douyin"), ("xiaohongshu", "Xiaohongshu"),
            ("sms", "SMS"), ("email", "Email"), ("search_ads", "Search ads"),
            ("in_store", "In-store"), ("offline_event", "Offline event"), ("partner", "Partner"),
        ]
    ])
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('objective', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('budget_amount', MoneyAmount(), nullable=False),
    sa.Column('expected_revenue', MoneyAmount(), nullable=True),
    sa.Column('target_segment', sa.Text(), nullable=False),
    sa.Column('target_region', sa.String(length=100), nullable=True),
    sa.Column('target_age_band', sa.String(length=20), nullable=True),
    sa.Column('target_occupation', sa.String(length=100), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status in ('draft', 'planned', 'active', 'ended', 'cancelled')", name=op.f('ck_campaigns_status_valid')),
    sa.CheckConstraint('budget_amount >= 0', name=op.f('ck_campaigns_budget_not_negative')),
    sa.CheckConstraint('ends_on >= starts_on', name=op.f('ck_campaigns_dates_ordered')),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_campaigns_channel_id_channels')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_campaigns_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    sa.UniqueConstraint('code', name=op.f('uq_campaigns_code'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_channel_id'), ['channel_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaigns_owner_id'), ['owner_id'], unique=False)

    op.create_table('closed_periods',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_closed_periods_closed_by_id_users')),
    sa.PrimaryKeyConstraint('month', name=op.f('pk_closed_periods'))
    )
    op.create_table('budget_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('amount', MoneyAmount(), nullable=False),
    sa.CheckConstraint("category in ('media', 'creative', 'gifts', 'events', 'staff')", name=op.f('ck_budget_lines_category_valid')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_budget_lines_amount_not_negative')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_budget_lines_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_lines')),
    sa.UniqueConstraint('campaign_id', 'category', name=op.f('uq_budget_lines_campaign_id_category'))
    )
    op.create_table('receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('vendor', sa.String(length=200), nullable=False),
    sa.Column('vendor_key', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('amount', MoneyAmount(), nullable=False),
    sa.Column('tax_amount', MoneyAmount(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('expense_date', sa.Date(), nullable=False),
    sa.Column('invoice_number', sa.String(length=64), nullable=True),
    sa.Column('payment_mode', sa.String(length=16), nullable=False),
    sa.Column('reimburse_to', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('duplicate_flags', sa.JSON(), nullable=False),
    sa.Column('adjusts_receipt_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_by_id', sa.Integer(), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("category in ('media', 'creative', 'gifts', 'events', 'staff')", name=op.f('ck_receipts_category_valid')),
    sa.CheckConstraint("payment_mode in ('company', 'reimbursement')", name=op.f('ck_receipts_payment_mode_valid')),
    sa.CheckConstraint("status in ('draft', 'submitted', 'approved', 'rejected', 'paid')", name=op.f('ck_receipts_status_valid')),
    sa.ForeignKeyConstraint(['adjusts_receipt_id'], ['receipts.id'], name=op.f('fk_receipts_adjusts_receipt_id_receipts')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_receipts_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_receipts_created_by_id_users')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_receipts_decided_by_id_users')),
    sa.ForeignKeyConstraint(['paid_by_id'], ['users.id'], name=op.f('fk_receipts_paid_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipts'))
    )
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.create_index('ix_receipts_campaign_status', ['campaign_id', 'status'], unique=False)
        batch_op.create_index('ix_receipts_expense_date', ['expense_date'], unique=False)
        batch_op.create_index('ix_receipts_vendor_invoice', ['vendor_key', 'invoice_number'], unique=False)

    op.create_table('revenue_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('amount', MoneyAmount(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_revenue_records_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_revenue_records_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revenue_records'))
    )
    with op.batch_alter_table('revenue_records', schema=None) as batch_op:
        batch_op.create_index('ix_revenue_records_campaign_date', ['campaign_id', 'received_on'], unique=False)

    op.create_table('receipt_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('receipt_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['receipt_id'], ['receipts.id'], name=op.f('fk_receipt_attachments_receipt_id_receipts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_receipt_attachments_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt_attachments'))
    )
    with op.batch_alter_table('receipt_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipt_attachments_receipt_id'), ['receipt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipt_attachments_sha256'), ['sha256'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('receipt_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipt_attachments_sha256'))
        batch_op.drop_index(batch_op.f('ix_receipt_attachments_receipt_id'))

    op.drop_table('receipt_attachments')
    with op.batch_alter_table('revenue_records', schema=None) as batch_op:
        batch_op.drop_index('ix_revenue_records_campaign_date')

    op.drop_table('revenue_records')
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_index('ix_receipts_vendor_invoice')
        batch_op.drop_index('ix_receipts_expense_date')
        batch_op.drop_index('ix_receipts_campaign_status')

    op.drop_table('receipts')
    op.drop_table('budget_lines')
    op.drop_table('closed_periods')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaigns_owner_id'))
        batch_op.drop_index(batch_op.f('ix_campaigns_channel_id'))

    op.drop_table('campaigns')
    op.drop_table('exchange_rates')
    op.drop_table('channels')
