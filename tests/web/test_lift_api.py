"""`GET /api/v1/campaigns/{id}/lift` and `GET /api/v1/lift/sample-size`: the report as JSON
(money as strings, statistics as numbers, a missing figure null with its reason), each state
before a report, the scope and roles, and bounded parameters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from attribution import lift_data
from campaigns.models import Campaign
from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor
from loyalty.models import Member
from tests.web.conftest import sign_in
from tests.web.test_lift_page import campaign, east, measured, target  # noqa: F401 - a fixture


def test_the_lift_of_a_measured_campaign(
    client: TestClient,
    make_user: Callable[..., User],
    measured: tuple[Campaign, list[Member]],  # noqa: F811 - the fixture
    db: Session,
) -> None:
    found, people = measured
    make_user("fin@example.com", ("finance",), "Fin")
    sign_in(client, "fin@example.com")
    response = client.get(f"/api/v1/campaigns/{found.id}/lift")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "measured" and body["currency"] == "CNY"
    assert body["campaign"]["code"] == "LIFT26" and body["holdout_share"] == "0.50"
    assert body["treated"]["members"] + body["holdout"]["members"] == len(people)
    expected = lift_data.campaign_lift(
        db, found.id, today=date(2026, 12, 1), zone=ZoneInfo("Asia/Shanghai"), base="CNY"
    ).report
    assert expected is not None
    assert body["incremental_revenue"] == str(expected.incremental_revenue)
    assert body["treated"]["revenue_per_member"] == str(expected.treated.revenue_per_member)
    assert body["z_test"]["z"] == pytest.approx(expected.z_test.z)  # type: ignore[union-attr]
    assert body["revenue_interval"]["low"] == str(expected.revenue_interval.low)  # type: ignore[union-attr]
    assert body["verdict"]["code"] == expected.verdict.code
    assert body["incremental_roas"] is None and "incremental_roas" in body["reasons"]
    assert body["cost"] == {"receipts": "0.00", "loyalty": "0.00", "total": "0.00"}
    assert client.get("/api/v1/campaigns/999999/lift").status_code == 404
    assert client.get(f"/api/v1/campaigns/{found.id}/lift?alpha=0.1").status_code == 422


def test_states_before_a_report(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    owner = make_user("mk@example.com", ("marketer",), "Mk")
    sign_in(client, "mk@example.com")
    bare = campaign(db, owner, "BARE26", date(2027, 1, 10))
    body = client.get(f"/api/v1/campaigns/{bare.id}/lift").json()
    assert body["state"] == "no_target" and body["lift"] is None and body["segment_id"] is None
    soon = campaign(db, owner, "SOON26", date(2027, 1, 10))
    east(db, 10)
    set_ = target(db, soon, Decimal("0.5"), date(2026, 12, 1))
    body = client.get(f"/api/v1/campaigns/{soon.id}/lift").json()
    assert body["state"] == "not_started" and body["verdict"] is None
    assert (body["treated"]["members"], body["holdout"]["members"]) == (
        set_.treated,
        set_.held_out,
    )
    assert body["treated"]["converters"] is None


def test_scope_and_roles(client: TestClient, make_user: Callable[..., User], db: Session) -> None:
    owner = make_user("own@example.com", ("marketer",), "Own")
    found = campaign(db, owner, "KEY26", date(2027, 1, 10))
    assert client.get(f"/api/v1/campaigns/{found.id}/lift").status_code == 401
    _, readable = api_keys.create(db, Actor.cli("test"), name="reader", scopes=["campaigns:read"])
    _, other = api_keys.create(db, Actor.cli("test"), name="poster", scopes=["purchases:write"])
    db.commit()
    ok = client.get(
        f"/api/v1/campaigns/{found.id}/lift", headers={"Authorization": f"Bearer {readable}"}
    )
    assert ok.status_code == 200 and ok.json()["state"] == "no_target"
    refused = client.get(
        "/api/v1/lift/sample-size?baseline=0.1&lift=0.5",
        headers={"Authorization": f"Bearer {other}"},
    )
    assert refused.status_code == 403


def test_sample_size_and_its_bounds(client: TestClient, make_user: Callable[..., User]) -> None:
    make_user("fin@example.com", ("finance",), "Fin")
    sign_in(client, "fin@example.com")
    found = client.get("/api/v1/lift/sample-size?baseline=0.1&lift=0.5&power=0.8&alpha=0.05")
    assert found.status_code == 200
    assert found.json() == {
        "baseline": 0.1,
        "lift": 0.5,
        "power": 0.8,
        "alpha": 0.05,
        "holdout_share": 0.5,
        "holdout": 686,
        "treated": 686,
        "total": 1372,
    }
    uneven = client.get("/api/v1/lift/sample-size?baseline=0.1&lift=0.5&holdout_share=0.1").json()
    assert uneven["treated"] > 9 * uneven["holdout"] - 9 and uneven["total"] > 1372
    for query in (
        "baseline=0&lift=0.5",
        "baseline=1&lift=0.5",
        "baseline=0.1&lift=0",
        "baseline=0.1&lift=11",
        "baseline=0.1&lift=0.5&power=0.4",
        "baseline=0.1&lift=0.5&alpha=0.6",
        "baseline=0.1&lift=0.5&holdout_share=0.6",
        "baseline=nan&lift=0.5",
        "baseline=1e-300&lift=0.5",  # the arithmetic itself would break down
        "baseline=0.1&lift=0.5&alpha=1e-300",
        "baseline=0.1&lift=0.5&holdout_share=1e-300",
        "baseline=0.1",
        "baseline=0.1&lift=0.5&extra=1",
    ):
        bad = client.get(f"/api/v1/lift/sample-size?{query}")
        assert bad.status_code == 422, query
        assert "error" in bad.json()
    too_much = client.get("/api/v1/lift/sample-size?baseline=0.8&lift=0.5")
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "lift.minimum_detectable_lift"
