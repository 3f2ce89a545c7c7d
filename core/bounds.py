"""The bounds every input is held to, in one place: ids, money, rates, points, dates, text.

Each bound matches a column or a meaning, so a value that passes can be stored and summed
without overflow on either database:
- ids fit PostgreSQL's INTEGER primary keys (2³¹ − 1);
- money fits NUMERIC(19, 4) with room for sums: below one trillion per document, at most four
  decimals (the stored precision; a finer amount is refused, not rounded silently);
- an exchange rate lies in [0.000001, 1,000,000] base units per unit, with at most 8 decimals;
- points on one entry stay within ±1,000,000,000 (sums stay far inside BIGINT);
- dates lie in 1900-01-01 … 2199-12-31 (documents, filters, birthdays);
- text holds no NUL or other control character but tab and line breaks, no lone UTF-16
  surrogate, and no more characters than its column.

The API's pydantic shapes use the annotated types below (so the OpenAPI states the bounds);
page forms, imports and services call the `check_*` functions, which raise ValidationFailed
with a message a person can act on.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from sqlalchemy.orm import InstrumentedAttribute

from core.errors import ValidationFailed
from core.text import Phrase

MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1  # BIGINT ids (ledger entries, lots, purchases, coupons on PostgreSQL)
MAX_AMOUNT = Decimal("999999999999.9999")
AMOUNT_PLACES = 4
MIN_RATE = Decimal("0.000001")
MAX_RATE = Decimal("1000000")
RATE_PLACES = 8  # the rate column's scale
MAX_POINTS = 1_000_000_000
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2199, 12, 31)
MAX_SEARCH = 200  # characters of a search box or free-text filter

# C0 controls but tab, line feed and carriage return; DEL. Lone surrogates are caught by
# encoding to UTF-8.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def length(column: InstrumentedAttribute[Any]) -> int:
    """The declared length of a String column: the one source of a text field's max_length."""
    size = getattr(column.property.columns[0].type, "length", None)
    if size is None:
        raise TypeError(f"{column} has no length")
    return int(size)


def _text_fault(value: str, max_length: int | None = None) -> str | None:
    """What is wrong with a text value ("control", "surrogate", "long"), or None."""
    if _CONTROL.search(value):
        return "control"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "surrogate"
    if max_length is not None and len(value) > max_length:
        return "long"
    return None


def text_problem(value: str, max_length: int | None = None) -> str | None:
    """Why a text value cannot be stored, or None when it can: an English predicate ("must
    not contain control characters"), for logs and import reports. A refusal a person reads
    is `text_error`'s, whole sentences the staff catalog translates."""
    fault = _text_fault(value, max_length)
    if fault == "control":
        return "must not contain control characters"
    if fault == "surrogate":
        return "is not valid text (a lone surrogate character)"
    if fault == "long":
        return f"is longer than {max_length} characters"
    return None


def text_error(
    value: str, field: str, max_length: int | None = None, label: str = ""
) -> ValidationFailed | None:
    """The refusal of a text value that cannot be stored (code `{field}.invalid`, naming it
    by `label`, else by the field's name), or None when it can: `check_text` raises it."""
    fault = _text_fault(value, max_length)
    if fault is None:
        return None
    name = label or Phrase(field.capitalize())
    code = f"{field}.invalid"
    if fault == "control":
        return ValidationFailed(code, "%(label)s must not contain control characters.", label=name)
    if fault == "surrogate":
        return ValidationFailed(
            code, "%(label)s is not valid text (a lone surrogate character).", label=name
        )
    return ValidationFailed(
        code, "%(label)s is longer than %(max)s characters.", label=name, max=max_length
    )


def check_text(value: str, field: str, max_length: int | None = None, label: str = "") -> str:
    error = text_error(value, field, max_length, label)
    if error is not None:
        raise error
    return value


def _valid_text(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def Text(max_length: int | InstrumentedAttribute[Any], **field: Any) -> Any:
    """A pydantic str bounded like its column: `Text(Member.name)` or `Text(200)`."""
    size = max_length if isinstance(max_length, int) else length(max_length)
    return Annotated[str, Field(max_length=size, **field), AfterValidator(_valid_text)]


def check_id(value: int, field: str = "id") -> int:
    if not 1 <= value <= MAX_ID:
        raise ValidationFailed(
            f"{field}.range",
            "%(field)s must be between 1 and %(max)s.",
            field=Phrase(field),
            max=MAX_ID,
        )
    return value


def parse_id(value: str | None, field: str = "id") -> int | None:
    """A form's or query's id: None when empty, else a whole number in range."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    # ASCII digits only ("²" is a digit to isdigit, not to int).
    if not (text.isascii() and text.isdigit()):
        raise ValidationFailed(
            f"{field}.invalid",
            "Choose a valid %(field)s.",
            field=Phrase(field.replace("_", " ")),
        )
    # A number too long to be an id is out of range (and never converted: int() of thousands
    # of digits is refused by Python itself).
    return check_id(int(text) if len(text) <= len(str(MAX_ID)) else MAX_ID + 1, field)


# A whole number as a person types it: ASCII digits, commas only between thousands, a leading
# minus. Not "1.0", "1e3", "+5", "1_000", " 1 2", "²" or another script's digits.
_WHOLE = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)", re.ASCII)
WHOLE_DIGITS = len(str(MAX_BIG_ID))  # the longest whole number a form may hold (BIGINT)


def parse_whole(
    value: str | None,
    label: str,
    field: str = "number",
    *,
    low: int | None = None,
    high: int | None = None,
) -> int | None:
    """A form's whole number: None when it is left empty, else "1234" or "1,234" (a leading
    minus allowed) within [`low`, `high`] when they are given; anything else is refused with
    a message that names the field by its `label` as the form shows it. A number too long
    for a BIGINT is out of range, never converted (int() of thousands of digits is refused
    by Python itself)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not _WHOLE.fullmatch(text):
        shown = text if len(text) <= 24 else text[:23] + "…"
        shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")
        raise ValidationFailed(
            f"{field}.invalid",
            "%(label)s: '%(value)s' is not a whole number; write it like 1234 or 1,234.",
            label=label,
            value=shown,
        )
    digits = text.replace(",", "").lstrip("-")
    number = int(text.replace(",", "")) if len(digits) <= WHOLE_DIGITS else None
    lowest = -MAX_BIG_ID if low is None else low
    highest = MAX_BIG_ID if high is None else high
    if number is None or not lowest <= number <= highest:
        raise ValidationFailed(
            f"{field}.range",
            "%(label)s must be a whole number from %(low)s to %(high)s.",
            label=label,
            low=f"{lowest:,}",
            high=f"{highest:,}",
        )
    return number


def check_amount(
    value: Decimal, field: str = "amount", *, sign: str = "non-negative", label: str = ""
) -> Decimal:
    """A money amount within the business maximum and the stored precision. `sign` is
    "positive" (more than zero), "non-negative" or "any" (a correction may be negative)."""
    name = label or Phrase(field.replace("_", " ").capitalize())
    if not value.is_finite():
        raise ValidationFailed(f"{field}.invalid", "%(label)s is not a number.", label=name)
    if abs(value) > MAX_AMOUNT:
        raise ValidationFailed(
            f"{field}.range", "%(label)s must be less than 1,000,000,000,000.", label=name
        )
    if value != value.quantize(Decimal(1).scaleb(-AMOUNT_PLACES)):
        raise ValidationFailed(
            f"{field}.precision",
            "%(label)s has more than %(places)s decimal places.",
            label=name,
            places=AMOUNT_PLACES,
        )
    if sign == "positive" and value <= 0:
        raise ValidationFailed(f"{field}.range", "%(label)s must be more than zero.", label=name)
    if sign == "non-negative" and value < 0:
        raise ValidationFailed(f"{field}.range", "%(label)s must not be negative.", label=name)
    return value


def check_rate(value: Decimal, field: str = "rate") -> Decimal:
    if not value.is_finite() or not MIN_RATE <= value <= MAX_RATE:
        raise ValidationFailed(
            f"{field}.range",
            "A rate must be between %(low)s and %(high)s.",
            low=str(MIN_RATE),
            high=f"{MAX_RATE:,}",
        )
    if value != value.quantize(Decimal(1).scaleb(-RATE_PLACES)):
        raise ValidationFailed(
            f"{field}.precision",
            "A rate has at most %(places)s decimal places.",
            places=RATE_PLACES,
        )
    return value


def check_points(value: int, field: str = "points") -> int:
    if abs(value) > MAX_POINTS:
        raise ValidationFailed(
            f"{field}.range", "Points must be within ±%(max)s.", max=f"{MAX_POINTS:,}"
        )
    return value


def check_day(value: date, field: str = "date", label: str = "") -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValidationFailed(
            f"{field}.range",
            "%(label)s must be between %(first)s and %(last)s.",
            label=label or Phrase(field.replace("_", " ").capitalize()),
            first=FIRST_DAY.isoformat(),
            last=LAST_DAY.isoformat(),
        )
    return value


def parse_decimal_field(value: str | int | Decimal, field: str) -> Decimal:
    try:
        return Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValidationFailed(
            f"{field}.invalid", "'%(value)s' is not a number.", value=str(value)
        ) from None


# Pydantic shapes for the API. Decimal bounds are stated in the OpenAPI as well.
Money = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, decimal_places=AMOUNT_PLACES)]
PositiveMoney = Annotated[Decimal, Field(gt=0, le=MAX_AMOUNT, decimal_places=AMOUNT_PLACES)]
Rate = Annotated[Decimal, Field(ge=MIN_RATE, le=MAX_RATE, decimal_places=RATE_PLACES)]
RecordId = Annotated[int, Field(ge=1, le=MAX_ID)]
Points = Annotated[int, Field(ge=-MAX_POINTS, le=MAX_POINTS)]
Day = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY)]
