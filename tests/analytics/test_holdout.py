"""The calibration/holdout report: CDNOW and a small case by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics import bgnbd
from analytics.bgnbd import BgNbdParams
from analytics.holdout import holdout_report
from core.errors import ValidationFailed
from tests.analytics.test_bgnbd import cdnow_fit
from tests.analytics.test_summaries import cdnow_summaries


def test_cdnow_holdout_by_calibration_frequency() -> None:
    """FHL 2005 Figure 4: weeks 40–78 against weeks 1–39, frequencies 0 … 6 and 7+."""
    report = holdout_report(cdnow_fit().params, cdnow_summaries())
    table = report.table
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert list(table["customers"]) == [1411, 439, 214, 100, 62, 38, 29, 64]
    assert list(table["actual"].round(3)) == [0.237, 0.697, 1.393, 1.56, 2.532, 2.947, 3.862, 6.359]
    assert list(table["predicted"].round(3)) == [
        0.225,
        0.523,
        1.044,
        1.52,
        2.164,
        2.654,
        3.504,
        6.157,
    ]
    assert report.customers == 2357
    assert report.duration == 39
    # 1,882 repeat purchase days in the holdout (1,959 transactions before merging same-day
    # ones); the model expects 1,653.4 given each customer's calibration history.
    assert report.actual_total == 1882 == table["actual_total"].sum()
    assert round(report.predicted_total, 1) == 1653.4
    assert table["predicted_total"].sum() == pytest.approx(report.predicted_total)
    assert np.allclose(table["predicted"] * table["customers"], table["predicted_total"])


def test_a_small_report_by_hand() -> None:
    params = BgNbdParams(r=1.0, alpha=2.0, a=1.5, b=3.0)
    summaries = pd.DataFrame(
        {
            "frequency": [0, 0, 1, 4],
            "recency": [0.0, 0.0, 2.0, 9.0],
            "T": [10.0, 5.0, 10.0, 10.0],
            "frequency_holdout": [0, 2, 1, 3],
            "duration_holdout": [8.0] * 4,
        },
        index=pd.Index(["a", "b", "c", "d"], name="customer_id"),
    )
    report = holdout_report(params, summaries, max_frequency=2)
    expected = bgnbd.conditional_expected_purchases(
        params, 8.0, summaries["frequency"], summaries["recency"], summaries["T"]
    )
    table = report.table
    assert list(table.index) == ["0", "1", "2+"]
    assert list(table["customers"]) == [2, 1, 1]
    assert list(table["actual"]) == [1.0, 1.0, 3.0]
    assert table.loc["0", "predicted"] == pytest.approx((expected[0] + expected[1]) / 2)
    assert table.loc["2+", "predicted"] == pytest.approx(expected[3])
    assert report.predicted_total == pytest.approx(expected.sum())
    assert report.actual_total == 6

    wide = holdout_report(params, summaries, max_frequency=6)
    assert wide.table.loc["2", "customers"] == 0
    assert np.isnan(wide.table["actual"].to_numpy()[2])
    rows = wide.records()
    assert rows[2] == {
        "frequency": "2",
        "customers": 0,
        "actual": None,
        "predicted": None,
        "actual_total": 0,
        "predicted_total": 0.0,
    }
    json.dumps(rows, allow_nan=False)


def test_summaries_without_a_holdout_are_refused() -> None:
    summaries = cdnow_summaries().drop(columns=["frequency_holdout"])
    with pytest.raises(ValidationFailed) as caught:
        holdout_report(cdnow_fit().params, summaries)
    assert caught.value.code == "value.holdout"
    with pytest.raises(ValidationFailed):
        holdout_report(cdnow_fit().params, cdnow_summaries(), max_frequency=0)
