"""CSRF on every write, sign-in on every staff page, roles on every admin page and API route."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import pytest
from fastapi import FastAPI
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.testclient import TestClient

from core.accounts.models import User
from tests.web.conftest import csrf_from, sign_in
from web.csrf import verify_csrf

# The language switch works before sign-in too (the sign-in page has it).
PUBLIC_PAGES = {"/signin", "/invite/{token}", "/healthz", "/api/docs", "/", "/language"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class PageRoute(NamedTuple):
    path: str
    methods: set[str]
    context: RouteContext


def page_routes(app: FastAPI) -> list[PageRoute]:
    """Every HTML route as the app serves it (FastAPI keeps included routers nested)."""
    return [
        PageRoute(r.path, r.methods, r)
        for r in iter_route_contexts(app.routes)
        if r.methods and r.path and not r.path.startswith(("/api/", "/static"))
    ]


def is_portal_path(path: str) -> bool:
    return path == "/my" or path.startswith(("/my/", "/join/"))


def route_dependencies(route: PageRoute) -> set[object]:
    return {d.call for d in route.context.dependant.dependencies}


def test_every_page_write_checks_csrf(app: FastAPI) -> None:
    writes = [r for r in page_routes(app) if r.methods & UNSAFE]
    assert len(writes) >= 8  # sign-in/out, invites, users, keys
    missing = [r.path for r in writes if verify_csrf not in route_dependencies(r)]
    assert missing == []


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/signin", {"email": "a@example.com", "password": "x"}),
        ("/signout", {}),
        ("/admin/users", {"email": "new@example.com", "name": "New", "roles": "finance"}),
        ("/admin/api-keys", {"name": "POS", "scopes": "purchases:write"}),
    ],
)
def test_form_post_without_csrf_token_gets_403(
    admin_client: TestClient, path: str, data: dict[str, str]
) -> None:
    missing = admin_client.post(path, data=data)
    assert missing.status_code == 403
    assert "Reload the page" in missing.text
    forged = admin_client.post(path, data={**data, "csrf_token": "forged"})
    assert forged.status_code == 403
    forged_header = admin_client.post(path, data=data, headers={"X-CSRF-Token": "forged"})
    assert forged_header.status_code == 403


def test_htmx_write_with_the_header_token_passes(admin_client: TestClient, csrf: str) -> None:
    response = admin_client.post(
        "/admin/api-keys",
        data={"name": "POS", "scopes": "purchases:write"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert response.status_code == 201


def test_every_staff_page_needs_a_session(app: FastAPI, client: TestClient) -> None:
    checked = 0
    for route in page_routes(app):
        if route.path in PUBLIC_PAGES or is_portal_path(route.path):
            continue  # the member portal has its own sign-in (tests/web/test_portal_access.py)
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in route.methods:
            headers = {}
            if method in UNSAFE:
                headers["X-CSRF-Token"] = csrf_from(client)
            response = client.request(method, path, headers=headers)
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/signin"), (method, path)
            checked += 1
    assert checked >= 10


ADMIN_REQUESTS = [
    ("GET", "/admin/users"),
    ("GET", "/admin/api-keys"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/outbox"),
    ("POST", "/admin/users"),
    ("POST", "/admin/users/1/roles"),
    ("POST", "/admin/users/1/disable"),
    ("POST", "/admin/users/1/enable"),
    ("POST", "/admin/users/1/reinvite"),
    ("POST", "/admin/api-keys"),
    ("POST", "/admin/api-keys/1/revoke"),
]


def test_admin_request_list_covers_every_admin_route(app: FastAPI) -> None:
    routes = {
        (m, r.path.replace("{user_id}", "1").replace("{key_id}", "1"))
        for r in page_routes(app)
        if r.path.startswith("/admin")
        for m in r.methods
    }
    assert routes == set(ADMIN_REQUESTS)


@pytest.mark.parametrize("role", ["marketer", "finance"])
def test_non_admins_get_403_on_admin_pages(
    client: TestClient, make_user: Callable[..., User], role: str
) -> None:
    make_user("boss@example.com", ("admin",))
    make_user("staff@example.com", (role,))
    sign_in(client, "staff@example.com")
    token = csrf_from(client, "/dashboard")
    for method, path in ADMIN_REQUESTS:
        response = client.request(method, path, headers={"X-CSRF-Token": token})
        assert response.status_code == 403, (method, path)
        assert "This page is for Admin staff." in response.text
    # and the navigation does not offer what they cannot open
    assert "/admin/users" not in client.get("/dashboard").text
