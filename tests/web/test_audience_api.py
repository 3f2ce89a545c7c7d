"""The audience API (issue 14): the profile and the campaign response as JSON, money as
strings, read with a `campaigns:read` key or a staff session; bad input is a 4xx."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor
from tests.web.conftest import sign_in
from tests.web.test_audience_page import World
from tests.web.test_audience_page import people as people  # a fixture
from tests.web.test_audience_page import world as world  # a fixture

MARCH = "from=2026-03-01&to=2026-03-31"


def keyed(client: TestClient, db: Session, *scopes: str) -> TestClient:
    _, key = api_keys.create(db, Actor.system(), name="bi", scopes=list(scopes))
    db.commit()
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def test_the_profile_per_region(client: TestClient, db: Session, world: World) -> None:
    api = keyed(client, db, "campaigns:read")
    response = api.get(f"/api/v1/audience?dimension=region&{MARCH}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["dimension"], body["from"], body["to"], body["currency"]) == (
        "region",
        "2026-03-01",
        "2026-03-31",
        "CNY",
    )
    assert body["run"] is None
    north, south, unknown = body["groups"]
    assert north == {
        "group": "North",
        "members": 2,
        "member_share_pct": "50.00",
        "purchasing_members": 1,
        "revenue": "120.00",
        "revenue_share_pct": "79.73",
        "revenue_per_member": "60.00",
        "scored": None,
        "value": None,
        "average_value": None,
        "layers": None,
        "rfm_segments": None,
        "loyalty_types": None,
    }
    assert (south["group"], unknown["group"]) == ("South", "unknown")
    total = body["total"]
    assert (total["group"], total["members"], total["revenue"]) == (None, 4, "150.50")
    assert total["revenue_per_member"] == "37.63"

    run = world.run()
    body = api.get(f"/api/v1/audience?{MARCH}").json()
    assert body["run"] == {"id": run.id, "as_of": "2026-11-30", "currency": "CNY"}
    north = body["groups"][0]
    assert (north["scored"], north["value"], north["average_value"]) == (2, "75.00", "37.50")
    assert north["layers"] == {
        "most_valuable": 1,
        "most_growable": 0,
        "low_contribution": 0,
        "negative": 1,
    }
    assert north["rfm_segments"]["Champions"] == 1 and north["rfm_segments"]["Lost"] == 1
    assert north["loyalty_types"]["super_value"] == 1
    assert body["total"]["value"] == "87.00" and body["total"]["layers"]["negative"] == 1

    ages = api.get("/api/v1/audience?dimension=age_band").json()
    assert [g["group"] for g in ages["groups"]] == ["25-34", "35-44", "unknown"]
    assert ages["from"] is None and ages["total"]["revenue"] == "150.50"


def test_the_response_per_group(client: TestClient, db: Session, world: World) -> None:
    api = keyed(client, db, "campaigns:read")
    every = api.get(f"/api/v1/audience/response?{MARCH}")
    assert every.status_code == 200, every.text
    body = every.json()
    assert [c["code"] for c in body["campaigns"]] == ["SPRING"]
    assert body["campaigns"][0]["starts_on"] == "2026-03-01"
    assert body["groups"] == [
        {"group": "North", "targeted": 2, "converted": 1, "conversion_pct": "50.00"}
    ]
    assert body["total"] == {
        "group": None,
        "targeted": 2,
        "converted": 1,
        "conversion_pct": "50.00",
    }
    one = api.get(
        f"/api/v1/audience/response?dimension=occupation&campaign_id={world.spring.id}"
    ).json()
    assert [(g["group"], g["targeted"]) for g in one["groups"]] == [
        ("Teacher", 1),
        ("unknown", 1),
    ]
    nothing = api.get("/api/v1/audience/response?from=2020-01-01&to=2020-01-31").json()
    assert nothing["campaigns"] == [] and nothing["groups"] == []
    assert nothing["total"]["conversion_pct"] is None


def test_bad_input_is_a_4xx(client: TestClient, db: Session, world: World) -> None:
    api = keyed(client, db, "campaigns:read")
    cases = {
        "/api/v1/audience?dimension=shoe_size": 422,
        "/api/v1/audience?from=2026-04-01&to=2026-03-01": 422,
        "/api/v1/audience?from=1800-01-01": 422,
        "/api/v1/audience?form=2026-01-01": 422,  # a typo is refused, not ignored
        "/api/v1/audience/response?campaign_id=0": 422,
        "/api/v1/audience/response?campaign_id=99999999999": 422,
        "/api/v1/audience/response?campaign_id=999999": 404,
    }
    for path, status in cases.items():
        response = api.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["message"]
    period = api.get("/api/v1/audience?from=2026-04-01&to=2026-03-01").json()
    assert "after To" in period["error"]["message"]


def test_who_may_read(
    client: TestClient, db: Session, world: World, people: dict[str, User]
) -> None:
    assert client.get("/api/v1/audience").status_code == 401
    keyed(client, db, "members:write")
    assert client.get("/api/v1/audience").status_code == 403
    assert client.get("/api/v1/audience/response").status_code == 403
    del client.headers["Authorization"]
    sign_in(client, people["finance"].email)
    assert client.get(f"/api/v1/audience?{MARCH}").status_code == 200
    assert client.get(f"/api/v1/audience/response?{MARCH}").status_code == 200
