"""campaign holdouts: a campaign's frozen audience, each member treated or held out, and the
share of its target segment held out

Revision ID: 20261201_0015
Revises: 20261201_0014
Created: 2026-12-01 20:00:00

Existing campaign targets hold nobody out (share 0) and have no frozen audience.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261201_0015"
down_revision: str | None = "20261201_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_audiences",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("held_out", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_audiences_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_campaign_audiences_member_id_members")
        ),
        sa.PrimaryKeyConstraint("campaign_id", "member_id", name=op.f("pk_campaign_audiences")),
    )
    with op.batch_alter_table("campaign_audiences", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_audiences_campaign_held_out", ["campaign_id", "held_out"], unique=False
        )
        batch_op.create_index("ix_campaign_audiences_member_id", ["member_id"], unique=False)

    op.add_column(
        "campaign_targets",
        sa.Column(
            "holdout_share",
            sa.Numeric(precision=3, scale=2),
            nullable=False,
            server_default="0",
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("campaign_targets", schema=None) as batch_op:
        batch_op.drop_column("holdout_share")

    with op.batch_alter_table("campaign_audiences", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_audiences_member_id")
        batch_op.drop_index("ix_campaign_audiences_campaign_held_out")

    op.drop_table("campaign_audiences")
