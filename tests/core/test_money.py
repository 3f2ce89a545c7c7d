from __future__ import annotations

from decimal import Decimal

import pytest
from babel.numbers import parse_decimal
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, literal, select

from core.errors import ValidationFailed
from core.money import (
    CURRENCIES,
    MoneyAmount,
    currency_choices,
    format_amount,
    format_decimal,
    minor_units,
    normalise_currency,
    parse_amount,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1234.56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("1,234", "1234"),
        ("1,234,567.891", "1234567.891"),
        (" 12 ", "12"),
        ("-5", "-5"),
        ("-1,234.5", "-1234.5"),
        ("0.5", "0.5"),
        ("0", "0"),
        ("12.3456", "12.3456"),
    ],
)
def test_parse_amount_accepts_plain_and_comma_grouped_amounts(text: str, value: str) -> None:
    assert parse_amount(text) == Decimal(value)
    # The same value Babel's strict en_US parser gives.
    assert parse_decimal(text, locale="en_US", strict=True) == Decimal(value)


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("7,85", "7.85"),  # was stored as 785
        ("1.234,56", "1,234.56"),  # was stored as 1.23456
        ("0,5", "0.5"),
        ("12,34", "12.34"),
        ("¥88", "88"),  # a currency symbol: the currency has its own field
        ("US$5", "5"),
        ("RMB 1,234.56", "1,234.56"),
        ("88元", "88"),
        ("1,23,456.00", None),  # Indian grouping
        ("1,2345.6", None),
        ("0,123", "0.123"),  # a group never starts with 0: a decimal comma
        ("1 234.56", None),
        ("1e5", None),
        ("NaN", None),
        ("Infinity", None),
        ("+5", None),
        ("−5", None),  # U+2212 MINUS SIGN
        (".5", None),
        ("5.", None),
        ("1_000", None),
        ("１２３", None),  # full-width digits
        ("١٢٣", None),  # Arabic-Indic digits
        ("1.2.3", None),
        ("-", None),
        ("twelve", None),
    ],
)
def test_parse_amount_refuses_everything_else_and_says_what_was_meant(
    text: str, meant: str | None
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_amount(text, "Budget")
    message = refused.value.message
    assert message.startswith(f"Budget: '{text}' is not an amount")
    if meant is None:
        assert "Did you mean" not in message and "1234.56 or 1,234.56" in message
    else:
        assert message.endswith(f"Did you mean {meant}?")
        assert parse_amount(meant) is not None  # the suggestion is itself accepted


def test_a_currency_in_the_amount_is_refused_with_its_own_reason() -> None:
    with pytest.raises(ValidationFailed, match="leave out the currency"):
        parse_amount("¥88")


def test_an_empty_amount_is_refused_by_its_label() -> None:
    with pytest.raises(ValidationFailed, match=r"^Tax included: enter an amount"):
        parse_amount("  ", "Tax included")
    with pytest.raises(ValidationFailed, match=r"^enter an amount"):
        parse_amount("")


def test_a_refused_amount_is_quoted_back_short_and_safe() -> None:
    with pytest.raises(ValidationFailed) as long:
        parse_amount("9" * 20 + "x" * 5000)
    assert len(long.value.message) < 200 and "…'" in long.value.message
    with pytest.raises(ValidationFailed) as surrogate:
        parse_amount("1\ud800")
    surrogate.value.message.encode("utf-8")  # printable, not a UnicodeEncodeError


def test_numbers_pass_through_and_non_finite_ones_are_refused() -> None:
    assert parse_amount(Decimal("12.50")) == Decimal("12.50")
    assert parse_amount(7) == Decimal(7)
    with pytest.raises(ValidationFailed):
        parse_amount(Decimal("NaN"))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789,.- ", max_size=14))
def test_whatever_is_accepted_babel_reads_the_same(text: str) -> None:
    """Property: parse_amount accepts a subset of what Babel's strict en_US parser does, and
    reads each the same."""
    try:
        value = parse_amount(text)
    except ValidationFailed:
        return
    assert parse_decimal(text.strip(), locale="en_US", strict=True) == value


def test_stored_amounts_are_shown_at_least_to_their_minor_unit() -> None:
    assert format_amount(Decimal("1234.5"), "CNY") == "1,234.50 CNY"
    assert format_amount(Decimal("12.3456"), "CNY") == "12.3456 CNY"  # never rounded away
    assert format_amount(Decimal("50000"), "JPY") == "50,000 JPY"
    assert format_decimal(Decimal("7.85000000")) == "7.85"


def test_currency_choices_put_the_base_then_rated_then_the_rest() -> None:
    groups = currency_choices("CNY", ["USD", "EUR", "CNY", "RMB"])
    assert [title for title, _ in groups] == [
        "Base currency",
        "With exchange rates",
        "Other currencies",
    ]
    codes = [code for _, options in groups for code, _ in options]
    assert codes[:3] == ["CNY", "EUR", "USD"]
    assert sorted(codes) == sorted(CURRENCIES) and len(codes) == len(set(codes))
    assert dict(groups[1][1])["EUR"] == "Euro"
    without_base = currency_choices("CNY", ["USD"], include_base=False)
    assert "CNY" not in [code for _, options in without_base for code, _ in options]


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        parse_amount(0.1)  # type: ignore[arg-type]


def test_currency_codes_and_their_minor_units() -> None:
    assert normalise_currency(" usd ") == "USD"
    with pytest.raises(ValidationFailed):
        normalise_currency("US$")
    assert (minor_units("CNY"), minor_units("JPY"), minor_units("KWD")) == (2, 0, 3)


def test_a_money_column_keeps_four_places_exactly(engine: Engine) -> None:
    with engine.connect() as connection:
        value = connection.scalar(select(literal(Decimal("1234.56785"), MoneyAmount())))
    assert value == Decimal("1234.5679")


@pytest.mark.parametrize("code", ["RMB", "XYZ", "XAU", "XXX", "US$", "", "CNYY", "\ud800"])
def test_only_iso_4217_money_codes_are_currencies(code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        normalise_currency(code)
    assert "ISO 4217" in refused.value.message


def test_iso_4217_codes_and_their_minor_units() -> None:
    assert [normalise_currency(c) for c in ("cny", "EUR", "xof")] == ["CNY", "EUR", "XOF"]
    assert (minor_units("XOF"), minor_units("TND"), minor_units("CLF")) == (0, 3, 4)
