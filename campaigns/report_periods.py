"""Report periods: the presets people pick (this month, last quarter, year to date, …) and the
period a report is compared with. Pure date arithmetic, no database and no clock: the caller
passes today's date (in the configured zone), so tests can fix it.

A period is a pair of days, both inclusive, as the report's `from` and `to` filters take them.
Presets become plain `from`/`to` values, so a report's address stays shareable and means the
same dates tomorrow.

The previous period of a period is the one just before it, of equal length. When the period
is whole calendar months (a month, a quarter, a year, or any run of months) the previous
period is the same number of whole months before it: March → February, Q2 → Q1,
2025 → 2024, so a 31-day month is compared with a 28-day one. Otherwise it is the same number
of days ending the day before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

PresetName = Literal[
    "this_month", "last_month", "this_quarter", "last_quarter", "year_to_date", "last_year"
]
PRESETS: tuple[PresetName, ...] = (
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "year_to_date",
    "last_year",
)
# English names; the page translates its own copy of these words.
PRESET_LABELS: dict[PresetName, str] = {
    "this_month": "This month",
    "last_month": "Last month",
    "this_quarter": "This quarter",
    "last_quarter": "Last quarter",
    "year_to_date": "Year to date",
    "last_year": "Last year",
}


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date  # inclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a period cannot end ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __str__(self) -> str:
        return f"{self.start.isoformat()} – {self.end.isoformat()}"


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _first_of(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _months(first: int, count: int) -> Period:
    """`count` whole months starting with month number `first` (year × 12 + month − 1)."""
    return Period(_first_of(first), _first_of(first + count) - timedelta(days=1))


def preset(name: PresetName, today: date) -> Period:
    """The dates of a preset on `today`. Month and quarter presets are whole calendar
    months; year to date runs from 1 January to today."""
    month = _month_index(today)
    quarter = month - (today.month - 1) % 3
    if name == "this_month":
        return _months(month, 1)
    if name == "last_month":
        return _months(month - 1, 1)
    if name == "this_quarter":
        return _months(quarter, 3)
    if name == "last_quarter":
        return _months(quarter - 3, 3)
    if name == "year_to_date":
        return Period(date(today.year, 1, 1), today)
    if name == "last_year":
        return _months((today.year - 1) * 12, 12)
    raise ValueError(f"unknown preset {name!r}")


def presets(today: date) -> list[tuple[PresetName, Period]]:
    return [(name, preset(name, today)) for name in PRESETS]


def whole_months(period: Period) -> int | None:
    """How many whole calendar months `period` is, or None when it is not whole months."""
    if period.start.day != 1 or (period.end + timedelta(days=1)).day != 1:
        return None
    return _month_index(period.end) - _month_index(period.start) + 1


def previous(period: Period) -> Period:
    """The period just before `period`, of equal length: as many whole calendar months when
    `period` is whole months, else as many days."""
    months = whole_months(period)
    if months is not None:
        return _months(_month_index(period.start) - months, months)
    return Period(period.start - timedelta(days=period.days), period.start - timedelta(days=1))


def months_apart(current: Period, earlier: Period) -> int:
    """How many calendar months the start of `earlier` lies before the start of `current`:
    what a monthly report's rows are shifted by when compared."""
    return _month_index(current.start) - _month_index(earlier.start)


def shift_month(month: str, months: int) -> str:
    """A 'YYYY-MM' key moved by `months` (may be negative)."""
    year, number = (int(part) for part in month.split("-"))
    moved = _first_of(year * 12 + number - 1 + months)
    return f"{moved.year:04d}-{moved.month:02d}"


def month_period(month: str) -> Period:
    """The whole calendar month of a 'YYYY-MM' key (a monthly report's row)."""
    year, number = (int(part) for part in month.split("-"))
    return _months(year * 12 + number - 1, 1)
