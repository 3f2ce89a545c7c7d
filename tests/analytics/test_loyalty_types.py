"""Loyalty types: each type by hand, thresholds exactly at their edge, precedence, counts,
movement, properties."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.loyalty_types import (
    ABSENT,
    INCENTIVE,
    INERTIA,
    INPUT_COLUMNS,
    NONE,
    PRICE,
    SUPER_VALUE,
    TYPES,
    LoyaltyThresholds,
    classify,
    counts,
    movement,
    type_matches,
)
from core.errors import ValidationFailed

D = Decimal
# Defaults: inertia repeat ≥ 2 and engagement ≤ 1; price/incentive need ≥ 2 purchases;
# price discounted share ≥ 0.5; incentive campaign share ≥ 0.7 and ≤ 0.5 purchases per 30
# days outside campaigns; super-value repeat ≥ 4, full-price share ≥ 0.8, referrals ≥ 1.
BASE: dict[str, int] = {
    "purchases": 0,
    "repeat_purchases": 0,
    "discounted_purchases": 0,
    "campaign_purchases": 0,
    "days_outside_campaigns": 300,
    "engagement": 5,
    "referrals": 0,
}


def frame(rows: dict[str, dict[str, int]]) -> pd.DataFrame:
    data = [{**BASE, **row} for row in rows.values()]
    result = pd.DataFrame(data, columns=list(INPUT_COLUMNS), dtype=np.int64)
    return result.set_axis(pd.Index(list(rows), name="member_id"))


def kind(**row: int) -> str:
    return str(classify(frame({"m": row})).iloc[0])


def test_each_type_by_hand() -> None:
    # refers friends, 10 purchases of which 9 repeat, 1 discounted: full-price share 0.9
    assert kind(purchases=10, repeat_purchases=9, discounted_purchases=1, referrals=2) == (
        SUPER_VALUE
    )
    # 8 of 10 purchases in campaigns, 2 outside over 300 days = 0.2 per 30 days
    assert kind(purchases=10, repeat_purchases=9, campaign_purchases=8) == INCENTIVE
    # 6 of 10 discounted, spread over the year
    assert kind(purchases=10, repeat_purchases=9, discounted_purchases=6) == PRICE
    # repeats, full price, no referrals, engagement 0
    assert kind(purchases=5, repeat_purchases=4, engagement=0) == INERTIA
    # a new member; an engaged repeater who is neither driven by price nor by campaigns
    assert kind(purchases=1) == NONE
    assert kind(purchases=5, repeat_purchases=4, engagement=6) == NONE
    assert kind() == NONE


def test_inertia_at_its_thresholds() -> None:
    assert kind(purchases=3, repeat_purchases=2, engagement=1) == INERTIA
    assert kind(purchases=3, repeat_purchases=1, engagement=1) == NONE
    assert kind(purchases=3, repeat_purchases=2, engagement=2) == NONE


def test_price_at_its_thresholds() -> None:
    assert kind(purchases=4, repeat_purchases=3, discounted_purchases=2) == PRICE  # 0.5
    assert kind(purchases=5, repeat_purchases=4, discounted_purchases=2) == NONE  # 0.4
    assert kind(purchases=2, discounted_purchases=1) == PRICE  # two purchases suffice
    assert kind(purchases=1, discounted_purchases=1) == NONE  # one is not a habit
    # a threshold that is not a binary fraction is still exact: 1/3 ≥ 0.333333, not 0.333334
    third = replace(LoyaltyThresholds(), price_min_discounted_share=D("0.333333"))
    above = replace(LoyaltyThresholds(), price_min_discounted_share=D("0.333334"))
    row = frame({"m": {"purchases": 3, "discounted_purchases": 1}})
    assert classify(row, third).iloc[0] == PRICE
    assert classify(row, above).iloc[0] == NONE


def test_incentive_at_its_thresholds() -> None:
    # 7 of 10 in campaigns (0.7); 3 outside over 180 days = 0.5 per 30 days
    at = {"purchases": 10, "campaign_purchases": 7, "days_outside_campaigns": 180}
    assert kind(**at) == INCENTIVE
    assert kind(**{**at, "days_outside_campaigns": 179}) == NONE  # rate just above 0.5
    assert kind(**{**at, "campaign_purchases": 6}) == NONE  # share 0.6
    assert kind(**{**at, "days_outside_campaigns": 0, "campaign_purchases": 10}) == NONE
    assert kind(purchases=1, campaign_purchases=1) == NONE  # one purchase is not a habit


def test_super_value_at_its_thresholds() -> None:
    at = {"purchases": 5, "repeat_purchases": 4, "discounted_purchases": 1, "referrals": 1}
    assert kind(**at) == SUPER_VALUE  # full-price share 0.8
    assert kind(**{**at, "repeat_purchases": 3}) == NONE
    assert kind(**{**at, "referrals": 0}) == NONE
    assert kind(**{**at, "purchases": 4, "discounted_purchases": 1}) == NONE  # share 0.75


def test_precedence() -> None:
    everything = frame(
        {
            # meets all four rules once thresholds overlap
            "all": {
                "purchases": 10,
                "repeat_purchases": 10,
                "discounted_purchases": 5,
                "campaign_purchases": 10,
                "engagement": 0,
                "referrals": 1,
            },
            # price and inertia
            "price_inert": {
                "purchases": 4,
                "repeat_purchases": 3,
                "discounted_purchases": 2,
                "engagement": 0,
            },
            # incentive, price and inertia
            "incentive_price": {
                "purchases": 4,
                "repeat_purchases": 3,
                "discounted_purchases": 4,
                "campaign_purchases": 4,
                "engagement": 0,
            },
        }
    )
    loose = replace(LoyaltyThresholds(), super_min_full_price_share=D("0.5"))
    matches = type_matches(everything, loose)
    assert matches.loc["all"].all()
    assert list(matches.loc["price_inert"]) == [False, False, True, True]
    assert list(matches.loc["incentive_price"]) == [False, True, True, True]
    types = classify(everything, loose)
    assert list(types) == [SUPER_VALUE, PRICE, INCENTIVE]
    assert classify(everything).loc["all"] == INCENTIVE  # full-price share 0.5 < 0.8


def test_counts_list_every_type() -> None:
    types = classify(
        frame(
            {
                "a": {"purchases": 1},
                "b": {"purchases": 4, "repeat_purchases": 3, "engagement": 0},
                "c": {"purchases": 2, "discounted_purchases": 2},
            }
        )
    )
    tally = counts(types)
    assert list(tally.index) == list(TYPES)
    assert tally.to_dict() == {SUPER_VALUE: 0, INCENTIVE: 0, PRICE: 1, INERTIA: 1, NONE: 1}
    assert counts(pd.Series([], dtype=object)).sum() == 0


def test_movement_by_hand() -> None:
    before = pd.Series({"a": PRICE, "b": PRICE, "c": INERTIA, "d": NONE})
    after = pd.Series({"a": PRICE, "b": SUPER_VALUE, "c": NONE, "e": INCENTIVE})
    table = movement(before, after)
    assert list(table.index) == [*TYPES, ABSENT]
    assert list(table.columns) == [*TYPES, ABSENT]
    assert table.loc[PRICE, PRICE] == 1
    assert table.loc[PRICE, SUPER_VALUE] == 1
    assert table.loc[INERTIA, NONE] == 1
    assert table.loc[NONE, ABSENT] == 1  # d left
    assert table.loc[ABSENT, INCENTIVE] == 1  # e is new
    assert int(table.to_numpy().sum()) == 5
    assert table.loc[ABSENT, ABSENT] == 0


def test_thresholds_are_configurable_and_checked() -> None:
    strict = replace(LoyaltyThresholds(), inertia_min_repeat=5)
    assert (
        classify(
            frame({"m": {"purchases": 5, "repeat_purchases": 4, "engagement": 0}}), strict
        ).iloc[0]
        == NONE
    )
    bad: list[dict[str, Any]] = [
        {"price_min_discounted_share": D("1.5")},
        {"super_min_full_price_share": D("-0.1")},
        {"incentive_max_outside_rate": D("0.1234567")},
        {"incentive_max_outside_rate": D("NaN")},
        {"inertia_min_repeat": -1},
        {"super_min_referrals": 1.5},
        {"min_purchases": True},
    ]
    for change in bad:
        with pytest.raises(ValidationFailed):
            LoyaltyThresholds(**change)


def test_refusals() -> None:
    good = frame({"m": {"purchases": 2}})
    with pytest.raises(ValidationFailed) as missing:
        classify(good.drop(columns=["referrals"]))
    assert missing.value.code == "value.columns"
    for column, value in [("discounted_purchases", 3), ("repeat_purchases", 3), ("engagement", -1)]:
        broken = good.copy()
        broken[column] = value
        with pytest.raises(ValidationFailed) as refused:
            classify(broken)
        assert refused.value.code == f"value.{column}"
    floats = good.astype({"referrals": float})
    with pytest.raises(ValidationFailed):
        classify(floats)
    with pytest.raises(ValidationFailed):
        counts(pd.Series(["loyal"]))
    with pytest.raises(ValidationFailed):
        movement(pd.Series([PRICE, PRICE], index=["a", "a"]), pd.Series([PRICE], index=["a"]))


@st.composite
def member_rows(draw: st.DrawFn) -> dict[str, int]:
    purchases = draw(st.integers(0, 12))
    part = st.integers(0, purchases)
    return {
        "purchases": purchases,
        "repeat_purchases": draw(part),
        "discounted_purchases": draw(part),
        "campaign_purchases": draw(part),
        "days_outside_campaigns": draw(st.integers(0, 400)),
        "engagement": draw(st.integers(0, 4)),
        "referrals": draw(st.integers(0, 2)),
    }


shares = st.decimals(min_value=0, max_value=1, places=2)


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(member_rows(), max_size=20),
    later=st.lists(member_rows(), max_size=20),
    offset=st.integers(0, 10),
    price_share=shares,
    full_share=shares,
)
def test_every_member_gets_exactly_one_type(
    rows: list[dict[str, int]],
    later: list[dict[str, int]],
    offset: int,
    price_share: Decimal,
    full_share: Decimal,
) -> None:
    thresholds = replace(
        LoyaltyThresholds(),
        price_min_discounted_share=price_share,
        super_min_full_price_share=full_share,
    )
    first = frame({f"m{i}": r for i, r in enumerate(rows)})
    types = classify(first, thresholds)
    matches = type_matches(first, thresholds)
    assert list(types.index) == list(first.index)
    for kind, (_, row) in zip(types, matches.iterrows(), strict=True):
        held = [t for t in TYPES[:-1] if row[t]]
        assert kind == (held[0] if held else NONE)  # the first rule that holds
    tally = counts(types)
    assert tally.sum() == len(first)

    second = frame({f"m{i + offset}": r for i, r in enumerate(later)})
    then = classify(second, thresholds)
    table = movement(types, then)
    assert int(table.to_numpy().sum()) == len(first.index.union(second.index))
    rows_total = table.sum(axis=1)
    cols_total = table.sum(axis=0)
    assert list(rows_total[list(TYPES)]) == list(tally)
    assert list(cols_total[list(TYPES)]) == list(counts(then))
    assert rows_total[ABSENT] == len(second.index.difference(first.index))
    assert cols_total[ABSENT] == len(first.index.difference(second.index))
