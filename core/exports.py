"""Cells that a spreadsheet shows as text and never runs: the one rule for every CSV and XLSX.

Excel, LibreOffice and Google Sheets read a cell that begins with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return as a formula, so a campaign, channel, member or staff name such as
``=HYPERLINK("http://evil.example","Open")`` would run on the desk of whoever opens the export
("CSV injection", OWASP). Names, references and reasons are typed by staff, members and other
systems, so every writer passes each cell through `safe_cell`, which puts a single quote in
front of such text: the cell then opens as text showing exactly what was typed after the quote.

Numbers (int, Decimal, float) are not text and pass through as numbers, negative ones too, as
does anything else that is not a string (None, dates). Two kinds of text that begin with a
sign cannot be formulas and are left alone: a plain signed number such as "-12.50" (the
spreadsheet reads it as that number) and a sign alone (the "-" often written for "none").
"""

from __future__ import annotations

import re
from typing import TypeVar, overload

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Control characters an XLSX cannot hold (openpyxl refuses the whole file for one); input
# bounds refuse them now, but older rows may carry them. Each shows as U+FFFD.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_NUMBER_OR_SIGN = re.compile(r"[+-](?:[0-9]+(?:\.[0-9]+)?)?")

T = TypeVar("T")


@overload
def safe_cell(value: str) -> str: ...
@overload
def safe_cell(value: T) -> T: ...
def safe_cell(value: object) -> object:
    """`value` as a spreadsheet should receive it: text a spreadsheet would run as a formula
    gets a leading single quote, control characters become U+FFFD; everything else is
    returned unchanged."""
    if isinstance(value, str) and _CONTROL.search(value):
        value = _CONTROL.sub("\ufffd", value)
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_START)
        and not _NUMBER_OR_SIGN.fullmatch(value)
    ):
        return "'" + value
    return value
