"""Admins invite people, change roles, disable and enable them; each change is audited."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import users
from core.accounts.models import User, UserStatus
from core.audit import AuditEntry
from tests.web.conftest import csrf_from


def audit_rows(db: Session, action: str) -> list[AuditEntry]:
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def invite(client: TestClient, csrf: str, email: str = "new@example.com", roles=("finance",)):
    return client.post(
        "/admin/users",
        data={"email": email, "name": "Nia New", "roles": list(roles), "csrf_token": csrf},
    )


def test_invite_then_accept_then_sign_in(admin_client: TestClient, csrf: str, db: Session) -> None:
    response = invite(admin_client, csrf, roles=("finance", "marketer"))
    assert response.status_code == 201
    link = re.search(r'value="(http://testserver/invite/[^"]+)"', response.text)
    assert link, "the invitation link is shown to the admin"
    path = link.group(1).removeprefix("http://testserver")
    person = users.find_by_email(db, "new@example.com")
    assert person is not None and person.status == UserStatus.INVITED
    assert [r.after for r in audit_rows(db, "user.invite")] == [
        {
            "email": "new@example.com",
            "name": "Nia New",
            "status": "invited",
            "roles": ["finance", "marketer"],
        }
    ]
    assert link.group(1) not in admin_client.get("/admin/users").text  # shown once

    visitor = TestClient(admin_client.app, follow_redirects=False)
    page = visitor.get(path)
    assert page.status_code == 200 and "Welcome, Nia New" in page.text
    token = csrf_from(visitor, path)
    mismatch = visitor.post(
        path, data={"password": "new-password-1", "confirm": "other-password", "csrf_token": token}
    )
    assert mismatch.status_code == 422 and "do not match" in mismatch.text
    short = visitor.post(path, data={"password": "short", "confirm": "short", "csrf_token": token})
    assert short.status_code == 422 and "at least 10" in short.text
    done = visitor.post(
        path, data={"password": "new-password-1", "confirm": "new-password-1", "csrf_token": token}
    )
    assert done.status_code == 303 and done.headers["location"] == "/dashboard"
    assert visitor.get("/dashboard").status_code == 200
    db.refresh(person)
    assert person.status == UserStatus.ACTIVE
    assert audit_rows(db, "user.activate")[0].actor_user_id == person.id
    again = visitor.get(path)
    assert again.status_code == 409 and "already used" in again.text


def test_invite_errors_are_shown_on_the_form(admin_client: TestClient, csrf: str) -> None:
    no_roles = admin_client.post(
        "/admin/users", data={"email": "x@example.com", "name": "X", "csrf_token": csrf}
    )
    assert no_roles.status_code == 422 and "at least one role" in no_roles.text
    assert 'value="x@example.com"' in no_roles.text  # what was typed is kept
    taken = invite(admin_client, csrf, email="admin@example.com")
    assert taken.status_code == 409 and "already an account" in taken.text
    bad = invite(admin_client, csrf, email="not-an-email")
    assert bad.status_code == 422 and "not an email address" in bad.text


def test_change_roles_is_audited_with_before_and_after(
    admin_client: TestClient, csrf: str, make_user: Callable[..., User], db: Session
) -> None:
    mei = make_user("mei@example.com", ("marketer",))
    response = admin_client.post(
        f"/admin/users/{mei.id}/roles", data={"roles": ["marketer", "finance"], "csrf_token": csrf}
    )
    assert response.status_code == 303
    db.refresh(mei)
    assert {r.value for r in mei.roles} == {"marketer", "finance"}
    (row,) = audit_rows(db, "user.roles")
    assert row.before is not None and row.after is not None
    assert row.before["roles"] == ["marketer"]
    assert row.after["roles"] == ["finance", "marketer"]
    assert row.actor_label == "admin@example.com"


def test_the_last_admin_cannot_be_removed_or_disabled(
    admin_client: TestClient, csrf: str, db: Session
) -> None:
    admin = users.find_by_email(db, "admin@example.com")
    assert admin is not None
    demote = admin_client.post(
        f"/admin/users/{admin.id}/roles", data={"roles": ["marketer"], "csrf_token": csrf}
    )
    assert demote.status_code == 409 and "at least one active admin" in demote.text
    self_disable = admin_client.post(f"/admin/users/{admin.id}/disable", data={"csrf_token": csrf})
    assert self_disable.status_code == 409
    db.refresh(admin)
    assert "admin" in admin.roles and admin.is_active
    assert audit_rows(db, "user.roles") == []


def test_disable_and_enable(
    admin_client: TestClient, csrf: str, make_user: Callable[..., User], db: Session
) -> None:
    fang = make_user("fang@example.com", ("finance",))
    assert (
        admin_client.post(f"/admin/users/{fang.id}/disable", data={"csrf_token": csrf}).status_code
        == 303
    )
    db.refresh(fang)
    assert fang.status == UserStatus.DISABLED
    assert (
        admin_client.post(f"/admin/users/{fang.id}/enable", data={"csrf_token": csrf}).status_code
        == 303
    )
    db.refresh(fang)
    assert fang.status == UserStatus.ACTIVE
    assert [len(audit_rows(db, a)) for a in ("user.disable", "user.enable")] == [1, 1]
    missing = admin_client.post("/admin/users/999999/disable", data={"csrf_token": csrf})
    assert missing.status_code == 404


def test_reinvite_issues_a_fresh_link(admin_client: TestClient, csrf: str, db: Session) -> None:
    invite(admin_client, csrf)
    person = users.find_by_email(db, "new@example.com")
    assert person is not None
    again = admin_client.post(f"/admin/users/{person.id}/reinvite", data={"csrf_token": csrf})
    assert again.status_code == 201 and "/invite/" in again.text
    assert len(audit_rows(db, "user.reinvite")) == 1
