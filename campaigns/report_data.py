"""The ROI report's inputs from the database: SQL groups, pandas converts currencies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, func, null, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from campaigns import rates
from campaigns.models import Campaign, Channel, Receipt, RevenueRecord
from campaigns.reports import GroupBy, RoiReport, roi_report
from core import bounds
from core.accounts.models import User


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """What the report covers. Each value is held to its bounds when the filter is made, so
    no caller (API, page, command line) can send the database or the date arithmetic a value
    it cannot take."""

    start: date | None = None
    end: date | None = None  # inclusive
    channel: str | None = None  # channel code
    status: str | None = None  # campaign status
    owner_id: int | None = None
    statuses: tuple[str, ...] = ()  # any of these campaign statuses
    campaign_ids: tuple[int, ...] | None = None  # only these campaigns

    def __post_init__(self) -> None:
        if self.start is not None:
            bounds.check_day(self.start, "from", label="The start of the period")
        if self.end is not None:
            bounds.check_day(self.end, "to", label="The end of the period")
        if self.channel is not None:
            bounds.check_text(
                self.channel, "channel", bounds.length(Channel.code), label="The channel"
            )
        for status in (self.status, *self.statuses):
            if status is not None:
                bounds.check_text(
                    status, "status", bounds.length(Campaign.status), label="The status"
                )
        if self.owner_id is not None:
            bounds.check_id(self.owner_id, "owner_id")


def _campaign_conditions(f: ReportFilter) -> list[ColumnElement[bool]]:
    """Which campaigns the report covers. Used for the campaign rows and, as a subquery,
    to narrow the cost and revenue sums, so a one-campaign report sums one campaign."""
    conditions: list[ColumnElement[bool]] = []
    if f.channel:
        channel_ids = select(Channel.id).where(Channel.code == f.channel)
        conditions.append(Campaign.channel_id.in_(channel_ids.scalar_subquery()))
    if f.status:
        conditions.append(Campaign.status == f.status)
    if f.statuses:
        conditions.append(Campaign.status.in_(f.statuses))
    if f.owner_id:
        conditions.append(Campaign.owner_id == f.owner_id)
    if f.campaign_ids is not None:
        conditions.append(Campaign.id.in_(f.campaign_ids))
    if f.start:
        conditions.append(Campaign.ends_on >= f.start)
    if f.end:
        conditions.append(Campaign.starts_on <= f.end)
    return conditions


def of_campaigns(column: InstrumentedAttribute[Any], f: ReportFilter) -> list[ColumnElement[bool]]:
    conditions = _campaign_conditions(f)
    if not conditions:
        return []  # the whole table: no subquery to slow the plain report down
    return [column.in_(select(Campaign.id).where(*conditions).scalar_subquery())]


def _campaigns(session: Session, f: ReportFilter) -> pd.DataFrame:
    query = (
        select(
            Campaign.id,
            Campaign.code,
            Campaign.name,
            Channel.name,
            User.name,
            Campaign.status,
            Campaign.budget_amount,
            Campaign.currency,
            Campaign.starts_on,
        )
        .join(Channel, Channel.id == Campaign.channel_id)
        .join(User, User.id == Campaign.owner_id)
    )
    query = query.where(*_campaign_conditions(f))
    columns = [
        "campaign_id",
        "code",
        "name",
        "channel",
        "owner",
        "status",
        "amount",
        "currency",
        "day",
    ]
    return pd.DataFrame(session.execute(query).all(), columns=columns)


def _in_range(column: InstrumentedAttribute[date], f: ReportFilter) -> list[ColumnElement[bool]]:
    conditions = []
    if f.start:
        conditions.append(column >= f.start)
    if f.end:
        conditions.append(column <= f.end)
    return conditions


def _foreign(currency: InstrumentedAttribute[str], base: str) -> ColumnElement[bool]:
    # A range rather than `!=`, so the index on currency finds the few foreign rows.
    return or_(currency < base, currency > base)


def _grouped(
    session: Session,
    day: InstrumentedAttribute[date],
    currency: InstrumentedAttribute[str],
    keys: list[InstrumentedAttribute[Any]],
    sums: list[ColumnElement[Any]],
    where: list[ColumnElement[bool]],
    base: str,
    by_day: bool,
) -> list[Any]:
    """Rows of (campaign_id, day, *other keys, currency, *sums).

    The day is needed to convert a foreign currency at its date, and for monthly reports.
    Base-currency rows of other reports need no day, so they are summed per campaign:
    far fewer groups, which is most of the report's database time."""

    def query(
        day_column: ColumnElement[Any], extra: list[ColumnElement[bool]], group_day: bool
    ) -> list[Any]:
        group = [keys[0], *([day] if group_day else []), *keys[1:], currency]
        stmt = (
            select(keys[0], day_column, *keys[1:], currency, *sums)
            .where(*where, *extra)
            .group_by(*group)
        )
        return list(session.execute(stmt).all())

    if by_day:
        return query(day.expression, [], True)
    return query(null().label("day"), [currency == base], False) + query(
        day.expression, [_foreign(currency, base)], True
    )


def _costs(session: Session, f: ReportFilter, base: str, by_day: bool) -> pd.DataFrame:
    rows = _grouped(
        session,
        Receipt.expense_date,
        Receipt.currency,
        [Receipt.campaign_id, Receipt.status, Receipt.category],
        [func.sum(Receipt.amount)],
        [
            Receipt.status.in_(("submitted", "approved", "paid")),
            *_in_range(Receipt.expense_date, f),
            *of_campaigns(Receipt.campaign_id, f),
        ],
        base,
        by_day,
    )
    columns = ["campaign_id", "day", "status", "category", "currency", "amount"]
    return pd.DataFrame(rows, columns=columns)


def _manual_revenue(session: Session, f: ReportFilter, base: str, by_day: bool) -> pd.DataFrame:
    rows = _grouped(
        session,
        RevenueRecord.received_on,
        RevenueRecord.currency,
        [RevenueRecord.campaign_id],
        [func.sum(RevenueRecord.amount), func.sum(RevenueRecord.orders)],
        [*_in_range(RevenueRecord.received_on, f), *of_campaigns(RevenueRecord.campaign_id, f)],
        base,
        by_day,
    )
    columns = ["campaign_id", "day", "currency", "amount", "orders"]
    return pd.DataFrame(rows, columns=columns)


def _to_base(frame: pd.DataFrame, table: pd.DataFrame, base: str) -> pd.DataFrame:
    frame = frame.copy()
    frame["amount"] = rates.convert(frame, table, base)
    return frame


def build(
    session: Session,
    base: str,
    f: ReportFilter,
    group_by: GroupBy = "campaign",
    extra_revenue: pd.DataFrame | None = None,
) -> RoiReport:
    """The ROI report. `extra_revenue` (campaign_id, day, amount in base, orders) is how
    purchase revenue from loyalty/attribution joins the manual revenue records."""
    by_day = group_by == "month"
    frames = [
        _campaigns(session, f),
        _costs(session, f, base, by_day),
        _manual_revenue(session, f, base, by_day),
    ]
    table = rates.rates_frame(session, set().union(*(fr["currency"] for fr in frames)) - {base})
    campaigns, costs, revenue = (_to_base(fr, table, base) for fr in frames)
    campaigns = campaigns.rename(columns={"amount": "budget"})
    revenue = revenue[["campaign_id", "day", "amount", "orders"]]
    if extra_revenue is not None and len(extra_revenue):
        revenue = pd.concat([revenue, extra_revenue[revenue.columns]], ignore_index=True)
    revenue["orders"] = revenue["orders"].astype("Int64")
    return roi_report(campaigns, costs, revenue, group_by=group_by, currency=base)
