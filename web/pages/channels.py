"""Configure the channel list campaigns choose from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from campaigns import planning
from campaigns.models import Channel
from core.accounts.models import Role, User
from web.actions import act
from web.deps import Db, actor_for, require_roles
from web.forms import FormFields
from web.rendering import render, t

router = APIRouter(prefix="/channels")
Configurer = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER))]
FIELDS = ("code", "name")


def _page(
    request: Request,
    db: Session,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    context = {"channels": planning.list_channels(db), "form": form or {}, "errors": errors or {}}
    return render(request, "campaigns/channels.html", context)


@router.get("")
def channels_page(request: Request, user: Configurer, db: Db) -> Response:
    return _page(request, db)


@router.post("")
def save_channel(request: Request, user: Configurer, db: Db, raw: FormFields) -> Response:
    form = {k: str(raw.get(k, "")) for k in ("code", "name", "active", "adding")}

    def saved(channel: Channel) -> str:
        if channel.active:
            return t(request, "Channel %(name)s saved.", name=channel.name)
        return t(request, "Channel %(name)s saved (retired).", name=channel.name)

    return act(
        request,
        db,
        lambda: planning.save_channel(
            db,
            actor_for(request, user),
            code=form["code"],
            name=form["name"],
            active=form["active"] == "on",
        ),
        done=saved,
        then=lambda _: "/channels",
        # A new channel's form is drawn again with its input; a row's refusal is flashed.
        again=(lambda errors: _page(request, db, form, errors)) if form["adding"] else None,
        back="/channels",
        names=FIELDS,
    )
