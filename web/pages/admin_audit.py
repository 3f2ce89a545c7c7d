"""Admin: the audit log, filtered, newest first, with htmx "load more"."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core import audit
from web.deps import AdminUser, Db
from web.forms import optional_day
from web.rendering import render

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
    before: int | None = None,
) -> Response:
    since_day, until_day = optional_day(since), optional_day(until)
    filters = audit.AuditFilter(
        action=action.strip() or None,
        actor=actor.strip() or None,
        entity_type=entity_type.strip() or None,
        entity_id=entity_id.strip() or None,
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
    context = {
        "rows": rows,
        "has_more": has_more,
        "next_before": rows[-1].id if rows else None,
        "query": {k: v for k, v in query.items() if v},
        "actions": audit.distinct_actions(db),
        "bad_dates": (since and not since_day) or (until and not until_day),
    }
    return render(request, "admin/audit.html", context)
