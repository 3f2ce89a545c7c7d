"""Portal pages: one template environment with gettext, rendered in the request's language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment, FileSystemLoader
from jinja2_fragments.fastapi import Jinja2Blocks

from loyalty.members import LIMITS
from loyalty.models import Named, name_in
from web.csrf import csrf_token
from web.i18n import NAMES, Formatter
from web.rendering import TEMPLATES_DIR, pop_flashes, respond
from web.rendering import flash as staff_flash

portal_templates = Jinja2Blocks(
    env=Environment(
        loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, extensions=["jinja2.ext.i18n"]
    )
)


FLASHES = "member_flashes"


def flash(request: Request, message: str, kind: str = "success") -> None:
    staff_flash(request, message, kind, key=FLASHES)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    fmt: Formatter = request.state.fmt

    def gettext(message: str, **variables: Any) -> str:
        text = fmt.gettext(message)
        return text % variables if variables else text

    def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
        return fmt.ngettext(singular, plural, n) % {"num": n, **variables}

    def named(item: Named) -> str:
        """What staff named a tier, reward, bonus rule or batch, in the member's language."""
        return name_in(item, fmt.language)

    ctx: dict[str, Any] = {
        "member": getattr(request.state, "member", None),
        "csrf_token": csrf_token(request),
        "flashes": pop_flashes(request, FLASHES),
        "fmt": fmt,
        "lang": fmt.language,
        "languages": NAMES,
        "limits": LIMITS,
        # What {{ _("…", name=…) }} calls: translate, then fill in (autoescaped on output).
        "gettext": gettext,
        "ngettext": ngettext,
        "named": named,
    }
    return respond(
        portal_templates,
        request,
        template,
        {**ctx, **(context or {})},
        status_code=status_code,
        block=block,
        headers={"Content-Language": fmt.language, **dict(headers or {})},
    )
