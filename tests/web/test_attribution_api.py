"""The attribution API as a website's tracker and an analyst use it: touchpoint batches,
visitor links, stored and fresh runs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from attribution import touchpoints
from attribution.touchpoints import TouchInput
from core.accounts import api_keys
from core.audit import Actor
from loyalty import members
from loyalty.models import Member
from loyalty.purchases import PurchaseInput, record

ZONE = ZoneInfo("Asia/Shanghai")


def keyed(client: TestClient, db: Session, *scopes: str) -> TestClient:
    _, key = api_keys.create(db, Actor.system(), name="tracker", scopes=list(scopes))
    db.commit()
    client.headers["Authorization"] = f"Bearer {key}"
    return client


@pytest.fixture
def member(db: Session) -> Member:
    found = members.create(
        db, Actor.cli("test"), members.Profile(name="Han Meimei", phone="13800001111"), zone=ZONE
    )
    db.commit()
    return found


def touch(ext: str, **extra: Any) -> dict[str, Any]:
    return {
        "source": "web",
        "external_id": ext,
        "channel": "email",
        "kind": "click",
        "occurred_at": "2026-03-02T12:00:00+08:00",
        **extra,
    }


def item(ext: str, *, at: str = "2026-03-02T12:00:00+08:00", **extra: Any) -> TouchInput:
    fields = touch(ext, **extra) | {"occurred_at": datetime.fromisoformat(at)}
    return TouchInput(**fields)


def test_a_tracker_posts_batches_and_links_visitors(
    client: TestClient, db: Session, member: Member
) -> None:
    tracker = keyed(client, db, "touchpoints:write")
    batch = {
        "touchpoints": [touch("E1", member_number=member.number), touch("E2", visitor_id="c1")]
    }
    first = tracker.post("/api/v1/touchpoints", json=batch)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["received"], body["created"], body["replayed"]) == (2, 2, 0)
    again = tracker.post("/api/v1/touchpoints", json=batch).json()
    assert [t["replayed"] for t in again["touchpoints"]] == [True, True]
    assert [t["id"] for t in again["touchpoints"]] == [t["id"] for t in body["touchpoints"]]

    changed = tracker.post(
        "/api/v1/touchpoints",
        json={
            "touchpoints": [
                touch("E9", visitor_id="c9"),
                touch("E1", member_number=member.number, kind="visit"),
            ]
        },
    )
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "touchpoint.id_reused"

    bad = tracker.post(
        "/api/v1/touchpoints",
        json={"touchpoints": [touch("B1", visitor_id="c1", channel="fax"), touch("B2")]},
    )
    assert bad.status_code == 422
    problems = bad.json()["error"]["details"]["problems"]
    assert [(p["index"], p["code"]) for p in problems] == [
        (0, "touchpoint.channel"),
        (1, "touchpoint.person"),
    ]
    shape = tracker.post("/api/v1/touchpoints", json={"touchpoints": [touch("X", kind="poster")]})
    assert shape.status_code == 422

    link = tracker.post(
        "/api/v1/touchpoints/links", json={"visitor_id": "c1", "member_number": member.number}
    )
    assert link.status_code == 200 and not link.json()["replayed"]
    assert tracker.post(
        "/api/v1/touchpoints/links", json={"visitor_id": "c1", "member_number": member.number}
    ).json()["replayed"]
    other = members.create(
        db, Actor.cli("test"), members.Profile(name="Li Lei", phone="13800002222"), zone=ZONE
    )
    db.commit()
    moved = tracker.post(
        "/api/v1/touchpoints/links", json={"visitor_id": "c1", "member_number": other.number}
    )
    assert moved.status_code == 409
    missing = tracker.post(
        "/api/v1/touchpoints/links", json={"visitor_id": "c2", "member_number": "M99999999"}
    )
    assert missing.status_code == 404
    # A touchpoint key cannot read attribution.
    assert tracker.get("/api/v1/attribution").status_code == 403


def test_an_analyst_reads_the_stored_run_or_has_one_computed(
    client: TestClient, db: Session, member: Member
) -> None:
    actor = Actor.cli("test")
    touchpoints.record_batch(
        db,
        actor,
        [
            item("E1", member_number=member.number),
            item("S1", member_number=member.number, channel="sms", at="2026-03-03T12:00:00+08:00"),
        ],
    )
    record(
        db,
        actor,
        PurchaseInput(
            source="pos",
            external_id="P1",
            occurred_at=datetime.fromisoformat("2026-03-04T12:00:00+08:00"),
            amount=Decimal("120.00"),
            currency="CNY",
            member_id=member.id,
        ),
        base_currency="CNY",
        zone=ZONE,
    )
    db.commit()
    analyst = keyed(client, db, "attribution:read")
    computed = analyst.get("/api/v1/attribution", params={"model": "linear"})
    assert computed.status_code == 200, computed.text
    body = computed.json()
    assert body["computed"] and body["model"] == "linear" and body["order"] is None
    assert [(c["key"], c["conversions"], c["value"]) for c in body["credits"]] == [
        ("email", "0.500000", "60.00"),
        ("sms", "0.500000", "60.00"),
    ]
    assert (body["total_conversions"], body["total_value"], body["currency"]) == (
        1,
        "120.00",
        "CNY",
    )
    assert body["from"] is None and body["top_paths"][0]["path"] == "email > sms"
    stored = analyst.get("/api/v1/attribution", params={"model": "linear"}).json()
    assert not stored["computed"] and stored["id"] == body["id"]

    fresh = analyst.post(
        "/api/v1/attribution/runs",
        json={"model": "markov", "order": 2, "from": "2026-03-01", "to": "2026-03-31"},
    )
    assert fresh.status_code == 201, fresh.text
    run = fresh.json()
    assert run["order"] == 2 and run["from"] == "2026-03-01" and run["transitions"]
    assert {t["from"] for t in run["transitions"]} >= {"(start)"}
    again = analyst.post(
        "/api/v1/attribution/runs",
        json={"model": "markov", "order": 2, "from": "2026-03-01", "to": "2026-03-31"},
    )
    assert again.json()["id"] != run["id"]
    latest = analyst.get(
        "/api/v1/attribution",
        params={"model": "markov", "order": 2, "from": "2026-03-01", "to": "2026-03-31"},
    ).json()
    assert latest["id"] == again.json()["id"] and not latest["computed"]

    backwards = analyst.get(
        "/api/v1/attribution", params={"from": "2026-03-31", "to": "2026-03-01"}
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"]["code"] == "attribution.period"
    assert analyst.get("/api/v1/attribution", params={"modle": "linear"}).status_code == 422
    assert analyst.get("/api/v1/attribution", params={"order": 4}).status_code == 422
    assert (
        analyst.post("/api/v1/touchpoints", json={"touchpoints": [touch("E1")]}).status_code == 403
    )


def test_without_a_key_nothing_is_answered(client: TestClient) -> None:
    assert client.get("/api/v1/attribution").status_code == 401
    assert client.post("/api/v1/touchpoints", json={"touchpoints": []}).status_code == 401


def test_every_operation_documents_its_answers(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    operations = {
        ("post", "/api/v1/touchpoints"): {"200", "409", "422", "401", "403"},
        ("post", "/api/v1/touchpoints/links"): {"200", "404", "409", "422"},
        ("get", "/api/v1/attribution"): {"200", "422", "401", "403"},
        ("post", "/api/v1/attribution/runs"): {"201", "422", "401", "403"},
    }
    for (method, path), codes in operations.items():
        assert codes <= set(spec["paths"][path][method]["responses"]), (method, path)
    assert "attribution:read" in api_keys.SCOPES and "touchpoints:write" in api_keys.SCOPES
