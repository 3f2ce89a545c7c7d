"""The campaigns API: roles per route, uploads, and the report in three formats."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor
from tests.campaigns.test_attachments import EXE, PDF
from tests.web.conftest import csrf_from, sign_in

CAMPAIGN = {
    "code": "SPRING26",
    "name": "Spring sale",
    "channel": "wechat",
    "starts_on": "2026-03-01",
    "ends_on": "2026-03-31",
    "budget": "5000",
}


def session_client(client: TestClient, email: str) -> TestClient:
    """The client signed in as `email` (signing out whoever was), with its CSRF header."""
    client.headers.pop("X-CSRF-Token", None)
    client.cookies.clear()
    sign_in(client, email)
    client.headers["X-CSRF-Token"] = csrf_from(client, "/dashboard")
    return client


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {
        role: make_user(f"{role}@example.com", (role,)) for role in ("admin", "marketer", "finance")
    }


@pytest.mark.parametrize(
    "path",
    ["/api/v1/campaigns", "/api/v1/reports/roi", "/api/v1/receipts/1", "/api/v1/attachments/1"],
)
def test_nobody_unauthenticated_gets_anything(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.api_key_missing"


def test_marketer_plans_finance_approves(
    client: TestClient, app: object, people: dict[str, User]
) -> None:
    marketer = session_client(client, "marketer@example.com")
    created = marketer.post("/api/v1/campaigns", json=CAMPAIGN)
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    assert created.json()["budget_amount"] == "5000.00"  # money travels as a string
    receipt = marketer.post(
        "/api/v1/receipts",
        json={
            "campaign_id": campaign_id,
            "vendor": "Tencent Ads",
            "category": "media",
            "amount": "1200.50",
            "expense_date": "2026-03-05",
            "invoice_number": "T-1",
        },
    )
    assert receipt.status_code == 201
    rid = receipt.json()["id"]
    bad = marketer.post(
        f"/api/v1/receipts/{rid}/attachments",
        files={"file": ("invoice.pdf", EXE, "application/pdf")},
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "attachment.type"
    good = marketer.post(
        f"/api/v1/receipts/{rid}/attachments",
        files={"file": ("invoice.pdf", PDF, "application/pdf")},
    )
    assert good.status_code == 201
    assert marketer.post(f"/api/v1/receipts/{rid}/submit").json()["status"] == "submitted"
    denied = marketer.post(f"/api/v1/receipts/{rid}/approve")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "auth.role"

    marketer.cookies.clear()
    finance = session_client(marketer, "finance@example.com")
    assert finance.post("/api/v1/campaigns", json=CAMPAIGN).status_code == 403
    assert finance.post(f"/api/v1/receipts/{rid}/approve").json()["status"] == "approved"
    download = finance.get(f"/api/v1/attachments/{good.json()['id']}")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    report = finance.get("/api/v1/reports/roi").json()
    assert report["rows"][0]["approved_cost"] == "1200.50"
    assert report["rows"][0]["budget_used_pct"] == "24.0"


def test_session_writes_need_the_csrf_header(client: TestClient, people: dict[str, User]) -> None:
    sign_in(client, "marketer@example.com")
    response = client.post("/api/v1/campaigns", json=CAMPAIGN)
    assert response.status_code == 403 and response.json()["error"]["code"] == "csrf.invalid"


def test_keys_act_within_their_scopes(
    client: TestClient, db: Session, people: dict[str, User]
) -> None:
    _, planner = api_keys.create(
        db, Actor.system(), name="Planner", scopes=["campaigns:write", "campaigns:read"]
    )
    _, reader = api_keys.create(db, Actor.system(), name="BI", scopes=["campaigns:read"])
    db.commit()
    body = {**CAMPAIGN, "owner_id": people["marketer"].id}
    made = client.post(
        "/api/v1/campaigns", json=body, headers={"Authorization": f"Bearer {planner}"}
    )
    assert made.status_code == 201
    refused = client.post(
        "/api/v1/campaigns",
        json={**body, "code": "OTHER"},
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "auth.scope"
    listed = client.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {reader}"})
    assert [c["code"] for c in listed.json()] == ["SPRING26"]


def test_bad_input_is_a_422_with_a_message(client: TestClient, people: dict[str, User]) -> None:
    marketer = session_client(client, "marketer@example.com")
    response = marketer.post("/api/v1/campaigns", json={**CAMPAIGN, "ends_on": "2026-02-01"})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "The end date is before the start date."
    duplicate = marketer.post("/api/v1/campaigns", json=CAMPAIGN)
    assert duplicate.status_code == 201
    again = marketer.post("/api/v1/campaigns", json=CAMPAIGN)
    assert again.status_code == 409 and "already used" in again.json()["error"]["message"]


def test_report_formats(client: TestClient, people: dict[str, User]) -> None:
    marketer = session_client(client, "marketer@example.com")
    marketer.post("/api/v1/campaigns", json=CAMPAIGN)
    as_csv = marketer.get("/api/v1/reports/roi", params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert [r["Code"] for r in rows] == ["SPRING26", "Total"] and rows[0]["Budget"] == "5000.00"
    as_xlsx = marketer.get("/api/v1/reports/roi", params={"format": "xlsx", "group_by": "channel"})
    assert as_xlsx.content[:2] == b"PK"
    wrong = marketer.get("/api/v1/reports/roi", params={"group_by": "week"})
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "group_by"


def test_months_close_by_finance_and_reopen_by_an_admin_in_person(
    client: TestClient, db: Session, people: dict[str, User]
) -> None:
    finance = session_client(client, "finance@example.com")
    assert finance.post("/api/v1/periods/2026-03/close").json() == {
        "month": "2026-03",
        "state": "closed",
    }
    assert finance.post("/api/v1/periods/2026-03/reopen").status_code == 403
    assert finance.post("/api/v1/periods/March/close").status_code == 422
    _, key = api_keys.create(db, Actor.system(), name="Books", scopes=["finance:write"])
    db.commit()
    keyed = TestClient(client.app)
    refused = keyed.post(
        "/api/v1/periods/2026-03/reopen", headers={"Authorization": f"Bearer {key}"}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "auth.person_only"
    admin = session_client(client, "admin@example.com")
    assert admin.post("/api/v1/periods/2026-03/reopen").json()["state"] == "open"


def test_rates_and_revenue_can_be_read_back(client: TestClient, people: dict[str, User]) -> None:
    marketer = session_client(client, "marketer@example.com")
    campaign_id = marketer.post("/api/v1/campaigns", json=CAMPAIGN).json()["id"]
    finance = session_client(client, "finance@example.com")
    finance.put("/api/v1/rates", json={"currency": "USD", "rate_date": "2026-03-01", "rate": "7.1"})
    finance.post(
        "/api/v1/revenue",
        json={
            "campaign_id": campaign_id,
            "received_on": "2026-03-02",
            "amount": "500",
            "orders": 4,
        },
    )
    assert finance.get("/api/v1/rates").json()[0]["currency"] == "USD"
    revenue = finance.get("/api/v1/revenue", params={"campaign_id": campaign_id}).json()
    assert revenue[0]["amount"] == "500.00" and revenue[0]["orders"] == 4
