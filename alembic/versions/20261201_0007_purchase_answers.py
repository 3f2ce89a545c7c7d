"""purchase answers: a purchase's balance after posting, the purchase behind a tier move

Revision ID: 20261201_0007
Revises: 20261125_0006
Created: 2026-12-01 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '20261201_0007'
down_revision: str | None = '20261125_0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('purchases') as batch:
        batch.add_column(sa.Column('balance_after', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('tier_history') as batch:
        batch.add_column(sa.Column('purchase_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch.create_foreign_key(
            batch.f('fk_tier_history_purchase_id_purchases'), 'purchases', ['purchase_id'], ['id']
        )


def downgrade() -> None:
    with op.batch_alter_table('tier_history') as batch:
        batch.drop_constraint(batch.f('fk_tier_history_purchase_id_purchases'), type_='foreignkey')
        batch.drop_column('purchase_id')
    with op.batch_alter_table('purchases') as batch:
        batch.drop_column('balance_after')
