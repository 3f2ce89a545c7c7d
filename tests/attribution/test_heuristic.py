"""Heuristic models on hand-worked journeys and on ChannelAttribution's sample rows.

Every expected figure below is worked by hand (the working is in the comments). Sources of
the published rules are in `data/SOURCES.md`. Properties: every model's credits sum
exactly to the totals, and the same statistics built in any order give the same credits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution import heuristic
from attribution.credits import Attribution, allocate
from attribution.paths import Journey, Touch, build_journeys
from attribution.stats import PathCounts, PathStats, read_paths_csv

DATA = Path(__file__).parent / "data"
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def D(text: str | int) -> Decimal:
    return Decimal(text)


def stats_of(*rows: tuple[str, int, str, int]) -> PathStats:
    return PathStats.from_counts(
        (tuple(p.split(" > ")), PathCounts(c, Decimal(v), n)) for p, c, v, n in rows
    )


# email > search > email converts once for 30; search converts twice for 20 in all;
# social > email converts once for 10; social alone fails three times.
HAND = stats_of(
    ("email > search > email", 1, "30", 0),
    ("search", 2, "20", 0),
    ("social > email", 1, "10", 0),
    ("social", 0, "0", 3),
)


def credits(result: Attribution) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    return dict(result.conversions), dict(result.value)


def test_first_and_last_touch_by_hand() -> None:
    assert credits(heuristic.first_touch(HAND)) == (
        {"email": D("1.000000"), "search": D("2.000000"), "social": D("1.000000")},
        {"email": D("30.00"), "search": D("20.00"), "social": D("10.00")},
    )
    assert credits(heuristic.last_touch(HAND)) == (
        {"email": D("2.000000"), "search": D("2.000000"), "social": D("0.000000")},
        {"email": D("40.00"), "search": D("20.00"), "social": D("0.00")},
    )


def test_linear_by_hand_repeats_kept_or_collapsed() -> None:
    # email: 2/3 + 1/2 = 7/6; search: 1/3 + 2 = 7/3; social: 1/2. Rounded at 6 places the
    # floors leave one unit, which goes to email (remainder .67 beats search's .33).
    # value: email 20 + 5, search 10 + 20, social 5.
    assert credits(heuristic.linear(HAND)) == (
        {"email": D("1.166667"), "search": D("2.333333"), "social": D("0.500000")},
        {"email": D("25.00"), "search": D("30.00"), "social": D("5.00")},
    )
    repeated = stats_of(("email > email > search", 3, "9", 0))
    assert heuristic.linear(repeated).conversions == {"email": D("2"), "search": D("1")}
    assert heuristic.linear(repeated.collapsed()).conversions == {
        "email": D("1.5"),
        "search": D("1.5"),
    }


def test_position_based_40_20_40_with_one_and_two_touches() -> None:
    # email > search > email: email .4 + .4, search .2; search: all; social > email: 50/50.
    assert credits(heuristic.position_based(HAND)) == (
        {"email": D("1.300000"), "search": D("2.200000"), "social": D("0.500000")},
        {"email": D("29.00"), "search": D("26.00"), "social": D("5.00")},
    )
    # four touches: .4, .1, .1, .4; five: .4, 1/15 × 3, .4
    four = heuristic.position_based(stats_of(("a > b > c > d", 10, "0", 0)))
    assert four.conversions == {"a": D(4), "b": D(1), "c": D(1), "d": D(4)}
    assert heuristic.position_weights(("a", "b", "c", "d", "e"))[1] * 15 == 1


def test_channelattribution_sample_rows_first_and_last_touch_by_hand() -> None:
    stats = read_paths_csv((DATA / "channelattribution_pathdata_head.csv").read_text())
    zero = D("0.0000000000000")
    first = heuristic.first_touch(stats)
    # first units: eta (1 + 1), iota (2 + 1 + 10), alpha (2 + 1), beta (1 + 1 + 1)
    assert first.conversions == {
        "alpha": D(3),
        "beta": D(3),
        "eta": D(2),
        "iota": D(13),
        "kappa": D(0),
        "lambda": D(0),
        "theta": D(0),
    }
    # value at the total's own 13 places: 0.244 + 3.3; 3.195 + 2.6 + 30.7346153846154; ...
    assert first.value == {
        "alpha": D("11.798"),
        "beta": D("12.714"),
        "eta": D("3.544"),
        "iota": D("36.5296153846154"),
        "kappa": zero,
        "lambda": zero,
        "theta": zero,
    }
    assert str(first.value["alpha"]) == "11.7980000000000"
    last = heuristic.last_touch(stats)
    assert {k: v for k, v in last.conversions.items() if v} == {
        "alpha": D(3),
        "beta": D(1),
        "eta": D(4),
        "iota": D(12),
        "kappa": D(1),
    }
    assert {k: v for k, v in last.value.items() if v} == {
        "alpha": D("11.798"),
        "beta": D("2.6"),
        "eta": D("9.438"),
        "iota": D("33.9296153846154"),
        "kappa": D("6.82"),
    }
    assert last.total_value == D("64.5856153846154")


# --- Time decay -----------------------------------------------------------------------------


def journey(*touch_days: float, value: str = "30", converted: bool = True) -> Journey:
    at = T0 + timedelta(days=10)
    return Journey(
        member="m",
        touches=tuple(
            Touch(f"c{i}", at - timedelta(days=d)) for i, d in enumerate(touch_days, start=1)
        ),
        converted=converted,
        value=D(value),
        kind="purchase" if converted else None,
        at=at if converted else None,
    )


def test_time_decay_seven_day_half_life_as_google_ads_describes_it() -> None:
    # "an ad interaction 8 days before a conversion gets half as much credit as an ad
    # interaction 1 day before": weights 1 : 2, so 1/3 and 2/3 of one conversion worth 30.
    result = heuristic.time_decay([journey(8, 1)])
    assert credits(result) == (
        {"c1": D("0.333333"), "c2": D("0.666667")},
        {"c1": D("10.00"), "c2": D("20.00")},
    )


def test_time_decay_with_equal_times_is_linear_and_ignores_nulls_and_empty_paths() -> None:
    journeys = [
        journey(2, 2, 2, value="9"),
        journey(5, converted=False),
        Journey("m", (), True, D("100"), "purchase", T0),
    ]
    result = heuristic.time_decay(journeys, half_life=timedelta(days=3))
    assert result.conversions == {"c1": D("0.333334"), "c2": D("0.333333"), "c3": D("0.333333")}
    assert result.value == {"c1": D("3.00"), "c2": D("3.00"), "c3": D("3.00")}
    assert result.total_conversions == 1 and result.total_value == D(9)


def test_time_decay_from_frames_end_to_end() -> None:
    tp = pd.DataFrame(
        {
            "member": ["m1", "m1"],
            "channel": ["email", "search"],
            "at": pd.Series([T0, T0 + timedelta(days=7)], dtype="datetime64[us, UTC]"),
        }
    )
    cv = pd.DataFrame(
        {
            "member": ["m1"],
            "at": pd.Series([T0 + timedelta(days=14)], dtype="datetime64[us, UTC]"),
            "value": ["90.00"],
            "kind": ["purchase"],
        }
    )
    # 14 and 7 days before: weights 1/4 and 1/2, so 1/3 and 2/3
    result = heuristic.time_decay(build_journeys(tp, cv))
    assert result.value == {"email": D("30.00"), "search": D("60.00")}


# --- Rounding and properties ----------------------------------------------------------------


def test_largest_remainder_sums_exactly_and_breaks_ties_by_key() -> None:
    thirds = allocate(D("1.00"), {"b": 1, "a": 1, "c": 1}, 2)
    assert thirds == {"a": D("0.34"), "b": D("0.33"), "c": D("0.33")}
    assert list(thirds) == ["a", "b", "c"]
    assert allocate(D("0"), {"a": 0, "b": 0}, 2) == {"a": D("0.00"), "b": D("0.00")}
    assert allocate(D("-1.00"), {"a": 1, "b": 2}, 2) == {"a": D("-0.33"), "b": D("-0.67")}
    with pytest.raises(ValueError, match="all-zero"):
        allocate(D("1"), {"a": 0}, 2)
    with pytest.raises(ValueError, match="decimal places"):
        allocate(D("1.005"), {"a": 1}, 2)


UNITS = ["email", "search", "social", "sms", "push"]


@st.composite
def random_stats(draw: st.DrawFn) -> list[tuple[tuple[str, ...], PathCounts]]:
    return draw(
        st.lists(
            st.tuples(
                st.lists(st.sampled_from(UNITS), min_size=1, max_size=6).map(tuple),
                st.builds(
                    PathCounts,
                    st.integers(0, 50),
                    st.decimals(0, 10_000, places=3),
                    st.integers(0, 50),
                ),
            ).filter(lambda row: row[1].conversions or row[1].value == 0),
            min_size=1,
            max_size=12,
        )
    )


MODELS = [
    heuristic.first_touch,
    heuristic.last_touch,
    heuristic.linear,
    heuristic.position_based,
]


@settings(max_examples=80, deadline=None)
@given(random_stats(), st.randoms(use_true_random=False))
def test_every_heuristic_sums_exactly_to_the_totals_whatever_the_order(rows, rng) -> None:
    stats = PathStats.from_counts(rows)
    shuffled = list(rows)
    rng.shuffle(shuffled)
    again = PathStats.from_counts(shuffled)
    for model in MODELS:
        result = model(stats)
        assert sum(result.conversions.values()) == stats.total_conversions
        assert sum(result.value.values()) == stats.total_value
        assert all(v >= 0 for v in result.conversions.values())
        assert model(again) == result
        assert list(result.conversions) == list(stats.channels)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.floats(0, 60), min_size=1, max_size=5),
            st.decimals(0, 1000, places=2),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_time_decay_sums_exactly_to_the_totals(rows) -> None:
    journeys = [journey(*days, value=str(v)) for days, v in rows]
    result = heuristic.time_decay(journeys)
    assert sum(result.conversions.values()) == len(journeys)
    assert sum(result.value.values()) == sum((j.value for j in journeys), Decimal(0))
    assert heuristic.time_decay(list(reversed(journeys))) == result
