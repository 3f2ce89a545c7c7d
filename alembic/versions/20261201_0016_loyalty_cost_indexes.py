"""loyalty cost indexes: the ROI report's loyalty cost finds a campaign's bonus-rule points and
the coupons bought with points by these columns on every view

Revision ID: 20261201_0016
Revises: 20261201_0015
Created: 2026-12-01 20:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261201_0016"
down_revision: str | None = "20261201_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_ledger_entries_bonus_rule_id"), "ledger_entries", ["bonus_rule_id"], unique=False
    )
    op.create_index(
        op.f("ix_coupons_reward_entry_id"), "coupons", ["reward_entry_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_coupons_reward_entry_id"), table_name="coupons")
    op.drop_index(op.f("ix_ledger_entries_bonus_rule_id"), table_name="ledger_entries")
