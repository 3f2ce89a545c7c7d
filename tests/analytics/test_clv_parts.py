"""The six parts of CLV: each part by hand, CLV6 signed and floored, segments, exact sums."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.clv_parts import (
    INPUT_COLUMNS,
    PARTS,
    TOTAL,
    average_full_price_share,
    by_segment,
    clv_parts,
    round_half_up,
    split_category_spend,
)
from core.errors import ValidationFailed

D = Decimal


def members(rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    defaults: dict[str, Any] = {c: D(0) for c in INPUT_COLUMNS}
    frame = pd.DataFrame(
        [{**defaults, **row} for row in rows.values()], columns=list(INPUT_COLUMNS), dtype=object
    )
    return frame.set_axis(pd.Index(list(rows), name="member_id"))


ANNA = {
    "first_amount": D("120.00"),
    "repeat_spend": D("300.00"),
    "predicted_value": 455.5,
    "cross_sell_spend": D("80.00"),
    "first_year_cost": D("40.00"),
    "latest_year_cost": D("25.00"),
    "referred_spend": D("210.00"),
    "spend": D("500.00"),
    "full_price_spend": D("450.00"),
}
BORIS = {
    "first_amount": D("30.00"),
    "repeat_spend": D("0"),
    "predicted_value": D("12.34"),
    "cross_sell_spend": D("0"),
    "first_year_cost": D("10.00"),
    "latest_year_cost": D("18.00"),
    "referred_spend": D("0"),
    "spend": D("100.00"),
    "full_price_spend": D("10.00"),
}


def test_each_part_by_hand() -> None:
    parts = clv_parts(members({"anna": ANNA, "boris": BORIS}))
    # the program's full-price share: (450 + 10) / (500 + 100) = 23/30
    assert average_full_price_share(members({"anna": ANNA, "boris": BORIS})) == Fraction(23, 30)
    anna = parts.loc["anna"]
    assert anna["clv1"] == D("120.00")  # first purchase
    assert anna["clv2"] == D("755.50")  # 300 repeats so far + 455.50 predicted
    assert anna["clv3"] == D("80.00")  # spend beyond the first categories
    assert anna["clv4"] == D("15.00")  # cost 40 in the first year, 25 in the latest
    assert anna["clv5"] == D("210.00")  # friends' purchases
    assert anna["clv6"] == D("66.67")  # (0.9 − 23/30) × 500 = 66.666…
    assert anna[TOTAL] == D("1247.17")
    boris = parts.loc["boris"]
    assert list(boris[list(PARTS)]) == [
        D("30.00"),
        D("12.34"),
        D("0.00"),
        D("-8.00"),  # costs more now: signed
        D("0.00"),
        D("-66.67"),  # (0.1 − 23/30) × 100 = −66.666…
    ]
    assert boris[TOTAL] == D("-32.33")
    assert list(parts.index) == ["anna", "boris"]
    assert list(parts.columns) == [*PARTS, TOTAL]


def test_price_premium_floored_and_an_average_passed_in() -> None:
    frame = members({"anna": ANNA, "boris": BORIS})
    floored = clv_parts(frame, price_premium="floored")
    assert floored.loc["anna", "clv6"] == D("66.67")
    assert floored.loc["boris", "clv6"] == D("0.00")
    assert floored.loc["boris", TOTAL] == D("34.34")
    given_average = clv_parts(frame, average_share=D("0.5"))
    assert given_average.loc["anna", "clv6"] == D("200.00")  # 450 − 0.5 × 500
    assert given_average.loc["boris", "clv6"] == D("-40.00")  # 10 − 0.5 × 100


def test_a_member_without_spend_has_no_price_premium() -> None:
    frame = members({"new": {"first_amount": D("0")}, "anna": ANNA})
    assert clv_parts(frame).loc["new", "clv6"] == D("0.00")
    nobody = members({"new": {}})
    assert average_full_price_share(nobody) == 0
    assert clv_parts(nobody).loc["new", TOTAL] == D("0.00")


def test_rounding_is_half_up_once_from_the_exact_value() -> None:
    assert round_half_up(Fraction(5, 1000), 2) == D("0.01")
    assert round_half_up(Fraction(-5, 1000), 2) == D("-0.01")
    assert round_half_up(Fraction(4999, 1000000), 2) == D("0.00")
    assert round_half_up(Fraction(7), 0) == D("7")
    # 2.675 as a float is 2.67499999…: it rounds down; the Decimal rounds up
    by_float = clv_parts(members({"a": {"predicted_value": 2.675}}))
    by_decimal = clv_parts(members({"a": {"predicted_value": D("2.675")}}))
    assert by_float.loc["a", "clv2"] == D("2.67")
    assert by_decimal.loc["a", "clv2"] == D("2.68")
    yen = clv_parts(members({"a": {"first_amount": D("1234.5")}}), places=0)
    assert yen.loc["a", "clv1"] == D("1235")


def test_signed_price_premium_sums_to_zero_over_the_program() -> None:
    frame = members(
        {
            "a": {"spend": D("300"), "full_price_spend": D("300")},
            "b": {"spend": D("100"), "full_price_spend": D("0")},
            "c": {"spend": D("200"), "full_price_spend": D("150")},
        }
    )
    # average 450 / 600 = 0.75: +75, −75, 0
    assert list(clv_parts(frame)["clv6"]) == [D("75.00"), D("-75.00"), D("0.00")]


def test_cross_selling_and_repeat_spend_from_spend_by_category() -> None:
    spend = pd.DataFrame(
        {
            "member_id": ["anna", "anna", "anna", "boris", "anna"],
            "category": ["shoes", "bags", "hats", "shoes", "shoes"],
            "amount": [D("100.00"), D("60.00"), D("20.50"), D("30.00"), D("15.00")],
        }
    )
    first = pd.DataFrame({"member_id": ["anna", "boris"], "category": ["shoes", "shoes"]})
    split = split_category_spend(spend, first)
    assert list(split.index) == ["anna", "boris"]
    assert split.loc["anna", "first_category_spend"] == D("115.00")
    assert split.loc["anna", "cross_sell_spend"] == D("80.50")
    assert split.loc["boris", "first_category_spend"] == D("30.00")
    assert split.loc["boris", "cross_sell_spend"] == D("0")
    # a member whose first purchase had two categories cross-sells only beyond both
    first_two = pd.DataFrame({"member_id": ["anna", "anna"], "category": ["shoes", "bags"]})
    assert split_category_spend(spend, first_two).loc["anna", "cross_sell_spend"] == D("20.50")


def test_segments_sum_and_mean() -> None:
    frame = members(
        {
            "a": {"first_amount": D("10.00")},
            "b": {"first_amount": D("20.00")},
            "c": {"first_amount": D("5.00"), "referred_spend": D("1.00")},
        }
    )
    parts = clv_parts(frame)
    regions = pd.Series(["north", "north", "south"], index=frame.index, name="region")
    table = by_segment(parts, regions)
    assert list(table.index) == ["north", "south"]
    assert table.index.name == "region"
    assert list(table["members"]) == [2, 1]
    assert table.loc["north", "clv1_sum"] == D("30.00")
    assert table.loc["north", "clv1_mean"] == D("15.00")
    assert table.loc["south", "clv5_sum"] == D("1.00")
    assert table.loc["south", "total_sum"] == D("6.00")
    amounts = {"x": D("0.02"), "y": D("0.01"), "z": D("0.01")}
    thirds = clv_parts(members({k: {"first_amount": v} for k, v in amounts.items()}))
    mean = by_segment(thirds, pd.Series("all", index=thirds.index))
    assert mean.loc["all", "clv1_sum"] == D("0.04")
    assert mean.loc["all", "clv1_mean"] == D("0.01")  # 0.0133… rounded


def test_refusals() -> None:
    frame = members({"a": ANNA})
    with pytest.raises(ValidationFailed) as missing:
        clv_parts(frame.drop(columns=["referred_spend"]))
    assert missing.value.code == "value.columns"
    bad_cases: list[tuple[dict[str, Any], str]] = [
        ({"first_amount": 1.5}, "value.first_amount"),  # floats are not money
        ({"spend": D("-1")}, "value.spend"),
        ({"full_price_spend": D("501")}, "value.full_price_spend"),
        ({"predicted_value": float("nan")}, "value.predicted_value"),
        ({"referred_spend": D("NaN")}, "value.referred_spend"),
        ({"cross_sell_spend": "12"}, "value.cross_sell_spend"),
    ]
    for change, code in bad_cases:
        with pytest.raises(ValidationFailed) as refused:
            clv_parts(members({"a": {**ANNA, **change}}))
        assert refused.value.code == code, change
    with pytest.raises(ValidationFailed) as share:
        clv_parts(frame, average_share=D("1.1"))
    assert share.value.code == "value.average_share"
    parts = clv_parts(frame)
    with pytest.raises(ValidationFailed) as segment:
        by_segment(parts, pd.Series([None], index=parts.index, dtype=object))
    assert segment.value.code == "value.segment"


money = st.decimals(
    min_value=D("-10000"), max_value=D("10000"), places=2, allow_nan=False, allow_infinity=False
)
precise = st.decimals(
    min_value=D("0"), max_value=D("10000"), places=4, allow_nan=False, allow_infinity=False
)


@st.composite
def member_rows(draw: st.DrawFn) -> dict[str, Any]:
    spend = draw(precise)
    share = draw(st.fractions(min_value=0, max_value=1, max_denominator=1000))
    full = round_half_up(Fraction(spend) * share, 4)
    predicted = draw(
        st.one_of(
            money, st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
        )
    )
    return {
        "first_amount": draw(precise),
        "repeat_spend": draw(money),
        "predicted_value": predicted,
        "cross_sell_spend": draw(money),
        "first_year_cost": draw(precise),
        "latest_year_cost": draw(precise),
        "referred_spend": draw(precise),
        "spend": spend,
        "full_price_spend": min(full, spend),
    }


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(member_rows(), max_size=12),
    segments=st.lists(st.sampled_from(["n", "s", "e"]), min_size=12, max_size=12),
    floored=st.booleans(),
    places=st.integers(min_value=0, max_value=4),
)
def test_parts_add_up_exactly(
    rows: list[dict[str, Any]], segments: list[str], floored: bool, places: int
) -> None:
    frame = members({f"m{i}": row for i, row in enumerate(rows)})
    parts = clv_parts(frame, places=places, price_premium="floored" if floored else "signed")
    assert len(parts) == len(frame)
    for _, row in parts.iterrows():
        assert sum((row[p] for p in PARTS), D(0)) == row[TOTAL]
        for value in row:
            assert isinstance(value, Decimal)
            assert -value.as_tuple().exponent == places  # type: ignore[operator]
    if floored:
        assert all(v >= 0 for v in parts["clv6"])
    elif len(frame):
        # CLV6 redistributes: it sums to 0 up to one rounding per member
        assert abs(sum(parts["clv6"], D(0))) <= len(frame) * D("0.5").scaleb(-places)
    table = by_segment(parts, pd.Series(segments[: len(frame)], index=frame.index))
    assert table["members"].sum() == len(frame)
    for column in [*PARTS, TOTAL]:
        assert sum(table[f"{column}_sum"], D(0)) == sum(parts[column], D(0))
    for _, row in table.iterrows():
        assert sum((row[f"{p}_sum"] for p in PARTS), D(0)) == row["total_sum"]
