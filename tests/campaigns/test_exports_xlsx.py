"""The XLSX export read back with openpyxl: the title block above the table, the frozen header,
the autofilter, number formats and value types, column widths; and the CSV, which stays a
plain table. The reports are the ones of tests/campaigns/test_comparison.py (April against
March), so the numbers are the ones worked out there by hand.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from campaigns import exports
from campaigns.report_data import ReportFilter
from campaigns.reports import roi_report
from tests.campaigns.test_comparison import april, compared, frames

D = Decimal
AT = datetime(2026, 5, 14, 9, 5, tzinfo=ZoneInfo("Asia/Shanghai"))
TITLE = exports.TitleBlock(
    start=date(2026, 4, 1),
    end=date(2026, 4, 30),
    filters=("Channel: WeChat", "Campaign status: active"),
    generated_at=AT,
    order="Revenue, descending",
)


def sheet_of(data: bytes) -> Worksheet:
    sheet = load_workbook(io.BytesIO(data)).active
    assert isinstance(sheet, Worksheet)
    return sheet


def table(sheet: Worksheet, header_row: int) -> dict[str, dict[str, Any]]:
    """{code: {header: cell}} for the rows under `header_row` (the total under "Total")."""
    header = [str(c.value) for c in sheet[header_row]]
    rows: dict[str, dict[str, Any]] = {}
    for row in sheet.iter_rows(min_row=header_row + 1):
        cells = dict(zip(header, row, strict=True))
        rows[str(cells["Code"].value)] = cells
    return rows


def test_the_title_block_says_what_the_table_is() -> None:
    sheet = sheet_of(exports.to_xlsx(april(), compared(), TITLE))
    assert [sheet.cell(row, 1).value for row in range(1, 10)] == [
        "ROI report by campaign",
        "Period: 2026-04-01 – 2026-04-30",
        "Filters: Channel: WeChat; Campaign status: active",
        "Base currency: CNY",
        "Loyalty cost: not included (cost is approved receipts only)",
        "Compared with the previous period: 2026-03-01 – 2026-03-31",
        "Sorted by Revenue, descending",
        "Generated at 2026-05-14 09:05 (Asia/Shanghai)",
        None,  # a blank row, then the table
    ]
    assert sheet["A1"].font.bold and sheet["A1"].font.size == 14
    assert sheet.cell(10, 1).value == "Code" and sheet.cell(10, 1).font.bold


def test_a_title_without_a_period_filters_or_comparison() -> None:
    title = exports.TitleBlock(start=None, end=None, filters=(), generated_at=AT)
    sheet = sheet_of(exports.to_xlsx(april(), None, title))
    assert [sheet.cell(row, 1).value for row in range(1, 8)] == [
        "ROI report by campaign",
        "Period: all dates",
        "Filters: none",
        "Base currency: CNY",
        "Loyalty cost: not included (cost is approved receipts only)",
        "Generated at 2026-05-14 09:05 (Asia/Shanghai)",
        None,
    ]
    assert sheet.freeze_panes == "A9" and sheet.cell(8, 1).value == "Code"
    only_from = exports.TitleBlock(start=date(2026, 4, 1), end=None, filters=(), generated_at=AT)
    assert only_from.period == "from 2026-04-01"


def test_frozen_header_and_autofilter_over_the_rows() -> None:
    sheet = sheet_of(exports.to_xlsx(april(), compared(), TITLE))
    # Code, Name, 12 figures and 2 × 4 comparison columns: 22 columns, A…V.
    assert sheet.max_column == 22
    assert sheet.freeze_panes == "A11"  # everything above row 11 stays in view
    # The header row 10 and the rows LONG, SPRING, EXPO (11–13); the total (14) stays out,
    # so sorting in Excel keeps it at the bottom.
    assert sheet.auto_filter.ref == "A10:V13"
    assert sheet.cell(14, 1).value == "Total" and sheet.cell(14, 1).font.bold
    plain = sheet_of(exports.to_xlsx(april()))  # no title: the header is the first row
    assert plain.freeze_panes == "A2" and plain.auto_filter.ref == "A1:N3"


def test_number_formats_and_value_types() -> None:
    rows = table(sheet_of(exports.to_xlsx(april(), compared(), TITLE)), 10)
    spring, total = rows["SPRING"], rows["Total"]
    # Percentages as fractions: 220.0% is 2.2, shown 0.0%.
    assert D(str(spring["ROI %"].value)) == D("2.2")
    assert spring["ROI %"].number_format == "0.0%"
    assert D(str(spring["Budget used %"].value)) == D("0.25")
    assert D(str(spring["ROI %, previous period"].value)) == D("1.5")
    assert D(str(spring["ROI %, change (pp)"].value)) == D("0.7")  # +70.0 points
    assert spring["ROI %, change (pp)"].number_format == "+0.0%;-0.0%;0.0%"
    # Money: numbers, in the base currency's minor units.
    for header in ("Revenue", "Approved cost", "Revenue, change", "Profit", "Budget"):
        cell = spring[header]
        assert cell.data_type == "n" and isinstance(cell.value, int | float), header
        assert cell.number_format == "#,##0.00", header
    assert spring["Revenue"].value == 8000 and spring["Revenue, change"].value == 3000
    assert total["Approved cost, change"].value == -500
    # Ratios with two decimals; a ratio's change with its sign.
    assert D(str(spring["Input-output ratio"].value)) == D("3.2")
    assert spring["Input-output ratio"].number_format == "0.00"
    assert D(str(total["Input-output ratio, change"].value)) == D("1.49")
    assert total["Input-output ratio, change"].number_format == "+0.00;-0.00;0.00"
    # Counts: whole numbers.
    assert type(spring["Orders"].value) is int and spring["Orders"].value == 40
    assert spring["Orders"].number_format == "#,##0"
    # Missing figures are empty cells, with the reason on the header's note.
    assert rows["LONG"]["Revenue, previous period"].value is None
    assert rows["EXPO"]["Revenue"].value is None
    headers = {str(c.value): c for c in sheet_of(exports.to_xlsx(april(), compared()))[1]}
    note = headers["Revenue, previous period"].comment
    assert note is not None and "Nothing in the previous period." in note.text


def test_column_widths_follow_the_content_up_to_a_cap() -> None:
    long_name = "A campaign whose name runs on far beyond what a column should show"
    report = roi_report(
        *frames([1], [(1, date(2026, 4, 3), "123456789.5")], [(1, date(2026, 4, 9), "8000", 40)]),
        group_by="campaign",
    )
    report.rows[0].key["name"] = long_name
    sheet = sheet_of(exports.to_xlsx(report, None, TITLE))
    assert sheet.freeze_panes == "A10"  # seven lines of title, a blank row, the header in row 9
    width = {}
    for index, cell in enumerate(sheet[9], start=1):
        width[cell.value] = sheet.column_dimensions[get_column_letter(index)].width
    assert width["Code"] == 8  # "SPRING" and "Total" are short: the narrowest width
    assert width["Name"] == exports.WIDEST  # capped
    assert width["Approved cost"] == len("123,456,789.50") + 2  # the widest figure
    assert width["Awaiting approval"] == len("Awaiting approval") + 2  # the header
    # The title block spills over the columns; it does not widen column A.
    assert width["Code"] < len("Generated at 2026-05-14 09:05 (Asia/Shanghai)")


def test_money_follows_the_currency_minor_units() -> None:
    campaigns, costs, revenue = frames([1], [(1, date(2026, 4, 3), "2500")], [])
    yen = roi_report(campaigns, costs, revenue, group_by="campaign", currency="JPY")
    rows = table(sheet_of(exports.to_xlsx(yen)), 1)
    assert rows["SPRING"]["Approved cost"].number_format == "#,##0"
    assert rows["SPRING"]["Approved cost"].value == 2500


def test_the_csv_stays_a_plain_table() -> None:
    data = exports.to_csv(april(), compared())
    assert data.startswith(b"\xef\xbb\xbfCode,Name,Budget,Approved cost,")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["Code"] for r in rows] == ["LONG", "SPRING", "EXPO", "Total"]
    spring = rows[1]
    assert spring["ROI %"] == "220.0" and spring["ROI %, change (pp)"] == "70.0"
    assert spring["Input-output ratio, previous period"] == "1 : 2.50"
    assert spring["Input-output ratio, change"] == "0.70"
    assert spring["Revenue, change"] == "3000.00"
    assert rows[2]["Revenue"] == "" and rows[2]["Approved cost, previous period"] == "1000.00"


def test_filters_in_words() -> None:
    f = ReportFilter(
        channel="wechat",
        status="active",
        owner_id=7,
        running_from=date(2026, 3, 1),
        running_to=date(2026, 3, 31),
    )
    assert exports.filter_words(f, channel_name="WeChat", owner_name="Ann") == (
        "Channel: WeChat",
        "Campaign status: active",
        "Owner: Ann",
        "Campaigns running between 2026-03-01 and 2026-03-31",
    )
    assert exports.filter_words(ReportFilter(running_to=date(2026, 3, 31))) == (
        "Campaigns started on or before 2026-03-31",
    )
