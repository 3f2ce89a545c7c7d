"""Shapley attribution: the simplified form, its ordered variant, and full enumeration.

**The game.** Players are units; the worth of a coalition S is v(S) = the conversions (or
value) of the journeys whose set of units is a subset of S: what S would have won alone.
Writing R(T) for the conversions of journeys whose unit set is *exactly* T, v = Σ_T R(T)·u_T
with u_T the unanimity game of T, and the Shapley value of u_T gives 1/|T| to each member.
By linearity (Zhao, Mahboobi & Bagheri 2018, "Shapley Value Methods for Attribution
Modeling in Online Advertising", arXiv:1804.05327):

    φ_c = Σ over unit sets T containing c of R(T) / |T|

exactly equal to the classical formula over all 2ⁿ coalitions, at the cost of one pass
over the distinct unit sets instead of 2ⁿ. `full_shapley` enumerates the classical formula
(n ≤ `MAX_FULL_CHANNELS`) as the reference the tests compare against; both are computed in
exact rationals, so they agree to the last digit, not merely within a tolerance. (They
differ only for other worth functions, e.g. conversion *rates*, which this module does not
offer: rates are not additive over unit sets.) Null journeys win nothing in this game.

**Ordered variant** (Zhao et al., §4): a unit's 1/|T| share of a journey is split over its
occurrences in the path, each occurrence at position i (1-based, in the path as stored:
kept or collapsed repeats) getting 1/(|T| · occurrences of the unit). Summed over
positions it is the simplified value; by position it shows whether a unit opens, assists
or closes. Credits by (unit, position) are rounded together by largest remainder, and the
per-unit totals are their sums, so both views add up to the totals exactly (a per-unit
total may differ from `simplified_shapley` in the last reported digit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

import pandas as pd

from attribution.credits import (
    CONVERSION_PLACES,
    MIN_VALUE_PLACES,
    Attribution,
    allocate,
    at_places,
    places_of,
)
from attribution.stats import PathStats

MAX_FULL_CHANNELS = 15


def simplified_shapley_values(
    stats: PathStats,
) -> tuple[dict[str, Fraction], dict[str, Fraction]]:
    """Exact φ per unit for conversions and for value: Σ_{T ∋ c} R(T) / |T|."""
    conversions = {c: Fraction(0) for c in stats.channels}
    value = {c: Fraction(0) for c in stats.channels}
    for units, counts in sorted(stats.channel_sets().items(), key=lambda kv: sorted(kv[0])):
        if not counts.conversions:
            continue
        share_conversions = Fraction(counts.conversions, len(units))
        share_value = Fraction(counts.value) / len(units)
        for unit in units:
            conversions[unit] += share_conversions
            value[unit] += share_value
    return conversions, value


def _attribution(
    model: str,
    stats: PathStats,
    conversions: Mapping[str, Fraction],
    value: Mapping[str, Fraction],
    conversion_places: int,
    value_places: int | None,
) -> Attribution:
    return Attribution.from_shares(
        model,
        conversion_shares=conversions,
        value_shares=value,
        total_conversions=stats.total_conversions,
        total_value=stats.total_value,
        conversion_places=conversion_places,
        value_places=value_places,
    )


def simplified_shapley(
    stats: PathStats,
    *,
    conversion_places: int = CONVERSION_PLACES,
    value_places: int | None = None,
) -> Attribution:
    """Zhao et al.'s simplified Shapley value, credits summing exactly to the totals."""
    conversions, value = simplified_shapley_values(stats)
    return _attribution(
        "shapley_simplified", stats, conversions, value, conversion_places, value_places
    )


# --- Full enumeration: the reference --------------------------------------------------------


def coalition_values(
    stats: PathStats,
) -> tuple[tuple[str, ...], list[int], list[Fraction]]:
    """Players (units on converting paths, sorted) and v(S) for every coalition S.

    v is indexed by bit mask over the players (bit i = player i) and computed by the
    subset-sum (zeta) transform of R: v(S) = Σ_{T ⊆ S} R(T), in O(n·2ⁿ) exact integer and
    rational additions.
    """
    converting = {units: c for units, c in stats.channel_sets().items() if c.conversions}
    players = tuple(sorted({u for units in converting for u in units}))
    if len(players) > MAX_FULL_CHANNELS:
        raise ValueError(
            f"full enumeration is for at most {MAX_FULL_CHANNELS} units, not {len(players)}"
        )
    bit = {p: 1 << i for i, p in enumerate(players)}
    size = 1 << len(players)
    # Values in integer units of the finest decimal place present, so the transform is
    # integer additions; converted to Fractions once at the end.
    scale = 10 ** max((places_of(c.value) for c in converting.values()), default=0)
    v_conversions = [0] * size
    v_units = [0] * size
    with localcontext(prec=200):
        for units, counts in converting.items():
            mask = sum(bit[u] for u in units)
            v_conversions[mask] += counts.conversions
            v_units[mask] += int(counts.value * scale)
    for i in range(len(players)):
        step = 1 << i
        for mask in range(size):
            if mask & step:
                v_conversions[mask] += v_conversions[mask ^ step]
                v_units[mask] += v_units[mask ^ step]
    v_value = [Fraction(units, scale) for units in v_units]
    return players, v_conversions, v_value


def shapley_values(
    players: Sequence[str], worth: Sequence[int] | Sequence[Fraction]
) -> dict[str, Fraction]:
    """The classical Shapley value of any game given as v(mask), exactly.

    φ_i = Σ_{S ∌ i} |S|!·(n − |S| − 1)!/n! · (v(S ∪ {i}) − v(S)). Rational worths are put
    over their common denominator first, so the 2ⁿ·n terms are integer arithmetic.
    """
    n = len(players)
    if len(worth) != 1 << n:
        raise ValueError("worth must give v for every one of the 2ⁿ coalitions")
    denominator = math.lcm(*(Fraction(w).denominator for w in worth)) if worth else 1
    scaled = [int(Fraction(w) * denominator) for w in worth]
    weights = [math.factorial(s) * math.factorial(n - s - 1) for s in range(n)]
    sizes = [mask.bit_count() for mask in range(1 << n)]
    out: dict[str, Fraction] = {}
    for i, player in enumerate(players):
        step = 1 << i
        total = 0
        for mask in range(1 << n):
            if not mask & step:
                total += weights[sizes[mask]] * (scaled[mask | step] - scaled[mask])
        out[player] = Fraction(total, math.factorial(n) * denominator)
    return out


def full_shapley(
    stats: PathStats,
    *,
    conversion_places: int = CONVERSION_PLACES,
    value_places: int | None = None,
) -> Attribution:
    """The classical Shapley value by enumerating all coalitions (≤ 15 units): the reference."""
    players, v_conversions, v_value = coalition_values(stats)
    conversions = dict.fromkeys(stats.channels, Fraction(0))
    value = dict.fromkeys(stats.channels, Fraction(0))
    if players:
        conversions.update(shapley_values(players, v_conversions))
        value.update(shapley_values(players, v_value))
    return _attribution("shapley_full", stats, conversions, value, conversion_places, value_places)


# --- Ordered variant ------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderedShapley:
    """Per-unit credits (`attribution`) and the same credits by position (`by_position`)."""

    attribution: Attribution
    by_position: pd.DataFrame  # unit, position (1-based), conversions, value


def ordered_shapley_values(
    stats: PathStats,
) -> tuple[dict[tuple[str, int], Fraction], dict[tuple[str, int], Fraction]]:
    """Exact φ per (unit, position): each occurrence gets 1/(|T| · occurrences of the unit)."""
    conversions: dict[tuple[str, int], Fraction] = {}
    value: dict[tuple[str, int], Fraction] = {}
    for path, counts in stats.items():
        if not counts.conversions:
            continue
        distinct = len(set(path))
        amount = Fraction(counts.value)
        for position, unit in enumerate(path, start=1):
            share = Fraction(1, distinct * path.count(unit))
            key = (unit, position)
            conversions[key] = conversions.get(key, Fraction(0)) + counts.conversions * share
            value[key] = value.get(key, Fraction(0)) + amount * share
    return conversions, value


def ordered_shapley(
    stats: PathStats,
    *,
    conversion_places: int = CONVERSION_PLACES,
    value_places: int | None = None,
) -> OrderedShapley:
    """Zhao et al.'s ordered Shapley value: credits by unit and by position in the path."""
    conversions, value = ordered_shapley_values(stats)
    if value_places is None:
        value_places = max(MIN_VALUE_PLACES, places_of(stats.total_value))
    total_conversions = at_places(Decimal(stats.total_conversions), conversion_places)
    total_value = at_places(stats.total_value, value_places)
    by_conversions = allocate(total_conversions, conversions, conversion_places)
    by_value = allocate(total_value, value, value_places)
    per_unit_conversions = {c: at_places(Decimal(0), conversion_places) for c in stats.channels}
    per_unit_value = {c: at_places(Decimal(0), value_places) for c in stats.channels}
    with localcontext(prec=200):  # sums of reported amounts: exact
        for (unit, _), amount in by_conversions.items():
            per_unit_conversions[unit] += amount
        for (unit, _), amount in by_value.items():
            per_unit_value[unit] += amount
    keys = sorted(by_conversions)
    frame = pd.DataFrame(
        {
            "unit": pd.Series([u for u, _ in keys], dtype=object),
            "position": pd.Series([p for _, p in keys], dtype="int64"),
            "conversions": pd.Series([by_conversions[k] for k in keys], dtype=object),
            "value": pd.Series([by_value[k] for k in keys], dtype=object),
        }
    )
    attribution = Attribution(
        model="shapley_ordered",
        conversions=per_unit_conversions,
        value=per_unit_value,
        total_conversions=total_conversions,
        total_value=total_value,
    )
    return OrderedShapley(attribution=attribution, by_position=frame)
