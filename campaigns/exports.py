"""ROI report exports: CSV that Excel opens with Chinese intact, and XLSX. Same numbers as
the page, in the page's order: both are written from the report's rows (sorted as the page
sorted them) and its total, and, when the report is compared with the previous period, the
comparison's rows with each main figure's previous value and change.

The CSV is a plain table (UTF-8 with a byte-order mark): a header line, the rows, the total.
A revenue basis other than the default (an attribution model's, chosen by the caller) is
named in the revenue column's header in both files, and in the XLSX title block.
Both follow the report's columns (`RoiReport.columns`): with loyalty cost, its "Loyalty
cost" and "Total cost" columns stand beside the approved cost, and the XLSX title block says
whether loyalty cost is included in the cost.
The XLSX is for people: a title block above the table when given (report, period, filters
in words, base currency, loyalty cost, comparison, order, when it was generated), the header
row frozen,
an autofilter over the rows, and every number a number with a format: money in the base
currency's minor units (#,##0.00), percentages stored as fractions (12.5% is 0.125, shown
0.0%), counts as whole numbers, ratios with two decimals. Orders are whole numbers (an
empty cell when none were recorded); a column's header carries a note saying what its empty
cells mean, as the page's legend does. Every cell goes through `core.exports.safe_cell`, so
a name that looks like a formula opens as text.

Words are English by default (the CLI, the API). A caller that knows its reader passes
`translate` (a catalog's gettext, e.g. the staff page's): the headers, the total row, the
XLSX sheet name, title block and notes are then in the reader's language. Every such word is
a `core.text.N_` template here or where it is defined, so `pybabel extract` finds it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import pandas as pd

from campaigns.comparison import MONEY_CHANGES, Comparison, Part, column_id, compared_columns
from campaigns.report_data import ReportFilter
from campaigns.reports import KEY_LABELS, LABELS, MONEY, RoiReport, TableRow
from core.exports import safe_cell
from core.money import minor_units
from core.text import N_, Phrase, said

Kind = Literal["text", "money", "ratio", "percent", "count", "ratio_change", "points"]
Translate = Callable[[str], str]  # an English word or template → the reader's
WIDEST = 40  # characters: a column is as wide as its content, up to this
NARROWEST = 8


def english(message: str) -> str:
    """The words as written: what a file says when no reader's language is given."""
    return message


def fill(translate: Translate, template: str, **params: object) -> str:
    """`template` in the reader's language, filled in (`core.text.said`)."""
    return said(translate, template, params)


# The title and sheet name of each grouping.
TITLES: dict[str, str] = {
    "campaign": N_("ROI report by campaign"),
    "channel": N_("ROI report by channel"),
    "month": N_("ROI report by month"),
    "owner": N_("ROI report by owner"),
}
SHEETS: dict[str, str] = {
    "campaign": N_("ROI by campaign"),
    "channel": N_("ROI by channel"),
    "month": N_("ROI by month"),
    "owner": N_("ROI by owner"),
}
SHEET_NAME_BAD = frozenset("[]:*?/\\")
SHEET_NAME_LONGEST = 31  # Excel's limit


@dataclass(frozen=True)
class Column:
    id: str  # a report column, a key column, or a comparison column (`revenue_change`)
    header: str
    kind: Kind


def _kind(column: str) -> Kind:
    if column in ("roi_pct", "budget_used_pct"):
        return "percent"
    if column == "orders":
        return "count"
    if column in MONEY:
        return "money"
    return "ratio"


def part_header(column: str, part: Part, translate: Translate = english) -> str:
    label = translate(LABELS[column])
    if part == "previous":
        return fill(translate, N_("%(column)s, previous period"), column=label)
    if column == "roi_pct":
        return fill(translate, N_("%(column)s, change (pp)"), column=label)
    return fill(translate, N_("%(column)s, change"), column=label)


def columns(
    report: RoiReport,
    compared: bool = False,
    revenue_basis: str | None = None,
    translate: Translate = english,
) -> list[Column]:
    """The exported columns: the group's, the report's, and after each main figure its
    previous value and change when the report is compared. A `revenue_basis` other than
    the default is named in the revenue column's header ("Revenue (Markov chain)"), so a
    CSV, which has no title block, still says where its revenue comes from (`revenue_basis`
    is in the reader's language already)."""
    found = [
        Column(k, translate(KEY_LABELS[k]) if k in KEY_LABELS else k.title(), "text")
        for k in report.key_columns
    ]
    compared_here = compared_columns(report) if compared else ()
    for column, label in report.headers.items():
        header = translate(label)
        if column == "revenue" and revenue_basis:
            header = fill(
                translate, N_("%(column)s (%(basis)s)"), column=header, basis=revenue_basis
            )
        found.append(Column(column, header, _kind(column)))
        if column in compared_here:
            previous = column_id(column, "previous")
            found.append(
                Column(previous, part_header(column, "previous", translate), _kind(column))
            )
            change: Kind = "money" if column in MONEY_CHANGES else "ratio_change"
            if column == "roi_pct":
                change = "points"
            found.append(
                Column(
                    column_id(column, "change"), part_header(column, "change", translate), change
                )
            )
    return found


@dataclass(frozen=True)
class TitleBlock:
    """What the XLSX says above its table."""

    start: date | None  # the period's documents, by their own dates; None: open
    end: date | None
    filters: tuple[str, ...]  # the campaign filters applied, in words
    generated_at: datetime  # aware, in the configured zone
    order: str | None = None  # how the rows are sorted, in words
    revenue_basis: str | None = None  # where the revenue comes from, in words

    @property
    def period(self) -> str:
        return self.period_words()

    def period_words(self, translate: Translate = english) -> str:
        if self.start and self.end:
            return f"{self.start.isoformat()} – {self.end.isoformat()}"
        if self.start:
            return fill(translate, N_("from %(start)s"), start=self.start.isoformat())
        if self.end:
            return fill(translate, N_("until %(end)s"), end=self.end.isoformat())
        return translate(N_("all dates"))

    def lines(
        self, report: RoiReport, comparison: Comparison | None, translate: Translate = english
    ) -> list[str]:
        """The title block, in the reader's language (`filters`, `order` and
        `revenue_basis` are in it already)."""
        zone = getattr(self.generated_at.tzinfo, "key", None) or str(self.generated_at.tzinfo)
        title = TITLES.get(report.group_by)
        lines = [
            translate(title) if title else f"ROI report by {report.group_by}",
            fill(translate, N_("Period: %(period)s"), period=self.period_words(translate)),
            (
                fill(translate, N_("Filters: %(filters)s"), filters="; ".join(self.filters))
                if self.filters
                else translate(N_("Filters: none"))
            ),
            fill(translate, N_("Base currency: %(currency)s"), currency=report.currency),
        ]
        if self.revenue_basis:
            lines.append(fill(translate, N_("Revenue basis: %(basis)s"), basis=self.revenue_basis))
        lines.append(loyalty_words(report, translate))
        if comparison is not None:
            lines.append(
                fill(
                    translate,
                    N_("Compared with the previous period: %(period)s"),
                    period=str(comparison.previous_period),
                )
            )
        if self.order:
            lines.append(fill(translate, N_("Sorted by %(order)s"), order=self.order))
        lines.append(
            fill(
                translate,
                N_("Generated at %(at)s (%(zone)s)"),
                at=f"{self.generated_at:%Y-%m-%d %H:%M}",
                zone=zone,
            )
        )
        return lines


def loyalty_words(report: RoiReport, translate: Translate = english) -> str:
    """Whether the report counts loyalty cost, in words (the title block, the page)."""
    if report.loyalty_cost:
        return translate(
            N_(
                "Loyalty cost: included in the total cost (coupon discounts, bonus points and"
                " rewards at the value per point)"
            )
        )
    return translate(N_("Loyalty cost: not included (cost is approved receipts only)"))


def filter_words(
    f: ReportFilter,
    *,
    channel_name: str | None = None,
    owner_name: str | None = None,
    translate: Translate = english,
) -> tuple[str, ...]:
    """The campaign filters of a report in words (the period is said apart)."""
    words = []
    if f.channel:
        words.append(fill(translate, N_("Channel: %(name)s"), name=channel_name or f.channel))
    if f.status:
        words.append(fill(translate, N_("Campaign status: %(status)s"), status=translate(f.status)))
    if f.owner_id:
        words.append(fill(translate, N_("Owner: %(name)s"), name=owner_name or f"#{f.owner_id}"))
    if f.running_from and f.running_to:
        words.append(
            fill(
                translate,
                N_("Campaigns running between %(start)s and %(end)s"),
                start=str(f.running_from),
                end=str(f.running_to),
            )
        )
    elif f.running_from:
        words.append(
            fill(
                translate,
                N_("Campaigns running on or after %(start)s"),
                start=str(f.running_from),
            )
        )
    elif f.running_to:
        words.append(
            fill(
                translate,
                N_("Campaigns started on or before %(end)s"),
                end=str(f.running_to),
            )
        )
    return tuple(words)


def _rows(report: RoiReport, comparison: Comparison | None) -> list[TableRow]:
    if comparison is not None:
        return [*comparison.rows, comparison.total]
    return [*report.rows, report.total]


def reasons(rows: Sequence[TableRow], column: str) -> list[str]:
    """Why figures of `column` are empty in `rows`, if any are."""
    found = {r.why_missing(column) for r in rows}
    return sorted(reason for reason in found if reason is not None)


def _value(
    row: TableRow, column: str, keys: tuple[str, ...], translate: Translate = english
) -> Any:
    if column in keys:
        value = row.key.get(column, "")
        # A word of the report's own ("Total"), not a name someone gave.
        return translate(value) if isinstance(value, Phrase) else value
    return row.figure(column)


def table(
    report: RoiReport,
    comparison: Comparison | None = None,
    revenue_basis: str | None = None,
    translate: Translate = english,
) -> pd.DataFrame:
    """The exported table: one row per group then the total, numbers as numbers (orders
    as whole numbers, missing ones empty, never 79.0)."""
    cols = columns(report, comparison is not None, revenue_basis, translate)
    records = [
        [_value(r, c.id, report.key_columns, translate) for c in cols]
        for r in _rows(report, comparison)
    ]
    frame = pd.DataFrame.from_records(records, columns=[c.header for c in cols])
    orders = next(c.header for c in cols if c.id == "orders")
    frame[orders] = frame[orders].astype("Int64")
    return frame


def to_csv(
    report: RoiReport,
    comparison: Comparison | None = None,
    revenue_basis: str | None = None,
    translate: Translate = english,
) -> bytes:
    frame = table(report, comparison, revenue_basis, translate)
    for c in columns(report, comparison is not None, revenue_basis, translate):
        if c.kind == "ratio" and c.id.startswith("io_ratio"):
            frame[c.header] = ["" if v is None else f"1 : {v:.2f}" for v in frame[c.header]]
    frame = frame.map(safe_cell).rename(columns=safe_cell)
    # UTF-8 with a byte-order mark: without it Excel guesses a legacy code page.
    return frame.to_csv(index=False, na_rep="").encode("utf-8-sig")


def _money_format(currency: str) -> str:
    places = minor_units(currency)
    return "#,##0" + ("." + "0" * places if places else "")


def _formats(currency: str) -> dict[Kind, str]:
    return {
        "text": "General",
        "money": _money_format(currency),
        "ratio": "0.00",
        "percent": "0.0%",
        "count": "#,##0",
        "ratio_change": "+0.00;-0.00;0.00",
        "points": "+0.0%;-0.0%;0.0%",
    }


def _cell(value: Any, kind: Kind) -> Any:
    """A figure as the XLSX stores it: percentages as fractions, counts as int."""
    if _missing(value):
        return None
    value = _plain(value)
    if kind in ("percent", "points") and isinstance(value, Decimal | int):
        return Decimal(value) / 100
    if kind == "count":
        return int(value)
    return safe_cell(value)


def _shown(value: Any, kind: Kind, currency: str) -> str:
    """About how the cell reads in Excel: for the column's width."""
    if value is None:
        return ""
    if kind == "text":
        return str(value)
    number = Decimal(value)
    if kind in ("percent", "points"):
        return f"{number * 100:+,.1f}%"
    if kind == "count":
        return f"{number:,.0f}"
    if kind == "money":
        return f"{number:,.{minor_units(currency)}f}"
    return f"{number:+,.2f}"


def to_xlsx(
    report: RoiReport,
    comparison: Comparison | None = None,
    title: TitleBlock | None = None,
    revenue_basis: str | None = None,
    translate: Translate = english,
) -> bytes:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    cols = columns(report, comparison is not None, revenue_basis, translate)
    rows = _rows(report, comparison)
    formats = _formats(report.currency)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_name(report.group_by, translate)
    header_row = 1
    if title is not None:
        lines = title.lines(report, comparison, translate)
        for number, line in enumerate(lines, start=1):
            sheet.cell(number, 1, safe_cell(line))
        sheet["A1"].font = Font(bold=True, size=14)
        header_row = len(lines) + 2  # a blank row between the title block and the table
    for index, c in enumerate(cols, start=1):
        sheet.cell(header_row, index, safe_cell(c.header)).font = Font(bold=True)
    widths = [len(c.header) for c in cols]
    for row_index, table_row in enumerate(rows, start=header_row + 1):
        values = [_value(table_row, c.id, report.key_columns, translate) for c in cols]
        for index, (value, column) in enumerate(zip(values, cols, strict=True), start=1):
            sheet.cell(row_index, index, _cell(value, column.kind))
            shown = "" if _missing(value) else _shown(_plain(value), column.kind, report.currency)
            widths[index - 1] = max(widths[index - 1], len(shown))
    last = header_row + len(rows)
    for cell in sheet[last]:
        cell.font = Font(bold=True)  # the total row
    for index, column in enumerate(cols, start=1):
        for (cell,) in sheet.iter_rows(
            min_row=header_row + 1, max_row=last, min_col=index, max_col=index
        ):
            if isinstance(cell.value, Decimal | int | float):
                cell.number_format = formats[column.kind]
        width = min(WIDEST, max(NARROWEST, widths[index - 1] + 2))
        sheet.column_dimensions[get_column_letter(index)].width = width
    # The header stays in view; the filter covers the rows but not the total, so sorting
    # in Excel keeps the total at the bottom.
    sheet.freeze_panes = f"A{header_row + 1}"
    corner = f"{get_column_letter(len(cols))}{max(last - 1, header_row)}"
    sheet.auto_filter.ref = f"A{header_row}:{corner}"
    # What an empty figure means, as a note on its column's header (the page shows the same
    # reasons on hover and in a legend); no rows are added under the table.
    for cell, column in zip(sheet[header_row], cols, strict=True):
        found = reasons(rows, column.id) if column.kind != "text" else []
        if found:
            text = fill(
                translate,
                N_("An empty cell means: %(reasons)s"),
                reasons=" / ".join(translate(reason) for reason in found),
            )
            cell.comment = Comment(text, "Retain", width=300, height=80)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def sheet_name(group_by: str, translate: Translate = english) -> str:
    """The worksheet's name; the English where a translation is no name Excel takes."""
    english_name = SHEETS.get(group_by, f"ROI by {group_by}")
    name = translate(english_name)
    if not name or len(name) > SHEET_NAME_LONGEST or SHEET_NAME_BAD & set(name):
        return english_name
    return name


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _plain(value: object) -> object:
    """numpy's integers (from the Int64 orders column) as Python's, which openpyxl writes
    as numbers and the format above recognises."""
    if hasattr(value, "item") and not isinstance(value, Decimal):
        return value.item()
    return value
