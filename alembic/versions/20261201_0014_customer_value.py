"""customer value: stored value runs and member scores, saved segments, campaign targets, and
the program's value per point

Revision ID: 20261201_0014
Revises: 20261201_0013
Created: 2026-12-01 19:30:00

The value per point starts at 0.01 of the base currency for an existing program (a point
worth a fen); finance sets the program's own on the program settings page.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from core.money import MoneyAmount

revision: str = "20261201_0014"
down_revision: str | None = "20261201_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("actor_label", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_table(
        "value_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("period_days", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("fit", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("actor_label", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_value_runs")),
    )
    op.create_table(
        "campaign_targets",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("audience_size", sa.Integer(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_targets_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_campaign_targets_segment_id_segments")
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_targets")),
    )
    with op.batch_alter_table("campaign_targets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_targets_segment_id"), ["segment_id"], unique=False
        )

    op.create_table(
        "member_scores",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("net_purchases", MoneyAmount(), nullable=False),
        sa.Column("cost_to_serve", MoneyAmount(), nullable=False),
        sa.Column("value", MoneyAmount(), nullable=False),
        sa.Column("predicted_value", MoneyAmount(), nullable=True),
        sa.Column("layer", sa.String(length=24), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("last_purchase", sa.Date(), nullable=True),
        sa.Column("monetary", MoneyAmount(), nullable=False),
        sa.Column("r", sa.SmallInteger(), nullable=True),
        sa.Column("f", sa.SmallInteger(), nullable=True),
        sa.Column("m", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_segment", sa.String(length=32), nullable=False),
        sa.Column("loyalty_type", sa.String(length=16), nullable=False),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("expected_purchases", sa.Float(), nullable=True),
        sa.Column("clv1", MoneyAmount(), nullable=False),
        sa.Column("clv2", MoneyAmount(), nullable=False),
        sa.Column("clv3", MoneyAmount(), nullable=False),
        sa.Column("clv4", MoneyAmount(), nullable=False),
        sa.Column("clv5", MoneyAmount(), nullable=False),
        sa.Column("clv6", MoneyAmount(), nullable=False),
        sa.Column("clv_total", MoneyAmount(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_scores_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["value_runs.id"], name=op.f("fk_member_scores_run_id_value_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "member_id", name=op.f("pk_member_scores")),
    )
    with op.batch_alter_table("member_scores", schema=None) as batch_op:
        batch_op.create_index("ix_member_scores_run_layer", ["run_id", "layer"], unique=False)
        batch_op.create_index(
            "ix_member_scores_run_segment", ["run_id", "rfm_segment"], unique=False
        )

    # A plain ADD COLUMN: a batch (table copy) on SQLite would drop the program's triggers.
    op.add_column(
        "loyalty_program",
        sa.Column(
            "point_value",
            sa.Numeric(precision=10, scale=4),
            nullable=False,
            server_default="0.01",
        ),
    )


def downgrade() -> None:
    op.drop_column("loyalty_program", "point_value")

    with op.batch_alter_table("member_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_member_scores_run_segment")
        batch_op.drop_index("ix_member_scores_run_layer")

    op.drop_table("member_scores")
    with op.batch_alter_table("campaign_targets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_targets_segment_id"))

    op.drop_table("campaign_targets")
    op.drop_table("value_runs")
    op.drop_table("segments")
