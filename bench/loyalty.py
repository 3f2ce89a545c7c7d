"""Loyalty at scale on PostgreSQL. Prints JSON lines:

- purchases posted through the service, one transaction each, per second (target ≥ 1,000/s
  in one process; 8 threads, each on its own members, as tills are);
- the same with one single-use coupon on each purchase (target ≥ 800/s);
- CSV import of 1,000,000 purchases for 100,000 members (target ≤ 120 s);
- nightly tier evaluation plus expiry over 1,000,000 members (target ≤ 60 s);
- generating 1,000,000 unique coupon codes (target ≤ 30 s).

Set BENCH_SCALE=0.1 for a quick run at a tenth of the sizes (targets then do not apply), and
BENCH_ONLY=service,coupons,codes,import,nightly to run some of them.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from bench._harness import database, emit
from core.audit import Actor
from core.db import make_engine, make_session_factory
from loyalty import coupons, imports, jobs, purchases, tiers

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
FULL = SCALE >= 1
ZONE = ZoneInfo("Asia/Shanghai")
ACTOR = Actor.cli("bench")
T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def n(count: int) -> int:
    return max(1, int(count * SCALE))


def target(text_: str) -> str | None:
    return text_ if FULL else None


def add_members(factory: sessionmaker[Session], count: int, first: int) -> None:
    """Members straight into the table (the sign-up service is not what is measured)."""
    with factory() as session, session.begin():
        session.execute(
            text(
                """INSERT INTO members (number, name, phone, referral_code, tier_id, tier_since,
                     joined_at, marketing_consent, status, balance, pending_points, debt, notes,
                     created_at, updated_at)
                   SELECT 'B' || lpad(g::text, 9, '0'), 'Member ' || g,
                          '1' || lpad(g::text, 10, '0'), 'R' || lpad(g::text, 9, '0'),
                          (SELECT id FROM tiers WHERE rank = 0),
                          :t0, :t0, false, 'active', 0, 0, 0, '', :t0, :t0
                   FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g"""
            ),
            {"first": first, "last": first + count - 1, "t0": T0 - timedelta(days=400)},
        )


def _post(
    factory: sessionmaker[Session],
    ids: list[int],
    numbers: range,
    tag: str,
    codes: list[str] | None = None,
) -> None:
    for i in numbers:
        with factory() as session, session.begin():
            purchases.record(
                session,
                ACTOR,
                purchases.PurchaseInput(
                    source="bench",
                    external_id=f"{tag}{i}",
                    occurred_at=T0 + timedelta(seconds=i),
                    amount=Decimal(20 + i % 300),
                    currency="CNY",
                    member_id=ids[i % len(ids)],
                    coupon_codes=(codes[i],) if codes else (),
                ),
                base_currency="CNY",
                zone=ZONE,
            )


def bench_service(factory: sessionmaker[Session]) -> None:
    """One transaction per purchase, the way the API posts them: single-threaded, and with
    8 threads in this one process (each thread on its own members, as tills are)."""
    count = n(4_000)
    add_members(factory, 2_000, 1)
    with factory() as session:
        ids = list(session.scalars(text("SELECT id FROM members ORDER BY id LIMIT 2000")))
    started = time.perf_counter()
    _post(factory, ids, range(count // 4), "S")
    single = (count // 4) / (time.perf_counter() - started)
    emit("purchases_posted_per_second_1_thread", single, "purchases/s")
    threads = 8
    share = count // threads
    workers = [
        threading.Thread(
            target=_post, args=(factory, ids[t::threads], range(t * share, (t + 1) * share), "T")
        )
        for t in range(threads)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rate = share * threads / (time.perf_counter() - started)
    emit("purchases_posted_per_second_8_threads", rate, "purchases/s", target(">= 1000"))
    emit("driver_ceiling_6_statement_transactions_per_second_8_threads", ceiling(factory), "tx/s")


def bench_coupons(factory: sessionmaker[Session]) -> None:
    """Members' purchases each with one single-use coupon (bearer codes, 5.00 off), one
    transaction each, 8 threads as above."""
    count, threads = n(4_000), 8
    add_members(factory, 2_000, 30_000_001)
    with factory() as session, session.begin():
        batch = coupons.create_batch(
            session,
            ACTOR,
            name="Bench coupons",
            kind="fixed",
            value=Decimal(5),
            currency="CNY",
            valid_days=400,
        )
        coupons.generate(session, ACTOR, batch.id, count, at=T0 - timedelta(days=1))
    with factory() as session:
        ids = list(
            session.scalars(text("SELECT id FROM members WHERE number LIKE 'B03%' ORDER BY id"))
        )
        codes = list(
            session.scalars(
                text("SELECT code FROM coupons WHERE batch_id = :b ORDER BY id"), {"b": batch.id}
            )
        )
    share = count // threads
    workers = [
        threading.Thread(
            target=_post,
            args=(factory, ids[t::threads], range(t * share, (t + 1) * share), "C", codes),
        )
        for t in range(threads)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rate = share * threads / (time.perf_counter() - started)
    with factory() as session:
        used = session.scalar(
            text("SELECT count(*) FROM coupons WHERE batch_id = :b AND state = 'redeemed'"),
            {"b": batch.id},
        )
    assert used == share * threads, used
    emit("coupon_purchases_posted_per_second_8_threads", rate, "purchases/s", target(">= 800"))


def ceiling(factory: sessionmaker[Session], threads: int = 8, count: int = 4_000) -> float:
    """What this machine allows one Python process at all: the six statements a purchase
    needs at least (lock member, look for the id, insert purchase, lot, entry, update
    balance), sent straight through the driver with no ORM and no rules, on scratch tables.
    The service figure above is read against this one."""
    engine = factory.kw["bind"]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TABLE IF EXISTS ceil_m, ceil_p, ceil_l, ceil_e;"
            "CREATE UNLOGGED TABLE ceil_m (id bigint PRIMARY KEY, balance int);"
            "INSERT INTO ceil_m SELECT g, 0 FROM generate_series(1, 2000) g;"
            "CREATE UNLOGGED TABLE ceil_p (id bigserial PRIMARY KEY, src text, ext text,"
            " member bigint, amount numeric, UNIQUE (src, ext));"
            "CREATE INDEX ON ceil_p (member);"
            "CREATE UNLOGGED TABLE ceil_l (id bigserial PRIMARY KEY, member bigint, points int,"
            " purchase bigint);"
            "CREATE UNLOGGED TABLE ceil_e (id bigserial PRIMARY KEY, member bigint, points int,"
            " lot bigint, key text UNIQUE)"
        )

    def post(t: int) -> None:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for i in range(count // threads):
                member = (i * threads + t) % 2000 + 1
                cur.execute("SELECT balance FROM ceil_m WHERE id = %s FOR UPDATE", (member,))
                cur.execute("SELECT count(*) FROM ceil_p WHERE member = %s", (member,))
                cur.execute(
                    "INSERT INTO ceil_p (src, ext, member, amount) VALUES ('b', %s, %s, 10)"
                    " ON CONFLICT DO NOTHING RETURNING id",
                    (f"{t}-{i}", member),
                )
                (purchase,) = cur.fetchone()
                cur.execute(
                    "INSERT INTO ceil_l (member, points, purchase) VALUES (%s, 10, %s)"
                    " RETURNING id",
                    (member, purchase),
                )
                (lot,) = cur.fetchone()
                cur.execute(
                    "INSERT INTO ceil_e (member, points, lot, key) VALUES (%s, 10, %s, %s)",
                    (member, lot, f"k{purchase}"),
                )
                cur.execute("UPDATE ceil_m SET balance = balance + 10 WHERE id = %s", (member,))
                raw.commit()
        finally:
            raw.close()

    workers = [threading.Thread(target=post, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count // threads * threads / (time.perf_counter() - started)


def bench_import(factory: sessionmaker[Session]) -> None:
    rows, people = n(1_000_000), n(100_000)
    add_members(factory, people, 10_000_001)
    lines = ["source,external_id,occurred_at,amount,member_number"]
    start = T0 - timedelta(days=300)
    for i in range(rows):
        when = (start + timedelta(seconds=i * 25)).isoformat()
        lines.append(
            f"shop,I{i},{when},{10 + i % 490}.{i % 100:02d},B{10_000_001 + i % people:09d}"
        )
    data = ("\n".join(lines) + "\n").encode()
    started = time.perf_counter()
    report = imports.import_purchases(factory, ACTOR, data, base="CNY", zone=ZONE, workers=2)
    seconds = time.perf_counter() - started
    assert report.imported == rows, report
    emit(f"csv_import_{rows}_purchases_{people}_members", seconds, "s", target("<= 120"))


def bench_nightly(factory: sessionmaker[Session]) -> None:
    people = n(1_000_000)
    add_members(factory, people, 20_000_001)
    with factory() as session, session.begin():
        # One purchase and one active lot per member; half the lots are past their expiry
        # (as on 1 January under "end of next year"). Tiers match each member's points except
        # for one in twenty, Gold without the points any more: a night's worth of moves.
        session.execute(
            text(
                """INSERT INTO purchases (source, external_id, member_id, occurred_at, amount,
                 currency, discount, base_amount, refunded_amount, net_base_amount, state,
                 points_earned,
                 points_reversed, fingerprint, created_at)
               SELECT 'night', m.id::text, m.id, :t0 - interval '30 days', 100, 'CNY', 0, 100, 0,
                      100, 'completed', 100 + (m.id % 7) * 900, 0, '', :t0
               FROM members m WHERE m.number LIKE 'B02%'"""
            ),
            {"t0": T0},
        )
        session.execute(
            text(
                """INSERT INTO point_lots (member_id, points, remaining, state, earned_at,
                 available_at, expires_at)
               SELECT m.id, 100, 100, 'active', :t0 - interval '400 days',
                      :t0 - interval '393 days',
                      CASE WHEN m.id % 2 = 0 THEN :t0 - interval '1 day'
                           ELSE :t0 + interval '300 days' END
               FROM members m WHERE m.number LIKE 'B02%'"""
            ),
            {"t0": T0},
        )
        session.execute(
            text(
                """UPDATE members SET balance = 100,
                 tier_id = (SELECT id FROM tiers WHERE rank = CASE
                   WHEN members.id % 20 = 0 THEN 2 WHEN members.id % 7 = 0 THEN 0
                   WHEN members.id % 7 = 6 THEN 2 ELSE 1 END)
               WHERE number LIKE 'B02%'"""
            )
        )
        session.execute(text("ANALYZE"))
    started = time.perf_counter()
    with factory() as session, session.begin():
        expired = jobs.expire_lots(session, T0, ZONE)
    with factory() as session, session.begin():
        moved = tiers.evaluate(session, T0)
    seconds = time.perf_counter() - started
    assert expired >= people // 2 - 1, expired
    print(f"# expired {expired:,} lots; tiers {moved}", file=sys.stderr)
    emit(f"nightly_tiers_and_expiry_{people}_members", seconds, "s", target("<= 60"))


def bench_codes(factory: sessionmaker[Session]) -> None:
    count = n(1_000_000)
    with factory() as session, session.begin():
        batch = coupons.create_batch(
            session,
            ACTOR,
            name="Bench",
            kind="fixed",
            value=Decimal(5),
            currency="CNY",
            valid_days=30,
        )
    started = time.perf_counter()
    with factory() as session, session.begin():
        coupons.generate(session, ACTOR, batch.id, count)
    seconds = time.perf_counter() - started
    with factory() as session:
        distinct = session.scalar(
            text("SELECT count(DISTINCT code) FROM coupons WHERE batch_id = :b"), {"b": batch.id}
        )
    assert distinct == count
    emit(f"generate_{count}_coupon_codes", seconds, "s", target("<= 30"))


def main() -> None:
    with database() as url:
        engine = make_engine(url, pool_size=10)
        factory = make_session_factory(engine)
        only = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}
        for name, run in (
            ("service", bench_service),
            ("coupons", bench_coupons),
            ("codes", bench_codes),
            ("import", bench_import),
            ("nightly", bench_nightly),
        ):
            if not only or name in only:
                run(factory)
        engine.dispose()


if __name__ == "__main__":
    main()
