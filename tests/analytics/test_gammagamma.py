"""Gamma-Gamma: the published CDNOW figures, hand-checked cases, CLV, properties."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import bgnbd, gammagamma
from analytics.bgnbd import BgNbdParams
from analytics.gammagamma import GammaGammaParams
from core.errors import ValidationFailed
from tests.analytics.test_summaries import cdnow_summaries

SPEND = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
PURCHASES = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


@cache
def cdnow_fit() -> gammagamma.GammaGammaFit:
    s = cdnow_summaries()
    return gammagamma.fit(s["frequency"], s["monetary_value"])


def test_cdnow_fit_reproduces_the_published_parameters() -> None:
    # Fader & Hardie (2013): p = 6.25, q = 3.74, γ = 15.44 on the 946 repeat buyers, m̄ the
    # mean spend of the repeat purchases in weeks 1–39 (same-day transactions merged)
    fit = cdnow_fit()
    assert fit.converged, fit.message
    assert fit.customers == 946
    p = fit.params
    assert (round(p.p, 2), round(p.q, 2), round(p.gamma, 2)) == (6.25, 3.74, 15.44)
    assert round(fit.log_likelihood, 1) == -4055.9


def test_other_definitions_of_mean_spend_do_not_give_the_published_figures() -> None:
    """Why `monetary_value` leaves the first purchase out: with it, the fit is far off."""
    s = cdnow_summaries()
    all_purchases = s["calibration_amount"] / (s["frequency"] + 1)
    other = gammagamma.fit(s["frequency"], all_purchases).params
    assert round(other.p, 2) != 6.25 and round(other.gamma, 2) != 15.44


def test_cdnow_standard_errors_match_an_independent_hessian() -> None:
    fit = cdnow_fit()
    s = cdnow_summaries()
    theta = fit.params.as_array()

    def total(values: np.ndarray) -> float:
        ll = gammagamma.log_likelihood(
            GammaGammaParams.from_array(values), s["frequency"], s["monetary_value"]
        )
        return float(np.nansum(ll))

    h = np.zeros((3, 3))
    steps = theta * 1e-4
    for i in range(3):
        for j in range(3):
            ei, ej = np.eye(3)[i] * steps[i], np.eye(3)[j] * steps[j]
            h[i, j] = (
                total(theta + ei + ej)
                - total(theta + ei - ej)
                - total(theta - ei + ej)
                + total(theta - ei - ej)
            ) / (4 * steps[i] * steps[j])
    independent = np.sqrt(np.diag(np.linalg.inv(-h)))
    assert np.allclose(fit.standard_errors.as_array(), independent, rtol=2e-3)


def test_the_gradient_is_the_derivative_of_the_likelihood() -> None:
    s = cdnow_summaries()
    repeat = s[s["frequency"] > 0]
    x = repeat["frequency"].to_numpy(dtype=float)
    m = repeat["monetary_value"].to_numpy(dtype=float)
    point = np.log([3.0, 2.0, 20.0])
    analytic = gammagamma._terms(point, x, m)[1].sum(axis=1)
    numeric = np.zeros(3)
    for i in range(3):
        e = np.eye(3)[i] * 1e-6
        numeric[i] = (
            gammagamma._terms(point + e, x, m)[0].sum()
            - gammagamma._terms(point - e, x, m)[0].sum()
        ) / 2e-6
    assert np.allclose(analytic, numeric, rtol=1e-6)


def test_the_likelihood_of_one_customer_by_hand() -> None:
    # p = q = γ = 1, x = 1, m̄ = 2: Γ(2)/(Γ(1)Γ(1)) · 1 · 2⁰ · 1 / (1 + 2)² = 1/9
    ll = gammagamma.log_likelihood(GammaGammaParams(1, 1, 1), [1, 0], [2, np.nan])
    assert ll[0] == pytest.approx(np.log(1 / 9), rel=1e-14)
    assert np.isnan(ll[1])  # no repeat purchase, no spend likelihood


def test_a_fit_recovers_the_parameters_it_was_simulated_from() -> None:
    truth = GammaGammaParams(p=4.0, q=3.0, gamma=20.0)
    rng = np.random.default_rng(20240602)
    customers = 5000
    nu = rng.gamma(truth.q, 1 / truth.gamma, customers)
    x = rng.integers(1, 12, customers)
    means = np.array(
        [rng.gamma(truth.p, 1 / nu[i], x[i]).mean() for i in range(customers)], dtype=float
    )
    fit = gammagamma.fit(x, means)
    assert fit.converged
    z = (fit.params.as_array() - truth.as_array()) / fit.standard_errors.as_array()
    assert np.abs(z).max() < 3.5, z


def test_conditional_expected_spend_by_hand() -> None:
    params = GammaGammaParams(p=2.0, q=3.0, gamma=10.0)
    population = 2 * 10 / 2  # pγ/(q−1)
    assert gammagamma.mean_spend(params) == population
    # (γ + m̄x) p / (px + q − 1) = (10 + 4·3) · 2 / (6 + 2)
    assert float(gammagamma.conditional_expected_spend(params, 3, 4.0)) == pytest.approx(5.5)
    weight = 6 / 8  # px / (px + q − 1)
    assert weight * 4.0 + (1 - weight) * population == pytest.approx(5.5)
    assert float(gammagamma.conditional_expected_spend(params, 0, np.nan)) == population
    assert gammagamma.mean_spend(GammaGammaParams(1, 0.5, 1)) == np.inf


def test_cdnow_expected_spend() -> None:
    s = cdnow_summaries()
    spend = gammagamma.conditional_expected_spend(SPEND, s["frequency"], s["monetary_value"])
    assert np.isfinite(spend).all() and (spend > 0).all()
    assert gammagamma.mean_spend(SPEND) == pytest.approx(6.25 * 15.44 / 2.74)


def test_bad_spend_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        gammagamma.fit([1, 2], [5.0, 0.0])
    assert caught.value.code == "value.monetary"
    with pytest.raises(ValidationFailed) as caught:
        gammagamma.fit([0, 0], [np.nan, np.nan])
    assert caught.value.code == "value.no_repeat"
    with pytest.raises(ValidationFailed):
        gammagamma.conditional_expected_spend(SPEND, [1], [-3.0])


# --- Lifetime value ----------------------------------------------------------------------------


def test_period_lengths() -> None:
    assert gammagamma.period_length("month", "W") == pytest.approx(365.25 / 12 / 7)
    assert gammagamma.period_length("week", "D") == 7
    assert gammagamma.period_length("week", "W") == 1
    with pytest.raises(ValidationFailed):
        gammagamma.period_length("year", "W")  # type: ignore[arg-type]


def test_clv_is_the_discounted_sum_by_hand() -> None:
    x, tx, age = np.array([0, 2, 7]), np.array([0, 30.43, 35.0]), np.array([38.86] * 3)
    m = np.array([np.nan, 40.0, 25.0])
    month = gammagamma.period_length("month", "W")
    spend = gammagamma.conditional_expected_spend(SPEND, x, m)
    expected = np.zeros(3)
    for i in (1, 2, 3):
        gained = bgnbd.conditional_expected_purchases(
            PURCHASES, i * month, x, tx, age
        ) - bgnbd.conditional_expected_purchases(PURCHASES, (i - 1) * month, x, tx, age)
        expected += spend * gained / 1.01**i
    clv = gammagamma.customer_lifetime_value(
        PURCHASES, SPEND, x, tx, age, m, periods=3, discount_rate=0.01, period_length=month
    )
    assert np.allclose(clv, expected, rtol=1e-12)
    # no discounting: expected spend × expected purchases over the whole horizon
    undiscounted = gammagamma.customer_lifetime_value(
        PURCHASES, SPEND, x, tx, age, m, periods=3, discount_rate=0.0, period_length=month
    )
    total = bgnbd.conditional_expected_purchases(PURCHASES, 3 * month, x, tx, age)
    assert np.allclose(undiscounted, spend * total, rtol=1e-12)
    assert (clv < undiscounted).all()


def test_clv_of_cdnow() -> None:
    s = cdnow_summaries()
    args = (s["frequency"], s["recency"], s["T"], s["monetary_value"])
    month = gammagamma.period_length("month", "W")
    year = gammagamma.customer_lifetime_value(
        PURCHASES, SPEND, *args, periods=12, discount_rate=0.01, period_length=month
    )
    two = gammagamma.customer_lifetime_value(
        PURCHASES, SPEND, *args, periods=24, discount_rate=0.01, period_length=month
    )
    assert np.isfinite(year).all() and (year > 0).all()
    assert (two > year).all()
    # the customer of FHL's example is worth more than one who never came back
    assert year[s.index.get_loc("00004")] > np.median(year[s["frequency"].to_numpy() == 0])


def test_bad_horizons_are_refused() -> None:
    for periods, rate, length in ((0, 0.01, 4.0), (12, -1.0, 4.0), (12, 0.01, 0.0)):
        with pytest.raises(ValidationFailed):
            gammagamma.customer_lifetime_value(
                PURCHASES,
                SPEND,
                [1],
                [1],
                [2],
                [10.0],
                periods=periods,
                discount_rate=rate,
                period_length=length,
            )


@settings(max_examples=200, deadline=None)
@given(
    p=st.floats(0.05, 50),
    q=st.floats(1.01, 50),
    gamma=st.floats(0.01, 1000),
    x=st.integers(1, 500),
    m=st.floats(0.01, 10_000),
)
def test_expected_spend_lies_between_the_population_and_the_customer(p, q, gamma, x, m) -> None:
    params = GammaGammaParams(p, q, gamma)
    spend = float(gammagamma.conditional_expected_spend(params, x, m))
    low, high = sorted((gammagamma.mean_spend(params), m))
    assert low * (1 - 1e-12) <= spend <= high * (1 + 1e-12)
