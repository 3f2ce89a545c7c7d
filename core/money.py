"""Money: a Decimal amount beside its ISO 4217 currency column, never float; parsing and
the exact column type."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.errors import ValidationFailed

# Minor units per currency where it is not 2 (ISO 4217).
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3}


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def normalise_currency(code: str) -> str:
    code = code.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValidationFailed("money.currency", f"'{code}' is not a three-letter currency code.")
    return code


def parse_amount(text: str | int | Decimal) -> Decimal:
    """Parse user input such as '1,234.50' or '¥88' into a Decimal; refuse floats."""
    if isinstance(text, float):
        raise TypeError("money must not be a float")
    if isinstance(text, Decimal | int):
        value = Decimal(text)
    else:
        cleaned = text.strip().replace(",", "").lstrip("¥$€£").strip()
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            raise ValidationFailed("money.amount", f"'{text}' is not an amount.") from None
    if not value.is_finite():
        raise ValidationFailed("money.amount", f"'{text}' is not an amount.")
    return value


class MoneyAmount(TypeDecorator[Decimal]):
    """A money amount column: NUMERIC(19, 4) on PostgreSQL; on SQLite, which has no
    exact decimal type, an integer count of ten-thousandths, so SQL sums stay exact."""

    impl = Numeric(19, 4)
    cache_ok = True
    _SCALE = 4

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(19, 4, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal | int):
            raise TypeError("money amounts must be Decimal, never float")
        exact = Decimal(value).quantize(Decimal(1).scaleb(-self._SCALE), rounding=ROUND_HALF_UP)
        return int(exact.scaleb(self._SCALE)) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self._SCALE)
        return Decimal(value).quantize(Decimal(1).scaleb(-self._SCALE))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal
