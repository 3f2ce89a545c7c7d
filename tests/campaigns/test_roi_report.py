"""The ROI report against a fixture computed by hand (base currency CNY).

Campaigns
  SPRING26  WeChat         budget 10,000 CNY
  EXPO26    Offline event  budget 1,000 USD at 7.10 (rate of its start, 03-01) = 7,100.00 CNY
  FREEBIE   Email          budget 0 CNY, no cost at all (the zero-cost campaign)
Rates USD: 2026-03-01 7.10, 2026-03-15 7.20
Receipts
  SPRING26  media     3,000 CNY 03-05 approved
            creative  1,000 CNY 03-20 paid
            media       500 CNY 04-02 submitted     -> awaiting approval
            gifts       800 CNY 03-07 rejected      -> excluded
            events      200 CNY 03-08 draft         -> excluded
            media      -300 CNY 04-05 approved      -> adjusts the 03-05 receipt after March closed
  EXPO26    events      100 USD 03-16 paid     at 7.20 = 720.00
            media        50 USD 03-10 approved at 7.10 = 355.00
Revenue
  SPRING26  6,000 (30 orders) 03-10, 4,000 (20 orders) 03-25, 2,000 (orders unknown) 04-10
  EXPO26    1,000 USD 03-20 at 7.20 = 7,200.00 (12 orders)
  FREEBIE   500 CNY 04-01 (5 orders)
March is closed after its revenue is recorded; the adjusting receipt comes after.

By hand
  SPRING26  cost 3,700 = 3,000 + 1,000 - 300; media 2,700; revenue 12,000
            ratio 12,000/3,700 = 3.24; ROI 8,300/3,700 = 224.3%; ROAS 12,000/2,700 = 4.44
            budget used 37.0%; cost per order 3,700/50 = 74.00
  EXPO26    cost 1,075; media 355; revenue 7,200; ratio 6.70; ROI 569.8%; ROAS 20.28
            budget used 1,075/7,100 = 15.1%; cost per order 1,075/12 = 89.58
  FREEBIE   cost 0 -> ratio, ROI, ROAS, cost per order shown as "—"; no budget -> budget
            used "—"
  Total     budget 17,100; cost 4,775; paid 1,720; pending 500; revenue 19,700
            ratio 4.13; ROI 312.6%; ROAS 19,700/3,055 = 6.45; profit 14,925
            budget used 27.9%; orders 67; cost per order 71.27
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import exports, periods, planning, rates, receipts, report_data, revenue
from campaigns.models import Campaign
from campaigns.rates import MissingRate
from campaigns.receipts import ReceiptInput
from campaigns.report_data import ReportFilter
from campaigns.reports import GROUPS, GroupBy, RoiReport, RoiRow, sort_rows, sorted_report
from core.accounts import users
from core.audit import Actor
from tests.campaigns.conftest import Staff, file_receipt, make_campaign

D = Decimal


@pytest.fixture
def fixture_db(db: Session, staff: Staff) -> Session:
    m, f = staff.marketer, staff.finance
    rates.set_rate(db, f, "USD", date(2026, 3, 1), D("7.10"), "CNY")
    rates.set_rate(db, f, "USD", date(2026, 3, 15), D("7.20"), "CNY")
    spring = make_campaign(db, staff, "SPRING26")
    expo = make_campaign(
        db,
        staff,
        "EXPO26",
        name="Trade expo",
        channel="offline_event",
        budget=D("1000"),
        currency="USD",
        ends_on=date(2026, 3, 31),
    )
    free = make_campaign(db, staff, "FREEBIE", name="Newsletter", channel="email", budget=D(0))

    def receipt(
        campaign_id: int,
        category: str,
        amount: str,
        currency: str,
        day: date,
        steps: list[str],
        **extra: Any,
    ) -> int:
        data = ReceiptInput(
            campaign_id=campaign_id,
            vendor=f"Vendor {category}",
            category=category,
            amount=D(amount),
            currency=currency,
            expense_date=day,
            invoice_number=f"{campaign_id}-{day}-{amount}",
            **extra,
        )
        r = receipts.create(db, m, data)
        for step in steps:  # four eyes: the marketer submits, finance decides
            receipts.transition(db, m if step == "submit" else f, r.id, step, reason="Not ours")
        return r.id

    first = receipt(spring.id, "media", "3000", "CNY", date(2026, 3, 5), ["submit", "approve"])
    receipt(spring.id, "creative", "1000", "CNY", date(2026, 3, 20), ["submit", "approve", "pay"])
    receipt(spring.id, "media", "500", "CNY", date(2026, 4, 2), ["submit"])
    receipt(spring.id, "gifts", "800", "CNY", date(2026, 3, 7), ["submit", "reject"])
    receipt(spring.id, "events", "200", "CNY", date(2026, 3, 8), [])
    receipt(expo.id, "events", "100", "USD", date(2026, 3, 16), ["submit", "approve", "pay"])
    receipt(expo.id, "media", "50", "USD", date(2026, 3, 10), ["submit", "approve"])
    for campaign_id, day, amount, currency, orders in [
        (spring.id, date(2026, 3, 10), "6000", "CNY", 30),
        (spring.id, date(2026, 3, 25), "4000", "CNY", 20),
        (spring.id, date(2026, 4, 10), "2000", "CNY", None),
        (expo.id, date(2026, 3, 20), "1000", "USD", 12),
        (free.id, date(2026, 4, 1), "500", "CNY", 5),
    ]:
        revenue.record(
            db,
            f,
            campaign_id=campaign_id,
            received_on=day,
            amount=D(amount),
            currency=currency,
            orders=orders,
        )
    periods.close_month(db, f, date(2026, 3, 1))
    receipt(
        spring.id,
        "media",
        "-300",
        "CNY",
        date(2026, 4, 5),
        ["submit", "approve"],
        adjusts_receipt_id=first,
    )
    return db


EXPECTED_ROWS: list[dict[str, Any]] = [
    {
        "code": "EXPO26",
        "name": "Trade expo",
        "budget": "7100.00",
        "approved_cost": "1075.00",
        "paid_cost": "720.00",
        "pending_cost": "0.00",
        "revenue": "7200.00",
        "io_ratio": "6.70",
        "roi_pct": "569.8",
        "roas": "20.28",
        "profit": "6125.00",
        "budget_used_pct": "15.1",
        "orders": 12,
        "cost_per_order": "89.58",
    },
    {
        "code": "FREEBIE",
        "name": "Newsletter",
        "budget": "0.00",
        "approved_cost": "0.00",
        "paid_cost": "0.00",
        "pending_cost": "0.00",
        "revenue": "500.00",
        "io_ratio": None,
        "roi_pct": None,
        "roas": None,
        "profit": "500.00",
        "budget_used_pct": None,
        "orders": 5,
        "cost_per_order": None,  # no cost: blank with its reason, never 0.00
    },
    {
        "code": "SPRING26",
        "name": "Spring sale",
        "budget": "10000.00",
        "approved_cost": "3700.00",
        "paid_cost": "1000.00",
        "pending_cost": "500.00",
        "revenue": "12000.00",
        "io_ratio": "3.24",
        "roi_pct": "224.3",
        "roas": "4.44",
        "profit": "8300.00",
        "budget_used_pct": "37.0",
        "orders": 50,
        "cost_per_order": "74.00",
    },
]
EXPECTED_TOTAL: dict[str, Any] = {
    "code": "Total",
    "budget": "17100.00",
    "approved_cost": "4775.00",
    "paid_cost": "1720.00",
    "pending_cost": "500.00",
    "revenue": "19700.00",
    "io_ratio": "4.13",
    "roi_pct": "312.6",
    "roas": "6.45",
    "profit": "14925.00",
    "budget_used_pct": "27.9",
    "orders": 67,
    "cost_per_order": "71.27",
}


def build(db: Session, **kwargs: object) -> RoiReport:
    return report_data.build(db, "CNY", ReportFilter(**kwargs))  # type: ignore[arg-type]


def test_json_matches_the_hand_computed_report(fixture_db: Session) -> None:
    report = build(fixture_db).as_json()
    assert report["currency"] == "CNY"
    assert report["rows"] == EXPECTED_ROWS
    assert report["total"] == EXPECTED_TOTAL


def test_display_and_reasons(fixture_db: Session) -> None:
    report = build(fixture_db)
    spring = next(r for r in report.rows if r.key["code"] == "SPRING26")
    free = next(r for r in report.rows if r.key["code"] == "FREEBIE")
    assert spring.display("io_ratio") == "1 : 3.24"
    assert spring.display("roi_pct") == "224.3%"
    assert spring.display("revenue") == "12,000.00"
    assert free.display("io_ratio") == "—"
    assert free.why_missing("io_ratio") == "No approved cost yet, so there is no ratio."
    assert spring.why_missing("io_ratio") is None


def test_csv_has_the_same_numbers_and_opens_in_excel(fixture_db: Session) -> None:
    data = exports.to_csv(build(fixture_db))
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for Chinese text
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["Code"] for r in rows] == ["EXPO26", "FREEBIE", "SPRING26", "Total"]
    spring, total = rows[2], rows[3]
    assert spring["Approved cost"] == "3700.00" and spring["Input-output ratio"] == "1 : 3.24"
    assert spring["ROI %"] == "224.3" and spring["Orders"] == "50"
    assert rows[1]["Input-output ratio"] == "" and rows[1]["ROI %"] == ""
    assert total["Revenue"] == "19700.00" and total["Cost per order"] == "71.27"


def test_xlsx_has_the_same_numbers(fixture_db: Session) -> None:
    sheet = load_workbook(io.BytesIO(exports.to_xlsx(build(fixture_db)))).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, [c.value for c in row], strict=True)) for row in sheet.iter_rows(2)]
    assert [r["Code"] for r in rows] == ["EXPO26", "FREEBIE", "SPRING26", "Total"]
    for got, want in zip(rows, [*EXPECTED_ROWS, EXPECTED_TOTAL], strict=True):
        for column, header_name in (
            ("approved_cost", "Approved cost"),
            ("revenue", "Revenue"),
            ("io_ratio", "Input-output ratio"),
            ("roi_pct", "ROI %"),
            ("budget_used_pct", "Budget used %"),
        ):
            expected = want[column]
            assert (got[header_name] is None) == (expected is None), (want["code"], column)
            if expected is not None:
                # Percentages are stored as fractions (224.3% is 2.243, shown as 0.0%).
                scale = 100 if header_name.endswith("%") else 1
                assert D(str(got[header_name])) * scale == D(str(expected)), (want["code"], column)


def test_grouped_by_month_and_channel(fixture_db: Session) -> None:
    months = report_data.build(fixture_db, "CNY", ReportFilter(), group_by="month").as_json()
    by_month = {r["month"]: r for r in months["rows"]}
    assert by_month["2026-03"]["approved_cost"] == "5075.00"
    assert by_month["2026-03"]["revenue"] == "17200.00"
    assert by_month["2026-04"]["approved_cost"] == "-300.00"
    assert by_month["2026-04"]["pending_cost"] == "500.00"
    assert by_month["2026-04"]["revenue"] == "2500.00"
    assert by_month["2026-03"]["budget"] is None  # budgets are per campaign, not per month
    assert months["total"]["approved_cost"] == EXPECTED_TOTAL["approved_cost"]

    channels = report_data.build(fixture_db, "CNY", ReportFilter(), group_by="channel").as_json()
    assert [r["channel"] for r in channels["rows"]] == ["Email", "Offline event", "WeChat"]
    assert channels["rows"][2]["approved_cost"] == "3700.00"
    expected_total = {k: v for k, v in EXPECTED_TOTAL.items() if k != "code"}
    assert channels["total"] == {"channel": "Total", **expected_total}


def test_filters(fixture_db: Session) -> None:
    april = build(fixture_db, start=date(2026, 4, 1), end=date(2026, 4, 30)).as_json()
    assert [r["code"] for r in april["rows"]] == ["FREEBIE", "SPRING26"]  # EXPO26 ended in March
    assert april["total"]["approved_cost"] == "-300.00"
    assert april["total"]["revenue"] == "2500.00"
    wechat = build(fixture_db, channel="wechat").as_json()
    assert [r["code"] for r in wechat["rows"]] == ["SPRING26"]
    assert wechat["total"]["approved_cost"] == "3700.00"


def test_a_missing_rate_names_the_currency_and_date(fixture_db: Session, staff: Staff) -> None:
    campaign = make_campaign(
        fixture_db,
        staff,
        "EURO",
        currency="CNY",
        starts_on=date(2026, 4, 1),
        ends_on=date(2026, 4, 30),
    )
    # A draft needs no rate (drafts are not cost); the submitted one on 04-03 does.
    file_receipt(fixture_db, campaign.id, "10", currency="EUR", day=date(2026, 4, 2), steps=())
    file_receipt(
        fixture_db, campaign.id, "5", currency="EUR", day=date(2026, 4, 3), steps=("submit",)
    )
    with pytest.raises(MissingRate, match="No exchange rate for EUR on or before 2026-04-03"):
        build(fixture_db)


def test_a_foreign_receipt_with_no_rates_at_all(db: Session, staff: Staff) -> None:
    campaign = make_campaign(db, staff, "NORATES")
    file_receipt(db, campaign.id, "10", currency="USD", day=date(2026, 3, 9), steps=("submit",))
    with pytest.raises(MissingRate, match="No exchange rate for USD on or before 2026-03-09"):
        build(db)


def test_narrowed_reports_match_the_full_one(fixture_db: Session) -> None:
    full = {r["code"]: r for r in build(fixture_db).as_json()["rows"]}
    spring_id = fixture_db.scalar(select(Campaign.id).where(Campaign.code == "SPRING26"))
    assert spring_id is not None
    one = report_data.build(fixture_db, "CNY", ReportFilter(campaign_ids=(spring_id,))).as_json()
    assert one["rows"] == [full["SPRING26"]]
    assert {k: v for k, v in one["total"].items() if k != "code"} == {
        k: v for k, v in full["SPRING26"].items() if k not in ("code", "name")
    }
    assert report_data.build(fixture_db, "CNY", ReportFilter(campaign_ids=())).rows == []
    live = report_data.build(fixture_db, "CNY", ReportFilter(statuses=("ended",))).rows
    assert live == []  # the fixture's campaigns are all drafts


HOSTILE_CAMPAIGN = '=HYPERLINK("http://x","y")'
HOSTILE_CHANNEL = "+1+1"
HOSTILE_OWNER = "@SUM(A1)"
HOSTILE_OWNER_2 = "-2+3"
TABBED_CAMPAIGN = "\tTabbed sale"


@pytest.fixture
def hostile_db(db: Session, staff: Staff) -> Session:
    """Campaigns whose names, channel and owners read as spreadsheet formulas; EVIL has 50 of
    approved cost and no revenue, so its profit (-50.00) and ROI (-100.0%) are negative."""
    planning.save_channel(db, staff.admin, code="evil", name=HOSTILE_CHANNEL)
    owners = [
        users.create(
            db,
            Actor.system(),
            email=f"owner{n}@example.com",
            name=name,
            roles=["marketer"],
            password="long-password-1",
        )
        for n, name in enumerate((HOSTILE_OWNER, HOSTILE_OWNER_2))
    ]
    evil = make_campaign(
        db, staff, "EVIL", name=HOSTILE_CAMPAIGN, channel="evil", owner_id=owners[0].id
    )
    file_receipt(db, evil.id, "50")
    tabbed = make_campaign(db, staff, "TABBED", owner_id=owners[1].id)
    tabbed.name = TABBED_CAMPAIGN  # the service strips names; an older row or an import may not
    db.flush()
    return db


def grouped(db: Session, group_by: GroupBy) -> RoiReport:
    return report_data.build(db, "CNY", ReportFilter(), group_by=group_by)


def _csv_rows(report: RoiReport) -> list[dict[str, str]]:
    data = exports.to_csv(report)
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _xlsx_rows(report: RoiReport) -> list[dict[str, Any]]:
    sheet = load_workbook(io.BytesIO(exports.to_xlsx(report))).active
    assert sheet is not None
    header = [str(c.value) for c in sheet[1]]
    return [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(2)]


def _assert_text_cell(cell: Any, raw: str) -> None:
    """An XLSX cell holding `raw` as quoted text, never a formula."""
    assert cell.data_type == "s" and cell.data_type != "f", (raw, cell.data_type)
    assert cell.value == "'" + raw


def test_csv_cells_that_read_as_formulas_are_quoted_and_numbers_stay_numbers(
    hostile_db: Session,
) -> None:
    by_code = {r["Code"]: r for r in _csv_rows(grouped(hostile_db, "campaign"))}
    assert by_code["EVIL"]["Name"] == "'" + HOSTILE_CAMPAIGN
    assert by_code["TABBED"]["Name"] == "'" + TABBED_CAMPAIGN
    assert by_code["EVIL"]["Profit"] == "-50.00"  # a negative number, not quoted
    assert by_code["EVIL"]["ROI %"] == "-100.0"
    assert by_code["EVIL"]["Approved cost"] == "50.00"
    assert by_code["Total"]["Profit"] == "-50.00"
    by_channel = {r["Channel"]: r for r in _csv_rows(grouped(hostile_db, "channel"))}
    assert by_channel["'" + HOSTILE_CHANNEL]["Profit"] == "-50.00"
    owners = {r["Owner"] for r in _csv_rows(grouped(hostile_db, "owner"))}
    assert {"'" + HOSTILE_OWNER, "'" + HOSTILE_OWNER_2} <= owners
    for group_by in GROUPS:
        for row in _csv_rows(grouped(hostile_db, group_by)):
            for value in row.values():
                assert not value.startswith(("=", "+", "@", "\t", "\r")), (group_by, value)
                assert not value.startswith("-") or D(value) < 0, (group_by, value)


def test_xlsx_cells_that_read_as_formulas_are_text_and_numbers_stay_numbers(
    hostile_db: Session,
) -> None:
    rows = {r["Code"].value: r for r in _xlsx_rows(grouped(hostile_db, "campaign"))}
    _assert_text_cell(rows["EVIL"]["Name"], HOSTILE_CAMPAIGN)
    _assert_text_cell(rows["TABBED"]["Name"], TABBED_CAMPAIGN)
    for header, value in (("Profit", -50), ("ROI %", -1), ("Approved cost", 50)):  # -100.0%
        cell = rows["EVIL"][header]
        assert cell.data_type == "n" and D(str(cell.value)) == value, (header, cell.value)
    assert rows["Total"]["Profit"].data_type == "n" and rows["Total"]["Profit"].value == -50
    channels = {r["Channel"].value: r for r in _xlsx_rows(grouped(hostile_db, "channel"))}
    _assert_text_cell(channels["'" + HOSTILE_CHANNEL]["Channel"], HOSTILE_CHANNEL)
    assert channels["'" + HOSTILE_CHANNEL]["Profit"].value == -50
    owners = {r["Owner"].value: r for r in _xlsx_rows(grouped(hostile_db, "owner"))}
    _assert_text_cell(owners["'" + HOSTILE_OWNER]["Owner"], HOSTILE_OWNER)
    _assert_text_cell(owners["'" + HOSTILE_OWNER_2]["Owner"], HOSTILE_OWNER_2)
    for group_by in GROUPS:
        for row in _xlsx_rows(grouped(hostile_db, group_by)):
            assert all(cell.data_type != "f" for cell in row.values()), group_by


def test_sorting_puts_missing_figures_last_both_ways(fixture_db: Session) -> None:
    """By the hand-computed figures above: input-output ratio EXPO 6.70, SPRING 3.24,
    FREEBIE "—" (no cost); cost per order EXPO 89.58, SPRING 74.00, FREEBIE "—"."""
    report = build(fixture_db)

    def codes(column: str, descending: bool) -> list[str]:
        ordered = sorted_report(report, column, descending=descending)
        assert ordered.total == report.total  # the total stays the total
        return [r.key["code"] for r in ordered.rows]

    assert codes("io_ratio", True) == ["EXPO26", "SPRING26", "FREEBIE"]
    assert codes("io_ratio", False) == ["SPRING26", "EXPO26", "FREEBIE"]
    assert codes("cost_per_order", False) == ["SPRING26", "EXPO26", "FREEBIE"]
    assert codes("revenue", True) == ["SPRING26", "EXPO26", "FREEBIE"]  # 12,000 · 7,200 · 500
    assert codes("orders", True) == ["SPRING26", "EXPO26", "FREEBIE"]  # 50 · 12 · 5
    assert codes("name", True) == ["EXPO26", "SPRING26", "FREEBIE"]  # Trade, Spring, News…
    assert codes("code", True) == ["SPRING26", "FREEBIE", "EXPO26"]
    # Equal figures keep the report's order: all three have 0.00 awaiting approval but SPRING.
    assert codes("pending_cost", False) == ["EXPO26", "FREEBIE", "SPRING26"]
    assert codes("pending_cost", True) == ["SPRING26", "EXPO26", "FREEBIE"]
    ids = {r.key["code"]: r.campaign_id for r in report.rows}
    assert ids["SPRING26"] == fixture_db.scalar(
        select(Campaign.id).where(Campaign.code == "SPRING26")
    )


def test_text_sorts_as_people_read_it() -> None:
    rows = [RoiRow({"channel": name}, {}) for name in ("WeChat", "email", "Email", "app")]
    assert [r.key["channel"] for r in sort_rows(rows, "channel")] == [
        "app",
        "Email",
        "email",
        "WeChat",
    ]
