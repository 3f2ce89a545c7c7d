"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005, "Counting Your Customers
the Easy Way", Marketing Science 24(2)): fit, expected purchases and P(alive).

**The model.** While alive, a customer buys at a Poisson rate λ; after each purchase she drops
out with probability p. Across customers λ ~ Gamma(r, α) (shape r, rate α) and
p ~ Beta(a, b). A customer is summarised by x (repeat purchases), t_x (time of the last one,
from the first purchase) and T (age), in one time unit (`analytics.summaries`).

**Fit.** Maximum likelihood over (log r, log α, log a, log b) with scipy's L-BFGS-B, using the
analytic gradient (digamma), then Newton steps with the numerical Hessian to polish the
optimiser's loose stop; a second starting point is tried only when the first does not end at
a proper optimum. The log-likelihood of
one customer (FHL eq. 6) is evaluated in log space so that it neither overflows nor loses
the small term::

    ll = ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b)
         + logaddexp(−(r+x) ln(α+T),  [x>0] (ln a − ln(b+x−1) − (r+x) ln(α+t_x)))

with ``gammaln`` and ``betaln``. Identical (x, t_x, T) rows are fitted once with a weight,
and the special functions, which depend on x alone, are evaluated once per distinct x: a
million customers fit in seconds.
Time is rescaled by the mean age before the fit (α is a time scale, so only log α shifts and
the Hessian in log parameters is unchanged); the reported figures are in the caller's unit.

**Standard errors.** The observed information is the Hessian H of the negative
log-likelihood in the log parameters at the optimum, by central differences of the analytic
gradient. cov(log θ) = H⁻¹, and by the delta method (d θ / d log θ = θ)
cov(θ) = diag(θ) H⁻¹ diag(θ), so se(θ) = θ · se(log θ). At a stationary point this is exactly
the inverse Hessian in the original parameters, since the gradient term of the change of
variables vanishes there. If H is not positive definite the errors are NaN and the fit is not
``converged``.

**Expectations.** Given alive now, with λ ~ Gamma(n, s) and p ~ Beta(a, β), the expected
number of purchases in the next t is (FHL eqs. 9 and 10)::

    A(n, s, a, β; t) = E_p[(1 − (s / (s + p t))^n) / p]
                     = (a+β−1)/(a−1) · [1 − (s/(s+t))^n · ₂F₁(n, β; a+β−1; t/(s+t))]

E[X(t)] for a new customer is A(r, α, a, b; t); the conditional expectation
E[Y(t) | x, t_x, T] is P(alive) · A(r+x, α+T, a, b+x; t), the posterior of (λ, p) of a
customer alive at T being Gamma(r+x, α+T) × Beta(a, b+x).

**The hypergeometric function and its fallback** (`alive_expectation`). The ₂F₁ form is
evaluated with ``scipy.special.hyp2f1``; where the direct value overflows (large x with z
near 1, where ₂F₁ grows like (1−z)^(c−a−b)) it is taken through Euler's transformation
₂F₁(a, b; c; z) = (1−z)^(c−a−b) ₂F₁(c−a, c−b; c; z), whose prefactor cancels against
(s/(s+t))^n. The result is then *not trusted* and recomputed by the fallback where:

- it is not finite or not positive (A is a mean of a positive quantity);
- z > 0.9 and c − a − b is within 1e-5 of an integer: scipy's real ₂F₁ (Cephes) loses
  accuracy there (scipy issues #6491, #8083, PR #18087); in our checks against mpmath it
  returned values off in the 4th digit and even of the wrong sign (a − r an integer, as
  when a = r + 1);
- |a − 1| < 1e-5, where (a+β−1)/(a−1) · [1 − …] is 0/0 and cancels;
- 1 − H, H = (s/(s+t))^n ₂F₁(…), cancels: ln H is a sum of two logs that nearly cancel when
  t is small against s (both about n t/s), so the rounding of each, as a share of 1 − H,
  would exceed 1e-10.

The fallback needs no ₂F₁ at all: it computes the Beta expectation A = E_p[g(p)],
g(p) = (1 − (1 + p t/s)^(−n)) / p, as a one-dimensional integral by adaptive quadrature
(``scipy.integrate.quad``, relative tolerance 1e-13) in three smooth pieces: far below the
step of g near p ≈ s/(n t) in p^a (which absorbs the p^(a−1) end), from there to ½ in ln p,
and p ≥ ½ with the singular (1−p)^(β−1) as QUADPACK's algebraic weight when β < 1. g is
bounded on [0, 1] (0 < g ≤ n t/s) for every a > 0, so the fallback has no a = 1
singularity. It costs about a millisecond per distinct row, and only the untrusted rows
take it. Against mpmath (40 digits) over wide random grids (r, α, a, b from 0.001 to 200,
x to 2,000, z near 1, every kind of untrusted point) it agrees to 1e-11 relative or better,
and the ``"auto"`` result to better than 1e-11 where scipy alone was off by up to 100% or gave
NaN; the tests check the fallback against scipy wherever scipy is trusted, and against
mpmath values where it is not.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.integrate import IntegrationWarning, quad
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from core.errors import ValidationFailed

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
ArrayLike = npt.ArrayLike
Method = Literal["auto", "hyp2f1", "quadrature"]
Objective = Callable[[FloatArray], tuple[float, FloatArray]]

NEAR_INTEGER = 1e-5  # |c − a − b − k| below this, with z > NEAR_ONE: Cephes is not trusted
NEAR_ONE = 0.9
NEAR_A_ONE = 1e-5
ROUNDING = 1e-15  # the relative error of a log or a ₂F₁ value from scipy, generously
RELATIVE_TOLERANCE = 1e-13  # of the fallback's quadrature
CANCELLATION = 1e-10  # the relative error of 1 − H beyond which the ₂F₁ form is not trusted
LOG_BOUND = 30.0  # |log θ| in the rescaled fit; beyond it the data do not identify the model


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """r, α (purchase rate ~ Gamma(r, α), α per time unit) and a, b (dropout ~ Beta(a, b))."""

    r: float
    alpha: float
    a: float
    b: float

    def as_array(self) -> FloatArray:
        return np.array([self.r, self.alpha, self.a, self.b], dtype=np.float64)

    @classmethod
    def from_array(cls, values: ArrayLike) -> BgNbdParams:
        r, alpha, a, b = (float(v) for v in np.asarray(values, dtype=np.float64))
        return cls(r, alpha, a, b)


@dataclass(frozen=True, slots=True)
class BgNbdFit:
    """A maximum-likelihood fit. `standard_errors` and `covariance` (order r, α, a, b) are for
    the parameters themselves (delta method from the log parameters; NaN when the Hessian is
    not positive definite)."""

    params: BgNbdParams
    standard_errors: BgNbdParams
    covariance: FloatArray
    log_likelihood: float
    customers: int
    converged: bool
    message: str


def _float(values: ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def check_summaries(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """x, t_x, T as float arrays of one shape, or ValidationFailed: x a whole number ≥ 0,
    0 ≤ t_x ≤ T, and t_x = 0 when x = 0."""
    x, tx, age = np.broadcast_arrays(_float(frequency), _float(recency), _float(T))
    if not (np.isfinite(x).all() and np.isfinite(tx).all() and np.isfinite(age).all()):
        raise ValidationFailed(
            "value.summaries", "Frequency, recency and age must be finite numbers."
        )
    if (x < 0).any() or (x != np.floor(x)).any():
        raise ValidationFailed(
            "value.summaries", "Frequency must be a whole number of repeat purchases ≥ 0."
        )
    if (tx < 0).any() or (tx > age).any():
        raise ValidationFailed(
            "value.summaries", "Recency must be between 0 and the customer's age T."
        )
    if ((x == 0) & (tx != 0)).any():
        raise ValidationFailed(
            "value.summaries", "Recency must be 0 for a customer with no repeat purchase."
        )
    return x.astype(np.float64), tx.astype(np.float64), age.astype(np.float64)


def _check_params(params: BgNbdParams) -> None:
    values = params.as_array()
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValidationFailed(
            "value.params", "BG/NBD parameters r, α, a, b must be positive numbers."
        )


# --- Likelihood ------------------------------------------------------------------------------


def frequency_groups(x: FloatArray) -> tuple[FloatArray, IntArray]:
    """The distinct frequencies and each row's index into them: the likelihood's special
    functions depend on x alone, so they are evaluated once per distinct x."""
    values, index = np.unique(x, return_inverse=True)
    return np.asarray(values, dtype=np.float64), np.asarray(index.ravel(), dtype=np.intp)


def _terms(
    log_theta: FloatArray,
    x: FloatArray,
    tx: FloatArray,
    age: FloatArray,
    groups: tuple[FloatArray, IntArray] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Per-customer log-likelihood and its gradient in the log parameters (shape (4, n))."""
    r, alpha, a, b = np.exp(log_theta)
    xu, xi = frequency_groups(x) if groups is None else groups
    repeat_u = xu > 0
    bx1_u = np.where(repeat_u, b + xu - 1.0, 1.0)
    # what depends on x alone, once per distinct x
    const_u = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu) - betaln(a, b)
    log_a4_u = np.where(repeat_u, np.log(a) - np.log(bx1_u), -np.inf)
    d_r_u = digamma(r + xu) - digamma(r) + np.log(alpha)
    d_a_u = digamma(a + b) - digamma(a + b + xu)
    d_b_u = digamma(a + b) + digamma(b + xu) - digamma(b) - digamma(a + b + xu)
    n = r + x
    log_age = np.log(alpha + age)
    log_tx = np.log(alpha + tx)
    a3 = -n * log_age
    a4 = log_a4_u[xi] - n * log_tx
    tail = np.logaddexp(a3, a4)
    w3 = np.exp(a3 - tail)
    w4 = np.exp(a4 - tail)  # 0 where x = 0 (a4 = −∞)
    ll = const_u[xi] + tail
    d_r = d_r_u[xi] - w3 * log_age - w4 * log_tx
    d_alpha = r / alpha - n * (w3 / (alpha + age) + w4 / (alpha + tx))
    d_a = d_a_u[xi] + w4 / a
    d_b = d_b_u[xi] - w4 / bx1_u[xi]
    grad = np.stack([r * d_r, alpha * d_alpha, a * d_a, b * d_b])
    return np.asarray(ll, dtype=np.float64), np.asarray(grad, dtype=np.float64)


def log_likelihood(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Each customer's log-likelihood (FHL eq. 6, in log space)."""
    _check_params(params)
    x, tx, age = check_summaries(frequency, recency, T)
    ll, _ = _terms(np.log(params.as_array()), x.ravel(), tx.ravel(), age.ravel())
    return ll.reshape(x.shape)


def _hessian(
    gradient: Callable[[FloatArray], FloatArray], point: FloatArray, step: float = 1e-5
) -> FloatArray:
    """Central differences of an analytic gradient, symmetrised."""
    grad = gradient
    k = len(point)
    h = np.zeros((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step
        h[:, j] = (np.asarray(grad(point + e)) - np.asarray(grad(point - e))) / (2 * step)
    return np.asarray((h + h.T) / 2, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class MaximumLikelihood:
    """What `maximise` found, in the (rescaled) log parameters."""

    log_theta: FloatArray
    hessian: FloatArray  # of the total negative log-likelihood, in the log parameters
    converged: bool
    message: str
    value: float  # the mean negative log-likelihood there


def _polish(objective: Objective, theta: FloatArray, total_weight: float) -> MaximumLikelihood:
    """Newton steps from an optimiser's answer (its tolerance is loose), with the numerical
    Hessian taken once (chord method); then the Hessian and the diagnosis at the end."""

    def gradient(point: FloatArray) -> FloatArray:
        return np.asarray(objective(point)[1], dtype=np.float64)

    current, g = objective(theta)
    with np.errstate(all="ignore"):
        h = _hessian(gradient, theta)
        for _ in range(10):
            try:
                step = np.linalg.solve(h, g)
            except np.linalg.LinAlgError:
                break
            candidate = theta - step
            if not np.isfinite(step).all() or np.abs(candidate).max() > LOG_BOUND:
                break
            new, new_g = objective(candidate)
            if not np.isfinite(new) or new > current + 1e-14 * max(1.0, abs(current)):
                break
            theta, current, g = candidate, new, new_g
            if np.abs(step).max() < 1e-12:
                break
        hessian = _hessian(gradient, theta) * total_weight
    grad_norm = float(np.abs(g).max())
    at_bound = bool(np.abs(theta).max() > LOG_BOUND - 1e-6)
    positive = bool(np.isfinite(hessian).all() and np.linalg.eigvalsh(hessian).min() > 0)
    converged = positive and not at_bound and grad_norm < 1e-6
    if at_bound:
        message = "a parameter ran to its bound: the data do not identify the model"
    elif not positive:
        message = "the Hessian is not positive definite at the optimum"
    elif grad_norm >= 1e-6:
        message = f"the gradient did not vanish (max |g| = {grad_norm:.2e})"
    else:
        message = "converged"
    return MaximumLikelihood(theta, hessian, converged, message, float(current))


def maximise(
    objective: Objective,
    starts: list[FloatArray],
    total_weight: float,
) -> MaximumLikelihood:
    """Minimise a mean negative log-likelihood ``objective(θ) -> (value, gradient)`` over log
    parameters: L-BFGS-B within ±LOG_BOUND from each start in turn, each answer polished
    (`_polish`). The first proper optimum (gradient zero, Hessian positive definite, off the
    bounds) is the answer; failing that, the best value found, marked not converged."""
    best: MaximumLikelihood | None = None
    for start in starts:
        with np.errstate(all="ignore"):
            result = minimize(
                objective,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start),
                options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
            )
        if not np.isfinite(result.fun):
            continue
        found = _polish(objective, np.asarray(result.x, dtype=np.float64), total_weight)
        if found.converged:
            return found
        if best is None or found.value < best.value:
            best = found
    if best is None:
        raise ValidationFailed(
            "value.fit", "The likelihood could not be evaluated at any starting point."
        )
    return best


def covariance_from_log(theta: FloatArray, hessian: FloatArray) -> FloatArray:
    """Delta method: cov(θ) = diag(θ) H⁻¹ diag(θ), H the Hessian of the negative
    log-likelihood in log θ; NaN when H is not positive definite."""
    k = len(theta)
    try:
        if np.linalg.eigvalsh(hessian).min() <= 0:
            raise np.linalg.LinAlgError
        cov_log = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return np.full((k, k), np.nan)
    d = np.diag(theta)
    return np.asarray(d @ cov_log @ d, dtype=np.float64)


def compress_rows(*columns: FloatArray, weights: FloatArray) -> tuple[list[FloatArray], FloatArray]:
    """Identical rows once, with the sum of their weights."""
    table = np.column_stack(columns)
    unique, inverse = np.unique(table, axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=weights, minlength=len(unique))
    summed: FloatArray = np.asarray(counts, dtype=np.float64)
    return [unique[:, i].copy() for i in range(unique.shape[1])], summed


def fit(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
) -> BgNbdFit:
    """Maximum-likelihood BG/NBD fit to customers' (x, t_x, T), each row counted `weights`
    times (default once). ValidationFailed when no customer made a repeat purchase (the
    likelihood has no maximum then)."""
    x, tx, age = check_summaries(frequency, recency, T)
    x, tx, age = x.ravel(), tx.ravel(), age.ravel()
    w = np.ones_like(x) if weights is None else np.broadcast_to(_float(weights), x.shape).ravel()
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValidationFailed("value.weights", "Weights must be finite and not negative.")
    total = float(w.sum())
    if total <= 0:
        raise ValidationFailed(
            "value.no_customers", "There are no customers to fit the BG/NBD model to."
        )
    if float((w * x).sum()) <= 0:
        raise ValidationFailed(
            "value.no_repeat",
            (
                "No customer made a repeat purchase in the calibration period: the "
                "BG/NBD model cannot be fitted."
            ),
        )
    if float((w * age).sum()) <= 0:
        raise ValidationFailed(
            "value.no_time", "Every customer's age T is 0: move the calibration end later."
        )
    (x, tx, age), w = compress_rows(x, tx, age, weights=w)
    scale = float((w * age).sum() / w.sum())
    tx_s, age_s = tx / scale, age / scale
    groups = frequency_groups(x)

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        with np.errstate(all="ignore"):
            ll, grad = _terms(theta, x, tx_s, age_s, groups)
        value = -float(w @ ll) / total
        g = -(grad @ w) / total
        if not np.isfinite(value) or not np.isfinite(g).all():
            return np.inf, np.zeros_like(theta)
        return value, g

    found = maximise(objective, [np.zeros(4), np.log([0.5, 2.0, 0.5, 2.0])], total)
    log_theta = found.log_theta.copy()
    log_theta[1] += np.log(scale)  # α back to the caller's unit
    theta = np.exp(log_theta)
    covariance = covariance_from_log(theta, found.hessian)
    ll, _ = _terms(log_theta, x, tx, age, groups)
    return BgNbdFit(
        params=BgNbdParams.from_array(theta),
        standard_errors=BgNbdParams.from_array(np.sqrt(np.diag(covariance))),
        covariance=covariance,
        log_likelihood=float(w @ ll),
        customers=round(total),
        converged=found.converged,
        message=found.message,
    )


# --- Expectations ----------------------------------------------------------------------------


def _quadrature_one(n: float, scale: float, a: float, b: float, t: float) -> float:
    """A(n, scale, a, b; t) = E_{p~Beta(a,b)}[g(p)], g(p) = (1 − (1 + p t/scale)^(−n)) / p,
    by adaptive quadrature (QUADPACK) in three pieces, each with a smooth integrand:

    - p ≤ p₀, far below the step of g (from n t/scale down to 1/p around
      p* = scale/(n t)), where g is nearly constant: for a < 1 in v = p^a, which absorbs
      p^(a−1) dp = dv/a; for a ≥ 1 in y = ln p, down to where e^(a y) is negligible;
    - p₀ ≤ p ≤ ½: in y = ln p, where the step of g and the p^(a−1) factor are smooth;
    - p ≥ ½: in p; when b < 1 the singular (1−p)^(b−1) is QAWS's algebraic weight
      (``weight="alg"``), otherwise the density is written out.

    The Beta mean and the step are passed as break points, so that a narrow peak of the
    density is never stepped over.
    """
    if t == 0:
        return 0.0
    ratio = t / scale
    log_beta = float(betaln(a, b))
    with np.errstate(over="ignore", divide="ignore"):
        step = float(scale / (n * t))  # where g turns from n t/scale to 1/p
    p0 = min(0.5, 1e-4 * step)

    def g(p: float) -> float:
        u = p * ratio
        if u * (n + 2.0) < 1e-9:  # the series near p = 0 (also where p is subnormal)
            return n * ratio * (1.0 - 0.5 * (n + 1.0) * u)
        return float(-np.expm1(-n * np.log1p(u)) / p)

    def tail(v: float) -> float:
        p = float(np.exp(np.log(v) / a)) if v > 0 else 0.0
        return float(np.exp((b - 1.0) * np.log1p(-p) - log_beta - np.log(a))) * g(p)

    def middle(y: float) -> float:
        p = float(np.exp(y))
        return float(np.exp(a * y + (b - 1.0) * np.log1p(-p) - log_beta)) * g(p)

    def high(p: float) -> float:
        return float(np.exp((a - 1.0) * np.log(p) + (b - 1.0) * np.log1p(-p) - log_beta)) * g(p)

    def high_weighted(p: float) -> float:  # (1 − p)^(b−1) is QAWS's weight
        return float(np.exp((a - 1.0) * np.log(p) - log_beta)) * g(p)

    tol = RELATIVE_TOLERANCE
    mean = a / (a + b)

    def inside(low: float, high: float, *marks: float) -> list[float] | None:
        chosen = sorted({m for m in marks if low < m < high})
        return chosen or None

    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        if a < 1.0:
            top = float(np.exp(a * np.log(p0)))  # p0^a
            marks = inside(0.0, top, mean**a)
            total += quad(tail, 0.0, top, points=marks, limit=500, epsabs=0.0, epsrel=tol)[0]
        else:  # e^(a y) is below e^(−750) of its value at p0 past the lower end
            lo, hi = float(np.log(p0)) - 750.0 / a, float(np.log(p0))
            marks = inside(lo, hi, float(np.log(mean)))
            total += quad(middle, lo, hi, points=marks, limit=500, epsabs=0.0, epsrel=tol)[0]
        if p0 < 0.5:
            lo, hi = float(np.log(p0)), float(np.log(0.5))
            marks = inside(lo, hi, float(np.log(mean)), float(np.log(step)))
            total += quad(middle, lo, hi, points=marks, limit=500, epsabs=0.0, epsrel=tol)[0]
        if b < 1.0:
            total += quad(
                high_weighted,
                0.5,
                1.0,
                weight="alg",
                wvar=(0.0, b - 1.0),
                limit=500,
                epsabs=0.0,
                epsrel=tol,
            )[0]
        else:
            marks = inside(0.5, 1.0, mean)
            total += quad(high, 0.5, 1.0, points=marks, limit=500, epsabs=0.0, epsrel=tol)[0]
    return float(total)


def _hyp2f1_form(
    n: FloatArray, scale: FloatArray, a: FloatArray, b: FloatArray, t: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """A(…) through scipy's ₂F₁ (Euler's transformation where the direct value overflows),
    and whether each value is to be trusted (see the module docstring)."""
    c = a + b - 1.0
    z = t / (scale + t)
    log_one_minus_z = -np.log1p(t / scale)
    with np.errstate(all="ignore"):
        direct = hyp2f1(n, b, c, z)
        power = n * log_one_minus_z
        log_f = np.log(np.abs(direct))
        sign = np.sign(direct)
        overflow = ~np.isfinite(direct)
        if overflow.any():
            euler = hyp2f1(c - n, c - b, c, z)  # (1−z)^n ₂F₁ = (1−z)^(c−b) ₂F₁(c−n, c−b; c; z)
            power = np.where(overflow, (c - b) * log_one_minus_z, power)
            log_f = np.where(overflow, np.log(np.abs(euler)), log_f)
            sign = np.where(overflow, np.sign(euler), sign)
        log_h = power + log_f
        # 1 − H, with H = sign · exp(log_h): −expm1 keeps the digits when H is near 1
        one_minus_h = np.where(sign > 0, -np.expm1(log_h), 1.0 + np.exp(log_h))
        value = c / (a - 1.0) * one_minus_h
        # the rounding of ln H (a sum of two logs) as a relative error of 1 − H
        rounding = ROUNDING * (np.abs(power) + np.abs(log_f) + 1.0) * np.exp(log_h)
        cancelled = rounding > CANCELLATION * np.abs(one_minus_h)
        d = c - n - b
        suspect = (z > NEAR_ONE) & (np.abs(d - np.round(d)) < NEAR_INTEGER)
        trusted = (
            np.isfinite(value)
            & (value > 0)
            & ~suspect
            & ~cancelled
            & (np.abs(a - 1.0) >= NEAR_A_ONE)
        )
    value = np.where(t == 0, 0.0, value)
    trusted = trusted | (t == 0)
    return np.asarray(value, dtype=np.float64), np.asarray(trusted, dtype=bool)


def alive_expectation(
    shape: ArrayLike,
    rate: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    t: ArrayLike,
    *,
    method: Method = "auto",
) -> FloatArray:
    """Expected purchases in the next `t` of a customer alive now whose purchase rate is
    Gamma(shape, rate) and dropout probability Beta(a, b): the bracket of FHL eqs. 9–10.
    ``method="auto"`` takes scipy's ₂F₁ where it is trusted and the quadrature fallback
    elsewhere; ``"hyp2f1"`` and ``"quadrature"`` force one (``"hyp2f1"`` may then return
    wrong or non-finite values: it is there to compare the two)."""
    n, s, aa, bb, tt = (
        np.asarray(v, dtype=np.float64)
        for v in np.broadcast_arrays(_float(shape), _float(rate), _float(a), _float(b), _float(t))
    )
    if method == "quadrature":
        trusted = np.zeros(n.shape, dtype=bool)
        value = np.zeros(n.shape)
    else:
        value, trusted = _hyp2f1_form(n, s, aa, bb, tt)
        if method == "hyp2f1":
            return value
    redo = np.flatnonzero(~trusted.ravel())
    if redo.size:
        flat = value.ravel().copy()
        cache: dict[tuple[float, ...], float] = {}
        for i in redo:
            key = (n.flat[i], s.flat[i], aa.flat[i], bb.flat[i], tt.flat[i])
            if key not in cache:
                cache[key] = _quadrature_one(*key)
            flat[i] = cache[key]
        value = flat.reshape(n.shape)
    return np.asarray(value, dtype=np.float64)


def _check_t(t: ArrayLike) -> FloatArray:
    tt = _float(t)
    if not np.isfinite(tt).all() or (tt < 0).any():
        raise ValidationFailed("value.horizon", "The time t must be a finite number ≥ 0.")
    return tt


def expected_purchases(params: BgNbdParams, t: ArrayLike, *, method: Method = "auto") -> FloatArray:
    """E[X(t)]: expected repeat purchases in (0, t] of a new customer (FHL eq. 9)."""
    _check_params(params)
    tt = _check_t(t)
    return alive_expectation(params.r, params.alpha, params.a, params.b, tt, method=method)


def probability_alive(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x>0] a/(b+x−1) ((α+T)/(α+t_x))^(r+x)) (FHL
    eq. 11), in log space: 1 for a customer with no repeat purchase."""
    _check_params(params)
    x, tx, age = check_summaries(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (
            np.log(a)
            - np.log(np.where(repeat, b + x - 1.0, 1.0))
            + (r + x) * (np.log(alpha + age) - np.log(alpha + tx))
        )
    return np.asarray(np.where(repeat, expit(-log_odds), 1.0), dtype=np.float64)


def conditional_expected_purchases(
    params: BgNbdParams,
    t: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    method: Method = "auto",
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] of a customer with that history
    (FHL eq. 10) = P(alive) · A(r+x, α+T, a, b+x; t)."""
    _check_params(params)
    tt = _check_t(t)
    x, tx, age = check_summaries(frequency, recency, T)
    x, tx, age, tt = np.broadcast_arrays(x, tx, age, tt)
    alive = probability_alive(params, x, tx, age)
    ahead = alive_expectation(
        params.r + x, params.alpha + age, params.a, params.b + x, tt, method=method
    )
    return np.asarray(alive * ahead, dtype=np.float64)
