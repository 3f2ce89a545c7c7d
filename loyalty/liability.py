"""Points liability and breakage (IFRS 15, customer loyalty programmes): the pure rules.

No session and no SQL here: `loyalty.liability_facts` loads the facts from the ledger and
calls these functions. Points are integers; money is `Decimal` in the base currency, rounded
half-up to its minor unit (`places`, from `core.money.minor_units`), and every figure of the
roll-forward is a difference of rounded amounts, so rows always add up to totals.

Definitions, for a finance reader
=================================

- **Value per point** (`Program.point_value`): the stand-alone selling price of one point,
  in the base currency, before the likelihood of redemption (what a point buys when spent).
- **Expected (ultimate) redemption rate**: the share of points issued that members are
  expected ever to redeem; the rest is **breakage**. Estimated from the ledger itself by
  redemption curves by issue month (`estimate`; the method is shown in words by
  `Estimate.describe`): a development triangle of points redeemed by months since issue,
  developed by the additive (incremental redemption-rate) method, or by the chain ladder.
  Points taken back by refunds are not issued for this purpose (they come off the points
  issued). Each month uses what the ledger showed at its end (`expected_rates`); until the
  oldest issue month is 12 months old the curve says too little about late redemptions and
  a fallback rate is used, by default 1 (no breakage is anticipated until it is highly
  probable that recognising it will not be reversed, IFRS 15.56 and B46). Rates are kept to
  four decimals (0.01 %), half-up.
- **Allocation** (IFRS 15.73–80, B42): a purchase that earns points is two promises, the goods
  and the points (a material right). Its price is split by relative stand-alone selling
  prices: the goods' is their price (what a customer without points pays, as in Illustrative
  Example 52), the points' is points × value per point × expected redemption rate (the
  likelihood of redemption is in the points' SSP, B42). The points' part is deferred as a
  **contract liability**; the goods' part is revenue at once. `allocate` rounds the points'
  part and gives the goods the rest, so the two always add up to the price. A month's
  purchases are allocated together: price = the booked base amounts of the month's purchases
  that earned points, points = the points credited on them (base, tier, bonus rules, first
  purchase and repeat bonuses).
- **Points given without a sale** (sign-up, birthday and referral bonuses, positive manual
  adjustments) bring no consideration, so no revenue is deferred for them: they join their
  month's cohort at nil allocated value (they lower its value per point) and are redeemed
  and expire like any other point. What giving them costs is the loyalty cost of the ROI
  report (at the value per point), not a contract liability.
- **Cohort** (the pool model): the points credited in one local calendar month, with the
  value allocated to them. Each cohort is measured as IFRS 15 Illustrative Example 52
  measures its one year of points, a portfolio of similar contracts (IFRS 15.4):

      recognised to date = allocated value × cumulative points redeemed
                           ÷ expected total redemptions               (rounded)
      liability          = allocated value − recognised to date

  **Expected total redemptions** of a cohort, at each month's end: what it has redeemed so
  far plus its points (net of refunds) times the share of points the redemption curve still
  expects at its age (curve at the oldest age observed − curve at its age; `estimate`). That
  is the additive method's own projection, and with chain-ladder factors the
  Bornhuetter–Ferguson projection: a cohort that has redeemed little or nothing yet is still
  expected to redeem as the curve says, and one that redeemed ahead of the curve is not
  taken to be finished. Without a curve (too little history, or given rates as in
  Example 52): expected rate × points issued (net of refunds), and at least what is already
  redeemed. Either way, at most what is already redeemed plus the points the cohort still
  holds (it cannot redeem points it no longer has).

  Why cohorts rather than one pool with a weighted average value per point: the cumulative
  catch-up of Example 52 needs the cumulative figures of a group of contracts. Over one
  lifetime pool a change of the expected rate would re-measure revenue on points redeemed
  years ago, and points issued at a lower value per point (bonuses at nil) would lower the
  revenue of redemptions already made (negative revenue in a month without redemptions).
  By issue month, each cohort keeps its own allocated value and redemptions, a catch-up
  touches only cohorts still open, and a cohort whose points are all gone is closed.
  The same issue-month cohorts are the rows of the redemption curves.
- **Redeemed** (revenue): a month's redemptions measured on the month's expected total
  redemptions, i.e. the Example 52 revenue of the month. It includes breakage recognised in
  proportion to redemptions (B46: each redeemed point releases allocated value ÷ expected
  redemptions, more than the value per point issued when breakage is expected).
- **Cumulative catch-up**: when a cohort's expected total redemptions change (a new expected
  rate or curve, or refunds that took points back), revenue already recognised is
  re-measured: the redemptions made before the month, on the new expected total (capped by
  what the cohort could still redeem at the month's start), minus what was recognised
  before. Negative when more redemptions are now expected (Example 52, year 2: −85).
- **Breakage** (revenue): released when the month's expiries and forfeits leave a cohort
  fewer points than it is still expected to redeem, so that its expected total must be cut
  to what is redeemed plus what it still holds (B46: the likelihood of redemption became
  remote); a cohort with no points left releases all that remains. Breakage that was
  expected is not here: it is recognised with the redemptions (above).
- **Expected points**: the redemptions still expected from the open cohorts (expected
  total − redeemed), in whole points; the liability is their value.
- **Reversed** (refunds): points a refund takes back leave their cohort with their allocated
  value (the cohort's allocated value per point issued, never more than the cohort's
  liability); the journal returns it to sales revenue, which the refund reduces. Points that
  pay back owed points (below) leave the lot that pays and are treated the same way, since
  they finish what the refund began.
- **Forfeited**: points taken away by a negative manual adjustment (a correction); like
  expired points, the member loses them without redeeming, so their value stays in the
  cohort and is released through the measurement above (breakage).
- **Owed**: points a refund or an adjustment took back beyond what the member held; the
  ledger counts them negative (the balance goes below zero) until later lots pay them back.
  Points held in lots − owed = the ledger's points outstanding.
- **Current portion** (IAS 1.66–76): the part of the liability expected to be released
  within 12 months of the month's end, from the redemption curve: for each open cohort of
  age a (whole months since issue), the share of its expected remaining redemptions that the
  curve puts in ages a+1 … a+12 (all of it once the cohort is older than the curve, or when
  the curve expects nothing more); applied to the cohort's liability, rounded. Without a
  curve (too little history) the whole liability is current: members can redeem at any time
  and the entity cannot defer settlement (IAS 1.69(d)). The rest is non-current.
- **Journal lines** (`journal_lines`): on issue, sales revenue → contract liability (the
  deferred part of the price: the till booked the whole price as sales); on refund, back; on
  redemption, catch-up and breakage, contract liability → revenue. Every entry balances,
  and the contract liability's movement in a month is the roll-forward's.
- **Rounding**: each cohort's allocated value and recognised-to-date are rounded half-up to
  the minor unit; every line of a month is a difference of such amounts, so opening +
  issued − reversed − redeemed − catch-up − breakage = closing exactly, in every month and
  over any span. The current portion is rounded per cohort; non-current = closing − current.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, NamedTuple

import pandas as pd

from core.text import N_

ZERO = Decimal(0)
ONE = Decimal(1)
RATE_PLACES = 4  # an expected redemption rate is kept to 0.01 %
HORIZON_MONTHS = 12  # the current portion: released within this many months

Method = Literal["additive", "chain_ladder"]
METHODS: tuple[Method, ...] = ("additive", "chain_ladder")

# Accounts of the journal lines.
SALES_REVENUE = "Sales revenue"
CONTRACT_LIABILITY = "Contract liability - loyalty points"
REDEMPTION_REVENUE = "Revenue - loyalty points redeemed"
BREAKAGE_REVENUE = "Revenue - loyalty points breakage"

# The month facts (`liability_facts.month_facts`), one row per local calendar month, points
# from the ledger's entries dated in the month:
# issued = earn + bonus + positive adjustments; sold = of which credited on purchases;
# sales = booked base amount of the purchases that earned points; redeemed, expired,
# reversed (refunds), forfeited (negative adjustments) as positive numbers;
# closing = opening + issued − redeemed − expired − reversed − forfeited.
MONTH_COLUMNS = (
    "month",
    "opening",
    "issued",
    "sold",
    "sales",
    "redeemed",
    "expired",
    "reversed",
    "forfeited",
    "closing",
)
# The cohort flows (`liability_facts.cohort_flows`): points of the lots credited in month
# `cohort` that moved in month `month`: issued (in the cohort's own month), redeemed,
# expired, forfeited (negative adjustments), reversed (refunds) and settled (taken to pay
# back owed points), each drawn from those lots.
FLOW_COLUMNS = (
    "cohort",
    "month",
    "issued",
    "redeemed",
    "expired",
    "forfeited",
    "reversed",
    "settled",
)
# The roll-forward, one row per month.
ROLL_FORWARD_COLUMNS = (
    "month",
    "expected_rate",
    "opening_points",
    "issued_points",
    "redeemed_points",
    "expired_points",
    "reversed_points",
    "forfeited_points",
    "closing_points",
    "owed_points",
    "held_points",
    "expected_points",
    "current_points",
    "opening_value",
    "issued_value",
    "reversed_value",
    "redeemed_value",
    "catch_up_value",
    "breakage_value",
    "closing_value",
    "current_value",
    "non_current_value",
    "revenue",
)
# One line of the journal: `entry` numbers the balanced entry (LOY-YYYY-MM-NN), `kind` says
# which movement it books (issue, refund, redeem, catch_up, breakage).
JOURNAL_COLUMNS = ("date", "entry", "kind", "account", "debit", "credit", "description")


def quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def rounded(amount: Decimal, places: int) -> Decimal:
    """Half-up to `places` decimals (the base currency's minor unit)."""
    return amount.quantize(quantum(places), rounding=ROUND_HALF_UP)


# --- Allocation ------------------------------------------------------------------------


class Allocation(NamedTuple):
    goods: Decimal
    points: Decimal


def allocate(
    price: Decimal, points_ssp: Decimal, goods_ssp: Decimal, *, places: int = 2
) -> Allocation:
    """Split `price` between the goods and the points by their relative stand-alone selling
    prices (IFRS 15.76): points = price × points_ssp ÷ (points_ssp + goods_ssp), rounded
    half-up to `places`; the goods take the rest, so the parts add up to the price exactly.

    >>> allocate(Decimal(100000), Decimal(9500), Decimal(100000), places=0)
    Allocation(goods=Decimal('91324'), points=Decimal('8676'))
    """
    if points_ssp < 0 or goods_ssp < 0:
        raise ValueError("stand-alone selling prices cannot be negative")
    total = points_ssp + goods_ssp
    if total == 0:
        if price != 0:
            raise ValueError("a price cannot be allocated to stand-alone selling prices of 0")
        return Allocation(rounded(ZERO, places), rounded(ZERO, places))
    points = rounded(price * points_ssp / total, places)
    return Allocation(rounded(price, places) - points, points)


def points_ssp(points: int, point_value: Decimal, rate: Decimal) -> Decimal:
    """The points' stand-alone selling price: points × value per point × the likelihood of
    redemption (IFRS 15.B42), unrounded."""
    return Decimal(points) * point_value * rate


def allocated_values(
    months: pd.DataFrame, point_value: Decimal, rates: Mapping[date, Decimal], *, places: int
) -> dict[date, Decimal]:
    """The value allocated to each month's cohort: the month's purchases that earned points
    (`sales`, `sold` points) allocated together at the month's expected rate; points given
    without a sale add nothing (see the module's docstring)."""
    values: dict[date, Decimal] = {}
    for row in _records(months, MONTH_COLUMNS):
        month = row["month"]
        ssp = points_ssp(int(row["sold"]), point_value, _rate(rates, month))
        sales = Decimal(row["sales"])
        values[month] = allocate(sales, ssp, sales, places=places).points
    return values


# --- Redemption curves -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CohortProjection:
    """One issue month on the valuation date."""

    cohort: date
    age: int  # whole months from the issue month to the valuation month
    issued: int  # points issued less points taken back by refunds (the exposure)
    redeemed: int  # redeemed so far
    ultimate: Decimal  # projected total redemptions, by the method
    expected: Decimal  # what the liability measures it on (`Estimate.expected_total`)


@dataclass(frozen=True, slots=True)
class Estimate:
    """The redemption curve and the ultimate redemption rate on a valuation month.

    `curve[k]`: the expected share of issued points redeemed by k months after issue
    (cumulative); `increments[k]`: the share redeemed k months after issue;
    `factors[k]`: the development factor on cumulative redemptions from age k to k+1 (for
    the chain ladder, the volume-weighted factors it used; for the additive method, the
    ratios of its curve), None where nothing was redeemed by age k."""

    method: Method
    as_of: date
    increments: tuple[Decimal, ...]
    factors: tuple[Decimal | None, ...]
    curve: tuple[Decimal, ...]
    cohorts: tuple[CohortProjection, ...]
    issued: int
    ultimate: Decimal
    rate: Decimal  # ultimate ÷ issued, rounded half-up to RATE_PLACES, at most 1

    @property
    def max_age(self) -> int:
        return len(self.curve) - 1

    def share_within(self, age: int, months: int = HORIZON_MONTHS) -> Decimal:
        """Of the redemptions still expected from a cohort of `age`, the share the curve
        puts in the next `months` months (1 when it expects nothing more)."""
        remaining = self.still_expected(age)
        if remaining <= 0:
            return ONE
        return (remaining - self.still_expected(age + months)) / remaining

    def still_expected(self, age: int) -> Decimal:
        """The share of issued points the curve expects to be redeemed after `age` months
        since issue (0 once the cohort is as old as the curve)."""
        last = self.max_age
        if age >= last:
            return ZERO
        return self.curve[last] - (self.curve[age] if age >= 0 else ZERO)

    def expected_total(self, issued: int, redeemed: int, age: int) -> Decimal:
        """A cohort's expected total redemptions: redeemed so far plus its points issued
        (net of refunds) times the share the curve still expects at its age."""
        return redeemed + max(issued, 0) * self.still_expected(age)

    def describe(self) -> str:
        """The method in words, with its figures, for the page ("method shown")."""
        return " ".join(template % params for template, params in self.described())

    def described(self) -> list[tuple[str, dict[str, str]]]:
        """`describe` as its sentences' templates and params, for the staff catalog."""
        how = (
            N_(
                "Chain ladder on cumulative redemptions by issue month: the development "
                "factor from k to k+1 months after issue is the points redeemed by k+1 months "
                "by the issue months observed that long, divided by what the same issue "
                "months had redeemed by k months (volume weighted; a factor whose issue "
                "months had redeemed nothing by k is taken as 1). Each issue month's "
                "redemptions so far, times the factors of the ages it has not reached, are "
                "its projected ultimate redemptions."
            )
            if self.method == "chain_ladder"
            else N_(
                "Additive development (the incremental redemption-rate method) by issue "
                "month: for each age k (months since issue), the points redeemed at age k by "
                "the issue months observed that long, divided by the points those months "
                "issued, is the share of points redeemed at age k; the shares add up to the "
                "redemption curve. Each issue month's projected ultimate redemptions are "
                "its redemptions so far plus its points issued times the shares of the ages "
                "it has not reached (unlike the chain ladder, an issue month that has "
                "redeemed nothing yet is still expected to redeem)."
            )
        )
        figures = N_(
            "Ultimate redemption rate = projected redemptions ÷ points issued = "
            "%(ultimate)s ÷ %(issued)s = %(percent)s, over %(months)s issue months to "
            "%(as_of)s. Points issued are net of points taken back by refunds. Ages beyond "
            "%(max_age)s months since issue are not observed yet and are assumed to add no "
            "redemptions. The liability measures each issue month on its redemptions so far "
            "plus its points issued times the share the curve still expects at its age."
        )
        params = {
            "ultimate": f"{self.ultimate:,.0f}",
            "issued": f"{self.issued:,}",
            "percent": f"{self.rate * 100:.2f}%",
            "months": str(len(self.cohorts)),
            "as_of": f"{self.as_of:%Y-%m}",
            "max_age": str(self.max_age),
        }
        return [(how, {}), (figures, params)]


def estimate(flows: pd.DataFrame, as_of: date, *, method: Method = "additive") -> Estimate | None:
    """The redemption curve and ultimate redemption rate from the cohort flows dated up to
    the month of `as_of` (later rows are ignored: what was known then). None when no points
    were issued by then.

    Rows: issue months (cohorts) to `as_of`; columns: ages 0 … (as_of − oldest issue month)
    in months; a cohort is observed at the ages it has reached. Exposure = points issued −
    reversed − settled (points taken back by refunds)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    valuation = _index(as_of)
    exposure: dict[int, int] = {}
    redeemed: dict[int, dict[int, int]] = {}
    for row in _records(flows, FLOW_COLUMNS):
        cohort, month = _index(row["cohort"]), _index(row["month"])
        if month > valuation:
            continue
        exposure[cohort] = (
            exposure.get(cohort, 0)
            + int(row["issued"])
            - int(row["reversed"])
            - int(row["settled"])
        )
        if int(row["redeemed"]):
            by_age = redeemed.setdefault(cohort, {})
            by_age[month - cohort] = by_age.get(month - cohort, 0) + int(row["redeemed"])
    cohorts = sorted(c for c, points in exposure.items() if points > 0)
    if not cohorts:
        return None
    last = valuation - cohorts[0]
    ages = {c: valuation - c for c in cohorts}
    incremental = {c: [redeemed.get(c, {}).get(k, 0) for k in range(ages[c] + 1)] for c in cohorts}
    so_far = {c: sum(incremental[c]) for c in cohorts}
    issued = sum(exposure[c] for c in cohorts)

    if method == "additive":
        increments = []
        for k in range(last + 1):
            seen = [c for c in cohorts if ages[c] >= k]
            base = sum(exposure[c] for c in seen)
            increments.append(
                Decimal(sum(incremental[c][k] for c in seen)) / base if base else ZERO
            )
        curve = _cumulative(increments)
        ultimates = {c: so_far[c] + exposure[c] * (curve[last] - curve[ages[c]]) for c in cohorts}
        factors = tuple(curve[k + 1] / curve[k] if curve[k] else None for k in range(last))
    else:
        cumulative = {c: _cumulative([Decimal(x) for x in incremental[c]]) for c in cohorts}
        chain: list[Decimal | None] = []
        for k in range(last):
            seen = [c for c in cohorts if ages[c] >= k + 1]
            base_k = sum((cumulative[c][k] for c in seen), ZERO)
            chain.append(
                sum((cumulative[c][k + 1] for c in seen), ZERO) / base_k if base_k else None
            )
        to_ultimate = [ONE] * (last + 1)  # cumulative development factor from age k
        for k in range(last - 1, -1, -1):
            to_ultimate[k] = to_ultimate[k + 1] * (chain[k] or ONE)
        ultimates = {c: so_far[c] * to_ultimate[ages[c]] for c in cohorts}
        pooled = sum(ultimates.values(), ZERO) / issued
        curve = [pooled / factor for factor in to_ultimate]
        increments = [curve[0], *(curve[k] - curve[k - 1] for k in range(1, last + 1))]
        factors = tuple(chain)
    ultimate = sum(ultimates.values(), ZERO)
    rate = min(ONE, (ultimate / issued).quantize(quantum(RATE_PLACES), rounding=ROUND_HALF_UP))
    return Estimate(
        method=method,
        as_of=_month(valuation),
        increments=tuple(increments),
        factors=factors,
        curve=tuple(curve),
        cohorts=tuple(
            CohortProjection(
                _month(c),
                ages[c],
                exposure[c],
                so_far[c],
                ultimates[c],
                so_far[c] + exposure[c] * (curve[last] - curve[ages[c]]),
            )
            for c in cohorts
        ),
        issued=issued,
        ultimate=ultimate,
        rate=rate,
    )


@dataclass(frozen=True, slots=True)
class Expectation:
    """The expected redemption rate used for one month, and where it comes from."""

    month: date
    rate: Decimal
    estimate: Estimate | None  # the curve on that month, when it was used
    estimated: bool  # False: the fallback rate (too little history)


def expected_rates(
    flows: pd.DataFrame,
    months: Iterable[date],
    *,
    method: Method = "additive",
    min_history: int = HORIZON_MONTHS,
    fallback: Decimal = ONE,
) -> dict[date, Expectation]:
    """The expected redemption rate of each month, estimated from what the ledger showed at
    its end (`estimate` as of the month). Until the oldest issue month is `min_history`
    months old the curve says too little about late redemptions, so `fallback` is used
    (by default 1: no breakage is anticipated until it is highly probable that recognising
    it will not be reversed, IFRS 15.56) and the whole liability is current."""
    found: dict[date, Expectation] = {}
    for month in months:
        first = _month(_index(month))
        made = estimate(flows, first, method=method)
        if made is None or made.max_age < min_history:
            found[first] = Expectation(first, fallback, None, False)
        else:
            found[first] = Expectation(first, made.rate, made, True)
    return found


# --- The roll-forward ------------------------------------------------------------------


@dataclass(slots=True)
class _Cohort:
    month: int
    value: Decimal  # allocated value, net of what refunds took back
    issued: int  # points issued, net of refunds
    redeemed: int = 0
    redeemed_before: int = 0  # redeemed by the start of the month being measured
    capacity: int = 0  # redeemed + held at its start, with the month's issue
    held: int = 0  # points still in its lots
    recognised: Decimal = ZERO
    expected: Decimal = ZERO  # expected total redemptions at the last measurement


@dataclass(slots=True)
class _Month:
    reversed: Decimal = ZERO
    redeemed: Decimal = ZERO
    catch_up: Decimal = ZERO
    breakage: Decimal = ZERO
    current: Decimal = ZERO
    expected: Decimal = ZERO
    expected_current: Decimal = ZERO


def roll_forward(
    months: pd.DataFrame,
    flows: pd.DataFrame,
    rates: Mapping[date, Decimal],
    allocated: Mapping[date, Decimal],
    *,
    places: int,
    curves: Mapping[date, Estimate | None] | None = None,
    horizon: int = HORIZON_MONTHS,
) -> pd.DataFrame:
    """The monthly roll-forward in points and in the base currency (ROLL_FORWARD_COLUMNS).

    `months`: the month facts (MONTH_COLUMNS), consecutive, oldest first, from the first
    month with points (the measurement is cumulative: it needs every cohort from its issue).
    `flows`: the cohort flows (FLOW_COLUMNS). `rates`: the expected redemption rate of each
    month. `allocated`: the value allocated to each month's cohort (`allocated_values`).
    `curves`: each month's redemption curve (`expected_rates`); with one, cohorts are measured
    on their expected total redemptions by the curve and the current portion follows it;
    without one (None, or None for a month), on rate × points issued, and all is current.

    Points columns are the ledger's (`*_points` from `months`): closing = opening + issued −
    redeemed − expired − reversed − forfeited. `held_points` are the points in the cohorts'
    lots and `owed_points` = held − closing. Value columns follow the module's docstring:
    closing = opening + issued − reversed − redeemed − catch-up − breakage, and revenue =
    redeemed + catch-up + breakage.
    """
    facts = _records(months, MONTH_COLUMNS)
    moves = _flows_by_month(flows)
    cohorts: dict[int, _Cohort] = {}
    rows: list[dict[str, Any]] = []
    opening_value = rounded(ZERO, places)
    expected_index: int | None = None
    held = previous = 0
    for fact in facts:
        month = fact["month"]
        at = _index(month)
        if expected_index is not None and at != expected_index:
            raise ValueError(f"months must be consecutive: {_month(expected_index)} is missing")
        expected_index = at + 1
        if int(fact["opening"]) != previous:
            raise ValueError(
                f"{month:%Y-%m}: opening points are not the closing points before "
                "(the roll-forward starts at the first month with points)"
            )
        previous = int(fact["closing"])
        rate = _rate(rates, month)
        flows_now = moves.pop(at, {})
        _check_month(fact, flows_now, month)

        issued_value = rounded(allocated.get(month, ZERO), places)
        if issued_value and not int(fact["issued"]):
            raise ValueError(f"{month:%Y-%m}: value allocated to a month without points")
        if int(fact["issued"]):
            cohorts[at] = _Cohort(at, issued_value, 0)
        totals = _Month()
        curve = curves.get(month) if curves is not None else None
        for open_cohort in cohorts.values():
            open_cohort.redeemed_before = open_cohort.redeemed
            open_cohort.capacity = open_cohort.redeemed + open_cohort.held
        for cohort_at, flow in sorted(flows_now.items()):
            if cohort_at not in cohorts:
                raise ValueError(f"{month:%Y-%m}: points move from unknown cohort {cohort_at}")
            cohort = cohorts[cohort_at]
            cohort.issued += flow["issued"]
            cohort.held += flow["issued"]
            cohort.capacity += flow["issued"]
            taken = flow["reversed"] + flow["settled"]
            if taken:
                value = rounded(cohort.value * taken / cohort.issued, places)
                value = min(value, cohort.value - cohort.recognised)
                cohort.value -= value
                cohort.issued -= taken
                totals.reversed += value
            cohort.redeemed += flow["redeemed"]
            cohort.held -= flow["redeemed"] + flow["expired"] + flow["forfeited"] + taken
            if cohort.held < 0:
                raise ValueError(f"{month:%Y-%m}: more points left cohort {cohort_at} than it held")
        for cohort in list(cohorts.values()):
            if curve is not None:
                expected = curve.expected_total(cohort.issued, cohort.redeemed, at - cohort.month)
            else:
                expected = max(rate * cohort.issued, Decimal(cohort.redeemed))
            _measure(cohort, expected, places, totals)
            _current(cohort, at, curve, horizon, places, totals)
            if cohort.held == 0 and cohort.value == cohort.recognised:
                del cohorts[cohort.month]  # closed: nothing can move it again
        held += sum(flow["issued"] - _out(flow) for flow in flows_now.values())
        closing_value = sum((c.value - c.recognised for c in cohorts.values()), ZERO)
        closing_value = rounded(closing_value, places)
        revenue = totals.redeemed + totals.catch_up + totals.breakage
        assert closing_value == opening_value + issued_value - totals.reversed - revenue
        current = totals.current if curve is not None else closing_value
        rows.append(
            {
                "month": month,
                "expected_rate": rate,
                "opening_points": int(fact["opening"]),
                "issued_points": int(fact["issued"]),
                "redeemed_points": int(fact["redeemed"]),
                "expired_points": int(fact["expired"]),
                "reversed_points": int(fact["reversed"]),
                "forfeited_points": int(fact["forfeited"]),
                "closing_points": int(fact["closing"]),
                "owed_points": held - int(fact["closing"]),
                "held_points": held,
                "expected_points": _whole(totals.expected),
                "current_points": _whole(totals.expected_current)
                if curve is not None
                else _whole(totals.expected),
                "opening_value": opening_value,
                "issued_value": issued_value,
                "reversed_value": totals.reversed,
                "redeemed_value": totals.redeemed,
                "catch_up_value": totals.catch_up,
                "breakage_value": totals.breakage,
                "closing_value": closing_value,
                "current_value": current,
                "non_current_value": closing_value - current,
                "revenue": revenue,
            }
        )
        opening_value = closing_value
    if moves:
        first = _month(min(moves))
        raise ValueError(f"cohort flows in {first:%Y-%m}, outside the months given")
    return pd.DataFrame(rows, columns=list(ROLL_FORWARD_COLUMNS))


def _measure(cohort: _Cohort, expected: Decimal, places: int, totals: _Month) -> None:
    """Example 52 on one cohort at the month's end, given its expected total redemptions:
    recognised to date, and how this month's change splits into

    - catch-up: redemptions before the month on the new expectation (capped by what the
      cohort could still redeem at the month's start) − recognised before;
    - redeemed: all redemptions on that basis − the same for those before the month;
    - breakage: what the month's expiries and forfeits add by cutting the expectation to
      what the cohort can still redeem at the month's end (redeemed + held)."""
    before = cohort.recognised
    basis = min(expected, Decimal(cohort.capacity))
    possible = min(expected, Decimal(cohort.redeemed + cohort.held))

    def share(points: int, of: Decimal) -> Decimal:
        return rounded(cohort.value * points / of, places) if of else ZERO

    restated = share(cohort.redeemed_before, basis) if basis else cohort.value
    with_month = share(cohort.redeemed, basis) if basis else cohort.value
    now = share(cohort.redeemed, possible) if possible else cohort.value
    totals.catch_up += restated - before
    totals.redeemed += with_month - restated
    totals.breakage += now - with_month
    cohort.recognised = now
    cohort.expected = possible


def _current(
    cohort: _Cohort, at: int, curve: Estimate | None, horizon: int, places: int, totals: _Month
) -> None:
    """The cohort's redemptions still expected, and its share of the current portion."""
    left = cohort.expected - cohort.redeemed
    totals.expected += left
    share = curve.share_within(at - cohort.month, horizon) if curve is not None else ONE
    totals.current += rounded((cohort.value - cohort.recognised) * share, places)
    totals.expected_current += left * share


def _out(flow: Mapping[str, int]) -> int:
    return (
        flow["redeemed"] + flow["expired"] + flow["forfeited"] + flow["reversed"] + flow["settled"]
    )


def _check_month(
    fact: Mapping[str, Any], flows: Mapping[int, Mapping[str, int]], month: date
) -> None:
    """The cohort flows must tell the ledger's story: the same points issued, redeemed and
    expired in the month (reversals and negative adjustments may exceed what the lots gave:
    the rest is owed)."""
    opening, closing = int(fact["opening"]), int(fact["closing"])
    moved = (
        int(fact["issued"])
        - int(fact["redeemed"])
        - int(fact["expired"])
        - int(fact["reversed"])
        - int(fact["forfeited"])
    )
    if closing != opening + moved:
        raise ValueError(f"{month:%Y-%m}: closing points are not opening plus movements")
    at = _index(month)
    for name in ("issued", "redeemed", "expired"):
        drawn = sum(flow[name] for flow in flows.values())
        if drawn != int(fact[name]):
            raise ValueError(
                f"{month:%Y-%m}: {drawn:,} points {name} in the cohorts, "
                f"{int(fact[name]):,} in the ledger"
            )
    if any(cohort_at != at and flow["issued"] for cohort_at, flow in flows.items()):
        raise ValueError(f"{month:%Y-%m}: a cohort issued points outside its own month")


def _flows_by_month(flows: pd.DataFrame) -> dict[int, dict[int, dict[str, int]]]:
    found: dict[int, dict[int, dict[str, int]]] = {}
    names = FLOW_COLUMNS[2:]
    for row in _records(flows, FLOW_COLUMNS):
        cohort, month = _index(row["cohort"]), _index(row["month"])
        if month < cohort:
            raise ValueError(f"points of {row['cohort']:%Y-%m} moved before they were issued")
        slot = found.setdefault(month, {}).setdefault(cohort, dict.fromkeys(names, 0))
        for name in names:
            slot[name] += int(row[name])
    return found


# --- Journal lines ---------------------------------------------------------------------


def journal_lines(frame: pd.DataFrame) -> pd.DataFrame:
    """Debit and credit lines (JOURNAL_COLUMNS) for each month of a roll-forward, dated the
    month's last day, one balanced entry per movement: issue (sales revenue → contract
    liability), refunds (back), redemption, catch-up and breakage (contract liability →
    revenue; a negative catch-up the other way). Amounts are positive; zero movements make
    no entry."""
    lines: list[dict[str, Any]] = []
    for row in _records(frame, ("month",)):
        month: date = row["month"]
        day = month.replace(day=calendar.monthrange(month.year, month.month)[1])
        movements = (
            (
                "issue",
                row["issued_value"],
                SALES_REVENUE,
                CONTRACT_LIABILITY,
                N_("Points issued: the part of the price allocated to them is deferred"),
            ),
            (
                "refund",
                row["reversed_value"],
                CONTRACT_LIABILITY,
                SALES_REVENUE,
                N_("Points taken back by refunds: their deferred part returns to sales"),
            ),
            (
                "redeem",
                row["redeemed_value"],
                CONTRACT_LIABILITY,
                REDEMPTION_REVENUE,
                N_("Points redeemed: revenue recognised"),
            ),
            (
                "catch_up",
                row["catch_up_value"],
                CONTRACT_LIABILITY,
                REDEMPTION_REVENUE,
                N_("Change in expected redemptions: cumulative catch-up"),
            ),
            (
                "breakage",
                row["breakage_value"],
                CONTRACT_LIABILITY,
                BREAKAGE_REVENUE,
                N_("Points expired or forfeited beyond expectation: breakage recognised"),
            ),
        )
        number = 0
        for kind, amount, debit, credit, text in movements:
            amount = Decimal(amount)
            if amount == 0:
                continue
            if amount < 0:
                amount, debit, credit = -amount, credit, debit
            number += 1
            entry = f"LOY-{month:%Y-%m}-{number:02d}"
            zero = amount - amount  # zero with the amount's decimals
            lines.append(_line(day, entry, kind, debit, amount, zero, text))
            lines.append(_line(day, entry, kind, credit, zero, amount, text))
    return pd.DataFrame(lines, columns=list(JOURNAL_COLUMNS))


def _line(
    day: date, entry: str, kind: str, account: str, debit: Decimal, credit: Decimal, text: str
) -> dict[str, Any]:
    return {
        "date": day,
        "entry": entry,
        "kind": kind,
        "account": account,
        "debit": debit,
        "credit": credit,
        "description": text,
    }


# --- Helpers ---------------------------------------------------------------------------


def _index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _cumulative(values: list[Decimal]) -> list[Decimal]:
    total, out = ZERO, []
    for value in values:
        total += value
        out.append(total)
    return out


def _whole(value: Decimal) -> int:
    return int(value.quantize(ONE, rounding=ROUND_HALF_UP))


def _rate(rates: Mapping[date, Decimal], month: date) -> Decimal:
    rate = rates.get(_month(_index(month)))
    if rate is None:
        raise ValueError(f"no expected redemption rate for {month:%Y-%m}")
    if not ZERO <= rate <= ONE:
        raise ValueError(f"the expected redemption rate for {month:%Y-%m} is not in [0, 1]")
    return Decimal(rate)


def _records(frame: pd.DataFrame, columns: Iterable[str]) -> list[dict[str, Any]]:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in row.items()} for row in frame.to_dict("records")
    ]
    for row in records:
        for key in ("month", "cohort"):
            if key in row:
                row[key] = month_of(row[key])
    return records


def month_of(value: Any) -> date:
    """The first day of the month of a date, a timestamp or an ISO date text."""
    if isinstance(value, pd.Timestamp):
        value = value.date()
    if not isinstance(value, date):
        value = date.fromisoformat(str(value)[:10])
    return date(value.year, value.month, 1)
