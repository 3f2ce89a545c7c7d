"""Attribution at scale: 1,000,000 journeys, ~3.3M touchpoints over 12 channels. JSON lines:

- order-1 Markov including the aggregation pass: target ≤ 10 s, and ≤ 3× a bare SQL query
  that counts the same touchpoints' transitions (`TRANSITIONS_SQL`: LAG over each member's
  touches in time order, GROUP BY (previous channel, channel)). Both start from the database
  table, so the Markov figure counts reading the rows out (COPY into pandas), the journey
  rules and path counts (`stats.path_stats`) and the exact solve. The SQL runs with the
  server's own plan and with a sequential scan sorted in memory; the faster one is the
  denominator;
- order-3 Markov, the same way: target ≤ 30 s;
- simplified Shapley, the same way: target ≤ 10 s;
- for information: reading alone, reading plus aggregation, order 1 from frames already in
  memory, each model on statistics already computed, the same statistics from bucketed
  Parquet (`attribution.partitioned`, one bucket at a time), and whether every route gave
  the same statistics. `--dask` adds them on a 2-worker `distributed.LocalCluster`.

Times are the best of 3. The CPU count and load average are printed first and last: on a
shared machine the other processes are part of the figures. The database is a throwaway
PostgreSQL (`core.pgserver`); without its binaries the rows go to SQLite and a line says so.
The data are seeded (same rows every run): journeys of 1 + Poisson(2.3) touches drawn from
a Markov chain over the channels; whether a journey converts depends on the channels it saw
and its value on the closing channel; a member who does not convert lapses, so every
generated journey is exactly one journey under the rules (checked before timing).

`--small` runs 20,000 journeys for a quick check (targets then do not apply).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from attribution.markov import markov
from attribution.partitioned import Layout, layout_stats, write_partitioned
from attribution.shapley import simplified_shapley
from attribution.stats import PathStats, path_stats
from bench._harness import emit

FULL_JOURNEYS = 1_000_000
SMALL_JOURNEYS = 20_000
SEED = 20260105
CHANNELS = (
    "affiliate",
    "app_push",
    "coupon",
    "display",
    "email",
    "referral",
    "search",
    "sms",
    "social",
    "store",
    "video",
    "wechat",
)
EPOCH = pd.Timestamp("2025-01-01", tz="UTC")
DAY_S = 86_400
JOURNEY_SPAN_S = 20 * DAY_S  # touches within 20 days before the conversion (< 30-day window)
JOURNEY_GAP_DAYS = 150  # between a member's journeys: more than the 90-day window

T = TypeVar("T")


# --- Data -----------------------------------------------------------------------------------


def generate(journeys: int, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(touchpoints, conversions) with integer member ids, rows in time order."""
    rng = np.random.default_rng(seed)
    k = len(CHANNELS)
    start = rng.dirichlet(np.full(k, 1.0))
    moves = rng.dirichlet(np.full(k, 0.6), size=k) + np.eye(k) * 0.3  # some repeats
    moves_cdf = np.cumsum(moves / moves.sum(axis=1, keepdims=True), axis=1)
    lift = rng.normal(0.0, 0.6, size=k)  # how much seeing each channel helps
    worth = rng.lognormal(0.0, 0.25, size=k)  # how much the closing channel's buyers spend

    lengths = 1 + rng.poisson(2.3, size=journeys)
    total = int(lengths.sum())
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    journey_of = np.repeat(np.arange(journeys), lengths)
    step = np.arange(total) - first[journey_of]
    channel = np.empty(total, dtype=np.int64)
    channel[first] = np.searchsorted(np.cumsum(start), rng.random(journeys), side="right")
    for s in range(1, int(lengths.max())):
        at = np.flatnonzero(step == s)
        cdf = moves_cdf[channel[at - 1]]
        channel[at] = (rng.random(len(at))[:, None] > cdf).sum(axis=1)
    channel = np.minimum(channel, k - 1)

    seen = np.zeros((journeys, k), dtype=bool)
    seen[journey_of, channel] = True
    logit = -1.3 + seen.astype(np.float64) @ lift + 0.15 * (lengths - 3.3)
    converted = rng.random(journeys) < 1 / (1 + np.exp(-logit))

    # A new member starts after a journey that did not convert (they lapsed), and otherwise
    # with probability 0.45: so a null journey is always its member's last.
    new_member = np.concatenate([[True], (~converted[:-1]) | (rng.random(journeys - 1) < 0.45)])
    member_index = np.cumsum(new_member) - 1
    members = int(member_index[-1]) + 1
    member_first = np.flatnonzero(new_member)
    rank = np.arange(journeys) - member_first[member_index]
    ids = 1_000_000 + rng.permutation(members)  # integer ids, not in journey order
    member = ids[member_index]

    day = rng.integers(0, 365, size=members)[member_index] + rank * JOURNEY_GAP_DAYS
    end_s = day.astype(np.int64) * DAY_S + JOURNEY_SPAN_S + DAY_S  # conversion time
    offset = rng.integers(60, JOURNEY_SPAN_S, size=total)
    touch_s = end_s[journey_of] - offset
    # touches in time order within each journey: sort by (journey, time)
    order = np.lexsort((touch_s, journey_of))
    touch_s = touch_s[order]  # channels stay in step order; each step gets the next time

    touchpoints = pd.DataFrame(
        {
            "member": member[journey_of],
            "channel": np.array(CHANNELS, dtype=object)[channel],
            "at": EPOCH + pd.to_timedelta(touch_s, unit="s"),
        }
    )
    conv = np.flatnonzero(converted)
    last_channel = channel[first[conv] + lengths[conv] - 1]
    cents = np.maximum(
        100, np.round(rng.lognormal(4.6, 0.7, size=len(conv)) * worth[last_channel] * 100)
    ).astype(np.int64)
    conversions = pd.DataFrame(
        {
            "member": member[conv],
            "at": EPOCH + pd.to_timedelta(end_s[conv], unit="s"),
            "value": [Decimal(int(c)).scaleb(-2) for c in cents],
            "kind": np.where(rank[conv] == 0, "first_purchase", "purchase").astype(object),
        }
    )
    # tables are written in time order, as they grow, not member by member
    touchpoints = touchpoints.iloc[np.argsort(touch_s, kind="stable")].reset_index(drop=True)
    conversions = conversions.sort_values("at", kind="stable").reset_index(drop=True)
    return touchpoints, conversions


# --- Timing ---------------------------------------------------------------------------------


def timed(work: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def best(runs: int, work: Callable[[], T]) -> tuple[T, float]:
    result, fastest = timed(work)
    for _ in range(runs - 1):
        result, seconds = timed(work)
        fastest = min(fastest, seconds)
    return result, fastest


# --- The database ---------------------------------------------------------------------------

# The bare query the Markov figure is compared with: transitions between consecutive
# touches of a member in time order, counted by (previous channel, channel). No journeys,
# no windows, no conversions, no solve: a floor, not an equivalent.
TRANSITIONS_SQL = """
SELECT prev, channel, count(*) AS n
FROM (SELECT channel,
             LAG(channel) OVER (PARTITION BY member ORDER BY at, id) AS prev
      FROM bench_touchpoints) AS t
GROUP BY prev, channel
"""


class Store(Protocol):
    """The touchpoint and conversion tables: written once, read back as frames, queried."""

    name: str

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]: ...

    def transition_plans(self) -> dict[str, Callable[[], list[Any]]]: ...


def _frames_from_csv(touch_csv: bytes, conv_csv: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows as CSV with times in integer microseconds since the epoch (no dates to parse)."""
    touch = pd.read_csv(
        io.BytesIO(touch_csv),
        names=["member", "channel", "at"],
        dtype={"member": "int64", "channel": "object", "at": "int64"},
    )
    conv = pd.read_csv(
        io.BytesIO(conv_csv),
        names=["member", "at", "value", "kind"],
        dtype={"member": "int64", "at": "int64", "value": "object", "kind": "object"},
    )
    touch["at"] = pd.to_datetime(touch["at"], unit="us", utc=True)
    conv["at"] = pd.to_datetime(conv["at"], unit="us", utc=True)
    return touch, conv


class Postgres:
    """Plain tables in a throwaway PostgreSQL, read out with COPY (the fastest way out)."""

    name = "postgresql"

    def __init__(self, dsn: str, touchpoints: pd.DataFrame, conversions: pd.DataFrame) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("SET TIME ZONE 'UTC'")
        self.conn.execute(
            """CREATE TABLE bench_touchpoints (
                 id bigserial PRIMARY KEY, member bigint NOT NULL, channel text NOT NULL,
                 at timestamptz NOT NULL)"""
        )
        self.conn.execute(
            """CREATE TABLE bench_conversions (
                 id bigserial PRIMARY KEY, member bigint NOT NULL, at timestamptz NOT NULL,
                 value numeric(14, 2) NOT NULL, kind text NOT NULL)"""
        )
        for table, frame, columns in (
            ("bench_touchpoints", touchpoints, "member, channel, at"),
            ("bench_conversions", conversions, "member, at, value, kind"),
        ):
            text = frame.to_csv(index=False, header=False, date_format="%Y-%m-%d %H:%M:%S+00")
            with (
                self.conn.cursor() as cur,
                cur.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy,
            ):
                copy.write(text)
        self.conn.execute("CREATE INDEX ON bench_touchpoints (member, at, id)")
        self.conn.execute("CREATE INDEX ON bench_conversions (member, at, id)")
        self.conn.execute("VACUUM ANALYZE bench_touchpoints")
        self.conn.execute("VACUUM ANALYZE bench_conversions")

    def _copy_out(self, query: str) -> bytes:
        out = io.BytesIO()
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy,
        ):
            for block in copy:
                out.write(block)
        return out.getvalue()

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        micros = "(extract(epoch FROM at) * 1000000)::bigint"
        return _frames_from_csv(
            self._copy_out(f"SELECT member, channel, {micros} FROM bench_touchpoints ORDER BY id"),
            self._copy_out(
                f"SELECT member, {micros}, value, kind FROM bench_conversions ORDER BY id"
            ),
        )

    def _transitions(self, *settings: str) -> list[Any]:
        with self.conn.transaction():
            for setting in settings:
                self.conn.execute(f"SET LOCAL {setting}")
            return list(self.conn.execute(TRANSITIONS_SQL).fetchall())

    def transition_plans(self) -> dict[str, Callable[[], list[Any]]]:
        """The server's own plan (an index scan in (member, at, id) order, random heap
        reads), and a sequential scan sorted in memory, which is faster here: the SQL
        figure is the faster of the two, so the comparison is with SQL at its best."""
        return {
            "default_plan": self._transitions,
            "in_memory_sort": lambda: self._transitions(
                "work_mem = '512MB'", "enable_indexscan = off", "enable_bitmapscan = off"
            ),
        }

    def close(self) -> None:
        self.conn.close()


class Sqlite:
    """The fallback when no PostgreSQL binaries exist: the same tables in a SQLite file."""

    name = "sqlite"

    def __init__(self, path: Path, touchpoints: pd.DataFrame, conversions: pd.DataFrame) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute(
            """CREATE TABLE bench_touchpoints (id INTEGER PRIMARY KEY, member INTEGER NOT NULL,
                 channel TEXT NOT NULL, at INTEGER NOT NULL)"""
        )
        self.conn.execute(
            """CREATE TABLE bench_conversions (id INTEGER PRIMARY KEY, member INTEGER NOT NULL,
                 at INTEGER NOT NULL, value TEXT NOT NULL, kind TEXT NOT NULL)"""
        )
        t_us = _micros(touchpoints["at"])
        c_us = _micros(conversions["at"])
        self.conn.executemany(
            "INSERT INTO bench_touchpoints (member, channel, at) VALUES (?, ?, ?)",
            zip(touchpoints["member"].tolist(), touchpoints["channel"].tolist(), t_us, strict=True),
        )
        self.conn.executemany(
            "INSERT INTO bench_conversions (member, at, value, kind) VALUES (?, ?, ?, ?)",
            zip(
                conversions["member"].tolist(),
                c_us,
                [str(v) for v in conversions["value"]],
                conversions["kind"].tolist(),
                strict=True,
            ),
        )
        self.conn.execute("CREATE INDEX touch_order ON bench_touchpoints (member, at, id)")
        self.conn.commit()
        self.conn.execute("ANALYZE")

    def _csv(self, query: str) -> bytes:
        frame = pd.read_sql_query(query, self.conn)
        return frame.to_csv(index=False, header=False).encode()

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return _frames_from_csv(
            self._csv("SELECT member, channel, at FROM bench_touchpoints ORDER BY id"),
            self._csv("SELECT member, at, value, kind FROM bench_conversions ORDER BY id"),
        )

    def transition_plans(self) -> dict[str, Callable[[], list[Any]]]:
        return {"default_plan": lambda: self.conn.execute(TRANSITIONS_SQL).fetchall()}

    def close(self) -> None:
        self.conn.close()


def _micros(series: pd.Series) -> list[int]:
    utc = series.dt.tz_convert("UTC").dt.tz_localize(None)
    micros: list[int] = utc.to_numpy(dtype="datetime64[us]").astype(np.int64).tolist()
    return micros


@contextmanager
def store(touchpoints: pd.DataFrame, conversions: pd.DataFrame) -> Iterator[Store]:
    """PostgreSQL if its binaries are here, else SQLite (and a line saying so)."""
    from core.pgserver import PostgresUnavailable, ThrowawayPostgres

    try:
        server = ThrowawayPostgres().start()
    except PostgresUnavailable as exc:
        print(json.dumps({"name": "attribution_database", "note": f"SQLite: {exc}"}))
        with tempfile.TemporaryDirectory() as folder:
            lite = Sqlite(Path(folder) / "bench.db", touchpoints, conversions)
            try:
                yield lite
            finally:
                lite.close()
        return
    try:
        dsn = server.url("postgres").replace("postgresql+psycopg://", "postgresql://")
        pg = Postgres(dsn, touchpoints, conversions)
        try:
            yield pg
        finally:
            pg.close()
    finally:
        server.stop()


# --- The runs -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--small", action="store_true", help=f"{SMALL_JOURNEYS:,} journeys; no targets"
    )
    parser.add_argument(
        "--dask",
        action="store_true",
        help="also compute the statistics on a 2-worker distributed.LocalCluster",
    )
    args = parser.parse_args(argv)
    journeys = SMALL_JOURNEYS if args.small else FULL_JOURNEYS
    runs = 3

    def target(text: str) -> str | None:
        return None if args.small else text

    # the machine may be shared: its load is part of the figures
    emit("attribution_cpus", os.cpu_count() or 0, "cpus")
    emit("attribution_load_average_at_start", os.getloadavg()[0], "runnable")
    (touchpoints, conversions), seconds = timed(lambda: generate(journeys))
    emit("attribution_journeys", journeys, "journeys")
    emit("attribution_touchpoints", len(touchpoints), "rows")
    emit("attribution_conversions", len(conversions), "rows")
    emit("attribution_members", touchpoints["member"].nunique(), "members")
    emit("attribution_generate_seconds", seconds, "s")

    reference, seconds = timed(lambda: path_stats(touchpoints, conversions))
    emit("attribution_aggregation_in_memory_seconds", seconds, "s")
    emit("attribution_distinct_paths", len(reference.paths), "paths")
    counted = reference.total_conversions + reference.total_nulls + reference.direct.conversions
    if counted != journeys:  # the generator's promise; not a timing
        raise SystemExit(f"the rules found {counted} journeys, not {journeys}")

    _, seconds = best(runs, lambda: markov(path_stats(touchpoints, conversions), 1))
    emit("attribution_markov_order1_frames_in_memory_seconds", seconds, "s")

    with store(touchpoints, conversions) as db:
        _, seconds = timed(db.frames)  # warms the table into the buffers, too
        emit(f"attribution_{db.name}_read_seconds", seconds, "s")
        sql = float("inf")
        for plan, query in db.transition_plans().items():
            rows, seconds = best(runs, query)
            emit(f"attribution_{db.name}_transitions_sql_{plan}_seconds", seconds, "s")
            sql = min(sql, seconds)
        emit("attribution_transition_pairs", len(rows), "pairs")

        def aggregated() -> PathStats:
            touch, conv = db.frames()
            return path_stats(touch, conv)

        stats, seconds = best(runs, aggregated)
        emit(f"attribution_{db.name}_read_and_aggregate_seconds", seconds, "s")
        print(json.dumps({"name": "attribution_database_stats_equal", "value": stats == reference}))

        # the targets: from the table to the credits, aggregation pass included
        _, m1 = best(runs, lambda: markov(aggregated(), 1))
        emit("attribution_markov_order1_seconds", m1, "s", target("<= 10"))
        emit("attribution_markov_order1_vs_sql_ratio", m1 / sql, "x", target("<= 3"))
        _, m3 = best(runs, lambda: markov(aggregated(), 3))
        emit("attribution_markov_order3_seconds", m3, "s", target("<= 30"))
        _, sh = best(runs, lambda: simplified_shapley(aggregated()))
        emit("attribution_shapley_simplified_seconds", sh, "s", target("<= 10"))

    # the models alone, on statistics already computed
    for name, model in (
        ("markov_order1", lambda: markov(reference, 1)),
        ("markov_order2", lambda: markov(reference, 2)),
        ("markov_order3", lambda: markov(reference, 3)),
        ("shapley_simplified", lambda: simplified_shapley(reference)),
    ):
        _, seconds = best(runs, model)
        emit(f"attribution_{name}_model_only_seconds", seconds, "s")

    with tempfile.TemporaryDirectory() as folder:
        layout, seconds = timed(lambda: write_partitioned(touchpoints, conversions, folder))
        emit("attribution_parquet_write_seconds", seconds, "s")
        from_parquet, seconds = best(runs, lambda: layout_stats(layout))
        emit(f"attribution_parquet_{layout.buckets}_buckets_stats_seconds", seconds, "s")
        print(
            json.dumps(
                {"name": "attribution_parquet_stats_equal", "value": from_parquet == reference}
            )
        )
        if args.dask:
            dask_run(layout, reference)
    emit("attribution_load_average_at_end", os.getloadavg()[0], "runnable")


def dask_run(layout: Layout, reference: PathStats) -> None:
    """The layout on a 2-worker LocalCluster: start-up and the statistics, timed apart."""
    from distributed import Client, LocalCluster

    from attribution.partitioned import dask_stats

    started = time.perf_counter()
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        emit("attribution_dask_cluster_start_seconds", time.perf_counter() - started, "s")
        stats, seconds = timed(lambda: dask_stats(layout, client=client))
        emit("attribution_dask_2_workers_stats_seconds", seconds, "s")
        print(json.dumps({"name": "attribution_dask_stats_equal", "value": stats == reference}))


if __name__ == "__main__":
    main()
