"""One API error shape, friendly HTML errors without stack traces, /healthz, block rendering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from campaigns.models import Channel
from core import migrations
from core.accounts import users
from core.accounts.models import User
from core.audit import Actor
from core.db import make_engine, make_session_factory
from core.settings import Settings
from tests.web.conftest import PASSWORD, csrf_from, sign_in
from web.app import create_app
from web.deps import Db, get_db, require_roles


@pytest.fixture
def failing_app(app: FastAPI) -> FastAPI:
    @app.get("/api/v1/_boom")
    def api_boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/_boom")
    def page_boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/api/v1/_typed/{number}")
    def typed(number: int) -> dict[str, int]:
        return {"number": number}

    return app


def test_api_errors_share_one_shape(failing_app: FastAPI) -> None:
    client = TestClient(failing_app, raise_server_exceptions=False)
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "code": "not_found",
            "message": "There is nothing at this address.",
            "details": None,
        }
    }
    invalid = client.get("/api/v1/_typed/abc")
    assert invalid.status_code == 422
    body = invalid.json()["error"]
    assert body["code"] == "validation_error" and body["details"][0]["field"] == "number"
    boom = client.get("/api/v1/_boom")
    assert boom.status_code == 500
    assert boom.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in boom.text


def test_html_errors_are_friendly_pages(failing_app: FastAPI) -> None:
    client = TestClient(failing_app, raise_server_exceptions=False)
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "Page not found" in missing.text
    boom = client.get("/_boom")
    assert boom.status_code == 500
    assert "Something went wrong" in boom.text
    assert "Traceback" not in boom.text and "secret internals" not in boom.text


def test_healthz_checks_the_database(client: TestClient, app: FastAPI) -> None:
    ok = client.get("/healthz")
    assert ok.status_code == 200 and ok.json() == {"status": "ok", "database": "ok"}
    broken = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_pre_ping=False)

    def unreachable() -> Iterator[Session]:
        with Session(broken) as session:
            yield session

    app.dependency_overrides[get_db] = unreachable
    down = client.get("/healthz")
    assert down.status_code == 503 and down.json()["database"] == "unreachable"


def test_htmx_gets_only_the_targeted_block(admin_client: TestClient) -> None:
    full = admin_client.get("/dashboard")
    assert "<html" in full.text and 'id="system-status"' in full.text
    block = admin_client.get(
        "/dashboard", headers={"HX-Request": "true", "HX-Target": "system-status"}
    )
    assert block.status_code == 200
    assert "<html" not in block.text and "<nav" not in block.text
    assert "System status" in block.text and "Database reachable" in block.text
    assert "HX-Request" in block.headers["vary"]


def test_api_docs_are_served_without_a_cdn(client: TestClient) -> None:
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    spec = client.get("/api/openapi.json").json()
    assert "/api/v1/me" in spec["paths"]


def test_a_500_after_a_failed_write_is_a_full_page_with_headers(
    request: pytest.FixtureRequest, settings: Settings
) -> None:
    """With the real per-request session: the write fails, the session rolls back and
    closes, and the error page still draws the signed-in frame, inside the security headers,
    on a connection that stays usable."""
    from tests.conftest import fresh_database_url

    engine = make_engine(fresh_database_url(request, "sqlite"))
    migrations.upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        users.create(
            session,
            Actor.system("test"),
            email="ada@example.com",
            name="Ada Admin",
            roles=("admin",),
            password=PASSWORD,
        )
        session.commit()
    app = create_app(settings, session_factory=factory)

    @app.post("/_failed_write")
    def failed_write(db: Db, user: Annotated[User, Depends(require_roles())]) -> None:
        db.add(Channel(code="boom", name="Boom"))
        db.flush()
        raise RuntimeError("secret internals")

    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    sign_in(client, "ada@example.com")
    token = csrf_from(client, "/dashboard")
    boom = client.post("/_failed_write", data={"csrf_token": token})
    assert boom.status_code == 500
    assert "Something went wrong" in boom.text and "secret internals" not in boom.text
    assert "Ada Admin" in boom.text or "ada@example.com" in boom.text  # the signed-in frame
    assert "default-src" in boom.headers["content-security-policy"]
    assert boom.headers["x-content-type-options"] == "nosniff"
    with factory() as session:
        assert session.scalar(select(Channel).where(Channel.code == "boom")) is None
    assert client.get("/dashboard").status_code == 200  # still signed in
    engine.dispose()


def test_a_405_names_every_method_the_path_answers_to(client: TestClient) -> None:
    # GET and POST /api/v1/members are two routes; the answer names both.
    answer = client.request("OPTIONS", "/api/v1/members")
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["allow"].split(",")} >= {"GET", "POST"}
