"""Every audit-logged action leaves a row, and admins can find it."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.accounts import api_keys, users
from core.accounts.models import ApiKey
from core.audit import Actor, AuditEntry


def _count(db: Session, action: str) -> int:
    return db.scalar(select(func.count()).where(AuditEntry.action == action)) or 0


def test_every_audited_action_leaves_exactly_one_row(db: Session) -> None:
    admin = Actor.cli("test")
    users.create(
        db,
        admin,
        email="root@example.com",
        name="Root",
        roles=["admin"],
        password="long-password-1",
    )
    person, token = users.invite(db, admin, email="p@example.com", name="P", roles=["finance"])
    steps: list[tuple[str, Callable[[], object]]] = [
        ("user.reinvite", lambda: users.reissue_invite(db, admin, person.id)),
        ("user.activate", lambda: users.accept_invite(db, token, "long-password-2")),
        ("user.roles", lambda: users.set_roles(db, admin, person.id, ["finance", "marketer"])),
        ("user.disable", lambda: users.disable(db, admin, person.id)),
        ("user.enable", lambda: users.enable(db, admin, person.id)),
        ("apikey.create", lambda: api_keys.create(db, admin, name="POS", scopes=["members:read"])),
        ("apikey.revoke", lambda: api_keys.revoke(db, admin, _last_key(db))),
    ]
    assert _count(db, "user.create") == 1 and _count(db, "user.invite") == 1
    for action, step in steps:
        before = _count(db, action)
        step()
        assert _count(db, action) == before + 1, action


def _last_key(db: Session) -> int:
    key_id: int | None = db.scalar(select(func.max(ApiKey.id)))
    assert key_id is not None
    return key_id


def test_no_op_changes_write_no_row(db: Session) -> None:
    actor = Actor.cli()
    root = users.create(
        db,
        actor,
        email="root@example.com",
        name="Root",
        roles=["admin"],
        password="long-password-1",
    )
    users.set_roles(db, actor, root.id, ["admin"])
    users.enable(db, actor, root.id)
    assert _count(db, "user.roles") == 0 and _count(db, "user.enable") == 0


def test_keyset_pages_and_filters(db: Session) -> None:
    actor = Actor("user", "mei@example.com", ip="10.0.0.1")
    for i in range(7):
        audit.record(db, actor, "setting.change", "setting", f"s{i}", after={"value": i})
    audit.record(db, Actor.cli(), "user.create", "user", 1)
    first = audit.list_entries(db, audit.AuditFilter(action="setting."), limit=3)
    second = audit.list_entries(
        db, audit.AuditFilter(action="setting."), before_id=first[-1].id, limit=3
    )
    assert [e.entity_id for e in first + second] == ["s6", "s5", "s4", "s3", "s2", "s1"]
    assert [e.action for e in audit.list_entries(db, audit.AuditFilter(actor="MEI"))] == [
        "setting.change"
    ] * 7
    assert audit.list_entries(db, audit.AuditFilter(action="setting_")) == []  # no LIKE wildcards


def test_admin_audit_page_filters_and_loads_more_with_htmx(
    admin_client: TestClient, db: Session
) -> None:
    actor = Actor("user", "mei@example.com")
    for i in range(60):
        audit.record(db, actor, "setting.change", "setting", f"s{i}", after={"value": i})
    db.commit()
    page = admin_client.get("/admin/audit", params={"action": "setting.change"})
    assert page.status_code == 200
    assert page.text.count("<code>setting.change</code>") == 50
    assert "Load older entries" in page.text and "user.create" not in page.text.split("<tbody")[1]
    more = admin_client.get(
        "/admin/audit",
        params={"action": "setting.change", "before": _id_of(db, "s10")},
        headers={"HX-Request": "true", "HX-Target": "audit-rows"},
    )
    assert "<html" not in more.text  # a block, not the page
    assert more.text.count("<code>setting.change</code>") == 10
    assert 'hx-swap-oob="true"' in more.text and "Load older entries" not in more.text
    assert "Vary" in more.headers and "HX-Request" in more.headers["vary"]


def _id_of(db: Session, entity_id: str) -> int:
    found = db.scalar(select(AuditEntry.id).where(AuditEntry.entity_id == entity_id))
    assert found is not None
    return found


def test_audit_page_shows_before_and_after(admin_client: TestClient, db: Session) -> None:
    audit.record(
        db,
        Actor.cli(),
        "user.roles",
        "user",
        7,
        before={"roles": ["marketer"], "name": "Mei"},
        after={"roles": ["finance", "marketer"], "name": "Mei"},
    )
    db.commit()
    text = admin_client.get("/admin/audit", params={"action": "user.roles"}).text
    assert "<del>marketer</del> → <ins>finance, marketer</ins>" in text
    assert "name:" not in text  # unchanged fields are not shown


def test_rows_name_their_subject(db: Session) -> None:
    actor = Actor.cli()
    person, _ = users.invite(db, actor, email="nia@example.com", name="Nia", roles=["finance"])
    users.disable(db, actor, person.id)
    api_keys.create(db, actor, name="Shop", scopes=["members:read"])
    rows = audit.list_entries(db, audit.AuditFilter())
    assert [r.subject for r in rows] == ["Shop", "nia@example.com", "nia@example.com"]
    bare = audit.record(db, actor, "thing.touch", "thing", 5)
    assert bare.subject == "thing 5"
