"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

import web.registry  # noqa: F401  (all models, so relationships resolve)
from core.db import make_engine, make_session_factory
from core.settings import Settings, get_settings
from web import errors, health
from web.api.router import router as api_router
from web.headers import SecurityHeaders
from web.i18n import currency_name
from web.limits import BodyLimits
from web.pages.router import router as pages_router
from web.portal.router import router as portal_router
from web.rendering import templates

# The currency picker (`_currency.html`) names each currency in the page's language.
templates.env.globals["currency_name"] = currency_name

STATIC_DIR = Path(__file__).parent / "static"
SWAGGER = "/static/vendor/swagger-ui"


def create_app(
    settings: Settings | None = None, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production()
    secret = settings.resolve_secret_key()
    engine = None
    if session_factory is None:
        engine = make_engine(settings.sqlalchemy_url)
        session_factory = make_session_factory(engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if engine is not None:
            engine.dispose()

    app = FastAPI(
        title="Retain API",
        version="1",
        description="Campaign ROI and member loyalty. Integrations authenticate with "
        "`Authorization: Bearer <API key>`; errors share one shape: "
        '`{"error": {"code", "message", "details"}}`.',
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    # The last added is the outermost:
    # SecurityHeaders -> SessionMiddleware -> BodyLimits -> CatchUnexpected -> routes.
    # So the body limits' 413 and 401 and any 500 get the security headers, and see the
    # decoded session.
    app.add_middleware(errors.CatchUnexpected)
    app.add_middleware(BodyLimits)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="retain_session",
        same_site="lax",
        https_only=settings.is_production,
        max_age=settings.session_hours * 3600,
    )
    app.add_middleware(SecurityHeaders, hsts=settings.is_production)
    errors.install(app)
    app.include_router(api_router)
    app.include_router(pages_router)
    app.include_router(portal_router)
    app.include_router(health.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="Retain API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )
        # Swagger UI starts itself with one inline script.
        page.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
            "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
        )
        return page

    return app
