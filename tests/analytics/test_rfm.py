"""RFM: quintile scores with ties, members without purchases, the published segment table,
the migration matrix and cell listings."""

from __future__ import annotations

from datetime import date, datetime
from itertools import product
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.rfm import (
    GONE,
    NEW,
    NO_PURCHASE,
    SEGMENT_CODES,
    SEGMENTS,
    members_of,
    migration,
    quintile_scores,
    score,
    segment_of,
    transition_matrix,
)
from core.errors import ValidationFailed

AS_OF = "2024-01-31"


def frame(rows: list[tuple[object, object, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["member_id", "last_purchase", "purchases", "monetary"])


# --- quintiles --------------------------------------------------------------------------------


def test_five_distinct_values_get_one_score_each() -> None:
    assert quintile_scores([50, 10, 40, 20, 30]).tolist() == [5, 1, 4, 2, 3]


def test_ten_values_split_into_pairs() -> None:
    assert quintile_scores(range(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_ties_take_the_score_of_their_lowest_place() -> None:
    # 1 + ⌊5 · below / 4⌋: below = 0, 0, 0, 3.
    assert quintile_scores([7, 7, 7, 9]).tolist() == [1, 1, 1, 4]
    # below = 0, 1, 1, 1, 4, 4 of 6 → 1, 1, 1, 1, 4, 4.
    assert quintile_scores([1, 2, 2, 2, 3, 3]).tolist() == [1, 1, 1, 1, 4, 4]


def test_all_equal_single_and_empty() -> None:
    assert quintile_scores([3.5] * 7).tolist() == [1] * 7
    assert quintile_scores([42.0]).tolist() == [1]
    assert quintile_scores([]).tolist() == []


def test_quintiles_refuse_nan() -> None:
    with pytest.raises(ValidationFailed):
        quintile_scores([1.0, float("nan")])


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(finite, st.integers(0, 5).map(float)), min_size=1, max_size=60))
def test_quintile_properties(values: list[float]) -> None:
    scores = quintile_scores(values)
    assert ((scores >= 1) & (scores <= 5)).all()
    for i, j in product(range(len(values)), repeat=2):
        if values[i] == values[j]:
            assert scores[i] == scores[j]
        elif values[i] < values[j]:
            assert scores[i] <= scores[j]
    if len(set(values)) == len(values):
        # Distinct values: as even as fifths allow.
        counts = np.bincount(scores, minlength=6)[1:]
        assert counts.max() - counts.min() <= 1


# --- scoring members --------------------------------------------------------------------------


def test_hand_computed_scores_and_segments() -> None:
    members = frame(
        [
            (3, "2024-01-10", 3, 30.0),
            (1, "2024-01-01", 1, 10.0),
            (2, None, 0, 0.0),  # never bought
            (4, "2024-01-10", 5, 80.0),
            (5, "2023-12-01", 0, 0.0),  # bought before the window, not in it
            (6, "2024-01-05", 2, 20.0),
        ]
    )
    scored = score(members, AS_OF)
    assert scored.index.tolist() == [1, 2, 3, 4, 5, 6]
    # Recency days 30, —, 21, 21, 61, 26 among the five scored: 3 and 4 tie (both 4).
    assert scored["recency_days"].fillna(-1).tolist() == [30, -1, 21, 21, 61, 26]
    assert scored["r"].tolist() == [2, 0, 4, 4, 1, 3]
    assert scored["f"].tolist() == [2, 0, 4, 5, 1, 3]
    assert scored["m"].tolist() == [2, 0, 4, 5, 1, 3]
    assert scored["segment"].tolist() == [
        "Hibernating",
        NO_PURCHASE,
        "Loyal Customers",
        "Champions",
        "Lost",
        "Potential Loyalist",
    ]


def test_members_without_purchase_do_not_move_the_quintiles() -> None:
    buyers = frame([(i, f"2024-01-{i + 1:02d}", i, 10.0 * i) for i in range(1, 6)])
    with_nobodies = pd.concat(
        [buyers, frame([(100 + i, None, 0, 0.0) for i in range(20)])], ignore_index=True
    )
    alone = score(buyers, AS_OF)
    mixed = score(with_nobodies, AS_OF)
    assert mixed.loc[alone.index, ["r", "f", "m"]].equals(alone[["r", "f", "m"]])
    nobodies = mixed.loc[mixed.index >= 100]
    assert (nobodies[["r", "f", "m"]] == 0).all().all()
    assert set(nobodies["segment"]) == {NO_PURCHASE}


def test_single_member_and_empty() -> None:
    single = score(frame([("a", date(2024, 1, 30), 2, 15.0)]), AS_OF)
    assert single[["r", "f", "m"]].iloc[0].tolist() == [1, 1, 1]
    assert single["segment"].iloc[0] == "Lost"
    empty = score(frame([]), AS_OF)
    assert empty.empty
    assert list(empty.columns) == [
        "recency_days",
        "frequency",
        "monetary",
        "r",
        "f",
        "m",
        "segment",
    ]
    assert migration(empty, empty).to_numpy().sum() == 0


def test_dates_count_on_their_own_day() -> None:
    members = pd.DataFrame(
        {
            "member_id": [1, 2],
            "last_purchase": [
                datetime(2024, 1, 30, 23, 59, tzinfo=ZoneInfo("Asia/Shanghai")),
                datetime(2024, 1, 30, 0, 1, tzinfo=ZoneInfo("Asia/Shanghai")),
            ],
            "purchases": [1, 1],
            "monetary": [5.0, 5.0],
        }
    )
    scored = score(members, date(2024, 1, 31))
    assert scored["recency_days"].tolist() == [1.0, 1.0]
    assert scored["r"].tolist() == [1, 1]


@pytest.mark.parametrize(
    "rows",
    [
        [(1, None, 2, 10.0)],  # purchases without a date
        [(1, "2024-02-01", 1, 10.0)],  # after the as-of date
        [(1, "2024-01-01", -1, 10.0)],
        [(1, "2024-01-01", 1.5, 10.0)],
        [(1, "2024-01-01", 1, float("nan"))],
        [(1, "2024-01-01", 1, 1.0), (1, "2024-01-02", 1, 1.0)],
        [(1, "yesterday", 1, 1.0)],
    ],
)
def test_refuses_what_it_cannot_score(rows: list[tuple[object, object, int, float]]) -> None:
    with pytest.raises(ValidationFailed):
        score(frame(rows), AS_OF)


def test_refuses_missing_columns() -> None:
    with pytest.raises(ValidationFailed, match="monetary"):
        score(frame([]).drop(columns=["monetary"]), AS_OF)


day = st.dates(date(2023, 1, 1), date(2024, 1, 31))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(day, st.integers(0, 6), st.integers(-20, 200).map(float)),
            st.just((None, 0, 0.0)),
        ),
        max_size=40,
    )
)
def test_member_score_properties(rows: list[tuple[date | None, int, float]]) -> None:
    members = frame([(i, d, n, s) for i, (d, n, s) in enumerate(rows)])
    scored = score(members, AS_OF)
    assert len(scored) == len(rows)
    bought = scored["recency_days"].notna()
    for column in ("r", "f", "m"):
        assert scored.loc[bought, column].between(1, 5).all()
        assert (scored.loc[~bought, column] == 0).all()
    for source, column in (("recency_days", "r"), ("frequency", "f"), ("monetary", "m")):
        by_value = scored[bought].groupby(source)[column].nunique()
        assert (by_value <= 1).all()  # equal values, equal scores
    for r, f, m, segment in zip(
        scored["r"], scored["f"], scored["m"], scored["segment"], strict=True
    ):
        assert segment == segment_of(int(r), int(f), int(m))


# --- the published segment table --------------------------------------------------------------


def test_the_table_gives_every_code_exactly_one_segment() -> None:
    codes = [code for codes in SEGMENT_CODES.values() for code in codes]
    assert len(codes) == 125
    assert sorted(codes) == sorted("".join(map(str, c)) for c in product(range(1, 6), repeat=3))
    assert len(SEGMENT_CODES) == 11
    assert SEGMENTS[-1] == NO_PURCHASE


@pytest.mark.parametrize(
    ("code", "segment"),
    [
        ("555", "Champions"),
        ("445", "Champions"),
        ("543", "Loyal Customers"),
        ("444", "Loyal Customers"),
        ("333", "Potential Loyalist"),
        ("553", "Potential Loyalist"),
        ("511", "New Customers"),
        ("311", "New Customers"),
        ("525", "Promising"),
        ("535", "Need Attention"),
        ("331", "About To Sleep"),
        ("231", "About To Sleep"),
        ("255", "At Risk"),
        ("124", "At Risk"),
        ("155", "Can't Lose Them"),
        ("113", "Can't Lose Them"),
        ("332", "Hibernating"),
        ("211", "Hibernating"),
        ("111", "Lost"),
        ("151", "Lost"),
    ],
)
def test_known_codes_of_the_published_map(code: str, segment: str) -> None:
    r, f, m = (int(c) for c in code)
    assert segment_of(r, f, m) == segment


def test_segment_of_no_purchase_and_bad_scores() -> None:
    assert segment_of(0, 0, 0) == NO_PURCHASE
    for bad in ((0, 1, 1), (6, 1, 1), (1, 1, -1)):
        with pytest.raises(ValidationFailed):
            segment_of(*bad)


# --- migration and cells ----------------------------------------------------------------------


def test_migration_counts_with_new_and_gone() -> None:
    first = pd.DataFrame(
        {"segment": ["Champions", "Champions", "Lost", "At Risk"]}, index=[1, 2, 3, 4]
    )
    second = pd.DataFrame(
        {"segment": ["Champions", "At Risk", "Lost", "New Customers"]}, index=[1, 2, 3, 5]
    )
    matrix = migration(first, second)
    assert list(matrix.index) == [*SEGMENTS, NEW]
    assert list(matrix.columns) == [*SEGMENTS, GONE]
    assert matrix.loc["Champions", "Champions"] == 1
    assert matrix.loc["Champions", "At Risk"] == 1
    assert matrix.loc["Lost", "Lost"] == 1
    assert matrix.loc["At Risk", GONE] == 1
    assert matrix.loc[NEW, "New Customers"] == 1
    assert matrix.loc[NEW, GONE] == 0
    assert matrix.to_numpy().sum() == 5  # the union of the two dates


def test_transition_refuses_unknown_states_and_repeats() -> None:
    with pytest.raises(ValidationFailed):
        transition_matrix(pd.Series(["x"], index=[1]), pd.Series(["a"], index=[1]), ["a"])
    with pytest.raises(ValidationFailed):
        transition_matrix(pd.Series(["a", "a"], index=[1, 1]), pd.Series([], dtype=object), ["a"])


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(st.integers(0, 30), st.sampled_from(SEGMENTS), max_size=25),
    st.dictionaries(st.integers(0, 30), st.sampled_from(SEGMENTS), max_size=25),
)
def test_migration_margins(first: dict[int, str], second: dict[int, str]) -> None:
    a = pd.DataFrame({"segment": pd.Series(first, dtype=object)})
    b = pd.DataFrame({"segment": pd.Series(second, dtype=object)})
    matrix = migration(a, b)
    assert matrix.to_numpy().sum() == len(set(first) | set(second))
    assert matrix.drop(index=NEW).sum(axis=1).to_dict() == {
        s: list(first.values()).count(s) for s in SEGMENTS
    }
    assert matrix.drop(columns=GONE).sum(axis=0).to_dict() == {
        s: list(second.values()).count(s) for s in SEGMENTS
    }


def test_members_of_a_cell() -> None:
    members = frame(
        [
            (3, "2024-01-10", 3, 30.0),
            (1, "2024-01-01", 1, 10.0),
            (2, None, 0, 0.0),
            (4, "2024-01-10", 5, 80.0),
            (5, "2023-12-01", 0, 0.0),
            (6, "2024-01-05", 2, 20.0),
        ]
    )
    scored = score(members, AS_OF)
    assert members_of(scored, r=4).index.tolist() == [3, 4]
    assert members_of(scored, r=4, f=5).index.tolist() == [4]
    assert members_of(scored, segment="Champions").index.tolist() == [4]
    assert members_of(scored, segment=NO_PURCHASE).index.tolist() == [2]
    assert members_of(scored, m=0).index.tolist() == [2]
    assert members_of(scored, segment="At Risk").empty
    assert members_of(scored).index.tolist() == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValidationFailed):
        members_of(scored, r=6)
    with pytest.raises(ValidationFailed):
        members_of(scored, segment="Royalty")
