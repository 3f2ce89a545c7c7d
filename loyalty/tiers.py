"""Tiers: upgrade the moment a threshold is crossed (`plans.upgrade`, on each purchase);
downgrade only at the nightly evaluation, one level at a time, once the member has held the
tier for the retention period.

The qualifying metric is read from purchases in the rolling window: points earned minus
points reversed, or net spend in the base currency. The evaluation is set-based: one
INSERT … SELECT computes every member's target into a temporary table, one UPDATE moves
them, one INSERT writes the history. No Python loop over members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Numeric,
    Table,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.timeutil import UTCDateTime
from loyalty import program as program_settings
from loyalty.models import Member, MemberStatus, Program, Purchase, Tier, TierChange, TierMetric


@dataclass(frozen=True, slots=True)
class TierMove:
    from_tier: str
    to_tier: str
    reason: str


def window_start(program: Program, at: datetime) -> datetime:
    # Months as 30.44 days: a rolling window needs no calendar arithmetic per member.
    return at - timedelta(days=round(program.tier_window_months * 30.44))


def _metric(session: Session, program: Program) -> ColumnElement[int]:
    if program.tier_metric == TierMetric.SPEND:
        # Whole units of the base currency. MoneyAmount is ten-thousandths on SQLite.
        total = func.coalesce(func.sum(type_coerce(Purchase.net_base_amount, Numeric())), 0)
        if session.get_bind().dialect.name == "sqlite":
            return type_coerce(total / 10_000, BigInteger)
        return cast(func.trunc(total), BigInteger)
    return func.coalesce(func.sum(Purchase.points_earned - Purchase.points_reversed), 0)


def metric(session: Session, program: Program, member_id: int, at: datetime) -> int:
    value = session.scalar(
        select(_metric(session, program)).where(
            Purchase.member_id == member_id,
            Purchase.occurred_at >= window_start(program, at),
            Purchase.occurred_at <= at,
        )
    )
    return int(value or 0)


def unit(program: Program, base_currency: str) -> str:
    return "points" if program.tier_metric == TierMetric.POINTS else base_currency


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a member stands, for the portal's progress bar and its two sentences."""

    tier: Tier
    next_tier: Tier | None
    value: int  # the qualifying metric over the rolling window, now
    unit: str  # "points" or the base currency
    needed: int  # still needed for the next tier (0 at the top)
    # The oldest purchase that counts leaves the window then: reach the next tier before,
    # or more is needed after. None when nothing counts yet.
    by: datetime | None
    keeps: bool  # the metric still covers the current tier's threshold
    review_from: datetime  # no downgrade before this (the retention period)


def progress(session: Session, member: Member, at: datetime, base_currency: str) -> Progress:
    program = program_settings.get(session)
    ladder = program_settings.ladder(session)
    current = next(t for t in ladder if t.id == member.tier_id)
    higher = [t for t in ladder if t.rank > current.rank]
    value = metric(session, program, member.id, at)
    start = window_start(program, at)
    oldest = session.scalar(
        select(func.min(Purchase.occurred_at)).where(
            Purchase.member_id == member.id,
            Purchase.occurred_at >= start,
            Purchase.occurred_at <= at,
        )
    )
    next_tier = higher[0] if higher else None
    return Progress(
        tier=current,
        next_tier=next_tier,
        value=value,
        unit=unit(program, base_currency),
        needed=max(0, next_tier.threshold - value) if next_tier else 0,
        by=oldest + (at - start) if oldest else None,
        keeps=value >= current.threshold,
        review_from=member.tier_since + timedelta(days=program.tier_retention_days),
    )


_scratch = MetaData()
_evaluation = Table(
    "tier_evaluation",
    _scratch,
    Column("member_id", Integer, primary_key=True),
    Column("from_tier_id", Integer),
    Column("to_tier_id", Integer),
    Column("metric_value", BigInteger),
    Column("upgrade", Integer),
    prefixes=["TEMPORARY"],
)


def evaluate(session: Session, at: datetime, *, upgrades_only: bool = False) -> dict[str, int]:
    """The nightly evaluation for every active member; returns counts of moves.
    `upgrades_only` (after a bulk import) moves members up and nobody down."""
    program = program_settings.get(session)
    connection = session.connection()
    _evaluation.drop(connection, checkfirst=True)
    _evaluation.create(connection)
    try:
        return _evaluate(session, program, at, upgrades_only)
    finally:
        _evaluation.drop(connection, checkfirst=True)


def _evaluate(
    session: Session, program: Program, at: datetime, upgrades_only: bool
) -> dict[str, int]:
    metrics = (
        select(Purchase.member_id.label("member_id"), _metric(session, program).label("value"))
        .where(
            Purchase.occurred_at >= window_start(program, at),
            Purchase.occurred_at <= at,
            Purchase.member_id.is_not(None),
        )
        .group_by(Purchase.member_id)
        .subquery()
    )
    # The ladder as bands: each tier with the next threshold up and the tier one below,
    # so every member joins two rows instead of running a subquery each.
    bands = select(
        Tier.id,
        Tier.rank,
        Tier.threshold,
        func.lead(Tier.threshold).over(order_by=Tier.rank).label("next_threshold"),
        func.lag(Tier.id).over(order_by=Tier.rank).label("lower_id"),
    ).subquery()
    current = bands.alias("current_band")
    qualified = bands.alias("qualified_band")
    value = func.coalesce(metrics.c.value, 0)
    retained_until = at - timedelta(days=program.tier_retention_days)
    up = qualified.c.rank > current.c.rank
    candidates = (
        select(
            Member.id.label("member_id"),
            Member.tier_id.label("from_tier_id"),
            case((up, qualified.c.id), else_=current.c.lower_id).label("to_tier_id"),
            func.cast(value, BigInteger).label("metric_value"),
            case((up, 1), else_=0).label("upgrade"),
        )
        .join(current, current.c.id == Member.tier_id)
        .outerjoin(metrics, metrics.c.member_id == Member.id)
        .join(
            qualified,
            and_(
                qualified.c.threshold <= value,
                (qualified.c.next_threshold.is_(None)) | (qualified.c.next_threshold > value),
            ),
        )
        .where(
            Member.status == MemberStatus.ACTIVE,
            up
            | and_(
                literal(not upgrades_only),
                qualified.c.rank < current.c.rank,
                Member.tier_since <= retained_until,
            ),
        )
    )
    session.execute(
        insert(_evaluation).from_select(
            ["member_id", "from_tier_id", "to_tier_id", "metric_value", "upgrade"], candidates
        )
    )
    ev = _evaluation
    # Guarded by the tier the evaluation saw: a purchase that moved the member meanwhile wins.
    session.execute(
        update(Member)
        .where(Member.id == ev.c.member_id, Member.tier_id == ev.c.from_tier_id)
        .values(tier_id=ev.c.to_tier_id, tier_since=at)
        .execution_options(synchronize_session=False)
    )
    to_tier = Tier.__table__.alias("to_tier")
    window = f"in {program.tier_window_months} months"
    reason = case(
        (ev.c.upgrade == 1, literal("Reached ") + to_tier.c.name),
        else_=literal("Moved down to ")
        + to_tier.c.name
        + literal(f": below the previous tier's threshold {window}"),
    )
    moved = (
        select(
            ev.c.member_id,
            ev.c.from_tier_id,
            ev.c.to_tier_id,
            reason,
            ev.c.metric_value,
            literal(at, UTCDateTime()),
        )
        .join(to_tier, to_tier.c.id == ev.c.to_tier_id)
        .join(
            Member,
            and_(
                Member.id == ev.c.member_id,
                Member.tier_id == ev.c.to_tier_id,
                Member.tier_since == literal(at, UTCDateTime()),
            ),
        )
    )
    session.execute(
        insert(TierChange).from_select(
            ["member_id", "from_tier_id", "to_tier_id", "reason", "metric_value", "changed_at"],
            moved,
        )
    )
    # Count the moves that happened (a purchase may have moved a member meanwhile).
    done = moved.with_only_columns(ev.c.upgrade, func.count()).group_by(ev.c.upgrade)
    counts = {int(up): int(n) for up, n in session.execute(done).all()}
    session.expire_all()
    return {"upgraded": counts.get(1, 0), "downgraded": counts.get(0, 0)}
