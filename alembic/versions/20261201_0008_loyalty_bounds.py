"""loyalty bounds: the program's limits on a manual adjustment and on multipliers

Revision ID: 20261201_0008
Revises: 20261201_0007
Created: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '20261201_0008'
down_revision: str | None = '20261201_0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECKS = {
    'max_adjustment_positive': 'max_adjustment > 0',
    'max_multiplier_at_least_one': 'max_multiplier >= 1',
}


def upgrade() -> None:
    op.add_column(
        'loyalty_program',
        sa.Column('max_adjustment', sa.Integer(), nullable=False, server_default='100000'),
    )
    op.add_column(
        'loyalty_program',
        sa.Column(
            'max_multiplier', sa.Numeric(precision=6, scale=3), nullable=False, server_default='10'
        ),
    )
    if op.get_bind().dialect.name == 'postgresql':
        for name, condition in _CHECKS.items():
            op.create_check_constraint(
                op.f(f'ck_loyalty_program_{name}'), 'loyalty_program', condition
            )
    # SQLite cannot add a CHECK to an existing table without copying it, and copying would
    # drop the table's settings-version triggers (migration 0006): the service checks both
    # bounds on every change, so SQLite goes without these two guards.


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name in reversed(_CHECKS):
            op.drop_constraint(op.f(f'ck_loyalty_program_{name}'), 'loyalty_program', type_='check')
    op.drop_column('loyalty_program', 'max_multiplier')
    op.drop_column('loyalty_program', 'max_adjustment')
