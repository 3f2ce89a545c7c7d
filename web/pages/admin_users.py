"""Admin: invite staff, change their roles, disable and enable them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response

from core import bounds
from core.accounts import users
from core.accounts.models import Role, User
from web.actions import act
from web.deps import AdminUser, Db, actor_for
from web.rendering import N_, render, t

UserId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
router = APIRouter(prefix="/admin/users")
# The page shows these stored words through `_()` (`Role.label`, a person's status): listed
# here so `pybabel extract` puts them in the staff catalog.
ROLE_WORDS = (N_("Admin"), N_("Marketer"), N_("Finance"))
STATUS_WORDS = (N_("invited"), N_("active"), N_("disabled"))


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
    form = {"email": email, "name": name, "roles": roles or []}
    return act(
        request,
        db,
        lambda: users.invite(
            db, actor_for(request, admin), email=email, name=name, roles=roles or []
        ),
        # The link is shown once, on this answer; only its hash is stored.
        then=lambda made: _page(
            request, db, 201, new_invite={"person": made[0], "link": invite_link(request, made[1])}
        ),
        again=lambda errors: _page(request, db, errors=errors, form=form),
        names=("email", "name", "roles"),
        codes={"user.roles_empty": "roles", "user.role": "roles"},
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
        N_("Roles saved for %(name)s."),
    )


@router.post("/{user_id}/disable")
def disable(request: Request, user_id: UserId, admin: AdminUser, db: Db) -> Response:
    return _act(
        request,
        db,
        lambda: users.disable(db, actor_for(request, admin), user_id),
        N_("%(name)s is disabled and signed out everywhere."),
    )


@router.post("/{user_id}/enable")
def enable(request: Request, user_id: UserId, admin: AdminUser, db: Db) -> Response:
    return _act(
        request,
        db,
        lambda: users.enable(db, actor_for(request, admin), user_id),
        N_("%(name)s is enabled again."),
    )


@router.post("/{user_id}/reinvite")
def reinvite(request: Request, user_id: UserId, admin: AdminUser, db: Db) -> Response:
    return act(
        request,
        db,
        lambda: users.reissue_invite(db, actor_for(request, admin), user_id),
        then=lambda token: _page(
            request,
            db,
            201,
            new_invite={"person": users.get(db, user_id), "link": invite_link(request, token)},
        ),
        again=lambda errors: _page(request, db, error=" ".join(errors.values())),
    )


def _act(request: Request, db: Db, action: Callable[[], User], message: str) -> Response:
    """One admin action on a person; its refusal is shown at the top of the page."""
    return act(
        request,
        db,
        action,
        done=lambda person: t(request, message, name=person.name),
        then=lambda _: "/admin/users",
        again=lambda errors: _page(request, db, error=" ".join(errors.values())),
    )
