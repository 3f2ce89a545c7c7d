"""BG/NBD: the published CDNOW figures, hand-checked cases, the ₂F₁ fallback, properties."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from analytics import bgnbd
from analytics.bgnbd import BgNbdParams
from analytics.summaries import summarise
from core.errors import ValidationFailed
from tests.analytics.test_summaries import cdnow_summaries, cdnow_transactions

PUBLISHED = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


@cache
def cdnow_fit() -> bgnbd.BgNbdFit:
    s = cdnow_summaries()
    return bgnbd.fit(s["frequency"], s["recency"], s["T"])


# --- CDNOW: Fader, Hardie & Lee (2005) ---------------------------------------------------------


def test_cdnow_fit_reproduces_the_published_parameters() -> None:
    fit = cdnow_fit()
    assert fit.converged, fit.message
    assert fit.customers == 2357
    p = fit.params
    assert (round(p.r, 3), round(p.alpha, 3), round(p.a, 3), round(p.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(fit.log_likelihood, 1) == -9582.4


def test_cdnow_conditional_expectation_of_the_worked_example() -> None:
    # FHL section 5: E[Y(39) | x = 2, t_x = 30.43, T = 38.86] = 1.226
    fitted = bgnbd.conditional_expected_purchases(cdnow_fit().params, 39, 2, 30.43, 38.86)
    assert round(float(fitted), 3) == 1.226
    published = bgnbd.conditional_expected_purchases(PUBLISHED, 39, 2, 30.43, 38.86)
    assert float(published) == pytest.approx(1.2260281747671444, rel=1e-12)  # mpmath, 50 digits
    alive = bgnbd.probability_alive(PUBLISHED, 2, 30.43, 38.86)
    assert float(alive) == pytest.approx(0.72657857008067292, rel=1e-12)  # mpmath


def test_cdnow_standard_errors_match_an_independent_hessian() -> None:
    """The delta-method errors against the inverse of a finite-difference Hessian of the
    log-likelihood *values* in the original parameters."""
    fit = cdnow_fit()
    s = cdnow_summaries()
    theta = fit.params.as_array()

    def total(values: np.ndarray) -> float:
        return float(
            bgnbd.log_likelihood(
                BgNbdParams.from_array(values), s["frequency"], s["recency"], s["T"]
            ).sum()
        )

    h = np.zeros((4, 4))
    steps = theta * 1e-4
    for i in range(4):
        for j in range(4):
            ei, ej = np.eye(4)[i] * steps[i], np.eye(4)[j] * steps[j]
            h[i, j] = (
                total(theta + ei + ej)
                - total(theta + ei - ej)
                - total(theta - ei + ej)
                + total(theta - ei - ej)
            ) / (4 * steps[i] * steps[j])
    independent = np.sqrt(np.diag(np.linalg.inv(-h)))
    assert np.allclose(fit.standard_errors.as_array(), independent, rtol=2e-3)
    assert np.allclose(np.sqrt(np.diag(fit.covariance)), fit.standard_errors.as_array())
    assert (fit.standard_errors.as_array() > 0).all()


def test_the_fit_does_not_depend_on_the_time_unit() -> None:
    days = summarise(cdnow_transactions(), "1997-09-30", unit="D")
    fit_days = bgnbd.fit(days["frequency"], days["recency"], days["T"])
    weeks = cdnow_fit()
    assert fit_days.params.r == pytest.approx(weeks.params.r, rel=1e-6)
    assert fit_days.params.a == pytest.approx(weeks.params.a, rel=1e-6)
    assert fit_days.params.b == pytest.approx(weeks.params.b, rel=1e-6)
    assert fit_days.params.alpha == pytest.approx(7 * weeks.params.alpha, rel=1e-6)
    # the likelihood is a density in the purchase times: days are 7 × weeks for each of x
    shift = float(days["frequency"].sum()) * np.log(7)
    assert fit_days.log_likelihood == pytest.approx(weeks.log_likelihood - shift, abs=1e-5)


# --- The likelihood and the fit ---------------------------------------------------------------


def test_the_gradient_is_the_derivative_of_the_likelihood() -> None:
    s = cdnow_summaries()
    x, tx, age = (s[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    point = np.log([0.4, 3.0, 1.3, 0.7])
    _, grad = bgnbd._terms(point, x, tx, age)
    analytic = grad.sum(axis=1)
    numeric = np.zeros(4)
    for i in range(4):
        e = np.eye(4)[i] * 1e-6
        numeric[i] = (
            bgnbd._terms(point + e, x, tx, age)[0].sum()
            - bgnbd._terms(point - e, x, tx, age)[0].sum()
        ) / 2e-6
    assert np.allclose(analytic, numeric, rtol=1e-6)


def test_the_likelihood_of_one_customer_by_hand() -> None:
    # r = α = a = b = 1, x = 1, t_x = 1, T = 2 (FHL eq. 6):
    # B(1,2)/B(1,1) · Γ(2)/Γ(1) · 1/3² + B(2,1)/B(1,1) · 1/2² = 1/18 + 1/8
    ll = bgnbd.log_likelihood(BgNbdParams(1, 1, 1, 1), 1, 1, 2)
    assert float(ll) == pytest.approx(np.log(1 / 18 + 1 / 8), rel=1e-14)
    # x = 0: B(1,1)/B(1,1) · 1/(1+T)
    assert float(bgnbd.log_likelihood(BgNbdParams(1, 1, 1, 1), 0, 0, 2)) == pytest.approx(
        np.log(1 / 3)
    )


def simulate(params: BgNbdParams, customers: int, T: float, seed: int):
    """Customers drawn from the BG/NBD itself: λ ~ Gamma(r, α), p ~ Beta(a, b); Poisson
    purchases at λ, each repeat purchase followed by dropout with probability p."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params.r, 1 / params.alpha, customers)
    p = rng.beta(params.a, params.b, customers)
    age = rng.uniform(T / 2, T, customers)
    x = np.zeros(customers)
    tx = np.zeros(customers)
    now = np.zeros(customers)
    alive = np.ones(customers, dtype=bool)
    while alive.any():
        now[alive] += rng.exponential(1 / lam[alive])
        bought = alive & (now <= age)
        x[bought] += 1
        tx[bought] = now[bought]
        alive = bought & (rng.uniform(size=customers) >= p)
    return x, tx, age


def test_a_fit_recovers_the_parameters_it_was_simulated_from() -> None:
    truth = BgNbdParams(r=0.8, alpha=5.0, a=1.5, b=4.0)
    x, tx, age = simulate(truth, 8000, 60.0, seed=20240601)
    fit = bgnbd.fit(x, tx, age)
    assert fit.converged
    z = (fit.params.as_array() - truth.as_array()) / fit.standard_errors.as_array()
    assert np.abs(z).max() < 3.5, z


def test_weights_count_rows() -> None:
    s = cdnow_summaries().iloc[:400]
    x, tx, age = s["frequency"], s["recency"], s["T"]
    doubled = bgnbd.fit(np.tile(x, 2), np.tile(tx, 2), np.tile(age, 2))
    weighted = bgnbd.fit(x, tx, age, weights=2)
    assert np.allclose(doubled.params.as_array(), weighted.params.as_array(), rtol=1e-7)
    assert doubled.log_likelihood == pytest.approx(weighted.log_likelihood)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        bgnbd.fit([0, 0], [0, 0], [3, 4])
    assert caught.value.code == "value.no_repeat"
    with pytest.raises(ValidationFailed) as caught:
        bgnbd.fit([1], [5], [4])
    assert caught.value.code == "value.summaries"
    with pytest.raises(ValidationFailed):
        bgnbd.fit([1.5], [1], [4])
    with pytest.raises(ValidationFailed):
        bgnbd.fit([0], [1], [4])
    with pytest.raises(ValidationFailed) as caught:
        bgnbd.expected_purchases(BgNbdParams(1, 1, 0, 1), 1)
    assert caught.value.code == "value.params"
    with pytest.raises(ValidationFailed) as caught:
        bgnbd.expected_purchases(PUBLISHED, -1)
    assert caught.value.code == "value.horizon"


# --- Expectations by hand ---------------------------------------------------------------------


def test_probability_alive_by_hand() -> None:
    params = BgNbdParams(1, 1, 1, 2)
    # 1 / (1 + a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)) = 1 / (1 + 1/2 · (3/2)²)
    assert float(bgnbd.probability_alive(params, 1, 1, 2)) == pytest.approx(1 / (1 + 9 / 8))
    assert float(bgnbd.probability_alive(params, 0, 0, 50)) == 1.0
    # a purchase at the calibration end: the only doubt is dropping out after it
    assert float(bgnbd.probability_alive(params, 3, 5, 5)) == pytest.approx(1 / (1 + 1 / 4))


def test_expected_purchases_in_closed_form() -> None:
    # a = 2, b = 1, r = 2: ₂F₁(2, 1; 2; z) = 1/(1−z), so E[X(t)] = 2t/(α+t). At t = 100 the
    # point is one scipy is not trusted with (c − a − b = −1, z > 0.9): the fallback answers.
    params = BgNbdParams(r=2, alpha=3, a=2, b=1)
    t = np.array([0.0, 0.5, 3.0, 100.0, 1e4])
    assert np.allclose(bgnbd.expected_purchases(params, t), 2 * t / (3 + t), rtol=1e-11)
    # a = 1 (0/0 in the ₂F₁ form), r = b = 1: E[X(t)] = ln(1 + t/α)
    params = BgNbdParams(r=1, alpha=2, a=1, b=1)
    assert np.allclose(bgnbd.expected_purchases(params, t), np.log1p(t / 2), rtol=1e-10)


def test_expected_purchases_at_the_ends_of_time() -> None:
    params = BgNbdParams(r=0.7, alpha=4.0, a=2.5, b=3.0)
    # small t: r t / α;  t → ∞: E[1/p] = (a+b−1)/(a−1)
    assert float(bgnbd.expected_purchases(params, 1e-7)) == pytest.approx(0.7e-7 / 4, rel=1e-6)
    assert float(bgnbd.expected_purchases(params, 1e12)) == pytest.approx(4.5 / 1.5, rel=1e-4)
    assert float(bgnbd.expected_purchases(params, 0)) == 0


def test_expected_purchases_of_cdnow() -> None:
    e = bgnbd.expected_purchases(PUBLISHED, [39, 78])
    assert np.allclose(e, [1.1967231933208169, 1.8605190579427686], rtol=1e-12)  # mpmath


# --- The ₂F₁ fallback --------------------------------------------------------------------------

# (n, s, a, b, t) where scipy's ₂F₁ is wrong, with A(n, s, a, b; t) from mpmath at 50 digits:
# c − a − b = a − 1 − n is within rounding of an integer and z = t/(s+t) > 0.9.
SCIPY_WRONG = [
    ((5.1, 4.4, 5.1, 3.3, 5000.0), 1.8048780487699103),  # scipy: nan
    ((1.7, 4.4, 3.7, 0.7, 5000.0), 1.2592422939256742),  # scipy: −inf
    ((2.7, 4.4, 3.7, 1.7, 5000.0), 1.6296293059961125),  # scipy: 1.6296312517 (6th digit)
    ((0.5, 2.0, 1.0, 3.0, 100.0), 5.1210227712814452),  # a = 1: 0/0
    ((2.3, 4.4, 1.0, 0.6, 39.0), 2.5712447441622249),  # a = 1: 0/0
]


@pytest.mark.parametrize(("args", "expected"), SCIPY_WRONG)
def test_the_fallback_where_scipy_misbehaves(args, expected) -> None:
    assert float(bgnbd.alive_expectation(*args)) == pytest.approx(expected, rel=1e-12)
    assert float(bgnbd.alive_expectation(*args, method="quadrature")) == pytest.approx(
        expected, rel=1e-12
    )
    _, trusted = bgnbd._hyp2f1_form(*(np.array([v]) for v in args))
    assert not trusted.any()


def test_large_frequencies_go_through_euler() -> None:
    # x = 300 with z near 1: ₂F₁ itself overflows, the product with (1−z)^n does not
    n, s, a, b, t = 300.243, 43.274, 0.793, 302.426, 520.0
    value, trusted = bgnbd._hyp2f1_form(*(np.array([v]) for v in (n, s, a, b, t)))
    assert trusted.all()
    assert float(value[0]) == pytest.approx(1020.3176928328488667, rel=1e-12)  # mpmath


positive = st.floats(0.001, 200.0)


@settings(max_examples=300, deadline=None)
@given(
    r=positive,
    alpha=positive,
    a=positive,
    b=positive,
    x=st.integers(0, 500),
    T=st.floats(0.0, 500.0),
    t=st.floats(0.0, 2000.0),
)
def test_the_fallback_equals_scipy_where_scipy_is_trusted(r, alpha, a, b, x, T, t) -> None:
    args = [np.array([v], dtype=float) for v in (r + x, alpha + T, a, b + x, t)]
    value, trusted = bgnbd._hyp2f1_form(*args)
    assume(bool(trusted[0]) and np.isfinite(value[0]))
    fallback = bgnbd.alive_expectation(*args, method="quadrature")
    # scipy itself is good to about 1e-9 at the far ends of these ranges (checked with mpmath)
    assert float(fallback[0]) == pytest.approx(float(value[0]), rel=1e-8)


summary = st.tuples(st.integers(0, 60), st.floats(0.0, 1.0), st.floats(0.0, 80.0)).map(
    lambda v: (v[0], 0.0 if v[0] == 0 else v[1] * v[2], v[2])
)


@settings(max_examples=200, deadline=None)
@given(r=positive, alpha=positive, a=positive, b=positive, history=summary)
def test_probability_alive_is_a_probability(r, alpha, a, b, history) -> None:
    x, tx, age = history
    alive = float(bgnbd.probability_alive(BgNbdParams(r, alpha, a, b), x, tx, age))
    assert 0.0 <= alive <= 1.0
    if x == 0:
        assert alive == 1.0


@settings(max_examples=200, deadline=None)
@given(
    r=positive,
    alpha=positive,
    a=positive,
    b=positive,
    history=summary,
    t1=st.floats(0.0, 500.0),
    t2=st.floats(0.0, 500.0),
)
def test_conditional_expectation_is_positive_and_grows_with_time(
    r, alpha, a, b, history, t1, t2
) -> None:
    x, tx, age = history
    params = BgNbdParams(r, alpha, a, b)
    low, high = sorted((t1, t2))
    e = bgnbd.conditional_expected_purchases(params, np.array([0.0, low, high]), x, tx, age)
    assert np.isfinite(e).all()
    assert e[0] == 0.0
    assert (e >= 0).all()
    assert e[2] >= e[1] * (1 - 1e-9)
