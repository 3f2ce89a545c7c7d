"""Exchange rates to the base currency, and conversion at the rate of a document's date."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
from sqlalchemy import Numeric, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from campaigns.models import ExchangeRate
from core import audit, bounds
from core.audit import Actor
from core.errors import ValidationFailed
from core.money import normalise_currency


def _scale(column: InstrumentedAttribute[Any]) -> int:
    kind = column.property.columns[0].type
    assert isinstance(kind, Numeric) and kind.scale is not None
    return kind.scale


# The decimals the rate column keeps (NUMERIC(18, 8)): a finer rate is refused, not rounded.
RATE_PLACES = _scale(ExchangeRate.rate)
_BASE_UNIT = Decimal("0.0001")


class MissingRate(ValidationFailed):
    default_code = "rate.missing"


def currency_code(value: str, field: str = "currency") -> str:
    """An ISO 4217 code from any input: plain text first (so the refusal can quote it)."""
    bounds.check_text(value, field, label="The currency")
    return normalise_currency(value)


def check_rate(rate: Decimal) -> Decimal:
    """The shared rate bounds, and no more decimals than the column keeps."""
    bounds.check_rate(rate)
    if rate != rate.quantize(Decimal(1).scaleb(-RATE_PLACES)):
        raise ValidationFailed(
            "rate.precision", f"A rate has at most {RATE_PLACES} decimal places."
        )
    return rate


def set_rate(
    session: Session, actor: Actor, currency: str, rate_date: date, rate: Decimal, base: str
) -> ExchangeRate:
    """Create or correct the rate of `currency` on `rate_date` (units of base per unit)."""
    actor.require("finance", doing="enter exchange rates")
    currency = currency_code(currency)
    if currency == base:
        raise ValidationFailed("rate.base", f"{base} is the base currency; it needs no rate.")
    bounds.check_day(rate_date, "rate.date", label="The rate's date")
    check_rate(rate)
    row = session.scalar(
        select(ExchangeRate).where(
            ExchangeRate.currency == currency, ExchangeRate.rate_date == rate_date
        )
    )
    before = None if row is None else {"rate": str(row.rate)}
    if row is None:
        row = ExchangeRate(currency=currency, rate_date=rate_date, rate=rate)
        session.add(row)
    else:
        row.rate = rate
    session.flush()
    audit.record(
        session,
        actor,
        "rate.set",
        "exchange_rate",
        f"{currency} {rate_date}",
        before=before,
        after={"rate": str(rate)},
    )
    return row


def rates_frame(session: Session, currencies: set[str]) -> pd.DataFrame:
    rows = session.execute(
        select(ExchangeRate.currency, ExchangeRate.rate_date, ExchangeRate.rate).where(
            ExchangeRate.currency.in_(currencies)
        )
    ).all()
    frame = pd.DataFrame(rows, columns=["currency", "rate_date", "rate"])
    frame["rate_date"] = pd.to_datetime(frame["rate_date"])
    return frame


def convert(frame: pd.DataFrame, rates: pd.DataFrame, base: str) -> pd.Series:
    """Amounts of `frame` (columns amount, currency, day) in the base currency, each at the
    latest rate on or before its day. A missing rate raises, naming currency and date."""
    result = pd.Series([Decimal(0)] * len(frame), index=frame.index, dtype=object)
    if frame.empty:
        return result
    is_base = frame["currency"] == base
    result.loc[is_base] = frame.loc[is_base, "amount"]
    foreign = frame.loc[~is_base, ["amount", "currency", "day"]].copy()
    if foreign.empty:
        return result
    foreign["day"] = pd.to_datetime(foreign["day"])
    foreign["_row"] = foreign.index
    # One dtype for the join key on both sides, even when no rates exist yet.
    foreign["currency"] = foreign["currency"].astype("string")
    rates = rates.assign(
        currency=rates["currency"].astype("string"), rate_date=pd.to_datetime(rates["rate_date"])
    )
    matched = pd.merge_asof(
        foreign.sort_values("day"),
        rates.sort_values("rate_date"),
        left_on="day",
        right_on="rate_date",
        by="currency",
        direction="backward",
    )
    missing = matched[matched["rate"].isna()]
    if not missing.empty:
        first = missing.sort_values(["day", "currency"]).iloc[0]
        raise MissingRate(
            "rate.missing",
            f"No exchange rate for {first['currency']} on or before {first['day']:%Y-%m-%d}. "
            f"Enter one to convert to {base}.",
            {"currency": first["currency"], "date": f"{first['day']:%Y-%m-%d}"},
        )
    converted = [
        _in_base(amount, rate, currency, day)
        for amount, rate, currency, day in zip(
            matched["amount"], matched["rate"], matched["currency"], matched["day"], strict=True
        )
    ]
    result.loc[matched["_row"].to_numpy()] = converted
    return result


def to_base(session: Session, amount: Decimal, currency: str, day: date, base: str) -> Decimal:
    """One amount in the base currency at the latest rate on or before `day`."""
    if currency == base:
        return amount
    rate = session.scalar(
        select(ExchangeRate.rate)
        .where(ExchangeRate.currency == currency, ExchangeRate.rate_date <= day)
        .order_by(ExchangeRate.rate_date.desc())
        .limit(1)
    )
    if rate is None:
        raise MissingRate(
            "rate.missing",
            f"No exchange rate for {currency} on or before {day:%Y-%m-%d}. "
            f"Enter one to convert to {base}.",
            {"currency": currency, "date": f"{day:%Y-%m-%d}"},
        )
    return _in_base(amount, rate, currency, day)


def _in_base(amount: Decimal, rate: Any, currency: str, day: Any) -> Decimal:
    """amount × rate to the base currency's stored precision. A rate stored before rates
    were bounded can make that overflow: say which rate, never fail with a 500."""
    try:
        return Decimal(amount * rate).quantize(_BASE_UNIT)
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationFailed(
            "rate.invalid",
            f"The exchange rate for {currency} on or before {day:%Y-%m-%d} is out of range "
            f"({rate}); correct it under Finance → Exchange rates.",
            {"currency": str(currency), "date": f"{day:%Y-%m-%d}"},
        ) from None
