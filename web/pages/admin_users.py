"""Admin: invite staff, change their roles, disable and enable them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from core import bounds
from core.accounts import users
from core.accounts.models import Role, User
from core.errors import RetainError
from web.deps import AdminUser, Db, actor_for
from web.errors import status_for
from web.rendering import flash, render

UserId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
router = APIRouter(prefix="/admin/users")


def _page(request: Request, db: Db, status: int = 200, **extra: Any) -> Response:
    context = {"people": users.list_all(db), "all_roles": list(Role), **extra}
    return render(request, "admin/users.html", context, status_code=status)


def invite_link(request: Request, token: str) -> str:
    return str(request.url_for("invite_form", token=token))


@router.get("")
def list_users(request: Request, admin: AdminUser, db: Db) -> Response:
    return _page(request, db)


@router.post("")
def invite(
    request: Request,
    admin: AdminUser,
    db: Db,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        person, token = users.invite(
            db, actor_for(request, admin), email=email, name=name, roles=roles or []
        )
    except RetainError as exc:
        db.rollback()
        form = {"email": email, "name": name, "roles": roles or []}
        return _page(request, db, status_for(exc), invite_error=exc.message, form=form)
    db.commit()
    # The link is shown once, here; only its hash is stored.
    return _page(
        request, db, 201, new_invite={"person": person, "link": invite_link(request, token)}
    )


@router.post("/{user_id}/roles")
def change_roles(
    request: Request,
    user_id: UserId,
    admin: AdminUser,
    db: Db,
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    return _act(
        request,
        db,
        lambda: users.set_roles(db, actor_for(request, admin), user_id, roles or []),
        "Roles saved for {}.",
    )


@router.post("/{user_id}/disable")
def disable(request: Request, user_id: UserId, admin: AdminUser, db: Db) -> Response:
    return _act(
        request,
        db,
        lambda: users.disable(db, actor_for(request, admin), user_id),
        "{} is disabled and signed out everywhere.",
    )


@router.post("/{user_id}/enable")
def enable(request: Request, user_id: UserId, admin: AdminUser, db: Db) -> Response:
    return _act(
        request,
        db,
        lambda: users.enable(db, actor_for(request, admin), user_id),
        "{} is enabled again.",
    )


@router.post("/{user_id}/reinvite")
def reinvite(request: Request, user_id: UserId, admin: AdminUser, db: Db) -> Response:
    try:
        token = users.reissue_invite(db, actor_for(request, admin), user_id)
    except RetainError as exc:
        db.rollback()
        return _page(request, db, status_for(exc), error=exc.message)
    db.commit()
    person = users.get(db, user_id)
    return _page(
        request, db, 201, new_invite={"person": person, "link": invite_link(request, token)}
    )


def _act(request: Request, db: Db, action: Callable[[], User], message: str) -> Response:
    """Run one admin action as one transaction; show its error on the page if it fails."""
    try:
        person = action()
    except RetainError as exc:
        db.rollback()
        return _page(request, db, status_for(exc), error=exc.message)
    db.commit()
    flash(request, message.format(person.name))
    return RedirectResponse("/admin/users", status_code=303)
