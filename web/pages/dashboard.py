"""The landing page after sign-in: one section per role the person holds.

- marketer: cost against budget, revenue, input-output ratio and ROI for this month and this
  quarter (the ROI report over documents dated in them), the quarter's best and worst
  campaigns by ROI, and budget alerts, all from the ROI report as its page shows it by
  default, with loyalty cost (`loyalty.campaign_costs`: ratios, ROI and budget used on the
  total cost), so the figures match the report they link to;
- finance: money awaiting approval and payment by age (`campaigns.queue`), recent months'
  close, and budget alerts;
- marketer and admin: loyalty activity over the last twelve months (`loyalty.activity`);
- admin: people, API keys, recent audit entries and the database status.

Figures that cannot be computed (a missing exchange rate) are said so, with why and who can
fix it, never shown as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import periods, queue, report_data
from campaigns.models import Campaign
from campaigns.reports import RoiReport, RoiRow
from core import audit
from core.accounts.models import ApiKey, Role, User, UserStatus
from core.errors import PermissionDenied, RetainError
from core.settings import Settings
from core.timeutil import utcnow
from loyalty import activity as loyalty_activity
from loyalty import campaign_costs
from loyalty import reports as loyalty_reports
from web.deps import AppSettings, Db, StaffUser
from web.health import database_ok
from web.pages.reports import fix_of
from web.rendering import htmx_block, render, say, t

router = APIRouter()
LIVE = ("planned", "active")
RANKED = 3  # best and worst campaigns shown, each


@router.get("/")
def root() -> Response:
    return RedirectResponse("/dashboard", status_code=303)


def today(settings: Settings) -> date:
    """Today in the display zone (tests replace this to fix the date)."""
    return datetime.now(settings.zone).date()


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a section's figures could not be computed, and who can fix that, where."""

    message: str
    fix: dict[str, str] | None = None

    @classmethod
    def of(cls, request: Request, exc: RetainError) -> Problem:
        """`exc` in the reader's language, and who can fix it, where."""
        return cls(say(request, exc), fix_of(exc))


def _number(value: object) -> float | None:
    """For chart data only: the page's figures stay Decimal."""
    return None if value is None else float(str(value))


# --- admin -----------------------------------------------------------------------------------


def _admin_summary(db: Session) -> dict[str, Any]:
    rows = db.execute(select(User.status, func.count()).group_by(User.status))
    by_status: dict[str, int] = {status: n for status, n in rows}
    return {
        "active_users": by_status.get(UserStatus.ACTIVE, 0),
        "invited_users": by_status.get(UserStatus.INVITED, 0),
        "active_keys": db.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
        ),
        "recent": audit.list_entries(db, audit.AuditFilter(), limit=5),
    }


# --- budget alerts (marketer, finance) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BudgetAlerts:
    """The alerts, or why they could not be computed (and who can fix that, where)."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None
    fix: dict[str, str] | None = None


def _roi(db: Session, settings: Settings, f: report_data.ReportFilter) -> RoiReport:
    """The ROI report as its page shows it by default: with the loyalty cost."""
    report = loyalty_reports.roi(db, settings.base_currency, f, zone=settings.zone)
    return campaign_costs.include(db, report, f, settings.zone, base=settings.base_currency)


def budget_alerts(request: Request, db: Session, settings: Settings) -> BudgetAlerts:
    """Live campaigns whose total cost (approved receipts and loyalty cost, as the ROI report's
    budget used) has passed 90% or 100% of their budget. When the report cannot be computed
    (e.g. a missing exchange rate), that is said, never "none"."""
    try:
        report = _roi(db, settings, report_data.ReportFilter(statuses=LIVE))
    except RetainError as exc:
        return BudgetAlerts(problem=say(request, exc), fix=fix_of(exc))
    alerts = []
    for row in report.rows:
        used = row.values["budget_used_pct"]
        if isinstance(used, Decimal) and used >= 90:
            alerts.append({"row": row, "over": used > 100})
    return BudgetAlerts(sorted(alerts, key=lambda a: -a["row"].values["budget_used_pct"]))


# --- marketer --------------------------------------------------------------------------------


def quarter_of(day: date) -> tuple[date, date]:
    """The first and last day of `day`'s calendar quarter."""
    first = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return first, periods.month_end(date(first.year, first.month + 2, 1))


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """The ROI report's total over documents dated `start`…`end` (as its from/to)."""

    key: str  # "month" or "quarter"
    title: str
    start: date
    end: date
    total: RoiRow

    @property
    def report_url(self) -> str:
        return f"/reports/roi?from={self.start:%Y-%m-%d}&to={self.end:%Y-%m-%d}"


@dataclass(frozen=True, slots=True)
class Ranked:
    """A campaign ranked by ROI over the quarter, with its page."""

    row: RoiRow
    url: str


@dataclass(frozen=True, slots=True)
class Marketing:
    periods: list[PeriodFigures] = field(default_factory=list)
    best: list[Ranked] = field(default_factory=list)
    worst: list[Ranked] = field(default_factory=list)
    problem: Problem | None = None
    chart: dict[str, Any] = field(default_factory=dict)


def _ranked(db: Session, rows: list[RoiRow]) -> tuple[list[Ranked], list[Ranked]]:
    """The best and worst `RANKED` campaigns by ROI (those with a cost: ROI needs it), ties
    by code; a campaign is never both."""
    rankable = [r for r in rows if isinstance(r.values["roi_pct"], Decimal)]
    rankable.sort(key=lambda r: (-Decimal(str(r.values["roi_pct"])), r.key["code"]))
    best = rankable[:RANKED]
    worst = [r for r in reversed(rankable) if r not in best][:RANKED]
    codes = [r.key["code"] for r in best + worst]
    ids = dict(db.execute(select(Campaign.code, Campaign.id).where(Campaign.code.in_(codes))).all())

    def ranked(row: RoiRow) -> Ranked:
        return Ranked(row, f"/campaigns/{ids[row.key['code']]}")

    return [ranked(r) for r in best], [ranked(r) for r in worst]


def marketing(request: Request, db: Session, settings: Settings, day: date) -> Marketing:
    """This month's and this quarter's figures, as the ROI report filtered from/to them, and
    the quarter's best and worst campaigns by ROI."""
    spans = (
        ("month", t(request, "This month"), periods.month_of(day), periods.month_end(day)),
        ("quarter", t(request, "This quarter"), *quarter_of(day)),
    )
    try:
        reports = [
            _roi(db, settings, report_data.ReportFilter(start=start, end=end))
            for _, _, start, end in spans
        ]
    except RetainError as exc:  # e.g. a missing exchange rate: say which, who fixes it, where
        return Marketing(problem=Problem.of(request, exc))
    shown = [
        PeriodFigures(key, title, start, end, report.total)
        for (key, title, start, end), report in zip(spans, reports, strict=True)
    ]
    quarter_report = reports[-1]
    best, worst = _ranked(db, quarter_report.rows)
    campaigns = [*best, *reversed(worst)]
    chart = {
        "labels": [p.title for p in shown],
        "names": {
            "budget": t(request, "Budget"),
            "cost": t(request, "Approved cost"),
            "revenue": t(request, "Revenue"),
            "roi": t(request, "ROI %"),
        },
        "budget": [_number(p.total.values["budget"]) for p in shown],
        "cost": [_number(p.total.values["approved_cost"]) for p in shown],
        "revenue": [_number(p.total.values["revenue"]) for p in shown],
        "campaigns": [c.row.key["code"] for c in campaigns],
        "roi": [_number(c.row.values["roi_pct"]) for c in campaigns],
    }
    return Marketing(shown, best, worst, None, chart)


# --- finance ---------------------------------------------------------------------------------


def band_label(request: Request, band: queue.AgeBand) -> str:
    if band.high is None:
        return t(request, "over %(days)s days", days=band.low - 1)
    return t(request, "%(low)s–%(high)s days", low=band.low, high=band.high)


@dataclass(frozen=True, slots=True)
class Finance:
    waiting: queue.Queue
    bands: list[str]  # each age band's label, in `queue.AGE_BANDS` order
    months: list[queue.MonthClose]
    problem: Problem | None
    chart: dict[str, Any]


def finance(request: Request, db: Session, settings: Settings, day: date) -> Finance:
    waiting = queue.waiting(db, settings.base_currency, day)
    bands = [band_label(request, band) for band in queue.AGE_BANDS]
    chart: dict[str, Any] = {}
    if waiting.problem is None:
        chart = {
            "labels": bands,
            "currency": waiting.currency,
            "names": {
                "approval": t(request, "Awaiting approval"),
                "payment": t(request, "Awaiting payment"),
            },
            "approval": [_number(a.amount) for a in waiting.approval.ages],
            "payment": [_number(a.amount) for a in waiting.payment.ages],
        }
    problem = None if waiting.problem is None else Problem.of(request, waiting.problem)
    return Finance(waiting, bands, queue.recent_months(db, day), problem, chart)


# --- loyalty (marketer, admin) ---------------------------------------------------------------


def loyalty(request: Request, db: Session, settings: Settings, day: date) -> dict[str, Any]:
    figures = loyalty_activity.activity(db, settings.zone, day)
    months = figures.months
    return {
        "figures": figures,
        "chart": {
            "labels": [f"{m.month:%Y-%m}" for m in months],
            "names": {
                "issued": t(request, "Points issued"),
                "redeemed": t(request, "Points redeemed"),
                "expired": t(request, "Points expired"),
                "new_members": t(request, "New members"),
                "points": t(request, "Points"),
                "members": t(request, "Members"),
            },
            "issued": [m.issued for m in months],
            "redeemed": [m.redeemed for m in months],
            "expired": [m.expired for m in months],
            "new_members": [m.new_members for m in months],
        },
    }


# --- the page --------------------------------------------------------------------------------


def _status(db: Session) -> dict[str, Any]:
    return {"db_ok": database_ok(db), "dialect": db.get_bind().dialect.name, "checked_at": utcnow()}


@router.get("/dashboard")
def dashboard(request: Request, user: StaffUser, db: Db, settings: AppSettings) -> Response:
    is_admin = Role.ADMIN in user.roles
    block = htmx_block(request, "dashboard.html")
    if block == "system_status":  # "Check again" re-renders the status alone: compute only it
        if not is_admin:
            raise PermissionDenied("auth.role", "The system status is for admins.")
        return render(request, "dashboard.html", _status(db), block=block)
    day = today(settings)
    context: dict[str, Any] = {"roles": user.roles, "Role": Role, "today": day}
    if is_admin:
        context["admin"] = _admin_summary(db)
        context["status"] = True
        context.update(_status(db))
    if Role.MARKETER in user.roles:
        context["marketing"] = marketing(request, db, settings, day)
    if user.has_any(Role.MARKETER, Role.FINANCE):
        budget = budget_alerts(request, db, settings)
        context.update(alerts=budget.alerts, alerts_problem=budget.problem, alerts_fix=budget.fix)
    if Role.FINANCE in user.roles:
        context["finance"] = finance(request, db, settings, day)
    if user.has_any(Role.MARKETER, Role.ADMIN):
        context["loyalty"] = loyalty(request, db, settings, day)
    return render(request, "dashboard.html", context)
