"""The points liability page (IFRS 15, customer loyalty programmes), for finance.

`/finance/liability` shows, for one month (`month=YYYY-MM`, default the last full month in
the configured zone) and one way of developing the redemption curve (`method=additive` or
`chain_ladder`), what `loyalty.liability_facts.report` computes from the ledger:

- the value per point (the program's; admins get a link to change it), the expected
  redemption rate of the month and where it comes from, the method in words
  (`Estimate.describe`);
- the redemption curve by issue month (a chart of each issue month's cumulative share
  redeemed by months since issue beside the developed curve; the curve and the issue
  months as tables). Until the oldest issue month is 12 months old the report uses the
  fallback rate (no breakage anticipated); the curve observed so far is still drawn and
  marked as not used;
- the monthly roll-forward of the 12 months ending with the chosen one, in points and in
  the base currency (opening, movements, closing, current and non-current), and a chart of
  the liability over time;
- a reconciliation line: the roll-forward's closing points against the sum of every ledger
  entry dated before the month's (local) end, counted apart by SQL;
- the month's journal lines.

Both selectors are a GET form, so every view is an address to share; a bad value is named
beside its field, the default is used and the answer is a 422 with the page still drawn.
The exports (`/finance/liability/roll-forward.csv|xlsx`, `/finance/liability/journal.csv|
xlsx`, same parameters) hold what the page shows: the roll-forward's 12 months with the
report's columns, and the month's journal lines. CSV is UTF-8 with a byte-order mark; XLSX
has a title block (what, period, base currency, method and rate, value per point, when
generated), a frozen header and number formats. Every cell goes through `safe_cell`.

The API (`web.api.liability`) and the CLI (`retain liability`) build on `build` here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import periods
from core.accounts.models import Role, User
from core.errors import Conflict, ValidationFailed
from core.exports import safe_cell
from core.money import format_decimal, minor_units
from loyalty import liability, liability_facts
from loyalty.models import LedgerEntry
from web.deps import AppSettings, Db, require_roles
from web.rendering import N_, render, t

router = APIRouter()
Reader = Annotated[User, Depends(require_roles(Role.FINANCE, Role.ADMIN, Role.MARKETER))]

SHOWN_MONTHS = 12  # the roll-forward's months on the page and in its exports
CHARTED_COHORTS = 12  # the newest issue months drawn on the curve chart
FIELDS = ("month", "method")
METHOD_NAMES: dict[str, str] = {
    "additive": N_("Additive (incremental redemption rates)"),
    "chain_ladder": N_("Chain ladder"),
}
ACCOUNT_NAMES: dict[str, str] = {
    liability.SALES_REVENUE: N_("Sales revenue"),
    liability.CONTRACT_LIABILITY: N_("Contract liability - loyalty points"),
    liability.REDEMPTION_REVENUE: N_("Revenue - loyalty points redeemed"),
    liability.BREAKAGE_REVENUE: N_("Revenue - loyalty points breakage"),
}
KIND_NAMES: dict[str, str] = {
    "issue": N_("Points issued"),
    "refund": N_("Refunds"),
    "redeem": N_("Redemptions"),
    "catch_up": N_("Catch-up"),
    "breakage": N_("Breakage"),
}

# The exports' columns (English, like the ROI report's files): the report's own columns.
Kind = Literal["text", "month", "date", "points", "money", "rate"]
ROLL_FORWARD_HEADERS: dict[str, tuple[str, Kind]] = {
    "month": ("Month", "month"),
    "expected_rate": ("Expected redemption rate", "rate"),
    "opening_points": ("Opening points", "points"),
    "issued_points": ("Points issued", "points"),
    "redeemed_points": ("Points redeemed", "points"),
    "expired_points": ("Points expired", "points"),
    "reversed_points": ("Points taken back by refunds", "points"),
    "forfeited_points": ("Points forfeited", "points"),
    "closing_points": ("Closing points", "points"),
    "owed_points": ("Points owed", "points"),
    "held_points": ("Points held in lots", "points"),
    "expected_points": ("Points expected to be redeemed", "points"),
    "current_points": ("Of which within 12 months", "points"),
    "opening_value": ("Opening liability", "money"),
    "issued_value": ("Issued (allocated value)", "money"),
    "reversed_value": ("Refunds", "money"),
    "redeemed_value": ("Redeemed (revenue)", "money"),
    "catch_up_value": ("Cumulative catch-up (revenue)", "money"),
    "breakage_value": ("Breakage (revenue)", "money"),
    "closing_value": ("Closing liability", "money"),
    "current_value": ("Current portion", "money"),
    "non_current_value": ("Non-current portion", "money"),
    "revenue": ("Revenue recognised", "money"),
}
JOURNAL_HEADERS: dict[str, tuple[str, Kind]] = {
    "date": ("Date", "date"),
    "entry": ("Entry", "text"),
    "kind": ("Kind", "text"),
    "account": ("Account", "text"),
    "debit": ("Debit", "money"),
    "credit": ("Credit", "money"),
    "description": ("Description", "text"),
}
assert tuple(ROLL_FORWARD_HEADERS) == liability.ROLL_FORWARD_COLUMNS
assert tuple(JOURNAL_HEADERS) == liability.JOURNAL_COLUMNS


def clock(settings: AppSettings) -> datetime:
    """Now in the configured zone (the default month, the month picker's end, when a file was
    made). A dependency, so a test can fix the day."""
    return datetime.now(settings.zone)


Clock = Annotated[datetime, Depends(clock)]


# --- Months and methods ---------------------------------------------------------------------


def first_of(day: date) -> date:
    return day.replace(day=1)


def previous_month(month: date) -> date:
    return first_of(first_of(month) - timedelta(days=1))


def default_month(today: date) -> date:
    """The last full month: the one before today's."""
    return previous_month(today)


def parse_month(value: str, today: date) -> date:
    """A month written YYYY-MM, not after the current one (a month to come has no ledger)."""
    month = periods.parse_month(value)
    if month > first_of(today):
        raise ValidationFailed(
            "liability.month",
            "%(month)s has not begun; choose %(latest)s or an earlier month.",
            month=f"{month:%Y-%m}",
            latest=f"{first_of(today):%Y-%m}",
        )
    return month


def parse_method(value: str) -> liability.Method:
    if value not in liability.METHODS:
        raise ValidationFailed(
            "liability.method", "The method must be additive or chain_ladder (chain ladder)."
        )
    return value


@dataclass
class Choice:
    """The month and method as understood, each bad value's problem by field, and the
    values as typed (the form shows them again)."""

    month: date
    method: liability.Method
    default: date
    problems: dict[str, str] = field(default_factory=dict)
    typed: dict[str, str] = field(default_factory=dict)

    @property
    def query(self) -> dict[str, str]:
        """Both parameters, always: a link or a file names the month it holds."""
        return {"month": f"{self.month:%Y-%m}", "method": self.method}

    def href(self, path: str = "/finance/liability", **changes: str) -> str:
        return f"{path}?{urlencode({**self.query, **changes})}"


def choose(request: Request, values: Mapping[str, str], today: date) -> Choice:
    typed = {name: str(values.get(name, "")).strip() for name in FIELDS}
    default = default_month(today)
    choice = Choice(default, "additive", default, typed=typed)
    if typed["month"]:
        try:
            choice.month = parse_month(typed["month"], today)
        except ValidationFailed as exc:
            if exc.code == "liability.month":
                choice.problems["month"] = t(
                    request,
                    "%(month)s has not begun; choose %(latest)s or an earlier month.",
                    month=typed["month"],
                    latest=f"{first_of(today):%Y-%m}",
                )
            else:
                choice.problems["month"] = t(
                    request,
                    "'%(value)s' is not a month like 2026-03.",
                    value=_shown(typed["month"]),
                )
    if typed["method"]:
        try:
            choice.method = parse_method(typed["method"])
        except ValidationFailed:
            choice.problems["method"] = t(
                request, "Choose the additive method or the chain ladder."
            )
    return choice


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "…"


# --- The report for one month ---------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """The report to the end of `month`, and what the page, the API, the CLI and the files
    take from it."""

    report: liability_facts.Report
    month: date
    method: liability.Method
    zone: ZoneInfo
    ledger_points: int  # Σ ledger entries dated before the month's local end
    first_month: date | None  # the first month with a ledger entry (any time)

    @property
    def empty(self) -> bool:
        return self.report.frame.empty

    @property
    def places(self) -> int:
        return minor_units(self.report.base)

    @cached_property
    def rows(self) -> pd.DataFrame:
        """The roll-forward's last SHOWN_MONTHS months, ending with `month`."""
        return self.report.frame.tail(SHOWN_MONTHS).reset_index(drop=True)

    @property
    def row(self) -> dict[str, Any] | None:
        """The chosen month's row."""
        if self.empty:
            return None
        return records(self.report.frame.tail(1))[0]

    @cached_property
    def journal(self) -> pd.DataFrame:
        """The chosen month's journal lines."""
        journal = self.report.journal
        if journal.empty:
            return journal
        prefix = f"LOY-{self.month:%Y-%m}-"
        return journal[journal["entry"].str.startswith(prefix)].reset_index(drop=True)

    @property
    def expectation(self) -> liability.Expectation | None:
        return self.report.expectations.get(self.month)

    @cached_property
    def curve(self) -> liability.Estimate | None:
        """The redemption curve on the month: the one the report used, else the one the
        ledger shows so far (not used: too little history)."""
        used = self.report.estimate
        if used is not None:
            return used
        if self.empty:
            return None
        return liability.estimate(self.report.facts.flows, self.month, method=self.method)

    @property
    def curve_used(self) -> bool:
        return self.report.estimate is not None

    @property
    def closing_points(self) -> int | None:
        row = self.row
        return None if row is None else int(row["closing_points"])

    @property
    def reconciles(self) -> bool:
        """The roll-forward's closing points are the ledger's total (0 without points)."""
        return (self.closing_points or 0) == self.ledger_points


def ledger_points_before(db: Session, end: datetime) -> int:
    """The sum of every ledger entry dated before `end`: what the members held then."""
    total = db.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(LedgerEntry.occurred_at < end)
    )
    return int(total or 0)


def first_ledger_month(db: Session, zone: ZoneInfo) -> date | None:
    first = db.scalar(select(func.min(LedgerEntry.occurred_at)))
    if first is None:
        return None
    if first.tzinfo is None:  # SQLite keeps no zone; stored times are UTC
        first = first.replace(tzinfo=UTC)
    return first_of(first.astimezone(zone).date())


def build(db: Session, zone: ZoneInfo, base: str, month: date, method: liability.Method) -> View:
    """The liability report to the end of `month` (its local end in `zone`)."""
    month = first_of(month)
    try:
        report = liability_facts.report(db, zone, month, base=base, method=method)
    except ValueError as exc:  # the ledger's facts do not tell one story: say so, never 500
        raise Conflict(
            "liability.facts",
            "The points liability cannot be computed to %(month)s: %(problem)s.",
            month=f"{month:%Y-%m}",
            problem=str(exc),
        ) from exc
    end = liability_facts.month_end(month, zone)
    return View(
        report=report,
        month=month,
        method=method,
        zone=zone,
        ledger_points=ledger_points_before(db, end),
        first_month=first_ledger_month(db, zone),
    )


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


# --- As people read it ----------------------------------------------------------------------


def points(value: int | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def signed_points(value: int) -> str:
    """A movement in points: + adds to the balance, − takes from it."""
    value = int(value)
    return f"+{value:,}" if value > 0 else (f"−{-value:,}" if value < 0 else "0")


def money(value: Decimal | None, places: int) -> str:
    if value is None:
        return "—"
    text = format_decimal(Decimal(value), places)
    return text.replace("-", "−", 1) if text.startswith("-") else text


def signed_money(value: Decimal, places: int) -> str:
    value = Decimal(value)
    text = format_decimal(abs(value), places)
    return f"+{text}" if value > 0 else (f"−{text}" if value < 0 else text)


def percent(value: Decimal | None, places: int = 2) -> str:
    """A fraction as a percentage: 0.875 → "87.50%"."""
    if value is None:
        return "—"
    return f"{Decimal(value) * 100:,.{places}f}%"


def month_text(value: Any) -> str:
    return f"{liability.month_of(value):%Y-%m}"


def money_exact(value: Any, places: int) -> str:
    """Money as the API and the files write it: at the currency's minor units."""
    return str(Decimal(value).quantize(liability.quantum(places)))


def rate_text(value: Any) -> str:
    return str(Decimal(value).quantize(liability.quantum(liability.RATE_PLACES)))


def points_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The roll-forward in points, movements signed, and the line of the whole span."""
    lines = [
        {
            "month": month_text(r["month"]),
            "opening": points(r["opening_points"]),
            "issued": signed_points(r["issued_points"]),
            "redeemed": signed_points(-r["redeemed_points"]),
            "expired": signed_points(-r["expired_points"]),
            "reversed": signed_points(-r["reversed_points"]),
            "forfeited": signed_points(-r["forfeited_points"]),
            "closing": points(r["closing_points"]),
            "owed": points(r["owed_points"]),
            "expected": points(r["expected_points"]),
            "current": points(r["current_points"]),
        }
        for r in rows
    ]
    first, last = rows[0], rows[-1]

    def total(name: str) -> int:
        return sum(int(r[name]) for r in rows)

    span = {
        "opening": points(first["opening_points"]),
        "issued": signed_points(total("issued_points")),
        "redeemed": signed_points(-total("redeemed_points")),
        "expired": signed_points(-total("expired_points")),
        "reversed": signed_points(-total("reversed_points")),
        "forfeited": signed_points(-total("forfeited_points")),
        "closing": points(last["closing_points"]),
        "owed": points(last["owed_points"]),
        "expected": points(last["expected_points"]),
        "current": points(last["current_points"]),
    }
    return {"lines": lines, "span": span}


def value_table(
    rows: list[dict[str, Any]], places: int, estimated: Mapping[date, bool]
) -> dict[str, Any]:
    """The roll-forward in money, movements signed as they move the liability, and the line
    of the whole span (first opening, summed movements, last closing)."""

    def line(r: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "issued": signed_money(r["issued_value"], places),
            "reversed": signed_money(-Decimal(r["reversed_value"]), places),
            "redeemed": signed_money(-Decimal(r["redeemed_value"]), places),
            "catch_up": signed_money(-Decimal(r["catch_up_value"]), places),
            "breakage": signed_money(-Decimal(r["breakage_value"]), places),
            "revenue": money(r["revenue"], places),
        }

    lines = [
        {
            "month": month_text(r["month"]),
            "rate": percent(r["expected_rate"]),
            "estimated": estimated.get(liability.month_of(r["month"]), False),
            "opening": money(r["opening_value"], places),
            **line(r),
            "closing": money(r["closing_value"], places),
            "current": money(r["current_value"], places),
            "non_current": money(r["non_current_value"], places),
        }
        for r in rows
    ]
    zero = Decimal(0)
    summed = {
        name: sum((Decimal(r[name]) for r in rows), zero)
        for name in (
            "issued_value",
            "reversed_value",
            "redeemed_value",
            "catch_up_value",
            "breakage_value",
            "revenue",
        )
    }
    first, last = rows[0], rows[-1]
    span = {
        "opening": money(first["opening_value"], places),
        **line(summed),
        "closing": money(last["closing_value"], places),
        "current": money(last["current_value"], places),
        "non_current": money(last["non_current_value"], places),
    }
    return {"lines": lines, "span": span}


def curve_tables(curve: liability.Estimate) -> dict[str, Any]:
    """The developed curve by months since issue, and each issue month's projection."""
    ages = [
        {
            "age": k,
            "increment": percent(curve.increments[k]),
            "cumulative": percent(curve.curve[k]),
            "factor": (
                "—"
                if k >= len(curve.factors) or curve.factors[k] is None
                else f"{curve.factors[k]:.4f}"
            ),
        }
        for k in range(len(curve.curve))
    ]
    cohorts = [
        {
            "month": f"{c.cohort:%Y-%m}",
            "age": c.age,
            "issued": points(c.issued),
            "redeemed": points(c.redeemed),
            "redeemed_share": percent(Decimal(c.redeemed) / c.issued if c.issued else None),
            "ultimate": points(whole(c.ultimate)),
            "expected": points(whole(c.expected)),
            "rate": percent(c.ultimate / c.issued if c.issued else None),
        }
        for c in reversed(curve.cohorts)
    ]
    return {"ages": ages, "cohorts": cohorts}


def cohort_development(
    flows: pd.DataFrame, curve: liability.Estimate
) -> dict[str, list[float | None]]:
    """Each issue month's cumulative share redeemed (in %) at each age it has reached, from
    the cohort flows up to the curve's month."""
    valuation = _index(curve.as_of)
    redeemed: dict[int, dict[int, int]] = {}
    for row in records(flows):
        cohort, month = (
            _index(liability.month_of(row["cohort"])),
            _index(liability.month_of(row["month"])),
        )
        if month > valuation or not int(row["redeemed"]):
            continue
        by_age = redeemed.setdefault(cohort, {})
        by_age[month - cohort] = by_age.get(month - cohort, 0) + int(row["redeemed"])
    found: dict[str, list[float | None]] = {}
    width = curve.max_age + 1
    for c in curve.cohorts:
        at = _index(c.cohort)
        so_far, shares = 0, list[float | None]()
        for k in range(width):
            if k > c.age:
                shares.append(None)
                continue
            so_far += redeemed.get(at, {}).get(k, 0)
            shares.append(round(so_far / c.issued * 100, 2) if c.issued else None)
        found[f"{c.cohort:%Y-%m}"] = shares
    return found


def whole(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _index(day: date) -> int:
    return day.year * 12 + day.month - 1


def chart_data(request: Request, view: View) -> dict[str, Any]:
    """The two charts' JSON: the redemption curve by issue month, and the liability over
    time (the roll-forward's months)."""
    rows = records(view.rows)
    over_time = {
        "labels": [month_text(r["month"]) for r in rows],
        "current": [float(r["current_value"]) for r in rows],
        "non_current": [float(r["non_current_value"]) for r in rows],
        "points": [int(r["closing_points"]) for r in rows],
        "text": {
            "current": t(request, "Current portion (%(currency)s)", currency=view.report.base),
            "non_current": t(
                request, "Non-current portion (%(currency)s)", currency=view.report.base
            ),
            "points": t(request, "Points outstanding"),
            "money_axis": view.report.base,
            "points_axis": t(request, "Points"),
        },
    }
    data: dict[str, Any] = {"over_time": over_time, "curve": None}
    curve = view.curve
    if curve is not None:
        developed = cohort_development(view.report.facts.flows, curve)
        shown = list(developed.items())[-CHARTED_COHORTS:]
        data["curve"] = {
            "ages": list(range(curve.max_age + 1)),
            "curve": [round(float(share) * 100, 2) for share in curve.curve],
            "cohorts": [{"label": label, "shares": shares} for label, shares in shown],
            "text": {
                "curve": t(
                    request,
                    "Redemption curve (%(method)s)",
                    method=t(request, METHOD_NAMES[curve.method]),
                ),
                "age": t(request, "Months since issue"),
            },
        }
    return data


def rate_note(request: Request, view: View) -> str:
    """Where the month's expected redemption rate comes from, in words."""
    expectation = view.expectation
    if expectation is None:
        return ""
    if expectation.estimated:
        return t(
            request,
            "Estimated from the redemption curve the ledger showed at the end of %(month)s.",
            month=f"{view.month:%Y-%m}",
        )
    curve = view.curve
    oldest = 0 if curve is None else curve.max_age
    return t(
        request,
        "Not enough history yet: the oldest issue month is %(age)s months old and the curve"
        " needs %(needed)s. Until then %(rate)s of points are expected to be redeemed, so no"
        " breakage is anticipated and the whole liability is current.",
        age=oldest,
        needed=liability.HORIZON_MONTHS,
        rate=percent(expectation.rate),
    )


def context_of(
    request: Request, db: Db, user: User, choice: Choice, view: View, today: date
) -> dict[str, Any]:
    places = view.places
    roles = {str(r) for r in user.roles}
    context: dict[str, Any] = {
        "choice": choice,
        "typed": choice.typed,
        "errors": choice.problems,
        "method_names": METHOD_NAMES,
        "view": view,
        "base": view.report.base,
        "latest_month": f"{first_of(today):%Y-%m}",
        "month": f"{view.month:%Y-%m}",
        "month_closed": periods.is_closed(db, view.month),
        "point_value": format_decimal(view.report.point_value, places),
        "can_change_point_value": Role.ADMIN.value in roles,
        "can_see_finance": bool(roles & {Role.FINANCE.value, Role.ADMIN.value}),
        "can_see_queue": Role.FINANCE.value in roles,
        "first_month": None if view.first_month is None else f"{view.first_month:%Y-%m}",
        "first_href": (
            choice.href(month=f"{view.first_month:%Y-%m}")
            if view.first_month is not None and view.first_month > view.month
            else None
        ),
        "shown_months": SHOWN_MONTHS,
        "exports": {
            "roll_csv": choice.href("/finance/liability/roll-forward.csv"),
            "roll_xlsx": choice.href("/finance/liability/roll-forward.xlsx"),
            "journal_csv": choice.href("/finance/liability/journal.csv"),
            "journal_xlsx": choice.href("/finance/liability/journal.xlsx"),
        },
        "method_hrefs": {m: choice.href(method=m) for m in liability.METHODS},
    }
    if view.empty:
        return context
    rows = records(view.rows)
    row = view.row
    assert row is not None
    estimated = {m: e.estimated for m, e in view.report.expectations.items()}
    curve = view.curve
    journal = records(view.journal)
    context.update(
        row=row,
        closing_value=money(row["closing_value"], places),
        current_value=money(row["current_value"], places),
        non_current_value=money(row["non_current_value"], places),
        revenue=money(row["revenue"], places),
        closing_points=points(row["closing_points"]),
        expected_points=points(row["expected_points"]),
        ledger_points=points(view.ledger_points),
        rate=percent(row["expected_rate"]),
        rate_note=rate_note(request, view),
        estimated=bool(view.expectation and view.expectation.estimated),
        description=None
        if curve is None
        else " ".join(t(request, template, **params) for template, params in curve.described()),
        curve=curve,
        curve_used=view.curve_used,
        curve_tables=None if curve is None else curve_tables(curve),
        points_table=points_table(rows),
        value_table=value_table(rows, places, estimated),
        span=f"{month_text(rows[0]['month'])} – {month_text(rows[-1]['month'])}",
        chart=chart_data(request, view),
        journal=[
            {
                "date": line["date"].isoformat(),
                "entry": line["entry"],
                "kind": KIND_NAMES.get(str(line["kind"]), str(line["kind"])),
                "account": ACCOUNT_NAMES.get(str(line["account"]), str(line["account"])),
                "debit": money(line["debit"], places) if line["debit"] else "",
                "credit": money(line["credit"], places) if line["credit"] else "",
                "description": line["description"],
            }
            for line in journal
        ],
        journal_debit=money(sum((Decimal(x["debit"]) for x in journal), Decimal(0)), places),
        journal_credit=money(sum((Decimal(x["credit"]) for x in journal), Decimal(0)), places),
    )
    return context


@router.get("/finance/liability")
def liability_page(
    request: Request, user: Reader, db: Db, settings: AppSettings, now: Clock
) -> Response:
    today = now.date()
    choice = choose(request, dict(request.query_params), today)
    view = build(db, settings.zone, settings.base_currency, choice.month, choice.method)
    return render(
        request,
        "finance/liability.html",
        context_of(request, db, user, choice, view, today),
        status_code=422 if choice.problems else 200,
    )


# --- Files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Title:
    """What an XLSX says above its table."""

    what: str
    period: str
    view: View
    generated_at: datetime

    def lines(self) -> list[str]:
        report, view = self.view.report, self.view
        expectation = view.expectation
        rate = (
            "none (no points yet)"
            if expectation is None
            else f"{percent(expectation.rate)} "
            + (
                "(estimated from the redemption curve)"
                if expectation.estimated
                else f"(fallback: under {liability.HORIZON_MONTHS} months of history)"
            )
        )
        zone = getattr(self.generated_at.tzinfo, "key", None) or str(self.generated_at.tzinfo)
        return [
            self.what,
            f"Period: {self.period}",
            f"Base currency: {report.base}",
            f"Method: {METHOD_NAMES[view.method]}; expected redemption rate {rate}",
            f"Value per point: {format_decimal(report.point_value, view.places)} {report.base}",
            "Points closing = the ledger's total: "
            + ("yes" if view.reconciles else f"NO (ledger {view.ledger_points:,})"),
            f"Generated at {self.generated_at:%Y-%m-%d %H:%M} ({zone})",
        ]


def headers_of(spec: Mapping[str, tuple[str, Kind]], currency: str) -> list[tuple[str, str, Kind]]:
    """(column, header, kind); money headers name the currency."""
    return [
        (column, f"{header} ({currency})" if kind == "money" else header, kind)
        for column, (header, kind) in spec.items()
    ]


def cell(value: Any, kind: Kind, places: int) -> Any:
    """A value as the files hold it (CSV writes it as text)."""
    if value is None:
        return None
    if kind == "month":
        return liability.month_of(value)
    if kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    if kind == "points":
        return int(value)
    if kind == "money":
        return Decimal(value).quantize(liability.quantum(places))
    if kind == "rate":
        return Decimal(value).quantize(liability.quantum(liability.RATE_PLACES))
    return safe_cell(str(value))


def table_rows(
    frame: pd.DataFrame, spec: Mapping[str, tuple[str, Kind]], places: int
) -> list[list[Any]]:
    return [
        [cell(record[column], kind, places) for column, (_, kind) in spec.items()]
        for record in records(frame)
    ]


def to_csv(
    headers: Sequence[tuple[str, str, Kind]], rows: Sequence[Sequence[Any]], *, bom: bool = True
) -> bytes:
    """UTF-8 with a byte-order mark (Excel reads Chinese right); months as 2026-03, dates
    ISO, numbers as written in the report."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([safe_cell(h) for _, h, _ in headers])
    for row in rows:
        writer.writerow(
            [_csv_text(value, kind) for value, (_, _, kind) in zip(row, headers, strict=True)]
        )
    return buffer.getvalue().encode("utf-8-sig" if bom else "utf-8")


def _csv_text(value: Any, kind: Kind) -> str:
    if value is None:
        return ""
    if kind == "month":
        return f"{value:%Y-%m}"
    if kind == "date":
        return str(value.isoformat())
    return str(value)


WIDEST, NARROWEST = 48, 8


def to_xlsx(
    title: Title,
    sheet_name: str,
    headers: Sequence[tuple[str, str, Kind]],
    rows: Sequence[Sequence[Any]],
    places: int,
    *,
    total: Sequence[Any] | None = None,
) -> bytes:
    """A title block, a blank row, the header (bold, frozen, filtered) and the rows, every
    number a number with its format; `total` (bold) under the rows, outside the filter."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    formats: dict[Kind, str] = {
        "text": "General",
        "month": "yyyy-mm",
        "date": "yyyy-mm-dd",
        "points": "#,##0",
        "money": "#,##0" + ("." + "0" * places if places else ""),
        "rate": "0.00%",
    }
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_name
    lines = title.lines()
    for number, line in enumerate(lines, start=1):
        sheet.cell(number, 1, safe_cell(line))
    sheet["A1"].font = Font(bold=True, size=14)
    header_row = len(lines) + 2
    widths = []
    for index, (_, header, _) in enumerate(headers, start=1):
        sheet.cell(header_row, index, safe_cell(header)).font = Font(bold=True)
        widths.append(len(header))
    body = [*rows, *([total] if total is not None else [])]
    for offset, row in enumerate(body, start=1):
        for index, (value, (_, _, kind)) in enumerate(zip(row, headers, strict=True), start=1):
            target = sheet.cell(header_row + offset, index, value)
            if value is not None and kind != "text":
                target.number_format = formats[kind]
            shown = "" if value is None else _csv_text(value, kind)
            widths[index - 1] = max(widths[index - 1], len(shown) + (len(shown) // 3))
            if total is not None and offset == len(body):
                target.font = Font(bold=True)
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(
            WIDEST, max(NARROWEST, width + 2)
        )
    sheet.freeze_panes = f"A{header_row + 1}"
    last = header_row + len(rows)
    sheet.auto_filter.ref = (
        f"A{header_row}:{get_column_letter(len(headers))}{max(last, header_row)}"
    )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def roll_forward_file(view: View, fmt: str, at: datetime) -> bytes:
    headers = headers_of(ROLL_FORWARD_HEADERS, view.report.base)
    rows = table_rows(view.rows, ROLL_FORWARD_HEADERS, view.places)
    if fmt == "csv":
        return to_csv(headers, rows)
    shown = records(view.rows)
    period = (
        f"{month_text(shown[0]['month'])} – {month_text(shown[-1]['month'])}"
        if shown
        else f"{view.month:%Y-%m} (no points yet)"
    )
    title = Title("Points liability roll-forward (IFRS 15)", period, view, at)
    return to_xlsx(title, "Roll-forward", headers, rows, view.places)


def journal_file(view: View, fmt: str, at: datetime) -> bytes:
    headers = headers_of(JOURNAL_HEADERS, view.report.base)
    rows = table_rows(view.journal, JOURNAL_HEADERS, view.places)
    if fmt == "csv":
        return to_csv(headers, rows)
    zero = Decimal(0).quantize(liability.quantum(view.places))
    debit = sum((row[4] for row in rows), zero)
    credit = sum((row[5] for row in rows), zero)
    total: list[Any] = [None, None, None, "Total", debit, credit, None]
    title = Title("Points liability journal (IFRS 15)", f"{view.month:%Y-%m}", view, at)
    return to_xlsx(title, "Journal", headers, rows, view.places, total=total if rows else None)


MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _file(
    request: Request, fmt: str, settings: AppSettings, db: Db, now: datetime, what: str
) -> Response:
    if fmt not in MEDIA:
        raise ValidationFailed("liability.format", "Export as .csv or .xlsx.")
    choice = choose(request, dict(request.query_params), now.date())
    if choice.problems:  # a file is no place to say a value was ignored: refuse it instead
        raise ValidationFailed(
            "liability.filter", "%(problems)s", problems=" ".join(choice.problems.values())
        )
    view = build(db, settings.zone, settings.base_currency, choice.month, choice.method)
    if what == "journal":
        body = journal_file(view, fmt, now)
        name = f"points-liability-journal-{view.month:%Y-%m}-{view.method}"
    else:
        body = roll_forward_file(view, fmt, now)
        name = f"points-liability-{view.month:%Y-%m}-{view.method}"
    return Response(
        body,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


@router.get("/finance/liability/roll-forward.{fmt}")
def roll_forward_export(
    request: Request, fmt: str, user: Reader, db: Db, settings: AppSettings, now: Clock
) -> Response:
    return _file(request, fmt, settings, db, now, "roll-forward")


@router.get("/finance/liability/journal.{fmt}")
def journal_export(
    request: Request, fmt: str, user: Reader, db: Db, settings: AppSettings, now: Clock
) -> Response:
    return _file(request, fmt, settings, db, now, "journal")


# --- As text (the CLI) ----------------------------------------------------------------------


def _aligned(headers: Sequence[str], table: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell: the first to the left, the others right."""
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    lines = []
    for line in (headers, *table):
        cells = [line[0].ljust(widths[0])]
        cells += [v.rjust(w) for v, w in zip(line[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


def text_report(view: View, *, journal: bool = False) -> list[str]:
    """The roll-forward's months (or the month's journal lines) as aligned text, English, with
    the month's rate, its method and the reconciliation above."""
    base, places = view.report.base, view.places
    month = f"{view.month:%Y-%m}"
    if view.empty:
        first = "" if view.first_month is None else f" (the first points: {view.first_month:%Y-%m})"
        return [f"No points yet: the ledger has no entry to the end of {month}{first}."]
    expectation = view.expectation
    assert expectation is not None
    source = (
        "estimated from the redemption curve"
        if expectation.estimated
        else f"the fallback: under {liability.HORIZON_MONTHS} months of history"
    )
    reconciled = "yes" if view.reconciles else f"NO: the ledger's total is {view.ledger_points:,}"
    head = [
        f"Points liability at the end of {month}, in {base} ({METHOD_NAMES[view.method]})",
        f"Expected redemption rate {percent(expectation.rate)}, {source}.",
        f"Value per point {format_decimal(view.report.point_value, places)} {base}. "
        f"Closing points equal the ledger's total: {reconciled} "
        f"({points(view.closing_points)} points).",
        "",
    ]
    if journal:
        lines = records(view.journal)
        if not lines:
            return [*head, f"No movement of the liability in {month}: no journal lines."]
        table = [
            [
                line["date"].isoformat(),
                str(line["entry"]),
                str(line["kind"]),
                str(line["account"]),
                money(line["debit"], places) if line["debit"] else "",
                money(line["credit"], places) if line["credit"] else "",
            ]
            for line in lines
        ]
        debit = sum((Decimal(x["debit"]) for x in lines), Decimal(0))
        credit = sum((Decimal(x["credit"]) for x in lines), Decimal(0))
        table.append(["Total", "", "", "", money(debit, places), money(credit, places)])
        headers = ["date", "entry", "kind", "account", f"debit ({base})", f"credit ({base})"]
        return [*head, f"Journal lines for {month}:", *_aligned(headers, table)]
    rows = records(view.rows)
    in_points = [
        [
            month_text(r["month"]),
            points(r["opening_points"]),
            points(r["issued_points"]),
            points(r["redeemed_points"]),
            points(r["expired_points"]),
            points(r["reversed_points"]),
            points(r["forfeited_points"]),
            points(r["closing_points"]),
            points(r["owed_points"]),
            points(r["expected_points"]),
            points(r["current_points"]),
        ]
        for r in rows
    ]
    in_money = [
        [
            month_text(r["month"]),
            percent(r["expected_rate"]),
            money(r["opening_value"], places),
            money(r["issued_value"], places),
            money(r["reversed_value"], places),
            money(r["redeemed_value"], places),
            money(r["catch_up_value"], places),
            money(r["breakage_value"], places),
            money(r["closing_value"], places),
            money(r["current_value"], places),
            money(r["non_current_value"], places),
            money(r["revenue"], places),
        ]
        for r in rows
    ]
    return [
        *head,
        "In points (closing = opening + issued - redeemed - expired - refunds - forfeited):",
        *_aligned(
            [
                "month",
                "opening",
                "issued",
                "redeemed",
                "expired",
                "refunds",
                "forfeited",
                "closing",
                "owed",
                "expected",
                "within 12m",
            ],
            in_points,
        ),
        "",
        f"In {base} (closing = opening + issued - refunds - redeemed - catch-up - breakage):",
        *_aligned(
            [
                "month",
                "rate",
                "opening",
                "issued",
                "refunds",
                "redeemed",
                "catch-up",
                "breakage",
                "closing",
                "current",
                "non-current",
                "revenue",
            ],
            in_money,
        ),
    ]
