"""Tables of customer value: stored value runs with one score row per member, saved segments,
and the segment a campaign targets.

A **value run** computes, as of one day, every member's contributed value (the customer
pyramid), RFM scores and segment, loyalty type, BG/NBD and Gamma-Gamma predictions and CLV in
six parts (`analytics.runs`); its parameters and the fitted models are stored with it, and each
member's results in `member_scores`, so pages, the segment builder and exports read and never
recompute. Money is in the base currency named on the run.

A **segment** is a saved set of conditions over member fields and the latest run's scores
(`analytics.segments`); it is evaluated when used, so its members are always current. A
campaign's target segment is one of them (`campaign_targets`), with the audience size counted
when it was set and the share of it held out (the holdout; its frozen audience is loyalty's
`campaign_audiences`, since loyalty reads it to leave held-out members out).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from core.money import MoneyAmount
from core.timeutil import UTCDateTime, utcnow


class ValueRun(Base):
    __tablename__ = "value_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)  # the last local day of data counted
    period_days: Mapped[int] = mapped_column(Integer)  # the pyramid's period, ending as_of
    currency: Mapped[str] = mapped_column(String(3))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # canonical `ValueParams`
    fit: Mapped[dict[str, Any]] = mapped_column(JSON)  # models, standard errors, holdout
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)  # layer table, counts, averages
    members: Mapped[int] = mapped_column(Integer)
    actor_label: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MemberScore(Base):
    """One member's results in one run. Never updated: a new run writes new rows."""

    __tablename__ = "member_scores"
    __table_args__ = (
        Index("ix_member_scores_run_layer", "run_id", "layer"),
        Index("ix_member_scores_run_segment", "run_id", "rfm_segment"),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("value_runs.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    net_purchases: Mapped[Decimal] = mapped_column(MoneyAmount)  # in the period
    cost_to_serve: Mapped[Decimal] = mapped_column(MoneyAmount)
    value: Mapped[Decimal] = mapped_column(MoneyAmount)
    predicted_value: Mapped[Decimal | None] = mapped_column(MoneyAmount)
    layer: Mapped[str] = mapped_column(String(24))
    purchases: Mapped[int] = mapped_column(Integer)  # ever, same-day merged
    last_purchase: Mapped[date | None] = mapped_column(Date)
    monetary: Mapped[Decimal] = mapped_column(MoneyAmount)  # RFM: net spend ever
    r: Mapped[int | None] = mapped_column(SmallInteger)
    f: Mapped[int | None] = mapped_column(SmallInteger)
    m: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_segment: Mapped[str] = mapped_column(String(32))
    loyalty_type: Mapped[str] = mapped_column(String(16))
    p_alive: Mapped[float | None] = mapped_column(Float)
    expected_purchases: Mapped[float | None] = mapped_column(Float)  # over the horizon
    clv1: Mapped[Decimal] = mapped_column(MoneyAmount)
    clv2: Mapped[Decimal] = mapped_column(MoneyAmount)
    clv3: Mapped[Decimal] = mapped_column(MoneyAmount)
    clv4: Mapped[Decimal] = mapped_column(MoneyAmount)
    clv5: Mapped[Decimal] = mapped_column(MoneyAmount)
    clv6: Mapped[Decimal] = mapped_column(MoneyAmount)
    clv_total: Mapped[Decimal] = mapped_column(MoneyAmount)


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON)  # canonical `segments.Criteria`
    actor_label: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CampaignTarget(Base):
    """The saved segment a campaign targets; one per campaign."""

    __tablename__ = "campaign_targets"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id"), index=True)
    audience_size: Mapped[int] = mapped_column(Integer)  # counted when the target was set
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The share of the segment held out (0 to 0.5); above 0 the audience is frozen, each
    # member treated or held out (`loyalty.models.CampaignAudience`).
    holdout_share: Mapped[Decimal] = mapped_column(Numeric(3, 2), default=Decimal(0))
