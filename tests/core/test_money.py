from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, literal, select

from core.errors import ValidationFailed
from core.money import MoneyAmount, minor_units, normalise_currency, parse_amount


def test_parse_amount_accepts_what_people_type() -> None:
    assert parse_amount("1,234.50") == Decimal("1234.50")
    assert parse_amount("¥88") == Decimal("88")
    with pytest.raises(ValidationFailed, match="not an amount"):
        parse_amount("twelve")
    with pytest.raises(ValidationFailed):
        parse_amount("NaN")


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
