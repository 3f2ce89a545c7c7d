"""The ROI report page (issue 12): headers that sort, rows that drill down (channel → its
campaigns → a campaign), a breadcrumb, period presets from a fixed "today", the comparison
with the previous period, and exports that honour the order and the comparison.

The fixture, all CNY, receipts approved; campaigns run 2026-03-01 … 2026-04-30 unless said:

  code     channel  owner     cost (date)                 revenue (date)
  ALPHA    WeChat   Marketer  400 (03-05), 500 (04-05)    1,000 (03-10), 1,500 (04-10)
  BRAVO    WeChat   Marketer  1,000 (04-10)               800 (04-15)
  CHARLIE  Email    Owen      200 (04-12)                 900 (04-20)
  DELTA    Email    Marketer  —                           300 (04-22)
  ECHO     Email    Marketer  —                           100 (04-25)   runs in April only
  FOXTROT  WeChat   Marketer  100 (03-20)                 —             runs in March only

By hand, all dates (ratio = revenue ÷ cost, ROI = (revenue − cost) ÷ cost):
  ALPHA   900 / 2,500   ratio 2.78  ROI 177.8%
  BRAVO   1,000 / 800   ratio 0.80  ROI −20.0%
  CHARLIE 200 / 900     ratio 4.50  ROI 350.0%
  DELTA, ECHO: no cost, ratio "—";  FOXTROT 100 / 0: ratio 0.00, ROI −100.0%
April against March (the rows are the campaigns that ran in the period or have documents in it):
  ALPHA   April 500 / 1,500 (3.00, 200.0%)   March 400 / 1,000 (2.50, 150.0%)
          change: cost +100.00, revenue +500.00, ratio +0.50, ROI +50.0 pp
  BRAVO   April 1,000 / 800 (0.80)           March 0 / 0: no ratio, so no change in it
  ECHO    April only; FOXTROT March only (100 / 0)
  Total   April 1,700 / 3,600 (2.12, 111.8%) March 500 / 1,000 (2.00, 100.0%)
          change: cost +1,200.00, revenue +2,600.00, ratio +0.12, ROI +11.8 pp
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session

from campaigns import planning, revenue
from campaigns.models import Campaign
from core.accounts.models import User
from core.audit import Actor
from tests.campaigns.conftest import file_receipt
from tests.web.conftest import sign_in
from web.pages import reports

D = Decimal
SYSTEM = Actor.system()
ZONE = ZoneInfo("Asia/Shanghai")
TODAY = datetime(2026, 5, 14, 9, 30, tzinfo=ZONE)


class _Page(HTMLParser):
    """The report table's cells (text, title, first link) by section, the links of the
    breadcrumb and the presets, and the headers' aria-sort."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[list[dict[str, Any]]]] = {
            "thead": [],
            "tbody": [],
            "tfoot": [],
        }
        self.section: str | None = None
        self.cell: dict[str, Any] | None = None
        self.in_table = False
        self.nav: str | None = None
        self.navs: dict[str, list[dict[str, str]]] = {"breadcrumb": [], "presets": []}
        self.nav_link: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and a.get("id") == "roi-table":
            self.in_table = True
        elif self.in_table and tag in self.sections:
            self.section = tag
        elif self.in_table and tag == "tr" and self.section:
            self.sections[self.section].append([])
        elif self.in_table and tag in ("td", "th") and self.section:
            self.cell = {"text": "", "title": a.get("title"), "href": None, **a}
            self.sections[self.section][-1].append(self.cell)
        elif tag == "a" and self.cell is not None and self.cell["href"] is None:
            self.cell["href"] = a.get("href")
        elif tag == "nav" and "roi-breadcrumb" in a.get("class", ""):
            self.nav = "breadcrumb"
        elif tag == "nav" and "presets" in a.get("class", ""):
            self.nav = "presets"
        elif self.nav and tag in ("a", "span") and (tag == "a" or "aria-current" in a):
            self.nav_link = {"text": "", "href": a.get("href", ""), **a}
            self.navs[self.nav].append(self.nav_link)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_table = False
        elif tag in ("td", "th"):
            self.cell = None
        elif tag in self.sections:
            self.section = None
        elif tag == "nav":
            self.nav = None
        elif tag in ("a", "span"):
            self.nav_link = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell["text"] += data
        if self.nav_link is not None:
            self.nav_link["text"] += data


class Report:
    def __init__(self, html: str) -> None:
        page = _Page()
        page.feed(html)
        self.html = html
        self.header = page.sections["thead"][0]
        self.labels = [c["text"].strip() for c in self.header]
        self.rows = [
            {label: cell for label, cell in zip(self.labels, row, strict=True)}
            for row in page.sections["tbody"]
            if len(row) == len(self.labels)  # not the "No campaigns match" line
        ]
        self.total = dict(zip(self.labels, page.sections["tfoot"][0], strict=True))
        self.breadcrumb = page.navs["breadcrumb"]
        self.presets = page.navs["presets"]

    def column(self, label: str) -> list[str]:
        return [r[label]["text"].strip() for r in self.rows]

    def head(self, label: str) -> dict[str, Any]:
        return self.header[self.labels.index(label)]

    def row(self, first: str) -> dict[str, dict[str, Any]]:
        return next(r for r in self.rows if r[self.labels[0]]["text"].strip() == first)


def query(href: str) -> dict[str, str]:
    parts = urlsplit(href)
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {
        "marketer": make_user("marketer@example.com", ("marketer",), "Marketer"),
        "owen": make_user("owen@example.com", ("marketer",), "Owen"),
    }


@pytest.fixture
def fixed_today(app: FastAPI) -> datetime:
    app.dependency_overrides[reports.now] = lambda: TODAY
    return TODAY


def _campaign(db: Session, owner: User, code: str, channel: str, **extra: Any) -> Campaign:
    fields: dict[str, Any] = {
        "name": f"{code.title()} push",
        "channel": channel,
        "owner_id": owner.id,
        "starts_on": date(2026, 3, 1),
        "ends_on": date(2026, 4, 30),
        "budget": D("1000"),
        "currency": "CNY",
        **extra,
    }
    return planning.create(db, SYSTEM, code=code, **fields)


@pytest.fixture
def shop(db: Session, people: dict[str, User], client: TestClient) -> dict[str, Campaign]:
    m, owen = people["marketer"], people["owen"]
    made = {
        "ALPHA": _campaign(db, m, "ALPHA", "wechat"),
        "BRAVO": _campaign(db, m, "BRAVO", "wechat"),
        "CHARLIE": _campaign(db, owen, "CHARLIE", "email"),
        "DELTA": _campaign(db, m, "DELTA", "email"),
        "ECHO": _campaign(db, m, "ECHO", "email", starts_on=date(2026, 4, 1)),
        "FOXTROT": _campaign(db, m, "FOXTROT", "wechat", ends_on=date(2026, 3, 31)),
    }
    for code, amount, day in [
        ("ALPHA", "400", date(2026, 3, 5)),
        ("ALPHA", "500", date(2026, 4, 5)),
        ("BRAVO", "1000", date(2026, 4, 10)),
        ("CHARLIE", "200", date(2026, 4, 12)),
        ("FOXTROT", "100", date(2026, 3, 20)),
    ]:
        file_receipt(db, made[code].id, amount, day=day)
    finance = Actor("user", "f", roles=frozenset({"finance"}))
    for code, amount, day in [
        ("ALPHA", "1000", date(2026, 3, 10)),
        ("ALPHA", "1500", date(2026, 4, 10)),
        ("BRAVO", "800", date(2026, 4, 15)),
        ("CHARLIE", "900", date(2026, 4, 20)),
        ("DELTA", "300", date(2026, 4, 22)),
        ("ECHO", "100", date(2026, 4, 25)),
    ]:
        revenue.record(
            db,
            finance,
            campaign_id=made[code].id,
            received_on=day,
            amount=D(amount),
            currency="CNY",
            orders=None,
        )
    db.commit()
    client.cookies.clear()
    sign_in(client, "marketer@example.com")
    return made


def page(client: TestClient, **params: str) -> Report:
    answer = client.get("/reports/roi", params=params)
    assert answer.status_code == 200, answer.text
    return Report(answer.text)


# --- 1. Sorting -------------------------------------------------------------------------------


def test_every_header_sorts_both_ways_with_the_empty_figures_last(
    client: TestClient, shop: dict[str, Campaign]
) -> None:
    default = page(client)
    assert default.column("Code") == ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT"]
    assert default.head("Code")["aria-sort"] == "ascending"  # the report's own order
    assert "aria-sort" not in default.head("Revenue")
    # The active column's link reverses it; any other column's link sorts it ascending.
    assert query(default.head("Code")["href"]) == {"sort": "code", "dir": "desc"}
    assert query(default.head("Input-output ratio")["href"]) == {"sort": "io_ratio"}

    down = page(client, sort="io_ratio", dir="desc")
    assert down.column("Code") == ["CHARLIE", "ALPHA", "BRAVO", "FOXTROT", "DELTA", "ECHO"]
    assert down.column("Input-output ratio") == [
        "1 : 4.50",
        "1 : 2.78",
        "1 : 0.80",
        "1 : 0.00",
        "—",
        "—",
    ]
    assert down.head("Input-output ratio")["aria-sort"] == "descending"
    assert "aria-sort" not in down.head("Code")
    assert query(down.head("Input-output ratio")["href"]) == {"sort": "io_ratio"}

    up = page(client, sort="io_ratio", dir="asc")
    assert up.column("Code") == ["FOXTROT", "BRAVO", "ALPHA", "CHARLIE", "DELTA", "ECHO"]
    assert up.head("Input-output ratio")["aria-sort"] == "ascending"
    assert query(up.head("Input-output ratio")["href"]) == {"sort": "io_ratio", "dir": "desc"}

    by_roi = page(client, sort="roi_pct", dir="desc")
    assert by_roi.column("ROI %") == ["350.0%", "177.8%", "-20.0%", "-100.0%", "—", "—"]
    by_revenue = page(client, sort="revenue", dir="desc")
    assert by_revenue.column("Code") == ["ALPHA", "CHARLIE", "BRAVO", "DELTA", "ECHO", "FOXTROT"]
    assert by_revenue.total["Revenue"]["text"] == "4,600.00"  # the total stays the total
    by_name = page(client, sort="name", dir="desc")
    assert by_name.column("Name")[0] == "Foxtrot push"


def test_sort_links_carry_the_filters_and_the_form_keeps_the_order(
    client: TestClient, shop: dict[str, Campaign]
) -> None:
    report = page(
        client, **{"from": "2026-04-01", "to": "2026-04-30", "channel": "email", "sort": "revenue"}
    )
    assert report.column("Code") == ["ECHO", "DELTA", "CHARLIE"]
    assert query(report.head("Profit")["href"]) == {
        "from": "2026-04-01",
        "to": "2026-04-30",
        "channel": "email",
        "sort": "profit",
    }
    assert '<input type="hidden" name="sort" value="revenue">' in report.html
    # A column this grouping does not have falls back to the report's order, quietly.
    channels = page(client, group_by="channel", sort="code", dir="desc")
    assert channels.column("Channel") == ["Email", "WeChat"]
    assert channels.head("Channel")["aria-sort"] == "ascending"


def test_a_bad_sort_is_named_and_ignored(client: TestClient, shop: dict[str, Campaign]) -> None:
    answer = client.get("/reports/roi", params={"sort": "salary", "dir": "up"})
    assert answer.status_code == 422
    assert "&#39;salary&#39; is not a column to sort by; it was ignored." in answer.text
    assert "&#39;up&#39; is not a sort direction (asc or desc); it was ignored." in answer.text
    assert Report(answer.text).column("Code")[0] == "ALPHA"
    assert client.get("/reports/roi.csv", params={"sort": "salary"}).status_code == 422


def test_the_exports_honour_the_order(client: TestClient, shop: dict[str, Campaign]) -> None:
    params = {"sort": "io_ratio", "dir": "desc"}
    text = client.get("/reports/roi.csv", params=params).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["Code"] for r in rows] == [
        "CHARLIE", "ALPHA", "BRAVO", "FOXTROT", "DELTA", "ECHO", "Total",
    ]  # fmt: skip
    assert not text.startswith("ROI report")  # the CSV has no title block
    sheet = load_workbook(io.BytesIO(client.get("/reports/roi.xlsx", params=params).content)).active
    assert sheet is not None
    header = int(sheet.freeze_panes[1:]) - 1  # type: ignore[index]
    codes = [sheet.cell(row, 1).value for row in range(header + 1, sheet.max_row + 1)]
    assert codes == ["CHARLIE", "ALPHA", "BRAVO", "FOXTROT", "DELTA", "ECHO", "Total"]


# --- 2. Drill-down and the breadcrumb ---------------------------------------------------------


def test_channel_to_its_campaigns_to_a_campaign(
    client: TestClient, shop: dict[str, Campaign]
) -> None:
    april = {"from": "2026-04-01", "to": "2026-04-30", "status": "draft", "compare": "1"}
    channels = page(client, group_by="channel", **april)
    assert channels.column("Channel") == ["Email", "WeChat"]
    wechat = channels.row("WeChat")["Channel"]["href"]
    assert query(wechat) == {**april, "channel": "wechat"}  # grouped by campaign, the default
    assert channels.total["Channel"]["href"] is None  # the total leads nowhere
    assert [c["text"] for c in channels.breadcrumb] == ["ROI report", "By channel"]
    assert channels.breadcrumb[-1]["aria-current"] == "page"

    campaigns = Report(client.get(wechat).text)
    # FOXTROT ran in March only: with the comparison it shows, as in the previous period only.
    assert campaigns.column("Code") == ["ALPHA", "BRAVO", "FOXTROT"]
    assert campaigns.row("ALPHA")["Code"]["href"] == f"/campaigns/{shop['ALPHA'].id}"
    assert [c["text"] for c in campaigns.breadcrumb] == [
        "ROI report", "Channel: WeChat", "By campaign",
    ]  # fmt: skip
    root = campaigns.breadcrumb[0]["href"]
    assert query(root) == {**april, "group_by": "channel"}
    assert client.get(campaigns.row("ALPHA")["Code"]["href"]).status_code == 200


def test_owners_and_months_drill_to_their_campaigns(
    client: TestClient, shop: dict[str, Campaign], people: dict[str, User]
) -> None:
    owners = page(client, group_by="owner")
    owen = owners.row("Owen")["Owner"]["href"]
    assert query(owen) == {"owner": str(people["owen"].id)}
    by_owen = Report(client.get(owen).text)
    assert by_owen.column("Code") == ["CHARLIE"]
    assert [c["text"] for c in by_owen.breadcrumb] == ["ROI report", "Owner: Owen", "By campaign"]

    months = page(client, group_by="month", **{"from": "2026-03-15", "to": "2026-04-30"})
    assert months.column("Month") == ["2026-03", "2026-04"]
    # A month leads to the campaigns of that month, within the period shown.
    assert query(months.row("2026-03")["Month"]["href"]) == {
        "from": "2026-03-15",
        "to": "2026-03-31",
    }
    assert query(months.row("2026-04")["Month"]["href"]) == {
        "from": "2026-04-01",
        "to": "2026-04-30",
    }
    march = Report(client.get(months.row("2026-03")["Month"]["href"]).text)
    assert march.total["Approved cost"]["text"] == "100.00"  # FOXTROT's 03-20, not ALPHA's 03-05


# --- 3. Period presets ------------------------------------------------------------------------


def test_presets_are_plain_dates_from_today_in_the_zone(
    client: TestClient, shop: dict[str, Campaign], fixed_today: datetime
) -> None:
    report = page(client, group_by="channel", compare="1")
    links = {p["text"]: query(p["href"]) for p in report.presets}
    common = {"group_by": "channel", "compare": "1"}
    assert links == {
        "This month": {"from": "2026-05-01", "to": "2026-05-31", **common},
        "Last month": {"from": "2026-04-01", "to": "2026-04-30", **common},
        "This quarter": {"from": "2026-04-01", "to": "2026-06-30", **common},
        "Last quarter": {"from": "2026-01-01", "to": "2026-03-31", **common},
        "Year to date": {"from": "2026-01-01", "to": "2026-05-14", **common},
        "Last year": {"from": "2025-01-01", "to": "2025-12-31", **common},
        "All dates": common,
    }
    assert [p["text"] for p in report.presets if p.get("aria-current")] == ["All dates"]
    last_month = next(p["href"] for p in report.presets if p["text"] == "Last month")
    chosen = Report(client.get(last_month).text)
    assert [p["text"] for p in chosen.presets if p.get("aria-current")] == ["Last month"]
    assert 'name="from" value="2026-04-01"' in chosen.html
    assert 'name="to" value="2026-04-30"' in chosen.html


# --- 4. The previous period -------------------------------------------------------------------


def test_april_against_march(client: TestClient, shop: dict[str, Campaign]) -> None:
    report = page(client, **{"from": "2026-04-01", "to": "2026-04-30", "compare": "1"})
    assert "Compared with the previous period, 2026-03-01 – 2026-03-31" in report.html
    assert report.column("Code") == ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT"]
    alpha = report.row("ALPHA")
    shown = {label: alpha[label]["text"] for label in report.labels}
    assert shown["Revenue"] == "1,500.00"
    assert shown["Revenue, previous period"] == "1,000.00"
    assert shown["Revenue, change"] == "+500.00"
    assert shown["Approved cost, previous period"] == "400.00"
    assert shown["Approved cost, change"] == "+100.00"
    assert shown["Input-output ratio, previous period"] == "1 : 2.50"
    assert shown["Input-output ratio, change"] == "+0.50"
    assert shown["ROI %, previous period"] == "150.0%"
    assert shown["ROI %, change"] == "+50.0 pp"

    bravo = report.row("BRAVO")  # no cost in March: no ratio then, so no change in it
    assert bravo["Revenue, change"]["text"] == "+800.00"
    assert bravo["Input-output ratio, change"]["text"] == "—"
    assert bravo["Input-output ratio, change"]["title"] == (
        "Previous period: No cost yet, from receipts or loyalty, so there is no ratio."
    )
    echo = report.row("ECHO")  # April only
    assert echo["Revenue, previous period"]["text"] == "—"
    assert echo["Revenue, previous period"]["title"] == "Nothing in the previous period."
    assert echo["Revenue, change"]["title"] == "Nothing in the previous period."
    foxtrot = report.row("FOXTROT")  # March only
    assert (
        foxtrot["Revenue"]["text"] == "—"
        and foxtrot["Revenue"]["title"] == "Nothing in this period."
    )
    assert foxtrot["Approved cost, previous period"]["text"] == "100.00"
    assert foxtrot["Approved cost, change"]["title"] == "Nothing in this period."

    total = {label: report.total[label]["text"] for label in report.labels}
    assert (
        total["Approved cost"] == "1,700.00" and total["Approved cost, previous period"] == "500.00"
    )
    assert total["Approved cost, change"] == "+1,200.00"
    assert total["Revenue"] == "3,600.00" and total["Revenue, change"] == "+2,600.00"
    assert (
        total["Input-output ratio"] == "1 : 2.12" and total["Input-output ratio, change"] == "+0.12"
    )
    assert total["ROI %"] == "111.8%" and total["ROI %, change"] == "+11.8 pp"
    assert "Nothing in the previous period." in report.html[report.html.index('id="roi-notes"') :]

    # Sorted by a change: the largest revenue gain first, the rows without one last.
    gains = page(
        client,
        **{"from": "2026-04-01", "to": "2026-04-30", "compare": "1"},
        sort="revenue_change",
        dir="desc",
    )
    assert gains.column("Code") == ["CHARLIE", "BRAVO", "ALPHA", "DELTA", "ECHO", "FOXTROT"]


def test_comparing_needs_a_whole_period(client: TestClient, shop: dict[str, Campaign]) -> None:
    report = page(client, compare="1", **{"from": "2026-04-01"})
    assert "Revenue, previous period" not in report.labels
    assert "choose both From and To" in report.html
    plain = page(client, **{"from": "2026-04-01", "to": "2026-04-30"})
    assert "Revenue, change" not in plain.labels and "choose both" not in plain.html


def test_the_compared_exports(
    client: TestClient, shop: dict[str, Campaign], fixed_today: datetime
) -> None:
    params = {
        "from": "2026-04-01",
        "to": "2026-04-30",
        "compare": "1",
        "channel": "wechat",
        "sort": "revenue",
        "dir": "desc",
    }
    rows = list(
        csv.DictReader(
            io.StringIO(client.get("/reports/roi.csv", params=params).content.decode("utf-8-sig"))
        )
    )
    assert [r["Code"] for r in rows] == ["ALPHA", "BRAVO", "FOXTROT", "Total"]
    assert (
        rows[0]["Revenue, previous period"] == "1000.00" and rows[0]["Revenue, change"] == "500.00"
    )
    assert rows[0]["Input-output ratio, previous period"] == "1 : 2.50"
    assert rows[0]["ROI %, change (pp)"] == "50.0"
    assert rows[2]["Revenue"] == "" and rows[2]["Approved cost, previous period"] == "100.00"

    answer = client.get("/reports/roi.xlsx", params=params)
    assert (
        answer.headers["content-disposition"]
        == 'attachment; filename="roi-by-campaign-20260514.xlsx"'
    )
    sheet = load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    title = [sheet.cell(row, 1).value for row in range(1, 9)]
    assert title == [
        "ROI report by campaign",
        "Period: 2026-04-01 – 2026-04-30",
        "Filters: Channel: WeChat",
        "Base currency: CNY",
        "Loyalty cost: included in the total cost (coupon discounts, bonus points and rewards"
        " at the value per point)",
        "Compared with the previous period: 2026-03-01 – 2026-03-31",
        "Sorted by Revenue, descending",
        "Generated at 2026-05-14 09:30 (Asia/Shanghai)",
    ]
    assert sheet.freeze_panes == "A11" and sheet.cell(10, 1).value == "Code"
    header = [c.value for c in sheet[10]]
    alpha = dict(zip(header, [c for c in sheet[11]], strict=True))
    assert alpha["Revenue, change"].value == 500
    assert alpha["Revenue, change"].number_format == "#,##0.00"
    assert D(str(alpha["ROI %, change (pp)"].value)) == D("0.5")  # +50.0 points as a fraction
    assert alpha["ROI %, change (pp)"].number_format == "+0.0%;-0.0%;0.0%"
    assert D(str(alpha["ROI %"].value)) == D("2")  # 200.0%
    assert sheet.auto_filter.ref == f"A10:{get_column_letter(len(header))}13"  # not the total


@pytest.mark.parametrize("name", ["sort", "dir", "compare", "loyalty_cost"])
def test_bad_values_in_the_new_parameters_are_never_a_500(
    client: TestClient, shop: dict[str, Campaign], name: str
) -> None:
    """The values of the outside fuzz run (tests/web/test_form_fuzz.py), each sent as it
    stands (already percent-encoded), with a comparison asked for."""
    from tests.web.test_form_fuzz import BAD_VALUES

    for raw in BAD_VALUES:
        for path in ("/reports/roi", "/reports/roi.xlsx") if name == "sort" else ("/reports/roi",):
            others = "&".join(
                f"{k}={v}"
                for k, v in {"compare": "1", "from": "2026-04-01", "to": "2026-04-30"}.items()
                if k != name
            )
            answer = client.get(f"{path}?{others}&{name}={raw}")
            assert answer.status_code < 500, (path, name, raw, answer.status_code)
            assert answer.status_code in (200, 422), (path, name, raw, answer.status_code)


def test_no_previous_period_before_the_earliest_date(
    client: TestClient, shop: dict[str, Campaign]
) -> None:
    report = page(client, compare="1", **{"from": "1900-01-01", "to": "1900-01-31"})
    assert "would start before 1900-01-01" in report.html
    assert "Revenue, change" not in report.labels
    first = page(client, compare="1", **{"from": "1900-02-01", "to": "1900-02-28"})
    assert "Compared with the previous period, 1900-01-01 – 1900-01-31" in first.html
