"""Admin: messages waiting for (or sent by) the sender: activation and reset links. With no
sender configured (demo, tests) this is where they are read."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core import outbox
from web.deps import AdminUser, Db
from web.rendering import N_, render

router = APIRouter(prefix="/admin/outbox")
# A message's channel, which the page shows through `_()`: listed here so `pybabel extract`
# puts the words in the staff catalog.
CHANNEL_WORDS = (N_("email"), N_("sms"))


@router.get("")
def messages(request: Request, admin: AdminUser, db: Db) -> Response:
    return render(request, "admin/outbox.html", {"messages": outbox.recent(db)})
