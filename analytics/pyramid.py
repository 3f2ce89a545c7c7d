"""The customer pyramid (客户金字塔): each member's contributed value over a period, four layers
by that value, each layer's size and weight, and the movement between two periods.

**Value** (`member_value`). For one period, per member::

    value = margin − cost to serve
    margin = Σ over categories of (gross margin of the category × net purchases in it)
    cost to serve = coupon discounts + value per point × (points redeemed + bonus points)
                    + yearly service cost × days / 365

The inputs, as SQL gives them:

``sales`` — any number of rows per member (they are added up):

====================  ===========================================================================
column                meaning
====================  ===========================================================================
``member_id``         the member (must be one of ``members``)
``net_purchases``     the sales value of what the member bought and kept: the price *before*
                      coupon discounts, less refunds. The margin is earned on it and the coupon
                      then counts once, as a cost below; amounts already after coupons would
                      count the discount twice. Any finite number (refunds may exceed sales)
``category``          optional: the category of the sales; its margin is ``category_margins``
                      [category], or ``margin`` for a category not in the mapping, an empty
                      category or no column at all
====================  ===========================================================================

``members`` — one row per member of the population (members without sales have margin 0):

====================  ===========================================================================
column                meaning
====================  ===========================================================================
``member_id``         the member; unique
``coupon_discounts``  what the member's coupons took off their purchases in the period (≥ 0)
``points_redeemed``   points the member spent on rewards in the period (≥ 0), each costing the
                      program ``value_per_point``
``bonus_points``      bonus points granted to the member in the period (campaigns, bonus rules,
                      referrals; ≥ 0), a promise valued at the same ``value_per_point``
``days``              optional: the days of the period the member belonged to the program
                      (0 … ``period_days``); without the column every member pays for the whole
                      period
====================  ===========================================================================

The service cost is ``yearly_service_cost`` (per member per year: statements, service desk,
card, …) pro-rated by days: × days / 365.

**Layers** (`assign_layers`), from each member's ``value`` and ``predicted_value`` (predicted
lifetime value, e.g. the CLV of `analytics.gammagamma`; put it on the same footing as the
period's value, e.g. the same horizon, since the two are compared):

- **negative** (负值客户): value < 0.
- **most valuable** (最有价值客户): the smallest set of top members holding at least
  ``top_share`` (default 50%) of the total *positive* value. Members with value > 0 are put
  in order by value, highest first, ties by member id ascending; the layer is the shortest
  prefix of that order whose value reaches the share. So of members tied at the cut, the
  lower ids are in and the others out: the order, and hence the layer, is the same on every
  run. With no positive value the layer is empty.
- **most growable** (最具增长性客户): of the other members with value ≥ 0, those whose
  predicted value exceeds ``growth_factor`` (default 1.5) × value. For value 0 this reads
  predicted value > 0: any positive prediction counts as growth, since 1.5 × 0 is 0. A
  missing prediction (NaN) never counts.
- **low contribution** (低贡献客户): everybody else (value ≥ 0).

The four layers partition the members.

**Per layer** (`layer_summary`): members, share of members, value (sum), share of value and
average value. The share of value is the layer's value over the total positive value of all
members, the base the most valuable cut uses: the three non-negative layers add up to 100%,
and the negative layer's share is negative (the part of the positive value it takes back).
NaN where the base is 0 (no members, no positive value, an empty layer's average).

**Movement** (`movement`): members by (layer in the first period, layer in the second), with
``new`` and ``gone`` as in `analytics.rfm.transition_matrix`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.rfm import transition_matrix
from core.errors import ValidationFailed
from core.text import N_

MOST_VALUABLE = "most_valuable"
MOST_GROWABLE = "most_growable"
LOW_CONTRIBUTION = "low_contribution"
NEGATIVE = "negative"
# Top of the pyramid first.
LAYERS: tuple[str, ...] = (MOST_VALUABLE, MOST_GROWABLE, LOW_CONTRIBUTION, NEGATIVE)

SALES_COLUMNS = ("member_id", "net_purchases")
MEMBER_COLUMNS = ("member_id", "coupon_discounts", "points_redeemed", "bonus_points")
VALUE_COLUMNS = (
    "net_purchases",
    "margin",
    "coupon_discounts",
    "rewards_cost",
    "bonus_cost",
    "service_cost",
    "cost_to_serve",
    "value",
)
SUMMARY_COLUMNS = ("members", "member_share", "value", "value_share", "average_value")
DAYS_PER_YEAR = 365

FloatArray = npt.NDArray[np.float64]


def _finite(
    value: float, label: str, low: float, high: float = math.inf, *, category: str | None = None
) -> None:
    """`value` is a number within [`low`, `high`]; else refused, naming `label` (a category's
    own margin names the category)."""
    if not (math.isfinite(value) and low <= value <= high):
        named = {"label": label, "value": repr(value), "low": f"{low:g}", "high": f"{high:g}"}
        if category is not None:
            raise ValidationFailed(
                "value.rules",
                "The gross margin of %(category)s must be a number between %(low)s and "
                "%(high)s, not %(value)s.",
                category=repr(category),
                **named,
            )
        raise ValidationFailed(
            "value.rules",
            N_("%(label)s must be a number between %(low)s and %(high)s, not %(value)s.")
            if math.isfinite(high)
            else N_("%(label)s must be a number at least %(low)s, not %(value)s."),
            **named,
        )


@dataclass(frozen=True, slots=True)
class ValueRules:
    """How a member's value is counted. ``margin``: the gross margin rate (0–1) on net
    purchases; ``category_margins``: category → rate, overriding ``margin`` for those
    categories; ``value_per_point``: what one point costs the program (money per point);
    ``yearly_service_cost``: the cost of serving one member for a year; ``period_days``: the
    period's length in days."""

    margin: float
    period_days: int
    category_margins: Mapping[str, float] = field(default_factory=dict)
    value_per_point: float = 0.0
    yearly_service_cost: float = 0.0

    def __post_init__(self) -> None:
        _finite(self.margin, N_("The gross margin"), 0.0, 1.0)
        for category, rate in self.category_margins.items():
            _finite(rate, N_("The gross margin"), 0.0, 1.0, category=category)
        _finite(self.value_per_point, N_("The value per point"), 0.0)
        _finite(self.yearly_service_cost, N_("The yearly service cost"), 0.0)
        if isinstance(self.period_days, bool) or self.period_days < 1:
            raise ValidationFailed("value.rules", "The period must be at least one day.")


@dataclass(frozen=True, slots=True)
class LayerRules:
    """The pyramid's cuts. ``top_share``: the share of the total positive value the most
    valuable members hold (0 < share ≤ 1); ``growth_factor``: how many times their past value
    a member's predicted value must exceed to count as growable (≥ 1)."""

    top_share: float = 0.5
    growth_factor: float = 1.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.top_share) and 0.0 < self.top_share <= 1.0):
            raise ValidationFailed(
                "value.rules",
                "The top share must be in (0, 1], not %(top_share)s.",
                top_share=repr(self.top_share),
            )
        _finite(self.growth_factor, N_("The growth factor"), 1.0)


def _numbers(frame: pd.DataFrame, column: str, low: float | None = None) -> FloatArray:
    try:
        values = np.asarray(
            frame[column].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64
        )
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            f"value.{column}",
            "%(column)s holds a value that is not a number: %(error)s",
            column=column,
            error=str(exc),
        ) from None
    if not np.isfinite(values).all():
        raise ValidationFailed(
            f"value.{column}", "%(column)s must be a finite number on every row.", column=column
        )
    if low is not None and (values < low).any():
        raise ValidationFailed(
            f"value.{column}",
            "%(column)s must be at least %(low)s on every row.",
            column=column,
            low=f"{low:g}",
        )
    return values


def _require(frame: pd.DataFrame, columns: tuple[str, ...], label: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationFailed(
            "value.columns",
            "The %(label)s lack column(s) %(missing)s; expected %(columns)s.",
            label=label,
            missing=", ".join(missing),
            columns=", ".join(columns),
        )


def _member_index(frame: pd.DataFrame) -> pd.Index:
    ids = frame["member_id"]
    if ids.isna().any():
        raise ValidationFailed("value.member_id", "Every member needs an id; one is empty.")
    if ids.duplicated().any():
        raise ValidationFailed(
            "value.member_id", "A member appears twice; give one row per member."
        )
    index: pd.Index = pd.Index(ids.to_numpy(), name="member_id")
    return index


def member_value(members: pd.DataFrame, sales: pd.DataFrame, rules: ValueRules) -> pd.DataFrame:
    """Each member's value for the period (see the module docstring), indexed by member id
    (sorted): the columns of `VALUE_COLUMNS`. Raises ValidationFailed on a missing column, a
    value that is not a finite number (or a negative cost or point count), a repeated member
    or a sale of a member not in ``members``."""
    _require(members, MEMBER_COLUMNS, N_("members"))
    _require(sales, SALES_COLUMNS, N_("sales"))
    index = _member_index(members)
    coupons = _numbers(members, "coupon_discounts", 0.0)
    redeemed = _numbers(members, "points_redeemed", 0.0)
    bonus = _numbers(members, "bonus_points", 0.0)
    if "days" in members.columns:
        days = _numbers(members, "days", 0.0)
        if (days > rules.period_days).any():
            raise ValidationFailed(
                "value.days",
                "days cannot exceed the period (%(period_days)s days).",
                period_days=rules.period_days,
            )
    else:
        days = np.full(len(members), float(rules.period_days))

    net = np.zeros(len(members))
    margin = np.zeros(len(members))
    if not sales.empty:
        slot = index.get_indexer(pd.Index(sales["member_id"].to_numpy()))
        if (slot < 0).any():
            raise ValidationFailed(
                "value.member_id", "A sale belongs to a member who is not in the members."
            )
        amounts = _numbers(sales, "net_purchases")
        rates = np.full(len(sales), rules.margin)
        if "category" in sales.columns and rules.category_margins:
            mapped = sales["category"].map(dict(rules.category_margins))
            known = mapped.notna().to_numpy()
            rates[known] = mapped.to_numpy(dtype=np.float64, na_value=np.nan)[known]
        net = np.asarray(
            np.bincount(slot, weights=amounts, minlength=len(members)), dtype=np.float64
        )
        margin = np.asarray(
            np.bincount(slot, weights=rates * amounts, minlength=len(members)), dtype=np.float64
        )

    rewards_cost = rules.value_per_point * redeemed
    bonus_cost = rules.value_per_point * bonus
    service_cost = rules.yearly_service_cost * days / DAYS_PER_YEAR
    cost = coupons + rewards_cost + bonus_cost + service_cost
    result = pd.DataFrame(
        {
            "net_purchases": net,
            "margin": margin,
            "coupon_discounts": coupons,
            "rewards_cost": rewards_cost,
            "bonus_cost": bonus_cost,
            "service_cost": service_cost,
            "cost_to_serve": cost,
            "value": margin - cost,
        },
        index=index,
    )
    return result.sort_index(kind="stable")


def assign_layers(values: pd.DataFrame, rules: LayerRules | None = None) -> pd.DataFrame:
    """The pyramid layer of each member of a frame indexed by member id with ``value`` and
    ``predicted_value`` (NaN allowed: no prediction): those two columns and ``layer``, sorted
    by member id. See the module docstring for the cuts."""
    rules = rules or LayerRules()
    _require(values, ("value", "predicted_value"), N_("values"))
    if values.index.has_duplicates:
        raise ValidationFailed(
            "value.member_id", "A member appears twice; give one row per member."
        )
    frame = values[["value", "predicted_value"]].sort_index(kind="stable")
    value = _numbers(frame, "value")
    try:
        predicted = frame["predicted_value"].to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            "value.predicted_value", "predicted_value is not a number: %(error)s", error=str(exc)
        ) from None

    layer = np.full(len(frame), LOW_CONTRIBUTION, dtype=object)
    layer[value < 0] = NEGATIVE
    positive = np.flatnonzero(value > 0)
    top = np.zeros(len(frame), dtype=bool)
    if len(positive):
        # Highest value first, ties by member id (the frame is sorted by id, so by position).
        order = positive[np.lexsort((positive, -value[positive]))]
        held = np.cumsum(value[order])
        count = int(np.searchsorted(held, rules.top_share * held[-1], side="left")) + 1
        top[order[: min(count, len(order))]] = True
    layer[top] = MOST_VALUABLE
    with np.errstate(invalid="ignore"):
        growable = ~top & (value >= 0) & (predicted > rules.growth_factor * value)
    layer[growable] = MOST_GROWABLE
    result = frame.copy()
    result["layer"] = layer
    return result


def layer_summary(layered: pd.DataFrame) -> pd.DataFrame:
    """Per layer (every layer, in `LAYERS` order): ``members``, ``member_share``, ``value``
    (sum), ``value_share`` (of the total positive value) and ``average_value``."""
    _require(layered, ("value", "layer"), N_("layered members"))
    value = _numbers(layered, "value")
    codes = pd.Categorical(layered["layer"], categories=LAYERS).codes
    if (codes < 0).any():
        raise ValidationFailed("value.layer", "A layer is not one of the pyramid's layers.")
    counts = np.bincount(codes, minlength=len(LAYERS)).astype(np.int64)
    sums = np.bincount(codes, weights=value, minlength=len(LAYERS))
    total = int(counts.sum())
    positive = float(value[value > 0].sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        member_share = counts / total if total else np.full(len(LAYERS), np.nan)
        value_share = sums / positive if positive > 0 else np.full(len(LAYERS), np.nan)
        average = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    summary = pd.DataFrame(
        {
            "members": counts,
            "member_share": member_share,
            "value": sums,
            "value_share": value_share,
            "average_value": average,
        },
        index=pd.Index(LAYERS, name="layer"),
    )
    return summary


def movement(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Members by (layer in the first period, layer in the second) from two `assign_layers`
    results: rows the layers then ``new``, columns the layers then ``gone``."""
    return transition_matrix(first["layer"], second["layer"], LAYERS)
