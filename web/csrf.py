"""CSRF: a per-browser token in the signed session, required on every unsafe page request.

Forms send it as the `csrf_token` field; htmx sends it as the X-CSRF-Token header
(set once on <body hx-headers>). API calls with a bearer key carry no cookie and
are not exposed to CSRF.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request

from core.errors import PermissionDenied

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def verify_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    if not isinstance(expected, str):
        # No token in the session (no session cookie at all): refused before the body is
        # read, so a stranger's post, an upload say, is never parsed.
        raise _invalid()
    sent = request.headers.get("X-CSRF-Token")
    if not sent and request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not (sent and hmac.compare_digest(expected.encode(), sent.encode("utf-8", "replace"))):
        raise _invalid()


def _invalid() -> PermissionDenied:
    return PermissionDenied(
        "csrf.invalid",
        "This form has expired or did not come from Retain. Reload the page and try again.",
    )
