"""Finance pages: month close and reopen, exchange rates, CSV imports with line errors; the
finance queue's totals in the base currency, and paying with a date and a reference."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import periods, planning, rates, receipts
from campaigns.models import ExchangeRate, Receipt
from campaigns.receipts import ReceiptInput
from core.accounts.models import User
from core.audit import Actor
from core.settings import Settings
from tests.web.conftest import csrf_from, sign_in
from tests.web.test_form_fuzz import BAD_VALUES, _body


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
    refused = client.post("/finance/periods/reopen", data={"month": "2026-03", "csrf_token": token})
    assert refused.status_code == 403
    assert "Only admin staff can reopen a closed month." in refused.text
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
    base = client.post(
        "/finance/rates",
        data={"currency": "CNY", "rate_date": "2026-03-01", "rate": "1", "csrf_token": token},
    )  # drawn again: the problem beside the currency, every input kept
    assert base.status_code == 422
    assert 'id="f-currency-error">CNY is the base currency' in base.text
    assert 'value="2026-03-01"' in base.text and 'value="1"' in base.text


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
    # A Chinese reader gets each bad row in Chinese (the CSV's column name stays as written).
    switch = {"csrf_token": token, "next": "/imports"}
    assert client.post("/language", data={**switch, "language": "zh"}).status_code == 303
    bad_zh = client.post(
        "/imports/receipts",
        data={"csrf_token": token},
        files={"file": ("receipts.csv", csv.encode(), "text/csv")},
    )
    assert bad_zh.status_code == 422
    assert "<td>3</td><td>amount：“oops”不是金额" in bad_zh.text
    assert "is not an amount" not in bad_zh.text
    assert client.post("/language", data={**switch, "language": "en"}).status_code == 303
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


# --- The queue: totals in the base currency, paying with a date and a reference -------------

MINOR = re.compile(r'name="ids" value="(\d+)" data-base-minor="(-?\d*)"')


def section(page: str, name: str) -> str:
    start = page.index(f'id="queue-{name}"')
    return page[start : page.index("</form>", start)]


def filed(db: Session, user: User, campaign_id: int, amount: str, currency: str, day: date) -> int:
    actor = Actor("user", user.email, user_id=user.id, roles=frozenset({"marketer"}))
    data = ReceiptInput(campaign_id, f"V {amount}", "media", Decimal(amount), currency, day)
    receipt = receipts.create(db, actor, data)
    receipts.transition(db, actor, receipt.id, "submit")
    return receipt.id


@pytest.fixture
def queue(db: Session, make_user: Callable[..., User]) -> dict[str, int]:
    """Two receipts awaiting approval and two approved, in three currencies, with rates."""
    marketer = make_user("marketer@example.com", ("marketer",), "Mia")
    boss = make_user("boss@example.com", ("finance",), "Bo")
    make_user("finance@example.com", ("finance",), "Fei")
    c = planning.create(
        db, Actor.system(), code="SPRING26", name="Spring", channel="wechat",
        owner_id=marketer.id, starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31),
        budget=Decimal(10_000), currency="CNY",
    )  # fmt: skip
    for currency, rate in (("USD", "7.1234"), ("GBP", "9.1234")):
        rates.set_rate(db, Actor.system(), currency, date(2026, 3, 1), Decimal(rate), "CNY")
    ids = {
        "cny": filed(db, marketer, c.id, "1200", "CNY", date(2026, 3, 5)),
        "usd": filed(db, marketer, c.id, "101.58", "USD", date(2026, 3, 10)),
        "gbp": filed(db, marketer, c.id, "101.58", "GBP", date(2026, 3, 11)),
        "small": filed(db, marketer, c.id, "0.5", "CNY", date(2026, 3, 12)),
    }
    approver = Actor("user", boss.email, user_id=boss.id, roles=frozenset({"finance"}))
    for name in ("gbp", "small"):
        receipts.transition(db, approver, ids[name], "approve")
    db.commit()
    return ids


def test_the_queue_totals_each_section_in_the_base_currency(
    client: TestClient, queue: dict[str, int]
) -> None:
    as_user(client, "finance@example.com")
    page = client.get("/finance/queue").text
    waiting, approved = section(page, "submitted"), section(page, "approved")
    # Booked once each, half up to the fen: 101.58 × 7.1234 = 723.594972 → 723.59;
    # 101.58 × 9.1234 = 926.754972 → 926.75. Each total is the sum of those.
    assert dict(MINOR.findall(waiting)) == {str(queue["cny"]): "120000", str(queue["usd"]): "72359"}
    assert dict(MINOR.findall(approved)) == {str(queue["gbp"]): "92675", str(queue["small"]): "50"}
    assert '<td class="num nowrap" data-section-total>1,923.59 CNY</td>' in waiting
    assert '<td class="num nowrap" data-section-total>927.25 CNY</td>' in approved
    assert "Total of 2 receipts" in waiting and "101.58 USD" in waiting and "723.59 CNY" in waiting
    assert "data-select-all hidden" in waiting and 'data-currency="CNY"' in waiting
    assert 'src="/static/queue.js"' in page


def test_a_missing_rate_hides_no_receipt_and_says_who_can_fix_it(
    client: TestClient, queue: dict[str, int], db: Session
) -> None:
    marketer = db.scalars(select(User).where(User.email == "marketer@example.com")).one()
    campaign_id = receipts.get(db, queue["cny"]).campaign_id
    eur = filed(db, marketer, campaign_id, "10", "EUR", date(2026, 3, 15))
    db.commit()
    as_user(client, "finance@example.com")
    waiting = section(client.get("/finance/queue").text, "submitted")
    assert f'name="ids" value="{eur}" data-base-minor=""' in waiting
    assert "data-section-total>—</td>" in waiting
    assert "No exchange rate for EUR on or before 2026-03-15" in waiting
    assert 'href="/finance/rates">Enter the exchange rate</a>' in waiting
    assert f'value="{queue["usd"]}" data-base-minor="72359"' in waiting  # the others still book


def test_paying_in_bulk_asks_one_date_and_reference_and_keeps_the_ticks(
    client: TestClient, queue: dict[str, int], db: Session, settings: Settings
) -> None:
    token = as_user(client, "finance@example.com")
    ids = [queue["gbp"], queue["small"]]
    tomorrow = (datetime.now(settings.zone).date() + timedelta(days=1)).isoformat()
    form = {"action": "pay", "ids": ids, "csrf_token": token, "payment_reference": "TT-77"}
    refused = client.post("/finance/queue", data={**form, "paid_on": tomorrow})
    assert refused.status_code == 422
    shown = section(refused.text, "approved")
    assert f'id="f-paid_on-error">The payment date {tomorrow} is in the future' in shown
    assert 'value="TT-77"' in shown and f'value="{tomorrow}"' in shown
    assert all(f'value="{i}" data-base-minor' in shown for i in ids)
    assert shown.count(" checked ") + shown.count(" checked>") == 2
    db.expire_all()
    assert {receipts.get(db, i).status for i in ids} == {"approved"}
    for bad, message in (("", "Enter the payment date."), ("31/03/2026", "as a date like")):
        answer = client.post("/finance/queue", data={**form, "paid_on": bad})
        assert answer.status_code == 422 and message in answer.text
    paid = client.post("/finance/queue", data={**form, "paid_on": "2026-03-25"})
    assert paid.status_code == 303
    assert "2 receipt(s) paid on 2026-03-25." in client.get("/finance/queue").text
    db.expire_all()
    for i in ids:
        r = receipts.get(db, i)
        assert (r.status, r.paid_on, r.payment_reference) == ("paid", date(2026, 3, 25), "TT-77")


def test_the_receipt_page_pays_with_a_date_and_shows_it(
    client: TestClient, queue: dict[str, int], db: Session
) -> None:
    token = as_user(client, "finance@example.com")
    rid = queue["gbp"]
    page = client.get(f"/receipts/{rid}").text
    assert 'id="pay-form"' in page and 'name="paid_on" id="f-paid_on"' in page
    refused = client.post(
        f"/receipts/{rid}/pay", data={"csrf_token": token, "payment_reference": "X1"}
    )
    assert refused.status_code == 422
    assert 'id="f-paid_on-error">Enter the payment date.' in refused.text
    assert 'value="X1"' in refused.text
    paid = client.post(
        f"/receipts/{rid}/pay",
        data={"csrf_token": token, "paid_on": "2026-03-24", "payment_reference": "X1"},
    )
    assert paid.status_code == 303
    shown = client.get(paid.headers["location"]).text
    assert f"Receipt #{rid} paid on 2026-03-24, reference X1." in shown
    payment = shown[shown.index('id="payment"') :]
    assert "<dd>2026-03-24</dd>" in payment and "<dd>X1</dd>" in payment and "Fei ·" in payment
    assert "paid on 2026-03-24, reference X1" in shown  # the history line
    reject = client.post(f"/receipts/{queue['usd']}/reject", data={"csrf_token": token})
    assert reject.status_code == 422
    assert 'id="f-reason-error">Say why the receipt is rejected.' in reject.text


def test_the_api_pays_with_a_date_or_today_in_the_configured_zone(
    client: TestClient, queue: dict[str, int], db: Session, settings: Settings
) -> None:
    as_user(client, "finance@example.com")
    client.headers["X-CSRF-Token"] = csrf_from(client, "/dashboard")
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    old = client.post(f"/api/v1/receipts/{queue['gbp']}/pay")  # an older client: no body
    assert old.status_code == 200, old.text
    assert old.json()["paid_on"] == today.isoformat() and old.json()["payment_reference"] is None
    future = client.post(
        f"/api/v1/receipts/{queue['small']}/pay",
        json={"paid_on": (today + timedelta(days=1)).isoformat()},
    )
    assert future.status_code == 422 and future.json()["error"]["code"] == "receipt.paid_on"
    dated = client.post(
        f"/api/v1/receipts/{queue['small']}/pay",
        json={"paid_on": "2026-03-23", "payment_reference": "API-1"},
    )
    assert dated.status_code == 200
    assert (dated.json()["paid_on"], dated.json()["payment_reference"]) == ("2026-03-23", "API-1")
    spec = client.get("/api/openapi.json").json()
    pay = spec["paths"]["/api/v1/receipts/{receipt_id}/pay"]["post"]
    assert "today in the configured time zone" in pay["description"]
    assert "API key is refused" in pay["description"]
    assert not pay["requestBody"].get("required", False)
    assert (
        spec["components"]["schemas"]["PayIn"]["properties"]["payment_reference"]["anyOf"][0][
            "maxLength"
        ]
        == 100
    )


def test_the_receipt_page_warns_of_possible_duplicates_in_either_language(
    client: TestClient, queue: dict[str, int], db: Session
) -> None:
    marketer = db.scalars(select(User).where(User.email == "marketer@example.com")).one()
    first = receipts.get(db, queue["cny"])
    twin = filed(db, marketer, first.campaign_id, "1200", "CNY", date(2026, 3, 5))
    db.commit()
    as_user(client, "finance@example.com")
    for language in ("en", "zh-CN"):
        page = client.get(f"/receipts/{twin}", headers={"Accept-Language": language})
        assert page.status_code == 200, language
        assert f"Same vendor, amount and date as receipt #{first.id}." in page.text
        assert f'<a href="/receipts/{first.id}">' in page.text
    for path in ("/finance/queue", "/receipts/mine", f"/receipts/{first.id}/edit"):
        assert client.get(path, headers={"Accept-Language": "zh-CN"}).status_code == 200, path


def test_the_payment_fields_survive_the_fuzzers_bad_values(
    client: TestClient, queue: dict[str, int], db: Session
) -> None:
    """The form fuzz walks a queue with nothing approved: these forms, with their payment
    fields, get the same bad values here. Never a 5xx, never a payment."""
    token = as_user(client, "finance@example.com")
    rid = queue["gbp"]
    forms = {
        "/finance/queue": {"action": "pay", "ids": str(rid), "paid_on": "2026-03-20"},
        f"/receipts/{rid}/pay": {"paid_on": "2026-03-20"},
    }
    for path, fields in forms.items():
        fields = {**fields, "payment_reference": "TT-1", "csrf_token": token}
        for name in [n for n in fields if n != "csrf_token"]:
            for raw in BAD_VALUES:
                answer = client.post(
                    path,
                    content=_body(fields, name, raw),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                assert answer.status_code < 500, (path, name, raw[:20], answer.status_code)
                assert answer.status_code in (303, 409, 422), (path, name, raw[:20])
                if answer.status_code == 303:  # a value that is fine after all: undo it
                    db.expire_all()
                    receipt = receipts.get(db, rid)
                    assert name == "payment_reference" or raw == "", (path, name, raw)
                    assert receipt.status == "paid"
                    receipt.status, receipt.paid_on, receipt.payment_reference = (
                        "approved", None, None,
                    )  # fmt: skip
                    db.commit()
