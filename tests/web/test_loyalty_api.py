"""The loyalty API as a POS and a CRM use it: sign-ups, purchases, refunds, coupons, rewards."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import api_keys
from core.audit import Actor
from loyalty import coupons
from loyalty import rewards as catalog
from loyalty.models import Coupon


@pytest.fixture
def pos(client: TestClient, db: Session) -> TestClient:
    _, key = api_keys.create(
        db,
        Actor.system(),
        name="POS",
        scopes=["purchases:write", "members:read", "members:write"],
    )
    db.commit()
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def sale(ext: str, amount: str, number: str | None, **extra: object) -> dict[str, object]:
    return {
        "source": "pos-1",
        "external_id": ext,
        "occurred_at": "2026-03-02T12:00:00+08:00",
        "amount": amount,
        "currency": "CNY",
        "member_number": number,
        **extra,
    }


def test_sign_up_buy_refund_and_read_the_ledger(pos: TestClient) -> None:
    made = pos.post("/api/v1/members", json={"name": "Han Meimei", "phone": "138 0000 1111"})
    assert made.status_code == 201, made.text
    number = made.json()["number"]
    assert made.json()["balance"] == 100 and made.json()["tier"] == "Member"

    bought = pos.post("/api/v1/purchases", json=sale("T1", "250.00", number))
    assert bought.status_code == 200, bought.text
    body = bought.json()
    assert body["points"] == 450 and not body["replayed"]
    assert [e["rule"] for e in body["earned"]] == ["base", "first_purchase"]
    assert body["pending_until"].startswith("2026-03-09")

    again = pos.post("/api/v1/purchases", json=sale("T1", "250.00", number))
    assert again.json()["replayed"] and again.json()["points"] == 450
    changed = pos.post("/api/v1/purchases", json=sale("T1", "260.00", number))
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "purchase.id_reused"

    refund = {
        "source": "pos-1",
        "external_id": "R1",
        "purchase_source": "pos-1",
        "purchase_external_id": "T1",
        "occurred_at": "2026-03-03T10:00:00+08:00",
        "amount": "125.00",
    }
    first = pos.post("/api/v1/refunds", json=refund)
    assert first.status_code == 200, first.text
    assert first.json()["points_reversed"] == 225
    assert pos.post("/api/v1/refunds", json=refund).json()["replayed"]
    too_much = pos.post("/api/v1/refunds", json={**refund, "external_id": "R2", "amount": "200"})
    assert too_much.status_code == 422
    assert "still refundable" in too_much.json()["error"]["message"]

    balance = pos.get(f"/api/v1/members/{number}/balance").json()
    assert balance["balance"] == 100 + 450 - 225
    assert balance["pending_points"] == 225 and balance["available"] == 100
    page = pos.get(f"/api/v1/members/{number}/ledger", params={"limit": 2}).json()
    # Newest first by when it happened: the sign-up today, then March's refund and sale.
    assert [e["rule"] for e in page["entries"]] == ["signup", "refund"]
    rest = pos.get(
        f"/api/v1/members/{number}/ledger", params={"before_id": page["next_before_id"]}
    ).json()
    assert [e["rule"] for e in rest["entries"]] == ["first_purchase", "base"]
    assert rest["next_before_id"] is None


def test_coupons_validate_and_redeem_once(pos: TestClient, db: Session) -> None:
    batch = coupons.create_batch(
        db,
        Actor.cli(),
        name="20% off",
        kind="percent",
        value=Decimal(20),
        max_discount=Decimal(30),
        currency="CNY",
        min_spend=Decimal(100),
        valid_days=30,
    )
    coupons.generate(db, Actor.cli(), batch.id, 1)
    db.commit()
    code = db.scalar(select(Coupon.code).where(Coupon.batch_id == batch.id))
    low = pos.post(
        "/api/v1/coupons/validate", json={"code": code, "amount": "50", "currency": "CNY"}
    )
    assert low.json()["code"] == "coupon.min_spend" and not low.json()["ok"]
    ok = pos.post("/api/v1/coupons/validate", json={"code": code, "amount": "200"}).json()
    assert ok["ok"] and ok["discount"] == "30.00"  # 20% of 200 = 40, capped at 30
    headers = {"Idempotency-Key": "till-7-0001"}
    used = pos.post("/api/v1/coupons/redeem", json={"code": code, "amount": "200"}, headers=headers)
    assert used.status_code == 201, used.text
    retry = pos.post(
        "/api/v1/coupons/redeem", json={"code": code, "amount": "200"}, headers=headers
    )
    assert retry.json()["redemption_id"] == used.json()["redemption_id"]
    other = pos.post(
        "/api/v1/coupons/redeem",
        json={"code": code, "amount": "200"},
        headers={"Idempotency-Key": "till-7-0002"},
    )
    assert other.status_code == 409 and other.json()["error"]["code"] == "coupon.used"
    unknown = pos.post("/api/v1/coupons/validate", json={"code": "NOPE2345"}).json()
    assert unknown["code"] == "coupon.unknown"


def test_rewards_need_an_idempotency_key_and_enough_points(pos: TestClient, db: Session) -> None:
    number = pos.post("/api/v1/members", json={"name": "A", "email": "a@example.com"}).json()[
        "number"
    ]
    batch = coupons.create_batch(
        db, Actor.cli(), name="Mug", kind="gift", gift="A mug", currency="CNY", valid_days=60
    )
    reward = catalog.save(db, Actor.cli(), name="Mug", points_cost=80, batch_id=batch.id)
    db.commit()
    path = f"/api/v1/members/{number}/rewards/{reward.id}/redeem"
    assert pos.post(path).status_code == 422  # no Idempotency-Key
    done = pos.post(path, headers={"Idempotency-Key": "redeem-0001"})
    assert done.status_code == 201, done.text
    assert done.json()["balance"] == 20 and done.json()["points"] == -80
    short = pos.post(path, headers={"Idempotency-Key": "redeem-0002"})
    assert short.status_code == 409
    assert short.json()["error"]["code"] == "points.insufficient"
    wallet = pos.get(f"/api/v1/members/{number}/coupons").json()
    assert [c["code"] for c in wallet] == [done.json()["coupon_code"]]


def test_a_key_without_the_scope_is_refused(client: TestClient, db: Session) -> None:
    _, key = api_keys.create(db, Actor.system(), name="BI", scopes=["members:read"])
    db.commit()
    response = client.post(
        "/api/v1/purchases", json=sale("T9", "10", None), headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 403
