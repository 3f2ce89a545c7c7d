"""Per-customer summaries: hand-checked cases, the CDNOW sample, and partitioning."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.summaries import split_by_customer, summarise, summarise_partitions
from core.errors import ValidationFailed

DATA = Path(__file__).parent / "data"
CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"


@cache
def _cdnow() -> pd.DataFrame:
    frame = pd.read_csv(
        DATA / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer_id", "master_id", "date", "cds", "amount"],
        dtype={"customer_id": str, "master_id": str, "date": str},
    )
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame[["customer_id", "date", "amount"]]


def cdnow_transactions() -> pd.DataFrame:
    """The CDNOW sample (2,357 customers, 6,919 rows) as a transaction log."""
    return _cdnow().copy()


@cache
def _cdnow_summaries() -> pd.DataFrame:
    return summarise(_cdnow(), CALIBRATION_END, HOLDOUT_END, "W")


def cdnow_summaries() -> pd.DataFrame:
    """CDNOW summarised as FHL do: weeks, calibration to 1997-09-30, holdout to 1998-06-30."""
    return _cdnow_summaries().copy()


def log(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "date": pd.to_datetime([r[1] for r in rows], format="ISO8601"),
            "amount": [r[2] for r in rows],
        }
    )


SMALL = [
    ("ann", "2024-01-01", 10.0),
    ("ann", "2024-01-01", 5.0),  # same day: one purchase of 15
    ("ann", "2024-01-08", 20.0),
    ("ann", "2024-01-15 18:30", 8.0),  # a time of day is dropped
    ("ann", "2024-01-15", 2.0),  # merged with the one above: 10
    ("ann", "2024-02-05", 7.0),  # holdout
    ("ann", "2024-02-05", 1.0),  # holdout, same day
    ("ann", "2024-03-01", 99.0),  # after the holdout end: ignored
    ("bob", "2024-01-29", 30.0),  # on the calibration end: calibration
    ("bob", "2024-01-30", 4.0),  # the first holdout day
    ("cat", "2024-02-01", 50.0),  # first buys in the holdout: not in the cohort
    ("dan", "2024-01-15", 12.0),
]


def test_a_small_log_by_hand() -> None:
    result = summarise(log(SMALL), "2024-01-29", "2024-02-26", "W")
    assert list(result.index) == ["ann", "bob", "dan"]
    ann, bob, dan = (result.loc[c] for c in ("ann", "bob", "dan"))
    assert ann["frequency"] == 2  # Jan 8 and Jan 15 after Jan 1
    assert ann["recency"] == pytest.approx(14 / 7)
    assert ann["T"] == pytest.approx(28 / 7)
    assert ann["monetary_value"] == pytest.approx((20 + 10) / 2)
    assert ann["first_amount"] == pytest.approx(15)
    assert ann["calibration_amount"] == pytest.approx(45)
    assert ann["first_purchase"] == pd.Timestamp("2024-01-01")
    assert ann["frequency_holdout"] == 1  # two transactions on Feb 5 are one purchase
    assert ann["amount_holdout"] == pytest.approx(8)
    assert bob["frequency"] == 0 and bob["recency"] == 0 and bob["T"] == 0
    assert np.isnan(bob["monetary_value"])
    assert bob["frequency_holdout"] == 1
    assert dan["T"] == pytest.approx(2) and dan["frequency_holdout"] == 0
    assert (result["duration_holdout"] == 4).all()
    assert result["frequency"].dtype == np.int64
    assert result["frequency_holdout"].dtype == np.int64


def test_days_are_the_unit_times_seven() -> None:
    weeks = summarise(log(SMALL), "2024-01-29", unit="W")
    days = summarise(log(SMALL), "2024-01-29", unit="D")
    assert np.allclose(days["recency"], weeks["recency"] * 7)
    assert np.allclose(days["T"], weeks["T"] * 7)
    assert days.loc["ann", "T"] == 28
    assert "frequency_holdout" not in days.columns


def test_without_a_holdout_later_purchases_are_ignored() -> None:
    result = summarise(log(SMALL), "2024-01-08")
    assert result.loc["ann", "frequency"] == 1
    assert list(result.index) == ["ann"]


def test_dates_as_date_objects_strings_and_zones_and_decimal_amounts() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    frame = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "date": [
                datetime(2024, 1, 1, 23, 30, tzinfo=shanghai),
                datetime(2024, 1, 1, 8, 0, tzinfo=shanghai),
                datetime(2024, 1, 3, 1, 0, tzinfo=shanghai),
                datetime(2024, 1, 2, 0, 0, tzinfo=shanghai),
            ],
            "amount": [Decimal("1.10"), Decimal("2.20"), Decimal("3.30"), Decimal("4")],
        }
    )
    result = summarise(frame, date(2024, 1, 3), unit="D")
    assert result.loc[1, "frequency"] == 1  # the two purchases of Jan 1 (local) are one
    assert result.loc[1, "first_amount"] == pytest.approx(3.3)
    assert result.loc[1, "recency"] == 2
    as_dates = frame.assign(
        date=[date(2024, 1, 1), date(2024, 1, 1), date(2024, 1, 3), date(2024, 1, 2)]
    )
    pd.testing.assert_frame_equal(summarise(as_dates, "2024-01-03", unit="D"), result)
    as_text = frame.assign(date=["2024-01-01", "2024-01-01", "2024-01-03", "2024-01-02"])
    pd.testing.assert_frame_equal(summarise(as_text, "2024-01-03", unit="D"), result)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda f: f.drop(columns="amount"), "value.columns"),
        (lambda f: f.assign(date=[pd.NaT, *list(f["date"][1:])]), "value.date"),
        (lambda f: f.assign(amount=[np.nan, *list(f["amount"][1:])]), "value.amount"),
        (lambda f: f.assign(amount=["x", *list(f["amount"][1:])]), "value.amount"),
        (lambda f: f.assign(customer_id=[None, *list(f["customer_id"][1:])]), "value.customer_id"),
        (lambda f: f.assign(date=["31/01/2024", *list(f["date"].astype(str)[1:])]), "value.date"),
    ],
)
def test_bad_logs_are_refused(change, code) -> None:
    with pytest.raises(ValidationFailed) as caught:
        summarise(change(log(SMALL)), "2024-01-29")
    assert caught.value.code == code


def test_bad_periods_are_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        summarise(log(SMALL), "2024-01-29", "2024-01-29")
    assert caught.value.code == "value.holdout_end"
    with pytest.raises(ValidationFailed) as caught:
        summarise(log(SMALL), "2024-01-29", unit="M")  # type: ignore[arg-type]
    assert caught.value.code == "value.unit"
    with pytest.raises(ValidationFailed) as caught:
        summarise(log(SMALL), "29.01.2024")
    assert caught.value.code == "value.date"


def test_an_empty_log_and_a_log_before_anyone_bought() -> None:
    empty = summarise(log(SMALL).iloc[0:0], "2024-01-29", "2024-02-26")
    assert empty.empty and "frequency_holdout" in empty.columns
    assert summarise(log(SMALL), "2023-12-31").empty


# --- CDNOW -------------------------------------------------------------------------------------


def test_cdnow_summaries() -> None:
    raw = cdnow_transactions()
    assert len(raw) == 6919 and raw["customer_id"].nunique() == 2357
    s = cdnow_summaries()
    assert len(s) == 2357  # everyone first bought in 1997 Q1
    assert int(s["frequency"].sum()) == 2457
    assert int((s["frequency"] > 0).sum()) == 946  # the Gamma-Gamma's repeat buyers
    assert int(s["frequency_holdout"].sum()) == 1882
    assert (s["duration_holdout"] == 39).all()  # weeks 40–78
    # The customer of FHL's worked example: x = 2, t_x = 30.43, T = 38.86.
    first = s.loc["00004"]
    assert first["frequency"] == 2
    assert round(first["recency"], 2) == 30.43
    assert round(first["T"], 2) == 38.86
    assert first["monetary_value"] == pytest.approx((29.73 + 14.96) / 2)
    assert first["frequency_holdout"] == 1
    assert s["T"].max() == pytest.approx(272 / 7)
    assert s["T"].min() == pytest.approx((date(1997, 9, 30) - date(1997, 3, 25)).days / 7)


def test_cdnow_row_order_does_not_matter() -> None:
    shuffled = cdnow_transactions().sample(frac=1.0, random_state=7)
    pd.testing.assert_frame_equal(
        summarise(shuffled, CALIBRATION_END, HOLDOUT_END), cdnow_summaries()
    )


def test_cdnow_in_parts_equals_the_whole() -> None:
    parts = split_by_customer(cdnow_transactions(), 5)
    assert sum(len(p) for p in parts) == 6919
    ids = [set(p["customer_id"]) for p in parts]
    assert all(not (ids[i] & ids[j]) for i in range(5) for j in range(i + 1, 5))
    pd.testing.assert_frame_equal(
        summarise_partitions(parts, CALIBRATION_END, HOLDOUT_END),
        cdnow_summaries(),
        check_exact=True,
    )


# --- Properties --------------------------------------------------------------------------------

DAY0 = date(2024, 1, 1)
transactions = st.lists(
    st.tuples(
        st.integers(0, 12),  # customer
        st.integers(0, 80),  # day
        st.integers(1, 10_000),  # cents
    ),
    min_size=1,
    max_size=60,
)


def frame_of(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{c}" for c, _, _ in rows],
            "date": pd.to_datetime([pd.Timestamp(DAY0) + pd.Timedelta(days=d) for _, d, _ in rows]),
            "amount": [cents / 100 for _, _, cents in rows],
        }
    )


@settings(max_examples=60, deadline=None)
@given(rows=transactions, parts=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_partitions_of_whole_customers_concatenate_to_the_whole(rows, parts, seed) -> None:
    frame = frame_of(rows)
    rng = np.random.default_rng(seed)
    owner = {c: int(rng.integers(parts)) for c in frame["customer_id"].unique()}
    assigned = frame["customer_id"].map(owner).to_numpy()
    pieces = [frame[assigned == i] for i in range(parts)]
    whole = summarise(frame, "2024-02-15", "2024-03-10", "W")
    in_pieces = summarise_partitions(pieces, "2024-02-15", "2024-03-10")
    pd.testing.assert_frame_equal(in_pieces, whole, check_exact=True)
    by_hash = summarise_partitions(split_by_customer(frame, parts), "2024-02-15", "2024-03-10")
    pd.testing.assert_frame_equal(by_hash, whole, check_exact=True)


@settings(max_examples=60, deadline=None)
@given(rows=transactions)
def test_summaries_are_consistent(rows) -> None:
    frame = frame_of(rows)
    s = summarise(frame, "2024-02-15", "2024-03-10", "D")
    days = frame.assign(day=frame["date"].dt.normalize())
    cal = days[days["day"] <= pd.Timestamp("2024-02-15")]
    per_day = cal.groupby(["customer_id", "day"])["amount"].sum()
    assert s["frequency"].sum() == len(per_day) - per_day.index.get_level_values(0).nunique()
    assert ((s["recency"] >= 0) & (s["recency"] <= s["T"])).all()
    assert (s.loc[s["frequency"] == 0, "recency"] == 0).all()
    repeat = s[s["frequency"] > 0]
    assert np.allclose(
        repeat["monetary_value"] * repeat["frequency"] + repeat["first_amount"],
        repeat["calibration_amount"],
    )
    assert (s["frequency_holdout"] >= 0).all()
