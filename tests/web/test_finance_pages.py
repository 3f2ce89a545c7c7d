"""Finance pages: month close and reopen, exchange rates, CSV imports with line errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import periods, planning
from campaigns.models import ExchangeRate, Receipt
from core.accounts.models import User
from core.audit import Actor
from tests.web.conftest import csrf_from, sign_in


def as_user(client: TestClient, email: str) -> str:
    client.cookies.clear()
    sign_in(client, email)
    return csrf_from(client, "/dashboard")


def test_close_by_finance_reopen_by_admin_only(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    make_user("finance@example.com", ("finance",))
    make_user("boss@example.com", ("admin",))
    token = as_user(client, "finance@example.com")
    client.post("/finance/periods/close", data={"month": "2026-03", "csrf_token": token})
    assert periods.is_closed(db, date(2026, 3, 15))
    client.post("/finance/periods/reopen", data={"month": "2026-03", "csrf_token": token})
    page = client.get("/finance/periods").text
    assert "Only admin staff can reopen a closed month." in page
    assert periods.is_closed(db, date(2026, 3, 15))
    token = as_user(client, "boss@example.com")
    client.post("/finance/periods/reopen", data={"month": "2026-03", "csrf_token": token})
    assert not periods.is_closed(db, date(2026, 3, 15))


def test_rates_page_sets_a_rate(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    make_user("finance@example.com", ("finance",))
    token = as_user(client, "finance@example.com")
    client.post(
        "/finance/rates",
        data={"currency": "usd", "rate_date": "2026-03-01", "rate": "7.1234", "csrf_token": token},
    )
    rate = db.scalar(select(ExchangeRate))
    assert rate is not None and rate.currency == "USD" and rate.rate == Decimal("7.1234")
    assert "7.1234" in client.get("/finance/rates").text
    client.post(
        "/finance/rates",
        data={"currency": "CNY", "rate_date": "2026-03-01", "rate": "1", "csrf_token": token},
    )
    assert "CNY is the base currency" in client.get("/finance/rates").text


def test_import_page_lists_bad_lines_and_saves_nothing(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    owner = make_user("marketer@example.com", ("marketer",))
    planning.create(
        db,
        Actor.system(),
        code="SPRING26",
        name="Spring",
        channel="wechat",
        owner_id=owner.id,
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 3, 31),
        budget=Decimal(1000),
        currency="CNY",
    )
    db.commit()
    token = as_user(client, "marketer@example.com")
    page = client.get("/imports").text
    assert "Import receipts" in page and "Import revenue" not in page  # finance only
    csv = (
        "campaign_code,vendor,category,amount,currency,expense_date\n"
        "SPRING26,Ads,media,100,CNY,2026-03-02\n"
        "SPRING26,Ads,media,oops,CNY,2026-03-02\n"
    )
    bad = client.post(
        "/imports/receipts",
        data={"csrf_token": token},
        files={"file": ("receipts.csv", csv.encode(), "text/csv")},
    )
    assert bad.status_code == 422
    refused = "<td>3</td><td>amount: &#39;oops&#39; is not an amount: write it like 1234.56"
    assert refused in bad.text
    assert db.scalar(select(func.count()).select_from(Receipt)) == 0
    good = client.post(
        "/imports/receipts",
        data={"csrf_token": token},
        files={
            "file": (
                "receipts.csv",
                csv.splitlines()[0].encode() + b"\n" + csv.splitlines()[1].encode(),
                "text/csv",
            )
        },
    )
    assert good.status_code == 303
    assert db.scalar(select(func.count()).select_from(Receipt)) == 1
    assert (
        client.post(
            "/imports/revenue",
            data={"csrf_token": token},
            files={"file": ("r.csv", b"x", "text/csv")},
        ).status_code
        == 403
    )
