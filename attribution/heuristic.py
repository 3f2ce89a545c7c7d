"""Heuristic models: fixed rules for who gets the credit of a converting path.

Each rule gives every touch of a converting path a weight; the path's conversions and value
are split by those weights, and a unit's credit is the sum over its touches. Weights are
exact `Fraction`s (time decay: exact binary fractions of its float weights), so credits are
exact until `Attribution.from_shares` rounds them by largest remainder at the reported
precision. Null journeys never carry credit in these models. A path is taken as it is in
the statistics: with kept repeats "email > email > search" gives email two touches.

- first touch / last touch: all to the first / last touch;
- linear: 1/n to each of the n touches;
- position-based (U-shaped, 40/20/40): 40% to the first touch, 40% to the last, 20% shared
  evenly by the touches between. One touch takes 100%; two touches take 50% each (there is
  no middle to give 20% to, and splitting it keeps the rule symmetric);
- time decay: touch weight 2^(−Δ/half-life), Δ in days from the touch to the conversion
  (default half-life 7 days: a touch a week before counts half as much as one at the
  conversion). It needs touch times, so it runs on journeys, not on `PathStats`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

from attribution.credits import CONVERSION_PLACES, Attribution
from attribution.paths import Journey
from attribution.stats import Path, PathStats

FIRST_SHARE = Fraction(2, 5)
LAST_SHARE = Fraction(2, 5)
MIDDLE_SHARE = Fraction(1, 5)
DEFAULT_HALF_LIFE = timedelta(days=7)

Weights = Callable[[Path], Sequence[Fraction]]


def first_weights(path: Path) -> list[Fraction]:
    return [Fraction(1) if i == 0 else Fraction(0) for i in range(len(path))]


def last_weights(path: Path) -> list[Fraction]:
    return [Fraction(1) if i == len(path) - 1 else Fraction(0) for i in range(len(path))]


def linear_weights(path: Path) -> list[Fraction]:
    return [Fraction(1, len(path))] * len(path)


def position_weights(path: Path) -> list[Fraction]:
    n = len(path)
    if n == 1:
        return [Fraction(1)]
    if n == 2:
        return [Fraction(1, 2), Fraction(1, 2)]
    middle = MIDDLE_SHARE / (n - 2)
    return [FIRST_SHARE, *([middle] * (n - 2)), LAST_SHARE]


def _accumulate(
    items: Iterable[tuple[Path, Sequence[Fraction], int, Decimal]], channels: Iterable[str]
) -> tuple[dict[str, Fraction], dict[str, Fraction]]:
    conversions = {c: Fraction(0) for c in channels}
    value = {c: Fraction(0) for c in channels}
    for path, weights, count, amount in items:
        exact_amount = Fraction(amount)
        for unit, weight in zip(path, weights, strict=True):
            conversions[unit] += count * weight
            value[unit] += exact_amount * weight
    return conversions, value


def by_rule(
    model: str,
    stats: PathStats,
    weights: Weights,
    *,
    conversion_places: int = CONVERSION_PLACES,
    value_places: int | None = None,
) -> Attribution:
    """Credit every converting path of `stats` by the per-touch `weights` (summing to 1)."""
    conversions, value = _accumulate(
        (
            (path, weights(path), c.conversions, c.value)
            for path, c in stats.items()
            if c.conversions
        ),
        stats.channels,
    )
    return Attribution.from_shares(
        model,
        conversion_shares=conversions,
        value_shares=value,
        total_conversions=stats.total_conversions,
        total_value=stats.total_value,
        conversion_places=conversion_places,
        value_places=value_places,
    )


def first_touch(
    stats: PathStats, *, conversion_places: int = CONVERSION_PLACES, value_places: int | None = None
) -> Attribution:
    return by_rule(
        "first_touch",
        stats,
        first_weights,
        conversion_places=conversion_places,
        value_places=value_places,
    )


def last_touch(
    stats: PathStats, *, conversion_places: int = CONVERSION_PLACES, value_places: int | None = None
) -> Attribution:
    return by_rule(
        "last_touch",
        stats,
        last_weights,
        conversion_places=conversion_places,
        value_places=value_places,
    )


def linear(
    stats: PathStats, *, conversion_places: int = CONVERSION_PLACES, value_places: int | None = None
) -> Attribution:
    return by_rule(
        "linear",
        stats,
        linear_weights,
        conversion_places=conversion_places,
        value_places=value_places,
    )


def position_based(
    stats: PathStats, *, conversion_places: int = CONVERSION_PLACES, value_places: int | None = None
) -> Attribution:
    """40/20/40; one touch 100%, two touches 50/50 (see the module docstring)."""
    return by_rule(
        "position_based",
        stats,
        position_weights,
        conversion_places=conversion_places,
        value_places=value_places,
    )


DECAY_GRAIN = 10**12  # time-decay weights are kept to 1e-12 of a conversion


def decay_weights(journey: Journey, half_life: timedelta = DEFAULT_HALF_LIFE) -> list[Fraction]:
    """Normalised 2^(−Δdays/half-life) per touch, Δ from the touch to the conversion.

    The weights are powers of two of real numbers, so they are computed in floating point
    and then fixed to a grain of 1e-12 that sums to exactly 1 per journey (the remainder
    goes to the heaviest touch, the earliest among equals): every journey's weights share
    one denominator, so summing a million journeys stays exact and fast (exact binary
    fractions of the floats would grow denominators without bound)."""
    if journey.at is None:
        raise ValueError("time decay needs the conversion's time")
    if half_life <= timedelta(0):
        raise ValueError("the half-life must be positive")
    raw = [2.0 ** (-((journey.at - t.at) / half_life)) for t in journey.touches]
    total = math.fsum(raw)
    grains = [round(w / total * DECAY_GRAIN) for w in raw]
    heaviest = max(range(len(grains)), key=lambda i: (grains[i], -i))
    grains[heaviest] += DECAY_GRAIN - sum(grains)
    return [Fraction(g, DECAY_GRAIN) for g in grains]


def time_decay(
    journeys: Iterable[Journey],
    *,
    half_life: timedelta = DEFAULT_HALF_LIFE,
    conversion_places: int = CONVERSION_PLACES,
    value_places: int | None = None,
) -> Attribution:
    """Time decay over journeys (it needs times; `PathStats` has none).

    Totals are those of converting journeys with at least one touch, as in the other
    models; every unit on any journey (null ones too) gets a row.
    """
    journeys = list(journeys)
    channels = sorted({t.unit for j in journeys for t in j.touches})
    converting = [j for j in journeys if j.converted and j.touches]
    conversions, value = _accumulate(
        ((j.path, decay_weights(j, half_life), 1, j.value) for j in converting), channels
    )
    total_value = PathStats.from_journeys(converting).total_value
    return Attribution.from_shares(
        "time_decay",
        conversion_shares=conversions,
        value_shares=value,
        total_conversions=len(converting),
        total_value=total_value,
        conversion_places=conversion_places,
        value_places=value_places,
    )
