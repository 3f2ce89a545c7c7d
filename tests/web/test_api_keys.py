"""API keys: created by an admin, shown once, hashed, scoped, revocable, last use recorded."""

from __future__ import annotations

import re

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import api_keys
from core.accounts.models import ApiKey
from core.audit import Actor, AuditEntry
from web.api.auth import Caller, require


def create_key(client: TestClient, csrf: str, scopes=("members:read",)) -> str:
    response = client.post(
        "/admin/api-keys", data={"name": "Store POS", "scopes": list(scopes), "csrf_token": csrf}
    )
    assert response.status_code == 201
    found = re.search(r'id="new-key-value" value="(rtn_[^"]+)"', response.text)
    assert found
    return found.group(1)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_key_is_shown_once_and_stored_hashed(
    admin_client: TestClient, csrf: str, db: Session
) -> None:
    raw = create_key(admin_client, csrf)
    assert raw not in admin_client.get("/admin/api-keys").text
    stored = db.scalar(select(ApiKey))
    assert stored is not None
    assert raw not in (stored.key_hash, stored.prefix) and len(stored.key_hash) == 64
    audit = db.scalar(select(AuditEntry).where(AuditEntry.action == "apikey.create"))
    assert audit is not None and raw not in str(audit.after)


def test_calls_with_a_key_work_and_record_last_use(
    admin_client: TestClient, csrf: str, db: Session
) -> None:
    raw = create_key(admin_client, csrf, ("members:read", "purchases:write"))
    client = TestClient(admin_client.app)  # no cookies: an integration
    response = client.get("/api/v1/me", headers=bearer(raw))
    assert response.status_code == 200
    assert response.json()["scopes"] == ["members:read", "purchases:write"]
    key = db.scalar(select(ApiKey))
    assert key is not None and key.last_used_at is not None


@pytest.mark.parametrize(
    "header", [None, "Bearer nonsense", "Bearer rtn_0000_nothing", "Basic abc"]
)
def test_missing_or_bad_keys_get_401_in_the_error_shape(
    client: TestClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"].startswith("auth.")


def test_a_revoked_key_gets_401(admin_client: TestClient, csrf: str, db: Session) -> None:
    raw = create_key(admin_client, csrf)
    client = TestClient(admin_client.app)
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 200
    key = db.scalar(select(ApiKey))
    assert key is not None
    revoked = admin_client.post(f"/admin/api-keys/{key.id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    response = client.get("/api/v1/me", headers=bearer(raw))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.api_key_revoked"
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "api_key"))
    assert list(actions) == ["apikey.create", "apikey.revoke"]


def test_unknown_or_missing_scopes_are_refused(admin_client: TestClient, csrf: str) -> None:
    response = admin_client.post("/admin/api-keys", data={"name": "POS", "csrf_token": csrf})
    assert response.status_code == 422 and "at least one scope" in response.text
    response = admin_client.post(
        "/admin/api-keys", data={"name": "POS", "scopes": "root:all", "csrf_token": csrf}
    )
    assert response.status_code == 422 and "Unknown scope root:all" in response.text


@pytest.fixture
def scoped_app(app: FastAPI) -> FastAPI:
    """A route guarded like the domain routes will be: scope for keys, role for staff."""

    @app.post("/api/v1/_probe", dependencies=[])
    def probe(
        caller: Caller = Depends(require(scope="purchases:write", roles=())),
    ) -> dict[str, str]:
        return {"actor": caller.actor.label}

    return app


def test_scope_is_checked_for_keys_and_role_for_staff(
    scoped_app: FastAPI, admin_client: TestClient, csrf: str, db: Session
) -> None:
    _, reader = api_keys.create(db, Actor.system(), name="Reader", scopes=["members:read"])
    _, writer = api_keys.create(db, Actor.system(), name="Writer", scopes=["purchases:write"])
    db.commit()
    client = TestClient(scoped_app)
    denied = client.post("/api/v1/_probe", headers=bearer(reader))
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "auth.scope"
    assert client.post("/api/v1/_probe", headers=bearer(writer)).json() == {
        "actor": "API key Writer"
    }
    # A staff browser session: the route allows no role, and writes need the CSRF header.
    assert admin_client.post("/api/v1/_probe").status_code == 403
    no_role = admin_client.post("/api/v1/_probe", headers={"X-CSRF-Token": csrf})
    assert no_role.json()["error"]["code"] == "auth.role"
