"""Points liability and breakage: the facts, loaded from the ledger by SQL, and the report.

The rules are `loyalty.liability` (pure); this module only loads facts and hands them over.

Months are local calendar months in the configured zone: each entry, lot and purchase is put
in the month of its own local date by `loyalty.reports.local_day` (the ROI report's and the
dashboard's bucketing: PostgreSQL converts with its zone database; SQLite is given the zone's
UTC offsets over the rows' span, so summer time is right on both). A report runs from the
first month with a ledger entry to the month of `until`, and counts what is dated before the
local midnight that ends it.

**Month facts** (`month_facts`, `liability.MONTH_COLUMNS`), from the ledger's entries dated
in the month, so that in points the roll-forward is the ledger itself:

- issued: `earn` and `bonus` entries (a purchase's points with its tier, bonus rules, first
  purchase and repeat bonuses; sign-up, birthday and referral bonuses) and positive `adjust`
  entries (a manual correction in the member's favour is a grant, like a bonus); pending
  points count when credited, as they are in the liability from then;
- sold: of which credited on purchases (`source_type = 'purchase'`), and sales: the booked
  base amounts of the purchases that earned them (`Purchase.points_earned > 0`), for the
  allocation;
- redeemed, expired: `redeem` and `expire` entries, as positive numbers;
- reversed: `reverse` entries (points a refund took back, in the month of the refund);
- forfeited: negative `adjust` entries (a correction taking points away), as positive;
- closing = opening + issued − redeemed − expired − reversed − forfeited = the sum of every
  ledger entry dated before the month's end (a test proves it on both databases).

**Cohort flows** (`cohort_flows`, `liability.FLOW_COLUMNS`): where the points came from. A
lot's cohort is the local month it was credited (`Lot.earned_at`, the credit's time).
Redemptions, reversals and negative adjustments are tied to the lots they drew by
`lot_draws`; an expiry is the expire entry the nightly job writes for a lot
(`source_type = 'lot'`, `source_id` = the lot). A refund or a negative adjustment that takes
more than the member holds leaves the rest owed (the balance goes negative); lots that become
active later pay it back without an entry: **settled** = a lot's points − what is left of it −
what its draws and its expiry took, dated the month the lot became spendable
(`available_at`, when the unlock job or the credit pays the debt; the job may run a little
later). So: points held in lots − owed = the ledger's closing points.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Date, and_, cast, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from campaigns import report_data
from core.money import minor_units
from loyalty import liability
from loyalty import program as program_settings
from loyalty.models import EntryType, LedgerEntry, Lot, LotDraw, Purchase
from loyalty.reports import local_day

_CREDITS = (EntryType.EARN.value, EntryType.BONUS.value)
_DRAWN = {  # entry type → cohort flow, for entries tied to lots by lot_draws
    EntryType.REDEEM.value: "redeemed",
    EntryType.REVERSE.value: "reversed",
    EntryType.ADJUST.value: "forfeited",
}


def month_end(until: date, zone: ZoneInfo) -> datetime:
    """Local midnight after the last day of `until`'s month."""
    following = date(until.year + until.month // 12, until.month % 12 + 1, 1)
    return datetime.combine(following, time(0), zone)


def local_month(
    session: Session,
    zone: ZoneInfo,
    column: InstrumentedAttribute[datetime],
    where: list[ColumnElement[bool]],
) -> ColumnElement[Any]:
    """The first day of `column`'s local month in `zone` (from `local_day`)."""
    day = local_day(session, zone, column, where)
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("month", day), Date)
    return func.date(day, "start of month")


def month_facts(
    session: Session, zone: ZoneInfo, until: date, *, base: str = "CNY"
) -> pd.DataFrame:
    """One row per local month (`liability.MONTH_COLUMNS`), from the first month with a
    ledger entry to the month of `until`; empty when the ledger is."""
    end = month_end(until, zone)
    span = [LedgerEntry.occurred_at < end]
    month = local_month(session, zone, LedgerEntry.occurred_at, span)
    sums: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    # One object each in the select and the GROUP BY, so PostgreSQL sees the same bound
    # parameters in both.
    keys = (
        month,
        LedgerEntry.type,
        LedgerEntry.source_type == "purchase",
        LedgerEntry.points > 0,
    )
    rows = session.execute(select(*keys, func.sum(LedgerEntry.points)).where(*span).group_by(*keys))
    for local, kind, on_purchase, positive, points in rows:
        got = sums[_as_date(local)]
        points = int(points)
        if kind in _CREDITS or (kind == EntryType.ADJUST and positive):
            got["issued"] += points
            if kind in _CREDITS and on_purchase:
                got["sold"] += points
        elif kind == EntryType.ADJUST:
            got["forfeited"] -= points
        elif kind == EntryType.REDEEM:
            got["redeemed"] -= points
        elif kind == EntryType.EXPIRE:
            got["expired"] -= points
        elif kind == EntryType.REVERSE:
            got["reversed"] -= points
        else:  # pragma: no cover - the type's check constraint admits no other
            raise ValueError(f"unknown ledger entry type {kind!r}")
    if not sums:
        return pd.DataFrame(columns=list(liability.MONTH_COLUMNS))

    sales: dict[date, Decimal] = defaultdict(Decimal)
    sold_where = [Purchase.occurred_at < end, Purchase.points_earned > 0]
    sale_month = local_month(session, zone, Purchase.occurred_at, sold_where)
    booked = report_data.booked_groups(
        session, [sale_month], Purchase.base_amount, [], sold_where, base
    )
    for local, amount in zip(booked["key_0"], booked["amount"], strict=True):
        sales[_as_date(local)] += Decimal(amount)

    records = []
    balance = 0
    for at in _months(min(sums), until):
        got = sums.get(at, {})
        moved = (
            got.get("issued", 0)
            - got.get("redeemed", 0)
            - got.get("expired", 0)
            - got.get("reversed", 0)
            - got.get("forfeited", 0)
        )
        records.append(
            {
                "month": at,
                "opening": balance,
                "issued": got.get("issued", 0),
                "sold": got.get("sold", 0),
                "sales": sales.get(at, Decimal(0)),
                "redeemed": got.get("redeemed", 0),
                "expired": got.get("expired", 0),
                "reversed": got.get("reversed", 0),
                "forfeited": got.get("forfeited", 0),
                "closing": balance + moved,
            }
        )
        balance += moved
    frame = pd.DataFrame(records, columns=list(liability.MONTH_COLUMNS))
    frame["sales"] = frame["sales"].astype(object)
    return frame


def cohort_flows(session: Session, zone: ZoneInfo, until: date) -> pd.DataFrame:
    """Per (issue month, month) the points of that issue month's lots that were issued,
    redeemed, expired, forfeited, reversed and settled (`liability.FLOW_COLUMNS`), up to the
    month of `until`; only pairs where something moved."""
    end = month_end(until, zone)
    flows: dict[tuple[date, date], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    earned = [Lot.earned_at < end]
    cohort = local_month(session, zone, Lot.earned_at, earned)

    for at, points in session.execute(
        select(cohort, func.sum(Lot.points)).where(*earned).group_by(cohort)
    ):
        flows[(_as_date(at), _as_date(at))]["issued"] += int(points)

    entries = [LedgerEntry.occurred_at < end]
    moved = local_month(session, zone, LedgerEntry.occurred_at, entries)
    drawn = session.execute(
        select(cohort, moved, LedgerEntry.type, func.sum(LotDraw.points))
        .select_from(LotDraw)
        .join(LedgerEntry, LedgerEntry.id == LotDraw.entry_id)
        .join(Lot, Lot.id == LotDraw.lot_id)
        .where(*entries, LedgerEntry.type.in_(list(_DRAWN)))
        .group_by(cohort, moved, LedgerEntry.type)
    )
    for at, when, kind, points in drawn:
        cohort_month, moved_month = _as_date(at), _as_date(when)
        name = _DRAWN[kind]
        if name != "redeemed" and moved_month < cohort_month:
            # A refund or negative adjustment recorded late but dated before the lot it drew
            # from was credited: the points were owed until then and the lot settled them.
            moved_month = cohort_month
        flows[(cohort_month, moved_month)][name] += int(points)

    expired = session.execute(
        select(cohort, moved, func.sum(LedgerEntry.points))
        .select_from(LedgerEntry)
        .join(Lot, and_(LedgerEntry.source_type == "lot", LedgerEntry.source_id == Lot.id))
        .where(*entries, LedgerEntry.type == EntryType.EXPIRE)
        .group_by(cohort, moved)
    )
    for at, when, points in expired:
        flows[(_as_date(at), _as_date(when))]["expired"] -= int(points)

    for at, when, points in _settled(session, zone, end, cohort):
        flows[(_as_date(at), _as_date(when))]["settled"] += int(points)

    records = [
        {"cohort": at, "month": when, **{name: got.get(name, 0) for name in _FLOW_FIGURES}}
        for (at, when), got in sorted(flows.items())
        if any(got.values())
    ]
    return pd.DataFrame(records, columns=list(liability.FLOW_COLUMNS))


_FLOW_FIGURES = liability.FLOW_COLUMNS[2:]


def _settled(
    session: Session, zone: ZoneInfo, end: datetime, cohort: ColumnElement[Any]
) -> list[Any]:
    """Points lots gave to pay back owed points: all a lot lost that no draw and no expiry
    took, dated the month it became spendable."""
    draws = (
        select(func.coalesce(func.sum(LotDraw.points), 0))
        .where(LotDraw.lot_id == Lot.id)
        .correlate(Lot)
        .scalar_subquery()
    )
    lapsed = (
        select(func.coalesce(-func.sum(LedgerEntry.points), 0))
        .where(
            LedgerEntry.source_type == "lot",
            LedgerEntry.source_id == Lot.id,
            LedgerEntry.type == EntryType.EXPIRE,
        )
        .correlate(Lot)
        .scalar_subquery()
    )
    ready = [Lot.available_at < end]
    spendable = local_month(session, zone, Lot.available_at, ready)
    paid = func.sum(Lot.points - Lot.remaining - draws - lapsed)
    return list(
        session.execute(
            select(cohort, spendable, paid)
            .where(*ready, Lot.earned_at < end, Lot.remaining < Lot.points)
            .group_by(cohort, spendable)
            .having(paid != 0)
        )
    )


@dataclass(frozen=True, slots=True)
class Facts:
    months: pd.DataFrame  # liability.MONTH_COLUMNS
    flows: pd.DataFrame  # liability.FLOW_COLUMNS


def load(session: Session, zone: ZoneInfo, until: date, *, base: str = "CNY") -> Facts:
    return Facts(month_facts(session, zone, until, base=base), cohort_flows(session, zone, until))


@dataclass(frozen=True, slots=True)
class Report:
    """The roll-forward with everything it was made from, for pages, API and exports."""

    frame: pd.DataFrame  # liability.ROLL_FORWARD_COLUMNS
    journal: pd.DataFrame  # liability.JOURNAL_COLUMNS
    expectations: dict[date, liability.Expectation]
    allocated: dict[date, Decimal]
    facts: Facts
    point_value: Decimal
    base: str
    method: liability.Method

    @property
    def estimate(self) -> liability.Estimate | None:
        """The redemption curve of the last month, when it was used."""
        if not self.expectations:
            return None
        return self.expectations[max(self.expectations)].estimate


def report(
    session: Session,
    zone: ZoneInfo,
    until: date,
    *,
    base: str = "CNY",
    method: liability.Method = "additive",
    min_history: int = liability.HORIZON_MONTHS,
    fallback: Decimal = liability.ONE,
) -> Report:
    """The points liability to the month of `until`: facts from the ledger, each month's
    expected rate from the redemption curves known then (`liability.expected_rates`), the
    allocation at the program's value per point, the roll-forward and its journal lines."""
    facts = load(session, zone, until, base=base)
    months = [liability.month_of(m) for m in facts.months["month"]]
    expectations = liability.expected_rates(
        facts.flows, months, method=method, min_history=min_history, fallback=fallback
    )
    rates = {m: e.rate for m, e in expectations.items()}
    curves = {m: e.estimate for m, e in expectations.items()}
    point_value = program_settings.get(session).point_value
    places = minor_units(base)
    allocated = liability.allocated_values(facts.months, point_value, rates, places=places)
    frame = liability.roll_forward(
        facts.months, facts.flows, rates, allocated, places=places, curves=curves
    )
    return Report(
        frame=frame,
        journal=liability.journal_lines(frame),
        expectations=expectations,
        allocated=allocated,
        facts=facts,
        point_value=point_value,
        base=base,
        method=method,
    )


def _months(first: date, until: date) -> list[date]:
    months, at = [], date(first.year, first.month, 1)
    last = date(until.year, until.month, 1)
    while at <= last:
        months.append(at)
        at = date(at.year + at.month // 12, at.month % 12 + 1, 1)
    return months


def _as_date(value: Any) -> date:
    """A local month as the database returns it: a date (PostgreSQL) or text (SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
