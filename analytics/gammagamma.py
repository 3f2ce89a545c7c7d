"""The Gamma-Gamma model of spend per purchase (Fader & Hardie 2013, "The Gamma-Gamma Model of
Monetary Value"), and customer lifetime value with the BG/NBD (`analytics.bgnbd`).

**The model.** A customer's spend per transaction is Gamma(p, ν) (mean p/ν), and ν varies
across customers as Gamma(q, γ). A repeat buyer is summarised by x (repeat transactions) and
m̄ (their mean spend). Its likelihood (F&H 2013 eq. 3, in m̄)::

    ll = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m̄ + px ln x − (px+q) ln(γ + m̄x)

**Which mean spend.** m̄ is the mean over the *repeat* purchase days of the calibration
period (same-day transactions merged, the first purchase left out): `summaries` column
``monetary_value``. On CDNOW this gives the published p = 6.25, q = 3.74, γ = 15.44 on the
946 repeat buyers; averaging over all calibration purchases (first one included) gives
p ≈ 14.3, q ≈ 3.95, γ ≈ 7.29, and not merging same-day transactions p ≈ 6.10, q ≈ 3.86,
γ ≈ 16.15 — neither is the paper's. Customers with x = 0 have no repeat spend and do not
enter the fit.

**Fit.** Maximum likelihood over (log p, log q, log γ) with the analytic gradient, from three
starting points (the likelihood has a ridge towards p → ∞, γ → 0 where a start far away can
end), spend rescaled by its mean (γ is a money scale), Newton-polished; standard errors by
the delta method from the log-parameter Hessian, as in `bgnbd`.

**Conditional expected spend** (F&H eq. 5)::

    E[M | p, q, γ, m̄, x] = (γ + m̄ x) p / (px + q − 1)
                         = (q−1)/(px+q−1) · pγ/(q−1) + px/(px+q−1) · m̄

a weighted mean of the population mean pγ/(q−1) and the customer's own m̄. For x = 0 it is
the population mean (m̄ is ignored); it is infinite when q ≤ 1 and NaN where px + q ≤ 1.

**Customer lifetime value** over a horizon, the discounted-cash-flow sum of lifetimes (the
Python package) ``customer_lifetime_value``::

    CLV = Σ_{i=1..n} E[M] · (E[Y(iΔ)] − E[Y((i−1)Δ)]) / (1 + d)^i

E[Y(t)] the BG/NBD conditional expected purchases of the customer (`bgnbd`), Δ the length of a
period in the model's time unit and d the discount rate *per period*: a monthly rate with
monthly periods (Δ = 365.25/12 days, 4.348 weeks), a weekly rate with weekly periods
(`period_length`). Cash is discounted at the end of the period it falls in. It is expected
*revenue*; multiply by a margin for profit. (lifetimes takes a month as 4.345 weeks, so its
figures differ in the fourth digit.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln

from analytics.bgnbd import (
    BgNbdParams,
    IntArray,
    compress_rows,
    conditional_expected_purchases,
    covariance_from_log,
    frequency_groups,
    maximise,
)
from analytics.summaries import UNIT_DAYS, Unit, check_unit
from core.errors import ValidationFailed

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike
Period = Literal["month", "week"]
PERIOD_DAYS: dict[str, float] = {"month": 365.25 / 12, "week": 7.0}


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """p (shape of spend per transaction), q and γ (shape and rate of its rate ν)."""

    p: float
    q: float
    gamma: float

    def as_array(self) -> FloatArray:
        return np.array([self.p, self.q, self.gamma], dtype=np.float64)

    @classmethod
    def from_array(cls, values: ArrayLike) -> GammaGammaParams:
        p, q, gamma = (float(v) for v in np.asarray(values, dtype=np.float64))
        return cls(p, q, gamma)


@dataclass(frozen=True, slots=True)
class GammaGammaFit:
    """A maximum-likelihood fit on the repeat buyers; errors as in `bgnbd.BgNbdFit`."""

    params: GammaGammaParams
    standard_errors: GammaGammaParams
    covariance: FloatArray
    log_likelihood: float
    customers: int
    converged: bool
    message: str


def _check_params(params: GammaGammaParams) -> None:
    values = params.as_array()
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValidationFailed(
            "value.params", "Gamma-Gamma parameters p, q, γ must be positive numbers."
        )


def _repeat_buyers(frequency: ArrayLike, monetary: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x, m = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(frequency, monetary))
    x, m = x.ravel(), m.ravel()
    if not np.isfinite(x).all() or (x < 0).any() or (x != np.floor(x)).any():
        raise ValidationFailed(
            "value.summaries", "Frequency must be a whole number of repeat purchases ≥ 0."
        )
    repeat = x > 0
    if not (np.isfinite(m[repeat]).all() and (m[repeat] > 0).all()):
        raise ValidationFailed(
            "value.monetary",
            (
                "The mean spend of every repeat buyer must be a number above 0 (the "
                "Gamma-Gamma model has no zero or negative spend)."
            ),
        )
    return x, m


def _terms(
    log_theta: FloatArray,
    x: FloatArray,
    m: FloatArray,
    groups: tuple[FloatArray, IntArray] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Per-customer log-likelihood (x > 0) and its gradient in the log parameters; the
    special functions once per distinct x."""
    p, q, gamma = np.exp(log_theta)
    xu, xi = frequency_groups(x) if groups is None else groups
    pxu = p * xu
    const_u = gammaln(pxu + q) - gammaln(pxu) - gammaln(q) + q * np.log(gamma) + pxu * np.log(xu)
    d_p_u = xu * (digamma(pxu + q) - digamma(pxu) + np.log(xu))
    d_q_u = digamma(pxu + q) - digamma(q) + np.log(gamma)
    px = pxu[xi]
    log_m = np.log(m)
    log_xm_gamma = np.log(x * m + gamma)
    ll = const_u[xi] + (px - 1.0) * log_m - (px + q) * log_xm_gamma
    d_p = d_p_u[xi] + x * (log_m - log_xm_gamma)
    d_q = d_q_u[xi] - log_xm_gamma
    d_gamma = q / gamma - (px + q) / (x * m + gamma)
    grad = np.stack([p * d_p, q * d_q, gamma * d_gamma])
    return np.asarray(ll, dtype=np.float64), np.asarray(grad, dtype=np.float64)


def log_likelihood(
    params: GammaGammaParams, frequency: ArrayLike, monetary: ArrayLike
) -> FloatArray:
    """Each repeat buyer's log-likelihood (NaN for x = 0, who have none)."""
    _check_params(params)
    x, m = _repeat_buyers(frequency, monetary)
    out = np.full(x.shape, np.nan)
    repeat = x > 0
    out[repeat], _ = _terms(np.log(params.as_array()), x[repeat], m[repeat])
    return out


def fit(
    frequency: ArrayLike, monetary: ArrayLike, *, weights: ArrayLike | None = None
) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma fit on the customers with x > 0 (the others are left
    out), each row counted `weights` times (default once)."""
    x, m = _repeat_buyers(frequency, monetary)
    w = np.ones_like(x) if weights is None else np.broadcast_to(np.asarray(weights, float), x.shape)
    w = np.asarray(w, dtype=np.float64).ravel()
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValidationFailed("value.weights", "Weights must be finite and not negative.")
    keep = (x > 0) & (w > 0)
    if not keep.any():
        raise ValidationFailed(
            "value.no_repeat",
            "No customer made a repeat purchase: the Gamma-Gamma model cannot be fitted.",
        )
    (x, m), w = compress_rows(x[keep], m[keep], weights=w[keep])
    total = float(w.sum())
    scale = float((w * m).sum() / total)
    m_scaled = m / scale
    groups = frequency_groups(x)

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        with np.errstate(all="ignore"):
            ll, grad = _terms(theta, x, m_scaled, groups)
        value = -float(w @ ll) / total
        g = -(grad @ w) / total
        if not np.isfinite(value) or not np.isfinite(g).all():
            return np.inf, np.zeros_like(theta)
        return value, g

    starts = [np.log([1.0, 2.0, 1.0]), np.log([5.0, 4.0, 0.6]), np.log([0.5, 1.5, 0.5])]
    found = maximise(objective, starts, total)
    log_theta = found.log_theta.copy()
    log_theta[2] += np.log(scale)  # γ back to the caller's money
    theta = np.exp(log_theta)
    covariance = covariance_from_log(theta, found.hessian)
    ll, _ = _terms(log_theta, x, m, groups)
    return GammaGammaFit(
        params=GammaGammaParams.from_array(theta),
        standard_errors=GammaGammaParams.from_array(np.sqrt(np.diag(covariance))),
        covariance=covariance,
        log_likelihood=float(w @ ll),
        customers=round(total),
        converged=found.converged,
        message=found.message,
    )


def mean_spend(params: GammaGammaParams) -> float:
    """The population mean spend per transaction, pγ/(q−1); infinite when q ≤ 1."""
    _check_params(params)
    return params.p * params.gamma / (params.q - 1.0) if params.q > 1 else float("inf")


def conditional_expected_spend(
    params: GammaGammaParams, frequency: ArrayLike, monetary: ArrayLike
) -> FloatArray:
    """E[M | x, m̄]: a customer's expected spend per transaction (F&H eq. 5). For x = 0 the
    population mean (m̄ is not read and may be NaN)."""
    _check_params(params)
    x, m = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(frequency, monetary))
    if not np.isfinite(x).all() or (x < 0).any():
        raise ValidationFailed("value.summaries", "Frequency must be a number ≥ 0.")
    p, q, gamma = params.p, params.q, params.gamma
    repeat = x > 0
    if not (np.isfinite(m[repeat]).all() and (m[repeat] > 0).all()):
        raise ValidationFailed(
            "value.monetary", "The mean spend of every repeat buyer must be above 0."
        )
    xm = np.where(repeat, x * np.where(repeat, m, 0.0), 0.0)
    denominator = p * x + q - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(denominator > 0, (gamma + xm) * p / denominator, np.nan)
    value = np.where(~repeat & (q <= 1), np.inf, value)
    return np.asarray(value, dtype=np.float64)


def period_length(period: Period, unit: Unit) -> float:
    """The length of a discounting period in the model's time unit: a month is 365.25/12
    days (4.348 weeks), a week 7 days."""
    if period not in PERIOD_DAYS:
        raise ValidationFailed(
            "value.period", "Unknown period %(period)s: use month or week.", period=repr(period)
        )
    return PERIOD_DAYS[period] / UNIT_DAYS[check_unit(unit)]


def customer_lifetime_value(
    purchases: BgNbdParams,
    spend: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary: ArrayLike,
    *,
    periods: int,
    discount_rate: float,
    period_length: float,
) -> FloatArray:
    """Each customer's expected discounted revenue over the next `periods` periods of
    `period_length` (in the model's time unit), at `discount_rate` per period (see the
    module docstring)."""
    if isinstance(periods, bool) or not isinstance(periods, int) or periods < 1:
        raise ValidationFailed(
            "value.periods", "The horizon must be a whole number of periods ≥ 1."
        )
    if not np.isfinite(discount_rate) or discount_rate <= -1:
        raise ValidationFailed(
            "value.discount_rate", "The discount rate must be a number above −1 (−100%)."
        )
    if not np.isfinite(period_length) or period_length <= 0:
        raise ValidationFailed(
            "value.period_length", "The period length must be a positive number."
        )
    per_purchase = conditional_expected_spend(spend, frequency, monetary)
    value = np.zeros(np.shape(per_purchase))
    previous = np.zeros_like(value)
    for i in range(1, periods + 1):
        cumulative = conditional_expected_purchases(
            purchases, i * period_length, frequency, recency, T
        )
        value += per_purchase * (cumulative - previous) / (1.0 + discount_rate) ** i
        previous = cumulative
    return np.asarray(value, dtype=np.float64)
