"""ROI report exports: CSV that Excel opens with Chinese intact, and XLSX. Same numbers as
the page: both are written from RoiReport.table(). Orders are whole numbers (an empty cell
when none were recorded); in the XLSX a column's header carries a note saying what its empty
cells mean, as the page's legend does. Every cell goes through
`core.exports.safe_cell`, so a name that looks like a formula opens as text."""

from __future__ import annotations

import io
from decimal import Decimal

import pandas as pd

from campaigns.reports import COLUMNS, RoiReport
from core.exports import safe_cell


def to_csv(report: RoiReport) -> bytes:
    table = report.table()
    if "Input-output ratio" in table:
        table["Input-output ratio"] = [
            "" if v is None else f"1 : {v:.2f}" for v in table["Input-output ratio"]
        ]
    table = table.map(safe_cell).rename(columns=safe_cell)
    # UTF-8 with a byte-order mark: without it Excel guesses a legacy code page.
    return table.to_csv(index=False, na_rep="").encode("utf-8-sig")


def to_xlsx(report: RoiReport) -> bytes:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    table = report.table()
    orders = COLUMNS["orders"]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"ROI by {report.group_by}"
    sheet.append([safe_cell(c) for c in table.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for record in table.itertuples(index=False):
        sheet.append([None if _missing(v) else safe_cell(_plain(v)) for v in record])
    last = sheet.max_row
    for cell in sheet[last]:
        cell.font = Font(bold=True)  # the total row
    for index, column in enumerate(sheet.iter_cols(max_row=last), start=1):
        header = str(column[0].value)
        fmt = "0.0" if header.endswith("%") else "#,##0" if header == orders else "#,##0.00"
        for cell in column[1:]:
            if isinstance(cell.value, Decimal | int):
                cell.number_format = fmt
        sheet.column_dimensions[get_column_letter(index)].width = max(12, len(header) + 2)
    # What an empty figure means, as a note on its column's header (the page shows the same
    # reasons on hover and in a legend); no rows are added under the table.
    for cell in sheet[1]:
        reasons = report.reasons(str(cell.value))
        if reasons:
            text = "An empty cell means: " + " / ".join(reasons)
            cell.comment = Comment(text, "Retain", width=300, height=80)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _plain(value: object) -> object:
    """numpy's integers (from the Int64 orders column) as Python's, which openpyxl writes
    as numbers and the format above recognises."""
    if hasattr(value, "item") and not isinstance(value, Decimal):
        return value.item()
    return value
