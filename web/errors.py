"""One error shape for the API, a friendly page for people, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.accounts import sessions
from core.errors import (
    ConfigError,
    Conflict,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RateLimited,
    RetainError,
    ValidationFailed,
)
from web.deps import SESSION_KEY, Viewer, get_db
from web.portal import errors as portal_errors
from web.rendering import N_, render, say, t

log = logging.getLogger("retain.web")

STATUS: dict[type[RetainError], int] = {
    ValidationFailed: 422,
    NotFound: 404,
    PermissionDenied: 403,
    NotAuthenticated: 401,
    Conflict: 409,
    RateLimited: 429,
    ConfigError: 500,
}
TITLES = {
    400: N_("Bad request"),
    401: N_("Please sign in"),
    403: N_("No access"),
    404: N_("Page not found"),
    405: N_("Not allowed"),
    409: N_("Conflict"),
    413: N_("Request too large"),
    422: N_("Please check your input"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
}


def status_for(exc: RetainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/my/api/"))


def api_error(
    status: int, code: str, message: str, details: Any = None, **headers: str
) -> Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers or None)


def _session_viewer(request: Request) -> Viewer | None:
    """The staff member the session is signed in as, as plain values, or None; never raises
    (an error page must still be drawn when the database is the trouble)."""
    try:
        token = request.session.get(SESSION_KEY) if "session" in request.scope else None
        if not isinstance(token, str):
            return None
        # The session the routes get: `get_db`, or what replaces it (the tests' session).
        override = request.app.dependency_overrides.get(get_db)
        made: Any = override() if override is not None else get_db(request)  # a generator
        try:
            user = sessions.resolve(next(made), token)
            return None if user is None else Viewer.of(user)
        finally:
            made.close()
    except Exception:
        log.warning("no signed-in user for the error page on %s", request.url.path, exc_info=True)
        return None


async def know_viewer(request: Request) -> None:
    """Who is signed in, for a staff error page's frame (navigation, sign-out) and language,
    when no route dependency said it: a 404 or 405 runs none. Looked up in a worker thread,
    as every database call is; a page that already knows (`request.state.user`) is left so."""
    if hasattr(request.state, "user") or is_api(request) or portal_errors.is_portal(request):
        return
    request.state.user = await run_in_threadpool(_session_viewer, request)


def error_page(
    request: Request, status: int, message: str, exc: RetainError | None = None
) -> Response:
    if portal_errors.is_portal(request):
        return portal_errors.page(request, status, exc)
    title = TITLES.get(status, N_("Error"))  # translated where shown, in error.html
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
        block="content" if request.headers.get("HX-Request") else None,
    )


def _signin_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    signin = "/my/signin" if portal_errors.is_portal(request) else "/signin"
    location = f"{signin}?next={quote(target)}"
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


async def handle_domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RetainError)
    status = status_for(exc)
    if is_api(request):
        headers: dict[str, str] = {}
        if isinstance(exc, NotAuthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return api_error(status, exc.code, exc.message, exc.details, **headers)
    if isinstance(exc, NotAuthenticated):
        return _signin_redirect(request)
    await know_viewer(request)
    return error_page(request, status, say(request, exc), exc)


def allowed_methods(request: Request) -> str:
    """Every method the path answers to. Starlette's 405 names only the first route that
    matched the path, so `/members` (GET and POST, two routes) would claim only one."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        matches = getattr(route, "matches", None)
        if matches is not None and matches(request.scope)[0] != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def handle_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {
        404: N_("There is nothing at this address."),
        405: N_("That action is not allowed here."),
    }
    text = message.get(exc.status_code) or str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    if is_api(request):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return api_error(exc.status_code, code, text, None, **headers)
    await know_viewer(request)
    page = error_page(request, exc.status_code, t(request, text))
    page.headers.update(headers)
    return page


async def handle_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in err["loc"][1:]) or "body", "message": err["msg"]}
        for err in exc.errors()
    ]
    if is_api(request):
        return api_error(422, "validation_error", "The request is not valid.", details)
    fields = ", ".join(d["field"] for d in details)
    await know_viewer(request)
    return error_page(
        request, 422, t(request, "Some fields are missing or not valid: %(fields)s.", fields=fields)
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = N_("Retain hit an unexpected error. It has been logged; please try again.")
    if is_api(request):
        return api_error(500, "internal_error", message)
    try:
        await know_viewer(request)
        return error_page(request, 500, t(request, message))
    except Exception:  # the page itself failed: still answer, in plain words
        log.exception("the error page failed on %s", request.url.path)
        return PlainTextResponse(message, status_code=500)


class CatchUnexpected:
    """Answers an unexpected exception inside the middleware stack, as a normal response.

    Starlette's own last-resort handler sits outside every middleware and re-raises after
    answering, so its 500 went out without the security headers or the session, and the
    server then dropped the keep-alive connection. Here the 500 is an ordinary response:
    logged once, headers added on the way out, connection kept. A response that had already
    started cannot be replaced; that error goes on up.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                raise
            response = await handle_unexpected(Request(scope, receive), exc)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RetainError, handle_domain)
    app.add_exception_handler(HTTPException, handle_http)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(Exception, handle_unexpected)
