"""Money: a Decimal amount beside its ISO 4217 currency column, never float; parsing and
the exact column type."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

import pycountry
from babel.numbers import get_currency_name
from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.errors import ValidationFailed
from core.text import N_

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
        raise ValidationFailed(
            "money.currency",
            N_("'%(value)s' is not an ISO 4217 currency code (the Chinese yuan's code is CNY).")
            if code == "RMB"
            else N_("'%(value)s' is not an ISO 4217 currency code."),
            value=shown,
        )
    return code


# The one way an amount is written in a form or a CSV file: ASCII digits, an optional minus,
# commas only as thousands separators in their right places, a point before the decimals.
# "1234.56", "1,234.56", "-5", "0.5" are amounts; "7,85", "1.234,56", "1,23,456", ".5", "5.",
# "+5", "1e5", "NaN", "1 234", "¥88" and full-width or other scripts' digits are not.
_AMOUNT = re.compile(r"-?(?:[1-9][0-9]{0,2}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?", re.ASCII)


# Unicode categories of what is written around an amount to name its currency: currency
# symbols (¥ $ € £) and letters (RMB, US$, 元).
_CURRENCY_MARKS = frozenset({"Sc", "Lu", "Ll", "Lt", "Lm", "Lo"})


def _quoted(text: str, limit: int = 24) -> str:
    """Input quoted back in a message: cut short, a lone surrogate escaped, not raised on."""
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")


def _accepted(text: str) -> Decimal | None:
    """The value of `text` when it is written as an amount is, else None.

    Exactly the values Babel's strict en_US parser (`babel.numbers.parse_decimal(text,
    locale="en_US", strict=True)`) gives for these strings (a test holds the two together),
    without its cost (some 15 µs a call; a purchase import parses millions): Babel alone is
    too lenient here, as it takes "1e5", "NaN", "Infinity", "+5", "1_000" and other scripts'
    digits."""
    if not _AMOUNT.fullmatch(text):
        return None
    return Decimal(text.replace(",", ""))


def _without_currency(text: str) -> str:
    """`text` less a currency written before or after it: "¥88", "US$5", "RMB 88", "88元"."""
    marks = {ch for ch in text if ch.isspace() or unicodedata.category(ch) in _CURRENCY_MARKS}
    return text.strip("".join(marks))


def _decimal_comma(text: str) -> str | None:
    """A decimal comma (and thousands points), as written in much of Europe, made an amount:
    "7,85" → "7.85", "1.234,56" → "1,234.56"; None when that is not what it is."""
    swapped = text.translate(str.maketrans(",.", ".,"))
    return swapped if "," in text and _accepted(swapped) is not None else None


def parse_amount(text: str | int | Decimal, label: str = "") -> Decimal:
    """An amount as a person or a CSV file writes it: "1234.56" or "1,234.56", a leading
    minus allowed (whether a sign is allowed is the caller's bound, `bounds.check_amount`,
    as are the range and the decimal places). Anything else is refused, never guessed at:
    a decimal comma ("7,85", "1.234,56"), misplaced commas ("1,23,456"), exponents, words,
    and a currency symbol or code ("¥88": a symbol names no one currency, and the currency
    has its own field; it used to be dropped whatever the document's currency was).
    Surrounding spaces are ignored. The refusal names `label` (the field or the column) and,
    where it is plain, says what was meant ("Did you mean 7.85?")."""
    if isinstance(text, float):
        raise TypeError("money must not be a float")
    if isinstance(text, Decimal | int):
        number = Decimal(text)
        if not number.is_finite():
            raise ValidationFailed(
                "money.amount",
                N_("%(label)s: '%(value)s' is not an amount.")
                if label
                else N_("'%(value)s' is not an amount."),
                label=label,
                value=str(text),
            )
        return number
    cleaned = text.strip()
    if not cleaned:
        raise ValidationFailed(
            "money.amount",
            N_("%(label)s: enter an amount, such as 1234.56.")
            if label
            else N_("enter an amount, such as 1234.56."),
            label=label,
        )
    value = _accepted(cleaned)
    if value is not None:
        return value
    raise _not_an_amount(cleaned, label)


def _not_an_amount(cleaned: str, label: str) -> ValidationFailed:
    """The refusal of `cleaned`, which is not written as an amount: with the currency left
    out, or a decimal comma made a point, what was plainly meant ("Did you mean 7.85?")."""
    bare = _without_currency(cleaned)
    shown = _quoted(cleaned)
    if bare != cleaned and _accepted(bare) is not None:
        meant: str | None = bare
    elif bare != cleaned and _decimal_comma(bare):
        meant = _decimal_comma(bare)
    else:
        meant = None
    if meant is not None:  # a currency written with it
        return ValidationFailed(
            "money.amount",
            N_(
                "%(label)s: '%(value)s' is not an amount: leave out the currency, which is given "
                "separately. Did you mean %(meant)s?"
            )
            if label
            else N_(
                "'%(value)s' is not an amount: leave out the currency, which is given "
                "separately. Did you mean %(meant)s?"
            ),
            label=label,
            value=shown,
            meant=meant,
        )
    meant = _decimal_comma(bare)
    if meant:
        return ValidationFailed(
            "money.amount",
            N_(
                "%(label)s: '%(value)s' is not an amount: write it like 1234.56 or 1,234.56"
                " (a point before the decimals, commas only between thousands)."
                " Did you mean %(meant)s?"
            )
            if label
            else N_(
                "'%(value)s' is not an amount: write it like 1234.56 or 1,234.56 (a point "
                "before the decimals, commas only between thousands). Did you mean %(meant)s?"
            ),
            label=label,
            value=shown,
            meant=meant,
        )
    return ValidationFailed(
        "money.amount",
        N_(
            "%(label)s: '%(value)s' is not an amount: write it like 1234.56 or 1,234.56 (a point "
            "before the decimals, commas only between thousands)."
        )
        if label
        else N_(
            "'%(value)s' is not an amount: write it like 1234.56 or 1,234.56 (a point before "
            "the decimals, commas only between thousands)."
        ),
        label=label,
        value=shown,
    )


def format_decimal(value: Decimal, places: int = 0) -> str:
    """A stored figure as people read it: thousands grouped, at least `places` decimals and
    every further one it has (1234.5 → "1,234.50" at 2; 7.85 → "7.85" at 0)."""
    exponent = value.normalize().as_tuple().exponent
    shown = max(places, -exponent) if isinstance(exponent, int) else places
    return f"{value:,.{shown}f}"


def format_amount(value: Decimal, currency: str) -> str:
    """An amount and its currency as stored, for a confirmation: "1,234.56 CNY"."""
    return f"{format_decimal(value, minor_units(currency))} {currency}"


def currency_name(code: str, locale: str = "en") -> str:
    return _currency_name(code, locale)


@cache
def _currency_name(code: str, locale: str) -> str:
    return str(get_currency_name(code, locale=locale))


def currency_choices(
    base: str, rated: Iterable[str] = (), *, locale: str = "en", include_base: bool = True
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The currencies a form offers, in groups: the base currency, then those with exchange
    rates, then every other ISO 4217 currency; each (code, name), by code within a group."""
    with_rates = sorted(set(rated) & CURRENCIES - {base})
    rest = sorted(CURRENCIES - {base} - set(with_rates))
    groups = [
        ("Base currency", [base] if include_base and base in CURRENCIES else []),
        ("With exchange rates", with_rates),
        ("Other currencies", rest),
    ]
    return [
        (title, [(code, currency_name(code, locale)) for code in codes])
        for title, codes in groups
        if codes
    ]


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
