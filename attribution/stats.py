"""Sufficient statistics: per-path counts, from which every aggregated model runs.

For each distinct path (a tuple of units) `PathStats` keeps the number of conversions, their
total value and the number of null journeys. That is all first/last/linear/position-based,
Markov of any order (transition counts are a function of the paths) and Shapley (channel
sets are a function of the paths) need. Time decay is the exception: it needs touch times
and runs on journeys (`attribution.heuristic.time_decay`).

**One pass, summed per partition.** `path_stats` is the per-partition function: one sort of
the partition's touchpoints and conversions (`attribution.paths.journey_table`), then one
pass over its journeys (`PathStats.from_journeys` does the same for `Journey` objects; an
aggregated paths file goes through `read_paths_csv`). The counts are integers and the
values Decimals, so addition is exact, associative and commutative: for data split into
partitions that each hold *whole members* (a journey never crosses members, and splitting
at conversions needs a member's whole timeline)::

    parts = [path_stats(tp_part, conv_part) for tp_part, conv_part in partitions]
    stats = sum(parts, PathStats())

gives exactly the same object as `path_stats` over everything, whatever the order; on Dask
the same per-partition function runs on each worker and the driver sums.

Conversions with an empty path (no touch in the window) cannot be credited to anyone; they
are kept apart in `direct` so a report can show them rather than lose them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

import pandas as pd

from attribution.paths import (
    PATH_SEPARATOR,
    Journey,
    Lookback,
    PathRecord,
    Unit,
    journey_table,
    parse_paths_csv,
)

Path = tuple[str, ...]

# Sums of values are exact: a context wide enough that no addition ever rounds.
_EXACT_PRECISION = 200


@dataclass(frozen=True, slots=True)
class PathCounts:
    """Conversions, their total value, and null journeys, for one path (or for `direct`)."""

    conversions: int = 0
    value: Decimal = Decimal(0)
    nulls: int = 0

    def __add__(self, other: PathCounts) -> PathCounts:
        with localcontext(prec=_EXACT_PRECISION):
            return PathCounts(
                self.conversions + other.conversions,
                self.value + other.value,
                self.nulls + other.nulls,
            )

    @property
    def empty(self) -> bool:
        return self.conversions == 0 and self.nulls == 0 and self.value == 0


def _freeze(counts: Mapping[Path, PathCounts]) -> dict[Path, PathCounts]:
    """Sorted by path, empties dropped: equal statistics compare equal however built."""
    return {path: counts[path] for path in sorted(counts) if not counts[path].empty}


@dataclass(frozen=True)
class PathStats:
    """Per-path counts of attributable journeys, plus the uncreditable `direct` ones."""

    paths: Mapping[Path, PathCounts] = field(default_factory=dict)
    direct: PathCounts = field(default_factory=PathCounts)

    def __post_init__(self) -> None:
        if any(len(path) == 0 for path in self.paths):
            raise ValueError("an empty path belongs in `direct`")
        object.__setattr__(self, "paths", _freeze(self.paths))

    # -- building -------------------------------------------------------------------------

    @classmethod
    def from_counts(cls, items: Iterable[tuple[Path, PathCounts]]) -> PathStats:
        """Sum (path, counts) pairs; empty paths go to `direct`."""
        paths: dict[Path, PathCounts] = {}
        direct = PathCounts()
        for path, counts in items:
            if path:
                paths[path] = paths.get(path, PathCounts()) + counts
            else:
                direct = direct + counts
        return cls(paths, direct)

    @classmethod
    def from_journeys(cls, journeys: Iterable[Journey]) -> PathStats:
        """One pass over journeys: a conversion counts 1 with its value, a null journey 1."""
        return cls.from_counts(
            (j.path, PathCounts(1, j.value, 0) if j.converted else PathCounts(0, Decimal(0), 1))
            for j in journeys
        )

    @classmethod
    def from_records(cls, records: Iterable[PathRecord]) -> PathStats:
        """From the lines of an aggregated paths file (repeated paths are summed)."""
        return cls.from_counts(
            (r.path, PathCounts(r.conversions, r.value, r.nulls)) for r in records
        )

    def __add__(self, other: PathStats) -> PathStats:
        if not isinstance(other, PathStats):
            return NotImplemented
        paths = dict(self.paths)
        for path, counts in other.paths.items():
            paths[path] = paths.get(path, PathCounts()) + counts
        return PathStats(paths, self.direct + other.direct)

    def __radd__(self, other: object) -> PathStats:
        # `sum(parts)` starts from 0.
        if other == 0:
            return self
        return NotImplemented

    def collapsed(self) -> PathStats:
        """The same counts with consecutive repeats merged ("a > a > b" → "a > b")."""
        return PathStats.from_counts((_collapse(path), c) for path, c in self.paths.items()) + (
            PathStats(direct=self.direct)
        )

    # -- reading --------------------------------------------------------------------------

    @property
    def total_conversions(self) -> int:
        return sum(c.conversions for c in self.paths.values())

    @property
    def total_value(self) -> Decimal:
        with localcontext(prec=_EXACT_PRECISION):
            return sum((c.value for c in self.paths.values()), Decimal(0))

    @property
    def total_nulls(self) -> int:
        return sum(c.nulls for c in self.paths.values())

    @property
    def channels(self) -> tuple[str, ...]:
        """Every unit on any path (converting or not), sorted."""
        return tuple(sorted({unit for path in self.paths for unit in path}))

    def items(self) -> Iterator[tuple[Path, PathCounts]]:
        return iter(self.paths.items())

    def channel_sets(self) -> dict[frozenset[str], PathCounts]:
        """Counts by the set of units on the path (what Shapley needs)."""
        out: dict[frozenset[str], PathCounts] = {}
        for path, counts in self.paths.items():
            key = frozenset(path)
            out[key] = out.get(key, PathCounts()) + counts
        return out

    def to_frame(self, separator: str = f" {PATH_SEPARATOR} ") -> pd.DataFrame:
        """ChannelAttribution's layout, most converting paths first (ties by path)."""
        rows = sorted(self.paths.items(), key=lambda kv: (-kv[1].conversions, -kv[1].nulls, kv[0]))
        return pd.DataFrame(
            {
                "path": pd.Series([separator.join(p) for p, _ in rows], dtype=object),
                "total_conversions": pd.Series([c.conversions for _, c in rows], dtype="int64"),
                "total_conversion_value": pd.Series([c.value for _, c in rows], dtype=object),
                "total_null": pd.Series([c.nulls for _, c in rows], dtype="int64"),
            }
        )


def _collapse(path: Path) -> Path:
    return tuple(unit for i, unit in enumerate(path) if i == 0 or path[i - 1] != unit)


def path_stats(
    touchpoints: pd.DataFrame,
    conversions: pd.DataFrame,
    *,
    unit: Unit = "channel",
    lookback: Lookback | None = None,
    collapse_repeats: bool = False,
) -> PathStats:
    """The per-partition function: frames of whole members → their path counts.

    Equal to `PathStats.from_journeys(build_journeys(...))`, without building a `Journey`
    per journey: paths are counted as tuples of unit codes and named once per distinct path.
    """
    table = journey_table(
        touchpoints,
        conversions,
        unit=unit,
        lookback=lookback,
        collapse_repeats=collapse_repeats,
    )
    conversions_by_path: dict[tuple[int, ...], int] = {}
    values_by_path: dict[tuple[int, ...], Decimal] = {}
    nulls_by_path: dict[tuple[int, ...], int] = {}
    units = table.touch_unit
    values = table.conv_value
    zero = Decimal(0)
    with localcontext(prec=_EXACT_PRECISION):
        for start, end, k in zip(table.starts, table.ends, table.conversion, strict=True):
            codes = tuple(units[start:end])
            if k < 0:
                nulls_by_path[codes] = nulls_by_path.get(codes, 0) + 1
            else:
                conversions_by_path[codes] = conversions_by_path.get(codes, 0) + 1
                values_by_path[codes] = values_by_path.get(codes, zero) + values[k]
    names = table.units
    paths = {
        tuple(names[c] for c in codes): PathCounts(
            conversions_by_path.get(codes, 0),
            values_by_path.get(codes, zero),
            nulls_by_path.get(codes, 0),
        )
        for codes in conversions_by_path.keys() | nulls_by_path.keys()
    }
    direct = paths.pop((), PathCounts())
    return PathStats(paths, direct)


def read_paths_csv(text: str | bytes, *, collapse_repeats: bool = False) -> PathStats:
    """An aggregated paths file (see `attribution.paths.parse_paths_csv`) as statistics."""
    stats = PathStats.from_records(parse_paths_csv(text))
    return stats.collapsed() if collapse_repeats else stats
