"""The facts customer value is computed from, loaded from the product's own tables. SQL does
the aggregation; every query returns at most one row per member (per day, per category or
per membership year) and the pure modules (`summaries`, `pyramid`, `rfm`, `loyalty_types`,
`clv_parts`) apply the rules.

Money is loaded exactly, as a whole number of **ticks** (ten-thousandths of the base
currency, the scale `core.money.MoneyAmount` stores), so amounts can be summed in numpy
without float error and turned back into `Decimal` where a rule needs it.

What counts:

- **Purchases**: members' purchases not refunded in full, at their net base amount (after
  refunds and discounts, as booked), on their local day in the configured zone. A day's
  purchases are one (as the BG/NBD counts them). A day is *discounted* when any of its
  purchases had a discount or a coupon, *tagged* when any carried a campaign code or coupon.
- **Coupon discounts**: coupon redemptions not reversed, in the base currency (a redemption
  in another currency converts at its purchase's own booked rate, base amount ÷ amount).
- **Points**: redeemed = points spent on rewards; bonus = sign-up, first-purchase, repeat,
  birthday and referral bonuses and bonus-rule points (earned beyond the base rate and the
  tier multiplier).
- **Engagement**: portal sign-ins, reward redemptions and referrals made.
- **Categories**: a purchase's net base amount split over its lines' categories in
  proportion to the lines' value; a purchase without lines is category "" (one category).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from campaigns.models import Campaign, CampaignStatus
from loyalty.models import (
    EntryType,
    LedgerEntry,
    Member,
    MemberSession,
    Purchase,
    PurchaseLine,
    PurchaseState,
    Redemption,
    Referral,
    ReferralState,
)
from loyalty.reports import local_day

TICKS = 10_000  # per unit of the base currency
DAY = timedelta(days=1)
YEAR_DAYS = 365


def ticks(session: Session, column: Any) -> ColumnElement[Any]:
    """An amount column as whole ticks: SQLite stores them already; PostgreSQL's NUMERIC(19, 4)
    is scaled."""
    if session.get_bind().dialect.name == "sqlite":
        return type_coerce(column, BigInteger)
    return cast(column * TICKS, BigInteger)


def start_of(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant the local `day` begins."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """The local days a run reads: everything up to `as_of`; the period is the last
    `period_days` of them."""

    as_of: date
    period_days: int
    zone: ZoneInfo

    @property
    def period_start(self) -> date:
        return self.as_of - timedelta(days=self.period_days - 1)

    @property
    def end(self) -> datetime:  # exclusive
        return start_of(self.as_of + DAY, self.zone)

    @property
    def start(self) -> datetime:
        return start_of(self.period_start, self.zone)


def _counted(window: Window) -> list[ColumnElement[bool]]:
    return [
        Purchase.member_id.is_not(None),
        Purchase.state != PurchaseState.REFUNDED,
        Purchase.occurred_at < window.end,
    ]


# Every read here aggregates most of a table. On PostgreSQL: enough memory to sort and hash
# without spilling, and no JIT (compiling the expressions costs more than it saves).
_SETTINGS = ("work_mem = '256MB'", "jit = off")
# A read that groups purchases by member and day: a sequential scan and one sort, never a
# walk of the (member, time) index, whose order is not the table's (purchases are stored as
# they come, in time order), so it reads the heap at random: 3-4 times slower at 10M rows.
_SCAN = ("enable_indexscan = off", "enable_bitmapscan = off")


def _frame(
    session: Session, query: Select[Any] | Any, columns: list[str], *, scan: bool = False
) -> pd.DataFrame:
    """The rows of `query` as a frame; on PostgreSQL through COPY (a million rows a second,
    where fetching them as Python tuples takes ten times as long), with the settings above
    for this statement only (`scan`: also a sequential scan)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return pd.DataFrame(session.execute(query).all(), columns=columns)
    sql = str(query.compile(dialect=bind.dialect, compile_kwargs={"literal_binds": True}))
    settings = _SETTINGS + (_SCAN if scan else ())
    buffer = io.BytesIO()
    raw: Any = session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        for setting in settings:
            cursor.execute(f"SET LOCAL {setting}")
        try:
            with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for chunk in copy:
                    buffer.write(chunk)
        finally:
            for setting in settings:
                cursor.execute(f"RESET {setting.split('=')[0].strip()}")
    buffer.seek(0)
    if not buffer.getbuffer().nbytes:
        return pd.DataFrame({c: [] for c in columns})
    return pd.read_csv(buffer, names=columns, header=None, keep_default_na=True)


def members(session: Session, window: Window) -> pd.DataFrame:
    """Every member who had joined by the end of `as_of`: ``member_id``, ``joined`` (local
    day)."""
    joined = local_day(session, window.zone, Member.joined_at, [])
    query = select(Member.id, joined).where(Member.joined_at < window.end).order_by(Member.id)
    frame = _frame(session, query, ["member_id", "joined"])
    frame["joined"] = pd.to_datetime(frame["joined"]).dt.date
    return frame


def daily(session: Session, window: Window) -> pd.DataFrame:
    """One row per member and local purchase day up to `as_of`: ``customer_id``, ``date``
    (datetime64), ``ticks`` (net spend), ``discounted`` and ``tagged`` (0/1)."""
    where = _counted(window)
    day = local_day(session, window.zone, Purchase.occurred_at, where)
    coupon = exists().where(Redemption.purchase_id == Purchase.id)
    discounted = case((or_(Purchase.discount > 0, coupon), 1), else_=0)
    tagged = case((or_(Purchase.campaign_id.is_not(None), coupon), 1), else_=0)
    query = (
        select(
            Purchase.member_id,
            day,
            func.sum(ticks(session, Purchase.net_base_amount)),
            func.max(discounted),
            func.max(tagged),
        )
        .where(*where)
        .group_by(Purchase.member_id, day)
        .order_by(Purchase.member_id, day)
    )
    frame = _frame(
        session, query, ["customer_id", "date", "ticks", "discounted", "tagged"], scan=True
    )
    frame["date"] = pd.to_datetime(frame["date"])
    for column in ("customer_id", "ticks", "discounted", "tagged"):
        frame[column] = frame[column].astype(np.int64)
    return frame


def _coupon_ticks(session: Session) -> ColumnElement[Any]:
    """A redemption's discount in base ticks: as is in the base currency's purchases, else at
    the purchase's booked rate."""
    same = ticks(session, Redemption.discount)
    converted = cast(
        Redemption.discount * Purchase.base_amount * TICKS / func.nullif(Purchase.amount, 0),
        BigInteger,
    )
    return case((Redemption.currency == Purchase.currency, same), else_=converted)


def _bonus() -> ColumnElement[bool]:
    return or_(
        LedgerEntry.type == EntryType.BONUS,
        and_(LedgerEntry.type == EntryType.EARN, LedgerEntry.bonus_rule_id.is_not(None)),
    )


def period_costs(session: Session, window: Window) -> pd.DataFrame:
    """Per member with any, in the period: ``coupon_ticks`` (coupon discounts),
    ``points_redeemed``, ``bonus_points``, ``engagement`` (sign-ins + redemptions +
    referrals made) and ``referrals`` (friends whose referral completed in the period)."""
    start, end = window.start, window.end
    redeem = LedgerEntry.type == EntryType.REDEEM
    coupons = (
        select(Redemption.member_id.label("member_id"), _coupon_ticks(session).label("c"))
        .join(Purchase, Purchase.id == Redemption.purchase_id)
        .where(
            Redemption.member_id.is_not(None),
            Redemption.reversed_at.is_(None),
            Redemption.redeemed_at >= start,
            Redemption.redeemed_at < end,
        )
    ).subquery()
    frames = {
        "coupon_ticks": _frame(
            session,
            select(coupons.c.member_id, func.sum(coupons.c.c)).group_by(coupons.c.member_id),
            ["member_id", "coupon_ticks"],
        ),
        "points": _frame(
            session,
            select(
                LedgerEntry.member_id,
                func.sum(
                    case((LedgerEntry.type == EntryType.REDEEM, -LedgerEntry.points), else_=0)
                ),
                func.sum(case((_bonus(), LedgerEntry.points), else_=0)),
                func.sum(case((redeem, 1), else_=0)),
            )
            .where(
                LedgerEntry.occurred_at >= start,
                LedgerEntry.occurred_at < end,
                # only these entries count; leaving the plain earnings out before grouping
                # (most of the ledger) is what makes it fast
                or_(
                    LedgerEntry.type.in_([EntryType.REDEEM, EntryType.BONUS]),
                    LedgerEntry.bonus_rule_id.is_not(None),
                ),
            )
            .group_by(LedgerEntry.member_id),
            ["member_id", "points_redeemed", "bonus_points", "redemptions"],
        ),
        "signins": _frame(
            session,
            select(MemberSession.member_id, func.count())
            .where(MemberSession.created_at >= start, MemberSession.created_at < end)
            .group_by(MemberSession.member_id),
            ["member_id", "signins"],
        ),
        "made": _frame(
            session,
            select(Referral.referrer_id, func.count())
            .where(Referral.created_at >= start, Referral.created_at < end)
            .group_by(Referral.referrer_id),
            ["member_id", "referrals_made"],
        ),
        "completed": _frame(
            session,
            select(Referral.referrer_id, func.count())
            .where(
                Referral.state == ReferralState.COMPLETED,
                Referral.completed_at >= start,
                Referral.completed_at < end,
            )
            .group_by(Referral.referrer_id),
            ["member_id", "referrals"],
        ),
    }
    merged = pd.DataFrame({"member_id": pd.Series([], dtype=np.int64)})
    for frame in frames.values():
        merged = merged.merge(frame.astype(np.int64), on="member_id", how="outer")
    merged = merged.fillna(0).astype(np.int64)
    merged["engagement"] = merged["signins"] + merged["redemptions"] + merged["referrals_made"]
    return merged.drop(columns=["signins", "redemptions", "referrals_made"]).set_index("member_id")


def yearly_costs(session: Session, window: Window, point_value_ticks: int) -> pd.DataFrame:
    """Per member and membership year (0 = the first 365 days from joining) up to `as_of`:
    ``cost_ticks`` = coupon discounts + (points redeemed + bonus points) × value per point.
    (The service cost is the same every full year, so it is left to the caller.)"""
    end = window.end

    def year_of(at: Any) -> ColumnElement[Any]:
        if session.get_bind().dialect.name == "sqlite":
            days = func.julianday(at) - func.julianday(Member.joined_at)
            return cast(days / YEAR_DAYS, BigInteger)
        seconds = func.extract("epoch", at - Member.joined_at)
        return cast(func.floor(seconds / (YEAR_DAYS * 86_400)), BigInteger)

    coupon_year = year_of(Redemption.redeemed_at)
    coupons = (
        select(
            Redemption.member_id.label("member_id"),
            coupon_year.label("year"),
            _coupon_ticks(session).label("c"),
        )
        .join(Purchase, Purchase.id == Redemption.purchase_id)
        .join(Member, Member.id == Redemption.member_id)
        .where(Redemption.reversed_at.is_(None), Redemption.redeemed_at < end)
    ).subquery()
    coupon_frame = _frame(
        session,
        select(coupons.c.member_id, coupons.c.year, func.sum(coupons.c.c)).group_by(
            coupons.c.member_id, coupons.c.year
        ),
        ["member_id", "year", "coupon_ticks"],
    )
    points = case((LedgerEntry.type == EntryType.REDEEM, -LedgerEntry.points), else_=0) + case(
        (_bonus(), LedgerEntry.points), else_=0
    )
    entry_year = year_of(LedgerEntry.occurred_at)
    point_frame = _frame(
        session,
        select(LedgerEntry.member_id, entry_year, func.sum(points))
        .join(Member, Member.id == LedgerEntry.member_id)
        .where(LedgerEntry.occurred_at < end)
        .group_by(LedgerEntry.member_id, entry_year),
        ["member_id", "year", "points"],
    )
    merged = coupon_frame.merge(point_frame, on=["member_id", "year"], how="outer").fillna(0)
    merged = merged.astype(np.int64)
    merged["cost_ticks"] = merged["coupon_ticks"] + merged["points"] * point_value_ticks
    return merged[["member_id", "year", "cost_ticks"]]


def category_spend(session: Session, window: Window, *, period_only: bool = False) -> pd.DataFrame:
    """Per member and category: ``ticks`` of net spend (see the module docstring), up to
    `as_of` (or within the period)."""
    where = _counted(window)
    if period_only:
        where.append(Purchase.occurred_at >= window.start)
    lines = (
        select(
            PurchaseLine.purchase_id.label("purchase_id"),
            PurchaseLine.category.label("category"),
            func.sum(PurchaseLine.quantity * PurchaseLine.unit_price).label("value"),
        )
        .group_by(PurchaseLine.purchase_id, PurchaseLine.category)
        .subquery()
    )
    whole = (
        select(lines.c.purchase_id, func.sum(lines.c.value).label("value"))
        .group_by(lines.c.purchase_id)
        .subquery()
    )
    net = ticks(session, Purchase.net_base_amount)
    # A line's share of the purchase's net amount; a purchase without lines is all "".
    share = case(
        (whole.c.value > 0, cast(net * lines.c.value / whole.c.value, BigInteger)),
        else_=literal(0),
    )
    split = (
        select(Purchase.member_id, func.coalesce(lines.c.category, ""), func.sum(share))
        .join(lines, lines.c.purchase_id == Purchase.id)
        .join(whole, whole.c.purchase_id == Purchase.id)
        .where(*where)
        .group_by(Purchase.member_id, func.coalesce(lines.c.category, ""))
    )
    unsplit = (
        select(Purchase.member_id, literal(""), func.sum(net))
        .where(*where, ~exists().where(PurchaseLine.purchase_id == Purchase.id))
        .group_by(Purchase.member_id)
    )
    frame: pd.DataFrame = pd.concat(
        [
            _frame(session, split, ["member_id", "category", "ticks"]),
            _frame(session, unsplit, ["member_id", "category", "ticks"]),
        ]
    )
    frame["category"] = (
        frame["category"].astype(object).where(frame["category"].notna(), "").astype(str)
    )
    frame["ticks"] = frame["ticks"].astype(np.int64)
    summed: pd.DataFrame = frame.groupby(["member_id", "category"], as_index=False, sort=True)[
        ["ticks"]
    ].sum()
    return summed


def first_categories(session: Session, window: Window) -> pd.DataFrame:
    """Per member, the categories of their first purchase day's lines (``member_id``,
    ``category``; "" for a purchase without lines)."""
    where = _counted(window)
    day = local_day(session, window.zone, Purchase.occurred_at, where)
    first = (
        select(Purchase.member_id.label("member_id"), func.min(day).label("day"))
        .where(*where)
        .group_by(Purchase.member_id)
        .subquery()
    )
    query = (
        select(Purchase.member_id, func.coalesce(PurchaseLine.category, ""))
        .join(first, and_(first.c.member_id == Purchase.member_id, first.c.day == day))
        .outerjoin(PurchaseLine, PurchaseLine.purchase_id == Purchase.id)
        .where(*where)
        .distinct()
    )
    frame = _frame(session, query, ["member_id", "category"])
    frame["category"] = (
        frame["category"].astype(object).where(frame["category"].notna(), "").astype(str)
    )
    return frame


def referred_spend(session: Session, window: Window) -> pd.DataFrame:
    """Per referrer: ``ticks`` of net purchases, up to `as_of`, of the friends whose referral
    completed."""
    query = (
        select(Referral.referrer_id, func.sum(ticks(session, Purchase.net_base_amount)))
        .join(Purchase, Purchase.member_id == Referral.referee_id)
        .where(Referral.state == ReferralState.COMPLETED, *_counted(window))
        .group_by(Referral.referrer_id)
    )
    frame = _frame(session, query, ["member_id", "ticks"])
    return frame.astype(np.int64).set_index("member_id")


def campaign_days(session: Session, window: Window) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """For each day of the period, whether any campaign (not a draft or cancelled one) ran."""
    rows = session.execute(
        select(Campaign.starts_on, Campaign.ends_on).where(
            Campaign.status.not_in([CampaignStatus.DRAFT, CampaignStatus.CANCELLED]),
            Campaign.starts_on <= window.as_of,
            Campaign.ends_on >= window.period_start,
        )
    ).all()
    covered = np.zeros(window.period_days, dtype=bool)
    for starts, ends in rows:
        first = max((starts - window.period_start).days, 0)
        last = min((ends - window.period_start).days, window.period_days - 1)
        covered[first : last + 1] = True
    return covered
