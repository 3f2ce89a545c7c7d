"""Issue 12, figures: booking once, rows that add up, local months with summer time, whole
orders, refunds in the month they are made, the document-date range, and the month close.

Each test here fails on the code before the fix (see the docstrings for the old figure)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import (
    attachments,
    exports,
    imports,
    periods,
    rates,
    receipts,
    report_data,
    revenue,
)
from campaigns.models import Campaign, ExchangeRate
from campaigns.receipts import ReceiptInput
from campaigns.report_data import ReportFilter
from campaigns.reports import RoiReport
from core.errors import Conflict, RetainError
from loyalty import reports as loyalty_reports
from loyalty.models import Purchase, Refund
from tests.campaigns.conftest import Staff, file_receipt, make_campaign
from tests.campaigns.test_attachments import PDF
from tests.loyalty.conftest import Shop

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")


def build(db: Session, group_by: Any = "campaign", **f: Any) -> RoiReport:
    return loyalty_reports.roi(db, "CNY", ReportFilter(**f), group_by, zone=SHANGHAI)


def money(report: RoiReport, column: str) -> tuple[list[Decimal], Decimal]:
    rows = [r.values[column] for r in report.rows]
    total = report.total.values[column]
    assert all(isinstance(v, Decimal) for v in rows) and isinstance(total, Decimal)
    return rows, total  # type: ignore[return-value]


# --- 1. Booked once: the exact product, rounded half-up to the cent --------------------------


def test_book_rounds_the_exact_product_once() -> None:
    """101.58 GBP at 9.1234 is 926.754972 CNY: 926.75 (the old path rounded it to 926.7550,
    then to 926.76)."""
    assert rates.book(D("101.58"), D("9.1234"), "CNY") == D("926.75")
    assert rates.book(D("1.00"), D("1.005"), "CNY") == D("1.01")  # a half rounds up
    assert rates.book(D("-1.00"), D("1.005"), "CNY") == D("-1.01")  # away from zero
    assert rates.book(D("10.005"), 1, "CNY") == D("10.01")
    assert rates.book(D("100"), D("0.0123456"), "JPY") == D("1")  # JPY has no minor unit
    assert rates.book(D("1"), D("1.23456"), "KWD") == D("1.235")  # three decimals
    big = rates.book(D("999999999999.9999"), D("999999.99999999"), "CNY")
    # 10^18 − 10,100 + 10^-12, exactly: no digit lost before the one rounding.
    assert big == D("999999999999989900.00")


def test_a_foreign_receipt_and_purchase_are_booked_once(db: Session, staff: Staff) -> None:
    """The issue's case through every path: the service's to_base (purchases), the
    vectorised convert (reports, bulk imports) and the report: 926.75, never 926.76."""
    rates.set_rate(db, staff.finance, "GBP", date(2026, 3, 1), D("9.1234"), "CNY")
    assert rates.to_base(db, D("101.58"), "GBP", date(2026, 3, 5), "CNY") == D("926.75")
    campaign = make_campaign(db, staff)
    file_receipt(db, campaign.id, "101.58", currency="GBP")
    report = build(db)
    assert report.rows[0].values["approved_cost"] == D("926.75")
    shop = Shop(db)
    sold = shop.buy(
        None,
        "101.58",
        currency="GBP",
        campaign_code=campaign.code,
        at=datetime(2026, 3, 5, 4, tzinfo=UTC),
    )
    assert sold.purchase.base_amount == D("926.75")
    assert build(db).rows[0].values["revenue"] == D("926.75")


def test_rows_add_up_to_the_total(db: Session, staff: Staff) -> None:
    """Two campaigns, each with 1.00 USD of revenue at 1.005 and a 10.005 CNY receipt: each
    is booked 1.01 and 10.01, so the rows are 1.01 + 1.01 and the total 2.02 (the old report
    summed unrounded amounts: rows 1.01 + 1.01, total 2.01; costs 10.01 + 10.01 against
    20.01). The monthly and channel reports add up to the same total."""
    rates.set_rate(db, staff.finance, "USD", date(2026, 3, 1), D("1.005"), "CNY")
    for code in ("AAA", "BBB"):
        campaign = make_campaign(db, staff, code)
        revenue.record(
            db,
            staff.finance,
            campaign_id=campaign.id,
            received_on=date(2026, 3, 9),
            amount=D("1.00"),
            currency="USD",
        )
        file_receipt(db, campaign.id, "10.005")
    for group_by in ("campaign", "month", "channel", "owner"):
        report = build(db, group_by)
        for column in ("revenue", "approved_cost", "profit"):
            rows, total = money(report, column)
            assert sum(rows, D(0)) == total, (group_by, column)
        assert report.total.values["revenue"] == D("2.02")
        assert report.total.values["approved_cost"] == D("20.02")


def test_many_random_documents_add_up(db: Session, staff: Staff) -> None:
    """300 documents in three currencies with 4-decimal rates and amounts: every row is the
    sum of its documents booked one by one, and the rows add up to the total."""
    import random

    rng = random.Random(12)  # noqa: S311 - test data, not secrets
    rate_of = {"USD": D("7.1234"), "GBP": D("9.1234"), "EUR": D("7.8765")}
    for currency, rate in rate_of.items():
        rates.set_rate(db, staff.finance, currency, date(2026, 3, 1), rate, "CNY")
    campaigns = [make_campaign(db, staff, f"C{n}") for n in range(4)]
    expected: dict[str, Decimal] = {c.code: D(0) for c in campaigns}
    for _ in range(300):
        campaign = rng.choice(campaigns)
        currency = rng.choice(["CNY", "USD", "GBP", "EUR"])
        amount = D(rng.randrange(1, 10_000_000)) / 10_000  # up to four decimals
        day = date(2026, 3, rng.randrange(1, 29))
        revenue.record(
            db,
            staff.finance,
            campaign_id=campaign.id,
            received_on=day,
            amount=amount,
            currency=currency,
        )
        exact = amount * rate_of.get(currency, D(1))  # at most 16 digits: exact
        expected[campaign.code] += exact.quantize(D("0.01"), rounding=ROUND_HALF_UP)
    report = build(db)
    assert {r.key["code"]: r.values["revenue"] for r in report.rows} == expected
    assert report.total.values["revenue"] == sum(expected.values(), D(0))


# --- 3. Local months with summer time, on both databases -------------------------------------


@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "America/New_York"])
def test_purchases_land_in_their_own_local_month(db: Session, staff: Staff, zone_name: str) -> None:
    """Each purchase counts in the month of its own local date. In Berlin 2026-03-31 22:30 UTC
    is 1 April 00:30 (summer time) and 2026-01-31 22:30 UTC is 31 January 23:30 (winter);
    the old SQLite path shifted every row by today's offset, so one of them landed in the
    wrong month whatever the day."""
    zone = ZoneInfo(zone_name)
    campaign = make_campaign(db, staff, starts_on=date(2025, 1, 1), ends_on=date(2026, 12, 31))
    shop = Shop(db)
    local_times = [
        datetime(2026, 4, 1, 0, 30, tzinfo=zone),  # summer time, just after midnight
        datetime(2026, 3, 31, 23, 30, tzinfo=zone),  # summer time, just before midnight
        datetime(2026, 1, 31, 23, 30, tzinfo=zone),  # winter time
        datetime(2026, 2, 1, 0, 30, tzinfo=zone),
        datetime(2025, 10, 31, 23, 30, tzinfo=zone),
        datetime(2025, 11, 1, 0, 30, tzinfo=zone),
        datetime(2026, 6, 30, 23, 59, 59, tzinfo=zone),
        datetime(2026, 7, 1, 0, 0, 0, tzinfo=zone),
    ]
    expected: dict[str, Decimal] = {}
    for n, local in enumerate(local_times, start=1):
        at = local.astimezone(UTC)
        amount = D(n * 100)
        shop.buy(None, str(amount), campaign_code=campaign.code, at=at)
        month = f"{local:%Y-%m}"
        expected[month] = expected.get(month, D(0)) + amount
    report = loyalty_reports.roi(db, "CNY", ReportFilter(), "month", zone=zone)
    assert {r.key["month"]: r.values["revenue"] for r in report.rows} == expected
    # Each row's own local date, next to Python's zoneinfo, for every purchase.
    day = loyalty_reports.local_day(db, zone, Purchase.occurred_at, [])
    rows = db.execute(select(Purchase.occurred_at, day)).all()
    assert rows
    for at, local_day in rows:
        assert str(local_day)[:10] == at.astimezone(zone).date().isoformat(), at


def test_offset_spans_follow_zoneinfo() -> None:
    zone = ZoneInfo("Europe/Berlin")
    first = datetime(2024, 1, 1, tzinfo=UTC)
    spans = loyalty_reports.offset_spans(zone, first, datetime(2027, 1, 1, tzinfo=UTC))
    assert len(spans) == 1 + 6  # three years, two changes each
    assert spans[1] == (datetime(2024, 3, 31, 1, 0, tzinfo=UTC), 7200)
    assert spans[2] == (datetime(2024, 10, 27, 1, 0, tzinfo=UTC), 3600)
    fixed = loyalty_reports.offset_spans(SHANGHAI, first, datetime(2027, 1, 1, tzinfo=UTC))
    assert fixed == [(first, 8 * 3600)]


# --- 4. Orders are whole numbers; an empty figure says why ----------------------------------


def test_orders_are_whole_numbers_in_csv_and_xlsx(db: Session, staff: Staff) -> None:
    """One campaign with 79 orders, one with none recorded: the CSV said 79.0 and the XLSX
    cell was a float with the General format. Cost per order is empty without cost (it was
    0.00) and without orders."""
    counted = make_campaign(db, staff, "COUNTED")
    unknown = make_campaign(db, staff, "UNKNOWN")
    for campaign, orders in ((counted, 79), (unknown, None)):
        revenue.record(
            db,
            staff.finance,
            campaign_id=campaign.id,
            received_on=date(2026, 3, 9),
            amount=D("1000"),
            currency="CNY",
            orders=orders,
        )
    file_receipt(db, unknown.id, "300")
    report = build(db)
    by_code = {r.key["code"]: r for r in report.rows}
    assert by_code["COUNTED"].values["cost_per_order"] is None  # orders, no cost
    assert by_code["COUNTED"].why_missing("cost_per_order") == (
        "No approved cost yet, so there is no cost per order."
    )
    assert by_code["UNKNOWN"].values["orders"] is None
    assert by_code["UNKNOWN"].why_missing("orders") == "No orders recorded."
    assert by_code["UNKNOWN"].why_missing("cost_per_order") == "No orders recorded."
    assert ("Orders", ["No orders recorded."]) in report.notes()

    rows = list(csv.DictReader(io.StringIO(exports.to_csv(report).decode("utf-8-sig"))))
    assert [(r["Code"], r["Orders"], r["Cost per order"]) for r in rows] == [
        ("COUNTED", "79", ""),
        ("UNKNOWN", "", ""),
        ("Total", "79", "3.80"),
    ]

    sheet = load_workbook(io.BytesIO(exports.to_xlsx(report))).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    column = header.index("Orders")
    cells = [row[column] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells] == [79, None, 79]
    assert all(isinstance(c.value, int) for c in (cells[0], cells[2]))
    assert cells[0].number_format == "#,##0" and cells[2].number_format == "#,##0"
    note = sheet[1][column].comment
    assert note is not None and "No orders recorded." in note.text
    assert sheet.max_row == 4  # the rows and the total, nothing under them


# --- 5. A refund counts in the month it is made; the range selects documents -----------------


def test_a_refund_in_october_leaves_september_alone(db: Session, staff: Staff) -> None:
    """Bought 300.00 in September, 100.00 of it refunded in October; another 200.00 bought in
    September and refunded in full in October. September: 500.00 over 2 orders, always.
    October: −300.00 and −1 order (the full refund takes its order back). The old report put
    the refunds in September (200.00 over 1 order)."""
    campaign = make_campaign(db, staff, starts_on=date(2026, 9, 1), ends_on=date(2026, 9, 30))
    shop = Shop(db)
    sept = datetime(2026, 9, 10, 4, tzinfo=UTC)
    october = datetime(2026, 10, 5, 4, tzinfo=UTC)
    shop.buy(None, "300.00", campaign_code=campaign.code, at=sept, ext="P1")
    shop.buy(None, "200.00", campaign_code=campaign.code, at=sept, ext="P2")
    september_alone = build(db, start=date(2026, 9, 1), end=date(2026, 9, 30))
    assert september_alone.total.values["revenue"] == D("500.00")
    shop.refund("P1", "100.00", at=october)
    shop.refund("P2", None, at=october)

    months = {r.key["month"]: r.values for r in build(db, "month").rows}
    assert (months["2026-09"]["revenue"], months["2026-09"]["orders"]) == (D("500.00"), 2)
    assert (months["2026-10"]["revenue"], months["2026-10"]["orders"]) == (D("-300.00"), -1)
    again = build(db, start=date(2026, 9, 1), end=date(2026, 9, 30))
    assert again.as_json() == september_alone.as_json()
    october_alone = build(db, start=date(2026, 10, 1), end=date(2026, 10, 31))
    assert october_alone.total.values["revenue"] == D("-300.00")
    assert october_alone.total.values["cost_per_order"] is None
    lifetime = build(db)
    assert (lifetime.total.values["revenue"], lifetime.total.values["orders"]) == (D("200.00"), 1)


def test_a_month_filtered_alone_equals_its_monthly_row(db: Session, staff: Staff) -> None:
    """A campaign that ran in August was paid for and brought revenue in September too: the
    September report counts those documents (the old one left the campaign out, because it
    did not run in September), so it equals the September row of the monthly report."""
    august = make_campaign(
        db, staff, "AUGUST", starts_on=date(2026, 8, 1), ends_on=date(2026, 8, 31)
    )
    file_receipt(db, august.id, "400", day=date(2026, 8, 20))
    file_receipt(db, august.id, "150", day=date(2026, 9, 3))
    for day, amount in ((date(2026, 8, 25), "900"), (date(2026, 9, 12), "700")):
        revenue.record(
            db,
            staff.finance,
            campaign_id=august.id,
            received_on=day,
            amount=D(amount),
            currency="CNY",
            orders=3,
        )
    shop = Shop(db)
    shop.buy(None, "80.00", campaign_code="AUGUST", at=datetime(2026, 9, 30, 16, 30, tzinfo=UTC))
    monthly = {r.key["month"]: r for r in build(db, "month").rows}
    for start, end, month in (
        (date(2026, 8, 1), date(2026, 8, 31), "2026-08"),
        (date(2026, 9, 1), date(2026, 9, 30), "2026-09"),
    ):
        alone = build(db, "month", start=start, end=end)
        assert [r.values for r in alone.rows] == [monthly[month].values]
        by_campaign = build(db, start=start, end=end)
        assert [r.key["code"] for r in by_campaign.rows] == ["AUGUST"]
        for column in ("approved_cost", "revenue", "orders"):
            assert by_campaign.total.values[column] == monthly[month].values[column]
    # 16:30 UTC on 30 September is 00:30 on 1 October in Shanghai: not September's.
    assert monthly["2026-09"].values["revenue"] == D("700.00")
    assert monthly["2026-10"].values["revenue"] == D("80.00")


def test_campaigns_are_chosen_by_their_run_dates_apart(db: Session, staff: Staff) -> None:
    march = make_campaign(db, staff, "MARCH", starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31))
    may = make_campaign(db, staff, "MAY", starts_on=date(2026, 5, 1), ends_on=date(2026, 5, 31))
    file_receipt(db, march.id, "100", day=date(2026, 4, 2))
    file_receipt(db, may.id, "200", day=date(2026, 4, 20))
    april_docs = build(db, start=date(2026, 4, 1), end=date(2026, 4, 30))
    assert [r.key["code"] for r in april_docs.rows] == ["MARCH", "MAY"]
    assert april_docs.total.values["approved_cost"] == D("300.00")
    ran_in_march = build(
        db,
        start=date(2026, 4, 1),
        end=date(2026, 4, 30),
        running_from=date(2026, 3, 1),
        running_to=date(2026, 3, 31),
    )
    assert [r.key["code"] for r in ran_in_march.rows] == ["MARCH"]
    assert ran_in_march.total.values["approved_cost"] == D("100.00")
    assert [r.key["code"] for r in build(db, running_from=date(2026, 5, 15)).rows] == ["MAY"]


# --- 6. A closed month is frozen --------------------------------------------------------------


def test_a_month_cannot_close_while_receipts_await_approval(db: Session, staff: Staff) -> None:
    campaign = make_campaign(db, staff)
    waiting = file_receipt(db, campaign.id, "1234.5", steps=("submit",), vendor="Tencent Ads")
    file_receipt(db, campaign.id, "99", day=date(2026, 4, 1), steps=("submit",))  # April's
    with pytest.raises(Conflict) as refused:
        periods.close_month(db, staff.finance, date(2026, 3, 1))
    assert refused.value.code == "period.receipts_pending"
    assert f"#{waiting} Tencent Ads 1,234.50 CNY" in refused.value.message
    assert refused.value.details == [
        {
            "id": waiting,
            "vendor": "Tencent Ads",
            "amount": "1234.50",
            "currency": "CNY",
            "expense_date": "2026-03-05",
            "url": f"/receipts/{waiting}",
        }
    ]
    assert not periods.is_closed(db, date(2026, 3, 1))


def test_a_month_cannot_close_without_its_rates(db: Session, staff: Staff) -> None:
    campaign = make_campaign(db, staff)
    file_receipt(db, campaign.id, "10", currency="USD", day=date(2026, 3, 9))
    with pytest.raises(Conflict, match="No exchange rate for USD on or before 2026-03-09"):
        periods.close_month(db, staff.finance, date(2026, 3, 1), "CNY")
    rates.set_rate(db, staff.finance, "USD", date(2026, 3, 9), D("7.1"), "CNY")
    periods.close_month(db, staff.finance, date(2026, 3, 1), "CNY")


def _everything_refused(
    db: Session, staff: Staff, campaign: Campaign, draft: int, root: Path
) -> None:
    """Every write dated in (or reaching into) March 2026, each refused."""
    f, m = staff.finance, staff.marketer
    march = date(2026, 3, 20)
    receipt = ReceiptInput(
        campaign_id=campaign.id,
        vendor="Late",
        category="media",
        amount=D("5"),
        currency="CNY",
        expense_date=march,
    )
    attempts: list[tuple[str, Any]] = [
        ("receipt create", lambda: receipts.create(db, m, receipt)),
        ("receipt edit", lambda: receipts.update(db, m, draft, receipt)),
        ("receipt submit", lambda: receipts.transition(db, m, draft, "submit")),
        ("receipt delete", lambda: receipts.delete(db, m, draft)),
        ("attach", lambda: attachments.add(db, m, draft, "a.pdf", PDF, root)),
        (
            "revenue",
            lambda: revenue.record(
                db,
                f,
                campaign_id=campaign.id,
                received_on=march,
                amount=D("1"),
                currency="CNY",
            ),
        ),
        ("rate in March", lambda: rates.set_rate(db, f, "USD", march, D("7.5"), "CNY")),
        # February's rate converts March's USD documents: it cannot change now.
        ("changed rate", lambda: rates.set_rate(db, f, "USD", date(2026, 2, 1), D("9"), "CNY")),
        # February is open, but a rate there would convert March's USD documents.
        ("rate before", lambda: rates.set_rate(db, f, "USD", date(2026, 2, 20), D("8"), "CNY")),
        (
            "receipts import",
            lambda: imports.import_receipts(
                db,
                m,
                b"campaign_code,vendor,category,amount,currency,expense_date\n"
                b"SPRING26,Late,media,5,CNY,2026-03-20\n",
            ),
        ),
        (
            "revenue import",
            lambda: imports.import_revenue(
                db,
                f,
                b"campaign_code,received_on,amount,currency\nSPRING26,2026-03-20,5,CNY\n",
            ),
        ),
        (
            "rates import",
            lambda: imports.import_rates(db, f, b"date,currency,rate\n2026-03-20,USD,7.5\n", "CNY"),
        ),
    ]
    for name, attempt in attempts:
        with pytest.raises(RetainError, match="2026-03 is closed") as refused, db.begin_nested():
            attempt()
        assert refused.value.code in ("period.closed", "import.failed"), name


def test_a_closed_month_is_frozen(db: Session, staff: Staff, tmp_path: Path) -> None:
    """Close March, try every write dated in it (receipts, attachments, revenue, rates, CSV
    imports): all refused, and March's report is unchanged to the cent. The old code let
    revenue and exchange rates dated in a closed month in."""
    campaign = make_campaign(db, staff)
    rates.set_rate(db, staff.finance, "USD", date(2026, 2, 1), D("7.1234"), "CNY")
    file_receipt(db, campaign.id, "101.58", currency="USD", day=date(2026, 3, 10))
    file_receipt(db, campaign.id, "500", day=date(2026, 3, 11), steps=("submit", "approve", "pay"))
    revenue.record(
        db,
        staff.finance,
        campaign_id=campaign.id,
        received_on=date(2026, 3, 15),
        amount=D("3333.33"),
        currency="USD",
        orders=4,
    )
    draft = file_receipt(db, campaign.id, "42", day=date(2026, 3, 12), steps=())
    march = {"start": date(2026, 3, 1), "end": date(2026, 3, 31)}
    periods.close_month(db, staff.finance, date(2026, 3, 1))
    before = [build(db, group_by, **march).as_json() for group_by in ("campaign", "month")]
    monthly_before = build(db, "month").as_json()["rows"][0]

    _everything_refused(db, staff, campaign, draft, tmp_path)

    after = [build(db, group_by, **march).as_json() for group_by in ("campaign", "month")]
    assert after == before
    assert build(db, "month").as_json()["rows"][0] == monthly_before
    assert db.scalar(select(ExchangeRate.rate).where(ExchangeRate.currency == "USD")) == D("7.1234")
    # April stays open: a rate dated after March converts nothing in it. An earlier one
    # still would (from 20 February up to that April rate).
    rates.set_rate(db, staff.finance, "USD", date(2026, 4, 1), D("7.3"), "CNY")
    assert build(db, "month", **march).as_json() == before[1]
    with pytest.raises(Conflict, match="until its next rate on 2026-04-01"):
        rates.set_rate(db, staff.finance, "USD", date(2026, 2, 20), D("8"), "CNY")


# --- 7. A report error says who can fix it, and where ----------------------------------------


def test_a_missing_rate_says_finance_can_enter_it_and_where(db: Session, staff: Staff) -> None:
    campaign = make_campaign(db, staff)
    file_receipt(db, campaign.id, "10", currency="EUR", day=date(2026, 3, 9), steps=("submit",))
    with pytest.raises(rates.MissingRate) as missing:
        report_data.build(db, "CNY", ReportFilter())
    message = missing.value.message
    assert "No exchange rate for EUR on or before 2026-03-09" in message
    assert "Finance can enter it under Finance → Exchange rates (/finance/rates)" in message
    assert missing.value.details == {
        "currency": "EUR",
        "date": "2026-03-09",
        "fixed_by": "finance",
        "fix_url": "/finance/rates",
    }


def test_an_old_row_in_a_code_that_is_no_currency_is_named(db: Session, staff: Staff) -> None:
    campaign = make_campaign(db, staff)
    rid = file_receipt(db, campaign.id, "10", steps=("submit",))
    receipts.get(db, rid).currency = "RMB"  # stored before currencies were checked
    db.flush()
    with pytest.raises(rates.MissingRate, match="not an ISO 4217 currency code") as missing:
        report_data.build(db, "CNY", ReportFilter())
    assert "the Chinese yuan's code is CNY" in missing.value.message
    assert missing.value.code == "rate.unknown_currency"


def test_a_closed_month_report_is_frozen_while_a_later_month_moves(
    db: Session, staff: Staff
) -> None:
    """The report's own figures for a closed month, after later activity of every kind."""
    campaign = make_campaign(db, staff, ends_on=date(2026, 12, 31))
    shop = Shop(db)
    shop.buy(
        None, "250.00", campaign_code=campaign.code, at=datetime(2026, 3, 9, tzinfo=UTC), ext="Q1"
    )
    file_receipt(db, campaign.id, "100", day=date(2026, 3, 9))
    periods.close_month(db, staff.finance, date(2026, 3, 1))
    march = build(db, "month", start=date(2026, 3, 1), end=date(2026, 3, 31)).as_json()
    shop.refund("Q1", None, at=datetime(2026, 4, 2, tzinfo=UTC))
    file_receipt(db, campaign.id, "50", day=date(2026, 4, 3))
    assert build(db, "month", start=date(2026, 3, 1), end=date(2026, 3, 31)).as_json() == march
    assert march["total"]["revenue"] == "250.00" and march["total"]["orders"] == 1


def test_a_purchase_refunded_in_halves_nets_to_zero(db: Session, staff: Staff) -> None:
    rates.set_rate(db, staff.finance, "GBP", date(2026, 3, 1), D("9.1234"), "CNY")
    campaign = make_campaign(db, staff)
    shop = Shop(db)
    at = datetime(2026, 3, 5, 4, tzinfo=UTC)
    shop.buy(None, "101.58", currency="GBP", campaign_code=campaign.code, at=at, ext="G1")
    shop.refund("G1", "50.79", at=at)
    shop.refund("G1", None, at=at)
    # Refunds are booked as a running target: 463.38 then the 463.37 left, not 463.38 twice.
    refunds = db.scalars(select(Refund.base_amount).order_by(Refund.id)).all()
    assert refunds == [D("463.38"), D("463.37")]
    assert build(db).total.values["revenue"] == D("0.00")
