"""ROI report exports: CSV that Excel opens with Chinese intact, and XLSX. Same numbers as
the page: both are written from RoiReport.table(). Every cell goes through
`core.exports.safe_cell`, so a name that looks like a formula opens as text."""

from __future__ import annotations

import io
from decimal import Decimal

from campaigns.reports import RoiReport
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
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    table = report.table()
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"ROI by {report.group_by}"
    sheet.append([safe_cell(c) for c in table.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for record in table.itertuples(index=False):
        sheet.append([None if _missing(v) else safe_cell(v) for v in record])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)  # the total row
    for index, column in enumerate(sheet.columns, start=1):
        header = str(column[0].value)
        fmt = "0.0" if header.endswith("%") else "#,##0" if header == "Orders" else "#,##0.00"
        for cell in column[1:]:
            if isinstance(cell.value, Decimal | int):
                cell.number_format = fmt
        sheet.column_dimensions[get_column_letter(index)].width = max(12, len(header) + 2)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)
