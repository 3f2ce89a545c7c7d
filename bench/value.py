"""Customer value at scale on PostgreSQL: 1,000,000 members, 10,000,000 purchases. JSON lines:

- the predictions: (a) loading the daily purchase frame (`analytics.facts.daily`, SQL
  aggregation read out with COPY), (b) the per-customer summaries (`summaries.summarise`),
  (c) the BG/NBD and Gamma-Gamma fits, (d) scoring every customer (P(alive), expected
  purchases over 12 months, discounted CLV), as `analytics.runs` does them; target
  (a)+(b)+(c)+(d) ≤ 60 s;
- (e) the pyramid (`facts.members` + `facts.period_costs`, `pyramid.member_value`,
  `pyramid.assign_layers`) and RFM (`rfm.score` with its per-member aggregates of the daily
  frame) as `analytics.runs.compute` does them; target ≤ 30 s;
- (f) for information: the predictions exactly as `analytics.runs` runs them (the fit, the
  holdout refit and the scoring: `runs._predictions`), the whole `runs.compute`, and
  `runs.run` (compute, then store one `MemberScore` per member; the store timed apart),
  rolled back.

Each step's wall time is printed, and for the steps that run in this process alone (from the
frames on) its CPU time too: on a shared machine the wall time of a step grows with the
load, its CPU time hardly. `--dask` adds the summaries read from Parquet (16 files cut by
rows) on a 2-worker `distributed.LocalCluster` (`analytics.partitioned`) and checks they
equal (b). `--only pyramid,compute,run` runs the predictions and then only those parts.

**The data** (seeded, the same every run), over the two years to 2026-06-29 in Asia/Shanghai.
Members join over the two years (three in ten in the launch month); 85% ever buy, their first
purchase a few days after joining. Purchases follow the BG/NBD story the fit assumes: each
buyer has a Poisson rate (Gamma-distributed across buyers) and after each purchase drops out
with a probability (Beta-distributed), so some never buy, many buy once, a few buy hundreds
of times; the repeat purchases are then thinned at random to exactly ten per member on
average. Amounts are lognormal around each buyer's own mean (Gamma-Gamma's story). 15% of
purchases carry a 10% discount, 5% a coupon redemption (5, 10 or 20 off), 2% are partly and
1.5% fully refunded, 10% have one to three lines in eight categories. The ledger has what
the product writes: a sign-up bonus per member, a first-purchase bonus, an earning per
purchase (4% with a bonus rule's extra), reversals for refunds, and reward redemptions by
one buyer in ten (balances are not kept: nothing measured here reads them); one member in
seven has portal sign-ins, 3% were referred. No campaigns.
Rows go in with COPY (pyarrow writes the CSV), then ``VACUUM ANALYZE``.

**The database.** A throwaway PostgreSQL (`core.pgserver`, server defaults: 128 MB shared
buffers, 4 MB work_mem) unless ``RETAIN_DATABASE_URL`` names one: then the data are built
there if it has no members yet, or reused if this bench built them (same size), and refused
otherwise. ``BENCH_SCALE=0.01`` runs 10,000 members and 100,000 purchases (targets then do
not apply). The CPU count and load average are printed first and last: on a shared machine
the other processes are part of the figures.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import numpy.typing as npt
import pandas as pd
import psycopg
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from analytics import bgnbd, facts, gammagamma, pyramid, rfm, runs
from analytics.summaries import summarise
from bench._harness import database, emit
from core.audit import Actor
from core.db import make_engine, make_session_factory
from loyalty import program

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
FULL = SCALE >= 1
SEED = 20260629
ZONE = ZoneInfo("Asia/Shanghai")
START = date(2024, 6, 30)  # the first local day with purchases
DAYS = 730
AS_OF = START + timedelta(days=DAYS - 1)  # 2026-06-29
PURCHASES_PER_MEMBER = 10
CATEGORIES = ("apparel", "beauty", "books", "electronics", "food", "home", "sports", "toys")
REGIONS = ("Beijing", "Shanghai", "Guangdong", "Zhejiang", "Jiangsu", "Sichuan", "Hubei")
OCCUPATIONS = ("engineer", "teacher", "student", "manager", "sales", "doctor", "retired")
INDUSTRIES = ("technology", "education", "finance", "retail", "health", "manufacturing")
SOURCE = "vbench"
ACTOR = Actor.cli("bench")
CHUNK = 500_000

T = TypeVar("T")
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def n(count: int) -> int:
    return max(1, int(count * SCALE))


def target(text: str) -> str | None:
    return text if FULL else None


def timed(work: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def _epoch(day: date) -> int:
    """The UTC epoch second at which the local `day` begins."""
    return int(datetime.combine(day, datetime.min.time(), ZONE).timestamp())


# --- The data -------------------------------------------------------------------------------


@dataclass
class Data:
    members: dict[str, Any]
    purchases: dict[str, Any]
    lines: dict[str, Any]
    redemptions: dict[str, Any]
    ledger: dict[str, Any]
    sessions: dict[str, Any]
    referrals: dict[str, Any]


def _seconds(days: FloatArray) -> IntArray:
    """Fractional days since START to epoch seconds, each day's purchases between 08:00 and
    22:00 local time, in the same order as the fractions."""
    whole = np.floor(days)
    local = whole * 86_400 + 8 * 3_600 + (days - whole) * 14 * 3_600
    return (_epoch(START) + local).astype(np.int64)


def _strings(codes: IntArray, values: tuple[str, ...] | list[str]) -> Any:
    """A string column from small integer codes, without a Python string per row."""
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32)), pa.array(list(values))
    ).cast(pa.string())


def _keys(prefix: str, ids: IntArray) -> Any:
    """Unique text keys: prefix + id."""
    return pc.binary_join_element_wise(
        pa.repeat(pa.scalar(prefix), len(ids)), pc.cast(pa.array(ids), pa.string()), ""
    )


def _stamps(seconds: IntArray) -> Any:
    return pa.array(seconds).cast(pa.timestamp("s", tz="UTC"))


def _money(cents: IntArray) -> Any:
    return pa.array(cents / 100.0)  # shortest repr: exactly the cents in the CSV


def simulate(members: int, seed: int = SEED) -> Data:
    """Every table's rows as columns (see the module docstring)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, members + 1, dtype=np.int64)

    # Members: when they joined, who they are.
    launch = rng.random(members) < 0.3
    join = np.where(launch, rng.uniform(0, 30, members), rng.uniform(0, DAYS - 1, members))
    joined_s = _seconds(join)
    birthday = np.datetime64("1950-01-01") + rng.integers(0, 58 * 365, size=members)
    no_birthday = rng.random(members) >= 0.7
    month_start = birthday.astype("datetime64[M]")
    birth_month = month_start.astype(np.int64) % 12 + 1
    birth_day = (birthday - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    member_columns = {
        "id": pa.array(ids),
        "number": _keys("V", ids),
        "name": _keys("Member ", ids),
        "phone": _keys("2", ids + 10**10),
        "birthday": pa.array(birthday, mask=no_birthday),
        "birth_month": pa.array(birth_month, mask=no_birthday),
        "birth_day": pa.array(birth_day, mask=no_birthday),
        "gender": _strings(rng.integers(0, 2, size=members), ["female", "male"]),
        "region": _strings(rng.integers(0, len(REGIONS), size=members), REGIONS),
        "occupation": _strings(rng.integers(0, len(OCCUPATIONS), size=members), OCCUPATIONS),
        "industry": _strings(rng.integers(0, len(INDUSTRIES), size=members), INDUSTRIES),
        "joined_at": _stamps(joined_s),
        "marketing_consent": pa.array(rng.random(members) < 0.6),
        "status": pa.repeat(pa.scalar("active"), members),
        "referral_code": _keys("VR", ids),
        "tier_id": pa.repeat(pa.scalar(1), members),  # filled in after: the seeded base tier
        "tier_since": _stamps(joined_s),
        "balance": pa.repeat(pa.scalar(0), members),
        "pending_points": pa.repeat(pa.scalar(0), members),
        "debt": pa.repeat(pa.scalar(0), members),
        "notes": pa.repeat(pa.scalar(""), members),
        "created_at": _stamps(joined_s),
        "updated_at": _stamps(joined_s),
    }

    # Purchases: BG/NBD. Rates per day ~ Gamma(r, α); dropout after a purchase ~ Beta(a, b).
    buyer = rng.random(members) < 0.85
    first = join + rng.exponential(5.0, members)
    buyer &= first < DAYS
    rate = rng.gamma(0.75, 1 / 5.0, members)
    dropout = rng.beta(0.8, 4.0, members)
    survive = rng.geometric(dropout) - 1  # repeat purchases before dropping out
    span = np.where(buyer, DAYS - first, 0.0)
    mean = rate * span
    bound = np.ceil(mean + 6 * np.sqrt(mean) + 10).astype(np.int64)  # Poisson beyond: never
    draws = np.where(buyer, np.minimum(survive, bound), 0)
    owner = np.repeat(np.arange(members), draws)
    gaps = rng.exponential(1.0, int(draws.sum())) / rate[owner]
    run_start = np.concatenate([[0], np.cumsum(draws)[:-1]])
    total = np.cumsum(gaps)
    before = np.concatenate([[0.0], total])[run_start][owner]
    when = first[owner] + (total - before)
    inside = when < DAYS
    repeat_owner, repeat_when = owner[inside], when[inside]
    # Thin the repeats at random to exactly PURCHASES_PER_MEMBER per member on average.
    firsts = np.flatnonzero(buyer)
    wanted = PURCHASES_PER_MEMBER * members - len(firsts)
    if 0 <= wanted < len(repeat_owner):
        keep = np.sort(rng.choice(len(repeat_owner), size=wanted, replace=False))
        repeat_owner, repeat_when = repeat_owner[keep], repeat_when[keep]
    p_owner = np.concatenate([firsts, repeat_owner])
    p_when = np.concatenate([first[firsts], repeat_when])
    order = np.argsort(p_when, kind="stable")  # the table fills in time order
    p_owner, p_when = p_owner[order], p_when[order]
    count = len(p_owner)
    pid = np.arange(1, count + 1, dtype=np.int64)
    p_member = ids[p_owner]
    p_seconds = _seconds(p_when)

    taste = rng.lognormal(np.log(80.0), 0.6, members)  # each buyer's own mean spend
    cents = np.maximum(100, np.round(taste[p_owner] * rng.lognormal(-0.125, 0.5, count) * 100))
    cents = cents.astype(np.int64)
    discount = np.where(rng.random(count) < 0.15, np.maximum(1, cents // 10), 0)
    coupon_value = np.array([500, 1000, 2000])[rng.integers(0, 3, size=count)]
    coupon = (rng.random(count) < 0.05) & (cents > coupon_value)
    discount = discount + np.where(coupon, coupon_value, 0)
    fate = rng.random(count)
    refunded = np.where(fate < 0.015, cents, np.where(fate < 0.035, cents // 2, 0))
    state = np.where(refunded == cents, 2, np.where(refunded > 0, 1, 0))
    earned = cents // 100
    reversed_ = np.where(refunded > 0, refunded // 100, 0)
    purchase_columns = {
        "id": pa.array(pid),
        "source": pa.repeat(pa.scalar(SOURCE), count),
        "external_id": _keys("P", pid),
        "member_id": pa.array(p_member),
        "occurred_at": _stamps(p_seconds),
        "amount": _money(cents),
        "currency": pa.repeat(pa.scalar("CNY"), count),
        "discount": _money(discount),
        "base_amount": _money(cents),
        "refunded_amount": _money(refunded),
        "net_base_amount": _money(cents - refunded),
        "state": _strings(state, ["completed", "partly_refunded", "refunded"]),
        "points_earned": pa.array(earned),
        "points_reversed": pa.array(reversed_),
        "fingerprint": pa.repeat(pa.scalar(""), count),
        "balance_after": pa.repeat(pa.scalar(0), count),
        "created_at": _stamps(p_seconds),
    }

    # Lines on one purchase in ten: one to three, each a share of the amount.
    with_lines = np.flatnonzero(rng.random(count) < 0.10)
    per = rng.integers(1, 4, size=len(with_lines))
    line_of = np.repeat(with_lines, per)
    quantity = rng.integers(1, 4, size=len(line_of))
    unit = np.maximum(1, cents[line_of] // (per.repeat(per) * quantity))
    line_columns = {
        "purchase_id": pa.array(pid[line_of]),
        "sku": _keys("SKU", rng.integers(1, 5_000, size=len(line_of))),
        "category": _strings(rng.integers(0, len(CATEGORIES), size=len(line_of)), CATEGORIES),
        "quantity": pa.array(quantity),
        "unit_price": _money(unit),
    }

    # Coupon redemptions: one per coupon purchase, reversed when the purchase was refunded.
    used = np.flatnonzero(coupon)
    redemption_columns = {
        "batch_id": pa.repeat(pa.scalar(0), len(used)),  # the bench's batch, set on load
        "member_id": pa.array(p_member[used]),
        "purchase_id": pa.array(pid[used]),
        "discount": _money(coupon_value[used]),
        "currency": pa.repeat(pa.scalar("CNY"), len(used)),
        "redeemed_at": _stamps(p_seconds[used]),
        "reversed_at": pa.array(
            np.where(state[used] == 2, p_seconds[used] + 86_400, 0), mask=state[used] != 2
        ).cast(pa.timestamp("s", tz="UTC")),
        "idempotency_key": _keys("vb:r:", pid[used]),
    }

    # The ledger: sign-up bonus, first-purchase bonus, earnings, bonus-rule extras,
    # reversals, reward redemptions.
    first_seconds = _seconds(first)
    rule_extra = np.flatnonzero((rng.random(count) < 0.04) & (earned > 0))
    reversals = np.flatnonzero(reversed_ > 0)
    earning = np.flatnonzero(earned > 0)
    redeemers = firsts[rng.random(len(firsts)) < 0.10]
    times = rng.integers(1, 5, size=len(redeemers))
    r_owner = np.repeat(redeemers, times)
    r_when = first[r_owner] + rng.random(len(r_owner)) * (DAYS - first[r_owner])
    parts = [
        # (member index, seconds, type, points, rule, bonus rule?, purchase id or 0)
        (np.arange(members), joined_s, 1, np.full(members, 100), 0, False, None),
        (firsts, first_seconds[firsts], 1, np.full(len(firsts), 200), 1, False, None),
        (p_owner[earning], p_seconds[earning], 0, earned[earning], 2, False, pid[earning]),
        (
            p_owner[rule_extra],
            p_seconds[rule_extra],
            0,
            earned[rule_extra],
            3,
            True,
            pid[rule_extra],
        ),
        (
            p_owner[reversals],
            p_seconds[reversals] + 86_400,
            3,
            -reversed_[reversals],
            4,
            False,
            pid[reversals],
        ),
        (
            r_owner,
            _seconds(r_when),
            2,
            -np.array([500, 1000, 2000])[rng.integers(0, 3, size=len(r_owner))],
            5,
            False,
            None,
        ),
    ]
    l_member = np.concatenate([ids[p[0]] for p in parts])
    l_seconds = np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts])
    l_type = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    l_points = np.concatenate([np.asarray(p[3], dtype=np.int64) for p in parts])
    l_rule = np.concatenate([np.full(len(p[0]), p[4]) for p in parts])
    l_bonus_rule = np.concatenate([np.full(len(p[0]), p[5]) for p in parts])
    l_source = np.concatenate(
        [
            np.zeros(len(p[0]), np.int64) if p[6] is None else np.asarray(p[6], np.int64)
            for p in parts
        ]
    )
    entries = len(l_member)
    ledger_columns = {
        "member_id": pa.array(l_member),
        "occurred_at": _stamps(l_seconds),
        "type": _strings(l_type, ["earn", "bonus", "redeem", "reverse"]),
        "points": pa.array(l_points),
        "balance_after": pa.repeat(pa.scalar(0), entries),
        "reason": _strings(
            l_rule,
            ["Sign-up", "First purchase", "Purchase", "Double points", "Refund", "Reward"],
        ),
        "rule": _strings(
            l_rule, ["signup", "first_purchase", "base", "bonus_rule", "refund", "reward"]
        ),
        "bonus_rule_id": pa.array(np.zeros(entries, np.int64), mask=~l_bonus_rule),
        "source_type": pa.array(
            np.where(l_source > 0, "purchase", ""), mask=l_source == 0, type=pa.string()
        ),
        "source_id": pa.array(l_source, mask=l_source == 0),
        "actor_kind": pa.repeat(pa.scalar("system"), entries),
        "actor_label": pa.repeat(pa.scalar("bench"), entries),
        "idempotency_key": _keys("vb:l:", np.arange(entries, dtype=np.int64)),
    }

    # Portal sign-ins: one member in seven, one to six times over the two years.
    signers = np.flatnonzero(rng.random(members) < 1 / 7)
    s_times = rng.integers(1, 7, size=len(signers))
    s_owner = np.repeat(signers, s_times)
    s_when = join[s_owner] + rng.random(len(s_owner)) * (DAYS - join[s_owner])
    s_seconds = _seconds(s_when)
    session_columns = {
        "token_hash": _keys("vb:s:", np.arange(len(s_owner), dtype=np.int64)),
        "member_id": pa.array(ids[s_owner]),
        "created_at": _stamps(s_seconds),
        "expires_at": _stamps(s_seconds + 30 * 86_400),
    }

    # Referrals: 3% of members were brought by an earlier member; completed a week after the
    # friend's first purchase, pending while they have not bought.
    referred = np.flatnonzero((rng.random(members) < 0.03) & (join > 1))
    referrer = (rng.random(len(referred)) * referred).astype(np.int64)  # someone earlier
    done = buyer[referred]
    completed_s = first_seconds[referred] + 7 * 86_400
    done &= completed_s < _epoch(AS_OF)
    referral_columns = {
        "referrer_id": pa.array(ids[referrer]),
        "referee_id": pa.array(ids[referred]),
        "state": _strings(done.astype(np.int64), ["pending", "completed"]),
        "created_at": _stamps(joined_s[referred]),
        "completes_at": pa.array(completed_s, mask=~done).cast(pa.timestamp("s", tz="UTC")),
        "completed_at": pa.array(completed_s, mask=~done).cast(pa.timestamp("s", tz="UTC")),
        "referrer_rewarded": pa.array(done),
        "note": pa.repeat(pa.scalar(""), len(referred)),
    }
    return Data(
        member_columns,
        purchase_columns,
        line_columns,
        redemption_columns,
        ledger_columns,
        session_columns,
        referral_columns,
    )


# --- Loading --------------------------------------------------------------------------------


def _copy(conn: psycopg.Connection[Any], table: str, columns: dict[str, Any]) -> int:
    """COPY the columns into `table`, CSV written by pyarrow in chunks."""
    data = pa.table(columns)
    names = ", ".join(columns)
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT csv)") as cp:
        for start in range(0, data.num_rows, CHUNK):
            buffer = io.BytesIO()
            pacsv.write_csv(data.slice(start, CHUNK), buffer, options)
            cp.write(buffer.getvalue())
    return int(data.num_rows)


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


BUILT = "bench_value_built"


def prepare(url: str, members: int) -> None:
    """Build the data, or check that this database already holds them (module docstring)."""
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM members").fetchone()
        built = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (BUILT,)).fetchone()
        if built and built[0]:
            row = conn.execute(f"SELECT members, purchases FROM {BUILT}").fetchone()
            if row and row[0] == members:
                emit("value_database_reused", 1, "flag")
                return
            raise SystemExit(
                f"This database holds the value bench at another size ({row}); use a new one."
            )
        if have and have[0]:
            raise SystemExit(
                "RETAIN_DATABASE_URL names a database with members this bench did not write: "
                "give it an empty (migrated or new) database."
            )
    data, seconds = timed(lambda: simulate(members))
    emit("value_generate_seconds", seconds, "s")
    _, seconds = timed(lambda: load(url, data))
    emit("value_load_seconds", seconds, "s")


def load(url: str, data: Data) -> None:
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        (tier,) = conn.execute("SELECT id FROM tiers ORDER BY rank LIMIT 1").fetchone() or (None,)
        if tier is None:
            raise SystemExit("The database has no tiers: is it migrated?")
        data.members["tier_id"] = pa.repeat(pa.scalar(int(tier)), len(data.members["id"]))
        (batch,) = conn.execute(
            """INSERT INTO coupon_batches (name, kind, value, currency, gift, min_spend,
                 valid_days, eligible_tiers, public_code, public_uses, issued_count, active,
                 created_at)
               VALUES ('Value bench', 'fixed', 10, 'CNY', '', 0, 30, '[]', 'VBENCH', 0, 0,
                 true, now()) RETURNING id"""
        ).fetchone() or (None,)
        (rule,) = conn.execute(
            """INSERT INTO bonus_rules (name, priority, active, multiplier, stop_further,
                 created_at)
               VALUES ('Double points (value bench)', 100, true, 2, false, now())
               RETURNING id"""
        ).fetchone() or (None,)
        data.redemptions["batch_id"] = pa.repeat(
            pa.scalar(int(batch)), len(data.redemptions["member_id"])
        )
        mask = data.ledger["bonus_rule_id"].is_null()
        data.ledger["bonus_rule_id"] = pa.array(
            np.full(len(mask), int(rule), dtype=np.int64),
            mask=np.asarray(mask.to_numpy(zero_copy_only=False)),
        )
        for table, columns in (
            ("members", data.members),
            ("purchases", data.purchases),
            ("purchase_lines", data.lines),
            ("coupon_redemptions", data.redemptions),
            ("ledger_entries", data.ledger),
            ("member_sessions", data.sessions),
            ("referrals", data.referrals),
        ):
            rows, seconds = timed(lambda t=table, c=columns: _copy(conn, t, c))  # type: ignore[misc]
            emit(f"value_copy_{table}_rows", rows, "rows")
            emit(f"value_copy_{table}_seconds", seconds, "s")
        for table in ("members", "purchases"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        _, seconds = timed(lambda: conn.execute("VACUUM ANALYZE"))
        emit("value_vacuum_analyze_seconds", seconds, "s")
        conn.execute(f"CREATE TABLE {BUILT} (members bigint, purchases bigint)")
        conn.execute(
            f"INSERT INTO {BUILT} VALUES (%s, %s)",
            (len(data.members["id"]), len(data.purchases["id"])),
        )


# --- The figures ----------------------------------------------------------------------------


PARAMS = runs.ValueParams(as_of=AS_OF)


@contextmanager
def session_of(url: str) -> Iterator[Session]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    try:
        with factory() as session:
            yield session
    finally:
        engine.dispose()


def sizes(session: Session) -> None:
    raw: Any = session.connection().connection.driver_connection
    for table in ("members", "purchases", "purchase_lines", "coupon_redemptions"):
        (rows,) = raw.execute(f"SELECT count(*) FROM {table}").fetchone()
        emit(f"value_{table}", rows, "rows")
    (rows,) = raw.execute("SELECT count(*) FROM ledger_entries").fetchone()
    emit("value_ledger_entries", rows, "rows")


def predictions(session: Session, window: facts.Window) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(a)–(d), timed; the daily frame and the predictions (as `runs._predictions` gives)."""
    daily, load_s = timed(lambda: facts.daily(session, window))
    cpu = time.process_time()  # this process's CPU from here: the part the load cannot inflate
    emit("value_daily_rows", len(daily), "rows")
    emit("value_a_load_daily_seconds", load_s, "s")

    def summaries() -> pd.DataFrame:
        log = pd.DataFrame(
            {
                "customer_id": daily["customer_id"],
                "date": daily["date"],
                "amount": daily["ticks"] / facts.TICKS,
            }
        )
        return summarise(log, window.as_of)

    s, summary_s = timed(summaries)
    emit("value_customers", len(s), "customers")
    emit("value_b_summaries_seconds", summary_s, "s")

    x = s["frequency"].to_numpy(dtype=np.float64)
    tx = s["recency"].to_numpy(dtype=np.float64)
    age = s["T"].to_numpy(dtype=np.float64)
    monetary = s["monetary_value"].to_numpy(dtype=np.float64)
    purchases, bgnbd_s = timed(lambda: bgnbd.fit(x, tx, age))
    free = (x > 0) & ~(monetary > 0)
    spend, gg_s = timed(
        lambda: gammagamma.fit(np.where(free, 0.0, x), np.where(free, np.nan, monetary))
    )
    emit("value_c_bgnbd_fit_seconds", bgnbd_s, "s")
    emit("value_c_gamma_gamma_fit_seconds", gg_s, "s")
    p, g = purchases.params, spend.params
    print(
        f"# BG/NBD r={p.r:.4f} alpha={p.alpha:.4f} a={p.a:.4f} b={p.b:.4f} "
        f"(LL {purchases.log_likelihood:,.1f}, converged {purchases.converged}); "
        f"Gamma-Gamma p={g.p:.4f} q={g.q:.4f} gamma={g.gamma:.4f} on {spend.customers:,}",
        file=sys.stderr,
    )

    def scoring() -> pd.DataFrame:
        horizon = PARAMS.horizon_months * runs.MONTH_WEEKS
        alive = bgnbd.probability_alive(purchases.params, x, tx, age)
        expected = bgnbd.conditional_expected_purchases(purchases.params, horizon, x, tx, age)
        monthly = float((1 + PARAMS.yearly_discount_rate) ** (Decimal(1) / 12) - 1)
        value = gammagamma.customer_lifetime_value(
            purchases.params,
            spend.params,
            np.where(free, 0.0, x),
            np.where(free, 0.0, tx),
            age,
            np.where(free, np.nan, monetary),
            periods=PARAMS.horizon_months,
            discount_rate=monthly,
            period_length=runs.MONTH_WEEKS,
        )
        return pd.DataFrame(
            {"p_alive": alive, "expected_purchases": expected, "predicted_value": value},
            index=s.index.rename("member_id"),
        )

    predicted, scoring_s = timed(scoring)
    emit("value_d_scoring_seconds", scoring_s, "s")
    emit("value_predicted_value_total", float(np.nansum(predicted["predicted_value"])), "CNY")
    total = load_s + summary_s + bgnbd_s + gg_s + scoring_s
    emit("value_summaries_fit_scoring_seconds", total, "s", target("<= 60"))
    emit("value_summaries_fit_scoring_from_frame_seconds", total - load_s, "s")
    emit("value_summaries_fit_scoring_from_frame_cpu_seconds", time.process_time() - cpu, "s")
    return daily, predicted


def pyramid_and_rfm(
    session: Session, window: facts.Window, daily: pd.DataFrame, predicted: pd.DataFrame
) -> None:
    """(e): the pyramid and RFM parts of `runs.compute`, as it does them, each step timed:
    the members and the period's costs from SQL, the pyramid's frames and rules, RFM's
    per-member aggregates and scores."""
    point_value = float(program.get(session).point_value)
    people, members_s = timed(lambda: facts.members(session, window))
    emit("value_e_load_members_seconds", members_s, "s")
    ids = pd.Index(people["member_id"].to_numpy(dtype=np.int64), name="member_id")
    costs, costs_s = timed(lambda: facts.period_costs(session, window).reindex(ids, fill_value=0))
    emit("value_e_load_period_costs_seconds", costs_s, "s")

    def the_pyramid() -> pd.DataFrame:
        in_period = (daily["date"].dt.date >= window.period_start).to_numpy()
        joined = pd.to_datetime(people["joined"]).dt.date.to_numpy()
        members, sales = runs.pyramid_inputs(ids, joined, daily[in_period], costs, window)
        rules = pyramid.ValueRules(
            margin=float(PARAMS.margin),
            period_days=PARAMS.period_days,
            value_per_point=point_value,
            yearly_service_cost=float(PARAMS.yearly_service_cost),
        )
        values = pyramid.member_value(members, sales, rules)
        values["predicted_value"] = (
            float(PARAMS.margin) * predicted["predicted_value"].reindex(ids).to_numpy()
        )
        layered = pyramid.assign_layers(
            values, pyramid.LayerRules(float(PARAMS.top_share), float(PARAMS.growth_factor))
        )
        pyramid.layer_summary(values.assign(layer=layered["layer"]))
        return layered

    cpu = time.process_time()
    layered, pyramid_s = timed(the_pyramid)
    emit("value_e_pyramid_rules_seconds", pyramid_s, "s")
    print(f"# layers: {layered['layer'].value_counts().to_dict()}", file=sys.stderr)

    def the_rfm() -> pd.DataFrame:
        grouped = daily.groupby("customer_id", sort=True)
        spend_all = grouped["ticks"].sum().reindex(ids, fill_value=0)
        last_day = grouped["date"].max().reindex(ids)
        days_ever = grouped.size().reindex(ids, fill_value=0)
        return rfm.score(
            pd.DataFrame(
                {
                    "member_id": ids,
                    "last_purchase": last_day.to_numpy(),
                    "purchases": days_ever.to_numpy(),
                    "monetary": spend_all.to_numpy() / facts.TICKS,
                }
            ),
            window.as_of,
        )

    scored, rfm_s = timed(the_rfm)
    emit("value_e_rfm_seconds", rfm_s, "s")
    print(f"# RFM segments: {scored['segment'].value_counts().to_dict()}", file=sys.stderr)
    total = members_s + costs_s + pyramid_s + rfm_s
    emit("value_pyramid_and_rfm_seconds", total, "s", target("<= 30"))
    emit("value_pyramid_and_rfm_from_frames_seconds", pyramid_s + rfm_s, "s")
    emit("value_pyramid_and_rfm_from_frames_cpu_seconds", time.process_time() - cpu, "s")


def with_dask(daily: pd.DataFrame, as_of: date) -> None:
    """The summaries from Parquet on a 2-worker LocalCluster (`analytics.partitioned`),
    checked against one machine's over the same rows."""
    import tempfile

    from distributed import Client, LocalCluster

    from analytics.partitioned import summarise_parquet

    log = pd.DataFrame(
        {
            "customer_id": daily["customer_id"],
            "date": daily["date"],
            "amount": daily["ticks"] / facts.TICKS,
        }
    )
    single, seconds = timed(lambda: summarise(log, as_of))
    emit("value_summaries_one_machine_seconds", seconds, "s")
    with tempfile.TemporaryDirectory(prefix="value-bench-") as folder:
        files = 16  # cut by rows, as a log is written: customers span files

        def write() -> None:
            for i, rows in enumerate(np.array_split(np.arange(len(log)), files)):
                log.iloc[rows].to_parquet(Path(folder) / f"part-{i:03d}.parquet", index=False)

        _, seconds = timed(write)
        emit("value_dask_write_parquet_seconds", seconds, "s")
        with (
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40
            ) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            distributed, seconds = timed(lambda: summarise_parquet(folder, as_of, client=client))
    emit("value_summaries_dask_2_workers_from_parquet_seconds", seconds, "s")
    emit("value_summaries_dask_equal", int(distributed.equals(single)), "flag", "== 1")


def whole_run(session: Session, window: facts.Window, daily: pd.DataFrame) -> None:
    """(f): `runs._predictions`, `runs.compute`, `runs.run` (rolled back)."""
    _, seconds = timed(lambda: runs._predictions(daily, window.as_of, PARAMS))
    emit("value_f_predictions_as_runs_does_them_seconds", seconds, "s")
    computed, seconds = timed(lambda: runs.compute(session, PARAMS, base="CNY", zone=ZONE))
    emit("value_f_runs_compute_seconds", seconds, "s")
    emit("value_f_runs_compute_members", len(computed.scores), "members")


def run_and_store(session: Session) -> None:
    """`runs.run`, rolled back; its compute is timed apart (the function it calls is wrapped,
    nothing else changes), so the store is the rest."""
    inner: list[float] = []
    compute = runs.compute

    def timed_compute(*args: Any, **kwargs: Any) -> runs.Computed:
        result, seconds = timed(lambda: compute(*args, **kwargs))
        inner.append(seconds)
        return result

    runs.compute = timed_compute
    try:
        stored, seconds = timed(lambda: runs.run(session, ACTOR, PARAMS, base="CNY", zone=ZONE))
        _, flush_s = timed(session.flush)
    finally:
        runs.compute = compute
    emit("value_f_runs_run_compute_and_store_seconds", seconds + flush_s, "s")
    emit("value_f_runs_run_store_seconds", seconds + flush_s - sum(inner), "s")
    emit("value_f_runs_run_members_stored", stored.members, "members")
    session.rollback()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dask", action="store_true", help="also summarise on a LocalCluster")
    parser.add_argument(
        "--only", default="", help="comma-separated: predictions, pyramid, compute, run"
    )
    args = parser.parse_args(argv)
    only = {part for part in args.only.split(",") if part}
    members = n(1_000_000)
    emit("value_cpus", os.cpu_count() or 0, "cpus")
    emit("value_load_average_at_start", os.getloadavg()[0], "runnable")
    window = facts.Window(AS_OF, PARAMS.period_days, ZONE)
    with database() as url:
        prepare(url, members)
        with session_of(url) as session:
            sizes(session)
            daily, predicted = predictions(session, window)
            if not only or "pyramid" in only:
                pyramid_and_rfm(session, window, daily, predicted)
            if args.dask:
                with_dask(daily, window.as_of)
            if not only or "compute" in only:
                whole_run(session, window, daily)
            del daily, predicted
            if not only or "run" in only:
                run_and_store(session)
    emit("value_load_average_at_end", os.getloadavg()[0], "runnable")


if __name__ == "__main__":
    main()
