"""Journeys from touchpoints and conversions, the aggregated paths format, and `PathStats`.

Edge cases of the issue: a touch exactly at the window edge (counts) and one second before
it (becomes a null journey), two conversions in a row (the second has an empty path), a
touch after the last conversion (a null journey), a touch at the conversion's instant
(counts), acquisition vs other lookbacks, the collapse switch, campaign as the unit.
Parsing: `;`/`,` detection, quoting, strict errors that name the line, repeated paths.
Properties: statistics summed over member partitions equal the whole, in any order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.paths import (
    NO_CAMPAIGN,
    Journey,
    Lookback,
    Touch,
    build_journeys,
    parse_paths_csv,
)
from attribution.stats import PathCounts, PathStats, path_stats, read_paths_csv
from core.errors import ValidationFailed

DATA = Path(__file__).parent / "data"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def touches(*rows: tuple[object, ...]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member": [r[0] for r in rows],
            "channel": [r[1] for r in rows],
            "at": pd.Series([r[2] for r in rows], dtype="datetime64[us, UTC]"),
            "campaign": [r[3] if len(r) > 3 else None for r in rows],
        }
    )


def conversions(*rows: tuple[object, datetime, str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member": [r[0] for r in rows],
            "at": pd.Series([r[1] for r in rows], dtype="datetime64[us, UTC]"),
            "value": [r[2] for r in rows],
            "kind": [r[3] for r in rows],
        }
    )


def shape(journeys: list[Journey]) -> list[tuple[str, tuple[str, ...], bool, Decimal]]:
    return [(j.member, j.path, j.converted, j.value) for j in journeys]


# --- Journeys -------------------------------------------------------------------------------


def test_a_touch_exactly_at_the_window_edge_counts_one_second_earlier_does_not() -> None:
    journeys = build_journeys(
        touches(
            ("m1", "email", day(0) - timedelta(seconds=1)),
            ("m1", "search", day(0)),  # exactly 90 days before the purchase
            ("m1", "social", day(60)),
        ),
        conversions(("m1", day(90), "50.00", "purchase")),
    )
    assert shape(journeys) == [
        ("m1", ("email",), False, Decimal(0)),
        ("m1", ("search", "social"), True, Decimal("50.00")),
    ]


def test_acquisition_conversions_look_back_30_days_others_90() -> None:
    frame = touches(("m1", "email", day(0)), ("m2", "email", day(0)))
    convs = conversions(("m1", day(31), "0", "signup"), ("m2", day(31), "10", "purchase"))
    journeys = build_journeys(frame, convs)
    assert shape(journeys) == [
        ("m1", ("email",), False, Decimal(0)),
        ("m1", (), True, Decimal(0)),
        ("m2", ("email",), True, Decimal(10)),
    ]
    # configurable per run
    wide = build_journeys(frame, convs, lookback=Lookback(acquisition=timedelta(days=31)))
    assert shape(wide)[0] == ("m1", ("email",), True, Decimal(0))


def test_journeys_split_at_each_conversion_two_in_a_row_and_a_touch_after_the_last() -> None:
    journeys = build_journeys(
        touches(
            ("m1", "email", day(1)),
            ("m1", "search", day(2)),  # the same instant as the first purchase: counts for it
            ("m1", "social", day(9)),
        ),
        conversions(
            ("m1", day(2), "10", "first_purchase"),
            ("m1", day(3), "20", "purchase"),  # nothing between: an empty path
            ("m1", day(3), "5", "purchase"),  # a tie in time keeps row order
        ),
    )
    assert shape(journeys) == [
        ("m1", ("email", "search"), True, Decimal(10)),
        ("m1", (), True, Decimal(20)),
        ("m1", (), True, Decimal(5)),
        ("m1", ("social",), False, Decimal(0)),
    ]
    stats = PathStats.from_journeys(journeys)
    assert stats.direct == PathCounts(2, Decimal(25), 0)
    assert stats.total_conversions == 1 and stats.total_nulls == 1


def test_members_without_conversions_give_null_journeys_and_output_is_sorted() -> None:
    journeys = build_journeys(
        touches(("m2", "email", day(1)), ("m1", "search", day(2)), ("m1", "email", day(1))),
        conversions(),
    )
    assert shape(journeys) == [
        ("m1", ("email", "search"), False, Decimal(0)),
        ("m2", ("email",), False, Decimal(0)),
    ]


def test_collapse_switch_merges_consecutive_repeats_and_keeps_the_latest_time() -> None:
    frame = touches(
        ("m1", "email", day(1)),
        ("m1", "email", day(2)),
        ("m1", "search", day(3)),
        ("m1", "email", day(4)),
    )
    convs = conversions(("m1", day(5), "10", "purchase"))
    assert build_journeys(frame, convs)[0].path == ("email", "email", "search", "email")
    collapsed = build_journeys(frame, convs, collapse_repeats=True)[0]
    assert collapsed.touches == (
        Touch("email", day(2)),
        Touch("search", day(3)),
        Touch("email", day(4)),
    )


def test_campaign_unit_names_touches_without_a_campaign() -> None:
    journeys = build_journeys(
        touches(("m1", "email", day(1), "spring-sale"), ("m1", "search", day(2), None)),
        conversions(("m1", day(3), "10", "purchase")),
        unit="campaign",
    )
    assert journeys[0].path == ("spring-sale", NO_CAMPAIGN)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"member": ["m"], "at": [T0]}), "lacks the column(s): channel"),
        (
            pd.DataFrame({"member": ["m"], "channel": ["e"], "at": [datetime(2025, 1, 1)]}),  # noqa: DTZ001
            "time zone",
        ),
        (pd.DataFrame({"member": ["m"], "channel": [" "], "at": [T0]}), "channel"),
    ],
)
def test_bad_touchpoint_frames_are_refused_with_a_reason(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_journeys(frame, conversions())


def test_negative_conversion_values_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="≥ 0"):
        build_journeys(touches(), conversions(("m1", day(1), "-1", "purchase")))


# --- The aggregated format ----------------------------------------------------------------


def test_channelattribution_sample_parses_with_semicolons_long_decimals_and_repeats() -> None:
    records = parse_paths_csv((DATA / "channelattribution_pathdata_head.csv").read_bytes())
    assert len(records) == 12
    assert records[5].path[:3] == ("alpha", "eta", "alpha") and len(records[5].path) == 21
    assert records[10].value == Decimal("30.7346153846154")
    stats = PathStats.from_records(records)
    assert len(stats.paths) == 11  # "beta > eta" twice
    assert stats.paths[("beta", "eta")] == PathCounts(2, Decimal("5.894"), 6)
    # totals worked by hand from the 12 lines
    assert stats.total_conversions == 21
    assert stats.total_value == Decimal("64.5856153846154")
    assert stats.total_nulls == 74
    assert stats.channels == ("alpha", "beta", "eta", "iota", "kappa", "lambda", "theta")


def test_comma_files_quotes_optional_columns_bom_and_blank_lines() -> None:
    text = '\ufeffPath,total_conversions\n"email > search",2\n\nsearch,0\n'
    stats = read_paths_csv(text)
    assert stats.paths == {
        ("email", "search"): PathCounts(2, Decimal(0), 0),
    }  # search: 0 and 0, nothing to keep
    assert read_paths_csv(
        b"path;total_conversions;total_null\nx > x > y;0;3\n", collapse_repeats=True
    ).paths == {("x", "y"): PathCounts(0, Decimal(0), 3)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("route,total_conversions\na,1\n", "Line 1"),
        ("path;total_conversions;colour\na;1;red\n", "Line 1"),
        ("path,total_conversions\na,1.5\n", "Line 2: total_conversions must be a whole number"),
        (
            "path,total_conversions\na,1\nb > > c,1\n",
            "Line 3: the path 'b > > c' has an empty step",
        ),
        ("path,total_conversions\n,1\n", "Line 2: the path is empty"),
        (
            "path;total_conversions;total_conversion_value\na;1;1,234.50\n",
            "Line 2: total_conversion_value must be a number",
        ),
        ("path,total_conversions,total_conversion_value\na,0,5\n", "Line 2: a conversion value"),
        ("path,total_conversions\na,1,2\n", "Line 2: expected 2 fields, found 3"),
        ("path,total_conversions,total_null\na,-1,0\n", "Line 2"),
    ],
)
def test_strict_parsing_names_the_line(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        parse_paths_csv(text)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_paths_csv("path,total_conversions\na,x\nb,1\nc,y\n")
    assert caught.value.code == "attribution.paths_invalid"
    assert [p["line"] for p in caught.value.details["problems"]] == [2, 4]
    assert "Line 2" in caught.value.message and "Line 4" in caught.value.message


# --- PathStats ------------------------------------------------------------------------------


def test_statistics_frame_is_channelattribution_layout_most_converting_first() -> None:
    stats = read_paths_csv((DATA / "puzyrov_2019_four_paths.csv").read_text())
    frame = stats.to_frame()
    assert frame.to_dict("records") == [
        {
            "path": "google ads",
            "total_conversions": 2,
            "total_conversion_value": Decimal(0),
            "total_null": 1,
        },
        {
            "path": "google ads > mailing",
            "total_conversions": 1,
            "total_conversion_value": Decimal(0),
            "total_null": 0,
        },
        {
            "path": "mailing",
            "total_conversions": 1,
            "total_conversion_value": Decimal(0),
            "total_null": 0,
        },
    ]


CHANNELS = ["email", "search", "social", "sms"]


@st.composite
def member_data(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    count = draw(st.integers(1, 12))
    members: list[str] | list[int] = (
        list(range(count)) if draw(st.booleans()) else [f"m{i}" for i in range(count)]
    )
    touch_rows = draw(
        st.lists(
            st.tuples(st.sampled_from(members), st.sampled_from(CHANNELS), st.integers(0, 200)),
            max_size=40,
        )
    )
    conv_rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(members),
                st.integers(0, 200),
                st.decimals(0, 500, places=2),
                st.sampled_from(["signup", "first_purchase", "purchase"]),
            ),
            max_size=10,
        )
    )
    tp = touches(*[(m, c, day(d)) for m, c, d in touch_rows])
    cv = conversions(*[(m, day(d), str(v), k) for m, d, v, k in conv_rows])
    if isinstance(members[0], int):  # integer ids, as the database has them
        tp["member"] = tp["member"].astype("int64")
        cv["member"] = cv["member"].astype("int64")
    return tp, cv


@settings(max_examples=60, deadline=None)
@given(member_data(), st.integers(1, 4), st.booleans(), st.randoms(use_true_random=False))
def test_partition_sums_equal_the_whole_in_any_order(
    data: tuple[pd.DataFrame, pd.DataFrame], parts: int, collapse: bool, rng
) -> None:
    tp, cv = data
    whole = path_stats(tp, cv, collapse_repeats=collapse)
    members = sorted(set(tp["member"]) | set(cv["member"]))
    rng.shuffle(members)
    groups = [members[i::parts] for i in range(parts)]
    pieces = [
        path_stats(tp[tp["member"].isin(g)], cv[cv["member"].isin(g)], collapse_repeats=collapse)
        for g in groups
    ]
    rng.shuffle(pieces)
    assert sum(pieces, PathStats()) == whole
    assert sum(pieces) == whole  # plain `sum` starts from 0
    # every conversion and every touch is accounted for exactly once
    assert whole.total_conversions + whole.direct.conversions == len(cv)
    assert whole.total_value + whole.direct.value == sum(
        (Decimal(v) for v in cv["value"]), Decimal(0)
    )
    if not collapse:
        assert sum(len(p) * (c.conversions + c.nulls) for p, c in whole.items()) == len(tp)


# --- The columnar rules against a plain reading of them ---------------------------------------


def reference_journeys(
    tp: pd.DataFrame, cv: pd.DataFrame, lookback: Lookback, collapse_repeats: bool
) -> list[Journey]:
    """The module docstring's rules, member by member and touch by touch: the oracle."""

    def shaped(run: list[Touch]) -> tuple[Touch, ...]:
        out: list[Touch] = []
        for touch in run:
            if collapse_repeats and out and out[-1].unit == touch.unit:
                out[-1] = touch
            else:
                out.append(touch)
        return tuple(out)

    members = sorted(set(tp["member"]) | set(cv["member"]))
    journeys: list[Journey] = []
    for member in members:
        rows = tp[tp["member"] == member]
        touches = [
            Touch(c, t.to_pydatetime())
            for _, c, t in sorted(
                zip(rows.index, rows["channel"], rows["at"], strict=True),
                key=lambda r: (r[2], r[0]),
            )
        ]
        crows = cv[cv["member"] == member]
        convs = sorted(
            zip(crows["at"], crows.index, crows["value"], crows["kind"], strict=True),
            key=lambda r: (r[0], r[1]),
        )
        i = 0
        for at, _, value, kind in convs:
            at = at.to_pydatetime()
            start = at - lookback.window(kind)
            expired: list[Touch] = []
            counted: list[Touch] = []
            while i < len(touches) and touches[i].at <= at:
                (counted if touches[i].at >= start else expired).append(touches[i])
                i += 1
            if expired:
                journeys.append(Journey(str(member), shaped(expired), converted=False))
            journeys.append(Journey(str(member), shaped(counted), True, Decimal(value), kind, at))
        if i < len(touches):
            journeys.append(Journey(str(member), shaped(touches[i:]), converted=False))
    return journeys


@settings(max_examples=80, deadline=None)
@given(member_data(), st.booleans(), st.integers(0, 40), st.integers(0, 120))
def test_columnar_journeys_equal_the_plain_reading_of_the_rules(
    data: tuple[pd.DataFrame, pd.DataFrame], collapse: bool, acquisition: int, other: int
) -> None:
    tp, cv = data
    lookback = Lookback(timedelta(days=acquisition), timedelta(days=other))
    expected = reference_journeys(tp, cv, lookback, collapse)
    assert build_journeys(tp, cv, lookback=lookback, collapse_repeats=collapse) == expected
    assert path_stats(tp, cv, lookback=lookback, collapse_repeats=collapse) == (
        PathStats.from_journeys(expected)
    )
