"""receipts: the day a receipt was paid and the payment's reference; "my receipts" index

Revision ID: 20261201_0011
Revises: 20261201_0010
Created: 2026-12-01 17:00:00

Receipts paid before this migration get `paid_on` from when the payment was recorded
(`paid_at`), as a date in the configured zone (RETAIN_TIMEZONE), and no reference.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from alembic import op
from core.settings import get_settings

revision: str = "20261201_0011"
down_revision: str | None = "20261201_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("receipts") as batch:
        batch.add_column(sa.Column("paid_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("payment_reference", sa.String(100), nullable=True))
    op.create_index(
        "ix_receipts_created_by_status", "receipts", ["created_by_id", "status"], unique=False
    )
    receipts = sa.table(
        "receipts",
        sa.column("id", sa.Integer()),
        sa.column("paid_at", sa.DateTime(timezone=True)),
        sa.column("paid_on", sa.Date()),
    )
    bind = op.get_bind()
    paid = bind.execute(
        sa.select(receipts.c.id, receipts.c.paid_at).where(receipts.c.paid_at.is_not(None))
    ).all()
    if not paid:
        return
    zone = get_settings().zone
    for receipt_id, paid_at in paid:
        if isinstance(paid_at, str):  # SQLite without the column type's conversion
            paid_at = datetime.fromisoformat(paid_at)
        at = paid_at.replace(tzinfo=UTC) if paid_at.tzinfo is None else paid_at
        bind.execute(
            receipts.update()
            .where(receipts.c.id == receipt_id)
            .values(paid_on=at.astimezone(zone).date())
        )


def downgrade() -> None:
    op.drop_index("ix_receipts_created_by_status", table_name="receipts")
    with op.batch_alter_table("receipts") as batch:
        batch.drop_column("payment_reference")
        batch.drop_column("paid_on")
