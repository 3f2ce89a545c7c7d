"""Customer lifetime value in the six parts of the CRM literature, per member and per segment.

The six parts (after Reichheld & Sasser's "loyalty effect": base profit, revenue growth, cost
savings, referrals, price premium, and the first purchase that starts it) are each *measured*
from one or two per-member input columns, and the **total is defined as their sum**:

    total = CLV1 + CLV2 + CLV3 + CLV4 + CLV5 + CLV6

Why measured parts and a summed total, rather than a predicted total with CLV2 as the
remainder after the others: every part can then be checked against the data on its own, no
part absorbs the error of another, and CLV2 cannot turn negative merely because a member's
realised cross-selling or referrals exceed the model's forecast of their future spend (the
other parts are history, the forecast is the future; a remainder would subtract one from the
other).

Input: a frame with one row per member (indexed by member id) and these columns. Money is
**`decimal.Decimal`** (object columns, as `core.money.MoneyAmount` reads it from the
database; Python ints are accepted too), net of refunds, in one currency:

======================  ========================================================================
column                  meaning
======================  ========================================================================
``first_amount``        the net amount of the member's first purchase (same-day purchases are
                        one, as in `analytics.summaries`)
``repeat_spend``        net spend so far of the purchases after the first, in the categories of
                        the first purchase (`split_category_spend` gives
                        ``first_category_spend``; this is that minus ``first_amount``)
``predicted_value``     the predicted future value: BG/NBD × Gamma-Gamma discounted CLV over the
                        horizon (`analytics.gammagamma.customer_lifetime_value`); a float or a
                        Decimal (a float is rounded half up to the places, from its exact value)
``cross_sell_spend``    net spend so far in categories *not* among the first purchase's
                        (`split_category_spend`)
``first_year_cost``     cost to serve in the member's first membership year (coupon discounts,
                        rewards redeemed and bonus points at the program's value per point, the
                        yearly service cost: as the customer pyramid counts it)
``latest_year_cost``    the same in the latest full membership year (equal to the first year's
                        for a member with less than two years, so their CLV4 is 0)
``referred_spend``      net purchases of the friends the member referred (qualified referrals)
``spend``               all net spend of the member in the window CLV6 is measured over (≥ 0)
``full_price_spend``    the part of ``spend`` bought at full price (no coupon, no markdown),
                        0 ≤ full_price_spend ≤ spend
======================  ========================================================================

The parts:

- **CLV1 first purchase** = ``first_amount``.
- **CLV2 repeat purchases and growing spend** = ``repeat_spend`` + ``predicted_value``: what
  the member has bought again in the categories they started in, and what the models predict
  they will buy (future purchases × expected spend per purchase, discounted). Realised repeats
  are included so a member's history counts whole: CLV1 + realised CLV2 + CLV3 is all their net
  spend so far. (Future cross-category spend is inside the prediction: the models do not split
  spend by category.)
- **CLV3 cross-selling** = ``cross_sell_spend``.
- **CLV4 lower cost to serve** = ``first_year_cost`` − ``latest_year_cost``: one year's saving,
  the latest year against the first; **signed** (a member who costs more now than in their
  first year has a negative CLV4).
- **CLV5 referral** = ``referred_spend``.
- **CLV6 lower price sensitivity** = (member's full-price share − average share) × spend,
  computed exactly as ``full_price_spend − average × spend`` (the same number without a
  division by the member's spend, and 0 for a member with no spend). The average is the
  program's spend-weighted full-price share Σ full_price_spend / Σ spend (0 when nobody spent),
  computed over the frame or passed in (`average_full_price_share` over all members, when the
  frame is a part of them). **Signed** by default: the premium a member pays over the average
  member, negative for one more price-sensitive than average; so over the frame the average
  came from, CLV6 sums to 0 (it redistributes value, it does not add any). ``"floored"`` counts
  only premiums (max(0, ·)).

**Exact sums.** Each part is rounded once, half up, to `places` decimals (default 2; pass the
currency's minor units); the total is the sum of the rounded parts, so the parts add up to it
to the last digit. CLV6 is computed with fractions and rounded once.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any, Literal

import pandas as pd

from core.errors import ValidationFailed

PARTS = ("clv1", "clv2", "clv3", "clv4", "clv5", "clv6")
TOTAL = "total"
PART_NAMES: dict[str, str] = {
    "clv1": "First purchase",
    "clv2": "Repeat purchases and growing spend",
    "clv3": "Cross-selling",
    "clv4": "Lower cost to serve",
    "clv5": "Referrals",
    "clv6": "Lower price sensitivity",
}
MONEY_COLUMNS = (
    "first_amount",
    "repeat_spend",
    "cross_sell_spend",
    "first_year_cost",
    "latest_year_cost",
    "referred_spend",
    "spend",
    "full_price_spend",
)
PREDICTED_COLUMN = "predicted_value"
INPUT_COLUMNS = (*MONEY_COLUMNS[:2], PREDICTED_COLUMN, *MONEY_COLUMNS[2:])
PricePremium = Literal["signed", "floored"]

# Wide enough that no sum of money amounts is ever rounded by the context.
_PRECISION = 100


def _check_places(places: int) -> None:
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 6:
        raise ValidationFailed(
            "value.places", "The number of decimal places must be a whole number 0–6."
        )


def _money(value: Any, column: str, *, floats: bool = False) -> Fraction:
    """An exact money value from a Decimal or an int (and a float where `floats`)."""
    if isinstance(value, bool):
        raise ValidationFailed(
            f"value.{column}", "Column %(column)s holds a boolean, not an amount.", column=column
        )
    if isinstance(value, Decimal | int) or (floats and isinstance(value, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationFailed(
                f"value.{column}",
                "Column %(column)s holds %(value)s, not an amount.",
                column=column,
                value=value,
            )
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValidationFailed(
                f"value.{column}",
                "Column %(column)s holds %(value)s, not an amount.",
                column=column,
                value=value,
            )
        return Fraction(value)
    kind = "Decimal, int or float" if floats else "Decimal or int"
    raise ValidationFailed(
        f"value.{column}",
        "Column %(column)s must hold amounts (%(kind)s), not %(type)s.",
        column=column,
        kind=kind,
        type=type(value).__name__,
    )


def round_half_up(value: Fraction, places: int) -> Decimal:
    """`value` rounded half up (away from zero at a half) to `places` decimals, exactly."""
    scaled = abs(value) * 10**places
    units = math.floor(scaled + Fraction(1, 2))
    sign = -1 if value < 0 else 1
    return Decimal(sign * units).scaleb(-places)


def _column(members: pd.DataFrame, column: str, *, floats: bool = False) -> list[Fraction]:
    return [_money(v, column, floats=floats) for v in members[column].tolist()]


def _check_columns(members: pd.DataFrame) -> None:
    missing = [c for c in INPUT_COLUMNS if c not in members.columns]
    if missing:
        raise ValidationFailed(
            "value.columns",
            "The members lack column(s) %(missing)s; expected %(input_columns)s.",
            missing=", ".join(missing),
            input_columns=", ".join(INPUT_COLUMNS),
        )


def _check_share(share: Fraction | Decimal) -> Fraction:
    if isinstance(share, Decimal) and not share.is_finite():
        raise ValidationFailed(
            "value.average_share", "The average full-price share must be a number."
        )
    exact = Fraction(share)
    if not 0 <= exact <= 1:
        raise ValidationFailed(
            "value.average_share", "The average full-price share must be within 0–1."
        )
    return exact


def average_full_price_share(members: pd.DataFrame) -> Fraction:
    """The program's spend-weighted full-price share Σ full_price_spend / Σ spend, exactly
    (0 when nobody spent)."""
    spend = sum(_column(members, "spend"), Fraction(0))
    full = sum(_column(members, "full_price_spend"), Fraction(0))
    return full / spend if spend else Fraction(0)


def clv_parts(
    members: pd.DataFrame,
    *,
    places: int = 2,
    average_share: Fraction | Decimal | None = None,
    price_premium: PricePremium = "signed",
) -> pd.DataFrame:
    """The six parts and their total per member (columns ``clv1`` … ``clv6``, ``total``, all
    Decimal at `places` decimals), in the members' index and order. `average_share` is the
    program's full-price share CLV6 compares with (default: `average_full_price_share` of
    `members`). Raises ValidationFailed for a missing column, a value that is not an amount,
    spend below 0 or full-price spend outside 0–spend."""
    _check_places(places)
    _check_columns(members)
    if price_premium not in ("signed", "floored"):
        raise ValidationFailed("value.price_premium", "CLV6 is either 'signed' or 'floored'.")
    cols = {c: _column(members, c) for c in MONEY_COLUMNS}
    predicted = _column(members, PREDICTED_COLUMN, floats=True)
    for spend, full in zip(cols["spend"], cols["full_price_spend"], strict=True):
        if spend < 0:
            raise ValidationFailed("value.spend", "A member's spend must not be below 0.")
        if not 0 <= full <= spend:
            raise ValidationFailed(
                "value.full_price_spend",
                "A member's full-price spend must be within 0 and their spend.",
            )
    average = (
        average_full_price_share(members) if average_share is None else _check_share(average_share)
    )

    def r(value: Fraction) -> Decimal:
        return round_half_up(value, places)

    parts: dict[str, list[Decimal]] = {p: [] for p in PARTS}
    for i in range(len(members)):
        premium = cols["full_price_spend"][i] - average * cols["spend"][i]
        if price_premium == "floored":
            premium = max(premium, Fraction(0))
        parts["clv1"].append(r(cols["first_amount"][i]))
        parts["clv2"].append(r(cols["repeat_spend"][i]) + r(predicted[i]))
        parts["clv3"].append(r(cols["cross_sell_spend"][i]))
        parts["clv4"].append(r(cols["first_year_cost"][i] - cols["latest_year_cost"][i]))
        parts["clv5"].append(r(cols["referred_spend"][i]))
        parts["clv6"].append(r(premium))
    with localcontext(prec=_PRECISION):
        totals = [sum(row, Decimal(0)) for row in zip(*parts.values(), strict=True)]
    columns: dict[str, list[Decimal]] = {**parts, TOTAL: totals}
    return pd.DataFrame(
        {c: pd.array(v, dtype=object) for c, v in columns.items()}, index=members.index
    )


def split_category_spend(
    category_spend: pd.DataFrame, first_categories: pd.DataFrame
) -> pd.DataFrame:
    """Each member's net spend in the categories of their first purchase and beyond them.

    `category_spend`: rows of ``member_id``, ``category``, ``amount`` (Decimal: the member's
    net spend in that category, first purchase included; several rows of one pair add up).
    `first_categories`: rows of ``member_id``, ``category``: the categories of the member's
    first purchase (all its lines). Returns, indexed by ``member_id`` (sorted), the Decimal
    columns ``first_category_spend`` and ``cross_sell_spend`` (CLV3); the member's
    ``repeat_spend`` for CLV2 is ``first_category_spend − first_amount``."""
    for name, frame, needed in (
        ("category_spend", category_spend, ("member_id", "category", "amount")),
        ("first_categories", first_categories, ("member_id", "category")),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValidationFailed(
                "value.columns",
                "%(name)s lacks column(s) %(missing)s.",
                name=name,
                missing=", ".join(missing),
            )
    first = set(zip(first_categories["member_id"], first_categories["category"], strict=True))
    totals: dict[Hashable, list[Decimal]] = {}
    with localcontext(prec=_PRECISION):
        for member, category, amount in zip(
            category_spend["member_id"],
            category_spend["category"],
            category_spend["amount"],
            strict=True,
        ):
            _money(amount, "amount")
            pair = totals.setdefault(member, [Decimal(0), Decimal(0)])
            pair[0 if (member, category) in first else 1] += Decimal(amount)
    try:
        members = sorted(totals)  # type: ignore[type-var]
    except TypeError:  # ids of mixed kinds: by their text
        members = sorted(totals, key=str)
    return pd.DataFrame(
        {
            "first_category_spend": pd.Series([totals[m][0] for m in members], dtype=object),
            "cross_sell_spend": pd.Series([totals[m][1] for m in members], dtype=object),
        }
    ).set_axis(pd.Index(members, name="member_id"))


def by_segment(parts: pd.DataFrame, segments: pd.Series, *, places: int = 2) -> pd.DataFrame:
    """Per segment (the value of `segments` for each member, aligned on the index): the
    number of members and, for each part and the total, ``<part>_sum`` (exact) and
    ``<part>_mean`` (the sum over the members, rounded half up to `places`). Segments in
    sorted order. The sums over all segments are the sums over all members. Raises
    ValidationFailed when a member has no segment."""
    _check_places(places)
    columns = [*PARTS, TOTAL]
    aligned = segments.reindex(parts.index)
    if aligned.isna().any():
        raise ValidationFailed("value.segment", "Every member needs a segment; one has none.")
    rows: list[dict[str, object]] = []
    keys: list[Hashable] = []
    with localcontext(prec=_PRECISION):
        for key, group in parts[columns].groupby(aligned, sort=True):
            count = len(group)
            row: dict[str, object] = {"members": count}
            for c in columns:
                total = sum(group[c].tolist(), Decimal(0))
                row[f"{c}_sum"] = total
                row[f"{c}_mean"] = round_half_up(Fraction(total) / count, places)
            rows.append(row)
            keys.append(key)
    names = ["members"] + [f"{c}_{k}" for c in columns for k in ("sum", "mean")]
    result = pd.DataFrame(rows, columns=names, index=pd.Index(keys, name=segments.name))
    return result.astype({n: object for n in names if n != "members"}).astype({"members": int})
