"""ROI report at scale: 1,000 campaigns, 100,000 receipts, 1,000,000 revenue rows on
PostgreSQL. Prints the report's time and a bare SQL GROUP BY over the same tables."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from bench._harness import database, emit
from campaigns import report_data
from core.db import make_engine, make_session_factory

CAMPAIGNS, RECEIPTS, REVENUE = 1_000, 100_000, 1_000_000

LOAD = [
    """INSERT INTO users (email, name, status, created_at)
       VALUES ('bench@example.com', 'Bench Owner', 'active', now())""",
    """INSERT INTO campaigns (code, name, channel_id, objective, owner_id, status, starts_on,
         ends_on, currency, budget_amount, target_segment, notes, created_at, updated_at)
       SELECT 'C' || lpad(g::text, 4, '0'), 'Campaign ' || g,
              (SELECT id FROM channels ORDER BY id OFFSET (g % 9) LIMIT 1), '',
              (SELECT id FROM users WHERE email = 'bench@example.com'), 'active',
              date '2025-12-01' + (g % 300), date '2025-12-01' + (g % 300) + 30,
              CASE WHEN g % 10 = 0 THEN 'USD' ELSE 'CNY' END,
              10000 + (g * 37) % 90000, '', '', now(), now()
       FROM generate_series(1, :campaigns) AS g""",
    """INSERT INTO receipts (campaign_id, vendor, vendor_key, description, category, amount,
         tax_amount, currency, expense_date, payment_mode, status, duplicate_flags, created_at)
       SELECT c.id, 'Vendor ' || (g % 50), 'vendor ' || (g % 50), '',
              (ARRAY['media','creative','gifts','events','staff'])[1 + g % 5],
              round((10 + (g::bigint * 7919) % 499000 / 100.0)::numeric, 2), 0,
              CASE WHEN g % 20 = 0 THEN 'USD' ELSE 'CNY' END,
              date '2025-12-01' + (g % 360), 'company',
              (ARRAY['draft','submitted','approved','rejected','paid'])[1 + g % 5],
              '[]'::json, now()
       FROM generate_series(1, :receipts) AS g
       JOIN campaigns c ON c.code = 'C' || lpad((1 + g % :campaigns)::text, 4, '0')""",
    """INSERT INTO revenue_records (campaign_id, received_on, amount, currency, reference,
         orders, created_at)
       SELECT (SELECT min(id) FROM campaigns) + g % :campaigns, date '2025-12-01' + (g % 360),
              round((1 + (g::bigint * 104729) % 199900 / 100.0)::numeric, 2), 'CNY', '',
              1 + g % 5, now()
       FROM generate_series(1, :revenue) AS g""",
    """INSERT INTO exchange_rates (currency, rate_date, rate)
       SELECT 'USD', d::date, 7.1 + (extract(doy FROM d) % 20) / 100.0
       FROM generate_series(date '2025-11-01', date '2026-11-30', interval '1 day') AS d""",
    "ANALYZE",
]

# The hand-written GROUP BY the report is measured against: the same figures per campaign,
# kept apart by currency (adding USD to CNY would give a wrong number, so any correct query
# must split them). BLIND_SQL ignores currency and is printed for information.
_RECEIPT_SUMS = """
    sum(amount) FILTER (WHERE status IN ('approved', 'paid')) AS approved,
    sum(amount) FILTER (WHERE status = 'paid') AS paid,
    sum(amount) FILTER (WHERE status = 'submitted') AS pending,
    sum(amount) FILTER (WHERE status IN ('approved', 'paid') AND category = 'media') AS media"""
BARE_SQL = f"""
SELECT c.id, c.code, c.budget_amount, r.currency, r.approved, r.paid, r.pending, r.media,
       v.currency, v.revenue, v.orders
FROM campaigns c
LEFT JOIN (SELECT campaign_id, currency, {_RECEIPT_SUMS}
           FROM receipts GROUP BY campaign_id, currency) r ON r.campaign_id = c.id
LEFT JOIN (SELECT campaign_id, currency, sum(amount) AS revenue, sum(orders) AS orders
           FROM revenue_records GROUP BY campaign_id, currency) v ON v.campaign_id = c.id
"""
BLIND_SQL = f"""
SELECT c.id, c.code, c.budget_amount, r.approved, r.paid, r.pending, r.media,
       v.revenue, v.orders
FROM campaigns c
LEFT JOIN (SELECT campaign_id, {_RECEIPT_SUMS}
           FROM receipts GROUP BY campaign_id) r ON r.campaign_id = c.id
LEFT JOIN (SELECT campaign_id, sum(amount) AS revenue, sum(orders) AS orders
           FROM revenue_records GROUP BY campaign_id) v ON v.campaign_id = c.id
"""


def best_of(runs: int, *works: Callable[[], object]) -> list[float]:
    """Best time of each, over `runs` interleaved rounds, so drift hits both alike."""
    for work in works:
        work()  # warm up caches and the connection pool
    best = [float("inf")] * len(works)
    for _ in range(runs):
        for i, work in enumerate(works):
            started = time.perf_counter()
            work()
            best[i] = min(best[i], time.perf_counter() - started)
    return best


def main() -> None:
    with database() as url:
        engine = make_engine(url)
        if engine.dialect.name != "postgresql":
            print(json.dumps({"name": "roi_report", "skipped": "needs PostgreSQL"}))
            return
        started = time.perf_counter()
        with engine.begin() as conn:
            for statement in LOAD:
                conn.execute(
                    text(statement),
                    {"campaigns": CAMPAIGNS, "receipts": RECEIPTS, "revenue": REVENUE},
                )
        emit("roi_fixture_load_seconds", time.perf_counter() - started, "s")
        factory = make_session_factory(engine)

        def report() -> object:
            with factory() as session:
                return report_data.build(session, "CNY", report_data.ReportFilter())

        def bare() -> object:
            with factory() as session:
                return session.execute(text(BARE_SQL)).all()

        def blind() -> object:
            with factory() as session:
                return session.execute(text(BLIND_SQL)).all()

        rows = len(report().rows)  # type: ignore[attr-defined]
        t_report, t_sql, t_blind = best_of(5, report, bare, blind)
        emit("roi_report_rows", rows, "rows")
        emit("roi_report_seconds", t_report, "s", "<= 1.0")
        emit("roi_bare_sql_seconds", t_sql, "s")
        emit("roi_report_vs_sql_ratio", t_report / t_sql, "x", "<= 1.5")
        emit("roi_currency_blind_sql_seconds", t_blind, "s")
        emit("roi_report_vs_currency_blind_sql_ratio", t_report / t_blind, "x")
        engine.dispose()


if __name__ == "__main__":
    main()
