"""Admin: API keys for integrations (POS, shop). A key is shown once, at creation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from core import bounds
from core.accounts import api_keys
from core.errors import RetainError
from web.deps import AdminUser, Db, actor_for
from web.errors import status_for
from web.rendering import flash, render

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
    try:
        key, raw = api_keys.create(db, actor_for(request, admin), name=name, scopes=scopes or [])
    except RetainError as exc:
        db.rollback()
        form = {"name": name, "scopes": scopes or []}
        return _page(request, db, status_for(exc), error=exc.message, form=form)
    db.commit()
    return _page(request, db, 201, new_key={"key": key, "raw": raw})


@router.post("/{key_id}/revoke")
def revoke_key(request: Request, key_id: KeyId, admin: AdminUser, db: Db) -> Response:
    key = api_keys.revoke(db, actor_for(request, admin), key_id)
    db.commit()
    flash(request, f"Key “{key.name}” is revoked; calls with it now get 401.")
    return RedirectResponse("/admin/api-keys", status_code=303)
