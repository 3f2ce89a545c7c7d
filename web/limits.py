"""Request body limits, enforced before the app reads the body.

Every request body gets a limit by its class: API bodies, page forms, and the three upload
forms (derived from the limits the upload routes enforce themselves, so those stay the one
source of truth). A `Content-Length` over the limit is refused before a byte is read; a body
without one (chunked) is counted as it streams through `receive` and refused as soon as it
passes the limit, so nothing ever holds more than about one limit of it.

An `/api/` request carrying neither an API key (`Authorization: Bearer …`) nor a signed-in
staff session is refused with 401 once its body is over `UNAUTHENTICATED_API_BODY`, without
reading it: its route would answer 401 anyway, but only after parsing the whole body.

Refusals use the app's error shape (JSON for `/api/`, a short page otherwise). This middleware
sits inside `SecurityHeaders` (the refusal gets the security headers) and inside
`SessionMiddleware` (it reads the decoded session to tell a signed-in staff member).
The rest of a refused body is left to the server, which discards it unread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from campaigns import attachments
from core.text import N_
from web.deps import SESSION_KEY
from web.errors import api_error, error_page
from web.pages.finance import MAX_CSV
from web.rendering import t

KiB = 1024
MiB = 1024 * KiB

# The limits, in bytes. Change them here only.
# An API body is one JSON object: the largest is a purchase with its lines, a few KiB;
# 1 MiB leaves room for a few thousand lines.
JSON_BODY = 1 * MiB
# A page form without files (sign-in, a campaign, a tier, a bulk approval of receipts).
FORM_BODY = 256 * KiB
# The multipart envelope around uploaded files: boundaries, part headers, file names, the
# CSRF token and the other fields of the form. A few KiB in practice.
MULTIPART_MARGIN = 256 * KiB
# POST /api/v1/receipts/{id}/attachments: one file, at most attachments.MAX_BYTES.
ATTACHMENT_UPLOAD = attachments.MAX_BYTES + MULTIPART_MARGIN
# The receipt form (POST /receipts, /receipts/{id}) takes several attachments at once.
RECEIPT_FORM_FILES = 5
RECEIPT_FORM_UPLOAD = RECEIPT_FORM_FILES * attachments.MAX_BYTES + MULTIPART_MARGIN
# POST /imports/{kind}: one CSV file of at most MAX_CSV.
CSV_UPLOAD = MAX_CSV + MULTIPART_MARGIN
# An /api/ body larger than this needs credentials on the request before any of it is read.
UNAUTHENTICATED_API_BODY = 64 * KiB


def _mb(size: int) -> str:
    return f"{size / MiB:g} MB"


@dataclass(frozen=True, slots=True)
class Limit:
    size: int
    hint: str  # a template for the staff catalog, filled from `params`
    params: Mapping[str, str] = field(default_factory=dict)

    def says(self) -> str:
        return self.hint % dict(self.params)


JSON_LIMIT = Limit(JSON_BODY, N_("API requests can be at most %(size)s."), {"size": _mb(JSON_BODY)})
FORM_LIMIT = Limit(
    FORM_BODY, N_("Forms can be at most %(size)s."), {"size": f"{FORM_BODY // KiB} KB"}
)
# Multipart uploads, by path. Any other body, multipart or not, is a form or an API body.
UPLOADS: tuple[tuple[re.Pattern[str], Limit], ...] = (
    (
        re.compile(r"/api/v1/receipts/\d+/attachments"),
        Limit(
            ATTACHMENT_UPLOAD,
            N_("Attachments can be at most %(size)s."),
            {"size": _mb(attachments.MAX_BYTES)},
        ),
    ),
    (
        re.compile(r"/receipts(?:/\d+)?"),
        Limit(
            RECEIPT_FORM_UPLOAD,
            N_(
                "Attach at most %(files)s files of up to %(size)s each at a time; add more by"
                " editing the receipt."
            ),
            {"files": str(RECEIPT_FORM_FILES), "size": _mb(attachments.MAX_BYTES)},
        ),
    ),
    (
        re.compile(r"/imports/[\w-]+"),
        Limit(
            CSV_UPLOAD, N_("CSV files can be at most %(size)s; split it."), {"size": _mb(MAX_CSV)}
        ),
    ),
)


def limit_for(path: str, content_type: str) -> Limit:
    if content_type.lower().startswith("multipart/form-data"):
        for pattern, limit in UPLOADS:
            if pattern.fullmatch(path):
                return limit
    return JSON_LIMIT if path.startswith("/api/") else FORM_LIMIT


def _is_api(path: str) -> bool:
    return path.startswith(("/api/", "/my/api/"))  # as web.errors.is_api


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.isdigit():
        return None  # absent (chunked), or invalid and refused by the server
    return int(value)


def _has_credentials(scope: Scope, headers: Headers) -> bool:
    """An API key, or a signed-in staff session: checked by the route, not here."""
    if headers.get("authorization", "")[:7].lower() == "bearer ":
        return True
    session = scope.get("session")
    return isinstance(session, dict) and isinstance(session.get(SESSION_KEY), str)


TOO_LARGE = N_("The request is larger than this address accepts.")
TRY_LESS = N_("Go back and try again with less.")


def too_large(scope: Scope, limit: Limit) -> Response:
    """The API's error shape, or the site's error page in the reader's language (the
    person is known from the session; the page is drawn without reading the body)."""
    path: str = scope["path"]
    if _is_api(path):
        message = f"{TOO_LARGE} {limit.says()}"
        return api_error(413, "request.too_large", message, {"limit": limit.size})
    request = Request(scope)
    message = " ".join(
        (t(request, TOO_LARGE), t(request, limit.hint, **limit.params), t(request, TRY_LESS))
    )
    return error_page(request, 413, message)


def unauthenticated() -> Response:
    return api_error(
        401,
        "auth.api_key_missing",
        "Send an API key in the header 'Authorization: Bearer <key>'.",
        None,
        **{"WWW-Authenticate": "Bearer"},
    )


class _BodyRefused(Exception):
    """Raised from `receive` once the body passes its limit; the middleware answers."""


class BodyLimits:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        limit = limit_for(path, headers.get("content-type", ""))
        anonymous = path.startswith("/api/") and not _has_credentials(scope, headers)
        length = _content_length(headers)
        if length is not None:
            if anonymous and length > UNAUTHENTICATED_API_BODY:
                await unauthenticated()(scope, receive, send)
                return
            if length > limit.size:
                await too_large(scope, limit)(scope, receive, send)
                return

        received = 0
        refusal: Response | None = None
        started = False

        async def counted_receive() -> Message:
            nonlocal received, refusal
            if refusal is not None:
                raise _BodyRefused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if anonymous and received > UNAUTHENTICATED_API_BODY:
                    refusal = unauthenticated()
                elif received > limit.size:
                    refusal = too_large(scope, limit)
                if refusal is not None:
                    raise _BodyRefused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refusal is not None and not started:
                return  # the app's answer to a body it could not read: ours goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            # _BodyRefused itself, or whatever the app made of it (FastAPI turns an error
            # while reading the body into a 400, a task group wraps it in a group).
            if refusal is None or started:
                raise
        if refusal is not None and not started:
            await refusal(scope, receive, send)
