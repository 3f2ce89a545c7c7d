"""Bad input to the loyalty API, pages and member portal gets a clear 4xx, never a 500
(issue 11): ids past their columns, amounts past their precision, times out of range, text
with NUL bytes or past its column, a null for a NOT NULL field, a taken tier rank."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor, AuditEntry
from core.timeutil import utcnow
from loyalty import coupons, members
from loyalty import program as program_settings
from loyalty.models import Coupon, Member, Purchase, Tier
from tests.web.conftest import csrf_from, member_sign_in, sign_in

ZONE = ZoneInfo("Asia/Shanghai")
BIG_IDS = [2**31, 2**63, 2**64, 10**30]


@pytest.fixture
def api(client: TestClient, db: Session) -> TestClient:
    _, key = api_keys.create(db, Actor.system(), name="POS", scopes=list(api_keys.SCOPES))
    db.commit()
    client.headers["Authorization"] = f"Bearer {key}"
    return client


@pytest.fixture
def member(db: Session) -> Member:
    made = members.create(
        db, Actor.cli(), members.Profile(name="Han Meimei", phone="13800005555"), zone=ZONE
    )
    db.commit()
    return made


def sale(ext: str, amount: Any, number: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "source": "pos-1",
        "external_id": ext,
        "occurred_at": "2026-03-02T12:00:00+08:00",
        "amount": amount,
        "member_number": number,
        **extra,
    }


def line(**change: Any) -> dict[str, Any]:
    return {"sku": "TEA", "quantity": 1, "unit_price": "1", **change}


def refused(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    return error


def raw(client: TestClient, method: str, path: str, text: str, **headers: str) -> Any:
    """A JSON body written by hand: lone surrogates and NUL escapes as a client sends them."""
    return client.request(
        method, path, content=text.encode(), headers={"Content-Type": "application/json", **headers}
    )


# ---------------------------------------------------------------- the API


@pytest.mark.parametrize("big", BIG_IDS)
def test_ids_past_their_columns_are_422_not_500(api: TestClient, member: Member, big: int) -> None:
    number = member.number
    if big > 2**63 - 1:  # ledger entries have BIGINT ids: 2**31 is one
        refused(api.get(f"/api/v1/members/{number}/ledger", params={"before_id": big}))
    refused(api.get(f"/api/v1/coupon-batches/{big}"))
    refused(
        api.post(
            f"/api/v1/members/{number}/rewards/{big}/redeem",
            headers={"Idempotency-Key": "redeem-0001"},
        )
    )
    assert api.get(f"/api/v1/members/{number}/ledger", params={"before_id": 2**31 - 1}).is_success


@pytest.mark.parametrize(
    "amount", ["1e15", "1e30", "0.00001", 1e15, 1e30, 0.00001, 5e-324, "NaN", "Infinity"]
)
def test_purchase_amounts_past_what_is_stored_are_422(
    api: TestClient, db: Session, member: Member, amount: Any
) -> None:
    refused(api.post("/api/v1/purchases", json=sale("T1", amount, member.number)))
    refused(api.post("/api/v1/purchases", json=sale("T2", "10", discount=amount)))
    line = {"sku": "TEA", "quantity": 1, "unit_price": amount}
    refused(api.post("/api/v1/purchases", json=sale("T3", "10", lines=[line])))
    assert db.scalar(select(func.count(Purchase.id))) == 0


def test_purchase_and_refund_times_are_bounded(api: TestClient, member: Member) -> None:
    for when in ("0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "2206-01-01T00:00:00Z"):
        error = refused(
            api.post("/api/v1/purchases", json={**sale("T1", "10"), "occurred_at": when})
        )
        assert "1900" in json.dumps(error) or "future" in error["message"]
    assert api.post("/api/v1/purchases", json=sale("T1", "100", member.number)).status_code == 200
    refund = {
        "source": "pos-1",
        "external_id": "R1",
        "purchase_source": "pos-1",
        "purchase_external_id": "T1",
        "amount": "10",
    }
    before = refused(
        api.post("/api/v1/refunds", json={**refund, "occurred_at": "2026-03-01T12:00:00+08:00"})
    )
    assert "before its purchase" in before["message"]
    ahead = refused(
        api.post("/api/v1/refunds", json={**refund, "occurred_at": "2206-01-01T00:00:00Z"})
    )
    assert "future" in ahead["message"]
    refused(api.post("/api/v1/refunds", json={**refund, "occurred_at": "0001-01-01T00:00:00Z"}))
    for amount in ("1e15", "0.00001"):
        refused(
            api.post(
                "/api/v1/refunds",
                json={**refund, "amount": amount, "occurred_at": "2026-03-03T12:00:00+08:00"},
            )
        )
    done = api.post("/api/v1/refunds", json={**refund, "occurred_at": "2026-03-03T12:00:00+08:00"})
    assert done.status_code == 200, done.text


def test_null_for_a_not_null_member_field_is_422(
    api: TestClient, db: Session, member: Member
) -> None:
    path = f"/api/v1/members/{member.number}"
    for field in ("name", "marketing_consent"):
        error = refused(api.patch(path, json={field: None}))
        assert error["details"][0]["field"] == field
    assert api.patch(path, json={"city": None, "name": "Han Mei"}).json()["name"] == "Han Mei"
    spec = api.get("/api/openapi.json").json()["components"]["schemas"]["MemberPatch"]
    assert spec["properties"]["name"].get("type") == "string"  # not nullable
    assert "default" not in spec["properties"]["name"]


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "Li\\u0000Lei", "phone": "13800001111"}',
        '{"name": "Li\\ud800Lei", "phone": "13800001111"}',
        '{"name": "Li Lei", "phone": "13800001111", "city": "Shang\\u001bhai"}',
        '{"name": "Li Lei", "email": "a\\u0000@example.com"}',
    ],
)
def test_control_characters_and_lone_surrogates_are_422(
    api: TestClient, db: Session, text: str
) -> None:
    refused(raw(api, "POST", "/api/v1/members", text))
    purchase = '{"source": "pos\\u0000", "external_id": "T\\ud800", "occurred_at": ' + (
        '"2026-03-02T12:00:00+08:00", "amount": "10"}'
    )
    refused(raw(api, "POST", "/api/v1/purchases", purchase))
    assert db.scalar(select(func.count(Member.id))) == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/members", {"name": "n" * 101, "phone": "13800001111"}),
        ("/api/v1/members", {"name": "Li", "phone": "1" * 33}),
        ("/api/v1/members", {"name": "Li", "phone": "13800001111", "region": "r" * 65}),
        ("/api/v1/members", {"name": "Li", "phone": "13800001111", "city": "c" * 65}),
        ("/api/v1/members", {"name": "Li", "email": "e" * 250 + "@a.com"}),
        ("/api/v1/purchases", sale("x" * 65, "10")),
        ("/api/v1/purchases", {**sale("T1", "10"), "source": "s" * 33}),
        ("/api/v1/purchases", {**sale("T1", "10"), "store": "s" * 65}),
        ("/api/v1/purchases", {**sale("T1", "10"), "currency": "RMB"}),
        ("/api/v1/purchases", {**sale("T1", "10"), "currency": "XAU"}),
        ("/api/v1/purchases", sale("T1", "10", lines=[line(sku="s" * 65)])),
        ("/api/v1/purchases", sale("T1", "10", lines=[line(category="c" * 65)])),
        ("/api/v1/purchases", sale("T1", "10", lines=[line(quantity=2**31)])),
        ("/api/v1/coupons/validate", {"code": "C" * 65}),
        ("/api/v1/referrals", {"referee_number": "M" * 17, "referral_code": "ABCD"}),
    ],
)  # fmt: skip
def test_text_longer_than_its_column_is_422(
    api: TestClient, db: Session, path: str, body: dict[str, Any]
) -> None:
    refused(api.post(path, json=body))
    assert db.scalar(select(func.count(Purchase.id))) == 0


def test_a_long_member_search_is_422_and_a_fair_one_answers(
    api: TestClient, member: Member
) -> None:
    refused(api.get("/api/v1/members", params={"q": "x" * 50_000}))
    refused(api.get("/api/v1/members", params={"q": "Han\x00"}))
    found = api.get("/api/v1/members", params={"q": "Han"}).json()
    assert [m["number"] for m in found] == [member.number]
    missing = api.get(f"/api/v1/members/{'M' * 16}")
    assert refused(missing, 404)["code"] == "member.not_found"
    refused(api.get(f"/api/v1/members/{'M' * 17}"))


def test_adjustments_past_the_programs_limit_are_refused(
    api: TestClient, db: Session, member: Member
) -> None:
    path = f"/api/v1/members/{member.number}/adjustments"
    for n, points in enumerate((2**63, -(2**63), 2**31, 100_001)):
        response = api.post(
            path,
            json={"points": points, "reason": "Fix"},
            headers={"Idempotency-Key": f"adj-key-{n}"},
        )
        refused(response)
    ok = api.post(
        path, json={"points": 100_000, "reason": "Fix"}, headers={"Idempotency-Key": "adj-key-ok"}
    )
    assert ok.status_code == 201, ok.text


def test_each_route_declares_the_errors_it_can_answer(api: TestClient) -> None:
    paths = api.get("/api/openapi.json").json()["paths"]

    def codes(path: str, method: str) -> set[str]:
        return set(paths[f"/api/v1{path}"][method]["responses"])

    assert {"404"} <= codes("/members/{number}", "get")
    assert {"400", "404", "409"} <= codes("/members/{number}", "patch")
    assert {"400", "404", "409"} <= codes("/purchases", "post")
    assert {"400", "404", "409"} <= codes("/refunds", "post")
    assert {"404", "409"} <= codes("/members/{number}/rewards/{reward_id}/redeem", "post")
    assert {"400", "404", "409"} <= codes("/coupons/redeem", "post")
    assert {"404"} <= codes("/coupon-batches/{batch_id}", "get")
    ledger = paths["/api/v1/members/{number}/ledger"]["get"]["parameters"]
    before = next(p for p in ledger if p["name"] == "before_id")
    assert before["schema"]["anyOf"][0]["maximum"] == 2**63 - 1
    purchase = api.get("/api/openapi.json").json()["components"]["schemas"]["PurchaseIn"]
    assert purchase["properties"]["external_id"]["maxLength"] == 64


def test_redeeming_a_coupon_over_the_api_is_audited(api: TestClient, db: Session) -> None:
    batch = coupons.create_batch(
        db, Actor.cli(), name="Ten", kind="fixed", value=Decimal(10), currency="CNY", valid_days=9
    )
    coupons.generate(db, Actor.cli(), batch.id, 1)
    db.commit()
    code = db.scalar(select(Coupon.code).where(Coupon.batch_id == batch.id))
    used = api.post(
        "/api/v1/coupons/redeem", json={"code": code}, headers={"Idempotency-Key": "till-0001"}
    )
    assert used.status_code == 201, used.text
    row = db.scalar(select(AuditEntry).where(AuditEntry.action == "coupon.redeem"))
    assert row is not None and row.actor_label == "API key POS" and row.entity_id == code


# ---------------------------------------------------------------- staff pages


def signed_in(client: TestClient, make_user: Callable[..., User], role: str) -> str:
    make_user(f"{role}@example.com", (role,))
    sign_in(client, f"{role}@example.com")
    return csrf_from(client, "/members")


def test_member_pages_answer_bad_input_with_a_message(
    client: TestClient, db: Session, member: Member, make_user: Callable[..., User]
) -> None:
    token = signed_in(client, make_user, "admin")
    search = client.get("/members", params={"q": "x" * 50_000})
    assert search.status_code == 422 and "longer than 200" in search.text
    assert client.get(f"/members/{member.number}", params={"before_id": 2**63}).status_code == 422
    assert client.get("/members/M%00").status_code == 404
    page = client.get(f"/members/{member.number}")
    assert 'max="100000"' in page.text and "At most 100,000 points" in page.text
    for points, says in ((2**63, "whole number from -1,000,000,000"), (100_001, "at most 100,000")):
        done = client.post(
            f"/members/{member.number}/adjust",
            data={"points": str(points), "reason": "Fix", "csrf_token": token},
            follow_redirects=True,
        )
        assert done.status_code == 422 and says in done.text
    nul = client.post(
        f"/members/{member.number}/adjust",
        data={"points": "5", "reason": "Fix\x00", "csrf_token": token},
        follow_redirects=True,
    )
    assert "control characters" in nul.text
    big = client.post(
        f"/members/{member.number}/coupons",
        data={"batch_id": str(2**63), "csrf_token": token},
        follow_redirects=True,
    )
    assert big.status_code == 422 and "batch must be between 1 and" in big.text


def test_program_page_refuses_a_taken_rank_and_shows_the_limits(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    token = signed_in(client, make_user, "admin")
    page = client.get("/loyalty/program")
    assert 'name="max_adjustment" value="100000"' in page.text
    assert 'name="max_multiplier" value="10"' in page.text
    tier = {"code": "diamond", "name": "Diamond", "threshold": "90000", "multiplier": "3"}
    taken = client.post(
        "/loyalty/tiers", data={**tier, "rank": "3", "csrf_token": token}, follow_redirects=True
    )
    assert taken.status_code == 422 and "Rank 3 is Platinum&#39;s already" in taken.text
    assert db.scalar(select(Tier).where(Tier.code == "diamond")) is None
    for change, says in (
        ({"rank": "4", "multiplier": "12"}, "from 1 to 10"),
        ({"rank": str(2**40)}, "rank must be"),
        ({"rank": "4", "threshold": str(2**63)}, "threshold must be"),
    ):
        answer = client.post(
            "/loyalty/tiers", data={**tier, **change, "csrf_token": token}, follow_redirects=True
        )
        assert answer.status_code == 422 and says in answer.text
    raised = client.post(
        "/loyalty/program",
        data={"max_multiplier": "12", "max_adjustment": "5000", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Program settings saved." in raised.text
    db.expire_all()
    program = program_settings.get(db)
    assert (program.max_multiplier, program.max_adjustment) == (Decimal(12), 5000)
    done = client.post(
        "/loyalty/tiers",
        data={**tier, "rank": "4", "multiplier": "12", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Tier Diamond saved." in done.text
    rule = client.post(
        "/loyalty/rules",
        data={"name": "Huge", "multiplier": "13", "csrf_token": token},
        follow_redirects=True,
    )
    assert "from 1 to 12" in rule.text
    bad = client.post(
        "/loyalty/program",
        data={"return_window_days": str(10**12), "csrf_token": token},
        follow_redirects=True,
    )
    assert "return window" in bad.text.lower() and "Program settings saved." not in bad.text


def test_coupon_batch_pages_refuse_bad_input(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    token = signed_in(client, make_user, "marketer")
    form = {"name": "Ten", "kind": "fixed", "value": "10", "valid_days": "30", "csrf_token": token}
    for change, says in (
        ({"currency": "RMB"}, "CNY"),
        ({"value": "1000000000000000"}, "less than 1,000,000,000,000"),
        ({"value": "7,85"}, "Did you mean 7.85?"),
        ({"value": "0.00001"}, "decimal places"),
        ({"valid_days": str(10**12)}, "Days of validity"),
        ({"name": "n" * 101}, "longer than 100"),
    ):
        answer = client.post("/loyalty/coupons", data={**form, **change}, follow_redirects=True)
        assert answer.status_code == 422 and says in answer.text, change
    assert client.get(f"/loyalty/coupons/{2**63}/codes.csv").status_code == 422


# ---------------------------------------------------------------- the member portal


def test_portal_sign_in_and_sign_up_refuse_unstorable_text(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    make_member()
    token = csrf_from(client, "/my/signin")
    for identifier in ("mei\x00@example.com", "\x00", "x" * 5000):
        answer = client.post(
            "/my/signin",
            data={"identifier": identifier, "password": "whatever-1", "csrf_token": token},
        )
        assert answer.status_code == 401 and "do not match an active account" in answer.text
    link = client.post("/my/password", data={"identifier": "a\x00b", "csrf_token": token})
    assert link.status_code == 200
    token = csrf_from(client, "/my/signup")
    for fields in (
        {"name": "Li\x00Lei", "phone": "13800001111"},
        {"name": "n" * 101, "phone": "13800001111"},
        {"name": "Li Lei", "email": "a\x00@example.com"},
        {"name": "Li Lei", "phone": "13800001111", "referral_code": "AB\x00CD"},
    ):
        answer = client.post("/my/signup", data={**fields, "csrf_token": token})
        assert answer.status_code == 422, fields
        assert "form-error" in answer.text
    assert db.scalar(select(func.count(Member.id))) == 1
    assert 'maxlength="100"' in client.get("/my/signup").text


def test_portal_ids_and_cursors_past_their_columns_are_4xx(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    make_member()
    token = member_sign_in(client, "mei@example.com")
    for big in BIG_IDS:
        # Entries and coupons have BIGINT ids (2**31 is one: not the member's, so 404).
        expected = 404 if big < 2**63 else 422
        assert client.get("/my/history", params={"before": big}).status_code == expected
        assert client.get("/my/api/entries", params={"before": big}).status_code == expected
        assert client.get(f"/my/coupons/{big}").status_code == expected
        assert client.get(f"/my/rewards/{big}").status_code == 422
        assert client.post(f"/my/rewards/{big}", data={"csrf_token": token}).status_code == 422
    profile = client.post(
        "/my/profile",
        data={
            "name": "Mei",
            "email": "mei@example.com",
            "birthday": "0001-01-01",
            "csrf_token": token,
        },
    )
    assert profile.status_code == 422 and "Give the birthday as a date." in profile.text
    named = client.post(
        "/my/profile",
        data={"name": "Mei\x00", "email": "mei@example.com", "csrf_token": token},
    )
    assert named.status_code == 422
    joined = client.get("/join/AB%0D%0ASet-Cookie:%20x")
    assert joined.status_code == 303 and "\n" not in joined.headers["location"]
    assert utcnow()  # the portal stayed up throughout
