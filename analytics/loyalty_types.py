"""Loyalty types of CRM practice: what keeps a member buying, by attachment and repeat purchase.

Each member of a period gets exactly one type:

=================  ============================================================================
type               rule (thresholds from `LoyaltyThresholds`; every comparison inclusive)
=================  ============================================================================
``super_value``    high repeat, full price, refers friends: repeat_purchases ≥
                   ``super_min_repeat``, full-price share ≥ ``super_min_full_price_share``
                   and referrals ≥ ``super_min_referrals``
``incentive``      buys when a campaign or coupon runs and stops after: purchases ≥
                   ``min_purchases``, campaign share ≥ ``incentive_min_campaign_share`` and
                   the purchase rate outside campaigns ≤ ``incentive_max_outside_rate``
``price``          buys mostly at a discount: purchases ≥ ``min_purchases`` and discounted
                   share ≥ ``price_min_discounted_share``
``inertia``        repeats without engagement: repeat_purchases ≥ ``inertia_min_repeat`` and
                   engagement ≤ ``inertia_max_engagement``
``none``           none of the above: new members, occasional buyers, engaged repeaters who are
                   neither price- nor campaign-driven nor super-value
=================  ============================================================================

**Precedence** when several rules hold: super_value, then incentive, then price, then inertia
(`TYPES` order). The most demanding and most valuable attachment first; incentive before price
because campaign-bound buying with nothing in between is a narrower case of buying on
discount (a coupon is a discount); inertia last because it is the weakest attachment and the
catch-all of repeaters. So a member who is both a price buyer and an inert repeater is
``price``: the discount is what brings them back.

Input: a frame with one row per member (indexed by member id) of whole numbers ≥ 0, all
counted in the same period:

===========================  =====================================================================
column                       meaning
===========================  =====================================================================
``purchases``                purchases in the period (same-day purchases are one; a purchase
                             refunded in full does not count)
``repeat_purchases``         those that are not the member's first purchase ever (≤ purchases)
``discounted_purchases``     those bought with a coupon or at a markdown (≤ purchases); the
                             rest are full price
``campaign_purchases``       those inside a campaign's window or with a coupon (≤ purchases)
``days_outside_campaigns``   days of the period (from the member's joining, if later) in no
                             campaign window
``engagement``               the member's engagement actions in the period: portal sign-ins,
                             coupons claimed, reward redemptions, referrals made
``referrals``                friends they referred who qualified in the period
===========================  =====================================================================

Shares are of purchases: discounted share = discounted_purchases / purchases, full-price share
= 1 − that, campaign share = campaign_purchases / purchases; a member without purchases has no
share and matches no share rule. The **outside rate** is purchases per 30 days outside
campaigns: (purchases − campaign_purchases) × 30 / days_outside_campaigns; with no days
outside campaigns "stops after" cannot be seen, so the incentive rule does not hold.

All comparisons are exact (whole numbers against thresholds as fractions), so a member exactly
at a threshold always qualifies.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import ValidationFailed

SUPER_VALUE = "super_value"
INCENTIVE = "incentive"
PRICE = "price"
INERTIA = "inertia"
NONE = "none"
# Precedence order; the last is what a member gets when no rule holds.
TYPES = (SUPER_VALUE, INCENTIVE, PRICE, INERTIA, NONE)
TYPE_NAMES: dict[str, str] = {
    SUPER_VALUE: "Super-value loyalty",
    INCENTIVE: "Incentive loyalty",
    PRICE: "Price loyalty",
    INERTIA: "Inertia loyalty",
    NONE: "None / new",
}
ABSENT = "absent"
INPUT_COLUMNS = (
    "purchases",
    "repeat_purchases",
    "discounted_purchases",
    "campaign_purchases",
    "days_outside_campaigns",
    "engagement",
    "referrals",
)
DAYS_PER_RATE = 30
# Thresholds are written with at most this many decimals, so exact products fit in int64.
_MAX_PLACES = 6
_MAX_COUNT = 10**9

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class LoyaltyThresholds:
    """The thresholds of the loyalty types (see the module docstring); change one with
    `dataclasses.replace`. Shares are within 0–1, the rate is purchases per 30 days outside
    campaigns; shares and the rate take at most 6 decimals."""

    inertia_min_repeat: int = 2
    inertia_max_engagement: int = 1
    min_purchases: int = 2
    price_min_discounted_share: Decimal = Decimal("0.5")
    incentive_min_campaign_share: Decimal = Decimal("0.7")
    incentive_max_outside_rate: Decimal = Decimal("0.5")
    super_min_repeat: int = 4
    super_min_full_price_share: Decimal = Decimal("0.8")
    super_min_referrals: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | Decimal):
                raise ValidationFailed(
                    f"value.{f.name}", "%(name)s must be a whole number or a Decimal.", name=f.name
                )
            if isinstance(value, int):
                if not 0 <= value <= _MAX_COUNT:
                    raise ValidationFailed(
                        f"value.{f.name}",
                        "%(name)s must be a whole number 0–%(most)s.",
                        name=f.name,
                        most=_MAX_COUNT,
                    )
                continue
            exponent = value.as_tuple().exponent
            if not value.is_finite() or not isinstance(exponent, int) or -exponent > _MAX_PLACES:
                raise ValidationFailed(
                    f"value.{f.name}",
                    "%(name)s must be a number with at most 6 decimals.",
                    name=f.name,
                )
            upper = Decimal(1) if f.name.endswith("_share") else Decimal(1000)
            if not 0 <= value <= upper:
                raise ValidationFailed(
                    f"value.{f.name}",
                    "%(name)s must be within 0–%(upper)s.",
                    name=f.name,
                    upper=upper,
                )


def _counts(members: pd.DataFrame) -> dict[str, IntArray]:
    missing = [c for c in INPUT_COLUMNS if c not in members.columns]
    if missing:
        raise ValidationFailed(
            "value.columns",
            "The members lack column(s) %(missing)s; expected %(input_columns)s.",
            missing=", ".join(missing),
            input_columns=", ".join(INPUT_COLUMNS),
        )
    out: dict[str, IntArray] = {}
    for c in INPUT_COLUMNS:
        column = members[c]
        whole = pd.api.types.is_integer_dtype(column.dtype) and not column.isna().any()
        if not (whole or len(column) == 0):
            raise ValidationFailed(
                f"value.{c}", "Column %(column)s must hold whole numbers.", column=c
            )
        values = column.to_numpy(dtype=np.int64)
        if ((values < 0) | (values > _MAX_COUNT)).any():
            raise ValidationFailed(
                f"value.{c}",
                "Column %(column)s must hold whole numbers 0–%(most)s.",
                column=c,
                most=_MAX_COUNT,
            )
        out[c] = values
    purchases = out["purchases"]
    for c in ("repeat_purchases", "discounted_purchases", "campaign_purchases"):
        if (out[c] > purchases).any():
            raise ValidationFailed(
                f"value.{c}", "Column %(column)s must not exceed the member's purchases.", column=c
            )
    return out


def _at_least(count: IntArray, whole: IntArray, share: Decimal) -> BoolArray:
    """count / whole ≥ share, exactly, for whole > 0 (False where whole = 0)."""
    f = Fraction(share)
    return np.asarray((whole > 0) & (count * f.denominator >= whole * f.numerator), dtype=bool)


def type_matches(
    members: pd.DataFrame, thresholds: LoyaltyThresholds | None = None
) -> pd.DataFrame:
    """Which rules each member meets (boolean columns ``super_value``, ``incentive``,
    ``price``, ``inertia``), before precedence. Raises ValidationFailed for a missing column,
    a value that is not a whole number ≥ 0, or a part count above the purchases."""
    t = LoyaltyThresholds() if thresholds is None else thresholds
    c = _counts(members)
    purchases, repeat = c["purchases"], c["repeat_purchases"]
    full_price = purchases - c["discounted_purchases"]
    outside = purchases - c["campaign_purchases"]
    days = c["days_outside_campaigns"]
    rate = Fraction(t.incentive_max_outside_rate)
    low_outside_rate = (days > 0) & (
        outside * DAYS_PER_RATE * rate.denominator <= days * rate.numerator
    )
    enough = purchases >= t.min_purchases
    matches = {
        SUPER_VALUE: (repeat >= t.super_min_repeat)
        & _at_least(full_price, purchases, t.super_min_full_price_share)
        & (c["referrals"] >= t.super_min_referrals),
        INCENTIVE: enough
        & _at_least(c["campaign_purchases"], purchases, t.incentive_min_campaign_share)
        & low_outside_rate,
        PRICE: enough
        & _at_least(c["discounted_purchases"], purchases, t.price_min_discounted_share),
        INERTIA: (repeat >= t.inertia_min_repeat) & (c["engagement"] <= t.inertia_max_engagement),
    }
    return pd.DataFrame(
        {k: np.asarray(v, dtype=bool) for k, v in matches.items()}, index=members.index
    )


def classify(members: pd.DataFrame, thresholds: LoyaltyThresholds | None = None) -> pd.Series:
    """Each member's loyalty type: the first rule in `TYPES` order that holds, else ``none``.
    A categorical Series in the members' index, named ``loyalty_type``."""
    matches = type_matches(members, thresholds)
    chosen = np.full(len(members), NONE, dtype=object)
    for kind in reversed(TYPES[:-1]):  # earlier types overwrite later ones
        chosen[matches[kind].to_numpy()] = kind
    return pd.Series(
        pd.Categorical(chosen, categories=list(TYPES)), index=members.index, name="loyalty_type"
    )


def counts(types: pd.Series) -> pd.Series:
    """Members per type, every type listed (0 where none), in `TYPES` order."""
    unknown = set(types.dropna().unique()) - set(TYPES)
    if unknown or types.isna().any():
        raise ValidationFailed("value.loyalty_type", "Every member needs one of the loyalty types.")
    tally = types.astype(object).value_counts()
    return pd.Series(
        [int(tally.get(kind, 0)) for kind in TYPES],
        index=pd.Index(TYPES, name="loyalty_type"),
        name="members",
        dtype=np.int64,
    )


def movement(before: pd.Series, after: pd.Series) -> pd.DataFrame:
    """The movement between two periods: rows the type before, columns the type after, cells
    the number of members (matched by index). A member in only one period moves from or to
    ``absent`` (the last row and column; absent → absent is always 0). Row totals are the
    counts before (plus, in the ``absent`` row, the members new in the later period); column
    totals the counts after; the grand total the number of distinct members."""
    for types in (before, after):
        counts(types)  # checks the values
        if types.index.has_duplicates:
            raise ValidationFailed("value.member", "A member appears twice in one period.")
    labels = [*TYPES, ABSENT]
    members = before.index.union(after.index)
    old = before.astype(object).reindex(members).fillna(ABSENT)
    new = after.astype(object).reindex(members).fillna(ABSENT)
    table = pd.crosstab(
        pd.Categorical(old, categories=labels), pd.Categorical(new, categories=labels), dropna=False
    )
    table = table.reindex(index=labels, columns=labels, fill_value=0).astype(np.int64)
    table.index = pd.Index(labels, name="before")
    table.columns = pd.Index(labels, name="after")
    return table
