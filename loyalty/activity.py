"""Loyalty activity by month, for the dashboard: points issued, redeemed and expired, new
members, the redemption rate, and how many members are active.

What each figure means (the dashboard says the same under its table):

- **issued**: points credited by `earn` and `bonus` entries (a purchase's points with its tier
  and bonus rules; sign-up, first-purchase, repeat-purchase, birthday and referral bonuses),
  counted when they are credited, pending or not.
- **redeemed**: points spent on rewards (`redeem` entries), as a positive number.
- **expired**: points that expired (`expire` entries), as a positive number.
- **reversed**: points taken back by refunds (`reverse` entries), as a positive number;
  **adjusted**: manual adjustments, net (either sign). So a month's
  issued − redeemed − expired − reversed + adjusted is the change of all members' balances
  in it: the sum of its ledger entries.
- **redemption rate**: points redeemed ÷ points issued over the same months, as a percentage
  (one decimal, rounded half-up); none when nothing was issued. The dashboard shows it for
  this month and for the trailing twelve months (this month and the eleven before it). It can
  pass 100%: members spend points issued in earlier months.
- **new members**: members who joined in the month; **active members**: members whose status
  is active now (neither suspended nor closed).

Months are calendar months in the configured display zone: each entry and each member is put
in the month of its own local date by `loyalty.reports.local_day` (the ROI report's bucketing:
PostgreSQL converts with its zone database, SQLite is given the zone's offsets over the rows'
span, so summer time is right on both), and the span is selected from local midnight on the
first day of its first month to local midnight after its last.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.models import EntryType, LedgerEntry, Member, MemberStatus
from loyalty.reports import local_day

TENTH = Decimal("0.1")
# Entry type → the field it adds to, and the sign that makes the figure positive.
_FIELDS: dict[str, tuple[str, int]] = {
    EntryType.EARN: ("issued", 1),
    EntryType.BONUS: ("issued", 1),
    EntryType.REDEEM: ("redeemed", -1),
    EntryType.EXPIRE: ("expired", -1),
    EntryType.REVERSE: ("reversed", -1),
    EntryType.ADJUST: ("adjusted", 1),
}


def redemption_rate(redeemed: int, issued: int) -> Decimal | None:
    """Points redeemed ÷ points issued, in percent to one decimal (half-up); None without
    points issued."""
    if issued == 0:
        return None
    return (Decimal(redeemed) * 100 / Decimal(issued)).quantize(TENTH, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class MonthActivity:
    """One month's figures (or, from `Activity.trailing`, a span's, `month` its first)."""

    month: date  # the first day of the month
    issued: int = 0
    redeemed: int = 0
    expired: int = 0
    reversed: int = 0
    adjusted: int = 0
    new_members: int = 0

    @property
    def net(self) -> int:
        """The change of all members' balances: the sum of the month's ledger entries."""
        return self.issued - self.redeemed - self.expired - self.reversed + self.adjusted

    @property
    def redemption_rate(self) -> Decimal | None:
        return redemption_rate(self.redeemed, self.issued)


@dataclass(frozen=True, slots=True)
class Activity:
    months: tuple[MonthActivity, ...]  # oldest first; the last is the current month
    active_members: int

    @property
    def this_month(self) -> MonthActivity:
        return self.months[-1]

    @property
    def trailing(self) -> MonthActivity:
        """The sums over every month shown (twelve by default, this month included)."""
        totals = {
            f.name: sum(getattr(m, f.name) for m in self.months)
            for f in fields(MonthActivity)
            if f.name != "month"
        }
        return MonthActivity(self.months[0].month, **totals)


def _month_index(month: date) -> int:
    return month.year * 12 + month.month - 1


def _month(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _as_date(value: Any) -> date:
    """A local day as the database returns it: a date (PostgreSQL) or 'YYYY-MM-DD' (SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def activity(session: Session, zone: ZoneInfo, today: date, months: int = 12) -> Activity:
    """The last `months` calendar months in `zone`, ending with the month of `today` (the
    zone's date), each month's figures summed in SQL by local day."""
    last = _month_index(today)
    first = last - months + 1
    start = datetime.combine(_month(first), time(0), zone)
    end = datetime.combine(_month(last + 1), time(0), zone)
    shown = {_month(i): MonthActivity(_month(i)) for i in range(first, last + 1)}
    sums: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    in_span = [LedgerEntry.occurred_at >= start, LedgerEntry.occurred_at < end]
    day = local_day(session, zone, LedgerEntry.occurred_at, in_span)
    for local, kind, points in session.execute(
        select(day, LedgerEntry.type, func.sum(LedgerEntry.points))
        .where(*in_span)
        .group_by(day, LedgerEntry.type)
    ):
        name, sign = _FIELDS[kind]
        sums[_as_date(local).replace(day=1)][name] += sign * int(points)

    joined = [Member.joined_at >= start, Member.joined_at < end]
    join_day = local_day(session, zone, Member.joined_at, joined)
    for local, n in session.execute(
        select(join_day, func.count(Member.id)).where(*joined).group_by(join_day)
    ):
        sums[_as_date(local).replace(day=1)]["new_members"] += int(n)

    for month, got in sums.items():
        shown[month] = MonthActivity(
            month,
            issued=got["issued"],
            redeemed=got["redeemed"],
            expired=got["expired"],
            reversed=got["reversed"],
            adjusted=got["adjusted"],
            new_members=got["new_members"],
        )
    active = session.scalar(
        select(func.count(Member.id)).where(Member.status == MemberStatus.ACTIVE)
    )
    return Activity(tuple(shown[m] for m in sorted(shown)), int(active or 0))
