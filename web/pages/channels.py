"""Configure the channel list campaigns choose from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from campaigns import planning
from core.accounts.models import Role, User
from core.errors import RetainError
from web.deps import Db, actor_for, require_roles
from web.rendering import flash, render

router = APIRouter(prefix="/channels")
Configurer = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER))]


@router.get("")
def channels_page(request: Request, user: Configurer, db: Db) -> Response:
    return render(request, "campaigns/channels.html", {"channels": planning.list_channels(db)})


@router.post("")
def save_channel(
    request: Request,
    user: Configurer,
    db: Db,
    code: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
) -> Response:
    try:
        channel = planning.save_channel(
            db, actor_for(request, user), code=code, name=name, active=active == "on"
        )
    except RetainError as exc:
        db.rollback()
        flash(request, exc.message, "error")
    else:
        db.commit()
        flash(request, f"Channel {channel.name} saved{'' if channel.active else ' (retired)'}.")
    return RedirectResponse("/channels", status_code=303)
