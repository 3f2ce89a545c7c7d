"""A member sees only their own data: every portal and member-API route, walked with another
member's ids, answers 404; pages without ids never show the other member's data."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.audit import Actor
from core.timeutil import utcnow
from loyalty import coupons, ledger, rewards
from loyalty.models import Member
from tests.web.conftest import member_sign_in
from tests.web.test_access import is_portal_path, page_routes
from web.csrf import verify_csrf
from web.portal.deps import optional_member

ACTOR = Actor.cli("test")

# Reached without a session, by design: the sign-in and sign-up forms, the language switch,
# and one-time links (the secret token is the credential).
PUBLIC = {
    "/my/signin",
    "/my/signup",
    "/my/password",
    "/my/language",
    "/my/signout",
    "/join/{code}",
    "/my/activate/{token}",
    "/my/reset/{token}",
}
# Routes that carry an id, and what to put there: the other member's.
WITH_IDS = {
    "/my/coupons/{coupon_id}": "coupon",
    "/my/api/coupons/{coupon_id}": "coupon",
    "/my/rewards/{reward_id}": "reward",
    "/my/history": "entry",  # ?before=
    "/my/api/entries": "entry",  # ?before=
}
# Member pages without ids: they must show only the signed-in member's data.
OWN = {
    "/my",
    "/my/coupons",
    "/my/rewards",
    "/my/referrals",
    "/my/profile",
    "/my/profile/password",
    "/my/profile/data.json",
    "/my/profile/data.zip",
    "/my/profile/close",
    "/my/api/summary",
    "/my/api/coupons",
}


def portal_routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (route.path, method)
        for route in page_routes(app)
        if is_portal_path(route.path)
        for method in route.methods
    )


def test_every_portal_route_is_classified_and_checks_csrf(app: FastAPI) -> None:
    paths = {path for path, _ in portal_routes(app)}
    assert paths == PUBLIC | set(WITH_IDS) | OWN
    for route in page_routes(app):
        if is_portal_path(route.path):
            calls = {d.call for d in route.context.dependant.dependencies}
            assert {verify_csrf, optional_member} <= calls, route.path


@pytest.fixture
def two_members(db: Session, make_member: Callable[..., Member]) -> dict[str, object]:
    """Ada (signed in) and Bo, who holds a coupon, ledger entries and a Gold-only reward."""
    ada = make_member("ada@example.com", "Ada Zhang")
    bo = make_member("bo@example.com", "Bo Qian")
    batch = coupons.create_batch(
        db, ACTOR, name="Gold gift", kind="fixed", value=Decimal(50), currency="CNY", valid_days=9
    )
    coupon = coupons.issue(db, ACTOR, batch.id, bo, reason="Test", at=utcnow())
    gold_only = rewards.save(
        db, ACTOR, name="Gold lounge", points_cost=10, batch_id=batch.id, eligible_tiers=["gold"]
    )
    bo_entry = ledger.history(db, bo.id, limit=1)[0]
    db.commit()
    return {
        "ada": ada,
        "bo": bo,
        "coupon": coupon.id,
        "reward": gold_only.id,
        "entry": bo_entry.id,
        "bo_code": coupon.code,
    }


def test_another_members_ids_answer_404_on_every_route(
    app: FastAPI, client: TestClient, two_members: dict[str, object]
) -> None:
    token = member_sign_in(client, "ada@example.com")
    checked = 0
    for path, method in portal_routes(app):
        kind = WITH_IDS.get(path)
        if kind is None:
            continue
        value = two_members[kind]
        by_query = "{" not in path
        url = f"{path}?before={value}" if by_query else re.sub(r"\{[^}]+\}", str(value), path)
        response = client.request(
            method, url, data={"key": "k", "csrf_token": token} if method == "POST" else None
        )
        assert response.status_code == 404, (method, url, response.status_code)
        checked += 1
    assert checked == 6  # two coupon routes, reward GET and POST, two histories


def test_pages_without_ids_show_only_the_members_own_data(
    app: FastAPI, client: TestClient, two_members: dict[str, object]
) -> None:
    member_sign_in(client, "ada@example.com")
    bo = two_members["bo"]
    assert isinstance(bo, Member)
    secrets = [bo.number, str(bo.email), bo.referral_code, str(two_members["bo_code"]), "Bo Qian"]
    for path, method in portal_routes(app):
        if path not in OWN or method != "GET":
            continue
        response = client.get(path)
        assert response.status_code == 200, path
        text = response.text
        if path.endswith(".zip"):
            archive = zipfile.ZipFile(io.BytesIO(response.content))
            text = "".join(archive.read(name).decode("utf-8-sig") for name in archive.namelist())
            assert "ada@example.com" in text  # her own data is there
        for secret in secrets:
            assert secret not in text, (path, secret)


def test_member_responses_carry_no_staff_only_fields(
    client: TestClient, db: Session, two_members: dict[str, object]
) -> None:
    ada = two_members["ada"]
    assert isinstance(ada, Member)
    ada.notes = "Internal: complained twice"
    db.commit()
    member_sign_in(client, "ada@example.com")
    for path in ("/my", "/my/profile", "/my/profile/data.json", "/my/api/summary"):
        text = client.get(path).text
        assert "complained" not in text and '"notes"' not in text, path
