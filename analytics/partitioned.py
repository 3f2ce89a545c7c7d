"""Per-customer summaries on Dask, for transaction logs past one machine.

`analytics.summaries.summarise` needs every transaction of a customer and nothing of anyone
else: the summaries of a log cut into parts that each hold *whole customers*, concatenated,
are the summaries of the whole log, row for row (its docstring; `summarise_partitions` on one
machine). So on Dask the log is shuffled by customer id (``DataFrame.shuffle``: every row of a
customer goes to the same output partition, by Dask's fixed hash of the id), `summarise` runs
on each partition (``map_partitions``) and the parts are concatenated and sorted by customer
id: the very frame `summarise` gives over the whole log, to the last bit.

**Why the row order is carried through the shuffle.** A day's spend is the sum of its
transactions in the order they come (`summarise` sorts stably), and floating-point addition
depends on that order in the last bit. A shuffle does not keep rows in their order (its
output partitions take pieces of every input partition in whatever order they arrive), so
before it every row is numbered (its input partition and its place there) and each output
partition is put back in that order before `summarise`. Each partition then holds its
customers' rows in exactly the order the whole log has them.

**Errors.** The dates, the unit and the columns are checked on the driver before any work
(by `summarise` itself on the empty frame Dask carries as metadata, so the messages are the
same). A bad row (an empty id, a date that is not a date) is found by the worker holding it;
it comes back as the same `ValidationFailed`, code, message and params (a `RetainError`
pickles whole across processes).

**Inputs.** `summarise_dask` takes a ``dask.dataframe.DataFrame`` or a pandas frame (cut into
partitions by ``from_pandas``; the result's index then has the frame's id dtype, where Dask
would turn text ids into its own string type). `summarise_parquet` reads a Parquet file or
folder (any layout, only the three columns) with ``dask.dataframe.read_parquet``, so local
folders and object stores (``s3://``, credentials from the workers' environment) both work.
`summaries` returns the lazy, still partitioned frame, for pipelines that stay on Dask.

`client`: a ``distributed.Client``; None runs on the current default scheduler (a Client
made earlier becomes the default). Every worker needs this package installed::

    from distributed import Client

    with Client("tcp://scheduler.example:8786") as client:
        s = summarise_parquet("s3://bucket/transactions/", "2026-06-30", client=client)
        fitted = analytics.bgnbd.fit(s["frequency"], s["recency"], s["T"])

The Dask imports stay inside the functions: they are heavy and only this path needs them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analytics.summaries import (
    REQUIRED_COLUMNS,
    DateLike,
    Unit,
    empty_summaries,
    summarise,
)
from core.errors import ValidationFailed

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

ROW_PART = "_retain_part"  # the input partition a row came from
ROW_POSITION = "_retain_position"  # its place in that partition

PathLike = str | os.PathLike[str]


def _number_rows(part: pd.DataFrame, partition_info: dict[str, Any] | None = None) -> pd.DataFrame:
    """The three columns of a partition and where each row stands in the whole log."""
    number = 0 if partition_info is None else int(partition_info["number"])
    out = part[list(REQUIRED_COLUMNS)].copy()
    out[ROW_PART] = np.full(len(out), number, dtype=np.int64)
    out[ROW_POSITION] = np.arange(len(out), dtype=np.int64)
    return out


def _meta(id_dtype: Any, holdout: bool) -> pd.DataFrame:
    """What `summarise` returns for nobody, indexed by the log's customer id dtype."""
    meta = empty_summaries(holdout)
    meta.index = pd.Index([], dtype=id_dtype, name="customer_id")
    return meta


def summarise_partition(
    part: pd.DataFrame,
    calibration_end: DateLike,
    holdout_end: DateLike | None,
    unit: Unit,
    id_dtype: Any,
) -> pd.DataFrame:
    """`summarise` of one shuffled partition (whole customers), its rows first put back in
    their order in the whole log (module docstring)."""
    order = np.lexsort((part[ROW_POSITION].to_numpy(), part[ROW_PART].to_numpy()))
    rows = part.iloc[order].drop(columns=[ROW_PART, ROW_POSITION])
    result = summarise(rows, calibration_end, holdout_end, unit)
    if result.empty:  # an empty frame's index has no dtype to speak of
        return _meta(id_dtype, holdout_end is not None)
    return result


def summaries(
    transactions: dd.DataFrame,
    calibration_end: DateLike,
    holdout_end: DateLike | None = None,
    unit: Unit = "W",
    *,
    npartitions: int | None = None,
) -> dd.DataFrame:
    """The summaries as a lazy Dask frame: one partition per shuffle output, each holding
    whole customers sorted by id (not sorted across partitions). `npartitions`: how many
    (default: as many as the input has). Raises ValidationFailed at once for a missing
    column, a bad date or unit."""
    if npartitions is not None and (
        isinstance(npartitions, bool) or not isinstance(npartitions, int) or npartitions < 1
    ):
        raise ValidationFailed(
            "value.parts",
            "The number of partitions must be a whole number ≥ 1: %(npartitions)s.",
            npartitions=repr(npartitions),
        )
    summarise(transactions._meta, calibration_end, holdout_end, unit)  # checks, on the driver
    id_dtype = transactions._meta["customer_id"].dtype
    numbered = transactions.map_partitions(  # type: ignore[no-untyped-call]
        _number_rows,
        meta=_number_rows(transactions._meta),
    )
    shuffled = numbered.shuffle("customer_id", npartitions=npartitions)
    lazy: dd.DataFrame = shuffled.map_partitions(
        summarise_partition,
        calibration_end,
        holdout_end,
        unit,
        id_dtype,
        meta=_meta(id_dtype, holdout_end is not None),
    )
    return lazy


def summarise_dask(
    transactions: dd.DataFrame | pd.DataFrame,
    calibration_end: DateLike,
    holdout_end: DateLike | None = None,
    unit: Unit = "W",
    *,
    client: Client | None = None,
    npartitions: int | None = None,
) -> pd.DataFrame:
    """`summarise` computed on Dask: the same frame, sorted by customer id. A pandas frame is
    cut into `npartitions` (default 8) by ``from_pandas`` first."""
    import dask.dataframe as dd

    id_dtype = None
    frame: dd.DataFrame
    if isinstance(transactions, pd.DataFrame):
        id_dtype = (
            transactions["customer_id"].dtype if "customer_id" in transactions.columns else None
        )
        frame = dd.from_pandas(  # type: ignore[no-untyped-call]
            transactions, npartitions=npartitions or 8, sort=False
        )
    else:
        frame = transactions
    lazy = summaries(frame, calibration_end, holdout_end, unit, npartitions=npartitions)
    # None: the current default scheduler. A worker's ValidationFailed comes back whole.
    result = lazy.compute(scheduler=client)  # type: ignore[no-untyped-call]
    if not isinstance(result, pd.DataFrame):
        raise TypeError(f"the Dask graph returned {type(result).__name__}, not a DataFrame")
    if result.empty:
        result = empty_summaries(holdout_end is not None)
    else:
        result = result.sort_index(kind="stable")
    if id_dtype is not None and result.index.dtype != id_dtype and not result.empty:
        result.index = result.index.astype(id_dtype)
    result.index.name = "customer_id"
    return result


def summarise_parquet(
    path: PathLike | list[str],
    calibration_end: DateLike,
    holdout_end: DateLike | None = None,
    unit: Unit = "W",
    *,
    client: Client | None = None,
    npartitions: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """`summarise_dask` of a Parquet file, folder or list of files holding at least the
    columns ``customer_id``, ``date``, ``amount`` (others are not read)."""
    import dask.dataframe as dd

    source: Any = [os.fspath(p) for p in path] if isinstance(path, list) else os.fspath(path)
    try:
        frame = dd.read_parquet(
            source, columns=list(REQUIRED_COLUMNS), storage_options=storage_options
        )
    except (ValueError, KeyError) as exc:
        raise ValidationFailed(
            "value.columns",
            "The Parquet data cannot be read as customer_id, date, amount: %(error)s",
            error=str(exc),
        ) from None
    return summarise_dask(
        frame, calibration_end, holdout_end, unit, client=client, npartitions=npartitions
    )
