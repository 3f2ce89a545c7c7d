"""Portal pages: one template environment with gettext, rendered in the request's language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment, FileSystemLoader
from jinja2_fragments.fastapi import Jinja2Blocks

from web.csrf import csrf_token
from web.i18n import NAMES, Formatter
from web.rendering import TEMPLATES_DIR, htmx_block

portal_templates = Jinja2Blocks(
    env=Environment(
        loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, extensions=["jinja2.ext.i18n"]
    )
)


def flash(request: Request, message: str, kind: str = "success") -> None:
    request.session["member_flashes"] = [
        *request.session.get("member_flashes", []),
        {"kind": kind, "message": message},
    ]


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

    ctx: dict[str, Any] = {
        "member": getattr(request.state, "member", None),
        "csrf_token": csrf_token(request),
        "flashes": request.session.pop("member_flashes", []),
        "fmt": fmt,
        "lang": fmt.language,
        "languages": NAMES,
        # What {{ _("…", name=…) }} calls: translate, then fill in (autoescaped on output).
        "gettext": gettext,
        "ngettext": ngettext,
    }
    ctx.update(context or {})
    response: Response = portal_templates.TemplateResponse(
        request,
        template,
        ctx,
        status_code=status_code,
        headers={"Content-Language": fmt.language, **dict(headers or {})},
        block_name=block or htmx_block(request, template),
    )
    return response
