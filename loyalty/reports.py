"""Loyalty figures for reports: purchase revenue for the campaign ROI report."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, Date, cast, func, select
from sqlalchemy.orm import Session

from campaigns import report_data
from campaigns.report_data import ReportFilter
from campaigns.reports import GroupBy, RoiReport
from core.timeutil import utcnow
from loyalty.models import Purchase, PurchaseState


def _local_day(session: Session, zone: ZoneInfo) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(zone.key, Purchase.occurred_at), Date)
    # SQLite has no zone database: shift by the zone's offset now (exact for zones
    # without daylight saving, such as the default Asia/Shanghai).
    offset = utcnow().astimezone(zone).utcoffset() or timedelta(0)
    return func.date(Purchase.occurred_at, f"{int(offset.total_seconds() // 60):+d} minutes")


def purchase_revenue(
    session: Session, f: ReportFilter, zone: ZoneInfo, *, by_day: bool
) -> pd.DataFrame:
    """Net purchase revenue (after refunds, base currency) and orders per campaign — and per
    local day for monthly reports. A purchase counts for the campaign whose code it carried,
    or whose coupon it used."""
    day = _local_day(session, zone) if by_day else None
    keys: list[Any] = [Purchase.campaign_id, *([day] if day is not None else [])]
    query = (
        select(
            *keys,
            func.sum(Purchase.net_base_amount),
            func.count(Purchase.id).filter(Purchase.state != PurchaseState.REFUNDED),
        )
        .where(
            Purchase.campaign_id.is_not(None), *report_data.of_campaigns(Purchase.campaign_id, f)
        )
        .group_by(*keys)
    )
    if f.start:
        query = query.where(Purchase.occurred_at >= datetime.combine(f.start, time(0), zone))
    if f.end:
        end = datetime.combine(f.end + timedelta(days=1), time(0), zone)
        query = query.where(Purchase.occurred_at < end)
    rows = session.execute(query).all()
    if by_day:
        frame = pd.DataFrame(rows, columns=["campaign_id", "day", "amount", "orders"])
        frame["day"] = pd.to_datetime(frame["day"]).dt.date
    else:
        frame = pd.DataFrame(rows, columns=["campaign_id", "amount", "orders"])
        frame.insert(1, "day", None)
    return frame


def roi(
    session: Session, base: str, f: ReportFilter, group_by: GroupBy = "campaign", *, zone: ZoneInfo
) -> RoiReport:
    """The ROI report with purchase revenue joined to the manual revenue records."""
    extra = purchase_revenue(session, f, zone, by_day=group_by == "month")
    return report_data.build(session, base, f, group_by, extra_revenue=extra)
