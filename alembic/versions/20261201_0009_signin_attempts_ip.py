"""sign-in attempts: an index for the per-address count

Revision ID: 20261201_0009
Revises: 20261201_0008
Created: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261201_0009"
down_revision: str | None = "20261201_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_signin_attempts_ip_at", "signin_attempts", ["ip", "attempted_at"])


def downgrade() -> None:
    op.drop_index("ix_signin_attempts_ip_at", table_name="signin_attempts")
