"""The ROI report's inputs from the database: SQL groups, pandas converts currencies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from campaigns import rates
from campaigns.models import Campaign, Channel, Receipt, RevenueRecord
from campaigns.reports import GroupBy, RoiReport, roi_report
from core.accounts.models import User


@dataclass(frozen=True, slots=True)
class ReportFilter:
    start: date | None = None
    end: date | None = None  # inclusive
    channel: str | None = None  # channel code
    status: str | None = None  # campaign status
    owner_id: int | None = None
    campaign_id: int | None = None


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
    if f.channel:
        query = query.where(Channel.code == f.channel)
    if f.status:
        query = query.where(Campaign.status == f.status)
    if f.owner_id:
        query = query.where(Campaign.owner_id == f.owner_id)
    if f.campaign_id:
        query = query.where(Campaign.id == f.campaign_id)
    if f.start:
        query = query.where(Campaign.ends_on >= f.start)
    if f.end:
        query = query.where(Campaign.starts_on <= f.end)
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


def _costs(session: Session, f: ReportFilter) -> pd.DataFrame:
    query = (
        select(
            Receipt.campaign_id,
            Receipt.expense_date,
            Receipt.status,
            Receipt.category,
            Receipt.currency,
            func.sum(Receipt.amount),
        )
        .where(
            Receipt.status.in_(("submitted", "approved", "paid")),
            *_in_range(Receipt.expense_date, f),
        )
        .group_by(
            Receipt.campaign_id,
            Receipt.expense_date,
            Receipt.status,
            Receipt.category,
            Receipt.currency,
        )
    )
    columns = ["campaign_id", "day", "status", "category", "currency", "amount"]
    return pd.DataFrame(session.execute(query).all(), columns=columns)


def _manual_revenue(session: Session, f: ReportFilter) -> pd.DataFrame:
    query = (
        select(
            RevenueRecord.campaign_id,
            RevenueRecord.received_on,
            RevenueRecord.currency,
            func.sum(RevenueRecord.amount),
            func.sum(RevenueRecord.orders),
        )
        .where(*_in_range(RevenueRecord.received_on, f))
        .group_by(RevenueRecord.campaign_id, RevenueRecord.received_on, RevenueRecord.currency)
    )
    columns = ["campaign_id", "day", "currency", "amount", "orders"]
    return pd.DataFrame(session.execute(query).all(), columns=columns)


def _to_base(session: Session, frame: pd.DataFrame, base: str) -> pd.DataFrame:
    frame = frame.copy()
    table = rates.rates_frame(session, set(frame["currency"]) - {base})
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
    campaigns = _to_base(session, _campaigns(session, f), base).rename(columns={"amount": "budget"})
    costs = _to_base(session, _costs(session, f), base)
    revenue = _to_base(session, _manual_revenue(session, f), base)
    revenue = revenue[["campaign_id", "day", "amount", "orders"]]
    if extra_revenue is not None and len(extra_revenue):
        revenue = pd.concat([revenue, extra_revenue[revenue.columns]], ignore_index=True)
    revenue["orders"] = revenue["orders"].astype("Int64")
    return roi_report(campaigns, costs, revenue, group_by=group_by, currency=base)
