"""Templates: one URL renders the whole page, or one block of it for htmx.

For an htmx request the block is chosen by the element being swapped: `HX-Target:
audit-rows` renders `{% block audit_rows %}` when the template has it, else `content`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment, FileSystemLoader
from jinja2_fragments.fastapi import Jinja2Blocks

from core.errors import RetainError
from core.text import N_ as N_  # pages mark their words with the one marker
from core.text import said
from core.timeutil import to_zone
from web.csrf import csrf_token
from web.i18n import LANGUAGES, NAMES, STAFF, from_accept_language, translations

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Blocks(
    env=Environment(
        loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, extensions=["jinja2.ext.i18n"]
    )
)
# English wherever no request says otherwise (a macro rendered on its own); `render` passes
# the request's gettext in the context, which wins.
templates.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]


def language(request: Request) -> str:
    """The staff page's language: the signed-in person's choice, else the one picked on this
    browser, else the browser's Accept-Language."""
    viewer = getattr(request.state, "user", None)
    chosen = getattr(viewer, "language", None) or request.session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return from_accept_language(request.headers.get("accept-language"))


def t(request: Request, message: str, **variables: Any) -> str:
    """`message` in the request's language, filled in: `t(request, "Saved %(code)s.",
    code=c.code)`. Mark strings this way so `pybabel extract` finds them."""
    text = translations(language(request), STAFF).gettext(message)
    return text % variables if variables else text


def tn(request: Request, singular: str, plural: str, n: int, **variables: Any) -> str:
    text = translations(language(request), STAFF).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def say(request: Request, error: RetainError) -> str:
    """A refusal in the request's language: its template translated and filled, the marked
    words among its params (labels, `core.text.Phrase`) translated too; the person's own input
    quoted in it stays as typed. A template the catalog lacks reads as the English."""
    if not error.template:
        return error.message
    return said(lambda message: t(request, message), error.template, error.params)


def say_each(
    request: Request, problems: Mapping[str, str], errors: Mapping[str, RetainError]
) -> dict[str, str]:
    """Each field's problem in the request's language (`Problems.by_field` or `Invalid.fields`
    with their `errors`)."""
    return {
        field: say(request, errors[field]) if field in errors else message
        for field, message in problems.items()
    }


def plain(value: Any) -> str:
    """A stored value as a person reads it: lists joined, nothing as a dash."""
    if value is None or value == []:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


templates.env.filters["plain"] = plain


def number(value: Any) -> str:
    """A Decimal without trailing zeros: 1.2500 → 1.25, 100.0000 → 100."""
    if isinstance(value, Decimal):
        text = f"{value.normalize():f}"
        return text
    return "" if value is None else str(value)


templates.env.filters["number"] = number


# Flashes travel in the signed session cookie, which a browser drops past about 4 KB (and
# with it the sign-in): a message quoting what someone typed is cut short, and only the
# latest few are kept.
FLASH_CHARS = 300
FLASHES_KEPT = 3


def flash(request: Request, message: str, kind: str = "success", *, key: str = "flashes") -> None:
    """A message for the next page. Staff and member pages keep theirs under their own
    `key`, so one never shows the other's."""
    if len(message) > FLASH_CHARS:
        message = message[: FLASH_CHARS - 1] + "…"
    kept = [*request.session.get(key, []), {"kind": kind, "message": message}][-FLASHES_KEPT:]
    # Reassign, never mutate in place: the session is saved only when it sees an assignment.
    request.session[key] = kept


def pop_flashes(request: Request, key: str = "flashes") -> list[dict[str, str]]:
    flashes: list[dict[str, str]] = request.session.pop(key, [])
    return flashes


def _localtime(request: Request) -> Any:
    zone = request.app.state.settings.zone

    def fmt(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
        return "—" if value is None else to_zone(value, zone).strftime(pattern)

    return fmt


def htmx_block(request: Request, template: str) -> str | None:
    if request.headers.get("HX-Request") != "true" or request.headers.get("HX-Boosted"):
        return None
    blocks = templates.env.get_template(template).blocks
    target = (request.headers.get("HX-Target") or "").replace("-", "_")
    return target if target in blocks else "content"


# Macro files every staff template may use, and the names templates import them as.
MACROS = {
    "_form.html": None,  # as a module: `f.summary(…)`
    "_currency.html": "currency_select",
    "campaigns/_figures_problem.html": "problem_notice",
}


def _macros(language: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, macro in MACROS.items():
        module = templates.env.get_template(name).make_module(vars=language)
        found[macro or "f"] = getattr(module, macro) if macro else module
    return found


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    lang = language(request)
    catalog = translations(lang, STAFF)

    def gettext(message: str, **variables: Any) -> str:
        text = catalog.gettext(message)
        return text % variables if variables else text

    def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
        return catalog.ngettext(singular, plural, n) % {"num": n, **variables}

    ctx: dict[str, Any] = {
        # The shared macros, in the request's language: an htmx render of one block skips
        # the template's top-level `{% import %}`s, so the block finds them here instead.
        **_macros({"gettext": gettext, "ngettext": ngettext}),
        # What {{ _("…", name=…) }} calls: translate, then fill in (autoescaped on output).
        "gettext": gettext,
        "ngettext": ngettext,
        "lang": lang,
        "languages": NAMES,
        "user": getattr(request.state, "user", None),
        "csrf_token": csrf_token(request),
        "flashes": pop_flashes(request),
        "localtime": _localtime(request),
        "settings": request.app.state.settings,
    }
    return respond(
        templates,
        request,
        template,
        {**ctx, **(context or {})},
        status_code=status_code,
        block=block,
        headers={"Content-Language": lang, **dict(headers or {})},
    )


def respond(
    environment: Jinja2Blocks,
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    block: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The page, or for htmx the block being swapped, from `environment`."""
    response: Response = environment.TemplateResponse(
        request,
        template,
        context,
        status_code=status_code,
        headers=dict(headers or {}),
        block_name=block or htmx_block(request, template),
    )
    return response
