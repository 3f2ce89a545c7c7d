"""Amounts and currencies as staff type them into the forms (issue 12, "Input").

An amount is "1234.56" or "1,234.56" (`core.money.parse_amount`); anything else ("7,85",
"1.234,56", "¥88") is refused with a message naming the field and nothing is stored; what is
stored is echoed back as stored, not as typed. A currency is picked from ISO 4217, the base
currency first and the currencies with exchange rates next.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import rates
from campaigns.models import Campaign, ExchangeRate, Receipt, RevenueRecord
from core.accounts.models import User
from core.audit import Actor
from core.money import currency_choices
from loyalty import imports as purchase_imports
from tests.web.conftest import csrf_from, sign_in
from tests.web.test_campaign_pages import FORM, make
from web.rendering import templates


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {r: make_user(f"{r}@example.com", (r,), r.title()) for r in ("marketer", "finance")}


def as_user(client: TestClient, email: str) -> str:
    client.cookies.clear()
    sign_in(client, email)
    return csrf_from(client, "/dashboard")


def count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def flashes(client: TestClient, path: str) -> str:
    page = client.get(path).text
    return " ".join(re.findall(r'<p class="toast[^"]*" role="status">(.*?)</p>', page))


def currency_options(page: str) -> list[str]:
    select_ = re.search(r'<select name="currency"[^>]*>(.*?)</select>', page, re.S)
    assert select_ is not None, "no currency select"
    return re.findall(r'<option value="([^"]*)"', select_.group(1))


def test_a_decimal_comma_budget_is_refused_by_name_and_nothing_is_stored(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    token = as_user(client, "marketer@example.com")
    refused = client.post("/campaigns", data={**FORM, "budget": "7,85", "csrf_token": token})
    assert refused.status_code == 422
    assert (
        "Budget: &#39;7,85&#39; is not an amount: write it like 1234.56 or 1,234.56" in refused.text
    )
    assert "Did you mean 7.85?" in refused.text
    assert 'value="7,85"' in refused.text  # what was typed is kept for the retry
    assert count(db, Campaign) == 0  # the old parser stored 785
    line = client.post("/campaigns", data={**FORM, "line_media": "1.234,56", "csrf_token": token})
    assert line.status_code == 422 and "Media budget line: &#39;1.234,56&#39;" in line.text
    assert "Did you mean 1,234.56?" in line.text and count(db, Campaign) == 0


def test_a_grouped_budget_is_stored_exactly_and_echoed_as_stored(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    token = as_user(client, "marketer@example.com")
    made = client.post(
        "/campaigns",
        data={**FORM, "budget": "10,234.56", "expected_revenue": " 5000 ", "csrf_token": token},
    )
    assert made.status_code == 303
    campaign = db.scalar(select(Campaign).where(Campaign.code == "SPRING26"))
    assert campaign is not None and campaign.budget_amount == Decimal("10234.56")
    shown = flashes(client, made.headers["location"])
    assert "Campaign SPRING26 created. Budget 10,234.56 CNY, expected revenue 5,000.00 CNY." in (
        shown
    )
    edit = client.get(f"/campaigns/{campaign.id}/edit").text
    assert 'name="budget" id="f-budget" inputmode="decimal" required value="10,234.56"' in edit
    saved = client.post(
        f"/campaigns/{campaign.id}",
        data={**FORM, "budget": "12,000.5", "csrf_token": token},
    )
    assert saved.status_code == 303
    assert "Campaign saved. Budget 12,000.50 CNY." in flashes(client, saved.headers["location"])


def test_a_currency_symbol_in_the_amount_is_refused(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    token = as_user(client, "marketer@example.com")
    refused = client.post("/campaigns", data={**FORM, "budget": "¥88", "csrf_token": token})
    assert refused.status_code == 422 and "leave out the currency" in refused.text
    assert count(db, Campaign) == 0  # the old parser dropped the ¥ and stored 88


def test_receipt_amounts_are_parsed_strictly_and_echoed(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    campaign = make(db, people["marketer"])
    token = as_user(client, "marketer@example.com")
    fields = {
        "campaign_id": str(campaign.id),
        "vendor": "Ads",
        "category": "media",
        "amount": "1.234,56",
        "expense_date": "2026-03-05",
        "currency": "CNY",
        "then": "draft",
        "csrf_token": token,
    }
    refused = client.post("/receipts", data=fields)
    assert refused.status_code == 422
    assert "Amount: &#39;1.234,56&#39; is not an amount" in refused.text
    assert count(db, Receipt) == 0  # the old parser stored 1.23
    tax = client.post("/receipts", data={**fields, "amount": "100", "tax_amount": "6,5"})
    assert tax.status_code == 422 and "Tax included: &#39;6,5&#39;" in tax.text
    saved = client.post("/receipts", data={**fields, "amount": "1,234.56", "tax_amount": "6.5"})
    assert saved.status_code == 303
    receipt = db.scalar(select(Receipt))
    assert receipt is not None and receipt.amount == Decimal("1234.56")
    assert f"Receipt #{receipt.id} saved as a draft: 1,234.56 CNY, tax included 6.50 CNY." in (
        flashes(client, saved.headers["location"])
    )


def test_revenue_on_the_campaign_page_is_parsed_strictly_and_echoed(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    campaign = make(db, people["marketer"])
    token = as_user(client, "finance@example.com")
    form = {"received_on": "2026-03-10", "currency": "CNY", "csrf_token": token}
    url = f"/campaigns/{campaign.id}/revenue"
    refused = client.post(url, data={**form, "amount": "7,85", "reference": "INV-7"})
    assert refused.status_code == 422
    shown = refused.text  # the form again, open, the problem at the field, the input kept
    assert 'id="f-amount-error">Amount: &#39;7,85&#39; is not an amount' in shown
    assert "Did you mean 7.85?" in shown
    assert 'value="7,85"' in shown and 'value="INV-7"' in shown and 'value="2026-03-10"' in shown
    assert '<details id="record-revenue" open>' in shown
    assert count(db, RevenueRecord) == 0
    client.post(url, data={**form, "amount": "1,234.56"})
    assert db.scalar(select(RevenueRecord.amount)) == Decimal("1234.56")
    assert "Revenue recorded: 1,234.56 CNY." in flashes(client, f"/campaigns/{campaign.id}")


def test_a_rate_is_parsed_strictly_and_echoed_as_stored(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    token = as_user(client, "finance@example.com")
    form = {"currency": "EUR", "rate_date": "2026-03-01", "csrf_token": token}
    refused = client.post("/finance/rates", data={**form, "rate": "7,85"})
    shown = refused.text  # the form again, the problem at the field, the input kept
    assert (
        refused.status_code == 422
        and 'id="f-rate-error">Rate: &#39;7,85&#39; is not an amount' in shown
    )
    assert "Did you mean 7.85?" in shown and 'value="7,85"' in shown
    assert "1 EUR = 7,85" not in shown and count(db, ExchangeRate) == 0
    client.post("/finance/rates", data={**form, "rate": "7.8500"})
    assert db.scalar(select(ExchangeRate.rate)) == Decimal("7.85")
    assert "Rate saved: 1 EUR = 7.85 CNY on 2026-03-01." in flashes(client, "/finance/rates")


def test_csv_imports_read_amounts_as_the_forms_do(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    make(db, people["marketer"])
    token = as_user(client, "finance@example.com")
    csv = (
        "campaign_code,vendor,category,amount,currency,expense_date,tax_amount\n"
        'SPRING26,Ads,media,"1,234.56",CNY,2026-03-02,\n'
        'SPRING26,Ads,media,"7,85",CNY,2026-03-02,\n'
        "SPRING26,Ads,media,100,CNY,2026-03-02,¥6\n"
    )
    bad = client.post(
        "/imports/receipts",
        data={"csrf_token": token},
        files={"file": ("receipts.csv", csv.encode(), "text/csv")},
    )
    assert bad.status_code == 422
    assert "amount: &#39;7,85&#39; is not an amount" in bad.text
    assert "tax_amount: &#39;¥6&#39; is not an amount: leave out the currency" in bad.text
    assert count(db, Receipt) == 0
    purchases = (
        "source,external_id,occurred_at,amount\n"
        'pos,P1,2026-03-02T10:00:00+08:00,"1,234.56"\n'
        'pos,P2,2026-03-02T10:00:00+08:00,"7,85"\n'
    )
    with pytest.raises(purchase_imports.ImportFailed) as refused:
        purchase_imports.read(purchases.encode(), ZoneInfo("Asia/Shanghai"), db, "CNY")
    assert [(e["line"], e["message"].split(" ")[0]) for e in refused.value.details] == [
        (3, "amount")
    ]


def test_every_currency_field_is_an_iso_4217_choice_base_first(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    campaign = make(db, people["marketer"])
    rates.set_rate(db, Actor.system(), "USD", date(2026, 3, 1), Decimal("7.1"), "CNY")
    db.commit()
    as_user(client, "marketer@example.com")
    new = client.get("/campaigns/new").text
    offered = currency_options(new)
    assert offered[:2] == ["CNY", "USD"]  # the base, then those with a rate, then the rest
    assert offered[2:] == sorted(offered[2:]) and {"EUR", "JPY"} < set(offered)
    assert "RMB" not in offered and "XAU" not in offered and "XXX" not in offered
    assert '<option value="CNY" selected>CNY · Chinese Yuan</option>' in new
    assert '<optgroup label="With exchange rates">' in new
    assert currency_options(client.get("/receipts/new").text)[:2] == ["CNY", "USD"]
    as_user(client, "finance@example.com")
    detail = client.get(f"/campaigns/{campaign.id}").text  # the revenue form
    assert currency_options(detail)[:2] == ["CNY", "USD"]
    on_rates = currency_options(client.get("/finance/rates").text)
    assert on_rates[:2] == ["", "USD"] and "CNY" not in on_rates  # the base needs no rate


def test_a_form_posting_a_non_iso_currency_gets_a_message(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    token = as_user(client, "marketer@example.com")
    refused = client.post("/campaigns", data={**FORM, "currency": "RMB", "csrf_token": token})
    assert refused.status_code == 422
    assert (
        "&#39;RMB&#39; is not an ISO 4217 currency code (the Chinese yuan&#39;s code is CNY)"
        in (refused.text)
    )
    # The select shows what was sent, saying it is not a currency, rather than silently
    # showing the base currency instead.
    assert '<option value="RMB" selected>RMB: not an ISO 4217 code, choose another</option>' in (
        refused.text
    )
    assert count(db, Campaign) == 0
    token = as_user(client, "finance@example.com")
    refused = client.post(
        "/finance/rates",
        data={"currency": "XYZ", "rate_date": "2026-03-01", "rate": "1", "csrf_token": token},
    )
    assert refused.status_code == 422
    assert 'id="f-currency-error">&#39;XYZ&#39; is not an ISO 4217 currency code' in refused.text


def test_the_currency_macro_keeps_a_stored_code_it_does_not_offer() -> None:
    macro = templates.env.get_template("_currency.html").module.currency_select  # type: ignore[attr-defined]
    html = str(macro(currency_choices("CNY", []), "rmb"))
    assert '<option value="RMB" selected>' in html and html.count(" selected") == 1
