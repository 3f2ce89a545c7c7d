"""tiers, rewards, bonus rules and coupon batches: an optional Chinese name (name_zh) that
members reading the portal in Chinese see instead of the name

Revision ID: 20261201_0012
Revises: 20261201_0011
Created: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261201_0012"
down_revision: str | None = "20261201_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each table and the length of its name column: the Chinese name is bounded like the name.
NAMED = {"tiers": 64, "rewards": 100, "bonus_rules": 100, "coupon_batches": 100}
# Never by copying the table on SQLite (ALTER TABLE ADD / DROP COLUMN do it in place): a copy
# would lose the settings-version triggers on tiers and bonus rules (migration 0006).
IN_PLACE = "never"


def upgrade() -> None:
    for table, length in NAMED.items():
        with op.batch_alter_table(table, recreate=IN_PLACE) as batch:
            batch.add_column(sa.Column("name_zh", sa.String(length), nullable=True))


def downgrade() -> None:
    for table in reversed(NAMED):
        with op.batch_alter_table(table, recreate=IN_PLACE) as batch:
            batch.drop_column("name_zh")
