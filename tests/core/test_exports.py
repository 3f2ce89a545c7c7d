"""The one rule every CSV and XLSX writer applies to its cells (OWASP "CSV Injection")."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.exports import safe_cell


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTabbed", "'\tTabbed"),
        ("\r=1+1", "'\r=1+1"),
        ("=", "'="),
        ("@", "'@"),
        ("\t", "'\t"),
        ("==", "'=="),
        ("--", "'--"),
        ("-12.50-1", "'-12.50-1"),
        ("+CNY", "'+CNY"),
        # text that cannot be a formula stays as written
        ("Spring sale", "Spring sale"),
        ("-", "-"),
        ("+", "+"),
        ("", ""),
        ("1 : 3.24", "1 : 3.24"),
        ("a=b", "a=b"),
        (" =1+1", " =1+1"),
        ("'=already quoted", "'=already quoted"),
        ("春季促销", "春季促销"),
        ("M00000001", "M00000001"),
        ("2026-03-02T04:00:00+00:00", "2026-03-02T04:00:00+00:00"),
        # a plain signed number written as text is a number, not a formula
        ("-12.50", "-12.50"),
        ("+5", "+5"),
        ("-300", "-300"),
        ("12.50", "12.50"),
    ],
)
def test_text_that_would_run_as_a_formula_gets_a_leading_quote(value: str, expected: str) -> None:
    assert safe_cell(value) == expected


@pytest.mark.parametrize(
    "value",
    [Decimal("-12.50"), Decimal("3700.00"), -300, 0, -1.5, None, True, date(2026, 3, 1)],
)
def test_anything_that_is_not_text_passes_through_untouched(value: object) -> None:
    assert safe_cell(value) is value


def test_control_characters_that_an_xlsx_cannot_hold_are_replaced() -> None:
    from io import BytesIO

    from openpyxl import Workbook

    cell = safe_cell("Vendor\x00\x07 name\tand tab")
    assert cell == "Vendor\ufffd\ufffd name\tand tab"
    book = Workbook()
    book.active.append([cell, safe_cell("=\x1bcmd")])  # type: ignore[union-attr]
    book.save(BytesIO())  # openpyxl raises IllegalCharacterError on the raw text
