"""Admin: API keys for integrations (POS, shop). A key is shown once, at creation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response

from core import bounds
from core.accounts import api_keys
from web.actions import act
from web.deps import AdminUser, Db, actor_for
from web.rendering import render, t

KeyId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
router = APIRouter(prefix="/admin/api-keys")


def _page(request: Request, db: Db, status: int = 200, **extra: Any) -> Response:
    context = {"keys": api_keys.list_all(db), "scopes": api_keys.SCOPES, **extra}
    return render(request, "admin/api_keys.html", context, status_code=status)


@router.get("")
def list_keys(request: Request, admin: AdminUser, db: Db) -> Response:
    return _page(request, db)


@router.post("")
def create_key(
    request: Request,
    admin: AdminUser,
    db: Db,
    name: Annotated[str, Form()] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    form = {"name": name, "scopes": scopes or []}
    return act(
        request,
        db,
        lambda: api_keys.create(db, actor_for(request, admin), name=name, scopes=scopes or []),
        # The key is shown once, on this answer; only its hash is stored.
        then=lambda made: _page(request, db, 201, new_key={"key": made[0], "raw": made[1]}),
        again=lambda errors: _page(request, db, errors=errors, form=form),
        names=("name", "scopes"),
        codes={"apikey.scopes_empty": "scopes"},
    )


@router.post("/{key_id}/revoke")
def revoke_key(request: Request, key_id: KeyId, admin: AdminUser, db: Db) -> Response:
    return act(
        request,
        db,
        lambda: api_keys.revoke(db, actor_for(request, admin), key_id),
        done=lambda key: t(
            request, "Key “%(name)s” is revoked; calls with it now get 401.", name=key.name
        ),
        then=lambda _: "/admin/api-keys",
        back="/admin/api-keys",
    )
