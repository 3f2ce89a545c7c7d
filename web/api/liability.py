"""API: the points liability (IFRS 15, customer loyalty programmes), read from the ledger.

- `GET /liability?until=YYYY-MM&method=additive|chain_ladder&months=12`: the monthly
  roll-forward's last `months` months ending with `until` (default: the last full month in
  the configured zone), in points and in the base currency, each month's expected
  redemption rate and whether the redemption curve gave it, the redemption curve on `until`
  (by months since issue, and each issue month's projection) with its method in words, and
  the reconciliation of the closing points to the ledger.
- `GET /liability/journal?month=YYYY-MM&method=`: the month's journal lines.

Money is a string at the base currency's minor units ("1234.50"); rates and curve shares
are strings with their exact decimals; points are integers. Both need the scope
`liability:read` (a key), or a marketer, finance or admin session.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from core.accounts.models import Role
from loyalty import liability
from web.api.auth import Caller, require
from web.api.campaigns import known_query_only
from web.api.responses import errors
from web.deps import AppSettings, Db
from web.pages import liability as pages

router = APIRouter(tags=["points liability"], dependencies=[Depends(known_query_only)])
STAFF = (Role.MARKETER, Role.FINANCE, Role.ADMIN)
Reader = Annotated[Caller, Depends(require(scope="liability:read", roles=STAFF))]
MAX_MONTHS = 240
MonthQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{4}-[0-9]{2}$",
        examples=["2026-03"],
        description="YYYY-MM, not after the current month; default the last full month",
    ),
]
MethodQuery = Annotated[
    liability.Method,
    Query(description="How the redemption curve is developed: additive or chain_ladder"),
]


class MonthOut(BaseModel):
    """One month of the roll-forward: `liability.roll_forward`'s columns."""

    month: str = Field(examples=["2026-03"])
    expected_rate: str = Field(description="Expected (ultimate) redemption rate, 0–1")
    rate_estimated: bool = Field(
        description="True: from the redemption curve; false: the fallback (too little history)"
    )
    opening_points: int
    issued_points: int
    redeemed_points: int
    expired_points: int
    reversed_points: int = Field(description="Points taken back by refunds")
    forfeited_points: int = Field(description="Points taken away by negative adjustments")
    closing_points: int = Field(description="The ledger's total at the month's end")
    owed_points: int = Field(description="Taken back beyond what members held")
    held_points: int = Field(description="Points in lots: closing + owed")
    expected_points: int = Field(description="Redemptions still expected")
    current_points: int = Field(description="Of which expected within 12 months")
    opening_value: str
    issued_value: str = Field(description="Value allocated to the points issued (deferred)")
    reversed_value: str = Field(description="Deferred value returned to sales by refunds")
    redeemed_value: str = Field(description="Revenue on redemptions")
    catch_up_value: str = Field(description="Cumulative catch-up (revenue; may be negative)")
    breakage_value: str = Field(description="Breakage beyond expectation (revenue)")
    closing_value: str
    current_value: str
    non_current_value: str
    revenue: str = Field(description="redeemed + catch-up + breakage")


class AgeOut(BaseModel):
    age: int = Field(description="Whole months since the issue month")
    increment: str = Field(description="Share of points issued redeemed at this age")
    cumulative: str = Field(description="Share redeemed by this age (the curve)")
    factor: str | None = Field(description="Development factor to the next age")


class CohortOut(BaseModel):
    issue_month: str
    age: int
    issued: int = Field(description="Points issued, net of refunds")
    redeemed: int
    ultimate: str = Field(description="Projected total redemptions by the method")
    expected: str = Field(description="Expected total redemptions the liability uses")


class CurveOut(BaseModel):
    method: liability.Method
    as_of: str
    used: bool = Field(description="False: shown only; the fallback rate was used")
    rate: str = Field(description="Ultimate redemption rate, 0–1, at most 1")
    issued: int
    ultimate: str
    description: str = Field(description="The method in words, with its figures")
    ages: list[AgeOut]
    cohorts: list[CohortOut]


class ReconciliationOut(BaseModel):
    closing_points: int = Field(description="The roll-forward's closing points (0 if none)")
    ledger_points: int = Field(description="Σ ledger entries dated before the month's end")
    reconciles: bool


class LiabilityOut(BaseModel):
    until: str
    method: liability.Method
    currency: str
    point_value: str = Field(description="The program's value per point (base currency)")
    expected_rate: str | None = Field(description="The month's rate; null without points")
    rate_estimated: bool
    first_month: str | None = Field(description="The first month with a ledger entry")
    reconciliation: ReconciliationOut
    months: list[MonthOut]
    curve: CurveOut | None


class JournalLineOut(BaseModel):
    date: date
    entry: str = Field(description="The balanced entry: LOY-YYYY-MM-NN")
    kind: str = Field(description="issue, refund, redeem, catch_up or breakage")
    account: str
    debit: str
    credit: str
    description: str


class JournalOut(BaseModel):
    month: str
    method: liability.Method
    currency: str
    lines: list[JournalLineOut]
    total_debit: str
    total_credit: str


def _month(value: str | None, today: date) -> date:
    if value is None:
        return pages.default_month(today)
    return pages.parse_month(value, today)


def months_out(view: pages.View, months: int) -> list[MonthOut]:
    places = view.places
    estimated = {m: e.estimated for m, e in view.report.expectations.items()}
    found = []
    for row in pages.records(view.report.frame.tail(months)):
        month = liability.month_of(row["month"])
        values: dict[str, Any] = {}
        for column in liability.ROLL_FORWARD_COLUMNS[2:]:
            value = row[column]
            values[column] = (
                int(value) if column.endswith("_points") else pages.money_exact(value, places)
            )
        found.append(
            MonthOut(
                month=f"{month:%Y-%m}",
                expected_rate=pages.rate_text(row["expected_rate"]),
                rate_estimated=estimated.get(month, False),
                **values,
            )
        )
    return found


def curve_out(view: pages.View) -> CurveOut | None:
    curve = view.curve
    if curve is None:
        return None
    return CurveOut(
        method=curve.method,
        as_of=f"{curve.as_of:%Y-%m}",
        used=view.curve_used,
        rate=pages.rate_text(curve.rate),
        issued=curve.issued,
        ultimate=_exact(curve.ultimate),
        description=curve.describe(),
        ages=[
            AgeOut(
                age=k,
                increment=_exact(curve.increments[k]),
                cumulative=_exact(curve.curve[k]),
                factor=(
                    None
                    if k >= len(curve.factors) or curve.factors[k] is None
                    else _exact(Decimal(str(curve.factors[k])))
                ),
            )
            for k in range(len(curve.curve))
        ],
        cohorts=[
            CohortOut(
                issue_month=f"{c.cohort:%Y-%m}",
                age=c.age,
                issued=c.issued,
                redeemed=c.redeemed,
                ultimate=_exact(c.ultimate),
                expected=_exact(c.expected),
            )
            for c in curve.cohorts
        ],
    )


def _exact(value: Decimal) -> str:
    """A curve figure to 6 decimals (shares and projections are unrounded quotients)."""
    return str(Decimal(value).quantize(Decimal("0.000001")))


def liability_out(view: pages.View, months: int = pages.SHOWN_MONTHS) -> LiabilityOut:
    expectation = view.expectation
    return LiabilityOut(
        until=f"{view.month:%Y-%m}",
        method=view.method,
        currency=view.report.base,
        point_value=str(view.report.point_value),
        expected_rate=None if expectation is None else pages.rate_text(expectation.rate),
        rate_estimated=bool(expectation and expectation.estimated),
        first_month=None if view.first_month is None else f"{view.first_month:%Y-%m}",
        reconciliation=ReconciliationOut(
            closing_points=view.closing_points or 0,
            ledger_points=view.ledger_points,
            reconciles=view.reconciles,
        ),
        months=months_out(view, months),
        curve=curve_out(view),
    )


def journal_out(view: pages.View) -> JournalOut:
    places = view.places
    lines = [
        JournalLineOut(
            date=row["date"],
            entry=str(row["entry"]),
            kind=str(row["kind"]),
            account=str(row["account"]),
            debit=pages.money_exact(row["debit"], places),
            credit=pages.money_exact(row["credit"], places),
            description=str(row["description"]),
        )
        for row in pages.records(view.journal)
    ]
    zero = Decimal(0)
    return JournalOut(
        month=f"{view.month:%Y-%m}",
        method=view.method,
        currency=view.report.base,
        lines=lines,
        total_debit=pages.money_exact(sum((Decimal(x.debit) for x in lines), zero), places),
        total_credit=pages.money_exact(sum((Decimal(x.credit) for x in lines), zero), places),
    )


@router.get(
    "/liability",
    response_model=LiabilityOut,
    summary="The points liability: monthly roll-forward, expected rates, redemption curve",
    description=(
        "The contract liability for unredeemed points (IFRS 15), computed from the ledger to"
        " the end of `until` (a local calendar month; default the last full month): the"
        " last `months` months of the roll-forward in points and in the base currency,"
        " each month's expected redemption rate (from the redemption curve known at its end,"
        " or the fallback of 1 while the oldest issue month is under 12 months old), the"
        " curve on `until` by months since issue with each issue month's projection, and the"
        " reconciliation of the closing points to the sum of the ledger's entries. A month"
        " after the current one is a 422 (`liability.month`), as is one not written YYYY-MM"
        " with a month 01–12 (`period.month`). Without any points the months are empty."
    ),
    responses=errors(409),
)
def get_liability(
    caller: Reader,
    db: Db,
    settings: AppSettings,
    now: pages.Clock,
    until: MonthQuery = None,
    method: MethodQuery = "additive",
    months: Annotated[
        int, Query(ge=1, le=MAX_MONTHS, description="How many months, ending with `until`")
    ] = pages.SHOWN_MONTHS,
) -> LiabilityOut:
    month = _month(until, now.date())
    view = pages.build(db, settings.zone, settings.base_currency, month, method)
    return liability_out(view, months)


@router.get(
    "/liability/journal",
    response_model=JournalOut,
    summary="The points liability's journal lines for one month",
    description=(
        "Debit and credit lines dated the month's last day, one balanced entry per movement:"
        " issue (sales revenue → contract liability), refunds (back), redemption, catch-up"
        " and breakage (contract liability → revenue). The contract liability's movement is"
        " the roll-forward's. `month` defaults to the last full month; `method` is the"
        " redemption curve's, as for `GET /liability`."
    ),
    responses=errors(409),
)
def get_journal(
    caller: Reader,
    db: Db,
    settings: AppSettings,
    now: pages.Clock,
    month: MonthQuery = None,
    method: MethodQuery = "additive",
) -> JournalOut:
    chosen = _month(month, now.date())
    view = pages.build(db, settings.zone, settings.base_currency, chosen, method)
    return journal_out(view)
