"""The shared bounds: what passes can be stored on both databases, what fails says why."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from core import bounds
from core.errors import ValidationFailed
from loyalty.models import Member


@pytest.mark.parametrize(
    ("value", "code"),
    [("1e15", "range"), ("1e30", "range"), ("0.00001", "precision"), ("-1", "range"),
     ("NaN", "invalid"), ("Infinity", "invalid")],
)  # fmt: skip
def test_amounts_out_of_bounds_are_refused_not_rounded(value: str, code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        bounds.check_amount(Decimal(value))
    assert refused.value.code == f"amount.{code}"


def test_amounts_within_bounds_pass_unchanged() -> None:
    for text in ("0", "0.0001", "999999999999.9999", "12.50000"):
        assert bounds.check_amount(Decimal(text)) == Decimal(text)
    assert bounds.check_amount(Decimal("-5"), sign="any") == Decimal("-5")
    with pytest.raises(ValidationFailed):
        bounds.check_amount(Decimal(0), sign="positive")


def test_rates_ids_points_and_days() -> None:
    assert bounds.check_rate(Decimal("7.1234")) == Decimal("7.1234")
    for bad in ("1e30", "0", "0.0000001", "1.000000001"):
        with pytest.raises(ValidationFailed):
            bounds.check_rate(Decimal(bad))
    assert bounds.parse_id(" 42 ") == 42 and bounds.parse_id("") is None
    for bad in ("abc", "1e3", "-1", "0", "²", "9" * 5000, str(2**31), str(2**63)):
        with pytest.raises(ValidationFailed):
            bounds.parse_id(bad)
    with pytest.raises(ValidationFailed):
        bounds.check_points(2**63)
    with pytest.raises(ValidationFailed):
        bounds.check_day(date(9999, 12, 31))
    assert bounds.check_day(date(2026, 3, 1)) == date(2026, 3, 1)


def test_text_is_bounded_like_its_column() -> None:
    name = TypeAdapter(bounds.Text(Member.name))
    assert name.validate_python("Li Lei") == "Li Lei"
    for bad in ("a\x00b", "\ud800", "x" * (bounds.length(Member.name) + 1), "bell\x07"):
        with pytest.raises(ValidationError):
            name.validate_python(bad)
        with pytest.raises(ValidationFailed):
            bounds.check_text(bad, "member.name", bounds.length(Member.name))
    assert bounds.check_text("two\nlines\tand tab", "note") == "two\nlines\tand tab"


def test_the_rate_bound_keeps_the_columns_decimals() -> None:
    from campaigns.models import ExchangeRate

    assert ExchangeRate.rate.property.columns[0].type.scale == bounds.RATE_PLACES
