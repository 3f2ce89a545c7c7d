from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ValidationFailed
from core.money import Money, parse_amount

amounts = st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False)


def test_parse_amount_accepts_what_people_type() -> None:
    assert parse_amount("1,234.50") == Decimal("1234.50")
    assert parse_amount("¥88") == Decimal("88")
    with pytest.raises(ValidationFailed, match="not an amount"):
        parse_amount("twelve")
    with pytest.raises(ValidationFailed):
        parse_amount("NaN")


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse_amount(0.1)  # type: ignore[arg-type]


def test_currencies_do_not_mix() -> None:
    with pytest.raises(ValidationFailed, match="convert first"):
        _ = Money.of("1", "CNY") + Money.of("1", "USD")


def test_rounding_follows_the_currency() -> None:
    assert Money.of("10.005", "CNY").rounded().amount == Decimal("10.01")
    assert Money.of("99.5", "JPY").rounded().amount == Decimal("100")
    assert str(Money.of("1234.5", "cny")) == "1,234.50 CNY"


@given(amounts, amounts)
def test_addition_is_exact(a: Decimal, b: Decimal) -> None:
    total = Money(a, "CNY") + Money(b, "CNY")
    assert (total - Money(b, "CNY")).amount == a
