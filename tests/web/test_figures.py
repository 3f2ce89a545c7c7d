"""Issue 12, figures, as people and integrations meet them: the dashboard and the report say
who can fix a missing rate and link there; the month close refuses with the receipts listed
and, once closed, every page, API route and CSV import refuses writes dated in the month;
orders are whole numbers in the exports; the report's new campaign filter.

Each test fails on the code before the fix."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import planning, rates, receipts, revenue
from campaigns.models import Campaign, ExchangeRate, RevenueRecord
from campaigns.receipts import ReceiptInput
from core.accounts.models import User
from core.audit import Actor
from tests.campaigns.conftest import file_receipt
from tests.campaigns.test_attachments import PDF
from tests.test_cli import invoke
from tests.web.conftest import csrf_from, sign_in

D = Decimal
SYSTEM = Actor.system()


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {r: make_user(f"{r}@example.com", (r,), r.title()) for r in ("marketer", "finance")}


def as_user(client: TestClient, email: str) -> str:
    """Signed in as `email`; the CSRF token for forms, also set as the API's header."""
    client.headers.pop("X-CSRF-Token", None)
    client.cookies.clear()
    sign_in(client, email)
    token = csrf_from(client, "/dashboard")
    client.headers["X-CSRF-Token"] = token
    return token


def make(db: Session, owner: User, code: str = "SPRING26", **extra: object) -> Campaign:
    fields: dict[str, object] = {
        "name": "Spring sale",
        "channel": "wechat",
        "owner_id": owner.id,
        "starts_on": date(2026, 3, 1),
        "ends_on": date(2026, 3, 31),
        "budget": D("1000"),
        "currency": "CNY",
    }
    fields.update(extra)
    return planning.create(db, SYSTEM, code=code, **fields)  # type: ignore[arg-type]


def a_missing_rate(db: Session, people: dict[str, User]) -> Campaign:
    """An active campaign at 95% of its budget, and a USD receipt with no rate."""
    campaign = make(db, people["marketer"])
    planning.set_status(db, SYSTEM, campaign.id, "active")
    file_receipt(db, campaign.id, "950")
    file_receipt(db, campaign.id, "10", currency="USD", day=date(2026, 3, 9), steps=("submit",))
    db.commit()
    return campaign


# --- 2. The dashboard says it could not compute the alerts, why, and who can fix it ---------


def test_the_dashboard_says_when_it_cannot_compute_budget_alerts(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    """The old dashboard said "No planned or active campaign has passed 90% of its budget"
    while the campaign stood at 95%: a missing rate had stopped the report."""
    a_missing_rate(db, people)
    for email in ("marketer@example.com", "finance@example.com"):
        as_user(client, email)
        page = client.get("/dashboard").text
        assert "passed 90% of its budget." not in page
        problem = page[page.index('id="budget-alerts-problem"') :]
        problem = problem[: problem.index("</div>")]
        assert "could not be computed" in problem
        assert "No exchange rate for USD on or before 2026-03-09" in problem
        assert "Who can fix it: finance" in problem
        assert 'href="/finance/rates"' in problem
        assert ("ask finance" in problem) == (email == "marketer@example.com")


# --- 7. A report error says who can fix it and links there; the API says it in words ---------


def test_a_missing_rate_on_the_report_page_links_to_the_rates(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    a_missing_rate(db, people)
    as_user(client, "marketer@example.com")
    page = client.get("/reports/roi").text
    error = page[page.index('id="report-error"') :]
    error = error[: error.index("</div>")]
    assert "No exchange rate for USD on or before 2026-03-09" in error
    assert "Finance can enter it under Finance → Exchange rates" in error
    assert 'href="/finance/rates"' in error and "Who can fix it: finance" in error

    answer = client.get("/api/v1/reports/roi")
    assert answer.status_code == 422
    body = answer.json()["error"]
    assert body["code"] == "rate.missing"
    assert (
        "Finance can enter it under Finance → Exchange rates (/finance/rates)" in (body["message"])
    )
    assert body["details"]["fix_url"] == "/finance/rates"
    assert body["details"]["fixed_by"] == "finance"


# --- 4. Orders are whole numbers; "—" says why -----------------------------------------------


def test_orders_in_the_exports_and_the_legend(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    counted = make(db, people["marketer"], "COUNTED")
    unknown = make(db, people["marketer"], "UNKNOWN")
    for campaign, orders in ((counted, 79), (unknown, None)):
        revenue.record(
            db,
            Actor("user", "f", user_id=people["finance"].id, roles=frozenset({"finance"})),
            campaign_id=campaign.id,
            received_on=date(2026, 3, 9),
            amount=D("1000"),
            currency="CNY",
            orders=orders,
        )
    db.commit()
    as_user(client, "finance@example.com")
    page = client.get("/reports/roi").text
    legend = page[page.index('id="roi-notes"') :]
    assert "<dt>Orders “—”</dt><dd>No orders recorded.</dd>" in legend
    assert "Cost per order “—”" in legend
    assert 'title="No orders recorded."' in page
    for path in ("/reports/roi.csv", "/api/v1/reports/roi?format=csv"):
        rows = list(csv.DictReader(io.StringIO(client.get(path).content.decode("utf-8-sig"))))
        assert [r["Orders"] for r in rows] == ["79", "", "79"], path
        assert [r["Cost per order"] for r in rows] == ["", "", ""], path  # no cost: not 0.00
    sheet = load_workbook(io.BytesIO(client.get("/reports/roi.xlsx").content)).active
    assert sheet is not None
    header = int(str(sheet.freeze_panes)[1:]) - 1  # the title block sits above the table
    column = [c.value for c in sheet[header]].index("Orders")
    cells = [row[column] for row in sheet.iter_rows(min_row=header + 1)]
    assert [c.value for c in cells] == [79, None, 79]
    assert cells[0].number_format == "#,##0"


# --- 5. The campaign filter, apart from the documents' dates ----------------------------------


def test_the_report_selects_campaigns_by_run_dates_on_every_surface(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    march = make(db, people["marketer"], "MARCH")
    may = make(db, people["marketer"], "MAY", starts_on=date(2026, 5, 1), ends_on=date(2026, 5, 31))
    file_receipt(db, march.id, "100", day=date(2026, 4, 2))
    file_receipt(db, may.id, "200", day=date(2026, 4, 20))
    db.commit()
    as_user(client, "marketer@example.com")
    april = {"from": "2026-04-01", "to": "2026-04-30"}
    both = client.get("/api/v1/reports/roi", params=april).json()
    assert [r["code"] for r in both["rows"]] == ["MARCH", "MAY"]
    assert both["total"]["approved_cost"] == "300.00"
    ran_in_march = {**april, "running_from": "2026-03-01", "running_to": "2026-03-31"}
    one = client.get("/api/v1/reports/roi", params=ran_in_march).json()
    assert [r["code"] for r in one["rows"]] == ["MARCH"]
    assert one["total"]["approved_cost"] == "100.00"
    page = client.get("/reports/roi", params=ran_in_march)
    assert page.status_code == 200 and 'name="running_from" value="2026-03-01"' in page.text
    table = page.text[page.text.index('id="roi-table"') :]
    assert "MARCH" in table and "<td>MAY</td>" not in table
    bad = client.get("/reports/roi", params={"running_from": "March"})
    assert bad.status_code == 422 and "is not a date like 2026-03-31" in bad.text
    typo = client.get("/api/v1/reports/roi", params={"runing_from": "2026-03-01"})
    assert typo.status_code == 422 and "running_from" in typo.json()["error"]["message"]


def test_the_command_line_report_takes_the_campaign_filter(data_dir: Path) -> None:
    invoke("migrate")
    out = data_dir / "roi.csv"
    written = invoke(
        "report",
        "roi",
        "--from",
        "2026-04-01",
        "--running-from",
        "2026-03-01",
        "--running-to",
        "2026-03-31",
        "--out",
        str(out),
    )
    assert "Wrote 0 row(s)" in written
    assert out.read_bytes().startswith(b"\xef\xbb\xbfCode,Name,Budget")


# --- 6. Closing a month: refused while receipts wait, then frozen everywhere -----------------


def test_closing_lists_the_receipts_that_wait(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    campaign = make(db, people["marketer"])
    waiting = file_receipt(
        db, campaign.id, "1200.5", steps=("submit",), vendor="Tencent Ads", category="media"
    )
    db.commit()
    token = as_user(client, "finance@example.com")
    refused = client.post("/finance/periods/close", data={"month": "2026-03", "csrf_token": token})
    assert refused.status_code == 409
    box = refused.text[refused.text.index('id="close-refused"') :]
    assert "2026-03 cannot close: 1 receipt(s) dated in it await approval" in box
    assert f'<a href="/receipts/{waiting}">Receipt #{waiting}</a>' in box
    assert "Tencent Ads · 1200.50 CNY · 2026-03-05" in box
    api = client.post("/api/v1/periods/2026-03/close")
    assert api.status_code == 409
    error = api.json()["error"]
    assert error["code"] == "period.receipts_pending"
    assert error["details"][0]["id"] == waiting
    assert error["details"][0]["url"] == f"/receipts/{waiting}"


def test_a_closed_month_refuses_every_write_on_every_surface(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    """Close March; then receipts (create, edit, submit, attach, approve via the queue),
    revenue (API and page), rates (API, page, covering it from February) and CSV imports
    are all refused, and March's report is unchanged to the cent. The old code took the
    revenue and the rates."""
    finance = Actor("user", "f", user_id=people["finance"].id, roles=frozenset({"finance"}))
    marketer = Actor("user", "m", user_id=people["marketer"].id, roles=frozenset({"marketer"}))
    campaign = make(db, people["marketer"])
    rates.set_rate(db, finance, "USD", date(2026, 2, 1), D("7.1234"), "CNY")
    file_receipt(db, campaign.id, "101.58", currency="USD", day=date(2026, 3, 10))
    revenue.record(
        db,
        finance,
        campaign_id=campaign.id,
        received_on=date(2026, 3, 15),
        amount=D("3333.33"),
        currency="USD",
        orders=4,
    )
    draft = receipts.create(
        db,
        marketer,
        ReceiptInput(
            campaign_id=campaign.id,
            vendor="Draft",
            category="media",
            amount=D("42"),
            currency="CNY",
            expense_date=date(2026, 3, 12),
        ),
    ).id
    db.commit()
    march = {"from": "2026-03-01", "to": "2026-03-31"}
    token = as_user(client, "finance@example.com")
    closed = client.post("/finance/periods/close", data={"month": "2026-03", "csrf_token": token})
    assert closed.status_code == 303
    before = client.get("/api/v1/reports/roi", params=march).json()
    monthly = client.get("/api/v1/reports/roi", params={"group_by": "month"}).json()
    counts = (
        db.scalar(select(func.count()).select_from(RevenueRecord)),
        db.scalar(select(func.count()).select_from(ExchangeRate)),
    )

    # The API, as finance.
    revenue_body = {
        "campaign_id": campaign.id,
        "received_on": "2026-03-20",
        "amount": "5",
        "currency": "CNY",
    }
    assert client.post("/api/v1/revenue", json=revenue_body).status_code == 409
    for rate_date in ("2026-03-20", "2026-02-01", "2026-02-20"):
        put = client.put(
            "/api/v1/rates", json={"currency": "USD", "rate_date": rate_date, "rate": "8"}
        )
        assert put.status_code == 409, rate_date
        assert "2026-03 is closed" in put.json()["error"]["message"]
    # The pages, as finance: each says why (the revenue form beside its date, the others in
    # the toast of the page they return to).
    refused = client.post(
        f"/campaigns/{campaign.id}/revenue",
        data={"received_on": "2026-03-20", "amount": "5", "currency": "CNY", "csrf_token": token},
    )
    assert refused.status_code == 409
    assert 'id="f-received_on-error">' in refused.text and "2026-03 is closed" in refused.text
    rate = client.post(
        "/finance/rates",
        data={"currency": "USD", "rate_date": "2026-03-20", "rate": "8", "csrf_token": token},
    )
    assert rate.status_code == 409
    assert 'id="f-rate_date-error">' in rate.text and "2026-03 is closed" in rate.text
    for kind, text in (
        ("revenue", "campaign_code,received_on,amount,currency\nSPRING26,2026-03-20,5,CNY\n"),
        ("rates", "date,currency,rate\n2026-03-20,USD,8\n"),
        (
            "receipts",
            "campaign_code,vendor,category,amount,currency,expense_date\n"
            "SPRING26,Late,media,5,CNY,2026-03-20\n",
        ),
    ):
        imported = client.post(
            f"/imports/{kind}",
            data={"csrf_token": token},
            files={"file": (f"{kind}.csv", text.encode(), "text/csv")},
        )
        assert imported.status_code == 422, kind
        assert "2026-03 is closed" in imported.text, kind
    # The marketer's receipt writes, over the API and the pages.
    token = as_user(client, "marketer@example.com")
    receipt_body = {
        "campaign_id": campaign.id,
        "vendor": "Late",
        "category": "media",
        "amount": "5",
        "expense_date": "2026-03-20",
    }
    assert client.post("/api/v1/receipts", json=receipt_body).status_code == 409
    assert client.post(f"/api/v1/receipts/{draft}/submit").status_code == 409
    upload = client.post(
        f"/api/v1/receipts/{draft}/attachments",
        files={"file": ("invoice.pdf", PDF, "application/pdf")},
    )
    assert upload.status_code == 409
    client.post(f"/receipts/{draft}/submit", data={"csrf_token": token})
    assert receipts.get(db, draft).status == "draft"

    as_user(client, "finance@example.com")
    assert client.get("/api/v1/reports/roi", params=march).json() == before
    assert client.get("/api/v1/reports/roi", params={"group_by": "month"}).json() == monthly
    assert counts == (
        db.scalar(select(func.count()).select_from(RevenueRecord)),
        db.scalar(select(func.count()).select_from(ExchangeRate)),
    )
