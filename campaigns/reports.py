"""The ROI (input-output ratio) report: pure pandas over frames, no database.

Inputs, all amounts already booked in the base currency as Decimal (`rates.book`: each
document once, from the exact product amount × rate, rounded half-up to the base currency's
minor unit):
- campaigns: campaign_id, code, name, channel, owner, status, budget
- costs: campaign_id, day, status, category, amount  (receipts; draft and rejected excluded)
- revenue: campaign_id, day, amount, orders (orders may be missing)

Costs and revenue are summed per group separately before they meet, so a campaign with many
revenue rows never counts its cost more than once. Money figures are sums of booked amounts,
exact, so every row adds up to the total; only ratios are rounded (half-up).

Rows can be sorted by any column (`sort_rows`): a group's text as people read it (case
aside), figures by value, and a figure that cannot be computed ("—") last either way. A row
grouped by campaign carries its `campaign_id`, so the page can link to the campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, Protocol, TypeVar

import pandas as pd

from core.money import minor_units
from core.text import N_

GroupBy = Literal["campaign", "channel", "month", "owner"]
GROUPS: tuple[GroupBy, ...] = ("campaign", "channel", "month", "owner")
ZERO = Decimal(0)
CENT = Decimal("0.01")
TENTH = Decimal("0.1")
APPROVED = ("approved", "paid")

# The group columns of each grouping, with the header people see.
KEY_LABELS: dict[str, str] = {
    "code": N_("Code"),
    "name": N_("Name"),
    "channel": N_("Channel"),
    "month": N_("Month"),
    "owner": N_("Owner"),
}
# The report's columns in order, with the header people see.
COLUMNS: dict[str, str] = {
    "budget": N_("Budget"),
    "approved_cost": N_("Approved cost"),
    "paid_cost": N_("Paid cost"),
    "pending_cost": N_("Awaiting approval"),
    "revenue": N_("Revenue"),
    "io_ratio": N_("Input-output ratio"),
    "roi_pct": N_("ROI %"),
    "roas": N_("ROAS"),
    "profit": N_("Profit"),
    "budget_used_pct": N_("Budget used %"),
    "orders": N_("Orders"),
    "cost_per_order": N_("Cost per order"),
}
MONEY = (
    "budget",
    "approved_cost",
    "paid_cost",
    "pending_cost",
    "revenue",
    "profit",
    "cost_per_order",
)
WHY = {
    "io_ratio": N_("No approved cost yet, so there is no ratio."),
    "roi_pct": N_("No approved cost yet, so ROI cannot be computed."),
    "roas": N_("No approved media cost, so ROAS cannot be computed."),
    "budget_used_pct": N_("No budget set."),
    "orders": N_("No orders recorded."),
    "cost_per_order": N_("No orders recorded."),
    "budget": N_("Budgets belong to campaigns, not months."),
}
NO_COST_PER_ORDER = N_("No approved cost yet, so there is no cost per order.")


Figure = Decimal | int | str | None


@dataclass(frozen=True)
class RoiRow:
    key: dict[str, str]  # e.g. {"code": "SPRING26", "name": "Spring sale"} or {"month": "2026-03"}
    values: dict[str, Decimal | int | None]
    campaign_id: int | None = None  # the campaign of a row grouped by campaign

    def figure(self, column: str) -> Figure:
        """The row's group value or figure under `column`: what sorting compares."""
        return self.key[column] if column in self.key else self.values.get(column)

    def display(self, column: str) -> str:
        value = self.values.get(column)
        if value is None:
            return "—"
        if column == "io_ratio":
            return f"1 : {value:,.2f}"
        if column in ("roi_pct", "budget_used_pct"):
            return f"{value:,.1f}%"
        if column == "orders":
            return f"{value:,}"
        if column in MONEY:
            return f"{value:,}"  # booked money: exactly its minor units
        return f"{value:,.2f}"

    def why_missing(self, column: str) -> str | None:
        if self.values.get(column) is not None:
            return None
        if column == "cost_per_order" and self.values.get("orders"):
            return NO_COST_PER_ORDER  # orders, but no approved cost
        return WHY.get(column)


@dataclass(frozen=True)
class RoiReport:
    group_by: GroupBy
    currency: str
    key_columns: tuple[str, ...]
    rows: list[RoiRow]
    total: RoiRow

    def as_json(self) -> dict[str, Any]:
        def row(r: RoiRow) -> dict[str, Any]:
            return {**r.key, **{c: _plain(r.values.get(c)) for c in COLUMNS}}

        return {
            "group_by": self.group_by,
            "currency": self.currency,
            "rows": [row(r) for r in self.rows],
            "total": row(self.total),
        }

    def reasons(self, header: str) -> list[str]:
        """Why figures of the column headed `header` are empty, if any are."""
        column = next((c for c, h in COLUMNS.items() if h == header), None)
        if column is None:
            return []
        found = {r.why_missing(column) for r in [*self.rows, self.total]} - {None}
        return sorted(reason for reason in found if reason is not None)

    def notes(self) -> list[tuple[str, list[str]]]:
        """What each empty figure means, per column that has one: the legend under the
        page's table, and the notes on the XLSX headers."""
        return [(h, found) for h in COLUMNS.values() if (found := self.reasons(h))]


class Sortable(Protocol):
    def figure(self, column: str) -> Figure: ...


class TableRow(Sortable, Protocol):
    """A row of the report's table: a `RoiRow`, or a row compared with the previous period
    (`comparison.ComparedRow`)."""

    @property
    def key(self) -> dict[str, str]: ...
    @property
    def campaign_id(self) -> int | None: ...
    def display(self, column: str) -> str: ...
    def why_missing(self, column: str) -> str | None: ...


Row = TypeVar("Row", bound=Sortable)


def _order(value: Figure) -> tuple[Any, ...]:
    if isinstance(value, str):
        return (value.casefold(), value)  # people's order: "email" beside "Email"
    return (value,)


def sort_rows(rows: Sequence[Row], column: str, *, descending: bool = False) -> list[Row]:
    """`rows` ordered by `column`, ascending or descending; rows without a figure there
    ("—") come last either way. Equal figures keep their order (stable)."""
    known = [r for r in rows if r.figure(column) is not None]
    known.sort(key=lambda r: _order(r.figure(column)), reverse=descending)
    return known + [r for r in rows if r.figure(column) is None]


def sorted_report(report: RoiReport, column: str, *, descending: bool = False) -> RoiReport:
    """The report with its rows ordered by `column`; the total stays the total."""
    return replace(report, rows=sort_rows(report.rows, column, descending=descending))


def _plain(value: Decimal | int | None) -> str | int | None:
    return str(value) if isinstance(value, Decimal) else value


def _sum(series: pd.Series) -> Decimal:
    return sum(series, ZERO)


SCALE = 10_000  # amounts carry at most 4 decimals, so ten-thousandths are exact integers
SUMS = ("approved", "paid", "pending", "media", "revenue", "orders", "orders_known")


def _units(amounts: pd.Series) -> pd.Series:
    return pd.Series([int(v * SCALE) for v in amounts], index=amounts.index, dtype="int64")


def _sums(
    costs: pd.DataFrame, cost_keys: pd.Series, revenue: pd.DataFrame, revenue_keys: pd.Series
) -> pd.DataFrame:
    """Per group: approved, paid, pending and media cost, revenue and orders, as exact
    integers, in one vectorised pass (no per-group Python loops over rows)."""
    units = _units(costs["amount"])
    approved = costs["status"].isin(APPROVED)
    cost = (
        pd.DataFrame(
            {
                "key": cost_keys,
                "approved": units.where(approved, 0),
                "paid": units.where(costs["status"] == "paid", 0),
                "pending": units.where(costs["status"] == "submitted", 0),
                "media": units.where(approved & (costs["category"] == "media"), 0),
            }
        )
        .groupby("key")
        .sum()
    )
    orders = revenue["orders"]
    income = (
        pd.DataFrame(
            {
                "key": revenue_keys,
                "revenue": _units(revenue["amount"]),
                "orders": orders.fillna(0).astype("int64"),
                "orders_known": orders.notna().astype("int64"),
            }
        )
        .groupby("key")
        .sum()
    )
    return cost.join(income, how="outer").fillna(0).astype("int64")


def _ratio(numerator: Decimal, denominator: Decimal, places: Decimal) -> Decimal | None:
    if denominator == 0:
        return None
    return (numerator / denominator).quantize(places, rounding=ROUND_HALF_UP)


def _money(units: int, unit: Decimal) -> Decimal:
    # A sum of booked amounts is already whole minor units: this only sets the exponent.
    return (Decimal(units) / SCALE).quantize(unit, rounding=ROUND_HALF_UP)


def _figures(budget: Decimal | None, sums: dict[str, int], unit: Decimal) -> dict[str, Any]:
    approved = Decimal(sums["approved"]) / SCALE
    media = Decimal(sums["media"]) / SCALE
    income = Decimal(sums["revenue"]) / SCALE
    orders = sums["orders"] if sums["orders_known"] else None
    hundred = Decimal(100)
    return {
        "budget": None if budget is None else budget.quantize(unit, rounding=ROUND_HALF_UP),
        "approved_cost": _money(sums["approved"], unit),
        "paid_cost": _money(sums["paid"], unit),
        "pending_cost": _money(sums["pending"], unit),
        "revenue": _money(sums["revenue"], unit),
        "io_ratio": _ratio(income, approved, CENT),
        "roi_pct": _ratio((income - approved) * hundred, approved, TENTH),
        "roas": _ratio(income, media, CENT),
        "profit": _money(sums["revenue"] - sums["approved"], unit),
        "budget_used_pct": None if not budget else _ratio(approved * hundred, budget, TENTH),
        "orders": orders,
        # Blank (with its reason), never 0.00, when there is no cost or no orders.
        "cost_per_order": (
            _ratio(approved, Decimal(orders), CENT) if orders and orders > 0 and approved else None
        ),
    }


def _month(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["day"]).dt.strftime("%Y-%m")


def roi_report(
    campaigns: pd.DataFrame,
    costs: pd.DataFrame,
    revenue: pd.DataFrame,
    *,
    group_by: GroupBy = "campaign",
    currency: str = "CNY",
) -> RoiReport:
    unit = Decimal(1).scaleb(-minor_units(currency))
    info = campaigns.set_index("campaign_id")
    # Only the report's campaigns, so every total is the sum of the rows shown.
    costs = costs[
        costs["status"].isin(("submitted", "approved", "paid"))
        & costs["campaign_id"].isin(info.index)
    ]
    revenue = revenue[revenue["campaign_id"].isin(info.index)]
    if group_by == "month":
        cost_keys, revenue_keys = _month(costs), _month(revenue)
        key_columns: tuple[str, ...] = ("month",)
        budgets: dict[Any, Decimal | None] = {}
    else:
        field = {"campaign": "campaign_id", "channel": "channel", "owner": "owner"}[group_by]
        lookup = info.index.to_series() if field == "campaign_id" else info[field]
        cost_keys = costs["campaign_id"].map(lookup)
        revenue_keys = revenue["campaign_id"].map(lookup)
        grouped = _units(campaigns["budget"]).groupby(campaigns[field].to_numpy()).sum()
        budgets = {k: Decimal(int(v)) / SCALE for k, v in grouped.items()}
        key_columns = ("code", "name") if group_by == "campaign" else (group_by,)

    sums = _sums(costs, cost_keys, revenue, revenue_keys)
    empty = dict.fromkeys(SUMS, 0)
    keys = sorted(set(budgets) | set(sums.index))
    rows = []
    codes = dict(zip(campaigns["campaign_id"], campaigns["code"].astype(str), strict=True))
    names = dict(zip(campaigns["campaign_id"], campaigns["name"].astype(str), strict=True))
    by_key: dict[Any, dict[str, int]] = {
        k: {str(c): int(v) for c, v in row.items()} for k, row in sums.to_dict("index").items()
    }
    for key in keys:
        group = by_key.get(key, empty)
        if group_by == "campaign":
            label = {"code": codes[key], "name": names[key]}
        else:
            label = {key_columns[0]: str(key)}
        budget = budgets.get(key) if group_by != "month" else None
        campaign_id = int(key) if group_by == "campaign" else None
        rows.append(RoiRow(label, _figures(budget, group, unit), campaign_id))
    if group_by == "campaign":
        rows.sort(key=lambda r: r.key["code"])
    total_budget = None if group_by == "month" else _sum(campaigns["budget"])
    totals = {column: int(sums[column].sum()) for column in SUMS} if len(sums) else empty
    total = RoiRow({key_columns[0]: "Total"}, _figures(total_budget, totals, unit))
    return RoiReport(group_by, currency, key_columns, rows, total)
