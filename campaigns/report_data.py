"""The ROI report's inputs from the database: SQL groups, pandas books and converts.

Every document's base-currency amount is booked once (`rates.book`: the exact product amount
× rate, rounded half-up to the base currency's minor unit) and the report sums booked amounts
only, so its rows add up to its totals exactly. SQL still does the grouping: base-currency
documents already in whole minor units are summed there (booking them changes nothing), and
the others come back grouped by their own amount and date with a count, so each distinct
document is booked once and multiplied by how many there are.

The date range selects documents by their own dates (receipts by expense date, revenue
records by the date received; purchases and refunds, in `loyalty.reports`, by when they
happened), so a month filtered alone equals that month's row in the monthly report. Which
campaigns are covered is chosen apart from that: by channel, status, owner, ids and their
run dates (`running_from`, `running_to`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, case, func, literal, null, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from campaigns import rates
from campaigns.models import Campaign, Channel, Receipt, RevenueRecord
from campaigns.reports import GroupBy, RoiReport, roi_report
from core import bounds
from core.accounts.models import User
from core.money import MoneyAmount
from core.text import N_


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """What the report covers. Each value is held to its bounds when the filter is made, so
    no caller (API, page, command line) can send the database or the date arithmetic a value
    it cannot take.

    `start` and `end` select documents by their own dates. `running_from` and `running_to`
    select campaigns that ran on any day between them."""

    start: date | None = None
    end: date | None = None  # inclusive
    channel: str | None = None  # channel code
    status: str | None = None  # campaign status
    owner_id: int | None = None
    statuses: tuple[str, ...] = ()  # any of these campaign statuses
    campaign_ids: tuple[int, ...] | None = None  # only these campaigns
    running_from: date | None = None  # campaigns still running on or after this day
    running_to: date | None = None  # campaigns started on or before this day

    def __post_init__(self) -> None:
        for day, field, label in (
            (self.start, "from", N_("The start of the period")),
            (self.end, "to", N_("The end of the period")),
            (self.running_from, "running_from", N_("The start of the campaigns' run")),
            (self.running_to, "running_to", N_("The end of the campaigns' run")),
        ):
            if day is not None:
                bounds.check_day(day, field, label=label)
        if self.channel is not None:
            bounds.check_text(
                self.channel, "channel", bounds.length(Channel.code), label=N_("The channel")
            )
        for status in (self.status, *self.statuses):
            if status is not None:
                bounds.check_text(
                    status, "status", bounds.length(Campaign.status), label=N_("The status")
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
    if f.running_from:
        conditions.append(Campaign.ends_on >= f.running_from)
    if f.running_to:
        conditions.append(Campaign.starts_on <= f.running_to)
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
            Campaign.ends_on,
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
        "ends_on",
    ]
    frame = pd.DataFrame(session.execute(query).all(), columns=columns)
    frame["n"] = 1
    return frame


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


def unbooked(amount: Any, base: str) -> ColumnElement[Any]:
    """NULL for an amount already in whole minor units of `base` (booking it changes
    nothing, so SQL may sum it), else the amount itself. The modulus is bound as a money
    amount, so it is 0.01 on PostgreSQL and 100 ten-thousandths on SQLite, as the column."""
    unit = literal(rates.minor_unit(base), MoneyAmount())
    return case((amount % unit == 0, null()), else_=amount)


def booked_groups(
    session: Session,
    keys: list[Any],
    amount: Any,
    sums: list[ColumnElement[Any]],
    where: list[ColumnElement[bool]],
    base: str,
) -> pd.DataFrame:
    """Sums of amounts already in the base currency (e.g. purchases' booked base amounts),
    grouped by `keys`, as columns key_0…, amount, *sums: whole-minor-unit amounts summed in
    SQL, any other booked to the minor unit one by one. One row per group and distinct odd
    amount; callers sum the rows."""
    odd = unbooked(amount, base)
    stmt = (
        select(*keys, odd, func.sum(amount), func.count(), *sums).where(*where).group_by(*keys, odd)
    )
    names = [f"key_{i}" for i in range(len(keys))]
    extra = [f"sum_{i}" for i in range(len(sums))]
    frame = pd.DataFrame(session.execute(stmt).all(), columns=[*names, "odd", "total", "n", *extra])
    booked = [
        total if pd.isna(odd_amount) else rates.book(odd_amount, 1, base) * int(n)
        for odd_amount, total, n in zip(frame["odd"], frame["total"], frame["n"], strict=True)
    ]
    frame["amount"] = pd.Series(booked, index=frame.index, dtype=object)
    return frame[[*names, "amount", *extra]]


def _grouped(
    session: Session,
    day: InstrumentedAttribute[date],
    currency: InstrumentedAttribute[str],
    amount: InstrumentedAttribute[Decimal],
    keys: list[InstrumentedAttribute[Any]],
    sums: list[ColumnElement[Any]],
    where: list[ColumnElement[bool]],
    base: str,
    by_day: bool,
) -> list[Any]:
    """Rows of (campaign_id, day, *other keys, currency, amount, n, *sums): `n` documents of
    `amount` each, to be booked one by one (n × book(amount)), or (n = 1) an exact sum of
    base-currency amounts already in whole minor units.

    Each foreign document is converted at its own date and booked alone, so foreign rows
    group by date and amount. Base-currency rows need a date only for monthly reports; those
    in whole minor units are summed in SQL, far fewer groups, which is most of the report's
    database time."""
    odd = unbooked(amount, base)
    group_day = [day] if by_day else []
    base_rows = session.execute(
        select(
            keys[0],
            day.expression if by_day else null().label("day"),
            *keys[1:],
            currency,
            odd,
            func.sum(amount),
            func.count(),
            *sums,
        )
        .where(*where, currency == base)
        .group_by(keys[0], *group_day, *keys[1:], currency, odd)
    ).all()
    rows: list[Any] = []
    for row in base_rows:
        *head, odd_amount, total, n = row[: len(keys) + 5]
        if odd_amount is None:
            rows.append((*head, total, 1, *row[len(keys) + 5 :]))
        else:
            rows.append((*head, odd_amount, n, *row[len(keys) + 5 :]))
    foreign = session.execute(
        select(keys[0], day, *keys[1:], currency, amount, func.count(), *sums)
        .where(*where, _foreign(currency, base))
        .group_by(keys[0], day, *keys[1:], currency, amount)
    ).all()
    return rows + [tuple(r) for r in foreign]


def _costs(session: Session, f: ReportFilter, base: str, by_day: bool) -> pd.DataFrame:
    rows = _grouped(
        session,
        Receipt.expense_date,
        Receipt.currency,
        Receipt.amount,
        [Receipt.campaign_id, Receipt.status, Receipt.category],
        [],
        [
            Receipt.status.in_(("submitted", "approved", "paid")),
            *_in_range(Receipt.expense_date, f),
            *of_campaigns(Receipt.campaign_id, f),
        ],
        base,
        by_day,
    )
    columns = ["campaign_id", "day", "status", "category", "currency", "amount", "n"]
    return pd.DataFrame(rows, columns=columns)


def _manual_revenue(session: Session, f: ReportFilter, base: str, by_day: bool) -> pd.DataFrame:
    rows = _grouped(
        session,
        RevenueRecord.received_on,
        RevenueRecord.currency,
        RevenueRecord.amount,
        [RevenueRecord.campaign_id],
        [func.sum(RevenueRecord.orders)],
        [*_in_range(RevenueRecord.received_on, f), *of_campaigns(RevenueRecord.campaign_id, f)],
        base,
        by_day,
    )
    columns = ["campaign_id", "day", "currency", "amount", "n", "orders"]
    return pd.DataFrame(rows, columns=columns)


def _to_base(frame: pd.DataFrame, table: pd.DataFrame, base: str) -> pd.DataFrame:
    """Each row's booked amount: `n` documents of `amount`, each booked once."""
    frame = frame.copy()
    booked = rates.convert(frame, table, base)
    frame["amount"] = [a * int(n) for a, n in zip(booked, frame["n"], strict=True)]
    return frame.drop(columns="n")


def _ran(campaigns: pd.DataFrame, f: ReportFilter) -> set[int] | None:
    """With a date range, the campaigns that ran in it: shown even without a document dated
    in it (`roi_report` adds those that have one). None: no range, every campaign shown."""
    if not (f.start or f.end):
        return None
    ran = pd.Series(True, index=campaigns.index)
    if f.start:
        ran &= campaigns["ends_on"] >= f.start
    if f.end:
        ran &= campaigns["day"] <= f.end
    return {int(c) for c in campaigns.loc[ran, "campaign_id"]}


def build(
    session: Session,
    base: str,
    f: ReportFilter,
    group_by: GroupBy = "campaign",
    extra_revenue: pd.DataFrame | None = None,
    loyalty_costs: pd.DataFrame | None = None,
) -> RoiReport:
    """The ROI report. `extra_revenue` (campaign_id, day, amount booked in base, orders) is
    how purchase revenue from loyalty/attribution joins the manual revenue records;
    `loyalty_costs` (campaign_id, day, amount booked in base, part: `loyalty.campaign_costs`)
    adds the loyalty cost. A report made without it can take it later
    (`reports.with_loyalty_costs`): it keeps the frames it was made of."""
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
    return roi_report(
        campaigns,
        costs,
        revenue,
        group_by=group_by,
        currency=base,
        loyalty_costs=loyalty_costs,
        ran=_ran(campaigns, f),
    )


def revenue_records(session: Session, campaign_id: int) -> list[RevenueRecord]:
    """A campaign's revenue records, newest first."""
    return list(
        session.scalars(
            select(RevenueRecord)
            .where(RevenueRecord.campaign_id == campaign_id)
            .order_by(RevenueRecord.received_on.desc(), RevenueRecord.id.desc())
        )
    )


def booked_revenue_records(
    session: Session, campaign_id: int, base: str
) -> list[tuple[RevenueRecord, Decimal]]:
    """A campaign's revenue records, newest first, each with its amount booked in `base`
    (`rates.convert`: at the latest rate on or before the date received) exactly as the ROI
    report books it, so they add up to the report's revenue from records. A missing rate
    raises `MissingRate`, as the report does."""
    records = revenue_records(session, campaign_id)
    frame = pd.DataFrame(
        [(r.amount, r.currency, r.received_on) for r in records],
        columns=["amount", "currency", "day"],
    )
    table = rates.rates_frame(session, set(frame["currency"]) - {base})
    return list(zip(records, rates.convert(frame, table, base), strict=True))
