"""Shapley attribution: the simplified formula against full enumeration, exactly.

Zhao, Mahboobi & Bagheri (2018) prove that for v(S) = conversions of journeys whose unit
set lies inside S, the classical Shapley value equals Σ_{T ∋ c} R(T)/|T|. The tests hold
both to that in exact rationals on hand-worked and random data, check the enumeration
itself on the textbook glove game, and check the ordered variant adds up to the simplified
one. Sources in `data/SOURCES.md`.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.shapley import (
    MAX_FULL_CHANNELS,
    coalition_values,
    full_shapley,
    ordered_shapley,
    ordered_shapley_values,
    shapley_values,
    simplified_shapley,
    simplified_shapley_values,
)
from attribution.stats import PathCounts, PathStats, read_paths_csv

DATA = Path(__file__).parent / "data"
F = Fraction


def D(text: str | int) -> Decimal:
    return Decimal(text)


def stats_of(*rows: tuple[str, int, str, int]) -> PathStats:
    return PathStats.from_counts(
        (tuple(p.split(" > ")), PathCounts(c, Decimal(v), n)) for p, c, v, n in rows
    )


def test_the_enumeration_reproduces_the_glove_game() -> None:
    # players 1 and 2 hold a left glove, 3 the only right glove; a pair is worth 1
    players = ("p1", "p2", "p3")
    worth = [1 if mask & 0b100 and mask & 0b011 else 0 for mask in range(8)]
    assert shapley_values(players, worth) == {"p1": F(1, 6), "p2": F(1, 6), "p3": F(2, 3)}


def test_simplified_by_hand_equals_full_enumeration() -> None:
    # R({A}) = 10, R({B}) = 5, R({A, B}) = 6, R({A, B, C}) = 3 (in two orders)
    stats = stats_of(
        ("A", 10, "100", 0),
        ("B", 5, "50", 2),
        ("A > B", 4, "40", 0),
        ("B > A > B", 2, "20", 0),
        ("C > A > B", 3, "33", 0),
        ("C", 0, "0", 7),
    )
    # φ_A = 10 + 6/2 + 3/3 = 14, φ_B = 5 + 3 + 1 = 9, φ_C = 1
    conversions, value = simplified_shapley_values(stats)
    assert conversions == {"A": F(14), "B": F(9), "C": F(1)}
    assert value == {"A": F(141), "B": F(91), "C": F(11)}
    players, v_conversions, v_value = coalition_values(stats)
    assert players == ("A", "B", "C")
    # v over masks (bit 0 = A, bit 1 = B, bit 2 = C): ∅, A, B, AB, C, AC, BC, ABC
    assert v_conversions == [0, 10, 5, 21, 0, 10, 5, 24]
    assert shapley_values(players, v_conversions) == conversions
    assert shapley_values(players, v_value) == value
    assert simplified_shapley(stats).conversions == full_shapley(stats).conversions
    assert simplified_shapley(stats).conversions == {"A": D(14), "B": D(9), "C": D(1)}


def test_bryl_journeys_split_the_one_conversion_in_three() -> None:
    stats = read_paths_csv((DATA / "bryl_2016_three_journeys.csv").read_text())
    result = simplified_shapley(stats)
    # the one conversion's set is {C1, C2, C3}; null journeys win nothing in this game
    assert result.conversions == {"C1": D("0.333334"), "C2": D("0.333333"), "C3": D("0.333333")}
    assert full_shapley(stats).conversions == result.conversions


def test_ordered_variant_by_position() -> None:
    # a > b > a converts 4 times for 8: a's half is split over its two occurrences
    stats = stats_of(("a > b > a", 4, "8", 0), ("b", 2, "2", 0))
    conversions, value = ordered_shapley_values(stats)
    assert conversions == {("a", 1): F(1), ("b", 2): F(2), ("a", 3): F(1), ("b", 1): F(2)}
    assert value == {("a", 1): F(2), ("b", 2): F(4), ("a", 3): F(2), ("b", 1): F(2)}
    result = ordered_shapley(stats)
    assert result.attribution.conversions == {"a": D(2), "b": D(4)}
    assert result.by_position.to_dict("records") == [
        {"unit": "a", "position": 1, "conversions": D(1), "value": D(2)},
        {"unit": "a", "position": 3, "conversions": D(1), "value": D(2)},
        {"unit": "b", "position": 1, "conversions": D(2), "value": D(2)},
        {"unit": "b", "position": 2, "conversions": D(2), "value": D(4)},
    ]


def test_full_enumeration_handles_fifteen_units_and_refuses_sixteen() -> None:
    units = tuple(f"u{i:02d}" for i in range(MAX_FULL_CHANNELS))
    stats = PathStats.from_counts(
        [
            (units, PathCounts(15, Decimal("30.15"), 0)),
            (units[:2], PathCounts(2, Decimal("1.01"), 0)),
            (("u03",), PathCounts(1, Decimal("9"), 0)),
        ]
    )
    full = full_shapley(stats)
    assert full.conversions == simplified_shapley(stats).conversions
    assert full.conversions["u03"] == D(2) and full.conversions["u00"] == D(2)
    too_many = stats + PathStats.from_counts([(("extra",), PathCounts(1, Decimal(0), 0))])
    with pytest.raises(ValueError, match="at most 15"):
        full_shapley(too_many)


UNITS = ["email", "search", "social", "sms", "push", "tv"]


@st.composite
def random_rows(draw: st.DrawFn) -> list[tuple[tuple[str, ...], PathCounts]]:
    return draw(
        st.lists(
            st.tuples(
                st.lists(st.sampled_from(UNITS), min_size=1, max_size=6).map(tuple),
                st.builds(
                    PathCounts,
                    st.integers(0, 40),
                    st.decimals(0, 10_000, places=2),
                    st.integers(0, 40),
                ),
            ).filter(lambda row: row[1].conversions or row[1].value == 0),
            min_size=1,
            max_size=12,
        )
    )


@settings(max_examples=80, deadline=None)
@given(random_rows(), st.randoms(use_true_random=False))
def test_simplified_equals_full_enumeration_exactly_on_random_data(rows, rng) -> None:
    stats = PathStats.from_counts(rows)
    conversions, value = simplified_shapley_values(stats)
    players, v_conversions, v_value = coalition_values(stats)
    full_conversions = shapley_values(players, v_conversions)
    full_value = shapley_values(players, v_value)
    assert {k: v for k, v in conversions.items() if k in players} == full_conversions
    assert {k: v for k, v in value.items() if k in players} == full_value
    assert all(conversions[k] == 0 for k in conversions if k not in players)
    # efficiency: the game's grand coalition is all the conversions
    assert sum(full_conversions.values()) == stats.total_conversions

    simplified = simplified_shapley(stats)
    assert full_shapley(stats) == replace(simplified, model="shapley_full")
    assert sum(simplified.conversions.values()) == stats.total_conversions
    assert sum(simplified.value.values()) == stats.total_value

    ordered = ordered_shapley(stats)
    assert sum(ordered.attribution.conversions.values()) == stats.total_conversions
    assert sum(ordered.attribution.value.values()) == stats.total_value
    assert sum(ordered.by_position["conversions"]) == stats.total_conversions
    by_position, _ = ordered_shapley_values(stats)
    per_unit = {k: F(0) for k in conversions}
    for (unit, _), amount in by_position.items():
        per_unit[unit] += amount
    assert per_unit == conversions

    shuffled = list(rows)
    rng.shuffle(shuffled)
    assert simplified_shapley(PathStats.from_counts(shuffled)) == simplified
