"""What awaits finance, in money: receipts awaiting approval (submitted) and awaiting payment
(approved), booked in the base currency and broken down by age; and the close state of the
recent months.

**Amounts** are booked exactly as the ROI report books them: `rates.convert` (which calls
`rates.book`) books each receipt once, at the latest rate on or before its expense date,
rounded half-up to the base currency's minor unit, and every figure here is a sum of booked
amounts. So the age bands add up to their total, and the amount awaiting approval equals the
ROI report's "Awaiting approval" over all campaigns. A missing rate does not hide the counts:
the amounts are then `None` and `Queue.problem` says which currency and date, and who can fix
it.

**Age** is counted in whole days from the receipt's expense date (the date on the document)
to today in the display zone, as accounts-payable ageing counts: 0–7, 8–30, 31–60 and over
60 days. It is the time the vendor or employee has been waiting for their money, so it is not
reset when a receipt is submitted again or approved. A receipt dated after today counts as
0–7 days.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import periods, rates
from campaigns.models import ClosedPeriod, Receipt, ReceiptStatus
from core.accounts.models import User
from core.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class AgeBand:
    """Receipts `low` to `high` days old, both included (`high` None: no upper bound)."""

    low: int
    high: int | None

    def holds(self, age: int) -> bool:
        return self.low <= age and (self.high is None or age <= self.high)


AGE_BANDS: tuple[AgeBand, ...] = (
    AgeBand(0, 7),
    AgeBand(8, 30),
    AgeBand(31, 60),
    AgeBand(61, None),
)
WAITING = (ReceiptStatus.SUBMITTED, ReceiptStatus.APPROVED)


def age_band(today: date, expense_date: date) -> AgeBand:
    """The band of a receipt dated `expense_date`, seen on `today` (dated ahead: the first)."""
    age = max((today - expense_date).days, 0)
    return next(band for band in AGE_BANDS if band.holds(age))


@dataclass(frozen=True, slots=True)
class Aged:
    """The receipts of one status in one age band: how many, and their booked amount
    (`None` when it could not be booked: see `Queue.problem`)."""

    band: AgeBand
    count: int
    amount: Decimal | None


@dataclass(frozen=True, slots=True)
class Waiting:
    """Receipts of one status, by age band (every band, in `AGE_BANDS` order)."""

    status: str
    ages: tuple[Aged, ...]

    @property
    def count(self) -> int:
        return sum(a.count for a in self.ages)

    @property
    def amount(self) -> Decimal | None:
        amounts = [a.amount for a in self.ages]
        if any(a is None for a in amounts):
            return None
        return sum((a for a in amounts if a is not None), Decimal(0))


@dataclass(frozen=True, slots=True)
class Queue:
    """What awaits approval and payment on `today`, amounts in `currency`."""

    currency: str
    today: date
    approval: Waiting  # submitted
    payment: Waiting  # approved, not yet paid
    problem: ValidationFailed | None = None  # why the amounts are None (a missing rate)


def waiting(session: Session, base: str, today: date) -> Queue:
    """Receipts awaiting approval and payment: counts and amounts booked in `base`, by age
    on `today` (the display zone's date)."""
    rows = session.execute(
        select(Receipt.status, Receipt.currency, Receipt.expense_date, Receipt.amount, func.count())
        .where(Receipt.status.in_(WAITING))
        .group_by(Receipt.status, Receipt.currency, Receipt.expense_date, Receipt.amount)
    ).all()
    frame = pd.DataFrame(rows, columns=["status", "currency", "day", "amount", "n"])
    problem: ValidationFailed | None = None
    booked: list[Decimal] | None
    try:
        table = rates.rates_frame(session, set(frame["currency"]) - {base})
        booked = list(rates.convert(frame, table, base))
    except ValidationFailed as exc:  # a missing or unusable rate: counts still, no amounts
        problem, booked = exc, None
    zero = Decimal(0).quantize(rates.minor_unit(base))
    counts: dict[tuple[str, AgeBand], int] = defaultdict(int)
    amounts: dict[tuple[str, AgeBand], Decimal] = defaultdict(lambda: zero)
    groups = zip(frame["status"], frame["day"], frame["n"], strict=True)
    for i, (status, day, n) in enumerate(groups):
        key = (str(status), age_band(today, day))
        counts[key] += int(n)
        if booked is not None:
            amounts[key] += booked[i] * int(n)

    def of(status: str) -> Waiting:
        return Waiting(
            status,
            tuple(
                Aged(
                    band,
                    counts[(status, band)],
                    None if booked is None else amounts[(status, band)],
                )
                for band in AGE_BANDS
            ),
        )

    return Queue(
        base, today, of(ReceiptStatus.SUBMITTED), of(ReceiptStatus.APPROVED), problem=problem
    )


@dataclass(frozen=True, slots=True)
class MonthClose:
    """One month's close: when and by whom it was closed (or open), and how many receipts
    dated in it await approval (they keep it from closing)."""

    month: date  # the first day
    closed_at: datetime | None
    closed_by: str | None  # the person's name; None when open or closed by a system actor
    awaiting_approval: int

    @property
    def closed(self) -> bool:
        return self.closed_at is not None


def _months_back(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def recent_months(session: Session, today: date, count: int = 6) -> list[MonthClose]:
    """The close state of `count` months ending with today's, newest first."""
    current = periods.month_of(today)
    first = _months_back(current, count - 1)
    closed = {
        month: (at, name)
        for month, at, name in session.execute(
            select(ClosedPeriod.month, ClosedPeriod.closed_at, User.name)
            .outerjoin(User, User.id == ClosedPeriod.closed_by_id)
            .where(ClosedPeriod.month >= first, ClosedPeriod.month <= current)
        )
    }
    pending: dict[date, int] = defaultdict(int)
    for day, n in session.execute(
        select(Receipt.expense_date, func.count())
        .where(
            Receipt.status == ReceiptStatus.SUBMITTED,
            Receipt.expense_date >= first,
            Receipt.expense_date <= periods.month_end(current),
        )
        .group_by(Receipt.expense_date)
    ):
        pending[periods.month_of(day)] += int(n)
    months = []
    for back in range(count):
        month = _months_back(current, back)
        at, name = closed.get(month, (None, None))
        months.append(MonthClose(month, at, name, pending[month]))
    return months
