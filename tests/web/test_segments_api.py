"""The segments API: create (retried with an Idempotency-Key), list and read with the audience
counted now, members page by page with contact details only with consent; scopes and roles."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.models import Segment
from analytics.pyramid import MOST_VALUABLE
from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor
from loyalty.models import Member
from tests.analytics.test_segments import value_run
from tests.web.conftest import csrf_from, sign_in
from tests.web.test_segment_pages import join


def keyed(client: TestClient, db: Session, *scopes: str) -> TestClient:
    _, key = api_keys.create(db, Actor.system(), name="crm", scopes=list(scopes))
    db.commit()
    client.headers["Authorization"] = f"Bearer {key}"
    return client


@pytest.fixture
def people(db: Session) -> dict[str, Member]:
    return {
        "ann": join(db, "Ann", region="East", city="Shanghai", marketing_consent=True),
        "bo": join(db, "Bo", region="East", city="Hangzhou", tier="gold"),
        "cy": join(db, "Cy", region="North", city="Beijing"),
    }


def body(name: str = "East coast", **criteria: Any) -> dict[str, Any]:
    return {"name": name, "description": "Near the sea", "criteria": criteria}


def test_a_crm_creates_a_segment_once_and_reads_its_members(
    client: TestClient, db: Session, people: dict[str, Member]
) -> None:
    api = keyed(client, db, "segments:write", "segments:read")
    key = {"Idempotency-Key": "crm-east-0001"}
    made = api.post("/api/v1/segments", json=body(regions=["East"]), headers=key)
    assert made.status_code == 201, made.text
    segment = made.json()
    assert segment["audience_size"] == 2 and segment["replayed"] is False
    assert segment["criteria"]["regions"] == ["East"]
    assert segment["criteria"]["statuses"] == ["active"]
    retry = api.post("/api/v1/segments", json=body(regions=["East"]), headers=key)
    assert retry.status_code == 201 and retry.json()["replayed"] is True
    assert retry.json()["id"] == segment["id"]
    assert db.scalar(select(func.count()).select_from(Segment)) == 1
    clash = api.post("/api/v1/segments", json=body("EAST COAST", regions=["North"]))
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "segment.name_taken"

    listed = api.get("/api/v1/segments").json()
    assert [(s["name"], s["audience_size"]) for s in listed] == [("East coast", 2)]
    one = api.get(f"/api/v1/segments/{segment['id']}").json()
    assert one["description"] == "Near the sea" and one["target_of"] == []

    page = api.get(f"/api/v1/segments/{segment['id']}/members", params={"limit": 1})
    assert page.status_code == 200
    first = page.json()
    assert first["total"] == 2 and len(first["members"]) == 1
    assert first["members"][0]["number"] == people["ann"].number
    assert first["members"][0]["email"] == "ann@example.com"  # agreed to marketing
    rest = api.get(
        f"/api/v1/segments/{segment['id']}/members", params={"limit": 1, "offset": 1}
    ).json()
    (bo,) = rest["members"]
    assert bo["number"] == people["bo"].number and bo["email"] is None and bo["tier"] == "gold"
    assert bo["layer"] is None and bo["value"] is None  # no value run yet


def test_bad_input_is_a_4xx_naming_the_field(
    client: TestClient, db: Session, people: dict[str, Member]
) -> None:
    api = keyed(client, db, "segments:write", "segments:read")
    for wrong in (
        body(age_bands=["30-40"]),
        body(regions=["x" * 65]),
        body(regions=[f"R{i}" for i in range(51)]),
        body(colour=["red"]),
        body(p_alive_min="1.5"),
        body(value_min="0.00001"),
        {"name": "", "criteria": {}},
    ):
        answer = api.post("/api/v1/segments", json=wrong)
        assert answer.status_code == 422, (wrong, answer.text)
    ranges = api.post("/api/v1/segments", json=body(clv_min="10", clv_max="5", tiers=["diamond"]))
    assert ranges.status_code == 422
    fields = {f["field"] for f in ranges.json()["error"]["details"]["fields"]}
    assert fields == {"clv_max", "tiers"}
    no_run = api.post("/api/v1/segments", json=body(layers=[MOST_VALUABLE]))
    assert no_run.status_code == 422
    assert no_run.json()["error"]["code"] == "segment.no_value_run"
    assert db.scalar(select(func.count()).select_from(Segment)) == 0
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limt": 5}):
        assert api.get("/api/v1/segments/1/members", params=params).status_code == 422
    assert api.get("/api/v1/segments/99999").status_code == 404
    assert api.get("/api/v1/segments/99999/members").status_code == 404
    short = api.post("/api/v1/segments", json=body(), headers={"Idempotency-Key": "short"})
    assert short.status_code == 422


def test_score_conditions_read_the_latest_run(
    client: TestClient, db: Session, people: dict[str, Member]
) -> None:
    value_run(db, {people["cy"].id: {"layer": MOST_VALUABLE, "value": Decimal("12.5")}})
    db.commit()
    api = keyed(client, db, "segments:write", "segments:read")
    made = api.post("/api/v1/segments", json=body("Best", layers=[MOST_VALUABLE], value_min="10"))
    assert made.status_code == 201, made.text
    assert made.json()["audience_size"] == 1 and made.json()["value_run_as_of"] is not None
    (member,) = api.get(f"/api/v1/segments/{made.json()['id']}/members").json()["members"]
    assert member["number"] == people["cy"].number
    assert member["layer"] == MOST_VALUABLE and Decimal(member["value"]) == Decimal("12.5")


def test_scopes_and_roles(
    client: TestClient, db: Session, make_user: Callable[..., User], people: dict[str, Member]
) -> None:
    reader = keyed(client, db, "segments:read")
    assert reader.get("/api/v1/segments").status_code == 200
    refused = reader.post("/api/v1/segments", json=body())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "auth.scope"
    other = keyed(client, db, "members:read")
    assert other.get("/api/v1/segments").status_code == 403
    del client.headers["Authorization"]
    # A signed-in finance person reads but does not create.
    make_user("fin@example.com", ("finance",))
    sign_in(client, "fin@example.com")
    token = csrf_from(client, "/dashboard")
    assert client.get("/api/v1/segments").status_code == 200
    create = client.post("/api/v1/segments", json=body(), headers={"X-CSRF-Token": token})
    assert create.status_code == 403
    assert "segments:read" in api_keys.SCOPES and "segments:write" in api_keys.SCOPES
