"""The points liability API (issue 15): `GET /api/v1/liability` (the roll-forward, the
expected rates, the curve and the reconciliation, money as strings) and
`GET /api/v1/liability/journal`, with a scoped key or a staff session; bad input is a 4xx.
The shop is the page test's fifteen months (January 2025 to March 2026)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor
from loyalty import liability, liability_facts
from tests.loyalty.conftest import BASE, ZONE
from tests.web.conftest import sign_in
from tests.web.test_liability_page import MARCH, TODAY, fifteen_months
from web.pages import liability as page


@pytest.fixture
def api(app: FastAPI, client: TestClient) -> TestClient:
    app.dependency_overrides[page.clock] = lambda: TODAY
    return client


def keyed(client: TestClient, db: Session, *scopes: str) -> TestClient:
    _, key = api_keys.create(db, Actor.system(), name="books", scopes=list(scopes))
    db.commit()
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def test_the_roll_forward_rates_and_curve_as_json(api: TestClient, db: Session) -> None:
    fifteen_months(db)
    client = keyed(api, db, "liability:read")
    answer = client.get("/api/v1/liability")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    made = liability_facts.report(db, ZONE, MARCH, base=BASE)
    assert body["until"] == "2026-03" and body["method"] == "additive"
    assert body["currency"] == "CNY" and body["point_value"] == "0.0100"
    assert body["first_month"] == "2025-01"
    expected = made.frame.tail(12).to_dict("records")
    assert [m["month"] for m in body["months"]] == [f"{r['month']:%Y-%m}" for r in expected]
    for got, want in zip(body["months"], expected, strict=True):
        assert got["expected_rate"] == f"{want['expected_rate']:.4f}"
        assert got["rate_estimated"] is made.expectations[want["month"]].estimated
        for column in liability.ROLL_FORWARD_COLUMNS[2:]:
            if column.endswith("_points"):
                assert got[column] == want[column], column
            else:  # money as a string at the minor unit
                assert isinstance(got[column], str) and got[column] == f"{want[column]:.2f}"
    last = body["months"][-1]
    assert body["expected_rate"] == last["expected_rate"] and body["rate_estimated"] is True
    assert body["reconciliation"] == {
        "closing_points": last["closing_points"],
        "ledger_points": last["closing_points"],
        "reconciles": True,
    }
    curve = body["curve"]
    assert made.estimate is not None
    assert curve["used"] is True and curve["method"] == "additive" and curve["as_of"] == "2026-03"
    assert curve["rate"] == f"{made.estimate.rate:.4f}"
    assert curve["description"] == made.estimate.describe()
    assert len(curve["ages"]) == made.estimate.max_age + 1 == 15
    assert Decimal(curve["ages"][-1]["cumulative"]) == made.estimate.curve[-1].quantize(
        Decimal("0.000001")
    )
    assert curve["cohorts"][0]["issue_month"] == "2025-01"

    few = client.get("/api/v1/liability?until=2025-12&months=3&method=chain_ladder").json()
    assert [m["month"] for m in few["months"]] == ["2025-10", "2025-11", "2025-12"]
    assert few["method"] == "chain_ladder" and few["rate_estimated"] is False
    assert few["curve"]["used"] is False  # shown, not used: under 12 months of history
    assert few["curve"]["description"].startswith("Chain ladder")


def test_the_months_journal_lines(api: TestClient, db: Session) -> None:
    fifteen_months(db)
    client = keyed(api, db, "liability:read")
    made = liability_facts.report(db, ZONE, date(2026, 2, 1), base=BASE)
    lines = made.journal[made.journal["entry"].str.startswith("LOY-2026-02")].to_dict("records")
    answer = client.get("/api/v1/liability/journal?month=2026-02")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["month"] == "2026-02" and body["currency"] == "CNY"
    assert [
        (x["date"], x["entry"], x["kind"], x["account"], x["debit"], x["credit"])
        for x in body["lines"]
    ] == [
        (
            line["date"].isoformat(),
            line["entry"],
            line["kind"],
            line["account"],
            f"{line['debit']:.2f}",
            f"{line['credit']:.2f}",
        )
        for line in lines
    ]
    assert body["total_debit"] == body["total_credit"] == f"{sum(x['debit'] for x in lines):.2f}"
    # By default the last full month.
    assert client.get("/api/v1/liability/journal").json()["month"] == "2026-03"


def test_without_points_the_answer_is_empty(api: TestClient, db: Session) -> None:
    client = keyed(api, db, "liability:read")
    body = client.get("/api/v1/liability").json()
    assert body["months"] == [] and body["curve"] is None and body["expected_rate"] is None
    assert body["reconciliation"] == {"closing_points": 0, "ledger_points": 0, "reconciles": True}
    journal = client.get("/api/v1/liability/journal").json()
    assert journal["lines"] == [] and journal["total_debit"] == "0.00"


def test_who_may_read_it(api: TestClient, db: Session, make_user: Callable[..., User]) -> None:
    assert api.get("/api/v1/liability").status_code == 401
    wrong = keyed(api, db, "campaigns:read")
    refused = wrong.get("/api/v1/liability")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "auth.scope"
    del api.headers["Authorization"]
    make_user("mia@example.com", ("marketer",), "Mia")
    sign_in(api, "mia@example.com")
    assert api.get("/api/v1/liability").status_code == 200
    assert api.get("/api/v1/liability/journal").status_code == 200


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("until=2026-13", "period.month"),
        ("until=0000-01", "period.month"),
        ("until=2026-05", "liability.month"),  # has not begun
        ("until=2026-3", "validation_error"),
        ("until=March", "validation_error"),
        ("method=bornhuetter", "validation_error"),
        ("months=0", "validation_error"),
        ("months=241", "validation_error"),
        ("mnth=2026-03", "query.unknown"),
    ],
)
def test_bad_input_is_a_422(api: TestClient, db: Session, query: str, code: str) -> None:
    client = keyed(api, db, "liability:read")
    answer = client.get(f"/api/v1/liability?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code
    journal = query.replace("until=", "month=").replace("months=", "month_count=")
    assert client.get(f"/api/v1/liability/journal?{journal}").status_code == 422


def test_the_operations_are_in_the_openapi_with_their_errors(api: TestClient) -> None:
    spec = api.get("/api/openapi.json").json()
    for path in ("/api/v1/liability", "/api/v1/liability/journal"):
        operation = spec["paths"][path]["get"]
        assert {"401", "403", "409", "422"} <= set(operation["responses"])
    params = {p["name"]: p for p in spec["paths"]["/api/v1/liability"]["get"]["parameters"]}
    assert params["months"]["schema"]["maximum"] == 240
    assert params["method"]["schema"]["enum"] == ["additive", "chain_ladder"]
