"""Exchange rates to the base currency, and conversion at the rate of a document's date.

The booking rule, written once here and used by every path (the ROI report, purchases through
the service, the fast path and bulk imports): a document's amount in the base currency is
booked once, from the exact product amount × rate, rounded half-up to the base currency's
minor unit (`core.money.minor_units`; cents for CNY). Nothing is rounded before that, and a
booked amount is never converted or rounded again: every sum is a sum of booked amounts, so a
report's rows add up to its totals exactly.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import periods
from campaigns.models import ClosedPeriod, ExchangeRate
from core import audit, bounds
from core.audit import Actor
from core.errors import Conflict, Problems, ValidationFailed
from core.money import CURRENCIES, minor_units, normalise_currency
from core.text import N_

# Enough digits for the exact product of the largest amount and the largest rate: nothing is
# rounded before the one rounding to the minor unit.
_EXACT = Context(prec=60)
# Who can fix a missing or wrong rate, and where: said in every message about one.
RATES_PAGE = "/finance/rates"
WHO_FIXES = f"Finance can enter it under Finance → Exchange rates ({RATES_PAGE})"


class MissingRate(ValidationFailed):
    default_code = "rate.missing"


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of `currency` (0.01 for CNY, 1 for JPY)."""
    return Decimal(1).scaleb(-minor_units(currency))


def book(amount: Decimal | int, rate: Decimal | int, base: str) -> Decimal:
    """A document's amount in the base currency, booked once: the exact product
    `amount × rate`, rounded half-up to the base currency's minor unit (101.58 GBP at
    9.1234 is 926.754972 CNY, booked 926.75). A base-currency amount is booked at rate 1.
    Every conversion and every report calls this, and sums only booked amounts."""
    exact = _EXACT.multiply(Decimal(amount), Decimal(rate))
    return exact.quantize(minor_unit(base), rounding=ROUND_HALF_UP, context=_EXACT)


def missing_rate(currency: str, day: date, base: str) -> MissingRate:
    """The error for a document in `currency` dated `day` with no rate to convert it: which
    currency and date, who can fix it and where (the page links there; the API says it)."""
    details = {"currency": currency, "date": f"{day:%Y-%m-%d}", "fixed_by": "finance"}
    if currency not in CURRENCIES:
        return MissingRate(
            "rate.unknown_currency",
            N_(
                "No exchange rate for %(currency)s: it is not an ISO 4217 currency code (the"
                " Chinese yuan's code is CNY), so no rate can be entered for it. Whoever entered"
                " the campaign, receipt or revenue record in %(currency)s must correct its"
                " currency; finance can find them under Finance."
            )
            if currency.upper() == "RMB"
            else N_(
                "No exchange rate for %(currency)s: it is not an ISO 4217 currency code, so no"
                " rate can be entered for it. Whoever entered the campaign, receipt or revenue"
                " record in %(currency)s must correct its currency; finance can find them under"
                " Finance."
            ),
            {**details, "fix_url": None},
            currency=currency,
        )
    return MissingRate(
        "rate.missing",
        "No exchange rate for %(currency)s on or before %(day)s, so amounts in %(currency)s "
        "cannot be converted to %(base)s. Finance can enter it under Finance → Exchange rates "
        "(%(page)s).",
        {**details, "fix_url": RATES_PAGE},
        currency=currency,
        day=f"{day:%Y-%m-%d}",
        base=base,
        page=RATES_PAGE,
    )


def currency_code(value: str, field: str = "currency") -> str:
    """An ISO 4217 code from any input: plain text first (so the refusal can quote it)."""
    bounds.check_text(value, field, label=N_("The currency"))
    return normalise_currency(value)


def validate(
    problems: Problems, *, currency: str, rate_date: date | None, rate: Decimal | None, base: str
) -> None:
    """Note each field's problem in `problems`, under `set_rate`'s names (`rate_date`,
    `rate`, `currency`). A field that already has one (a form notes what it could not read
    first, and passes None) keeps it."""

    def check_currency() -> None:
        if currency_code(currency) == base:
            raise ValidationFailed(
                "rate.base", "%(currency)s is the base currency; it needs no rate.", currency=base
            )

    def check_day() -> None:
        assert rate_date is not None  # None only when the form noted a problem
        bounds.check_day(rate_date, "rate.date", label=N_("The rate's date"))

    def check_rate() -> None:
        assert rate is not None
        bounds.check_rate(rate)  # range, and no finer than the column's 8 decimals

    for field, check in (
        ("currency", check_currency),
        ("rate_date", check_day),
        ("rate", check_rate),
    ):
        if field not in problems:
            problems.check(field, check)


def set_rate(
    session: Session, actor: Actor, currency: str, rate_date: date, rate: Decimal, base: str
) -> ExchangeRate:
    """Create or correct the rate of `currency` on `rate_date` (units of base per unit)."""
    actor.require("finance", doing=N_("enter exchange rates"))
    problems = Problems()
    validate(problems, currency=currency, rate_date=rate_date, rate=rate, base=base)
    problems.raise_any()
    currency = currency_code(currency)
    row = session.scalar(
        select(ExchangeRate).where(
            ExchangeRate.currency == currency, ExchangeRate.rate_date == rate_date
        )
    )
    if row is None or row.rate != rate:
        ensure_converts_no_closed_month(session, currency, rate_date)
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


def ensure_converts_no_closed_month(session: Session, currency: str, rate_date: date) -> None:
    """A rate on `rate_date` converts every document in its currency from that day until the
    currency's next rate. If a closed month lies in that span, adding or changing the rate
    would change a closed month's figures: refused, naming the month."""
    following = session.scalar(
        select(ExchangeRate.rate_date)
        .where(ExchangeRate.currency == currency, ExchangeRate.rate_date > rate_date)
        .order_by(ExchangeRate.rate_date)
        .limit(1)
    )
    query = select(ClosedPeriod.month).where(ClosedPeriod.month >= periods.month_of(rate_date))
    if following is not None:
        query = query.where(ClosedPeriod.month < following)
    closed = session.scalar(query.order_by(ClosedPeriod.month).limit(1))
    if closed is None:
        return
    month = f"{closed:%Y-%m}"
    params = {"month": month, "currency": currency, "day": f"{rate_date:%Y-%m-%d}"}
    if closed == periods.month_of(rate_date):
        raise Conflict(
            "period.closed",
            "%(month)s is closed: A %(currency)s rate on %(day)s is dated in it, and a closed "
            "month's figures never change. Enter the rate for a day in an open month after it, "
            "or ask an admin to reopen the month.",
            {"month": month},
            **params,
        )
    if following is None:
        raise Conflict(
            "period.closed",
            "%(month)s is closed: A %(currency)s rate on %(day)s converts %(currency)s amounts "
            "dated in it (from %(day)s), and a closed month's figures never change. Enter the "
            "rate for a day in an open month after it, or ask an admin to reopen the month.",
            {"month": month},
            **params,
        )
    raise Conflict(
        "period.closed",
        "%(month)s is closed: A %(currency)s rate on %(day)s converts %(currency)s amounts "
        "dated in it (from %(day)s until its next rate on %(next)s), and a closed month's "
        "figures never change. Enter the rate for a day in an open month after it, or ask an "
        "admin to reopen the month.",
        {"month": month},
        **params,
        next=f"{following:%Y-%m-%d}",
    )


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
    result.loc[is_base] = [book(amount, 1, base) for amount in frame.loc[is_base, "amount"]]
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
        raise missing_rate(str(first["currency"]), first["day"].date(), base)
    converted = [
        _in_base(amount, rate, currency, day, base)
        for amount, rate, currency, day in zip(
            matched["amount"], matched["rate"], matched["currency"], matched["day"], strict=True
        )
    ]
    result.loc[matched["_row"].to_numpy()] = converted
    return result


def to_base(session: Session, amount: Decimal, currency: str, day: date, base: str) -> Decimal:
    """One document's amount booked in the base currency (`book`) at the latest rate on or
    before `day`."""
    if currency == base:
        return book(amount, 1, base)
    rate = session.scalar(
        select(ExchangeRate.rate)
        .where(ExchangeRate.currency == currency, ExchangeRate.rate_date <= day)
        .order_by(ExchangeRate.rate_date.desc())
        .limit(1)
    )
    if rate is None:
        raise missing_rate(currency, day, base)
    return _in_base(amount, rate, currency, day, base)


def _in_base(amount: Decimal, rate: Any, currency: str, day: Any, base: str) -> Decimal:
    """`book(amount, rate)`. A rate stored before rates were bounded can make that
    overflow: say which rate, who can correct it and where, never fail with a 500."""
    try:
        booked: Decimal | None = book(amount, rate, base)
    except (InvalidOperation, ValueError, TypeError):
        booked = None
    if booked is None or not booked.is_finite() or abs(booked) > bounds.MAX_AMOUNT:
        raise ValidationFailed(
            "rate.invalid",
            "The exchange rate for %(currency)s on or before %(day)s is out of range "
            "(%(rate)s); finance can correct it under Finance → Exchange rates (%(page)s).",
            {
                "currency": str(currency),
                "date": f"{day:%Y-%m-%d}",
                "fixed_by": "finance",
                "fix_url": RATES_PAGE,
            },
            currency=str(currency),
            day=f"{day:%Y-%m-%d}",
            rate=str(rate),
            page=RATES_PAGE,
        )
    return booked
