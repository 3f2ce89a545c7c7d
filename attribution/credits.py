"""The common result of every attribution model, and the one rounding rule they all share.

Every model first computes an exact or float *share* per key (channel or campaign), then
hands the shares here. `allocate` turns shares into reported amounts with the largest
remainder method (Hamilton): each key gets the floor of its exact share at the reported
precision, and the units left over go one each to the keys with the largest remainders
(ties by key). So the credits always add up to the total to the last digit, whatever the
model, and the same shares always give the same credits.

Why largest remainder rather than plain Fractions: the ROI report and the pages show
decimals, and rounding each Fraction on its own would lose or gain a unit in the sum. The
shares themselves are exact where the model is (heuristics and Shapley use `Fraction`);
Markov removal effects are floats from a linear solve, converted to `Fraction` exactly.

Reported precision: conversions at `CONVERSION_PLACES` (6) places; value at the places of
the total value itself (at least 2), so a total of 24.459 is split into thousandths and
still adds up. Callers that book money pass the currency's minor units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import TYPE_CHECKING, TypeVar

import pandas as pd

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

CONVERSION_PLACES = 6
MIN_VALUE_PLACES = 2

# Wide enough that no scaling or sum of reported amounts ever rounds.
_PRECISION = 200

Share = Fraction | int | float
K = TypeVar("K", bound="SupportsRichComparison")


def places_of(amount: Decimal) -> int:
    """The number of decimal places `amount` is written with (0 for integers)."""
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int), "amounts are finite"
    return max(0, -exponent)


def at_places(amount: Decimal, places: int) -> Decimal:
    """`amount` written with exactly `places` decimals, rounded half up if it had more."""
    with localcontext(prec=_PRECISION):
        return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _fraction(share: Share, key: object) -> Fraction:
    if isinstance(share, float) and not math.isfinite(share):
        raise ValueError(f"share of {key!r} is not finite: {share}")
    exact = Fraction(share)
    if exact < 0:
        raise ValueError(f"share of {key!r} is negative: {share}")
    return exact


def allocate(total: Decimal, shares: Mapping[K, Share], places: int) -> dict[K, Decimal]:
    """Split `total` in proportion to `shares`, at `places` decimals, summing exactly to it.

    `total` must be representable at `places`. Shares are non-negative; they need not sum
    to 1 (they are normalised). A zero total gives zero to every key; a non-zero total with
    all-zero shares is an error (there is nobody to credit). Keys come back sorted.
    """
    with localcontext(prec=_PRECISION):
        return _allocate(total, shares, places)


def _allocate(total: Decimal, shares: Mapping[K, Share], places: int) -> dict[K, Decimal]:
    keys = sorted(shares)
    quantum = Decimal(1).scaleb(-places)
    if total.quantize(quantum) != total:
        raise ValueError(f"total {total} has more than {places} decimal places")
    exact = {key: _fraction(shares[key], key) for key in keys}
    units = int(total.scaleb(places))
    if units == 0:
        return {key: Decimal(0).quantize(quantum) for key in keys}
    weight = sum(exact.values(), Fraction(0))
    if weight == 0:
        raise ValueError("a non-zero total cannot be split over all-zero shares")
    sign = 1 if units > 0 else -1
    magnitude = abs(units)
    quotas = {key: magnitude * exact[key] / weight for key in keys}
    floors = {key: math.floor(quotas[key]) for key in keys}
    left = magnitude - sum(floors.values())
    # Largest remainder first; ties go to the earlier key so the result never depends on
    # dict order. `left` < number of keys with a remainder, so each gets at most one unit.
    order = sorted(keys, key=lambda k: (-(quotas[k] - floors[k]), k))
    for key in order[:left]:
        floors[key] += 1
    return {key: Decimal(sign * floors[key]).scaleb(-places).quantize(quantum) for key in keys}


@dataclass(frozen=True)
class Attribution:
    """What a model credits to each key: conversions and value, each summing to its total.

    `conversions` and `value` have the same keys (every channel or campaign seen, even
    those credited zero), sorted. Totals are of attributable journeys only: a conversion
    with no touchpoint in its window has nothing to credit (see `PathStats.direct`).
    """

    model: str
    conversions: Mapping[str, Decimal]
    value: Mapping[str, Decimal]
    total_conversions: Decimal
    total_value: Decimal

    @classmethod
    def from_shares(
        cls,
        model: str,
        *,
        conversion_shares: Mapping[str, Share],
        value_shares: Mapping[str, Share],
        total_conversions: Decimal | int,
        total_value: Decimal,
        conversion_places: int = CONVERSION_PLACES,
        value_places: int | None = None,
    ) -> Attribution:
        """Round shares into credits (see `allocate`); value places default to the total's."""
        if set(conversion_shares) != set(value_shares):
            raise ValueError("conversion and value shares must name the same keys")
        conversions_total = Decimal(total_conversions)
        if value_places is None:
            value_places = max(MIN_VALUE_PLACES, places_of(total_value))
        conversions_total = at_places(conversions_total, conversion_places)
        value_total = at_places(total_value, value_places)
        return cls(
            model=model,
            conversions=allocate(conversions_total, conversion_shares, conversion_places),
            value=allocate(value_total, value_shares, value_places),
            total_conversions=conversions_total,
            total_value=value_total,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per key: `key`, `conversions`, `value` (Decimals, object dtype)."""
        keys = list(self.conversions)
        return pd.DataFrame(
            {
                "key": pd.Series(keys, dtype=object),
                "conversions": pd.Series([self.conversions[k] for k in keys], dtype=object),
                "value": pd.Series([self.value[k] for k in keys], dtype=object),
            }
        )
