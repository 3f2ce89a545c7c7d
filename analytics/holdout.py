"""The calibration/holdout check of the BG/NBD: predicted against actual repeat purchases in
the holdout period, by the number of repeat purchases in the calibration period (FHL 2005,
Figure 4: frequencies 0, 1, …, 6 and 7+).

For each customer of the calibrated cohort (`analytics.summaries` with a holdout end), the
prediction is E[Y(t*) | x, t_x, T] with t* the holdout's length (`bgnbd`); the actual is the
number of purchase days in the holdout (same-day transactions merged, as in calibration).
The table gives, per calibration frequency, the number of customers and the mean and total
of both, ready for a chart or a table; the report adds the totals over everyone.

On CDNOW (calibration to 1997-09-30, holdout to 1998-06-30, weeks) the actual means per bin
are 0.237, 0.697, 1.393, 1.560, 2.532, 2.947, 3.862 and 6.359 (1,411, 439, 214, 100, 62, 38,
29 and 64 customers): 1,882 repeat purchase days in weeks 40–78 against 1,653.4 expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analytics.bgnbd import BgNbdParams, conditional_expected_purchases
from core.errors import ValidationFailed

NEEDED = ("frequency", "recency", "T", "frequency_holdout", "duration_holdout")
TABLE_COLUMNS = ("customers", "actual", "predicted", "actual_total", "predicted_total")


@dataclass(frozen=True, slots=True)
class HoldoutReport:
    """`table`: one row per calibration-frequency bin (index ``frequency``: "0", "1", …,
    "7+"; every bin present, means NaN where a bin has no customers), columns ``customers``,
    ``actual`` and ``predicted`` (means per customer), ``actual_total``,
    ``predicted_total``. The totals are over every customer."""

    table: pd.DataFrame
    customers: int
    actual_total: int
    predicted_total: float
    duration: float  # the holdout's length in the model's time unit

    def records(self) -> list[dict[str, Any]]:
        """The table as JSON-ready rows (NaN as None), in bin order."""
        rows: list[dict[str, Any]] = []
        for label, row in self.table.iterrows():
            entry: dict[str, Any] = {"frequency": str(label)}
            for column in TABLE_COLUMNS:
                value = row[column]
                if column == "customers" or column == "actual_total":
                    entry[column] = int(value)
                else:
                    number = float(value)
                    entry[column] = None if math.isnan(number) else number
            rows.append(entry)
        return rows


def bin_labels(max_frequency: int) -> list[str]:
    return [str(k) for k in range(max_frequency)] + [f"{max_frequency}+"]


def holdout_report(
    params: BgNbdParams, summaries: pd.DataFrame, *, max_frequency: int = 7
) -> HoldoutReport:
    """Predicted against actual holdout purchases by calibration frequency (0 … max−1 and
    max+). `summaries` must come from `summarise` with a holdout end."""
    missing = [c for c in NEEDED if c not in summaries.columns]
    if missing:
        raise ValidationFailed(
            "value.holdout",
            "The summaries lack %(missing)s: summarise with a holdout end first.",
            missing=", ".join(missing),
        )
    if isinstance(max_frequency, bool) or not isinstance(max_frequency, int) or max_frequency < 1:
        raise ValidationFailed("value.max_frequency", "The last bin must be a whole number ≥ 1.")
    x = summaries["frequency"].to_numpy(dtype=np.float64)
    predicted = conditional_expected_purchases(
        params,
        summaries["duration_holdout"].to_numpy(dtype=np.float64),
        x,
        summaries["recency"].to_numpy(dtype=np.float64),
        summaries["T"].to_numpy(dtype=np.float64),
    )
    actual = summaries["frequency_holdout"].to_numpy(dtype=np.int64)
    labels = bin_labels(max_frequency)
    bins = np.minimum(x, max_frequency).astype(np.int64)
    customers = np.bincount(bins, minlength=max_frequency + 1)
    actual_total = np.bincount(bins, weights=actual, minlength=max_frequency + 1)
    predicted_total = np.bincount(bins, weights=predicted, minlength=max_frequency + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        actual_mean = np.where(customers > 0, actual_total / customers, np.nan)
        predicted_mean = np.where(customers > 0, predicted_total / customers, np.nan)
    table = pd.DataFrame(
        {
            "customers": customers.astype(np.int64),
            "actual": actual_mean,
            "predicted": predicted_mean,
            "actual_total": actual_total.round().astype(np.int64),
            "predicted_total": predicted_total,
        },
        index=pd.Index(labels, name="frequency"),
    )
    durations = summaries["duration_holdout"].to_numpy(dtype=np.float64)
    return HoldoutReport(
        table=table,
        customers=len(summaries),
        actual_total=int(actual.sum()),
        predicted_total=float(predicted.sum()),
        duration=float(durations[0]) if len(durations) else 0.0,
    )
