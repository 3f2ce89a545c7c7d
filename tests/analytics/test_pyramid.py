"""The customer pyramid: member value, the four layers and their cuts, the per-layer summary and
the movement matrix."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.pyramid import (
    LAYERS,
    LOW_CONTRIBUTION,
    MOST_GROWABLE,
    MOST_VALUABLE,
    NEGATIVE,
    LayerRules,
    ValueRules,
    assign_layers,
    layer_summary,
    member_value,
    movement,
)
from analytics.rfm import GONE, NEW
from core.errors import ValidationFailed


def members(rows: list[tuple[int, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["member_id", "coupon_discounts", "points_redeemed", "bonus_points"]
    )


def values(pairs: dict[int, tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(pairs, orient="index", columns=["value", "predicted_value"])


# --- value ------------------------------------------------------------------------------------


def test_hand_computed_value() -> None:
    rules = ValueRules(
        margin=0.2,
        period_days=365,
        category_margins={"wine": 0.5, "fresh": 0.1},
        value_per_point=0.01,
        yearly_service_cost=36.5,
    )
    people = members([(2, 10.0, 500, 100), (1, 0.0, 0, 0), (3, 0.0, 0, 0)])
    people["days"] = [365, 100, 0]
    sales = pd.DataFrame(
        {
            "member_id": [1, 1, 1, 2, 2],
            "category": ["wine", "fresh", None, "toys", "wine"],
            "net_purchases": [100.0, 200.0, 50.0, 100.0, -20.0],
        }
    )
    result = member_value(people, sales, rules)
    assert result.index.tolist() == [1, 2, 3]
    # 1: 0.5·100 + 0.1·200 + 0.2·50 = 80; service 36.5 · 100/365 = 10.
    # 2: 0.2·100 + 0.5·(−20) = 10; coupons 10, rewards 5, bonus 1, service 36.5.
    # 3: nothing bought, no days: value 0.
    assert result["net_purchases"].tolist() == [350.0, 80.0, 0.0]
    assert result["margin"].tolist() == pytest.approx([80.0, 10.0, 0.0])
    assert result["rewards_cost"].tolist() == pytest.approx([0.0, 5.0, 0.0])
    assert result["bonus_cost"].tolist() == pytest.approx([0.0, 1.0, 0.0])
    assert result["service_cost"].tolist() == pytest.approx([10.0, 36.5, 0.0])
    assert result["cost_to_serve"].tolist() == pytest.approx([10.0, 52.5, 0.0])
    assert result["value"].tolist() == pytest.approx([70.0, -42.5, 0.0])


def test_value_without_categories_or_days() -> None:
    rules = ValueRules(margin=0.25, period_days=73, yearly_service_cost=10.0)
    sales = pd.DataFrame({"member_id": [7], "net_purchases": [40.0]})
    result = member_value(members([(7, 1.0, 0, 0)]), sales, rules)
    # 0.25·40 − 1 − 10·73/365 = 10 − 1 − 2 = 7.
    assert result.loc[7, "value"] == pytest.approx(7.0)
    empty = member_value(members([]), sales.iloc[0:0], rules)
    assert empty.empty


@pytest.mark.parametrize(
    "change",
    [
        "unknown_member",
        "negative_coupon",
        "too_many_days",
        "nan_sales",
        "repeated_member",
        "missing_column",
    ],
)
def test_value_refuses(change: str) -> None:
    rules = ValueRules(margin=0.3, period_days=30)
    people = members([(1, 0.0, 0, 0), (2, 0.0, 0, 0)])
    sales = pd.DataFrame({"member_id": [1], "net_purchases": [10.0]})
    if change == "unknown_member":
        sales["member_id"] = [9]
    elif change == "negative_coupon":
        people.loc[0, "coupon_discounts"] = -1.0
    elif change == "too_many_days":
        people["days"] = [31, 1]
    elif change == "nan_sales":
        sales["net_purchases"] = [float("nan")]
    elif change == "repeated_member":
        people["member_id"] = [1, 1]
    else:
        people = people.drop(columns=["bonus_points"])
    with pytest.raises(ValidationFailed):
        member_value(people, sales, rules)


def test_rules_refuse_bad_settings() -> None:
    for bad in (
        {"margin": 1.5, "period_days": 30},
        {"margin": 0.3, "period_days": 0},
        {"margin": 0.3, "period_days": 30, "category_margins": {"x": -0.1}},
        {"margin": 0.3, "period_days": 30, "value_per_point": float("nan")},
    ):
        with pytest.raises(ValidationFailed):
            ValueRules(**bad)
    for share, factor in ((0.0, 1.5), (1.2, 1.5), (0.5, 0.9)):
        with pytest.raises(ValidationFailed):
            LayerRules(top_share=share, growth_factor=factor)


# --- layers -----------------------------------------------------------------------------------


def test_hand_computed_layers() -> None:
    layered = assign_layers(
        values(
            {
                1: (10.0, 1.0),
                2: (5.0, 20.0),  # 20 > 1.5 · 5: growable
                3: (5.0, 7.5),  # 7.5 is not > 7.5: low
                4: (-1.0, 99.0),  # negative whatever the prediction
                5: (0.0, 0.01),  # value 0: any positive prediction is growth
                6: (0.0, 0.0),
                7: (0.0, float("nan")),  # no prediction
            }
        )
    )
    # Positive value 20, half is 10: member 1 alone holds it.
    assert layered["layer"].to_dict() == {
        1: MOST_VALUABLE,
        2: MOST_GROWABLE,
        3: LOW_CONTRIBUTION,
        4: NEGATIVE,
        5: MOST_GROWABLE,
        6: LOW_CONTRIBUTION,
        7: LOW_CONTRIBUTION,
    }


def test_ties_at_the_cut_go_by_member_id() -> None:
    # Total 10, half 5: 9 (4) then the tie at 3 between 2 and 5; the lower id is taken.
    layered = assign_layers(values({5: (3.0, 0.0), 2: (3.0, 0.0), 9: (4.0, 0.0)}))
    assert layered.index.tolist() == [2, 5, 9]
    assert layered["layer"].tolist() == [MOST_VALUABLE, LOW_CONTRIBUTION, MOST_VALUABLE]


def test_reaching_the_share_exactly_stops_there() -> None:
    layered = assign_layers(values({1: (5.0, 0.0), 2: (5.0, 0.0)}))
    assert layered["layer"].tolist() == [MOST_VALUABLE, LOW_CONTRIBUTION]
    everything = assign_layers(values({1: (5.0, 0.0), 2: (5.0, 0.0)}), LayerRules(top_share=1.0))
    assert everything["layer"].tolist() == [MOST_VALUABLE, MOST_VALUABLE]


def test_single_member_empty_and_no_positive_value() -> None:
    assert assign_layers(values({1: (3.0, 0.0)}))["layer"].tolist() == [MOST_VALUABLE]
    assert assign_layers(values({1: (-3.0, 0.0)}))["layer"].tolist() == [NEGATIVE]
    assert assign_layers(values({})).empty
    layered = assign_layers(values({1: (-1.0, 0.0), 2: (0.0, 5.0), 3: (0.0, 0.0)}))
    assert layered["layer"].tolist() == [NEGATIVE, MOST_GROWABLE, LOW_CONTRIBUTION]
    summary = layer_summary(layered)
    assert summary["value_share"].isna().all()  # no positive value to share


def test_summary_hand_computed() -> None:
    layered = assign_layers(
        values({1: (10.0, 1.0), 2: (5.0, 20.0), 3: (5.0, 7.5), 4: (-1.0, 99.0), 5: (0.0, 1.0)})
    )
    summary = layer_summary(layered)
    assert summary.index.tolist() == list(LAYERS)
    assert summary["members"].tolist() == [1, 2, 1, 1]
    assert summary["member_share"].tolist() == pytest.approx([0.2, 0.4, 0.2, 0.2])
    assert summary["value"].tolist() == pytest.approx([10.0, 5.0, 5.0, -1.0])
    assert summary["value_share"].tolist() == pytest.approx([0.5, 0.25, 0.25, -0.05])
    assert summary["average_value"].tolist() == pytest.approx([10.0, 2.5, 5.0, -1.0])
    empty = layer_summary(assign_layers(values({})))
    assert empty["members"].tolist() == [0, 0, 0, 0]
    assert empty[["member_share", "value_share", "average_value"]].isna().all().all()


def test_movement_with_new_and_gone() -> None:
    before = assign_layers(values({1: (10.0, 0.0), 2: (-1.0, 0.0), 3: (1.0, 5.0)}))
    after = assign_layers(values({1: (-2.0, 0.0), 3: (9.0, 0.0), 4: (1.0, 0.0)}))
    matrix = movement(before, after)
    assert list(matrix.index) == [*LAYERS, NEW]
    assert list(matrix.columns) == [*LAYERS, GONE]
    assert matrix.loc[MOST_VALUABLE, NEGATIVE] == 1
    assert matrix.loc[MOST_GROWABLE, MOST_VALUABLE] == 1
    assert matrix.loc[NEGATIVE, GONE] == 1
    assert matrix.loc[NEW, LOW_CONTRIBUTION] == 1
    assert matrix.to_numpy().sum() == 4


amounts = st.integers(-50, 100).map(float)
predictions = st.one_of(st.integers(0, 300).map(float), st.just(float("nan")))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.integers(0, 500), st.tuples(amounts, predictions), max_size=40),
    st.sampled_from([0.1, 0.25, 0.5, 0.8, 1.0]),
    st.sampled_from([1.0, 1.5, 3.0]),
)
def test_layer_properties(
    pairs: dict[int, tuple[float, float]], share: float, factor: float
) -> None:
    layered = assign_layers(values(pairs), LayerRules(top_share=share, growth_factor=factor))
    # A partition: every member in exactly one layer, the summary counts everybody.
    assert set(layered.index) == set(pairs)
    assert set(layered["layer"]) <= set(LAYERS)
    assert layer_summary(layered)["members"].sum() == len(pairs)

    value = layered["value"]
    layer = layered["layer"]
    assert ((value < 0) == (layer == NEGATIVE)).all()
    top = value[layer == MOST_VALUABLE]
    positive_total = float(value[value > 0].sum())
    if positive_total == 0:
        assert top.empty
    else:
        held = float(top.sum())
        assert (top > 0).all()
        assert held >= share * positive_total  # holds the share
        assert held - float(top.min()) < share * positive_total  # and no member less would
        rest = value[(layer != MOST_VALUABLE) & (value > 0)]
        assert rest.empty or rest.max() <= top.min()  # the top is the top
    for member, row in layered.iterrows():
        if row["layer"] in (MOST_GROWABLE, LOW_CONTRIBUTION):
            grows = not math.isnan(row["predicted_value"]) and (
                row["predicted_value"] > factor * row["value"]
            )
            assert grows == (row["layer"] == MOST_GROWABLE), member


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-50, 100).map(float), max_size=30))
def test_value_shares_of_the_non_negative_layers_add_to_one(numbers: list[float]) -> None:
    pairs = {i: (v, np.nan) for i, v in enumerate(numbers)}
    summary = layer_summary(assign_layers(values(pairs)))
    if any(v > 0 for v in numbers):
        assert summary.loc[
            [MOST_VALUABLE, MOST_GROWABLE, LOW_CONTRIBUTION], "value_share"
        ].sum() == (pytest.approx(1.0))
