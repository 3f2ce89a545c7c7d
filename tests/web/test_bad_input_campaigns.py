"""Issue 11 over HTTP, the campaigns side: bad input gets a clear 4xx (a 422 JSON error from
the API, a message on the page), never a 500; API keys never approve or pay; four eyes."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import planning, receipts
from campaigns.models import Campaign, ExchangeRate, Receipt
from campaigns.receipts import ReceiptInput
from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor
from tests.web.conftest import csrf_from, sign_in

HUGE = "99999999999999999999"  # past 2^64
BEYOND_INT = str(2**31)  # past PostgreSQL's INTEGER


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {
        "marketer": make_user("marketer@example.com", ("marketer",), "Mei Marketer"),
        "finance": make_user("finance@example.com", ("finance",), "Fang Finance"),
        "finance2": make_user("fei@example.com", ("finance",), "Wang Fei"),
        "admin": make_user("admin@example.com", ("admin",), "Ada Admin"),
    }


def api_as(client: TestClient, email: str) -> TestClient:
    client.headers.pop("X-CSRF-Token", None)
    client.cookies.clear()
    sign_in(client, email)
    client.headers["X-CSRF-Token"] = csrf_from(client, "/dashboard")
    return client


def page_as(client: TestClient, email: str) -> str:
    client.headers.pop("X-CSRF-Token", None)
    client.cookies.clear()
    sign_in(client, email)
    return csrf_from(client, "/dashboard")


def key_client(app: FastAPI, db: Session, *scopes: str) -> TestClient:
    _, raw = api_keys.create(db, Actor.system(), name="Books", scopes=list(scopes))
    db.commit()
    return TestClient(app, headers={"Authorization": f"Bearer {raw}"}, follow_redirects=False)


def campaign(db: Session, owner: User, code: str = "SPRING26") -> Campaign:
    made = planning.create(
        db,
        Actor.system(),
        code=code,
        name="Spring sale",
        channel="wechat",
        owner_id=owner.id,
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 3, 31),
        budget=Decimal("10000"),
        currency="CNY",
        status="active",
    )
    db.commit()
    return made


def submitted(db: Session, by: User, campaign_id: int, **extra: Any) -> int:
    actor = Actor("user", by.email, user_id=by.id, roles=frozenset(r.value for r in by.roles))
    data = ReceiptInput(
        campaign_id=campaign_id,
        vendor=extra.pop("vendor", "Tencent Ads"),
        category="media",
        amount=Decimal("100"),
        currency=extra.pop("currency", "CNY"),
        expense_date=date(2026, 3, 5),
        **extra,
    )
    r = receipts.create(db, actor, data)
    receipts.transition(db, actor, r.id, "submit")
    db.commit()
    return r.id


def error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, (response.status_code, response.text)
    body: dict[str, Any] = response.json()["error"]
    return body


def fields(response: Any) -> set[str]:
    return {d["field"] for d in error(response)["details"]}


# --- The API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/receipts/{HUGE}",
        f"/api/v1/receipts/{BEYOND_INT}",
        "/api/v1/receipts/0",
        f"/api/v1/campaigns/{HUGE}",
        f"/api/v1/attachments/{HUGE}",
        f"/api/v1/revenue?campaign_id={HUGE}",
        f"/api/v1/reports/roi?owner_id={HUGE}",
        f"/api/v1/reports/roi?owner_id={BEYOND_INT}",
        "/api/v1/reports/roi?from=9999-12-31",
        "/api/v1/reports/roi?to=0001-01-01",
        "/api/v1/reports/roi?to=0",
        "/api/v1/reports/roi?channel=wechat%00",
        "/api/v1/reports/roi?status=live",
        "/api/v1/campaigns?q=" + "x" * 201,
        "/api/v1/campaigns?q=a%00b",
        "/api/v1/campaigns?stauts=active",
        "/api/v1/rates?currency=U%00D",
    ],
)
def test_bad_ids_dates_and_filters_in_the_url_are_422(
    client: TestClient, people: dict[str, User], path: str
) -> None:
    api = api_as(client, "finance@example.com")
    body = error(api.get(path))
    assert body["message"]


@pytest.mark.parametrize("action", ["submit", "approve", "reject", "pay"])
def test_huge_receipt_ids_in_actions_are_422(
    client: TestClient, people: dict[str, User], action: str
) -> None:
    api = api_as(client, "finance@example.com")
    response = api.post(f"/api/v1/receipts/{HUGE}/{action}", json={"reason": "x"})
    assert fields(response) == {"receipt_id"}
    assert fields(api.delete(f"/api/v1/receipts/{HUGE}")) == {"receipt_id"}
    assert api.post("/api/v1/periods/0001-01/close").status_code == 422
    assert api.post("/api/v1/periods/2026-3/close").status_code == 422


GOOD_RECEIPT = {
    "vendor": "Tencent Ads",
    "category": "media",
    "amount": "1200.50",
    "expense_date": "2026-03-05",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "1e15"}, "amount"),
        ({"amount": 1e30}, "amount"),
        ({"amount": "0.00001"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"tax_amount": "-1"}, "tax_amount"),
        ({"vendor": "Ads\u0000"}, "vendor"),
        ({"vendor": "Ads \ud800"}, "vendor"),
        ({"vendor": "x" * 201}, "vendor"),
        ({"invoice_number": "I" * 65}, "invoice_number"),
        ({"reimburse_to": "\x1b[2J"}, "reimburse_to"),
        ({"expense_date": "9999-12-31"}, "expense_date"),
        ({"expense_date": "0001-01-01"}, "expense_date"),
        ({"expense_date": 0}, "expense_date"),
        ({"currency": "US"}, "currency"),
        ({"currency": "U$D"}, "currency"),
        ({"campaign_id": int(HUGE)}, "campaign_id"),
        ({"campaign_id": "1"}, "campaign_id"),
        ({"adjusts_receipt_id": 2**63}, "adjusts_receipt_id"),
        ({"category": "food"}, "category"),
    ],
)
def test_receipt_fields_out_of_bounds_are_named(
    client: TestClient,
    db: Session,
    people: dict[str, User],
    change: dict[str, Any],
    field: str,
) -> None:
    c = campaign(db, people["marketer"])
    api = api_as(client, "marketer@example.com")
    body = {**GOOD_RECEIPT, "campaign_id": c.id, **change}
    response = api.post(
        "/api/v1/receipts",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert field in fields(response)
    assert db.scalar(select(func.count()).select_from(Receipt)) == 0


def test_receipt_rules_beyond_the_schema_are_422_with_a_message(
    client: TestClient, db: Session, people: dict[str, User]
) -> None:
    c = campaign(db, people["marketer"])
    api = api_as(client, "marketer@example.com")
    body = {**GOOD_RECEIPT, "campaign_id": c.id}
    rmb = error(api.post("/api/v1/receipts", json={**body, "currency": "RMB"}))
    assert (
        rmb["message"] == "'RMB' is not an ISO 4217 currency code (the Chinese yuan's code is CNY)."
    )
    missing = error(api.post("/api/v1/receipts", json={**body, "campaign_id": 2**31 - 1}))
    assert missing["code"] == "campaign.unknown"
    negative = error(api.post("/api/v1/receipts", json={**body, "amount": "-5"}))
    assert "adjusting receipt" in negative["message"]
    lower = api.post("/api/v1/receipts", json={**body, "currency": "cny"})
    assert lower.status_code == 201 and lower.json()["currency"] == "CNY"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"budget": "1e15"}, "budget"),
        ({"budget": "-1"}, "budget"),
        ({"expected_revenue": "1e30"}, "expected_revenue"),
        ({"expected_revenue": "0.00001"}, "expected_revenue"),
        ({"budget_lines": {"media": "0.00001"}}, "budget_lines.media"),
        ({"budget_lines": {"food": "1"}}, "budget_lines.food.[key]"),
        ({"starts_on": "0001-01-01"}, "starts_on"),
        ({"ends_on": "9999-12-31"}, "ends_on"),
        ({"code": "C" * 33}, "code"),
        ({"name": "Spring\u0000"}, "name"),
        ({"notes": "n" * 4001}, "notes"),
        ({"target_age_band": "a" * 21}, "target_age_band"),
        ({"owner_id": 2**31}, "owner_id"),
        ({"status": "live"}, "status"),
        ({"currency": "yuan"}, "currency"),
    ],
)
def test_campaign_fields_out_of_bounds_are_named(
    client: TestClient, people: dict[str, User], change: dict[str, Any], field: str
) -> None:
    api = api_as(client, "marketer@example.com")
    body = {
        "code": "SPRING26",
        "name": "Spring sale",
        "channel": "wechat",
        "starts_on": "2026-03-01",
        "ends_on": "2026-03-31",
        "budget": "5000",
        **change,
    }
    assert field in fields(api.post("/api/v1/campaigns", json=body))


def test_an_owner_who_does_not_exist_is_a_field_error(
    client: TestClient, people: dict[str, User]
) -> None:
    api = api_as(client, "marketer@example.com")
    body = {
        "code": "SPRING26",
        "name": "Spring sale",
        "channel": "wechat",
        "starts_on": "2026-03-01",
        "ends_on": "2026-03-31",
        "budget": "5000",
        "owner_id": 2**31 - 1,
    }
    assert error(api.post("/api/v1/campaigns", json=body))["code"] == "campaign.owner"


def test_rates_and_revenue_out_of_bounds_are_422(
    client: TestClient, db: Session, people: dict[str, User]
) -> None:
    c = campaign(db, people["marketer"])
    api = api_as(client, "finance@example.com")
    rate = {"currency": "usd", "rate_date": "2026-03-01", "rate": "7.1"}
    for change, field in [
        ({"rate": "1e30"}, "rate"),
        ({"rate": "0"}, "rate"),
        ({"rate": "7.123456789"}, "rate"),
        ({"rate_date": "9999-12-31"}, "rate_date"),
        ({"currency": "\ud800US"}, "currency"),
    ]:
        body = json.dumps({**rate, **change}).encode()  # \ud800 travels escaped
        response = api.put(
            "/api/v1/rates", content=body, headers={"Content-Type": "application/json"}
        )
        assert field in fields(response)
    assert error(api.put("/api/v1/rates", json={**rate, "currency": "XYZ"}))["code"] == (
        "money.currency"
    )
    assert db.scalar(select(func.count()).select_from(ExchangeRate)) == 0
    assert api.put("/api/v1/rates", json=rate).json()["currency"] == "USD"

    money: dict[str, Any] = {"campaign_id": c.id, "received_on": "2026-03-02", "amount": "500"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"amount": "1e15"}, "amount"),
        ({"amount": "0.00001"}, "amount"),
        ({"received_on": "0001-01-01"}, "received_on"),
        ({"reference": "r" * 101}, "reference"),
        ({"orders": 2**31}, "orders"),
        ({"campaign_id": int(HUGE)}, "campaign_id"),
    ]
    for extra, name in cases:
        assert name in fields(api.post("/api/v1/revenue", json={**money, **extra}))
    assert api.post("/api/v1/revenue", json=money).status_code == 201


def test_a_body_that_is_not_utf8_is_a_documented_400(
    client: TestClient, people: dict[str, User]
) -> None:
    api = api_as(client, "marketer@example.com")
    response = api.post(
        "/api/v1/receipts", content=b"\xffd\x0c", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    documented = client.app.openapi()["paths"]["/api/v1/receipts"]["post"]["responses"]  # type: ignore[attr-defined]
    assert {"400", "409", "422"} <= set(documented)


def test_an_api_key_cannot_approve_or_pay(
    app: FastAPI, client: TestClient, db: Session, people: dict[str, User]
) -> None:
    c = campaign(db, people["marketer"])
    rid = submitted(db, people["marketer"], c.id)
    key = key_client(app, db, "finance:write", "campaigns:read")
    refused = key.post(f"/api/v1/receipts/{rid}/approve")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "receipt.person_only"
    assert "signed in" in refused.json()["error"]["message"]
    api = api_as(client, "finance@example.com")
    assert api.post(f"/api/v1/receipts/{rid}/approve").json()["status"] == "approved"
    refused = key.post(f"/api/v1/receipts/{rid}/pay")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "receipt.person_only"
    assert key.get(f"/api/v1/receipts/{rid}").json()["status"] == "approved"
    # A key may still reject (with a reason) and read; the routes say who may approve and pay.
    spec = app.openapi()["paths"]
    assert (
        "API key is refused" in spec["/api/v1/receipts/{receipt_id}/approve"]["post"]["description"]
    )
    assert "API key is refused" in spec["/api/v1/receipts/{receipt_id}/pay"]["post"]["description"]


def test_finance_cannot_approve_their_own_receipt_over_the_api(
    client: TestClient, db: Session, people: dict[str, User]
) -> None:
    c = campaign(db, people["marketer"])
    api = api_as(client, "finance@example.com")
    made = api.post("/api/v1/receipts", json={**GOOD_RECEIPT, "campaign_id": c.id})
    rid = made.json()["id"]
    assert api.post(f"/api/v1/receipts/{rid}/submit").status_code == 200
    refused = api.post(f"/api/v1/receipts/{rid}/approve")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "receipt.four_eyes"
    other = api_as(client, "fei@example.com")
    assert other.post(f"/api/v1/receipts/{rid}/approve").json()["status"] == "approved"


def test_the_reimbursed_employee_cannot_approve_over_the_api(
    client: TestClient, db: Session, people: dict[str, User]
) -> None:
    c = campaign(db, people["marketer"])
    rid = submitted(
        db,
        people["marketer"],
        c.id,
        payment_mode="reimbursement",
        reimburse_to="Wang Fei",
    )
    api = api_as(client, "fei@example.com")
    refused = api.post(f"/api/v1/receipts/{rid}/approve")
    assert refused.status_code == 403 and "reimburses you" in refused.json()["error"]["message"]


# --- The pages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/campaigns/{HUGE}",
        f"/campaigns/{BEYOND_INT}/edit",
        f"/receipts/{HUGE}",
        f"/receipts/{BEYOND_INT}/edit",
        f"/receipts/attachments/{HUGE}",
        f"/receipts/new?campaign_id={HUGE}",
        f"/admin/audit?before={HUGE}",
    ],
)
def test_huge_ids_in_page_urls_are_422(
    client: TestClient, people: dict[str, User], path: str
) -> None:
    page_as(client, "admin@example.com" if "audit" in path else "marketer@example.com")
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert "Please check your input" in response.text


def test_page_actions_on_huge_ids_are_422(client: TestClient, people: dict[str, User]) -> None:
    token = page_as(client, "admin@example.com")
    for path in (f"/admin/users/{HUGE}/disable", f"/admin/api-keys/{HUGE}/revoke"):
        assert client.post(path, data={"csrf_token": token}).status_code == 422
    token = page_as(client, "finance@example.com")
    assert client.post(f"/receipts/{HUGE}/approve", data={"csrf_token": token}).status_code == 422


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"owner": HUGE}, "owner must be between 1 and 2147483647"),
        ({"owner": "abc"}, "Choose a valid owner"),
        ({"start": "9999-12-31"}, "'9999-12-31' must be between 1900-01-01 and 2199-12-31"),
        ({"end": "0001-01-01"}, "'0001-01-01' must be between 1900-01-01 and 2199-12-31"),
        ({"q": "x" * 201}, "The search is longer than 200 characters"),
        ({"q": "a\x00b"}, "The search must not contain control characters"),
        ({"channel": "c" * 33}, "The channel is longer than 32 characters"),
    ],
)
def test_campaign_list_names_a_bad_filter(
    client: TestClient, db: Session, people: dict[str, User], query: dict[str, str], message: str
) -> None:
    campaign(db, people["marketer"])
    page_as(client, "marketer@example.com")
    response = client.get("/campaigns", params=query)
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert f"{message}; it was ignored." in text and "SPRING26" in text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "9999-12-31"}, "'9999-12-31' must be between 1900-01-01 and 2199-12-31"),
        ({"to": "0001-01-01"}, "'0001-01-01' must be between 1900-01-01 and 2199-12-31"),
        ({"owner": BEYOND_INT}, "owner must be between 1 and 2147483647"),
        ({"channel": "wechat\x00"}, "The channel must not contain control characters"),
    ],
)
def test_roi_page_names_a_bad_filter_and_refuses_to_export_it(
    client: TestClient, db: Session, people: dict[str, User], query: dict[str, str], message: str
) -> None:
    campaign(db, people["marketer"])
    page_as(client, "marketer@example.com")
    response = client.get("/reports/roi", params=query)
    assert response.status_code == 422
    assert f"{message}; it was ignored." in html.unescape(response.text)
    assert "SPRING26" in response.text
    export = client.get("/reports/roi.csv", params=query)
    assert export.status_code == 422 and message in html.unescape(export.text)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "9999-12-31"}, "'9999-12-31' must be between 1900-01-01 and 2199-12-31"),
        ({"until": "9999-12-31"}, "'9999-12-31' must be between 1900-01-01 and 2199-12-31"),
        ({"since": "0001-01-01"}, "'0001-01-01' must be between 1900-01-01 and 2199-12-31"),
        ({"until": "2026-02-30"}, "'2026-02-30' is not a date like 2026-03-31"),
        ({"actor": "a" * 201}, "Who is longer than 200 characters"),
        ({"entity_id": "1\x00"}, "The record id must not contain control characters"),
        ({"action": "a" * 65}, "The action is longer than 64 characters"),
    ],
)
def test_audit_log_names_a_bad_filter(
    admin_client: TestClient, query: dict[str, str], message: str
) -> None:
    response = admin_client.get("/admin/audit", params=query)
    assert response.status_code == 422
    assert f"{message}; it was ignored." in html.unescape(response.text)


def test_campaign_form_with_bad_owner_or_amounts_keeps_the_form(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    token = page_as(client, "marketer@example.com")
    form = {
        "name": "Spring sale",
        "code": "spring26",
        "channel": "wechat",
        "starts_on": "2026-03-01",
        "ends_on": "2026-03-31",
        "budget": "10,000",
        "currency": "CNY",
        "csrf_token": token,
    }
    for change, message in [
        ({"owner_id": "abc"}, "Choose a valid owner."),
        ({"owner_id": HUGE}, "owner must be between 1 and 2147483647."),
        ({"owner_id": str(2**31 - 1)}, "No staff member with id 2147483647"),
        ({"budget": "1000000000000"}, "The budget must be less than 1,000,000,000,000."),
        ({"expected_revenue": "0.00001"}, "The expected revenue has more than 4 decimal places."),
        ({"line_media": "-5"}, "The media budget line must not be negative."),
        ({"ends_on": "9999-12-31"}, "The end date must be between 1900-01-01 and 2199-12-31."),
        ({"currency": "RMB"}, "the Chinese yuan's code is CNY"),
        ({"name": "n" * 201}, "The name is longer than 200 characters."),
    ]:
        response = client.post("/campaigns", data={**form, **change})
        assert response.status_code == 422, (change, response.status_code)
        text = html.unescape(response.text)
        assert message in text, change
        assert 'value="Spring sale"' in text or "n" * 201 in text
    assert db.scalar(select(func.count()).select_from(Campaign)) == 0


def test_receipt_form_with_bad_campaign_or_amounts_is_a_field_message(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    c = campaign(db, people["marketer"])
    token = page_as(client, "marketer@example.com")
    form = {
        "campaign_id": str(c.id),
        "vendor": "Tencent Ads",
        "category": "media",
        "amount": "1200",
        "expense_date": "2026-03-05",
        "csrf_token": token,
    }
    for change, message in [
        ({"campaign_id": "abc"}, "Choose a valid campaign."),
        ({"campaign_id": ""}, "Choose the campaign this receipt is for."),
        ({"campaign_id": HUGE}, "campaign must be between 1 and 2147483647."),
        ({"amount": "1" + "0" * 30}, "The amount must be less than 1,000,000,000,000."),
        ({"amount": "0.00001"}, "The amount has more than 4 decimal places."),
        ({"tax_amount": "-3"}, "The tax must not be negative."),
        ({"expense_date": "0001-01-01"}, "The expense date must be between 1900-01-01"),
        ({"vendor": "v" * 201}, "The vendor is longer than 200 characters."),
        ({"invoice_number": "i" * 65}, "The invoice number is longer than 64 characters."),
        ({"currency": "XYZ"}, "'XYZ' is not an ISO 4217 currency code."),
    ]:
        response = client.post("/receipts", data={**form, **change})
        assert response.status_code == 422, (change, response.status_code)
        assert message in html.unescape(response.text), change
    assert db.scalar(select(func.count()).select_from(Receipt)) == 0


def test_finance_pages_flash_what_was_wrong(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    c = campaign(db, people["marketer"])
    token = page_as(client, "finance@example.com")
    # The rates form is drawn again with the problem beside its field and the input kept.
    for rate, message in [
        ("1000001", "A rate must be between 0.000001 and 1,000,000."),
        ("7.123456789", "A rate has at most 8 decimal places."),
    ]:
        response = client.post(
            "/finance/rates",
            data={"currency": "USD", "rate_date": "2026-03-01", "rate": rate, "csrf_token": token},
        )
        assert response.status_code == 422
        assert f'id="f-rate-error">{message}' in html.unescape(response.text)
        assert f'value="{rate}"' in response.text
    response = client.post(
        "/finance/rates",
        data={"currency": "USD", "rate_date": "9999-12-31", "rate": "7", "csrf_token": token},
    )
    assert 'id="f-rate_date-error">The rate\'s date must be between' in html.unescape(response.text)
    assert db.scalar(select(func.count()).select_from(ExchangeRate)) == 0

    refused = client.post("/finance/periods/close", data={"month": "0001-01", "csrf_token": token})
    assert refused.status_code == 422 and "The month must be between 1900-01-01" in refused.text

    # The revenue form is drawn again with the problem beside its field and the input kept.
    for orders, message in [("²", "Orders must be a whole number"), ("9" * 40, "Orders must")]:
        page = client.post(
            f"/campaigns/{c.id}/revenue",
            data={
                "received_on": "2026-03-02",
                "amount": "100",
                "orders": orders,
                "csrf_token": token,
            },
        )
        assert page.status_code == 422
        assert f'<small class="field-error" id="f-orders-error">{message}' in page.text
        assert 'name="amount" id="f-amount" inputmode="decimal" required' in page.text
    page = client.post(
        f"/campaigns/{c.id}/revenue",
        data={"received_on": "2026-03-02", "amount": "1000000000000", "csrf_token": token},
    )
    assert page.status_code == 422 and 'id="f-amount-error">The amount must be less than' in (
        page.text
    )


def test_bulk_queue_refuses_bad_ids_and_own_receipts(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    c = campaign(db, people["marketer"])
    theirs = submitted(db, people["marketer"], c.id)
    own = submitted(db, people["finance"], c.id, vendor="Own")
    token = page_as(client, "finance@example.com")
    response = client.post(
        "/finance/queue",
        data={"action": "approve", "ids": [str(theirs), str(own), HUGE], "csrf_token": token},
    )
    assert response.status_code == 303
    page = html.unescape(client.get("/finance/queue").text)
    assert "1 receipt(s) approved." in page
    assert "receipt must be between 1 and 2147483647." in page
    assert f"#{own}: You entered or submitted receipt #{own}" in page
    assert receipts.get(db, own).status == "submitted"


def test_receipt_page_says_why_finance_cannot_approve(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    c = campaign(db, people["marketer"])
    own = submitted(db, people["finance"], c.id)
    page_as(client, "finance@example.com")
    page = client.get(f"/receipts/{own}")
    assert 'id="four-eyes"' in page.text and "ask another finance person" in page.text
    assert f'action="/receipts/{own}/approve"' not in page.text
    page_as(client, "fei@example.com")
    page = client.get(f"/receipts/{own}")
    assert f'action="/receipts/{own}/approve"' in page.text and 'id="four-eyes"' not in page.text


def test_admin_forms_refuse_text_their_columns_cannot_hold(
    admin_client: TestClient, csrf: str, db: Session
) -> None:
    too_long = admin_client.post(
        "/admin/api-keys",
        data={"name": "k" * 101, "scopes": ["campaigns:read"], "csrf_token": csrf},
    )
    assert too_long.status_code == 422
    assert "The name is longer than 100 characters." in html.unescape(too_long.text)
    invited = admin_client.post(
        "/admin/users",
        data={
            "email": "new@example.com",
            "name": "N" * 201,
            "roles": ["marketer"],
            "csrf_token": csrf,
        },
    )
    assert invited.status_code == 422
    assert "The name is longer than 200 characters." in html.unescape(invited.text)
    control = admin_client.post(
        "/admin/users",
        data={
            "email": "a\x01b@example.com",
            "name": "Nu",
            "roles": ["marketer"],
            "csrf_token": csrf,
        },
    )
    assert control.status_code == 422 and "not an email address" in control.text


def test_a_rate_stored_before_the_bounds_no_longer_breaks_the_pages(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    """The review's case: a rate of 1e30 was stored (SQLite keeps it as a float), then the
    dashboard, the campaign pages and the ROI report all answered 500."""
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("PostgreSQL's NUMERIC(18, 8) never held such a rate")
    c = campaign(db, people["marketer"])
    db.add(ExchangeRate(currency="USD", rate_date=date(2026, 3, 1), rate=Decimal("1e30")))
    rid = submitted(db, people["marketer"], c.id, vendor="Meta", currency="USD")
    receipts.transition(
        db,
        Actor("user", "f", user_id=people["finance"].id, roles=frozenset({"finance"})),
        rid,
        "approve",
    )
    db.commit()
    page_as(client, "finance@example.com")
    for path in ("/dashboard", "/campaigns", f"/campaigns/{c.id}"):
        assert client.get(path).status_code == 200, path
    report = client.get("/reports/roi")
    assert report.status_code == 200
    assert "The exchange rate for USD on or before 2026-03-05 is out of range" in report.text
    api = api_as(client, "finance@example.com")
    assert error(api.get("/api/v1/reports/roi"))["code"] == "rate.invalid"


def test_sign_in_and_channels_refuse_text_the_database_cannot_take(
    client: TestClient, people: dict[str, User]
) -> None:
    token = csrf_from(client)
    response = client.post(
        "/signin", data={"email": "a\x00b@example.com", "password": "x" * 12, "csrf_token": token}
    )
    assert response.status_code < 500 and "Email or password is incorrect." in response.text
    token = page_as(client, "marketer@example.com")
    client.post("/channels", data={"code": "tiktok", "name": "T" * 101, "csrf_token": token})
    assert "The name is longer than 100 characters." in client.get("/channels").text
