"""Money: a Decimal amount beside its ISO 4217 currency column, never float; parsing and
the exact column type."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pycountry
from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.errors import ValidationFailed

# Minor units where ISO 4217 says other than 2 (its list as published, 2024).
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE, _FOUR = "BHD IQD JOD KWD LYD OMR TND", "CLF UYW"
_MINOR_UNITS = {
    **dict.fromkeys(_ZERO.split(" "), 0),
    **dict.fromkeys(_THREE.split(" "), 3),
    **dict.fromkeys(_FOUR.split(" "), 4),
}
# ISO 4217's codes (from pycountry), less those that are not money a business is paid in:
# precious metals, SDR and bond-market units, the testing code and "no currency".
_METALS_AND_UNITS = "XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX"
_NOT_MONEY = frozenset(_METALS_AND_UNITS.split(" "))
CURRENCIES: frozenset[str] = frozenset(
    c.alpha_3 for c in pycountry.currencies if c.alpha_3 not in _NOT_MONEY
)


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def normalise_currency(code: str) -> str:
    """An ISO 4217 code, upper case; anything else (RMB, XYZ, US$) is refused."""
    code = code.strip().upper()
    if code not in CURRENCIES:
        # Quoted back safely: cut short, and a lone surrogate escaped rather than raising.
        shown = code[:12].encode("utf-8", "backslashreplace").decode("utf-8")
        hint = " (the Chinese yuan's code is CNY)" if code == "RMB" else ""
        raise ValidationFailed(
            "money.currency", f"'{shown}' is not an ISO 4217 currency code{hint}."
        )
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
