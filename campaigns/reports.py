"""The ROI (input-output ratio) report: pure pandas over frames, no database.

Inputs, all amounts already booked in the base currency as Decimal (`rates.book`: each
document once, from the exact product amount × rate, rounded half-up to the base currency's
minor unit):
- campaigns: campaign_id, code, name, channel, owner, status, budget
- costs: campaign_id, day, status, category, amount  (receipts; draft and rejected excluded)
- revenue: campaign_id, day, amount, orders (orders may be missing)
- loyalty_costs, optional: campaign_id, day, amount, part (what the loyalty program gave away
  for the campaign: coupon discounts, bonus points and rewards at the value per point; see
  `loyalty.campaign_costs`, which the caller runs: this package never imports loyalty)

Costs and revenue are summed per group separately before they meet, so a campaign with many
revenue rows never counts its cost more than once. Money figures are sums of booked amounts,
exact, so every row adds up to the total; only ratios are rounded (half-up).

**Loyalty cost.** Without a loyalty cost frame the report is exactly what it always was. With
one, two figures join it, `loyalty_cost` and `total_cost` (approved receipts + loyalty cost),
and every figure made from cost uses the total: the input-output ratio, ROI %, profit, budget
used % and cost per order. ROAS stays revenue ÷ approved *media* receipts: it measures what
paid media bought, and a coupon or a bonus point is not media spend. So a campaign whose
coupons and points give away more than it brings in shows a negative profit and ROI. Loyalty
cost can be negative in a period (a refund made in it takes back a discount or bonus points
given before), as an adjusting receipt can make approved cost; ratios are computed whenever
the cost is not zero, as they always were. A report says which columns it carries
(`RoiReport.columns`); pages, exports, the comparison and `as_json` follow them.

Rows can be sorted by any column (`sort_rows`): a group's text as people read it (case
aside), figures by value, and a figure that cannot be computed ("—") last either way. A row
grouped by campaign carries its `campaign_id`, so the page can link to the campaign.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
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
# The columns a report with loyalty cost adds, and where: beside the approved receipts.
LOYALTY_LABELS: dict[str, str] = {
    "loyalty_cost": N_("Loyalty cost"),
    "total_cost": N_("Total cost"),
}
LABELS: dict[str, str] = {**COLUMNS, **LOYALTY_LABELS}  # every column a report can carry
BASE_COLUMNS: tuple[str, ...] = tuple(COLUMNS)
LOYALTY_COLUMNS: tuple[str, ...] = (
    "budget",
    "approved_cost",
    "loyalty_cost",
    "total_cost",
    *(c for c in COLUMNS if c not in ("budget", "approved_cost")),
)
# The parts of the loyalty cost (`loyalty.campaign_costs`), each a figure of the row (as
# `<part>_cost`) and of the JSON, though not a column of the table.
LOYALTY_PARTS: tuple[str, ...] = ("coupons", "bonus_points", "rewards")
MONEY = (
    "budget",
    "approved_cost",
    "loyalty_cost",
    "total_cost",
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
# The same reasons when the cost is the total cost (approved receipts + loyalty cost).
WHY_TOTAL = {
    "io_ratio": N_("No cost yet, from receipts or loyalty, so there is no ratio."),
    "roi_pct": N_("No cost yet, from receipts or loyalty, so ROI cannot be computed."),
}
NO_TOTAL_COST_PER_ORDER = N_(
    "No cost yet, from receipts or loyalty, so there is no cost per order."
)


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
        total = "total_cost" in self.values  # the ratios divide by the total cost
        if column == "cost_per_order" and self.values.get("orders"):
            # orders, but no cost
            return NO_TOTAL_COST_PER_ORDER if total else NO_COST_PER_ORDER
        if total and column in WHY_TOTAL:
            return WHY_TOTAL[column]
        return WHY.get(column)


@dataclass(frozen=True)
class Inputs:
    """The frames a report was made of, so the same report can be made again with the
    loyalty cost (`with_loyalty_costs`) whatever built it (any revenue basis)."""

    campaigns: pd.DataFrame
    costs: pd.DataFrame
    revenue: pd.DataFrame
    ran: frozenset[int] | None = None  # see `roi_report`


@dataclass(frozen=True)
class RoiReport:
    group_by: GroupBy
    currency: str
    key_columns: tuple[str, ...]
    rows: list[RoiRow]
    total: RoiRow
    columns: tuple[str, ...] = BASE_COLUMNS  # the figures it shows, in order
    inputs: Inputs | None = field(default=None, repr=False, compare=False)

    @property
    def loyalty_cost(self) -> bool:
        """Whether the loyalty cost is counted (a column, and in the total cost)."""
        return "loyalty_cost" in self.columns

    @property
    def headers(self) -> dict[str, str]:
        """Each column the report shows, with the header people see."""
        return {c: LABELS[c] for c in self.columns}

    def as_json(self) -> dict[str, Any]:
        loyalty = self.loyalty_cost

        def row(r: RoiRow) -> dict[str, Any]:
            found: dict[str, Any] = {
                **r.key,
                **{c: _plain(r.values.get(c)) for c in self.columns},
            }
            if loyalty:
                found["loyalty_cost_parts"] = {
                    p: _plain(r.values.get(f"{p}_cost")) for p in LOYALTY_PARTS
                }
            return found

        return {
            "group_by": self.group_by,
            "currency": self.currency,
            "rows": [row(r) for r in self.rows],
            "total": row(self.total),
        }

    def reasons(self, header: str) -> list[str]:
        """Why figures of the column headed `header` are empty, if any are."""
        column = next((c for c, h in self.headers.items() if h == header), None)
        if column is None:
            return []
        found = {r.why_missing(column) for r in [*self.rows, self.total]} - {None}
        return sorted(reason for reason in found if reason is not None)

    def notes(self) -> list[tuple[str, list[str]]]:
        """What each empty figure means, per column that has one: the legend under the
        page's table, and the notes on the XLSX headers."""
        return [(h, found) for h in self.headers.values() if (found := self.reasons(h))]


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
LOYALTY_SUMS = ("loyalty", *LOYALTY_PARTS)


def _units(amounts: pd.Series) -> pd.Series:
    return pd.Series([int(v * SCALE) for v in amounts], index=amounts.index, dtype="int64")


def _sums(
    costs: pd.DataFrame,
    cost_keys: pd.Series,
    revenue: pd.DataFrame,
    revenue_keys: pd.Series,
    loyalty: pd.DataFrame | None = None,
    loyalty_keys: pd.Series | None = None,
) -> pd.DataFrame:
    """Per group: approved, paid, pending and media cost, revenue and orders (and, when
    given, the loyalty cost and its parts), as exact integers, in one vectorised pass each
    (no per-group Python loops over rows)."""
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
    joined = cost.join(income, how="outer")
    if loyalty is not None and loyalty_keys is not None:
        amounts = _units(loyalty["amount"])
        given = pd.DataFrame(
            {"key": loyalty_keys, "loyalty": amounts}
            | {part: amounts.where(loyalty["part"] == part, 0) for part in LOYALTY_PARTS}
        )
        joined = joined.join(given.groupby("key").sum(), how="outer")
        for column in LOYALTY_SUMS:
            if column not in joined:
                joined[column] = 0
    return joined.fillna(0).astype("int64")


def _ratio(numerator: Decimal, denominator: Decimal, places: Decimal) -> Decimal | None:
    if denominator == 0:
        return None
    return (numerator / denominator).quantize(places, rounding=ROUND_HALF_UP)


def _money(units: int, unit: Decimal) -> Decimal:
    # A sum of booked amounts is already whole minor units: this only sets the exponent.
    return (Decimal(units) / SCALE).quantize(unit, rounding=ROUND_HALF_UP)


def _figures(
    budget: Decimal | None, sums: dict[str, int], unit: Decimal, loyalty: bool = False
) -> dict[str, Any]:
    """A row's figures. The cost the ratios divide by is the approved receipts, plus the
    loyalty cost when the report counts it; without cost there is no ratio."""
    cost_units = sums["approved"] + (sums["loyalty"] if loyalty else 0)
    cost = Decimal(cost_units) / SCALE
    media = Decimal(sums["media"]) / SCALE
    income = Decimal(sums["revenue"]) / SCALE
    orders = sums["orders"] if sums["orders_known"] else None
    hundred = Decimal(100)
    has_cost = cost != 0
    found: dict[str, Any] = {
        "budget": None if budget is None else budget.quantize(unit, rounding=ROUND_HALF_UP),
        "approved_cost": _money(sums["approved"], unit),
    }
    if loyalty:
        found["loyalty_cost"] = _money(sums["loyalty"], unit)
        found["total_cost"] = _money(cost_units, unit)
    found |= {
        "paid_cost": _money(sums["paid"], unit),
        "pending_cost": _money(sums["pending"], unit),
        "revenue": _money(sums["revenue"], unit),
        "io_ratio": _ratio(income, cost, CENT) if has_cost else None,
        "roi_pct": _ratio((income - cost) * hundred, cost, TENTH) if has_cost else None,
        "roas": _ratio(income, media, CENT),
        "profit": _money(sums["revenue"] - cost_units, unit),
        "budget_used_pct": None if not budget else _ratio(cost * hundred, budget, TENTH),
        "orders": orders,
        # Blank (with its reason), never 0.00, when there is no cost or no orders.
        "cost_per_order": (
            _ratio(cost, Decimal(orders), CENT) if orders and orders > 0 and has_cost else None
        ),
    }
    if loyalty:
        found |= {f"{part}_cost": _money(sums[part], unit) for part in LOYALTY_PARTS}
    return found


def _month(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["day"]).dt.strftime("%Y-%m")


def roi_report(
    campaigns: pd.DataFrame,
    costs: pd.DataFrame,
    revenue: pd.DataFrame,
    *,
    group_by: GroupBy = "campaign",
    currency: str = "CNY",
    loyalty_costs: pd.DataFrame | None = None,
    ran: Collection[int] | None = None,
) -> RoiReport:
    """The report over the frames (see the module docstring). `loyalty_costs` None: no
    loyalty cost, exactly the report as it always was. `ran`, when given, are the campaigns
    shown whatever their documents (those that ran in the period): the others are shown only
    when they have a cost, revenue or loyalty cost row; None shows every campaign given."""
    unit = Decimal(1).scaleb(-minor_units(currency))
    inputs = Inputs(campaigns, costs, revenue, None if ran is None else frozenset(ran))
    if ran is not None:
        active = set(costs["campaign_id"]) | set(revenue["campaign_id"]) | set(ran)
        if loyalty_costs is not None:
            active |= set(loyalty_costs["campaign_id"])
        campaigns = campaigns[campaigns["campaign_id"].isin(active)]
    info = campaigns.set_index("campaign_id")
    # Only the report's campaigns, so every total is the sum of the rows shown.
    costs = costs[
        costs["status"].isin(("submitted", "approved", "paid"))
        & costs["campaign_id"].isin(info.index)
    ]
    revenue = revenue[revenue["campaign_id"].isin(info.index)]
    loyalty = None
    if loyalty_costs is not None:
        loyalty = loyalty_costs[loyalty_costs["campaign_id"].isin(info.index)]
    loyalty_keys = None
    if group_by == "month" and loyalty is not None and loyalty["day"].isna().any():
        raise ValueError("a report by month needs each loyalty cost's day")
    if group_by == "month":
        cost_keys, revenue_keys = _month(costs), _month(revenue)
        if loyalty is not None:
            loyalty_keys = _month(loyalty)  # each loyalty cost by its own day
        key_columns: tuple[str, ...] = ("month",)
        budgets: dict[Any, Decimal | None] = {}
    else:
        field_name = {"campaign": "campaign_id", "channel": "channel", "owner": "owner"}[group_by]
        lookup = info.index.to_series() if field_name == "campaign_id" else info[field_name]
        cost_keys = costs["campaign_id"].map(lookup)
        revenue_keys = revenue["campaign_id"].map(lookup)
        if loyalty is not None:
            loyalty_keys = loyalty["campaign_id"].map(lookup)
        grouped = _units(campaigns["budget"]).groupby(campaigns[field_name].to_numpy()).sum()
        budgets = {k: Decimal(int(v)) / SCALE for k, v in grouped.items()}
        key_columns = ("code", "name") if group_by == "campaign" else (group_by,)

    sums = _sums(costs, cost_keys, revenue, revenue_keys, loyalty, loyalty_keys)
    with_loyalty = loyalty is not None
    names_of_sums = (*SUMS, *LOYALTY_SUMS) if with_loyalty else SUMS
    empty = dict.fromkeys(names_of_sums, 0)
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
        rows.append(RoiRow(label, _figures(budget, group, unit, with_loyalty), campaign_id))
    if group_by == "campaign":
        rows.sort(key=lambda r: r.key["code"])
    total_budget = None if group_by == "month" else _sum(campaigns["budget"])
    totals = {column: int(sums[column].sum()) for column in names_of_sums} if len(sums) else empty
    total = RoiRow(
        {key_columns[0]: N_("Total")}, _figures(total_budget, totals, unit, with_loyalty)
    )
    columns = LOYALTY_COLUMNS if with_loyalty else BASE_COLUMNS
    return RoiReport(group_by, currency, key_columns, rows, total, columns, inputs)


def with_loyalty_costs(report: RoiReport, loyalty_costs: pd.DataFrame) -> RoiReport:
    """The same report made again with `loyalty_costs` (campaign_id, day, amount, part;
    days needed for a report by month) counted in its cost. Its rows are in the report's
    own order (sort again after). A report made without its frames cannot be."""
    if report.inputs is None:
        raise ValueError("this report does not keep the frames it was made of")
    inputs = report.inputs
    return roi_report(
        inputs.campaigns,
        inputs.costs,
        inputs.revenue,
        group_by=report.group_by,
        currency=report.currency,
        loyalty_costs=loyalty_costs,
        ran=inputs.ran,
    )
