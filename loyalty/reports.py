"""Loyalty figures for reports: purchase revenue for the campaign ROI report.

A purchase counts in the report when it is made, by the base amount booked when it was
recorded; a refund counts when it is made, as minus its own booked base amount, and the
refund that completes a full refund takes the purchase's order back then. So a refund made in
October lowers October, never September: a closed month's figures never change, and a month
filtered alone equals its row in the monthly report.

Monthly reports bucket each purchase and refund by its own local date in the configured zone,
summer time included: PostgreSQL converts with its zone database; SQLite, which has none, is
given the zone's UTC offsets over the rows' time span (from `zoneinfo`), one per span between
offset changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, Date, and_, case, cast, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from campaigns import report_data
from campaigns.report_data import ReportFilter
from campaigns.reports import GroupBy, RoiReport
from loyalty.models import Purchase, PurchaseState, Refund

_DAY = timedelta(days=1)


def _offset(zone: ZoneInfo, at: int) -> int:
    """The zone's UTC offset in seconds at POSIX second `at`."""
    offset = datetime.fromtimestamp(at, UTC).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def offset_spans(zone: ZoneInfo, first: datetime, last: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offsets (seconds) from `first` to `last`: (from, offset) pairs, the
    first from `first`, each next one from the exact second the offset changed. Days are
    stepped through and each change is found to the second by bisection."""
    start, end = int(first.timestamp()), int(last.timestamp()) + 1
    current = _offset(zone, start)
    spans = [(first, current)]
    step = int(_DAY.total_seconds())
    at = start
    while at < end:
        following = min(at + step, end)
        if _offset(zone, following) == current:
            at = following
            continue
        low, high = at, following  # the offset is `current` at low and not at high
        while high - low > 1:
            middle = (low + high) // 2
            if _offset(zone, middle) == current:
                low = middle
            else:
                high = middle
        current = _offset(zone, high)
        spans.append((datetime.fromtimestamp(high, UTC), current))
        at = high
    return spans


def local_day(
    session: Session,
    zone: ZoneInfo,
    column: InstrumentedAttribute[datetime],
    where: list[ColumnElement[bool]],
) -> ColumnElement[Any]:
    """`column`'s local date in `zone`, for each row by its own UTC offset."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(zone.key, column), Date)
    first, last = session.execute(select(func.min(column), func.max(column)).where(*where)).one()
    if first is None or last is None:
        return func.date(column)  # no rows to bucket
    spans = offset_spans(zone, first, last)

    def shifted(seconds: int) -> ColumnElement[Any]:
        return func.date(column, f"{seconds:+d} seconds")

    if len(spans) == 1:
        return shifted(spans[0][1])
    # Latest span first: most rows are recent.
    whens = [(column >= since, shifted(seconds)) for since, seconds in reversed(spans[1:])]
    return case(*whens, else_=shifted(spans[0][1]))


def _in_period(
    column: InstrumentedAttribute[datetime], f: ReportFilter, zone: ZoneInfo
) -> list[ColumnElement[bool]]:
    conditions = []
    if f.start:
        conditions.append(column >= datetime.combine(f.start, time(0), zone))
    if f.end:
        conditions.append(column < datetime.combine(f.end + _DAY, time(0), zone))
    return conditions


def _grouped(
    session: Session,
    base: str,
    zone: ZoneInfo,
    by_day: bool,
    at: InstrumentedAttribute[datetime],
    amount: Any,
    orders: ColumnElement[Any],
    where: list[ColumnElement[bool]],
    sign: int,
) -> pd.DataFrame:
    keys: list[Any] = [Purchase.campaign_id]
    if by_day:
        keys.append(local_day(session, zone, at, where))
    frame = report_data.booked_groups(session, keys, amount, [orders], where, base)
    frame = frame.rename(columns={"key_0": "campaign_id", "sum_0": "orders"})
    if by_day:
        frame = frame.rename(columns={"key_1": "day"})
        frame["day"] = pd.to_datetime(frame["day"]).dt.date
    else:
        frame.insert(1, "day", None)
    frame["amount"] = [sign * a for a in frame["amount"]]
    frame["orders"] = [sign * int(n or 0) for n in frame["orders"]]
    return frame[["campaign_id", "day", "amount", "orders"]]


def purchase_revenue(
    session: Session, f: ReportFilter, zone: ZoneInfo, *, by_day: bool, base: str = "CNY"
) -> pd.DataFrame:
    """Net purchase revenue (booked base amounts of purchases less those of refunds) and
    orders per campaign — and per local day for monthly reports — each counted when it
    happened. A purchase counts for the campaign whose code it carried, or whose coupon it
    used; its refunds count for the same campaign."""
    campaigns = [
        Purchase.campaign_id.is_not(None),
        *report_data.of_campaigns(Purchase.campaign_id, f),
    ]
    sold = _grouped(
        session,
        base,
        zone,
        by_day,
        Purchase.occurred_at,
        Purchase.base_amount,
        func.count(Purchase.id),
        [*campaigns, *_in_period(Purchase.occurred_at, f, zone)],
        1,
    )
    # The refund that made a purchase fully refunded (its last) takes the order back.
    last_refund = (
        select(func.max(Refund.id))
        .where(Refund.purchase_id == Purchase.id)
        .correlate(Purchase)
        .scalar_subquery()
    )
    completes = and_(Purchase.state == PurchaseState.REFUNDED, Refund.id == last_refund)
    refunded_where = [
        Refund.purchase_id == Purchase.id,
        *campaigns,
        *_in_period(Refund.occurred_at, f, zone),
    ]
    refunded = _grouped(
        session,
        base,
        zone,
        by_day,
        Refund.occurred_at,
        Refund.base_amount,
        func.count(Refund.id).filter(completes),
        refunded_where,
        -1,
    )
    return pd.concat([sold, refunded], ignore_index=True)


def roi(
    session: Session, base: str, f: ReportFilter, group_by: GroupBy = "campaign", *, zone: ZoneInfo
) -> RoiReport:
    """The ROI report with purchase revenue joined to the manual revenue records."""
    extra = purchase_revenue(session, f, zone, by_day=group_by == "month", base=base)
    return report_data.build(session, base, f, group_by, extra_revenue=extra)
