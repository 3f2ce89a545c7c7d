"""Statistics from partitioned data equal the single-machine statistics, exactly.

A seeded dataset (integer and text member ids, several conversions per member of every kind,
touches at the very instant of a conversion, ties in time, touches outside every window and
after the last conversion, campaigns with gaps) is written to bucketed Parquet. Its
`PathStats` are computed by `stats.path_stats` over the whole frames, by every one-machine
route of `attribution.partitioned`, and on a `distributed.LocalCluster` with two worker
processes; all must be the same object to the last digit (Decimal exponents included), and
so must order-1 and order-3 Markov and simplified Shapley run on them.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from attribution.markov import MarkovResult, markov
from attribution.partitioned import (
    MANIFEST,
    Layout,
    dask_stats,
    frames_stats,
    layout_stats,
    member_buckets,
    parquet_stats,
    split_by_member,
    write_partitioned,
)
from attribution.shapley import simplified_shapley
from attribution.stats import PathStats, path_stats
from core.errors import ValidationFailed

CHANNELS = ["display", "email", "referral", "search", "sms", "social"]
CAMPAIGNS = [None, "spring", "vip", "winback"]
KINDS = ["signup", "first_purchase", "purchase", "purchase"]
BUCKETS = 8
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def dataset(members: int = 2_500, seed: int = 13, text_ids: bool = False) -> tuple[Any, Any]:
    """(touchpoints, conversions): 0–12 touches and 0–3 conversions per member over 200 days."""
    rng = np.random.default_rng(seed)
    ids: list[Any] = (10**9 + rng.permutation(members)).tolist()
    if text_ids:
        ids = [f"m{i}" for i in ids]
    touch_count = rng.integers(0, 13, size=members)
    conv_count = rng.choice(4, size=members, p=[0.35, 0.35, 0.2, 0.1])
    conv_member = np.repeat(np.arange(members), conv_count)
    # whole hours, so a member's touches often tie with each other and with a conversion
    conv_hour = rng.integers(0, 200 * 24, size=len(conv_member))
    touch_member = np.repeat(np.arange(members), touch_count)
    touch_hour = rng.integers(0, 200 * 24, size=len(touch_member))
    at_conversion = rng.random(len(touch_member)) < 0.05
    with_conv = np.flatnonzero(at_conversion & np.isin(touch_member, conv_member))
    first_conv = np.searchsorted(conv_member, touch_member[with_conv])
    touch_hour[with_conv] = conv_hour[first_conv]  # a touch at the instant of a purchase
    touchpoints = pd.DataFrame(
        {
            "member": [ids[m] for m in touch_member],
            "channel": rng.choice(CHANNELS, size=len(touch_member)).astype(object),
            "campaign": rng.choice(np.array(CAMPAIGNS, dtype=object), size=len(touch_member)),
            "at": T0 + pd.to_timedelta(touch_hour, unit="h"),
        }
    )
    cents = rng.integers(0, 50_000, size=len(conv_member))
    conversions = pd.DataFrame(
        {
            "member": [ids[m] for m in conv_member],
            "at": T0 + pd.to_timedelta(conv_hour, unit="h"),
            # money at its minor units, as the database's numeric(…, 2) holds it
            "value": [Decimal(int(c)).scaleb(-2) for c in cents],
            "kind": rng.choice(np.array(KINDS, dtype=object), size=len(conv_member)),
        }
    )
    # rows in no particular order (shuffled, not by member or time), as a table may be
    touchpoints = touchpoints.sample(frac=1, random_state=seed).reset_index(drop=True)
    conversions = conversions.sample(frac=1, random_state=seed + 1).reset_index(drop=True)
    if not text_ids:
        touchpoints["member"] = touchpoints["member"].astype("int64")
        conversions["member"] = conversions["member"].astype("int64")
    return touchpoints, conversions


def exact(stats: PathStats) -> list[tuple[object, ...]]:
    """Every count and the text of every Decimal: `==` on Decimal ignores 2.5 vs 2.50."""
    rows: list[tuple[object, ...]] = [
        (path, c.conversions, str(c.value), c.nulls) for path, c in stats.items()
    ]
    d = stats.direct
    return [*rows, ("(direct)", d.conversions, str(d.value), d.nulls)]


def assert_same_stats(got: PathStats, want: PathStats) -> None:
    assert got == want
    assert exact(got) == exact(want)


def assert_same_markov(got: MarkovResult, want: MarkovResult) -> None:
    assert repr(got.attribution) == repr(want.attribution)  # every Decimal digit
    assert got.removal_effects == want.removal_effects  # floats, compared exactly
    assert got.value_removal_effects == want.value_removal_effects
    assert (got.p_conversion, got.expected_value) == (want.p_conversion, want.expected_value)
    pd.testing.assert_frame_equal(got.transitions, want.transitions, check_exact=True)


def assert_same_models(got: PathStats, want: PathStats) -> None:
    for order in (1, 3):
        assert_same_markov(markov(got, order), markov(want, order))
    assert repr(simplified_shapley(got)) == repr(simplified_shapley(want))


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return dataset()


@pytest.fixture(scope="module")
def layout(
    data: tuple[pd.DataFrame, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> Layout:
    return write_partitioned(*data, tmp_path_factory.mktemp("parquet"), buckets=BUCKETS)


# --- The hash and the layout ----------------------------------------------------------------


def test_the_member_hash_is_fixed_and_follows_how_the_rules_group_ids() -> None:
    touch = pd.DataFrame({"member": pd.Series([1, 2, 3, 10**12], dtype="int64")})
    conv = pd.DataFrame({"member": pd.Series([3], dtype="int32")})
    t, c = member_buckets(touch, conv, 16)
    # pinned: a layout written today must be read the same way by every later version
    assert t.tolist() == [5, 10, 0, 15]
    assert c.tolist() == [0]  # int32 and int64 ids are one member
    text_t, text_c = member_buckets(
        pd.DataFrame({"member": ["m1", " m1", "m2"]}), pd.DataFrame({"member": ["m1 "]}), 16
    )
    assert text_t[0] == text_t[1] == text_c[0]  # the rules strip text ids; so does the hash
    with pytest.raises(ValidationFailed, match="whole number"):
        member_buckets(touch, conv, 0)


def test_the_layout_holds_whole_members_and_keeps_row_order(
    data: tuple[pd.DataFrame, pd.DataFrame], layout: Layout
) -> None:
    touchpoints, conversions = data
    assert json.loads((Path(layout.root) / MANIFEST).read_text())["buckets"] == BUCKETS
    assert Layout.open(layout.root) == layout
    seen: dict[int, int] = {}
    touch_rows, conv_rows = [], []
    for i in range(BUCKETS):
        touch, conv = layout.read(i)
        for member in set(touch["member"]) | set(conv["member"]):
            assert seen.setdefault(member, i) == i, "a member in two partitions"
        touch_rows.append(touch)
        conv_rows.append(conv)
    # every row exactly once, and within a bucket in the original order (the tie-break)
    back = pd.concat(touch_rows, ignore_index=True)
    assert len(back) == len(touchpoints)
    for i, part in enumerate(split_by_member(touchpoints, conversions, BUCKETS)):
        pd.testing.assert_frame_equal(
            touch_rows[i].reset_index(drop=True),
            part[0].reset_index(drop=True),
            check_dtype=False,
        )
        assert conv_rows[i]["member"].tolist() == part[1]["member"].tolist()
        assert conv_rows[i]["value"].map(str).tolist() == part[1]["value"].map(str).tolist()


def test_a_partition_with_another_partitions_members_is_refused(
    data: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    written = write_partitioned(*data, tmp_path / "p", buckets=4)
    moved = Path(written.conversions_file(1))
    moved.replace(written.conversions_file(0))  # bucket 1's conversions posing as bucket 0's
    write_partitioned(data[0].iloc[:0], data[1].iloc[:0], tmp_path / "empty", buckets=1)
    Path(tmp_path / "empty" / "conversions" / "part-00000.parquet").replace(moved)
    with pytest.raises(ValidationFailed, match=r"Partition 0 of 4 holds \d+ row"):
        layout_stats(written)
    moved.unlink()
    with pytest.raises(ValidationFailed, match="lacks 1 partition file"):
        Layout.open(tmp_path / "p")
    with pytest.raises(ValidationFailed, match="not a partitioned attribution folder"):
        Layout.open(tmp_path / "nowhere")


# --- One machine ----------------------------------------------------------------------------


@pytest.mark.parametrize("text_ids", [False, True], ids=["integer_ids", "text_ids"])
def test_every_one_machine_route_equals_path_stats_exactly(text_ids: bool, tmp_path: Path) -> None:
    touchpoints, conversions = dataset(members=800, seed=5, text_ids=text_ids)
    whole = path_stats(touchpoints, conversions)
    assert whole.total_conversions > 0 and whole.total_nulls > 0 and whole.direct.conversions > 0
    assert_same_stats(frames_stats(touchpoints, conversions, buckets=5), whole)
    written = write_partitioned(touchpoints, conversions, tmp_path / "layout", buckets=5)
    assert_same_stats(layout_stats(tmp_path / "layout"), whole)
    assert_same_stats(layout_stats(written), whole)
    touchpoints.to_parquet(tmp_path / "touchpoints.parquet", index=False)
    conversions.to_parquet(tmp_path / "conversions.parquet", index=False)
    from_files = parquet_stats(tmp_path / "touchpoints.parquet", tmp_path / "conversions.parquet")
    assert_same_stats(from_files, whole)
    options: dict[str, Any] = {"unit": "campaign", "collapse_repeats": True}
    assert_same_stats(
        layout_stats(written, **options), path_stats(touchpoints, conversions, **options)
    )


# --- Dask on two worker processes -----------------------------------------------------------


def test_dask_on_two_workers_gives_the_single_machine_numbers_to_the_last_digit(
    data: tuple[pd.DataFrame, pd.DataFrame], layout: Layout, cluster: tuple[Any, bool]
) -> None:
    client, processes = cluster
    worker_pids = client.run(os.getpid)
    assert len(worker_pids) == 2
    if processes:  # two separate processes, neither of them this one
        assert len(set(worker_pids.values()) - {os.getpid()}) == 2
    single = path_stats(*data)
    assert_same_stats(layout_stats(layout), single)

    distributed = dask_stats(layout.root, client=client)

    assert_same_stats(distributed, single)
    # nothing lost or counted twice: every conversion is on a path or direct, once
    assert distributed.total_conversions + distributed.direct.conversions == len(data[1])
    assert_same_models(distributed, single)


def test_dask_with_text_ids_campaigns_and_collapsed_repeats_on_the_default_client(
    tmp_path: Path, cluster: tuple[Any, bool]
) -> None:
    touchpoints, conversions = dataset(members=600, seed=29, text_ids=True)
    written = write_partitioned(touchpoints, conversions, tmp_path, buckets=3)
    options: dict[str, Any] = {"unit": "campaign", "collapse_repeats": True}
    single = path_stats(touchpoints, conversions, **options)
    distributed = dask_stats(written, **options)  # the active Client is Dask's default
    assert_same_stats(distributed, single)
    assert_same_models(distributed, single)
