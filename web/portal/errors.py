"""Error pages for members: in their language, inside the portal's frame, never staff text."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from core.errors import RetainError
from web.i18n import LANGUAGES, Formatter, from_accept_language
from web.portal.messages import N_, say
from web.portal.rendering import render

TITLES = {
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("That did not work"),
    422: N_("Please check what you entered"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
}
GENERIC = {
    404: N_("There is nothing here. It may have moved, or it is not yours to see."),
    405: N_("That action is not allowed here."),
    422: N_("Some fields are missing or not valid."),
    500: N_("Something went wrong on our side. Please try again in a moment."),
}


def is_portal(request: Request) -> bool:
    path = request.url.path
    return path == "/my" or path.startswith(("/my/", "/join/"))


def _formatter(request: Request) -> Formatter:
    fmt = getattr(request.state, "fmt", None)
    if fmt is None:  # the error came before the portal's own dependency ran
        chosen = request.session.get("lang")
        language = (
            chosen
            if isinstance(chosen, str) and chosen in LANGUAGES
            else from_accept_language(request.headers.get("accept-language"))
        )
        fmt = request.state.fmt = Formatter(language, request.app.state.settings.zone)
    return fmt


@dataclass(frozen=True, slots=True)
class _Signed:
    name: str


def _frame(request: Request) -> _Signed | None:
    name = getattr(request.state, "member_name", None)
    return _Signed(name) if name is not None else None


def page(request: Request, status: int, exc: RetainError | None = None) -> Response:
    fmt = _formatter(request)
    generic = fmt.gettext(GENERIC.get(status, GENERIC[500]))
    message = say(fmt, exc) if exc is not None else generic
    title = fmt.gettext(TITLES.get(status, TITLES[409]))
    return render(
        request,
        "portal/error.html",
        {"status": status, "title": title, "message": message, "member": _frame(request)},
        status_code=status,
        block="content" if request.headers.get("HX-Request") else None,
    )
