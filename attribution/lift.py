"""Incremental lift: what a campaign added, measured against its holdout.

A campaign with a holdout (`attribution.holdout`) splits its target segment in two arms: the
**treated** members, who got the campaign, and the **holdout**, who did not. Over the
campaign window both arms buy anyway; only the *difference* between them is the campaign's
doing. `lift_report` computes, from each arm's members and what each member did:

Inputs: each arm is an `Arm`, every member's revenue in the window (net of refunds, as the
caller books it) in the currency's minor units, one entry per member, zeros included, and
its number of converters; the campaign's cost is a Decimal in the same currency; `places`
is that currency's number of decimals. Pure: no database, no clock.

Definitions (t = treated arm, h = holdout arm)
----------------------------------------------
- **members** n: members of the arm in the segment.
- **converters** x: members of the arm who converted in the window (at least one qualifying
  purchase; the caller decides what counts and passes the count).
- **conversion rate** = x ÷ n (a statistic: float).
- **revenue per member** (RPM) = the arm's revenue in the window ÷ n, counting members who
  bought nothing as 0 (money: Decimal, rounded half up to the currency's minor unit).
- **lift** = rate_t ÷ rate_h − 1: how much more often, relatively, treated members converted
  (0.25 means 25 % more often). Not defined when the holdout has no converter.
- **incremental conversions** = n_t × (rate_t − rate_h): the conversions the campaign added
  among the members it reached (float: an estimate, not a count of people).
- **incremental revenue** = n_t × (RPM_t − RPM_h), from the exact averages, rounded half up to
  the minor unit once (money: Decimal). It can be negative: the campaign then cost sales.
- **incremental ROAS** = incremental revenue ÷ cost (Decimal, 2 places, half up).
- **incremental ROI %** = (incremental revenue − cost) ÷ cost × 100 (Decimal, 1 place, half
  up); the same quantity as the ROI report's "ROI %", on the incremental basis.
  Both ratios use the rounded incremental revenue, as shown, and are not defined (None, with
  the reason in `LiftReport.reasons`) without a holdout or when the cost is zero.

Statistics
----------
- **Two-proportion z-test, pooled** (`z_test`): with p̂ = (x_t + x_h) ÷ (n_t + n_h),
  ``z = (rate_t − rate_h) / sqrt(p̂ (1 − p̂) (1/n_t + 1/n_h))`` and the two-sided p-value
  ``p = 2 (1 − Φ(|z|))``, Φ the standard normal distribution function (scipy). z > 0 means
  the treated arm converted more often. This is statsmodels' ``proportions_ztest`` (pooled,
  two-sided) and the square root of the Pearson chi-square of the 2×2 table without
  continuity correction; the tests check the published example (5 of 83 against 12 of 99:
  z = −1.4078, p = 0.1592). It is not defined when nobody, or everybody, converted.
- **Bootstrap confidence interval on RPM_t − RPM_h** (`bootstrap_interval`): the percentile
  method. Each resample draws n_t members with replacement from the treated arm and n_h from
  the holdout, independently, and takes the difference of the two averages; the interval is
  the (1 − c)/2 and (1 + c)/2 quantiles (numpy's default linear interpolation) of
  `resamples` differences, c the confidence (default 95 %, 2,000 resamples). It is seeded
  (`BOOTSTRAP_SEED` by default, numpy's PCG64), so the same input gives the same interval;
  a different numpy release may change the last digits. Members without revenue are not
  drawn one by one: the number of draws that land on a member with revenue is binomial,
  and only those draws pick a member, which is the same distribution and lets an arm of a
  million mostly-silent members resample quickly. The bounds are computed in float and
  reported as money, rounded half up to the minor unit.
- **Verdict** (`Verdict`), on conversion, in this order (`VERDICTS` holds each English
  sentence; ``{level}`` is the significance level, e.g. "5%"; the web layer translates):

  ``no_holdout``          the holdout arm is empty: nothing to compare against.
  ``no_treatment``        the treated arm is empty: nobody got the campaign.
  ``too_few_converters``  "not enough evidence yet": under no difference, some arm would
                          expect fewer than `MIN_EXPECTED` (5) converters or non-converters
                          (Cochran's rule for the normal approximation to a 2×2 table).
  ``treatment_better``    p < alpha and z > 0.
  ``holdout_better``      p < alpha and z < 0: the campaign seems to put people off.
  ``not_enough_evidence`` p ≥ alpha: the difference could be chance (yet).

  The verdict judges conversion only; the revenue interval is shown beside it and speaks for
  revenue (an interval that excludes 0 is a significant revenue difference at its level).

Sample size
-----------
`sample_size` answers "how many members does the segment need to see a lift this big?" for a
two-sided two-proportion test at level α with power 1 − β, unequal arms allowed. With
p_h = the baseline rate (the holdout's expected rate), p_t = p_h × (1 + minimum detectable
lift), Δ = p_t − p_h, s = the holdout share and r = n_t / n_h = (1 − s) / s, the classical
normal-approximation formula without continuity correction (Fleiss, Tytun & Ury 1980,
"A simple approximation for calculating sample sizes for comparing independent
proportions", Biometrics 36:343–346; Fleiss, Levin & Paik, *Statistical Methods for Rates
and Proportions*, 3rd ed., 2003, ch. 4) gives the holdout arm

    n_h = [ z_{1−α/2} √((r + 1) p̄ q̄) + z_{1−β} √(r p_h q_h + p_t q_t) ]² / (r Δ²)

with p̄ = (p_h + r p_t) / (r + 1), q = 1 − p, and the treated arm n_t = r n_h. For equal arms
(s = 0.5) this is the sample size R's ``power.prop.test`` finds (p1 = 0.5, p2 = 0.75,
power 0.9: n = 76.7 per group) and gives the familiar 686 per arm for 10 % against 15 % at
α 0.05 and power 0.8. Each arm is rounded up to a whole member; the total is their sum.
Figures on proportions, rates and probabilities are floats: they are statistics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

from core.errors import ValidationFailed
from core.text import N_

VerdictCode = Literal[
    "no_holdout",
    "no_treatment",
    "too_few_converters",
    "treatment_better",
    "holdout_better",
    "not_enough_evidence",
]
VERDICTS: dict[VerdictCode, str] = {
    "no_holdout": N_(
        "No holdout: nobody was held out, so what the campaign added cannot be measured."
    ),
    "no_treatment": N_(
        "Nobody in the segment got the campaign, so there is nothing to compare yet."
    ),
    "too_few_converters": N_(
        "Not enough evidence yet: too few members have converted to compare the two groups."
    ),
    "treatment_better": N_(
        "Members who got the campaign converted more often than the holdout; "
        "the difference is significant at the {level} level."
    ),
    "holdout_better": N_(
        "The holdout converted more often than the members who got the campaign; "
        "the difference is significant at the {level} level."
    ),
    "not_enough_evidence": N_(
        "Not enough evidence yet: the difference in conversion could be chance "
        "at the {level} level."
    ),
}
# Why a figure is missing, by the field of `LiftReport` it belongs to.
NO_HOLDOUT = N_("No holdout group, so there is nothing to compare against.")
NO_TREATED = N_("Nobody got the campaign, so there is nothing to compare.")
NO_HOLDOUT_CONVERTER = N_("No holdout member converted, so relative lift is not defined.")
NO_COST = N_("No cost recorded, so this ratio cannot be computed.")
NO_VARIATION = N_("Nobody converted, or everybody did, so the test cannot be computed.")

MIN_EXPECTED = 5
BOOTSTRAP_SEED = 20150415
DEFAULT_RESAMPLES = 2000
MAX_RESAMPLES = 100_000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_ALPHA = 0.05
MAX_PLACES = 4
ROAS_PLACES = 2
ROI_PCT_PLACES = 1
# Draws taken from the generator at once while resampling: bounds the memory, not the result.
_CHUNK = 1 << 22
_INT64 = np.iinfo(np.int64)


# ---------------------------------------------------------------------------------------------
# Input


@dataclass(frozen=True, eq=False)
class Arm:
    """One arm over the campaign window: every member's revenue and how many converted.

    `revenue` holds one entry per member of the arm (0 for members who bought nothing), in the
    currency's minor units (cents for a 2-decimal currency) as 64-bit integers, so sums are
    exact and resampling is fast. `Arm.of` builds it from Decimal amounts."""

    revenue: npt.NDArray[np.int64]
    converters: int

    def __post_init__(self) -> None:
        values = np.asarray(self.revenue)
        if values.size == 0:
            values = np.zeros(0, dtype=np.int64)
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise TypeError("an arm's revenue is a 1-D array of whole minor units")
        object.__setattr__(self, "revenue", values.astype(np.int64, copy=False))
        if isinstance(self.converters, bool) or not isinstance(self.converters, int | np.integer):
            raise TypeError("converters is a whole number")
        object.__setattr__(self, "converters", int(self.converters))
        if not 0 <= self.converters <= values.size:
            raise ValueError(
                f"converters ({self.converters}) must be between 0 and the members ({values.size})"
            )

    @property
    def members(self) -> int:
        return int(self.revenue.size)

    @property
    def total_units(self) -> int:
        """The arm's revenue in minor units, summed exactly (Python integers)."""
        return sum(self.revenue.tolist())

    @classmethod
    def of(cls, revenue: Iterable[Decimal | int], converters: int, places: int) -> Arm:
        """An arm from each member's revenue as money with at most `places` decimals."""
        return cls(to_minor_units(revenue, places), converters)


def to_minor_units(amounts: Iterable[Decimal | int], places: int) -> npt.NDArray[np.int64]:
    """Money amounts as whole minor units; an amount with more than `places` decimals is
    refused rather than rounded (revenue arrives booked)."""
    _check_places(places)
    units: list[int] = []
    for amount in amounts:
        if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
            raise TypeError(f"revenue is Decimal money, never {type(amount).__name__}")
        scaled = Decimal(amount).scaleb(places)
        if not scaled.is_finite() or scaled != scaled.to_integral_value():
            raise ValueError(f"revenue {amount} has more than {places} decimal places")
        unit = int(scaled)
        if not _INT64.min <= unit <= _INT64.max:
            raise ValueError(f"revenue {amount} is out of range")
        units.append(unit)
    return np.array(units, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Output


@dataclass(frozen=True)
class ArmSummary:
    """One arm as reported. `conversion_rate` and `revenue_per_member` are None when empty."""

    members: int
    converters: int
    conversion_rate: float | None
    revenue: Decimal
    revenue_per_member: Decimal | None


@dataclass(frozen=True)
class ZTest:
    """The pooled two-proportion z-test, treated against holdout; two-sided p-value."""

    z: float
    p_value: float


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval on RPM_t − RPM_h, in money (see the module doc)."""

    low: Decimal
    high: Decimal
    confidence: float
    resamples: int
    seed: int

    def contains(self, value: Decimal) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Verdict:
    code: VerdictCode
    message: str


@dataclass(frozen=True)
class LiftReport:
    """Every figure of the lift report; a figure that is None has its reason in `reasons`."""

    treated: ArmSummary
    holdout: ArmSummary
    cost: Decimal
    lift: float | None
    incremental_conversions: float | None
    revenue_per_member_difference: Decimal | None
    incremental_revenue: Decimal | None
    incremental_roas: Decimal | None
    incremental_roi_pct: Decimal | None
    z_test: ZTest | None
    revenue_interval: Interval | None
    verdict: Verdict
    alpha: float
    reasons: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleSize:
    """Members needed per arm (rounded up) and in total; `*_exact` before rounding."""

    holdout: int
    treated: int
    total: int
    holdout_exact: float
    treated_exact: float


# ---------------------------------------------------------------------------------------------
# Pieces


def z_test(
    treated_converters: int, treated_members: int, holdout_converters: int, holdout_members: int
) -> ZTest | None:
    """The pooled two-proportion z-test (see the module doc); None when not defined."""
    for count, total in (
        (treated_converters, treated_members),
        (holdout_converters, holdout_members),
    ):
        if not 0 <= count <= total:
            raise ValueError(f"{count} converters of {total} members is impossible")
    if treated_members == 0 or holdout_members == 0:
        return None
    pooled = (treated_converters + holdout_converters) / (treated_members + holdout_members)
    if pooled in (0.0, 1.0):
        return None
    difference = treated_converters / treated_members - holdout_converters / holdout_members
    error = math.sqrt(pooled * (1 - pooled) * (1 / treated_members + 1 / holdout_members))
    z = difference / error
    return ZTest(z=z, p_value=float(2 * norm.sf(abs(z))))


def bootstrap_interval(
    treated: Arm,
    holdout: Arm,
    places: int,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval | None:
    """The percentile bootstrap interval on RPM_t − RPM_h (module doc); None if an arm is
    empty."""
    _check_places(places)
    if not 0 < confidence < 1:
        raise ValidationFailed("lift.confidence", "The confidence must be between 0 and 1.")
    if isinstance(resamples, bool) or not 1 <= resamples <= MAX_RESAMPLES:
        raise ValidationFailed(
            "lift.resamples",
            "The number of resamples must be 1 to %(max_resamples)s.",
            max_resamples=f"{MAX_RESAMPLES:,}",
        )
    if treated.members == 0 or holdout.members == 0:
        return None
    rng = np.random.default_rng(seed)
    treated_means = _resampled_sums(treated.revenue, rng, resamples) / treated.members
    holdout_means = _resampled_sums(holdout.revenue, rng, resamples) / holdout.members
    tail = (1 - confidence) / 2
    low, high = np.quantile(treated_means - holdout_means, [tail, 1 - tail])
    return Interval(
        low=_float_money(float(low), places),
        high=_float_money(float(high), places),
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )


def _resampled_sums(
    revenue: npt.NDArray[np.int64], rng: np.random.Generator, resamples: int
) -> npt.NDArray[np.float64]:
    """Sums of `resamples` resamples (with replacement, same size) of `revenue`.

    A draw lands on a member with revenue with chance k / n (k such members of n), so each
    resample's number of such draws is Binomial(n, k / n) and those draws are uniform over
    the k members: exactly the distribution of resampling all n, without drawing the zeros."""
    sums = np.zeros(resamples, dtype=np.float64)
    members = revenue.size
    values = revenue[revenue != 0].astype(np.float64)
    if values.size == 0:
        return sums
    counts = rng.binomial(members, values.size / members, size=resamples)
    start = 0
    while start < resamples:
        running = np.cumsum(counts[start:])
        stop = start + max(1, int(np.searchsorted(running, _CHUNK, side="right")))
        chunk = counts[start:stop]
        picks = rng.integers(0, values.size, size=int(chunk.sum()))
        owner = np.repeat(np.arange(chunk.size), chunk)
        sums[start:stop] = np.bincount(owner, weights=values[picks], minlength=chunk.size)
        start = stop
    return sums


def verdict(test: ZTest | None, treated: Arm, holdout: Arm, alpha: float) -> Verdict:
    """The plain-language verdict on conversion (module doc for the rules and their order)."""
    _check_alpha(alpha)
    code: VerdictCode
    if holdout.members == 0:
        code = "no_holdout"
    elif treated.members == 0:
        code = "no_treatment"
    elif test is None or _too_few(treated, holdout):
        code = "too_few_converters"
    elif test.p_value < alpha:
        code = "treatment_better" if test.z > 0 else "holdout_better"
    else:
        code = "not_enough_evidence"
    return Verdict(code, VERDICTS[code].format(level=f"{alpha * 100:g}%"))


def _too_few(treated: Arm, holdout: Arm) -> bool:
    """Cochran's rule: every expected count of the 2×2 table, under no difference, ≥ 5."""
    members = treated.members + holdout.members
    converters = treated.converters + holdout.converters
    for arm in (treated, holdout):
        expected = arm.members * converters / members
        if min(expected, arm.members - expected) < MIN_EXPECTED:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# The report


def lift_report(
    treated: Arm,
    holdout: Arm,
    cost: Decimal,
    places: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> LiftReport:
    """The lift report of a campaign: `treated` and `holdout` over the window, the campaign's
    `cost` (Decimal, in the same currency), money at `places` decimals (its minor unit)."""
    _check_places(places)
    _check_alpha(alpha)
    if not isinstance(cost, Decimal) or not cost.is_finite() or cost < 0:
        raise ValidationFailed("lift.cost", "A campaign's cost is an amount of at least 0.")
    reasons: dict[str, str] = {}
    t_sum, h_sum = treated.total_units, holdout.total_units
    n_t, n_h = treated.members, holdout.members
    x_t, x_h = treated.converters, holdout.converters
    missing = NO_HOLDOUT if n_h == 0 else NO_TREATED if n_t == 0 else None

    lift: float | None = None
    conversions: float | None = None
    rpm_difference: Decimal | None = None
    revenue: Decimal | None = None
    roas: Decimal | None = None
    roi_pct: Decimal | None = None
    if missing is not None:
        for name in (
            "lift",
            "incremental_conversions",
            "revenue_per_member_difference",
            "incremental_revenue",
            "incremental_roas",
            "incremental_roi_pct",
            "z_test",
            "revenue_interval",
        ):
            reasons[name] = missing
    else:
        rate_t, rate_h = x_t / n_t, x_h / n_h
        if x_h == 0:
            reasons["lift"] = NO_HOLDOUT_CONVERTER
        else:
            lift = rate_t / rate_h - 1
        conversions = x_t - n_t * x_h / n_h
        exact_difference = Fraction(t_sum, n_t) - Fraction(h_sum, n_h)
        rpm_difference = _money(exact_difference, places)
        revenue = _money(n_t * exact_difference, places)
        if cost == 0:
            reasons["incremental_roas"] = reasons["incremental_roi_pct"] = NO_COST
        else:
            roas = _decimal(Fraction(revenue) / Fraction(cost), ROAS_PLACES)
            roi_pct = _decimal(
                (Fraction(revenue) - Fraction(cost)) * 100 / Fraction(cost), ROI_PCT_PLACES
            )

    test = z_test(x_t, n_t, x_h, n_h)
    if test is None and missing is None:
        reasons["z_test"] = NO_VARIATION
    interval = bootstrap_interval(
        treated, holdout, places, confidence=confidence, resamples=resamples, seed=seed
    )
    return LiftReport(
        treated=_summary(treated, t_sum, places),
        holdout=_summary(holdout, h_sum, places),
        cost=cost,
        lift=lift,
        incremental_conversions=conversions,
        revenue_per_member_difference=rpm_difference,
        incremental_revenue=revenue,
        incremental_roas=roas,
        incremental_roi_pct=roi_pct,
        z_test=test,
        revenue_interval=interval,
        verdict=verdict(test, treated, holdout, alpha),
        alpha=alpha,
        reasons=reasons,
    )


def _summary(arm: Arm, units: int, places: int) -> ArmSummary:
    n = arm.members
    return ArmSummary(
        members=n,
        converters=arm.converters,
        conversion_rate=arm.converters / n if n else None,
        revenue=_money(Fraction(units), places),
        revenue_per_member=_money(Fraction(units, n), places) if n else None,
    )


# ---------------------------------------------------------------------------------------------
# Sample size


def sample_size(
    baseline_rate: float,
    minimum_detectable_lift: float,
    alpha: float = DEFAULT_ALPHA,
    power: float = 0.8,
    holdout_share: Decimal | float = Decimal("0.5"),
) -> SampleSize:
    """Members needed in each arm to detect a relative lift of `minimum_detectable_lift` over
    `baseline_rate` (the holdout's expected conversion rate) with a two-sided pooled
    two-proportion test at level `alpha` with `power`, when `holdout_share` of the segment is
    held out (Fleiss, Tytun & Ury 1980; formula in the module doc)."""
    _check_alpha(alpha)
    share = float(holdout_share)
    if not 0 < baseline_rate < 1:
        raise ValidationFailed(
            "lift.baseline_rate", "The baseline conversion rate must be between 0 and 1."
        )
    treated_rate = baseline_rate * (1 + minimum_detectable_lift)
    if not minimum_detectable_lift > 0 or not treated_rate <= 1:
        raise ValidationFailed(
            "lift.minimum_detectable_lift",
            "The minimum detectable lift must be above 0, and the rate it implies at most 100%.",
        )
    if not 0.5 <= power < 1:
        raise ValidationFailed("lift.power", "The power must be at least 0.5 and below 1.")
    if not 0 < share <= 0.5:
        raise ValidationFailed(
            "lift.holdout_share", "The holdout share must be above 0 and at most 0.5."
        )
    ratio = (1 - share) / share  # treated members per holdout member
    p_h, p_t = baseline_rate, treated_rate
    pooled = (p_h + ratio * p_t) / (ratio + 1)
    z_alpha = float(norm.ppf(1 - alpha / 2))
    z_beta = float(norm.ppf(power))
    root = z_alpha * math.sqrt((ratio + 1) * pooled * (1 - pooled)) + z_beta * math.sqrt(
        ratio * p_h * (1 - p_h) + p_t * (1 - p_t)
    )
    holdout_exact = root**2 / (ratio * (p_t - p_h) ** 2)
    treated_exact = ratio * holdout_exact
    holdout, treated = _round_up(holdout_exact), _round_up(treated_exact)
    return SampleSize(
        holdout=holdout,
        treated=treated,
        total=holdout + treated,
        holdout_exact=holdout_exact,
        treated_exact=treated_exact,
    )


def _round_up(value: float) -> int:
    # A hair of slack so that a size that is whole up to float noise is not rounded past it.
    return max(1, math.ceil(value * (1 - 1e-12)))


# ---------------------------------------------------------------------------------------------
# Checks and money


def _check_places(places: int) -> None:
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= MAX_PLACES:
        raise ValueError(f"a currency has 0 to {MAX_PLACES} decimal places, not {places!r}")


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha <= 0.5:
        raise ValidationFailed(
            "lift.alpha", "The significance level must be above 0 and at most 0.5."
        )


def _half_up(value: Fraction) -> int:
    """`value` rounded to a whole number, halves away from zero (Decimal's ROUND_HALF_UP)."""
    magnitude = (2 * abs(value.numerator) + value.denominator) // (2 * value.denominator)
    return -magnitude if value < 0 else magnitude


def _decimal(value: Fraction, places: int) -> Decimal:
    """`value` rounded half up to `places` decimals, exactly."""
    return Decimal(_half_up(value * 10**places)).scaleb(-places)


def _money(units: Fraction, places: int) -> Decimal:
    """An amount in minor units (exact) as money at `places` decimals, rounded half up."""
    return Decimal(_half_up(units)).scaleb(-places)


def _float_money(units: float, places: int) -> Decimal:
    """A float amount in minor units (a statistic) as money, rounded half up."""
    return _money(Fraction(units), places)
