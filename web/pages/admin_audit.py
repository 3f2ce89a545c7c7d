"""Admin: the audit log, filtered, newest first, with htmx "load more"."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from core import audit, bounds
from core.audit import AuditEntry
from web.deps import AdminUser, Db
from web.pages.reports import filter_day, filter_text
from web.rendering import N_, render

router = APIRouter(prefix="/admin/audit")
PAGE = 50


def _start_of(day: date, request: Request) -> datetime:
    return datetime.combine(day, time.min, tzinfo=request.app.state.settings.zone)


@router.get("")
def audit_log(
    request: Request,
    admin: AdminUser,
    db: Db,
    action: str = "",
    actor: str = "",
    entity_type: str = "",
    entity_id: str = "",
    since: str = "",
    until: str = "",
    before: Annotated[int | None, Query(ge=1, le=bounds.MAX_ID)] = None,
) -> Response:
    # Bad filters are named on the page and ignored, and the answer is a 422.
    problems: list[str] = []
    kept = {
        "action": filter_text(
            request,
            action.strip(),
            N_("The action"),
            bounds.length(AuditEntry.action),
            problems,
        ),
        "actor": filter_text(request, actor.strip(), N_("Who"), bounds.MAX_SEARCH, problems),
        "entity_type": filter_text(
            request,
            entity_type.strip(),
            N_("The record type"),
            bounds.length(AuditEntry.entity_type),
            problems,
        ),
        "entity_id": filter_text(
            request,
            entity_id.strip(),
            N_("The record id"),
            bounds.length(AuditEntry.entity_id),
            problems,
        ),
    }
    since_day = filter_day(request, since, problems)
    until_day = filter_day(request, until, problems)
    filters = audit.AuditFilter(
        **kept,
        # Days are the staff member's local days; "until" includes the whole day.
        since=_start_of(since_day, request) if since_day else None,
        until=_start_of(until_day + timedelta(days=1), request) if until_day else None,
    )
    rows = audit.list_entries(db, filters, before_id=before, limit=PAGE + 1)
    has_more = len(rows) > PAGE
    rows = rows[:PAGE]
    query = {
        "action": action,
        "actor": actor,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "since": since,
        "until": until,
    }
    accepted = {
        **{k: v for k, v in kept.items() if v},
        **({"since": since} if since_day else {}),
        **({"until": until} if until_day else {}),
    }
    context = {
        "rows": rows,
        "has_more": has_more,
        "next_before": rows[-1].id if rows else None,
        "query": {k: v for k, v in query.items() if v},
        "more_query": accepted,  # "load more" carries only the filters that were applied
        "actions": audit.distinct_actions(db),
        "problems": problems,
    }
    return render(request, "admin/audit.html", context, status_code=422 if problems else 200)
