"""Sufficient statistics from partitioned data: Parquet on one machine, or Dask past it.

Every model needs only `attribution.stats.PathStats`, and `PathStats` of disjoint sets of
*whole members* add up exactly (integer counts, Decimal values; see `attribution.stats`).
So the touchpoints and conversions are cut into partitions by member, `stats.path_stats`
runs on each partition, and the results are summed: the sum is the very object
`path_stats` gives over everything, so every model gives the same numbers to the last digit.

**Why partitions must hold whole members.** The journey rules (`attribution.paths`) work on
one member's whole timeline: a conversion takes the touches before it within its window,
touches outside it form a null journey, touches after the last conversion another. Cut a
member's rows in two and a journey is split: one half becomes a null journey and the other a
shorter converting one, and the counts change. Cutting by rows, by time or by file size
would do that; cutting by a hash of the member id cannot, because every row of a member,
touchpoint or conversion, hashes to the same partition.

**The hash.** `member_buckets`: ``pandas.util.hash_array`` (SipHash with pandas' fixed key,
the same in every process and on every machine, unlike Python's salted ``hash``) of the
member id, modulo the number of buckets. Ids are hashed as the journey rules group them:
as 64-bit integers when both frames hold integer ids, otherwise as stripped text. Rows keep
their order inside a bucket (a stable split), so touches at the same instant keep the order
they had, which is the journey rules' tie-break.

**On disk** (`write_partitioned`, read back with `Layout.open`)::

    root/_layout.json                  {"format": ..., "version": 1, "buckets": B}
    root/touchpoints/part-00000.parquet ... part-{B-1}.parquet
    root/conversions/part-00000.parquet ... part-{B-1}.parquet

File i of both folders holds exactly the members of bucket i; every file exists, even with no
rows, so the folders pair up file by file. Each side has one schema (built from the whole
frame before the split, so a Decimal value column has one scale in every file). Readers
re-check the hash of every member they read (`ValidationFailed` names the partition), so a
file from elsewhere cannot silently split journeys.

**One machine:** `layout_stats` reads one pair of files at a time (memory bounded by a bucket,
not the data) and sums; `parquet_stats` takes any Parquet file or folder of touchpoints and of
conversions, splits them by the same hash in memory and sums; `frames_stats` does the same
for frames already in memory (e.g. read from the database).

**Dask:** `dask_stats` reads the layout with ``dask.dataframe.read_parquet`` (one partition per
file), turns each pair of partitions into a ``dask.delayed`` call of the same per-partition
function, and adds the results pairwise in a tree on the workers, so only one `PathStats`
travels back. Without a client it runs on whatever scheduler is current (a
``distributed.Client`` made earlier becomes the default). For a real cluster::

    from distributed import Client

    with Client("tcp://scheduler.example:8786") as client:  # the scheduler's address
        stats = dask_stats("s3://bucket/attribution/2026-01", client=client)

Every worker must have this package installed (same version) and be able to read `root`: an
object store URL (``s3://``, ``gs://``, credentials from the workers' environment; the
driver reads `_layout.json` through ``pyarrow.fs``) or a folder mounted at the same path on
every machine. The Dask import stays inside the function: it is heavy and only this path needs
it.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.fs as pafs  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from attribution.paths import (
    CONVERSION_COLUMNS,
    TOUCH_COLUMNS,
    Lookback,
    Unit,
    _member_ids,
    _require,
)
from attribution.stats import PathStats, path_stats
from core.errors import ValidationFailed

if TYPE_CHECKING:
    from distributed import Client

DEFAULT_BUCKETS = 16
LAYOUT_FORMAT = "retain.attribution.partitions"
LAYOUT_VERSION = 1
MANIFEST = "_layout.json"
TOUCHPOINTS_DIR = "touchpoints"
CONVERSIONS_DIR = "conversions"
# pandas' own default key, spelled out: the bucket of a member must never change.
HASH_KEY = "0123456789123456"

Frames = tuple[pd.DataFrame, pd.DataFrame]
T = TypeVar("T")


def _check_buckets(buckets: int) -> None:
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
        raise ValidationFailed(
            "attribution.partition_invalid",
            "The number of partitions must be a whole number ≥ 1: %(buckets)s.",
            buckets=repr(buckets),
        )


# --- The hash -------------------------------------------------------------------------------


def member_buckets(
    touchpoints: pd.DataFrame, conversions: pd.DataFrame, buckets: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The bucket (0..buckets−1) of every row of both frames, by a hash of the member id."""
    _check_buckets(buckets)
    _require(touchpoints, ("member",), "touchpoints")
    _require(conversions, ("member",), "conversions")
    ids = _member_ids(touchpoints, conversions)  # integers iff both columns are: the rule's
    if ids.dtype.kind in "iu":
        keys: npt.NDArray[Any] = ids.astype(np.int64)
    else:  # each distinct id stripped once (millions of rows, far fewer members)
        codes, uniques = pd.factorize(ids)
        if (codes < 0).any():
            raise ValidationFailed(
                "attribution.partition_invalid", "Every row needs a member; one is empty."
            )
        stripped = np.array([str(v).strip() for v in uniques.tolist()], dtype=object)
        keys = stripped[codes]
    hashes = pd.util.hash_array(keys, hash_key=HASH_KEY, categorize=False)
    bucket = (hashes % np.uint64(buckets)).astype(np.int64)
    n = len(touchpoints)
    return bucket[:n], bucket[n:]


def _split_order(
    bucket: npt.NDArray[np.int64], buckets: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """A stable order grouping rows by bucket, and where each bucket starts (buckets + 1)."""
    order = np.argsort(bucket, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(bucket, minlength=buckets))])
    return order, bounds.astype(np.int64)


def split_by_member(
    touchpoints: pd.DataFrame, conversions: pd.DataFrame, buckets: int = DEFAULT_BUCKETS
) -> list[Frames]:
    """(touchpoints, conversions) of each bucket, rows in their original order."""
    touch_bucket, conv_bucket = member_buckets(touchpoints, conversions, buckets)
    t_order, t_bounds = _split_order(touch_bucket, buckets)
    c_order, c_bounds = _split_order(conv_bucket, buckets)
    touch_sorted = touchpoints.iloc[t_order]
    conv_sorted = conversions.iloc[c_order]
    return [
        (
            touch_sorted.iloc[t_bounds[i] : t_bounds[i + 1]],
            conv_sorted.iloc[c_bounds[i] : c_bounds[i + 1]],
        )
        for i in range(buckets)
    ]


# --- The per-partition function -------------------------------------------------------------


def partition_stats(
    touchpoints: pd.DataFrame,
    conversions: pd.DataFrame,
    bucket: int,
    buckets: int,
    *,
    unit: Unit = "channel",
    lookback: Lookback | None = None,
    collapse_repeats: bool = False,
) -> PathStats:
    """`stats.path_stats` of one partition, after checking it holds only bucket `bucket`.

    The check is what makes the sum trustworthy: a member whose rows were put elsewhere
    would have its journeys split (module docstring). It costs one hash per row.
    """
    touch_bucket, conv_bucket = member_buckets(touchpoints, conversions, buckets)
    stray = int((touch_bucket != bucket).sum() + (conv_bucket != bucket).sum())
    if stray:
        raise ValidationFailed(
            "attribution.partition_invalid",
            (
                "Partition %(bucket)s of %(buckets)s holds %(stray)s row(s) of members "
                "that hash to another partition; summing it would split their "
                "journeys. Write the data with "
                "attribution.partitioned.write_partitioned (or the same member hash)."
            ),
            bucket=bucket,
            buckets=buckets,
            stray=stray,
        )
    return path_stats(
        touchpoints,
        conversions,
        unit=unit,
        lookback=lookback,
        collapse_repeats=collapse_repeats,
    )


def _tree(items: list[T], combine: Callable[[T, T], T]) -> T:
    """Pairwise reduction of a non-empty list: ⌈log₂ n⌉ rounds, one object at the end (on
    Dask each combination is a task, so the rounds run on the workers)."""
    while len(items) > 1:
        items = [
            combine(items[i], items[i + 1]) if i + 1 < len(items) else items[i]
            for i in range(0, len(items), 2)
        ]
    return items[0]


def _sum(parts: Sequence[PathStats]) -> PathStats:
    """`PathStats.__add__` in a pairwise tree: the same exact sum as `sum(parts)` (addition is
    associative and commutative), without copying the growing total once per part."""
    return _tree(list(parts), operator.add) if parts else PathStats()


def frames_stats(
    touchpoints: pd.DataFrame,
    conversions: pd.DataFrame,
    *,
    buckets: int = DEFAULT_BUCKETS,
    unit: Unit = "channel",
    lookback: Lookback | None = None,
    collapse_repeats: bool = False,
) -> PathStats:
    """Frames in memory, split by member into `buckets`, each through `path_stats`, summed.

    Equal to `path_stats(touchpoints, conversions, ...)`; the split bounds the working memory
    of one pass (the journey table of a bucket, not of everything).
    """
    return _sum(
        [
            path_stats(
                touch,
                conv,
                unit=unit,
                lookback=lookback,
                collapse_repeats=collapse_repeats,
            )
            for touch, conv in split_by_member(touchpoints, conversions, buckets)
        ]
    )


# --- Parquet --------------------------------------------------------------------------------

PathLike = str | os.PathLike[str]


def _location(root: PathLike) -> str:
    """A URL stays as given; a local path becomes absolute (workers may run elsewhere)."""
    text = os.fspath(root)
    if "://" in text:
        return text.rstrip("/")
    return str(Path(text).resolve())


def _filesystem(location: str) -> tuple[Any, str]:
    filesystem, path = pafs.FileSystem.from_uri(location)
    return filesystem, str(path)


@dataclass(frozen=True)
class Layout:
    """A folder (or object store prefix) in the bucketed layout of the module docstring."""

    root: str
    buckets: int

    def touchpoints_file(self, bucket: int) -> str:
        return f"{self.root}/{TOUCHPOINTS_DIR}/part-{bucket:05d}.parquet"

    def conversions_file(self, bucket: int) -> str:
        return f"{self.root}/{CONVERSIONS_DIR}/part-{bucket:05d}.parquet"

    @property
    def touchpoints_files(self) -> list[str]:
        return [self.touchpoints_file(i) for i in range(self.buckets)]

    @property
    def conversions_files(self) -> list[str]:
        return [self.conversions_file(i) for i in range(self.buckets)]

    @classmethod
    def open(cls, root: PathLike) -> Layout:
        """Read `_layout.json` and check that every file of both sides exists."""
        location = _location(root)
        filesystem, base = _filesystem(location)
        try:
            with filesystem.open_input_stream(f"{base}/{MANIFEST}") as stream:
                manifest = json.loads(stream.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise ValidationFailed(
                "attribution.partition_invalid",
                (
                    "%(location)s is not a partitioned attribution folder (no readable "
                    "%(manifest)s)."
                ),
                location=location,
                manifest=MANIFEST,
            ) from exc
        if (
            not isinstance(manifest, dict)
            or manifest.get("format") != LAYOUT_FORMAT
            or manifest.get("version") != LAYOUT_VERSION
        ):
            raise ValidationFailed(
                "attribution.partition_invalid",
                "%(location)s/%(manifest)s is not a version %(layout_version)s layout.",
                location=location,
                manifest=MANIFEST,
                layout_version=LAYOUT_VERSION,
            )
        buckets = manifest.get("buckets")
        if not isinstance(buckets, int) or isinstance(buckets, bool) or buckets < 1:
            raise ValidationFailed(
                "attribution.partition_invalid",
                "%(location)s/%(manifest)s has no valid number of buckets.",
                location=location,
                manifest=MANIFEST,
            )
        layout = cls(location, buckets)
        wanted = [
            f"{base}/{side}/part-{i:05d}.parquet"
            for side in (TOUCHPOINTS_DIR, CONVERSIONS_DIR)
            for i in range(buckets)
        ]
        missing = [
            path
            for path, info in zip(wanted, filesystem.get_file_info(wanted), strict=True)
            if info.type != pafs.FileType.File
        ]
        if missing:
            raise ValidationFailed(
                "attribution.partition_invalid",
                "%(location)s lacks %(count)s partition file(s), e.g. %(missing)s.",
                location=location,
                count=len(missing),
                missing=missing[0],
            )
        return layout

    def read(self, bucket: int) -> Frames:
        """The (touchpoints, conversions) of one bucket, as pandas frames."""
        return (
            _read_table(self.touchpoints_file(bucket)).to_pandas(),
            _read_table(self.conversions_file(bucket)).to_pandas(),
        )


def _read_table(location: str) -> Any:
    filesystem, path = _filesystem(location)
    return pq.read_table(path, filesystem=filesystem)


def _table(frame: pd.DataFrame) -> Any:
    return pa.Table.from_pandas(frame, preserve_index=False)


def write_partitioned(
    touchpoints: pd.DataFrame,
    conversions: pd.DataFrame,
    root: PathLike,
    *,
    buckets: int = DEFAULT_BUCKETS,
) -> Layout:
    """Write both frames to `root` in the bucketed layout (module docstring); returns it.

    Columns are written as they are (at least `member`, `channel`, `at` and `member`, `at`,
    `value`, `kind`; `campaign` too for the campaign unit). A Decimal value column becomes
    one decimal128 column at its largest scale: 2 comes back as 2.00, equal in value, but
    the credits' precision follows the total's places, so write money at its minor units
    (as the database's numeric(…, 2) does). Existing part files are overwritten; `root` is
    meant to be written once.
    """
    _check_buckets(buckets)
    _require(touchpoints, TOUCH_COLUMNS, "touchpoints")
    _require(conversions, CONVERSION_COLUMNS, "conversions")
    touch_bucket, conv_bucket = member_buckets(touchpoints, conversions, buckets)
    location = _location(root)
    filesystem, base = _filesystem(location)
    for side, frame, bucket in (
        (TOUCHPOINTS_DIR, touchpoints, touch_bucket),
        (CONVERSIONS_DIR, conversions, conv_bucket),
    ):
        table = _table(frame)  # one schema for every file of the side
        order, bounds = _split_order(bucket, buckets)
        grouped = table.take(pa.array(order))
        filesystem.create_dir(f"{base}/{side}", recursive=True)
        for i in range(buckets):
            part = grouped.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i]))
            pq.write_table(part, f"{base}/{side}/part-{i:05d}.parquet", filesystem=filesystem)
    manifest = {"format": LAYOUT_FORMAT, "version": LAYOUT_VERSION, "buckets": buckets}
    with filesystem.open_output_stream(f"{base}/{MANIFEST}") as stream:
        stream.write(json.dumps(manifest).encode("utf-8"))
    return Layout(location, buckets)


def layout_stats(
    root: PathLike | Layout,
    *,
    unit: Unit = "channel",
    lookback: Lookback | None = None,
    collapse_repeats: bool = False,
) -> PathStats:
    """One machine, one bucket at a time: read a pair of files, `partition_stats`, sum."""
    layout = root if isinstance(root, Layout) else Layout.open(root)
    parts = []
    for i in range(layout.buckets):
        touch, conv = layout.read(i)
        parts.append(
            partition_stats(
                touch,
                conv,
                i,
                layout.buckets,
                unit=unit,
                lookback=lookback,
                collapse_repeats=collapse_repeats,
            )
        )
    return _sum(parts)


def parquet_stats(
    touchpoints: PathLike,
    conversions: PathLike,
    *,
    buckets: int = DEFAULT_BUCKETS,
    unit: Unit = "channel",
    lookback: Lookback | None = None,
    collapse_repeats: bool = False,
) -> PathStats:
    """Any Parquet file or folder of touchpoints and of conversions (not necessarily in the
    bucketed layout): read both, split by member hash in memory (`frames_stats`), sum."""
    return frames_stats(
        _read_table(_location(touchpoints)).to_pandas(),
        _read_table(_location(conversions)).to_pandas(),
        buckets=buckets,
        unit=unit,
        lookback=lookback,
        collapse_repeats=collapse_repeats,
    )


# --- Dask -----------------------------------------------------------------------------------


def dask_stats(
    root: PathLike | Layout,
    *,
    client: Client | None = None,
    unit: Unit = "channel",
    lookback: Lookback | None = None,
    collapse_repeats: bool = False,
) -> PathStats:
    """The bucketed layout on Dask: `partition_stats` per pair of partitions, summed.

    ``read_parquet`` is asked for one partition per file (``split_row_groups=False``) and for
    every column (a column subset lets Dask fuse small files into fewer partitions, which
    would pair touchpoints of some buckets with conversions of others); the counts are
    checked against the layout, and each partition re-checks its members' hash, so a pairing
    Dask did not keep fails loudly instead of splitting journeys. `client`: a
    ``distributed.Client`` (module docstring); None runs on the current default scheduler.
    """
    import dask.dataframe as dd
    from dask.delayed import delayed

    layout = root if isinstance(root, Layout) else Layout.open(root)
    touch = dd.read_parquet(layout.touchpoints_files, split_row_groups=False, index=False)
    conv = dd.read_parquet(layout.conversions_files, split_row_groups=False, index=False)
    touch_parts = touch.to_delayed()
    conv_parts = conv.to_delayed()
    if not len(touch_parts) == len(conv_parts) == layout.buckets:
        raise ValidationFailed(
            "attribution.partition_invalid",
            (
                "Dask read %(count)s touchpoint and %(count2)s conversion partitions "
                "from %(buckets)s buckets; they must pair up one to one."
            ),
            count=len(touch_parts),
            count2=len(conv_parts),
            buckets=layout.buckets,
        )
    per_partition = delayed(partition_stats, pure=True)
    add = delayed(operator.add, pure=True)
    parts = [
        per_partition(
            t,
            c,
            i,
            layout.buckets,
            unit=unit,
            lookback=lookback,
            collapse_repeats=collapse_repeats,
        )
        for i, (t, c) in enumerate(zip(touch_parts, conv_parts, strict=True))
    ]
    total = _tree(parts, add)
    result = total.compute(scheduler=client)  # None: the current default scheduler
    if not isinstance(result, PathStats):
        raise TypeError(f"the Dask graph returned {type(result).__name__}, not PathStats")
    return result
