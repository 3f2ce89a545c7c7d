"""Tables of attribution: touchpoints, visitor links, stored runs and their credits.

A **touchpoint** is one contact of a person with a channel (and optionally a campaign): an
impression, a click, a visit, a message, a coupon issued or used, a referral. The person is a
member, or an anonymous visitor id (a cookie, a device) that a later link
(`visitor_links`) ties to a member; one of the two is required. A touchpoint is unique by
(source, external id), so an integration can send a batch again without writing it twice.

A **run** is one model applied to the touchpoints and conversions of a period with its
parameters; its **credits** (one row per channel or campaign) and what the pages show beside
them (the top paths, the Markov transition matrix, ordered Shapley's credits by position) are
stored with it, so a page view reads and never recomputes. Conversions are stored in
`Conversions` (exact: NUMERIC(18, 6) on PostgreSQL, an integer count of millionths on
SQLite); money in `MoneyAmount`, in the base currency named on the run.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.db import Base
from core.money import MoneyAmount
from core.timeutil import UTCDateTime, utcnow

CONVERSION_SCALE = 6  # = attribution.credits.CONVERSION_PLACES, the places credits carry


class TouchKind(StrEnum):
    IMPRESSION = "impression"
    CLICK = "click"
    VISIT = "visit"
    MESSAGE = "message"
    COUPON_ISSUED = "coupon_issued"
    COUPON_USED = "coupon_used"
    REFERRAL = "referral"


class RunStatus(StrEnum):
    COMPLETED = "completed"  # credits computed
    EMPTY = "empty"  # no converting journey with a touch in the period: nothing to credit


class RunModel(StrEnum):
    """The models a run can apply (the names the CLI and the API use)."""

    FIRST = "first"
    LAST = "last"
    LINEAR = "linear"
    TIME_DECAY = "time-decay"
    POSITION = "position"
    MARKOV = "markov"
    SHAPLEY = "shapley"
    ORDERED_SHAPLEY = "ordered-shapley"


def _in(values: type[StrEnum]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


class Conversions(TypeDecorator[Decimal]):
    """A (fractional) number of conversions, exact: NUMERIC(18, 6) on PostgreSQL; on SQLite,
    which has no exact decimal, an integer count of millionths (as `MoneyAmount` does with
    ten-thousandths), so sums in SQL stay exact on both."""

    impl = Numeric(18, CONVERSION_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, CONVERSION_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal | int):
            raise TypeError("conversions must be Decimal, never float")
        exact = Decimal(value).quantize(Decimal(1).scaleb(-CONVERSION_SCALE))
        return int(exact.scaleb(CONVERSION_SCALE)) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        quantum = Decimal(1).scaleb(-CONVERSION_SCALE)
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-CONVERSION_SCALE).quantize(quantum)
        return Decimal(value).quantize(quantum)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


class Touchpoint(Base):
    __tablename__ = "touchpoints"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint(f"kind in {_in(TouchKind)}", name="kind_valid"),
        CheckConstraint("member_id IS NOT NULL OR visitor_id IS NOT NULL", name="has_person"),
        # The aggregation pass reads a period's touches with their person; a member's own.
        Index("ix_touchpoints_occurred_at", "occurred_at"),
        Index("ix_touchpoints_member_time", "member_id", "occurred_at"),
        Index("ix_touchpoints_visitor_time", "visitor_id", "occurred_at"),
        Index("ix_touchpoints_campaign", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    visitor_id: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VisitorLink(Base):
    """An anonymous visitor id that turned out to be a member (signed in, gave a phone).
    One member per visitor; the visitor's touchpoints count as the member's."""

    __tablename__ = "visitor_links"

    visitor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttributionRun(Base):
    """One model over one period with its parameters, and its totals."""

    __tablename__ = "attribution_runs"
    __table_args__ = (
        CheckConstraint(f"model in {_in(RunModel)}", name="model_valid"),
        CheckConstraint(f"status in {_in(RunStatus)}", name="status_valid"),
        CheckConstraint("unit in ('channel', 'campaign')", name="unit_valid"),
        CheckConstraint(
            "markov_order IS NULL OR markov_order BETWEEN 1 AND 3", name="order_in_range"
        ),
        CheckConstraint(
            "period_from IS NULL OR period_to IS NULL OR period_from <= period_to",
            name="period_ordered",
        ),
        # `runs.latest_run`: the newest run of a model with the given parameters.
        Index("ix_attribution_runs_lookup", "model", "unit", "period_from", "period_to", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(16))
    markov_order: Mapped[int | None] = mapped_column(Integer)  # Markov runs only
    unit: Mapped[str] = mapped_column(String(8))
    lookback_days: Mapped[int] = mapped_column(Integer)
    acquisition_lookback_days: Mapped[int] = mapped_column(Integer)
    half_life_days: Mapped[int | None] = mapped_column(Integer)  # time decay only
    collapse_repeats: Mapped[bool] = mapped_column(Boolean)
    signups: Mapped[bool] = mapped_column(Boolean)  # sign-ups counted as conversions
    period_from: Mapped[date | None] = mapped_column(Date)
    period_to: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))  # of every value on the run
    touchpoints: Mapped[int] = mapped_column(BigInteger)  # read for the run
    journeys: Mapped[int] = mapped_column(BigInteger)  # converting and null, in the period
    total_conversions: Mapped[int] = mapped_column(BigInteger)  # with a touch: credited
    total_value: Mapped[Decimal] = mapped_column(MoneyAmount)
    direct_conversions: Mapped[int] = mapped_column(BigInteger)  # no touch in the window
    direct_value: Mapped[Decimal] = mapped_column(MoneyAmount)
    null_journeys: Mapped[int] = mapped_column(BigInteger)
    p_conversion: Mapped[float | None] = mapped_column(Float)  # Markov: P(conversion)
    expected_value: Mapped[float | None] = mapped_column(Float)  # Markov: per journey
    # For the page, so a view never recomputes: the most converting paths; the Markov
    # transition matrix; ordered Shapley's credits by position.
    top_paths: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    transitions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    by_position: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[str] = mapped_column(String(255))  # the actor's label
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttributionCredit(Base):
    """What a run credits to one channel or campaign (`unit_key`: its code)."""

    __tablename__ = "attribution_credits"
    __table_args__ = (
        UniqueConstraint("run_id", "unit_key"),
        Index("ix_attribution_credits_campaign", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("attribution_runs.id", ondelete="CASCADE"))
    unit_key: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    conversions: Mapped[Decimal] = mapped_column(Conversions)
    value: Mapped[Decimal] = mapped_column(MoneyAmount)
    removal_effect: Mapped[float | None] = mapped_column(Float)  # Markov only
    value_removal_effect: Mapped[float | None] = mapped_column(Float)
