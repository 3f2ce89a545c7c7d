"""Exact Markov attribution against published examples, by hand, and against a simulation.

Published (see `data/SOURCES.md`): Bryl's three journeys (credits 0.2 / 0.4 / 0.4 exactly),
Puzyrov's four paths (published transition probabilities), the pychattr README (published
transition matrix, and simulated figures the exact answer must lie within sampling error of).
By hand: orders 2 and 3 on paths where the extra memory matters; value credited through
the last unit before conversion. Properties: P(conversion) reproduces the data, credits sum
exactly, results are bit-for-bit identical across runs, processes and partitions. The only
simulation in the package is `simulate` below, a seeded cross-check of the exact solver.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.markov import MarkovResult, markov
from attribution.stats import PathCounts, PathStats, read_paths_csv

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


def D(text: str | int) -> Decimal:
    return Decimal(text)


def stats_of(*rows: tuple[str, int, str, int]) -> PathStats:
    return PathStats.from_counts(
        (tuple(p.split(" > ")), PathCounts(c, Decimal(v), n)) for p, c, v, n in rows
    )


def probabilities(result: MarkovResult) -> dict[tuple[str, str], float]:
    return {(r["from"], r["to"]): r["probability"] for r in result.transitions.to_dict("records")}


# --- Published examples ---------------------------------------------------------------------


def test_bryl_three_journeys_credit_exactly_02_04_04() -> None:
    result = markov(read_paths_csv((DATA / "bryl_2016_three_journeys.csv").read_text()))
    assert probabilities(result) == pytest.approx(
        {
            ("(start)", "C1"): 2 / 3,
            ("(start)", "C2"): 1 / 3,
            ("C1", "C2"): 1 / 2,
            ("C1", "(null)"): 1 / 2,
            ("C2", "C3"): 1.0,
            ("C3", "(conversion)"): 1 / 2,
            ("C3", "(null)"): 1 / 2,
        },
        rel=1e-15,
    )
    assert result.p_conversion == pytest.approx(1 / 3, rel=1e-15)
    assert result.removal_effects == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 1.0}, rel=1e-15)
    assert result.attribution.conversions == {
        "C1": D("0.200000"),
        "C2": D("0.400000"),
        "C3": D("0.400000"),
    }
    assert str(result.attribution.conversions["C1"]) == "0.200000"


def test_puzyrov_four_paths_published_transitions_and_removal_effects() -> None:
    result = markov(read_paths_csv((DATA / "puzyrov_2019_four_paths.csv").read_text()))
    assert probabilities(result) == pytest.approx(
        {
            ("(start)", "google ads"): 0.8,
            ("(start)", "mailing"): 0.2,
            ("google ads", "mailing"): 0.25,
            ("google ads", "(conversion)"): 0.5,
            ("google ads", "(null)"): 0.25,
            ("mailing", "(conversion)"): 1.0,
        },
        rel=1e-15,
    )
    # P = .8 × (.5 + .25) + .2 = .8; without google ads .2; without mailing .8 × .5 = .4
    assert result.p_conversion == pytest.approx(0.8, rel=1e-15)
    assert result.removal_effects == pytest.approx({"google ads": 0.75, "mailing": 0.5})
    # 4 conversions × .75 / 1.25 and × .5 / 1.25
    assert result.attribution.conversions == {"google ads": D("2.4"), "mailing": D("1.6")}


def test_pychattr_readme_exact_answer_and_its_simulated_figures() -> None:
    stats = read_paths_csv((DATA / "pychattr_readme.csv").read_text(), collapse_repeats=True)
    result = markov(stats)
    assert probabilities(result) == {
        ("(start)", "A"): 1.0,
        ("A", "B"): 0.5,
        ("A", "(conversion)"): 0.5,
        ("B", "A"): 1.0,
    }
    assert result.removal_effects == {"A": 1.0, "B": 0.5}
    assert result.attribution.conversions == {"A": D(2), "B": D(1)}
    assert result.attribution.value == {"A": D("2.00"), "B": D("1.00")}
    # The README's simulated figures (10,000 simulations) lie within sampling error of these:
    # removal effect of B 0.5067 (one s.e. of a proportion at n = 10,000 is 0.005), and
    # conversions A 1.991106, B 1.008894.
    assert abs(0.5067 - result.removal_effects["B"]) < 3 * math.sqrt(0.25 / 10_000)
    assert abs(1.991106 - 2) < 0.01 and abs(1.008894 - 1) < 0.01


# --- Orders and value, by hand --------------------------------------------------------------


def test_order_two_sees_that_c_before_b_never_converts() -> None:
    stats = stats_of(("a > b", 1, "10", 0), ("c > b", 0, "0", 1))
    # order 1: b converts half the time whoever came first: effects a .5, b 1, c .5
    first = markov(stats, 1)
    assert first.removal_effects == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.5})
    assert first.attribution.conversions == {"a": D("0.25"), "b": D("0.5"), "c": D("0.25")}
    # order 2: (a, b) always converts, (c, b) never: removing c changes nothing
    second = markov(stats, 2)
    assert second.removal_effects == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.0})
    assert second.attribution.conversions == {"a": D("0.5"), "b": D("0.5"), "c": D(0)}
    assert ("a > b", "(conversion)") in probabilities(second)


def test_order_three_needs_three_units_of_memory() -> None:
    stats = stats_of(("a > x > y", 1, "0", 0), ("b > x > y", 0, "0", 1))
    # order 2 forgets a/b by the time it reaches (x, y): effects .5, .5, 1, 1 → / 3
    assert markov(stats, 2).attribution.conversions == {
        "a": D("0.166667"),
        "b": D("0.166667"),
        "x": D("0.333333"),
        "y": D("0.333333"),
    }
    # order 3 remembers: b's paths never convert
    third = markov(stats, 3)
    assert third.removal_effects == pytest.approx({"a": 1.0, "b": 0.0, "x": 1.0, "y": 1.0})
    assert third.attribution.conversions == {
        "a": D("0.333334"),
        "b": D(0),
        "x": D("0.333333"),
        "y": D("0.333333"),
    }


def test_value_goes_through_the_last_unit_before_conversion() -> None:
    # a closes 100, b closes 10: equal conversion credit, value follows the closer.
    # E = .5 × 100 + .5 × 10 = 55; without a 5 (effect 10/11), without b 50 (1/11).
    alone = markov(stats_of(("a", 1, "100", 0), ("b", 1, "10", 0)))
    assert alone.attribution.conversions == {"a": D(1), "b": D(1)}
    assert alone.value_removal_effects == pytest.approx({"a": 10 / 11, "b": 1 / 11})
    assert alone.attribution.value == {"a": D("100.00"), "b": D("10.00")}
    assert alone.expected_value == pytest.approx(55)
    # a > b closes 100 and b alone 10: b's mean closing value is 55, so a, which only leads
    # to b, has value effect 1 − 27.5/55 = .5 and b 1: 110 × 1/3 and 110 × 2/3.
    through = markov(stats_of(("a > b", 1, "100", 0), ("b", 1, "10", 0)))
    assert through.value_removal_effects == pytest.approx({"a": 0.5, "b": 1.0})
    assert through.attribution.value == {"a": D("36.67"), "b": D("73.33")}


def test_order_must_be_one_to_three() -> None:
    for order in (0, 4):
        with pytest.raises(ValueError, match="1 to 3"):
            markov(stats_of(("a", 1, "0", 0)), order)


def test_no_conversions_gives_zero_credits() -> None:
    result = markov(stats_of(("a > b", 0, "0", 4)))
    assert result.p_conversion == 0
    assert result.attribution.conversions == {"a": D(0), "b": D(0)}


# --- Properties -----------------------------------------------------------------------------

UNITS = ["email", "search", "social", "sms"]


@st.composite
def random_rows(draw: st.DrawFn) -> list[tuple[tuple[str, ...], PathCounts]]:
    return draw(
        st.lists(
            st.tuples(
                st.lists(st.sampled_from(UNITS), min_size=1, max_size=5).map(tuple),
                st.builds(
                    PathCounts,
                    st.integers(0, 30),
                    st.decimals(0, 10_000, places=2),
                    st.integers(0, 30),
                ),
            ).filter(lambda row: row[1].conversions or row[1].value == 0),
            min_size=1,
            max_size=10,
        )
    )


def fingerprint(result: MarkovResult) -> str:
    """Every number of a result, floats by repr: equal strings mean equal to the last bit."""
    return json.dumps(
        {
            "p": repr(result.p_conversion),
            "e": repr(result.expected_value),
            "re": {k: repr(v) for k, v in result.removal_effects.items()},
            "rev": {k: repr(v) for k, v in result.value_removal_effects.items()},
            "conv": {k: str(v) for k, v in result.attribution.conversions.items()},
            "value": {k: str(v) for k, v in result.attribution.value.items()},
            "transitions": result.transitions.to_json(),
        },
        sort_keys=True,
    )


@settings(max_examples=60, deadline=None)
@given(random_rows(), st.integers(1, 3), st.integers(1, 3), st.randoms(use_true_random=False))
def test_exact_sums_reproduced_data_and_identical_results_across_partitions(
    rows, order, parts, rng
) -> None:
    stats = PathStats.from_counts(rows)
    result = markov(stats, order)
    attribution = result.attribution
    assert sum(attribution.conversions.values()) == stats.total_conversions
    assert sum(attribution.value.values()) == stats.total_value
    # with nothing removed the chain reproduces the data
    journeys = stats.total_conversions + stats.total_nulls
    if journeys:
        assert result.p_conversion == pytest.approx(stats.total_conversions / journeys, abs=1e-12)
        assert result.expected_value == pytest.approx(
            float(stats.total_value) / journeys, rel=1e-9, abs=1e-9
        )
    # the same statistics summed from shuffled partitions give the same bits
    shuffled = list(rows)
    rng.shuffle(shuffled)
    pieces = [PathStats.from_counts(shuffled[i::parts]) for i in range(parts)]
    assert fingerprint(markov(sum(pieces, PathStats()), order)) == fingerprint(result)
    assert fingerprint(markov(stats, order)) == fingerprint(result)


PROGRAM = """
import json, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from attribution.markov import markov
from attribution.stats import read_paths_csv
from tests.attribution.test_markov import fingerprint
stats = read_paths_csv(Path({path!r}).read_text())
print(json.dumps([fingerprint(markov(stats, order)) for order in (1, 2, 3)]))
"""


def test_identical_to_the_last_digit_in_fresh_processes() -> None:
    path = DATA / "channelattribution_pathdata_head.csv"
    here = [fingerprint(markov(read_paths_csv(path.read_text()), order)) for order in (1, 2, 3)]
    # another hash seed: set and dict orders of strings differ from this process's
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(root=str(ROOT), path=str(path))],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    assert json.loads(out.stdout) == here


# --- The seeded simulation: a cross-check only ---------------------------------------------


def simulate(
    stats: PathStats, removed: str | None, walkers: int, rng: np.random.Generator
) -> float:
    """Share of `walkers` random walks on the order-1 chain of `stats` that convert.

    Built independently of `attribution.markov`: counts → a dense row-stochastic matrix over
    [start, units..., conversion, null]; removing a unit redirects every move into it to null.
    """
    units = list(stats.channels)
    index = {u: i + 1 for i, u in enumerate(units)}
    conv, null = len(units) + 1, len(units) + 2
    counts = np.zeros((len(units) + 3, len(units) + 3))
    for path, c in stats.items():
        weight = c.conversions + c.nulls
        steps = [0, *(index[u] for u in path)]
        for a, b in itertools.pairwise(steps):
            counts[a, b] += weight
        counts[steps[-1], conv] += c.conversions
        counts[steps[-1], null] += c.nulls
    if removed is not None:
        r = index[removed]
        counts[:, null] += counts[:, r]
        counts[:, r] = 0
    counts[conv, conv] = counts[null, null] = 1
    totals = counts.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(counts / np.where(totals == 0, 1, totals), axis=1)
    state = np.zeros(walkers, dtype=np.int64)
    for _ in range(10_000):
        alive = (state != conv) & (state != null)
        if not alive.any():
            break
        u = rng.random(int(alive.sum()))
        state[alive] = (cumulative[state[alive]] <= u[:, None]).sum(axis=1)
    return float((state == conv).mean())


@pytest.mark.parametrize("seed", range(5))
def test_exact_solver_agrees_with_a_seeded_simulation_on_random_graphs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    units = ["a", "b", "c", "d", "e"][: rng.integers(3, 6)]
    rows = []
    for _ in range(rng.integers(5, 15)):
        path = tuple(rng.choice(units, size=rng.integers(1, 6)))
        rows.append(
            (path, PathCounts(int(rng.integers(0, 20)), Decimal(0), int(rng.integers(0, 20))))
        )
    stats = PathStats.from_counts(rows)
    if not stats.total_conversions:
        stats = stats + PathStats.from_counts([((units[0],), PathCounts(1, Decimal(0), 0))])
    exact = markov(stats)
    walkers = 200_000
    for removed in [None, *stats.channels]:
        estimate = simulate(stats, removed, walkers, rng)
        if removed is None:
            truth = exact.p_conversion
        else:
            truth = exact.p_conversion * (1 - exact.removal_effects[removed])
        standard_error = math.sqrt(max(truth * (1 - truth), 1e-12) / walkers)
        assert abs(estimate - truth) < 5 * standard_error, (removed, estimate, truth)
