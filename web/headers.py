"""Response headers every page gets: security headers, Vary/no-store for HTML, and
`Server-Timing: app;dur=…` (milliseconds in the app, readable in the browser's dev tools and
by bench/portal.py)."""

from __future__ import annotations

import re
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
)

# The one response that may be framed: a receipt attachment's inline preview (a checked image
# or PDF), by Retain's own pages only. It is sandboxed by its own header (no script, no form,
# an origin of its own), however it is opened. Every other response denies framing.
FRAMEABLE = re.compile(r"/receipts/attachments/[0-9]+/inline")
PREVIEW_CSP = "sandbox; frame-ancestors 'self'"

# Production is served over HTTPS only (secure cookies, https:// links): browsers are told to
# keep to it for a year, so a first visit by plain http cannot be downgraded.
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                elapsed = (time.perf_counter() - started) * 1000
                headers.setdefault("Server-Timing", f"app;dur={elapsed:.2f}")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                preview = FRAMEABLE.fullmatch(scope.get("path", "")) is not None
                headers["X-Frame-Options"] = "SAMEORIGIN" if preview else "DENY"
                headers.setdefault("Referrer-Policy", "same-origin")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if preview:  # whatever the route answered, even an error page
                    headers["Content-Security-Policy"] = PREVIEW_CSP
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", CSP)
                    headers.add_vary_header("HX-Request")
                    # Staff pages show personal and financial data: never cache them.
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
