"""Issue 12: the campaign page lists its purchase revenue, so its revenue figure adds up
(revenue records + purchase revenue = the KPI revenue = the ROI report's row), and a report
error on the campaign pages says why, who can fix it and links there."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from campaigns import planning, rates, revenue
from campaigns.models import Campaign
from campaigns.rates import MissingRate
from campaigns.report_data import ReportFilter
from core.accounts.models import User
from core.audit import Actor
from loyalty import purchases
from loyalty import reports as loyalty_reports
from loyalty.campaign_sales import campaign_sales
from loyalty.models import Member
from loyalty.purchases import PurchaseInput, RefundInput
from tests.campaigns.conftest import file_receipt
from tests.web.conftest import csrf_from, sign_in

D = Decimal
SYSTEM = Actor.system()
POS = Actor.cli("test")
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {r: make_user(f"{r}@example.com", (r,), r.title()) for r in ("marketer", "finance")}


def as_user(client: TestClient, email: str) -> None:
    client.cookies.clear()
    sign_in(client, email)
    csrf_from(client, "/dashboard")


def make(db: Session, owner: User, code: str = "SPRING26") -> Campaign:
    campaign = planning.create(
        db,
        SYSTEM,
        code=code,
        name="Spring sale",
        channel="wechat",
        owner_id=owner.id,
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 3, 31),
        budget=D("10000"),
        currency="CNY",
        status="active",
    )
    db.commit()
    return campaign


def buy(
    db: Session,
    external_id: str,
    amount: str,
    at: datetime,
    *,
    code: str = "SPRING26",
    currency: str = "CNY",
    member: Member | None = None,
) -> None:
    purchases.record(
        db,
        POS,
        PurchaseInput(
            source="pos",
            external_id=external_id,
            occurred_at=at,
            amount=D(amount),
            currency=currency,
            member_id=member.id if member else None,
            campaign_code=code,
        ),
        base_currency="CNY",
        zone=ZONE,
    )


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=ZONE)


def money(text: str) -> Decimal:
    return D(text.replace(",", "").strip())


def cell(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert found, element_id
    return found.group(1)


def kpi_revenue(page: str) -> Decimal:
    kpis = page[page.index('id="kpis"') :]
    found = re.search(r"<dt>Revenue</dt><dd>([^<]*)</dd>", kpis)
    assert found
    return money(found.group(1))


def test_the_campaign_page_lists_its_purchases_and_its_revenue_adds_up(
    client: TestClient,
    people: dict[str, User],
    db: Session,
    make_member: Callable[..., Member],
) -> None:
    finance = Actor("user", "f", user_id=people["finance"].id, roles=frozenset({"finance"}))
    campaign = make(db, people["marketer"])
    other = make(db, people["marketer"], code="OTHER26")
    rates.set_rate(db, finance, "GBP", date(2026, 2, 1), D("9.1234"), "CNY")
    revenue.record(
        db, finance, campaign_id=campaign.id, received_on=date(2026, 3, 15), amount=D("500.10"),
        currency="CNY",
    )  # fmt: skip
    revenue.record(
        db, finance, campaign_id=campaign.id, received_on=date(2026, 3, 16), amount=D("101.58"),
        currency="GBP", reference="wire",
    )  # fmt: skip
    mei = make_member()
    buy(db, "A-100", "88.50", at(3), member=mei)
    buy(db, "A-101", "101.58", at(4), currency="GBP")  # booked 926.75, a guest
    buy(db, "A-102", "200", at(5), member=mei)
    buy(db, "B-900", "999", at(5), code="OTHER26")  # another campaign's
    purchases.refund(
        db,
        POS,
        RefundInput("pos", "R-1", "pos", "A-102", at(20), amount=D("50")),
        base_currency="CNY",
        zone=ZONE,
    )
    db.commit()

    sales = campaign_sales(db, campaign.id, "CNY", ZONE)
    assert (sales.purchases, sales.refunds) == (3, 1)
    assert sales.sold == D("88.50") + D("926.75") + D("200")
    assert sales.refunded == D("50") and sales.net == D("1165.25")
    assert [s.external_id for s in sales.recent] == ["A-102", "A-101", "A-100"]

    report = loyalty_reports.roi(db, "CNY", ReportFilter(), zone=ZONE)
    row = next(r for r in report.rows if r.key["code"] == "SPRING26")
    records_total = D("500.10") + D("926.75")  # 101.58 GBP booked once at 9.1234
    assert row.values["revenue"] == records_total + sales.net

    for email in ("marketer@example.com", "finance@example.com"):
        as_user(client, email)
        page = client.get(f"/campaigns/{campaign.id}").text
        assert 'id="figures-problem"' not in page
        net = money(cell(page, "purchase-revenue-net"))
        records = money(cell(page, "revenue-records-total"))
        assert net == sales.net and records == records_total
        assert net + records == kpi_revenue(page) == row.values["revenue"]
        listed = page[page.index('id="purchase-list"') :]
        listed = listed[: listed.index("</table>")]
        assert [m for m in re.findall(r"<code>([^<]+)</code>", listed)] == [
            "A-102",
            "A-101",
            "A-100",
        ]
        assert "B-900" not in listed
        assert mei.number in listed and "guest" in listed
        assert "101.58 GBP" in listed and "926.75" in listed
        assert "50.00 CNY" in listed  # A-102's refund
        assert "2026-03-04" in listed
    other_page = client.get(f"/campaigns/{other.id}").text
    assert money(cell(other_page, "purchase-revenue-net")) == D("999")


def test_a_campaign_whose_figures_need_a_missing_rate_says_who_can_fix_it(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    """The page used to hide every figure behind "cannot be computed yet"; the list showed
    dashes. Both now say why, who can fix it and link to the rates. Purchases are booked when
    recorded (one in a currency with no rate is refused then), so they are still listed."""
    campaign = make(db, people["marketer"])
    buy(db, "A-100", "88.50", at(3))
    file_receipt(db, campaign.id, "10", currency="USD", day=date(2026, 3, 9), steps=("submit",))
    db.commit()
    with pytest.raises(MissingRate, match="No exchange rate for USD"):
        buy(db, "A-101", "10", at(4), currency="USD")
    db.rollback()
    for email in ("marketer@example.com", "finance@example.com"):
        as_user(client, email)
        for path in (f"/campaigns/{campaign.id}", "/campaigns"):
            page = client.get(path).text
            problem = page[page.index('id="figures-problem"') :]
            problem = problem[: problem.index("</div>")]
            assert "could not be computed" in problem, path
            assert "No exchange rate for USD on or before 2026-03-09" in problem
            assert "Who can fix it: finance" in problem
            assert 'href="/finance/rates"' in problem
            assert ("ask finance" in problem) == (email == "marketer@example.com")
        page = client.get(f"/campaigns/{campaign.id}").text
        assert money(cell(page, "purchase-revenue-net")) == D("88.50")
        assert "A-100" in page
