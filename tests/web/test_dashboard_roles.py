"""The dashboard by role (issue 12, "What each role expects to see"): each person sees the
sections of the roles they hold and no other; the figures are those of the ROI report, the
finance queue and the loyalty ledger, worked out by hand in each test's docstring."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from campaigns import rates, revenue
from campaigns.models import Campaign
from core.accounts import users
from core.audit import Actor
from tests.campaigns import conftest as campaign_fixtures
from tests.campaigns.conftest import Staff, file_receipt, make_campaign
from tests.loyalty.conftest import ZONE, Shop
from tests.web.conftest import sign_in

staff = campaign_fixtures.staff  # the fixture: a marketer, a finance and an admin user
STAFF_PASSWORD = "long-password-1"  # theirs
D = Decimal


@pytest.fixture
def on_day(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Fix the dashboard's "today" (in the display zone)."""

    def fix(day: date) -> None:
        monkeypatch.setattr("web.pages.dashboard.today", lambda settings: day)

    return fix


def page_as(client: TestClient, email: str) -> str:
    client.cookies.clear()
    sign_in(client, email, STAFF_PASSWORD)
    response = client.get("/dashboard")
    assert response.status_code == 200
    return response.text


class _Elements(HTMLParser):
    """Text of the element with a given id, and the rows of the tables inside it."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted, self.depth, self.found = wanted, 0, False
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += tag not in ("br", "img", "input", "meta", "link")
        elif dict(attrs).get("id") == self.wanted:
            self.depth, self.found = 1, True
        if self.depth and tag == "tr":
            self.rows.append([])
        if self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if not self.depth:
            return
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.text.append(data)
            if self.cell is not None:
                self.cell.append(data)


def element(html: str, id_: str) -> _Elements:
    parser = _Elements(id_)
    parser.feed(html)
    assert parser.found, f"no element with id {id_}"
    return parser


def text(html: str, id_: str) -> str:
    return " ".join(" ".join(element(html, id_).text).split())


def data(html: str, id_: str) -> Any:
    match = re.search(rf'<script type="application/json" id="{id_}">(.*?)</script>', html, re.S)
    assert match, f"no data block {id_}"
    return json.loads(match.group(1))


SECTIONS = ("dash-marketing", "budget-alerts", "dash-finance", "dash-loyalty", "dash-admin")


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        ("marketer", {"dash-marketing", "budget-alerts", "dash-loyalty"}),
        ("finance", {"dash-finance", "budget-alerts"}),
        ("admin", {"dash-admin", "dash-loyalty", "system-status"}),
    ],
)
def test_each_role_sees_its_sections_and_no_others(
    client: TestClient, staff: Staff, on_day: Any, role: str, shown: set[str]
) -> None:
    on_day(date(2026, 5, 20))
    html = page_as(client, f"{role}@example.com")
    for section in (*SECTIONS, "system-status"):
        assert (f'id="{section}"' in html) == (section in shown), (role, section)
    # Database status and finance amounts are for those roles only.
    assert ("Database reachable" in html) == (role == "admin")
    assert ("Awaiting payment" in html) == (role == "finance")
    assert ("/admin/users" in html) == (role == "admin")
    # Every chart is a labelled image with its figures also written out.
    for canvas in re.findall(r"<canvas[^>]*>", html):
        assert 'role="img"' in canvas and re.search(r'aria-label="[^"]{20,}"', canvas), canvas
    assert re.findall(r"<script(?![^>]*\ssrc=)(?![^>]*application/json)[^>]*>", html) == []
    if shown - {"budget-alerts", "dash-admin", "system-status"}:
        assert '<script src="/static/dashboard.js" defer></script>' in html


def test_someone_with_every_role_sees_every_section(
    client: TestClient, db: Session, on_day: Any
) -> None:
    on_day(date(2026, 5, 20))
    users.create(
        db,
        Actor.system(),
        email="all@example.com",
        name="All Roles",
        roles=["marketer", "finance", "admin"],
        password=STAFF_PASSWORD,
    )
    db.commit()
    html = page_as(client, "all@example.com")
    for section in (*SECTIONS, "system-status"):
        assert f'id="{section}"' in html, section


def test_only_admins_can_refresh_the_database_status(client: TestClient, staff: Staff) -> None:
    hx = {"HX-Request": "true", "HX-Target": "system-status"}
    for role in ("marketer", "finance"):
        page_as(client, f"{role}@example.com")
        refused = client.get("/dashboard", headers=hx)
        assert refused.status_code == 403, role
        assert "Database" not in refused.text
    page_as(client, "admin@example.com")
    block = client.get("/dashboard", headers=hx)
    assert block.status_code == 200 and "Database reachable" in block.text
    assert "<html" not in block.text


@pytest.fixture
def quarter(db: Session, staff: Staff) -> dict[str, Campaign]:
    """Five campaigns running 1 April – 30 June 2026 (budgets 10,000 + 5,000 + 3 × 1,000 =
    18,000 CNY), seen on 20 May: this month is May, this quarter April – June.

    | campaign | approved cost (date) | revenue (date)   | quarter ROI |
    | AAA      | 1,000 (5 May)        | 5,000 (6 May)    | 400.0%      |
    | BBB      | 2,000 (10 April)     | 1,000 (12 April) | −50.0%      |
    | CCC      | 1,000 (15 March)     | 3,000 (10 May)   | none: no cost in the quarter |
    | DDD      | 100 (1 May)          | 150 (1 May)      | 50.0%       |
    | EEE      | 400 (20 April)       | 400 (20 April)   | 0.0%        |
    AAA also has 300 submitted on 7 May (awaiting approval), and a July receipt of 9,999 is
    outside both periods.

    May: cost 1,000 + 100 = 1,100; revenue 5,000 + 3,000 + 150 = 8,150; ROI 7,050 ÷ 1,100 =
    640.9%; ratio 1 : 7.41; budget used 1,100 ÷ 18,000 = 6.1%; awaiting approval 300.
    Quarter: cost 1,000 + 2,000 + 100 + 400 = 3,500; revenue 5,000 + 1,000 + 3,000 + 150 +
    400 = 9,550; ROI 6,050 ÷ 3,500 = 172.9%; ratio 1 : 2.73; budget used 19.4%.
    Best by ROI: AAA, DDD, EEE; worst: BBB (the others are already among the best)."""
    made = {}
    for code, budget, cost, cost_day, income, income_day in (
        ("AAA", "10000", "1000", date(2026, 5, 5), "5000", date(2026, 5, 6)),
        ("BBB", "5000", "2000", date(2026, 4, 10), "1000", date(2026, 4, 12)),
        ("CCC", "1000", "1000", date(2026, 3, 15), "3000", date(2026, 5, 10)),
        ("DDD", "1000", "100", date(2026, 5, 1), "150", date(2026, 5, 1)),
        ("EEE", "1000", "400", date(2026, 4, 20), "400", date(2026, 4, 20)),
    ):
        campaign = make_campaign(
            db,
            staff,
            code=code,
            name=f"Campaign {code}",
            starts_on=date(2026, 4, 1),
            ends_on=date(2026, 6, 30),
            budget=D(budget),
        )
        file_receipt(db, campaign.id, cost, day=cost_day)
        revenue.record(
            db,
            staff.finance,
            campaign_id=campaign.id,
            received_on=income_day,
            amount=D(income),
            currency="CNY",
        )
        made[code] = campaign
    file_receipt(db, made["AAA"].id, "300", day=date(2026, 5, 7), steps=("submit",))
    file_receipt(db, made["AAA"].id, "9999", day=date(2026, 7, 1))
    db.commit()
    return made


def test_marketer_sees_this_month_and_quarter_and_the_best_and_worst(
    client: TestClient, quarter: dict[str, Campaign], on_day: Any
) -> None:
    on_day(date(2026, 5, 20))
    html = page_as(client, "marketer@example.com")
    month, q = text(html, "dash-period-month"), text(html, "dash-period-quarter")
    for label, value in (
        ("Total cost", "1,100.00"),
        ("Budget", "18,000.00"),
        ("Budget used", "6.1%"),
        ("Revenue", "8,150.00"),
        ("Input-output ratio", "1 : 7.41"),
        ("ROI", "640.9%"),
        ("Profit", "7,050.00"),
        ("Awaiting approval", "300.00"),
    ):
        assert f"{label} {value}" in month, (label, month)
    # Nothing given away by these campaigns: the total is the receipts alone, and says so.
    assert "approved receipts 1,100.00 plus loyalty cost 0.00" in month
    for label, value in (
        ("Total cost", "3,500.00"),
        ("Budget", "18,000.00"),
        ("Budget used", "19.4%"),
        ("Revenue", "9,550.00"),
        ("Input-output ratio", "1 : 2.73"),
        ("ROI", "172.9%"),
    ):
        assert f"{label} {value}" in q, (label, q)
    assert 'href="/reports/roi?from=2026-05-01&amp;to=2026-05-31"' in html
    assert 'href="/reports/roi?from=2026-04-01&amp;to=2026-06-30"' in html

    rows = element(html, "dash-ranked").rows[1:]
    assert [r[-5:] for r in rows] == [
        ["AAA Campaign AAA", "400.0%", "1 : 5.00", "1,000.00", "5,000.00"],
        ["DDD Campaign DDD", "50.0%", "1 : 1.50", "100.00", "150.00"],
        ["EEE Campaign EEE", "0.0%", "1 : 1.00", "400.00", "400.00"],
        ["BBB Campaign BBB", "-50.0%", "1 : 0.50", "2,000.00", "1,000.00"],
    ]
    assert rows[0][0] == "Best" and rows[3][0] == "Worst"
    for code in ("AAA", "BBB", "DDD", "EEE"):
        assert f'href="/campaigns/{quarter[code].id}"' in html
    assert f'href="/campaigns/{quarter["CCC"].id}"' not in html

    chart = data(html, "dash-marketing-data")
    assert chart["labels"] == ["This month", "This quarter"]
    assert chart["cost"] == [1100.0, 3500.0] and chart["revenue"] == [8150.0, 9550.0]
    assert chart["budget"] == [18000.0, 18000.0]
    assert chart["campaigns"] == ["AAA", "DDD", "EEE", "BBB"]
    assert chart["roi"] == [400.0, 50.0, 0.0, -50.0]


def test_a_missing_rate_is_said_in_the_marketer_and_finance_sections(
    client: TestClient, staff: Staff, db: Session, on_day: Any
) -> None:
    """A USD receipt dated 9 May with no USD rate: the month's figures cannot be booked."""
    on_day(date(2026, 5, 20))
    campaign = make_campaign(db, staff, starts_on=date(2026, 5, 1), ends_on=date(2026, 5, 31))
    file_receipt(db, campaign.id, "10", currency="USD", day=date(2026, 5, 9), steps=("submit",))
    db.commit()
    html = page_as(client, "marketer@example.com")
    problem = text(html, "dash-marketing-problem")
    assert "could not be computed" in problem
    assert "No exchange rate for USD on or before 2026-05-09" in problem
    assert "Who can fix it: finance" in problem and "ask finance" in problem
    assert 'id="dash-period-month"' not in html and "dash-marketing-data" not in html

    html = page_as(client, "finance@example.com")
    problem = text(html, "dash-finance-problem")
    assert "only the counts are shown" in problem and "USD" in problem
    assert "ask finance" not in problem
    rows = element(html, "dash-ageing").rows
    assert rows[2] == ["0–7 days", "0", "—", "0", "—"]
    assert rows[3] == ["8–30 days", "1", "—", "0", "—"]
    assert "dash-finance-data" not in html  # no chart of amounts that are not there


def test_finance_sees_amounts_by_age_in_the_base_currency(
    client: TestClient, staff: Staff, db: Session, on_day: Any
) -> None:
    """Seen on 15 June 2026; USD at 7.1234 from 1 March, GBP at 9.1234 from 1 April.

    Awaiting approval: 101.58 GBP dated 8 June (7 days: 926.754972, booked 926.75) and
    100.00 CNY dated 1 June (14 days); awaiting payment: 33.33 USD dated 1 April (75 days:
    237.422922, booked 237.42) and 2 × 0.05 USD dated 16 May (30 days: 0.35617, booked 0.36
    each, 0.72). Paid and draft receipts are not waiting."""
    on_day(date(2026, 6, 15))
    rates.set_rate(db, staff.finance, "USD", date(2026, 3, 1), D("7.1234"), "CNY")
    rates.set_rate(db, staff.finance, "GBP", date(2026, 4, 1), D("9.1234"), "CNY")
    campaign = make_campaign(db, staff)
    submit = ("submit",)
    file_receipt(db, campaign.id, "101.58", currency="GBP", day=date(2026, 6, 8), steps=submit)
    file_receipt(db, campaign.id, "100.00", day=date(2026, 6, 1), steps=submit)
    file_receipt(db, campaign.id, "33.33", currency="USD", day=date(2026, 4, 1))
    file_receipt(db, campaign.id, "0.05", currency="USD", day=date(2026, 5, 16))
    file_receipt(db, campaign.id, "0.05", currency="USD", day=date(2026, 5, 16))
    file_receipt(db, campaign.id, "500", day=date(2026, 6, 2), steps=("submit", "approve", "pay"))
    file_receipt(db, campaign.id, "600", day=date(2026, 6, 2), steps=())
    db.commit()
    html = page_as(client, "finance@example.com")
    assert element(html, "dash-ageing").rows == [
        ["Age", "Awaiting approval", "Awaiting payment"],
        ["Receipts", "Amount (CNY)", "Receipts", "Amount (CNY)"],
        ["0–7 days", "1", "926.75", "0", "0.00"],
        ["8–30 days", "1", "100.00", "2", "0.72"],
        ["31–60 days", "0", "0.00", "0", "0.00"],
        ["over 60 days", "0", "0.00", "1", "237.42"],
        ["Total", "2", "1,026.75", "3", "238.14"],
    ]
    kpis = text(html, "dash-finance")
    assert "Awaiting approval 1,026.75 2 receipts" in kpis
    assert "Awaiting payment 238.14 3 receipts" in kpis
    assert (
        "Age counts whole days from the receipt's expense date to today (2026-06-15, Asia/Shanghai)"
    ) in kpis
    chart = data(html, "dash-finance-data")
    assert chart["labels"] == ["0–7 days", "8–30 days", "31–60 days", "over 60 days"]
    assert chart["approval"] == [926.75, 100.0, 0.0, 0.0]
    assert chart["payment"] == [0.0, 0.72, 0.0, 237.42]
    assert 'href="/finance/queue"' in html and 'href="/finance/periods"' in html


def test_finance_sees_each_months_close(
    client: TestClient, staff: Staff, db: Session, on_day: Any
) -> None:
    """Seen on 10 May 2026: March closed by Finance, a receipt dated 2 April awaits
    approval; the six months are May back to December 2025."""
    from campaigns import periods

    on_day(date(2026, 5, 10))
    campaign = make_campaign(db, staff)
    periods.close_month(db, staff.finance, date(2026, 3, 1))
    file_receipt(db, campaign.id, "20", day=date(2026, 4, 2), steps=("submit",))
    db.commit()
    html = page_as(client, "finance@example.com")
    rows = element(html, "dash-close").rows[1:]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("2026-05", "Open", "—", "0"),
        ("2026-04", "Open", "—", "1"),
        ("2026-03", "Closed", "Finance", "0"),
        ("2026-02", "Open", "—", "0"),
        ("2026-01", "Open", "—", "0"),
        ("2025-12", "Open", "—", "0"),
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", rows[2][3])


def test_loyalty_figures_on_the_page(
    client: TestClient, staff: Staff, db: Session, on_day: Any
) -> None:
    """Seen on 10 April 2026 (Shanghai): one member joined at 23:30 on 31 March local time
    (15:30Z) and bought 250.00 then, another at 00:30 on 1 April (16:30Z 31 March). Sign-up
    bonus 100, first-purchase bonus 200, 1 point per CNY: March issued 100 + 250 + 200 =
    550, April 100; one new member in each month."""
    on_day(date(2026, 4, 10))
    shop = Shop(db)
    early = shop.join("Early", at=datetime(2026, 3, 31, 15, 30, tzinfo=UTC))
    shop.buy(early, "250.00", at=datetime(2026, 3, 31, 15, 30, tzinfo=UTC))
    shop.join("Late", at=datetime(2026, 3, 31, 16, 30, tzinfo=UTC))
    db.commit()
    html = page_as(client, "marketer@example.com")
    figures = text(html, "dash-loyalty")
    for fact in (
        "Active members 2",
        "New members this month 1",
        "Points issued this month 100",
        "Points redeemed this month 0",
        "Redemption rate this month 0.0%",
        "Redemption rate, last 12 months 0.0%",
    ):
        assert fact in figures, fact
    rows = element(html, "dash-loyalty-months").rows
    assert rows[-3][:2] == ["2026-03", "550"] and rows[-3][-1] == "1"
    assert rows[-2][:2] == ["2026-04", "100"] and rows[-2][-1] == "1"
    assert rows[-1][:2] == ["12 months", "650"]
    chart = data(html, "dash-loyalty-data")
    assert chart["labels"][0] == "2025-05" and chart["labels"][-1] == "2026-04"
    assert chart["issued"][-2:] == [550, 100] and chart["new_members"][-2:] == [1, 1]
    assert 'href="/members"' in html
    assert ZONE.key in figures


def test_the_status_refresh_still_skips_the_report(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    users.create(
        db,
        Actor.system(),
        email="both@example.com",
        name="Both",
        roles=["marketer", "admin"],
        password=STAFF_PASSWORD,
    )
    db.commit()
    page_as(client, "both@example.com")

    def boom(*_: object) -> None:
        raise AssertionError("the status refresh must compute the status only")

    for name in ("budget_alerts", "marketing", "loyalty", "finance"):
        monkeypatch.setattr(f"web.pages.dashboard.{name}", boom)
    block = client.get("/dashboard", headers={"HX-Request": "true", "HX-Target": "system-status"})
    assert block.status_code == 200 and "Database reachable" in block.text
