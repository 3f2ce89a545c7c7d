"""attribution: touchpoints, visitor links, stored runs and their credits

Revision ID: 20261201_0013
Revises: 20261201_0012
Created: 2026-12-01 19:00:00

Conversions on a credit are exact: NUMERIC(18, 6) on PostgreSQL, an integer count of
millionths on SQLite (`attribution.models.Conversions`), as money is in `MoneyAmount`.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from core.money import MoneyAmount

revision: str = "20261201_0013"
down_revision: str | None = "20261201_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CONVERSIONS = sa.Numeric(precision=18, scale=6).with_variant(sa.BigInteger(), "sqlite")
MODELS = (
    "'first', 'last', 'linear', 'time-decay', 'position', 'markov', 'shapley', 'ordered-shapley'"
)
KINDS = "'impression', 'click', 'visit', 'message', 'coupon_issued', 'coupon_used', 'referral'"


def upgrade() -> None:
    op.create_table(
        "touchpoints",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("visitor_id", sa.String(length=64), nullable=True),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"kind in ({KINDS})", name=op.f("ck_touchpoints_kind_valid")),
        sa.CheckConstraint(
            "member_id IS NOT NULL OR visitor_id IS NOT NULL",
            name=op.f("ck_touchpoints_has_person"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_touchpoints_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_touchpoints_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_touchpoints_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_touchpoints")),
        sa.UniqueConstraint(
            "source", "external_id", name=op.f("uq_touchpoints_source_external_id")
        ),
    )
    op.create_index("ix_touchpoints_occurred_at", "touchpoints", ["occurred_at"])
    op.create_index("ix_touchpoints_member_time", "touchpoints", ["member_id", "occurred_at"])
    op.create_index("ix_touchpoints_visitor_time", "touchpoints", ["visitor_id", "occurred_at"])
    op.create_index("ix_touchpoints_campaign", "touchpoints", ["campaign_id"])

    op.create_table(
        "visitor_links",
        sa.Column("visitor_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_visitor_links_member_id_members")
        ),
        sa.PrimaryKeyConstraint("visitor_id", name=op.f("pk_visitor_links")),
    )
    op.create_index(op.f("ix_visitor_links_member_id"), "visitor_links", ["member_id"])

    op.create_table(
        "attribution_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=16), nullable=False),
        sa.Column("markov_order", sa.Integer(), nullable=True),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("lookback_days", sa.Integer(), nullable=False),
        sa.Column("acquisition_lookback_days", sa.Integer(), nullable=False),
        sa.Column("half_life_days", sa.Integer(), nullable=True),
        sa.Column("collapse_repeats", sa.Boolean(), nullable=False),
        sa.Column("signups", sa.Boolean(), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=True),
        sa.Column("period_to", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("touchpoints", sa.BigInteger(), nullable=False),
        sa.Column("journeys", sa.BigInteger(), nullable=False),
        sa.Column("total_conversions", sa.BigInteger(), nullable=False),
        sa.Column("total_value", MoneyAmount(), nullable=False),
        sa.Column("direct_conversions", sa.BigInteger(), nullable=False),
        sa.Column("direct_value", MoneyAmount(), nullable=False),
        sa.Column("null_journeys", sa.BigInteger(), nullable=False),
        sa.Column("p_conversion", sa.Float(), nullable=True),
        sa.Column("expected_value", sa.Float(), nullable=True),
        sa.Column("top_paths", sa.JSON(), nullable=False),
        sa.Column("transitions", sa.JSON(), nullable=True),
        sa.Column("by_position", sa.JSON(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"model in ({MODELS})", name=op.f("ck_attribution_runs_model_valid")),
        sa.CheckConstraint(
            "status in ('completed', 'empty')", name=op.f("ck_attribution_runs_status_valid")
        ),
        sa.CheckConstraint(
            "unit in ('channel', 'campaign')", name=op.f("ck_attribution_runs_unit_valid")
        ),
        sa.CheckConstraint(
            "markov_order IS NULL OR markov_order BETWEEN 1 AND 3",
            name=op.f("ck_attribution_runs_order_in_range"),
        ),
        sa.CheckConstraint(
            "period_from IS NULL OR period_to IS NULL OR period_from <= period_to",
            name=op.f("ck_attribution_runs_period_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_attribution_runs_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribution_runs")),
    )
    op.create_index(
        "ix_attribution_runs_lookup",
        "attribution_runs",
        ["model", "unit", "period_from", "period_to", "id"],
    )

    op.create_table(
        "attribution_credits",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_key", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("conversions", CONVERSIONS, nullable=False),
        sa.Column("value", MoneyAmount(), nullable=False),
        sa.Column("removal_effect", sa.Float(), nullable=True),
        sa.Column("value_removal_effect", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_attribution_credits_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_attribution_credits_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["attribution_runs.id"],
            name=op.f("fk_attribution_credits_run_id_attribution_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribution_credits")),
        sa.UniqueConstraint(
            "run_id", "unit_key", name=op.f("uq_attribution_credits_run_id_unit_key")
        ),
    )
    op.create_index("ix_attribution_credits_campaign", "attribution_credits", ["campaign_id"])


def downgrade() -> None:
    op.drop_index("ix_attribution_credits_campaign", table_name="attribution_credits")
    op.drop_table("attribution_credits")
    op.drop_index("ix_attribution_runs_lookup", table_name="attribution_runs")
    op.drop_table("attribution_runs")
    op.drop_index(op.f("ix_visitor_links_member_id"), table_name="visitor_links")
    op.drop_table("visitor_links")
    op.drop_index("ix_touchpoints_campaign", table_name="touchpoints")
    op.drop_index("ix_touchpoints_visitor_time", table_name="touchpoints")
    op.drop_index("ix_touchpoints_member_time", table_name="touchpoints")
    op.drop_index("ix_touchpoints_occurred_at", table_name="touchpoints")
    op.drop_table("touchpoints")
