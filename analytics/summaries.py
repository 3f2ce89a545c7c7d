"""Per-customer summaries of a transaction log: what the BG/NBD and Gamma-Gamma models read.

The input is a frame of transactions, one row each: ``customer_id``, ``date``, ``amount``
(and optionally ``category``, which the summaries do not use). `summarise` turns it into one
row per customer, indexed by ``customer_id``:

=====================  ==========================================================================
column                 meaning
=====================  ==========================================================================
``frequency``          x: the number of *repeat purchase days* in the calibration period, that is
                       the days with a purchase after the first one (several transactions on one
                       day are one purchase; the first day is not a repeat)
``recency``            t_x: from the first purchase day to the last one in the calibration period,
                       in the chosen unit (0 when x = 0)
``T``                  the customer's age: from the first purchase day to the calibration end
``monetary_value``     mean spend of the repeat purchase days in the calibration period (a day's
                       spend is the sum of its transactions; the first day is left out); NaN
                       when x = 0. This is the m̄_x of the Gamma-Gamma model
``first_purchase``     the first purchase day (datetime64, midnight)
``first_amount``       the spend of the first purchase day
``calibration_amount`` all spend in the calibration period, first day included
``frequency_holdout``  with a holdout end: purchase days in (calibration end, holdout end]
``amount_holdout``     their spend
``duration_holdout``   the holdout's length in the unit (the same for every customer)
=====================  ==========================================================================

**Days and units.** Dates are calendar days: a time of day is dropped and a timezone-aware
timestamp counts on its own wall-clock day. Durations are whole days divided by the unit's
length: ``"D"`` days, ``"W"`` weeks = days / 7 (as Fader, Hardie & Lee do for CDNOW). The
calibration end and the holdout end are inclusive days: a purchase dated on the calibration
end belongs to the calibration period, and T is counted to that day (a customer who first
bought on 1997-01-01 has T = 272 / 7 = 38.86 weeks at a calibration end of 1997-09-30).

**Who is summarised.** Customers whose first purchase is on or before the calibration end.
A customer who first buys in the holdout period is not part of the calibrated cohort and is
left out (so the holdout report compares like with like). Transactions after the holdout end
(after the calibration end when there is no holdout) are ignored.

**One pass, partitionable.** The log is sorted once by (customer, day) (a stable sort, so
the rows of a day keep their order); one sweep over the sorted rows merges same-day
transactions and a second over the merged days gives each customer's figures
(``np.add.reduceat`` over contiguous runs). About 8 s for 10 million rows of a million
customers on one core. Nothing depends on another customer, so the summaries of a log cut
into parts that each hold *whole customers* (`split_by_customer`), concatenated, are the
summaries of the whole log, row for row: the same function can run per partition (e.g.
``dask.dataframe.map_partitions`` after a shuffle by customer) and the results are
concatenated (`summarise_partitions`). The tests check it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import ValidationFailed
from core.text import N_

Unit = Literal["D", "W"]
UNIT_DAYS: dict[str, int] = {"D": 1, "W": 7}
UNIT_NAMES: dict[str, str] = {"D": "days", "W": "weeks (days / 7)"}
REQUIRED_COLUMNS = ("customer_id", "date", "amount")
SUMMARY_COLUMNS = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "first_purchase",
    "first_amount",
    "calibration_amount",
)
HOLDOUT_COLUMNS = ("frequency_holdout", "amount_holdout", "duration_holdout")
# The key pandas uses by default, spelled out so a customer's part never changes.
HASH_KEY = "0123456789123456"

DateLike = date | str

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def check_unit(unit: str) -> Unit:
    """`unit` when it is one of the units, else a ValidationFailed that names them."""
    for known in get_args(Unit):
        if unit == known:
            return known  # type: ignore[no-any-return]
    raise ValidationFailed(
        "value.unit", "Unknown time unit %(unit)s: use D (days) or W (weeks).", unit=repr(unit)
    )


def to_day(value: DateLike, label: str) -> date:
    """A calendar day from a date, a datetime (its own day) or an ISO text 'YYYY-MM-DD'."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        raise ValidationFailed(
            "value.date",
            "%(label)s '%(value)s' is not a date like 1997-09-30.",
            label=label,
            value=value[:24],
        )
    raise ValidationFailed(
        "value.date",
        "%(label)s must be a date, not %(type)s.",
        label=label,
        type=type(value).__name__,
    )


def _epoch_day(day: date) -> int:
    return int(np.datetime64(day, "D").astype(np.int64))


def _days(values: pd.Series) -> Int64Array:
    """Calendar days (since 1970-01-01) of a column of dates or timestamps."""
    try:
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            stamps = values
        else:
            stamps = pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValidationFailed(
            "value.date",
            "The date column holds a value that is not a date: %(error)s",
            error=str(exc),
        ) from None
    if stamps.isna().any():
        raise ValidationFailed("value.date", "Every transaction needs a date; one is empty.")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)  # its own wall-clock day
    days = stamps.dt.normalize().to_numpy(dtype="datetime64[D]").astype(np.int64)
    return np.asarray(days, dtype=np.int64)


def _amounts(values: pd.Series) -> FloatArray:
    try:
        amounts = np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            "value.amount",
            "The amount column holds a value that is not a number: %(error)s",
            error=str(exc),
        ) from None
    if not np.isfinite(amounts).all():
        raise ValidationFailed(
            "value.amount", "Every transaction needs a finite amount; one is empty or not a number."
        )
    return amounts


def empty_summaries(holdout: bool = False) -> pd.DataFrame:
    """The frame `summarise` returns for a log with nobody in it."""
    columns: dict[str, pd.Series] = {
        "frequency": pd.Series([], dtype=np.int64),
        "recency": pd.Series([], dtype=np.float64),
        "T": pd.Series([], dtype=np.float64),
        "monetary_value": pd.Series([], dtype=np.float64),
        "first_purchase": pd.Series([], dtype="datetime64[ns]"),
        "first_amount": pd.Series([], dtype=np.float64),
        "calibration_amount": pd.Series([], dtype=np.float64),
    }
    if holdout:
        columns["frequency_holdout"] = pd.Series([], dtype=np.int64)
        columns["amount_holdout"] = pd.Series([], dtype=np.float64)
        columns["duration_holdout"] = pd.Series([], dtype=np.float64)
    frame = pd.DataFrame(columns)
    frame.index.name = "customer_id"
    return frame


def summarise(
    transactions: pd.DataFrame,
    calibration_end: DateLike,
    holdout_end: DateLike | None = None,
    unit: Unit = "W",
) -> pd.DataFrame:
    """One row per customer of the calibrated cohort (see the module docstring), sorted by
    customer id. Raises ValidationFailed for a missing column, an empty customer id, date or
    amount, an unknown unit or a holdout end not after the calibration end."""
    step = UNIT_DAYS[check_unit(unit)]
    missing = [c for c in REQUIRED_COLUMNS if c not in transactions.columns]
    if missing:
        raise ValidationFailed(
            "value.columns",
            (
                "The transactions lack column(s) %(missing)s; expected "
                "%(required_columns)s[, category]."
            ),
            missing=", ".join(missing),
            required_columns=", ".join(REQUIRED_COLUMNS),
        )
    cal_day = _epoch_day(to_day(calibration_end, N_("The calibration end")))
    hold_day: int | None = None
    if holdout_end is not None:
        hold_day = _epoch_day(to_day(holdout_end, N_("The holdout end")))
        if hold_day <= cal_day:
            raise ValidationFailed(
                "value.holdout_end", "The holdout end must be after the calibration end."
            )
    if transactions.empty:
        return empty_summaries(holdout_end is not None)

    ids = transactions["customer_id"]
    if ids.isna().any():
        raise ValidationFailed(
            "value.customer_id", "Every transaction needs a customer id; one is empty."
        )
    codes, uniques = pd.factorize(ids, sort=True)  # code order = customer id order
    days = _days(transactions["date"])
    amounts = _amounts(transactions["amount"])

    last_day = cal_day if hold_day is None else hold_day
    keep = days <= last_day
    c, d, a = codes[keep].astype(np.int64), days[keep], amounts[keep]
    if len(c) == 0:
        return empty_summaries(holdout_end is not None)
    # Same-day transactions are one purchase: a day's spend is their sum. One stable sort by
    # (customer, day); rows of a day keep their order, so a day's sum does not depend on
    # which other customers share the frame.
    order = _order(c, d)
    c, d, a = c[order], d[order], a[order]
    new_day = np.empty(len(c), dtype=bool)
    new_day[0] = True
    new_day[1:] = (c[1:] != c[:-1]) | (d[1:] != d[:-1])
    day_starts = np.flatnonzero(new_day)
    mc, md, ma = c[day_starts], d[day_starts], np.add.reduceat(a, day_starts)

    cal = md <= cal_day
    cc, cd, ca = mc[cal], md[cal], ma[cal]
    if len(cc) == 0:
        return empty_summaries(holdout_end is not None)
    new_customer = np.empty(len(cc), dtype=bool)
    new_customer[0] = True
    new_customer[1:] = cc[1:] != cc[:-1]
    starts = np.flatnonzero(new_customer)
    ends = np.append(starts[1:], len(cc))
    customer_codes = cc[starts]
    first = cd[starts]
    last = cd[ends - 1]
    n_days = ends - starts
    total = np.add.reduceat(ca, starts)
    first_amount = ca[starts]
    repeats = ca.copy()
    repeats[starts] = 0.0
    repeat_amount = np.add.reduceat(repeats, starts)

    frequency = n_days - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_amount / np.maximum(frequency, 1), np.nan)
    result = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last - first) / step,
            "T": (cal_day - first) / step,
            "monetary_value": monetary,
            "first_purchase": first.astype("datetime64[D]").astype("datetime64[ns]"),
            "first_amount": first_amount,
            "calibration_amount": total,
        },
        index=pd.Index(uniques.take(customer_codes), name="customer_id"),
    )
    if hold_day is not None:
        held = ~cal
        slot = np.searchsorted(customer_codes, mc[held])  # the cohort's row of each day
        known = slot < len(customer_codes)
        known[known] = customer_codes[slot[known]] == mc[held][known]
        counts = np.bincount(slot[known], minlength=len(customer_codes))
        spend = np.bincount(slot[known], weights=ma[held][known], minlength=len(customer_codes))
        result["frequency_holdout"] = counts.astype(np.int64)
        result["amount_holdout"] = spend.astype(np.float64)
        result["duration_holdout"] = float(hold_day - cal_day) / step
    return result


def _order(c: Int64Array, d: Int64Array) -> npt.NDArray[np.intp]:
    """A stable order by (customer code, day): one argsort of a combined key when it fits in
    63 bits, else a lexsort."""
    low = int(d.min())
    span = int(d.max()) - low + 1
    if (int(c.max()) + 1) * span < 2**62:
        return np.argsort(c * span + (d - low), kind="stable")
    return np.lexsort((d, c))


def split_by_customer(transactions: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    """The log cut into `parts` frames that each hold whole customers (by a fixed hash of the
    customer id, the same in every process), rows in their original order."""
    if parts < 1:
        raise ValidationFailed("value.parts", "The number of parts must be at least 1.")
    if transactions.empty:
        return [transactions.iloc[0:0] for _ in range(parts)]
    codes, uniques = pd.factorize(transactions["customer_id"])
    keys = np.array([str(v) for v in uniques.tolist()], dtype=object)
    bucket_of_id = pd.util.hash_array(keys, hash_key=HASH_KEY, categorize=False) % np.uint64(parts)
    bucket = bucket_of_id.astype(np.int64)[codes]
    return [transactions[bucket == i] for i in range(parts)]


def summarise_partitions(
    partitions: Iterable[pd.DataFrame],
    calibration_end: DateLike,
    holdout_end: DateLike | None = None,
    unit: Unit = "W",
) -> pd.DataFrame:
    """`summarise` of each partition (each holding whole customers), concatenated and sorted by
    customer id: equal to `summarise` of the whole log."""
    frames = [
        summarise(part, calibration_end, holdout_end, unit) for part in partitions if not part.empty
    ]
    if not frames:
        return empty_summaries(holdout_end is not None)
    return pd.concat(frames).sort_index(kind="stable")
