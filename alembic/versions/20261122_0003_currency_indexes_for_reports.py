"""currency indexes for reports

Revision ID: 20261122_0003
Revises: 20261122_0002
Created: 2026-11-22 13:22:19.007762
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '20261122_0003'
down_revision: str | None = '20261122_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.create_index('ix_receipts_currency', ['currency'], unique=False)

    with op.batch_alter_table('revenue_records', schema=None) as batch_op:
        batch_op.create_index('ix_revenue_records_currency', ['currency'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('revenue_records', schema=None) as batch_op:
        batch_op.drop_index('ix_revenue_records_currency')

    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_index('ix_receipts_currency')

