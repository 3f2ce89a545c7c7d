"""The landing page after sign-in: one section per role the person holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import report_data
from campaigns.models import Receipt
from core import audit
from core.accounts.models import ApiKey, Role, User, UserStatus
from core.errors import RetainError
from core.settings import Settings
from core.timeutil import utcnow
from loyalty import reports as loyalty_reports
from web.deps import AppSettings, Db, StaffUser
from web.health import database_ok
from web.pages.reports import fix_of
from web.rendering import htmx_block, render

router = APIRouter()
LIVE = ("planned", "active")


@router.get("/")
def root() -> Response:
    return RedirectResponse("/dashboard", status_code=303)


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


@dataclass(frozen=True, slots=True)
class BudgetAlerts:
    """The alerts, or why they could not be computed (and who can fix that, where)."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None
    fix: dict[str, str] | None = None


def budget_alerts(db: Session, settings: Settings) -> BudgetAlerts:
    """Live campaigns whose approved cost has passed 90% or 100% of their budget. When the
    report cannot be computed (e.g. a missing exchange rate), that is said, never "none"."""
    try:
        report = loyalty_reports.roi(
            db, settings.base_currency, report_data.ReportFilter(statuses=LIVE), zone=settings.zone
        )
    except RetainError as exc:
        return BudgetAlerts(problem=exc.message, fix=fix_of(exc))
    alerts = []
    for row in report.rows:
        used = row.values["budget_used_pct"]
        if isinstance(used, Decimal) and used >= 90:
            alerts.append({"row": row, "over": used > 100})
    return BudgetAlerts(sorted(alerts, key=lambda a: -a["row"].values["budget_used_pct"]))


def _finance_summary(db: Session) -> dict[str, int]:
    rows = db.execute(
        select(Receipt.status, func.count())
        .where(Receipt.status.in_(("submitted", "approved")))
        .group_by(Receipt.status)
    )
    counts: dict[str, int] = {status: n for status, n in rows}
    return {"submitted": counts.get("submitted", 0), "approved": counts.get("approved", 0)}


@router.get("/dashboard")
def dashboard(request: Request, user: StaffUser, db: Db, settings: AppSettings) -> Response:
    context: dict[str, Any] = {
        "roles": user.roles,
        "Role": Role,
        "db_ok": database_ok(db),
        "dialect": db.get_bind().dialect.name,
        "checked_at": utcnow(),
    }
    block = htmx_block(request, "dashboard.html")
    if block == "system_status":  # "Check again" re-renders the status alone: compute only it
        return render(request, "dashboard.html", context, block=block)
    if Role.ADMIN in user.roles:
        context["admin"] = _admin_summary(db)
    if user.has_any(Role.MARKETER, Role.FINANCE):
        budget = budget_alerts(db, settings)
        context.update(alerts=budget.alerts, alerts_problem=budget.problem, alerts_fix=budget.fix)
    if Role.FINANCE in user.roles:
        context["finance"] = _finance_summary(db)
    return render(request, "dashboard.html", context)
