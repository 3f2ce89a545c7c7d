"""The landing page after sign-in: one section per role the person holds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.accounts.models import ApiKey, Role, User, UserStatus
from core.timeutil import utcnow
from web.deps import Db, StaffUser
from web.health import database_ok
from web.rendering import render

router = APIRouter()


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


@router.get("/dashboard")
def dashboard(request: Request, user: StaffUser, db: Db) -> Response:
    context: dict[str, Any] = {
        "roles": user.roles,
        "Role": Role,
        "db_ok": database_ok(db),
        "dialect": db.get_bind().dialect.name,
        "checked_at": utcnow(),
    }
    if Role.ADMIN in user.roles:
        context["admin"] = _admin_summary(db)
    return render(request, "dashboard.html", context)
