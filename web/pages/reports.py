"""The ROI (input-output ratio) report page: filters, table, charts, CSV and XLSX exports."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import exports, report_data
from campaigns.models import Campaign, CampaignStatus, Channel
from campaigns.reports import COLUMNS, GROUPS, GroupBy, RoiReport
from core import bounds
from core.accounts.models import Role, User
from core.errors import RetainError, ValidationFailed
from loyalty import reports as loyalty_reports
from web.deps import AppSettings, Db, require_roles
from web.rendering import render

router = APIRouter()
STAFF = (Role.MARKETER, Role.FINANCE, Role.ADMIN)


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "…"


def filter_day(value: str, problems: list[str]) -> date | None:
    """A filter's YYYY-MM-DD within the bounds of any date; a bad one is named and ignored."""
    if not value:
        return None
    try:
        return bounds.check_day(date.fromisoformat(value), "date", label=f"'{value}'")
    except ValueError:
        problems.append(f"'{_shown(value)}' is not a date like 2026-03-31")
    except ValidationFailed as exc:
        problems.append(exc.message.rstrip("."))
    return None


def filter_text(value: str, label: str, size: int, problems: list[str]) -> str | None:
    """A filter's text held to its column; a bad one is named and ignored."""
    if not value:
        return None
    problem = bounds.text_problem(value, size)
    if problem:
        problems.append(f"{label} {problem}")
        return None
    return value


def filter_id(value: str, label: str, problems: list[str]) -> int | None:
    """A filter's record id (a choice from a list); a bad one is named and ignored."""
    try:
        return bounds.parse_id(value, label)
    except ValidationFailed as exc:
        problems.append(exc.message.rstrip("."))
        return None


def parse_filter(params: dict[str, str]) -> tuple[report_data.ReportFilter, list[str]]:
    """The report filter from query parameters; bad values are ignored and named. `from`
    and `to` select documents by their own dates; `running_from` and `running_to` select
    campaigns by their run dates."""
    problems: list[str] = []
    return (
        report_data.ReportFilter(
            start=filter_day(params.get("from", ""), problems),
            end=filter_day(params.get("to", ""), problems),
            running_from=filter_day(params.get("running_from", ""), problems),
            running_to=filter_day(params.get("running_to", ""), problems),
            channel=filter_text(
                params.get("channel", ""), "The channel", bounds.length(Channel.code), problems
            ),
            status=filter_text(
                params.get("status", ""), "The status", bounds.length(Campaign.status), problems
            ),
            owner_id=filter_id(params.get("owner", ""), "owner", problems),
        ),
        problems,
    )


def chart_data(report: RoiReport, by_month: RoiReport | None) -> dict[str, Any]:
    def number(value: object) -> float | None:
        return None if value is None else float(str(value))

    labels = [r.key.get("code") or next(iter(r.key.values())) for r in report.rows]
    data: dict[str, Any] = {
        "labels": labels,
        "ratio": [number(r.values["io_ratio"]) for r in report.rows],
        "budget": [number(r.values["budget"]) for r in report.rows],
        "cost": [number(r.values["approved_cost"]) for r in report.rows],
    }
    if by_month is not None:
        data["months"] = [r.key["month"] for r in by_month.rows]
        data["month_revenue"] = [number(r.values["revenue"]) for r in by_month.rows]
        data["month_cost"] = [number(r.values["approved_cost"]) for r in by_month.rows]
    return data


def _options(db: Session) -> dict[str, Any]:
    return {
        "channels": db.execute(select(Channel.code, Channel.name).order_by(Channel.name)).all(),
        "owners": db.execute(select(User.id, User.name).order_by(User.name)).all(),
        "statuses": [s.value for s in CampaignStatus],
        "groups": GROUPS,
    }


Staff = Annotated[User, Depends(require_roles(*STAFF))]


def fix_of(exc: RetainError) -> dict[str, str] | None:
    """Who can fix a report error and where, when the error says (a missing or wrong
    exchange rate: finance, on the rates page)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    url = details.get("fix_url")
    if not isinstance(url, str):
        return None
    return {"url": url, "who": str(details.get("fixed_by", "finance"))}


def _build(db: Db, settings: AppSettings, request: Request) -> tuple[RoiReport, GroupBy, list[str]]:
    params = dict(request.query_params)
    filters, problems = parse_filter(params)
    group = params.get("group_by", "campaign")
    group_by: GroupBy = group if group in GROUPS else "campaign"
    return (
        loyalty_reports.roi(db, settings.base_currency, filters, group_by, zone=settings.zone),
        group_by,
        problems,
    )


@router.get("/reports/roi")
def roi_page(request: Request, user: Staff, db: Db, settings: AppSettings) -> Response:
    context: dict[str, Any] = {
        "params": dict(request.query_params),
        "columns": COLUMNS,
        **_options(db),
    }
    problems: list[str] = []
    try:
        report, group_by, problems = _build(db, settings, request)
        filters, _ = parse_filter(dict(request.query_params))
        by_month = (
            report
            if group_by == "month"
            else loyalty_reports.roi(
                db, settings.base_currency, filters, "month", zone=settings.zone
            )
        )
        context.update(report=report, problems=problems, chart=chart_data(report, by_month))
    except RetainError as exc:  # e.g. a missing exchange rate: say which, who fixes it, where
        context.update(report=None, error=exc.message, error_fix=fix_of(exc))
    query = request.url.query
    context["export_query"] = f"?{query}" if query else ""
    # The page still shows (without the bad filter), but the answer says the input was bad.
    return render(request, "reports/roi.html", context, status_code=422 if problems else 200)


@router.get("/reports/roi.{fmt}")
def roi_export(request: Request, fmt: str, user: Staff, db: Db, settings: AppSettings) -> Response:
    report, group_by, problems = _build(db, settings, request)
    if problems:  # a file is no place to say a filter was ignored: refuse it instead
        raise ValidationFailed("report.filter", "; ".join(problems) + ".")
    name = f"roi-by-{group_by}-{date.today():%Y%m%d}"  # noqa: DTZ011 - a file name only
    if fmt == "csv":
        return Response(
            exports.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            exports.to_xlsx(report),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    raise RetainError("report.format", "Export as .csv or .xlsx.")
