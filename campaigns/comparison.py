"""A report beside the same report for the previous period: pure, over two `RoiReport`s.

The caller builds both reports with the same filters (only the dates differ, see
`report_periods.previous`) and `compare` joins them row by row: the same campaign, channel or
owner; for monthly reports the month the same distance into its period (March against
February when a month is compared with the month before).

For the main figures each row gets the previous value and the change:
- money (revenue, approved cost; loyalty and total cost when the report counts loyalty
  cost): the difference, exact;
- ROI %: the difference in percentage points of the two shown (rounded) figures, so
  224.3% against 200.0% is +24.3 points;
- input-output ratio: the difference of the two shown ratios (revenue per 1 of cost), so
  1 : 3.24 against 1 : 2.00 is +1.24.
A change cannot be computed when either figure is missing: the row is in one period only
(a campaign that had nothing in the other period), or the figure itself is "—" there (no
cost, so no ratio). The reason is given, as for every "—" of the report.

Both reports must carry the same columns (both with loyalty cost, or both without); the
comparison compares the figures of those columns (`compared`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from campaigns.report_periods import Period, shift_month
from campaigns.reports import Figure, RoiReport, RoiRow, sort_rows
from core.text import N_

# The figures compared, in the report's column order: of a report without loyalty cost,
# and of one with it.
COMPARED: tuple[str, ...] = ("approved_cost", "revenue", "io_ratio", "roi_pct")
LOYALTY_COMPARED: tuple[str, ...] = (
    "approved_cost",
    "loyalty_cost",
    "total_cost",
    "revenue",
    "io_ratio",
    "roi_pct",
)
MONEY_CHANGES = ("approved_cost", "loyalty_cost", "total_cost", "revenue")
Part = Literal["previous", "change"]
NOT_IN_PREVIOUS = N_("Nothing in the previous period.")
NOT_IN_CURRENT = N_("Nothing in this period.")


def column_id(column: str, part: Part) -> str:
    """The id of a comparison column: `revenue_previous`, `revenue_change`."""
    return f"{column}_{part}"


def compared_columns(report: RoiReport) -> tuple[str, ...]:
    """The figures a comparison of `report` compares, in its column order."""
    return LOYALTY_COMPARED if report.loyalty_cost else COMPARED


# Every comparison column id → (the compared column, which part).
PARTS: dict[str, tuple[str, Part]] = {
    column_id(c, p): (c, p) for c in LOYALTY_COMPARED for p in ("previous", "change")
}


@dataclass(frozen=True)
class ComparedRow:
    """One group's figures in this period, beside the previous period's. Reads like a
    `RoiRow` (`key`, `figure`, `display`, `why_missing`, `campaign_id`) so the table, the
    sort and the exports take either."""

    key: dict[str, str]
    current: RoiRow | None  # None: the group had nothing in this period
    previous: RoiRow | None  # None: the group had nothing in the previous period

    @property
    def campaign_id(self) -> int | None:
        row = self.current or self.previous
        return row.campaign_id if row else None

    def figure(self, column: str) -> Figure:
        if column in self.key:
            return self.key[column]
        if column in PARTS:
            compared, part = PARTS[column]
            return self.previous_value(compared) if part == "previous" else self.change(compared)
        return self.current.values.get(column) if self.current else None

    def previous_value(self, column: str) -> Decimal | int | None:
        return self.previous.values.get(column) if self.previous else None

    def change(self, column: str) -> Decimal | None:
        now = self.current.values.get(column) if self.current else None
        before = self.previous_value(column)
        if now is None or before is None:
            return None
        return Decimal(now) - Decimal(before)

    def display(self, column: str) -> str:
        if column in PARTS:
            compared, part = PARTS[column]
            if part == "previous":
                return self.previous.display(compared) if self.previous else "—"
            return display_change(compared, self.change(compared))
        return self.current.display(column) if self.current else "—"

    def why_missing(self, column: str) -> str | None:
        if column in PARTS:
            compared, part = PARTS[column]
            if part == "previous":
                return self._why_previous(compared)
            if self.change(compared) is not None:
                return None
            return self._why_current(compared) or self._why_previous(compared)
        return self._why_current(column)

    def _why_current(self, column: str) -> str | None:
        if self.current is None:
            return NOT_IN_CURRENT
        return self.current.why_missing(column)

    def _why_previous(self, column: str) -> str | None:
        if self.previous is None:
            return NOT_IN_PREVIOUS
        why = self.previous.why_missing(column)
        return None if why is None else f"Previous period: {why}"


def display_change(column: str, change: Decimal | None) -> str:
    """A change as the page shows it: +1,200.00 for money, +24.3 pp for ROI %, +1.24 for the
    input-output ratio; "—" when it cannot be computed."""
    if change is None:
        return "—"
    sign = "+" if change > 0 else "−" if change < 0 else ""
    size = abs(change)
    if column == "roi_pct":
        return f"{sign}{size:,.1f} pp"
    return f"{sign}{size:,.2f}"


@dataclass(frozen=True)
class Comparison:
    current_period: Period
    previous_period: Period
    rows: list[ComparedRow]
    total: ComparedRow
    compared: tuple[str, ...] = COMPARED  # the figures compared, in the report's order

    def sorted(self, column: str, *, descending: bool = False) -> Comparison:
        return replace(self, rows=sort_rows(self.rows, column, descending=descending))

    def reasons(self, column: str) -> list[str]:
        """Why figures of `column` (a comparison column id) are empty, if any are."""
        found = {r.why_missing(column) for r in [*self.rows, self.total]} - {None}
        return sorted(reason for reason in found if reason is not None)


def _match_key(row: RoiRow, group_by: str, months: int) -> tuple[tuple[str, str], ...]:
    key = dict(row.key)
    if group_by == "month" and months:
        key["month"] = shift_month(key["month"], months)
    return tuple(sorted(key.items()))


def compare(
    current: RoiReport,
    previous: RoiReport,
    current_period: Period,
    previous_period: Period,
    *,
    months_apart: int = 0,
) -> Comparison:
    """Join the report of a period with the report of the previous period. Rows are
    matched by their group (campaign, channel, owner); a monthly report's previous months
    are moved forward by `months_apart` first. Rows keep the current report's order, then
    the previous period's rows that have nothing in this period, in their order."""
    if current.group_by != previous.group_by:
        raise ValueError("compare reports grouped the same way")
    if current.columns != previous.columns:
        raise ValueError("compare reports with the same columns (loyalty cost in both or neither)")
    before = {_match_key(r, previous.group_by, months_apart): r for r in previous.rows}
    rows: list[ComparedRow] = []
    for row in current.rows:
        match = before.pop(_match_key(row, current.group_by, 0), None)
        rows.append(ComparedRow(row.key, row, match))
    rows += [ComparedRow(r.key, None, r) for r in before.values()]
    total = ComparedRow(current.total.key, current.total, previous.total)
    return Comparison(current_period, previous_period, rows, total, compared_columns(current))
