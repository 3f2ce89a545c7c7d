"""The customer value API (issue 14): compute and store a run, read runs, their members'
scores and one member's, with API-key scopes and staff roles; bounded parameters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.models import ValueRun
from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor
from tests.loyalty.conftest import Shop
from tests.web.conftest import csrf_from, sign_in
from tests.web.test_value_pages import JOINED, members_of, stored_run

D = Decimal


def keyed(client: TestClient, db: Session, *scopes: str) -> TestClient:
    _, key = api_keys.create(db, Actor.system(), name="crm", scopes=list(scopes))
    db.commit()
    client.headers["Authorization"] = f"Bearer {key}"
    return client


@pytest.fixture
def shop(db: Session) -> Shop:
    return Shop(db)


def test_a_run_is_computed_stored_and_read_back(
    client: TestClient, db: Session, shop: Shop
) -> None:
    people = members_of(shop, 6)
    for i, member in enumerate(people):
        for k in range(i % 3 + 1):
            shop.buy(member, f"{(i + 1) * 25}.00", at=JOINED + timedelta(days=40 * k + i))
    db.commit()
    api = keyed(client, db, "value:read", "value:write")
    assert api.get("/api/v1/value/runs/latest").status_code == 404

    body = {
        "as_of": "2025-12-31",
        "margin": "0.25",
        "category_margins": {"Books": "0.1"},
        "point_value": "0.02",
        "yearly_service_cost": 3,
        "thresholds": {"min_purchases": 3, "price_min_discounted_share": "0.6"},
    }
    answer = api.post("/api/v1/value/runs", json=body)
    assert answer.status_code == 201, answer.text
    run = answer.json()
    assert run["as_of"] == "2025-12-31" and run["members"] == 6 and run["currency"] == "CNY"
    assert run["params"]["margin"] == "0.25" and run["params"]["category_margins"] == {
        "Books": "0.1"
    }
    assert run["params"]["thresholds"]["min_purchases"] == 3
    assert run["params"]["thresholds"]["price_min_discounted_share"] == "0.6"
    assert run["created_by"] == "API key crm"
    assert [row["layer"] for row in run["layers"]] == [
        "most_valuable",
        "most_growable",
        "low_contribution",
        "negative",
    ]
    assert sum(row["members"] for row in run["layers"]) == 6
    assert sum(run["rfm_segments"].values()) == 6 and sum(run["loyalty_types"].values()) == 6
    total = sum(D(row["value"]) for row in run["layers"])
    assert all(len(row["value"].split(".")[1]) == 2 for row in run["layers"])
    assert "model" in run["fit"] or "note" in run["fit"]

    assert api.get("/api/v1/value/runs/latest").json()["id"] == run["id"]
    again = api.get(f"/api/v1/value/runs/{run['id']}").json()
    assert again["layers"] == run["layers"]

    listed = api.get(f"/api/v1/value/runs/{run['id']}/members", params={"limit": 4}).json()
    assert listed["total"] == 6 and len(listed["members"]) == 4
    values = [D(m["value"]) for m in listed["members"]]
    assert values == sorted(values, reverse=True)
    rest = api.get(
        f"/api/v1/value/runs/{run['id']}/members", params={"limit": 4, "offset": 4}
    ).json()
    everyone = listed["members"] + rest["members"]
    assert {m["member_number"] for m in everyone} == {m.number for m in people}
    assert sum(D(m["value"]) for m in everyone) == total
    for m in everyone:
        parts = sum(D(m[f"clv{i}"]) for i in range(1, 7))
        assert parts == D(m["clv_total"])

    layer = run["layers"][2]
    only = api.get(
        f"/api/v1/value/runs/{run['id']}/members", params={"layer": "low_contribution"}
    ).json()
    assert only["total"] == layer["members"]
    assert all(m["layer"] == "low_contribution" for m in only["members"])

    one = api.get(f"/api/v1/value/members/{people[2].number}").json()
    assert one["run_id"] == run["id"] and one["score"]["member_number"] == people[2].number
    assert one["as_of"] == "2025-12-31"
    assert db.scalar(select(func.count(ValueRun.id))) == 1


def test_scopes_and_roles(
    client: TestClient, db: Session, shop: Shop, make_user: Callable[..., User]
) -> None:
    (member,) = members_of(shop, 1)
    run = stored_run(db, date(2025, 12, 31), [(member, {"value": "4.00"})])
    reader = keyed(client, db, "value:read")
    assert reader.get(f"/api/v1/value/runs/{run.id}").status_code == 200
    refused = reader.post("/api/v1/value/runs", json={})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "auth.scope"
    other = keyed(client, db, "members:read")
    assert other.get("/api/v1/value/runs/latest").status_code == 403
    del client.headers["Authorization"]

    make_user("finance@example.com", ("finance",), "Fei Finance")
    sign_in(client, "finance@example.com")
    assert client.get("/api/v1/value/runs/latest").json()["id"] == run.id
    token = csrf_from(client, "/dashboard")
    forbidden = client.post("/api/v1/value/runs", json={}, headers={"X-CSRF-Token": token})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "auth.role"
    assert db.scalar(select(func.count(ValueRun.id))) == 1


def test_bad_parameters_are_4xx_with_the_field_named(
    client: TestClient, db: Session, shop: Shop
) -> None:
    (member,) = members_of(shop, 1)
    run = stored_run(db, date(2025, 12, 31), [(member, {"value": "4.00"})])
    api = keyed(client, db, "value:read", "value:write")
    for body in (
        {"period_days": 7},
        {"period_days": "365"},
        {"margin": 1.5},
        {"margin": "NaN"},
        {"top_share": 0},
        {"growth_factor": 0.5},
        {"horizon_months": 121},
        {"as_of": "2199-12-31"},
        {"as_of": "0"},
        {"thresholds": {"min_purchases": -1}},
        {"thresholds": {"unknown": 1}},
        {"category_margins": {"": "0.2"}},
        {"colour": "red"},
    ):
        answer = api.post("/api/v1/value/runs", json=body)
        assert answer.status_code == 422, (body, answer.text)
    future = api.post("/api/v1/value/runs", json={"as_of": "2199-12-31"}).json()
    assert future["error"]["code"] == "value.as_of"
    assert db.scalar(select(func.count(ValueRun.id))) == 1

    members = f"/api/v1/value/runs/{run.id}/members"
    assert api.get(members, params={"limit": 0}).status_code == 422
    assert api.get(members, params={"limit": 501}).status_code == 422
    assert api.get(members, params={"offset": -1}).status_code == 422
    unknown = api.get(members, params={"layer": "top"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "value.layer"
    assert api.get(members, params={"colour": "red"}).status_code == 422
    assert api.get("/api/v1/value/runs/99999").status_code == 404
    assert api.get("/api/v1/value/runs/0").status_code == 422
    assert api.get("/api/v1/value/runs/99999/members").status_code == 404
    missing = api.get("/api/v1/value/members/M99999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "member.not_found"
    assert api.get("/api/v1/value/members/" + "9" * 40).status_code == 422


def test_a_member_who_joined_after_the_run_is_not_found_with_why(
    client: TestClient, db: Session, shop: Shop
) -> None:
    scored, late = members_of(shop, 2)
    stored_run(db, date(2025, 12, 31), [(scored, {"value": "4.00"})])
    api = keyed(client, db, "value:read")
    answer = api.get(f"/api/v1/value/members/{late.number}")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "value.member_not_scored"
    found = api.get(f"/api/v1/value/members/{scored.number}").json()
    assert found["score"]["value"] == "4.00" and found["score"]["predicted_value"] is None
