"""Incremental lift against published figures, by hand, and by simulation.

Published:
- the pooled two-proportion z-test on 5 of 83 against 12 of 99 gives z = −1.4078,
  p = 0.1592: the example of statsmodels' ``proportions_ztest``
  (https://www.statsmodels.org/stable/generated/statsmodels.stats.proportion.proportions_ztest.html);
  computed here with scipy only, and cross-checked against scipy's Pearson chi-square;
- sample size, equal arms: R's ``power.prop.test(p1 = .50, p2 = .75, power = .90)`` gives
  n = 76.7 per group (R documentation, stats::power.prop.test, Examples,
  https://rdocumentation.org/packages/stats/versions/3.3/topics/power.prop.test), and the
  textbook 10 % against 15 %, α 0.05, power 0.8: 686 per group (685.6 before rounding up;
  Fleiss, Levin & Paik, Statistical Methods for Rates and Proportions, without continuity
  correction);
- sample size, unequal arms: the power at the sizes found, by SAS/STAT PROC POWER's
  documented power formula for the Pearson chi-square test of two independent proportions
  with group weights w1, w2 (SAS/STAT User's Guide, PROC POWER, TWOSAMPLEFREQ,
  https://support.sas.com/documentation/cdl/en/statug/66859/HTML/default/statug_power_details65.htm),
  written out independently below.

By hand: a small report, rounding from exact averages, each edge case (no converters, no
holdout, nobody treated, zero cost). Simulated (seeded): the bootstrap interval covers the
true difference, has the width the normal theory predicts, contains 0 for identical arms,
and is the same for the same seed.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import get_args

import numpy as np
import pytest
from scipy.stats import chi2_contingency, norm

from attribution import lift as lift_module
from attribution.lift import (
    NO_COST,
    NO_HOLDOUT,
    NO_HOLDOUT_CONVERTER,
    NO_TREATED,
    NO_VARIATION,
    VERDICTS,
    Arm,
    VerdictCode,
    bootstrap_interval,
    lift_report,
    sample_size,
    to_minor_units,
    z_test,
)
from core.errors import ValidationFailed

CENTS = 2


def arm(amounts: list[str], converters: int | None = None) -> Arm:
    """An arm from amounts written as text; converters default to members with revenue."""
    values = [Decimal(a) for a in amounts]
    count = sum(v > 0 for v in values) if converters is None else converters
    return Arm.of(values, count, CENTS)


def synthetic(
    rng: np.random.Generator, members: int, rate: float, low: int = 5_000, high: int = 15_000
) -> Arm:
    """Members who buy with chance `rate`, amounts uniform on [low, high] cents."""
    buys = rng.random(members) < rate
    revenue = np.where(buys, rng.integers(low, high + 1, size=members), 0).astype(np.int64)
    return Arm(revenue, int(buys.sum()))


# ---------------------------------------------------------------------------------------------
# The z-test


def test_z_test_matches_the_published_example() -> None:
    test = z_test(5, 83, 12, 99)
    assert test is not None
    assert test.z == pytest.approx(-1.4078, abs=5e-5)
    assert test.p_value == pytest.approx(0.1592, abs=5e-5)


@pytest.mark.parametrize(
    ("x_t", "n_t", "x_h", "n_h"), [(5, 83, 12, 99), (300, 2000, 200, 2000), (40, 900, 3, 100)]
)
def test_z_squared_is_pearsons_chi_square(x_t: int, n_t: int, x_h: int, n_h: int) -> None:
    test = z_test(x_t, n_t, x_h, n_h)
    assert test is not None
    table = [[x_t, n_t - x_t], [x_h, n_h - x_h]]
    chi2, p_value, _, _ = chi2_contingency(table, correction=False)
    assert test.z**2 == pytest.approx(chi2, rel=1e-9)
    assert test.p_value == pytest.approx(p_value, rel=1e-9)
    swapped = z_test(x_h, n_h, x_t, n_t)
    assert swapped is not None and swapped.z == pytest.approx(-test.z)


@pytest.mark.parametrize(
    ("x_t", "n_t", "x_h", "n_h"), [(0, 50, 0, 50), (50, 50, 20, 20), (3, 10, 0, 0), (0, 0, 1, 5)]
)
def test_z_test_is_undefined_without_variation_or_members(
    x_t: int, n_t: int, x_h: int, n_h: int
) -> None:
    assert z_test(x_t, n_t, x_h, n_h) is None


def test_z_test_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="impossible"):
        z_test(6, 5, 1, 5)


# ---------------------------------------------------------------------------------------------
# Sample size


def test_sample_size_matches_r_power_prop_test() -> None:
    size = sample_size(0.5, 0.5, alpha=0.05, power=0.9, holdout_share=Decimal("0.5"))
    assert round(size.holdout_exact, 1) == 76.7
    assert size.treated_exact == pytest.approx(size.holdout_exact)
    assert (size.holdout, size.treated, size.total) == (77, 77, 154)


def test_sample_size_ten_against_fifteen_percent() -> None:
    size = sample_size(0.10, 0.5)  # 15 % is a relative lift of 50 % over 10 %
    assert round(size.holdout_exact, 1) == 685.6
    assert (size.holdout, size.treated, size.total) == (686, 686, 1372)


def sas_power(p_h: float, p_t: float, holdout: float, treated: float, alpha: float) -> float:
    """SAS PROC POWER's power of the Pearson chi-square test (one tail of the two-sided test,
    as the sample size formula counts it), with w1 = holdout / N and w2 = treated / N."""
    total = holdout + treated
    w1, w2 = holdout / total, treated / total
    pooled = w1 * p_h + w2 * p_t
    z = norm.ppf(1 - alpha / 2)
    numerator = abs(p_t - p_h) * math.sqrt(total * w1 * w2) - z * math.sqrt(pooled * (1 - pooled))
    return float(norm.cdf(numerator / math.sqrt(w2 * p_h * (1 - p_h) + w1 * p_t * (1 - p_t))))


@pytest.mark.parametrize("share", ["0.05", "0.1", "0.2", "0.5"])
@pytest.mark.parametrize(("baseline", "lift", "power"), [(0.1, 0.5, 0.8), (0.03, 0.2, 0.9)])
def test_unequal_arms_reach_the_power_by_sas_formula(
    share: str, baseline: float, lift: float, power: float
) -> None:
    size = sample_size(baseline, lift, power=power, holdout_share=Decimal(share))
    p_t = baseline * (1 + lift)
    assert size.treated_exact / size.holdout_exact == pytest.approx(
        (1 - float(share)) / float(share)
    )
    exact = sas_power(baseline, p_t, size.holdout_exact, size.treated_exact, 0.05)
    assert exact == pytest.approx(power, abs=1e-9)
    assert sas_power(baseline, p_t, size.holdout, size.treated, 0.05) >= power
    fewer = sas_power(baseline, p_t, 0.98 * size.holdout_exact, 0.98 * size.treated_exact, 0.05)
    assert fewer < power
    assert size.total == size.holdout + size.treated


def test_an_even_split_needs_the_fewest_members() -> None:
    totals = [sample_size(0.1, 0.2, holdout_share=Decimal(s)).total for s in ("0.05", "0.2", "0.5")]
    assert totals[0] > totals[1] > totals[2]
    assert sample_size(0.1, 0.1).total > sample_size(0.1, 0.2).total


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"baseline_rate": 0.0, "minimum_detectable_lift": 0.1}, "lift.baseline_rate"),
        ({"baseline_rate": 1.0, "minimum_detectable_lift": 0.1}, "lift.baseline_rate"),
        ({"baseline_rate": 0.1, "minimum_detectable_lift": 0.0}, "lift.minimum_detectable_lift"),
        ({"baseline_rate": 0.6, "minimum_detectable_lift": 1.0}, "lift.minimum_detectable_lift"),
        ({"baseline_rate": 0.1, "minimum_detectable_lift": 0.1, "power": 0.3}, "lift.power"),
        ({"baseline_rate": 0.1, "minimum_detectable_lift": 0.1, "alpha": 0.0}, "lift.alpha"),
        (
            {"baseline_rate": 0.1, "minimum_detectable_lift": 0.1, "holdout_share": 0.6},
            "lift.holdout_share",
        ),
        (
            {"baseline_rate": 0.1, "minimum_detectable_lift": 0.1, "holdout_share": 0},
            "lift.holdout_share",
        ),
    ],
)
def test_sample_size_refuses_bad_inputs(kwargs: dict[str, float], code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        sample_size(**kwargs)
    assert refused.value.code == code


# ---------------------------------------------------------------------------------------------
# The bootstrap interval


def test_interval_covers_the_true_difference() -> None:
    rng = np.random.default_rng(7)
    treated, holdout = synthetic(rng, 20_000, 0.12), synthetic(rng, 5_000, 0.10)
    # True revenue per member: rate × mean amount (100.00) = 12.00 and 10.00.
    interval = bootstrap_interval(treated, holdout, CENTS)
    assert interval is not None
    assert interval.contains(Decimal("2.00"))
    assert (interval.confidence, interval.resamples) == (0.95, 2000)


def test_interval_has_the_width_normal_theory_predicts() -> None:
    rng = np.random.default_rng(11)
    treated, holdout = synthetic(rng, 8_000, 0.3), synthetic(rng, 2_000, 0.3)
    interval = bootstrap_interval(treated, holdout, CENTS)
    assert interval is not None
    t, h = treated.revenue / 100, holdout.revenue / 100
    error = math.sqrt(t.var() / t.size + h.var() / h.size)
    observed = t.mean() - h.mean()
    width = float(interval.high - interval.low)
    assert width == pytest.approx(2 * 1.959964 * error, rel=0.1)
    centre = float(interval.high + interval.low) / 2
    assert abs(centre - observed) < 0.2 * error


def test_interval_coverage_over_many_samples() -> None:
    """Over 200 seeded data sets the 90 % interval covers the truth about 90 % of the time
    (binomial: ±5 standard errors ≈ ±0.11)."""
    rng = np.random.default_rng(2024)
    truth = (0.25 - 0.15) * 100.00  # rates × mean amount of 100.00
    covered = 0
    runs = 200
    for _ in range(runs):
        treated, holdout = synthetic(rng, 600, 0.25), synthetic(rng, 300, 0.15)
        interval = bootstrap_interval(
            treated, holdout, CENTS, confidence=0.9, resamples=500, seed=int(rng.integers(10**9))
        )
        assert interval is not None
        covered += interval.contains(Decimal(str(truth)))
    assert abs(covered / runs - 0.9) < 5 * math.sqrt(0.9 * 0.1 / runs)


def test_identical_arms_contain_zero() -> None:
    rng = np.random.default_rng(3)
    same = synthetic(rng, 3_000, 0.2)
    interval = bootstrap_interval(same, Arm(same.revenue.copy(), same.converters), CENTS)
    assert interval is not None and interval.contains(Decimal(0))


def test_interval_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(5)
    treated, holdout = synthetic(rng, 5_000, 0.2), synthetic(rng, 1_000, 0.15)
    first = bootstrap_interval(treated, holdout, CENTS)
    assert first == bootstrap_interval(treated, holdout, CENTS)
    assert first == bootstrap_interval(treated, holdout, CENTS, seed=lift_module.BOOTSTRAP_SEED)
    other = bootstrap_interval(treated, holdout, CENTS, seed=99)
    assert other is not None and other != first and other.seed == 99


def test_resampling_in_chunks_gives_the_same_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(13)
    treated, holdout = synthetic(rng, 4_000, 0.3), synthetic(rng, 1_000, 0.3)
    whole = bootstrap_interval(treated, holdout, CENTS)
    monkeypatch.setattr(lift_module, "_CHUNK", 5_000)  # ~4 resamples per chunk
    chunked = bootstrap_interval(treated, holdout, CENTS)
    assert chunked == bootstrap_interval(treated, holdout, CENTS)
    assert whole is not None and chunked is not None
    width = float(whole.high - whole.low)
    assert abs(float(chunked.low - whole.low)) < 0.1 * width
    assert abs(float(chunked.high - whole.high)) < 0.1 * width


def test_interval_without_revenue_is_zero_and_without_members_none() -> None:
    nothing = Arm(np.zeros(50, dtype=np.int64), 0)
    interval = bootstrap_interval(nothing, nothing, CENTS)
    assert interval is not None and (interval.low, interval.high) == (Decimal("0.00"),) * 2
    assert bootstrap_interval(nothing, arm([]), CENTS) is None


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [({"confidence": 1.0}, "lift.confidence"), ({"resamples": 0}, "lift.resamples")],
)
def test_interval_refuses_bad_settings(kwargs: dict[str, float], code: str) -> None:
    one = arm(["1.00"])
    with pytest.raises(ValidationFailed) as refused:
        bootstrap_interval(one, one, CENTS, **kwargs)  # type: ignore[arg-type]
    assert refused.value.code == code


# ---------------------------------------------------------------------------------------------
# The report


def test_a_report_by_hand() -> None:
    treated = arm(["100.00", "50.00", *["0"] * 8])  # 10 members, 2 converters, 150.00
    holdout = arm(["30.00", "0", "0", "0", "0"])  # 5 members, 1 converter, 30.00
    report = lift_report(treated, holdout, Decimal("10.00"), CENTS)
    assert (report.treated.members, report.treated.converters) == (10, 2)
    assert report.treated.conversion_rate == 0.2 and report.holdout.conversion_rate == 0.2
    assert report.treated.revenue == Decimal("150.00")
    assert report.treated.revenue_per_member == Decimal("15.00")
    assert report.holdout.revenue_per_member == Decimal("6.00")
    assert report.lift == 0.0 and report.incremental_conversions == 0.0
    assert report.revenue_per_member_difference == Decimal("9.00")
    assert report.incremental_revenue == Decimal("90.00")  # 10 × (15.00 − 6.00)
    assert report.incremental_roas == Decimal("9.00")  # 90 ÷ 10
    assert report.incremental_roi_pct == Decimal("800.0")  # (90 − 10) ÷ 10 × 100
    assert report.verdict.code == "too_few_converters"
    assert report.reasons == {}


def test_lift_and_incremental_conversions() -> None:
    treated = Arm(np.zeros(1000, dtype=np.int64), 150)
    holdout = Arm(np.zeros(250, dtype=np.int64), 25)
    report = lift_report(treated, holdout, Decimal("500.00"), CENTS)
    assert report.lift == pytest.approx(0.5)  # 15 % against 10 %
    assert report.incremental_conversions == pytest.approx(50.0)  # 1000 × (0.15 − 0.10)
    assert report.incremental_revenue == Decimal("0.00")
    assert report.incremental_roas == Decimal("0.00")
    assert report.incremental_roi_pct == Decimal("-100.0")


def test_money_is_rounded_once_from_exact_averages() -> None:
    treated = arm(["1.00", "0", "0"])  # 0.3333… per member
    holdout = arm(["0.50", "0", "0"])  # 0.1666… per member
    report = lift_report(treated, holdout, Decimal("0.25"), CENTS)
    assert report.treated.revenue_per_member == Decimal("0.33")
    assert report.holdout.revenue_per_member == Decimal("0.17")
    assert report.revenue_per_member_difference == Decimal("0.17")
    assert report.incremental_revenue == Decimal("0.50")  # 3 × 0.1666…, not 3 × 0.17
    assert report.incremental_roas == Decimal("2.00")
    assert report.incremental_roi_pct == Decimal("100.0")


def test_halves_round_away_from_zero() -> None:
    up = lift_report(arm(["0.01", "0"]), arm(["0", "0"]), Decimal(1), CENTS)
    assert up.treated.revenue_per_member == Decimal("0.01")  # 0.005
    down = lift_report(arm(["-0.01", "0"], converters=0), arm(["0"]), Decimal(1), CENTS)
    assert down.treated.revenue_per_member == Decimal("-0.01")  # −0.005
    assert down.incremental_revenue == Decimal("-0.01")


def test_zero_converters() -> None:
    nobody = Arm(np.zeros(400, dtype=np.int64), 0)
    report = lift_report(nobody, Arm(np.zeros(100, dtype=np.int64), 0), Decimal("50"), CENTS)
    assert report.verdict.code == "too_few_converters"
    assert report.lift is None and report.reasons["lift"] == NO_HOLDOUT_CONVERTER
    assert report.z_test is None and report.reasons["z_test"] == NO_VARIATION
    assert report.incremental_conversions == 0.0
    assert report.incremental_revenue == Decimal("0.00")
    assert report.revenue_interval is not None and report.revenue_interval.contains(Decimal(0))


def test_empty_holdout() -> None:
    report = lift_report(arm(["10.00", "0", "5.00"]), arm([]), Decimal("3.00"), CENTS)
    assert report.verdict.code == "no_holdout"
    assert report.verdict.message == VERDICTS["no_holdout"]
    assert report.holdout.members == 0
    assert report.holdout.conversion_rate is None and report.holdout.revenue_per_member is None
    assert report.holdout.revenue == Decimal("0.00")
    missing = (
        "lift",
        "incremental_conversions",
        "revenue_per_member_difference",
        "incremental_revenue",
        "incremental_roas",
        "incremental_roi_pct",
        "z_test",
        "revenue_interval",
    )
    for name in missing:
        assert getattr(report, name) is None
        assert report.reasons[name] == NO_HOLDOUT
    assert report.treated.revenue_per_member == Decimal("5.00")


def test_nobody_treated() -> None:
    report = lift_report(arm([]), arm(["1.00"]), Decimal("3.00"), CENTS)
    assert report.verdict.code == "no_treatment"
    assert (
        report.incremental_revenue is None and report.reasons["incremental_revenue"] == NO_TREATED
    )


def test_zero_cost() -> None:
    report = lift_report(arm(["10.00", "0"]), arm(["0", "0"]), Decimal("0.00"), CENTS)
    assert report.incremental_revenue == Decimal("10.00")
    assert report.incremental_roas is None and report.incremental_roi_pct is None
    assert report.reasons["incremental_roas"] == report.reasons["incremental_roi_pct"] == NO_COST


def counts(members: int, converters: int) -> Arm:
    revenue = np.zeros(members, dtype=np.int64)
    revenue[:converters] = 2_000
    return Arm(revenue, converters)


def test_verdicts_on_significance_and_direction() -> None:
    better = lift_report(counts(2000, 300), counts(2000, 200), Decimal("100.00"), CENTS)
    assert better.verdict.code == "treatment_better"
    assert better.z_test is not None and better.z_test.p_value < 0.05
    assert "significant at the 5% level" in better.verdict.message
    assert better.revenue_interval is not None and better.revenue_interval.low > 0

    worse = lift_report(counts(2000, 200), counts(2000, 300), Decimal("100.00"), CENTS)
    assert worse.verdict.code == "holdout_better"

    unsure = lift_report(counts(83, 5), counts(99, 12), Decimal("100.00"), CENTS)
    assert unsure.verdict.code == "not_enough_evidence"
    assert unsure.z_test is not None and unsure.z_test.z == pytest.approx(-1.4078, abs=5e-5)

    strict = lift_report(counts(2000, 300), counts(2000, 250), Decimal("100.00"), CENTS, alpha=0.01)
    assert strict.verdict.code == "not_enough_evidence"
    assert "1% level" in strict.verdict.message


def test_too_few_converters_by_cochrans_rule() -> None:
    # 4 converters in all: under no difference each arm of 100 expects 2 (< 5).
    few = lift_report(counts(100, 4), counts(100, 0), Decimal(1), CENTS)
    assert few.verdict.code == "too_few_converters"
    assert few.z_test is not None  # the test is defined, only not trusted
    # Nearly everybody converted: too few expected non-converters.
    most = lift_report(counts(100, 99), counts(100, 97), Decimal(1), CENTS)
    assert most.verdict.code == "too_few_converters"


def test_every_verdict_has_a_sentence() -> None:
    assert set(VERDICTS) == set(get_args(VerdictCode))
    for code, sentence in VERDICTS.items():
        assert sentence.format(level="5%"), code


def test_the_report_is_deterministic() -> None:
    rng = np.random.default_rng(17)
    treated, holdout = synthetic(rng, 3_000, 0.2), synthetic(rng, 700, 0.18)
    assert lift_report(treated, holdout, Decimal("900.00"), CENTS) == lift_report(
        treated, holdout, Decimal("900.00"), CENTS
    )


# ---------------------------------------------------------------------------------------------
# Inputs


def test_arm_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="between 0 and the members"):
        Arm(np.zeros(3, dtype=np.int64), 4)
    with pytest.raises(TypeError):
        Arm(np.array([1.5, 2.0]), 1)
    with pytest.raises(TypeError):
        to_minor_units([1.5], CENTS)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="decimal places"):
        to_minor_units([Decimal("1.005")], CENTS)
    assert to_minor_units([Decimal("1.5"), 2, Decimal("-0.01")], CENTS).tolist() == [150, 200, -1]
    assert to_minor_units([Decimal("12")], 0).tolist() == [12]
    assert arm([]).members == 0


def test_report_inputs_are_checked() -> None:
    one = arm(["1.00"])
    with pytest.raises(ValidationFailed) as refused:
        lift_report(one, one, Decimal("-1"), CENTS)
    assert refused.value.code == "lift.cost"
    with pytest.raises(ValueError, match="decimal places"):
        lift_report(one, one, Decimal(1), 5)
    with pytest.raises(ValidationFailed):
        lift_report(one, one, Decimal(1), CENTS, alpha=0.7)
