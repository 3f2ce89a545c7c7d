"""The member portal on PostgreSQL, for a member with 10,000 ledger entries. Prints JSON lines:

- server-side time (the app's Server-Timing header) of the home page, median (target < 50 ms);
- the same for the first history page (target < 50 ms);
- the 50th history page against the first (target ≤ 1.5×: keyset pagination, not OFFSET).

Requests go over HTTP to a live server on loopback, signed in as the member.
"""

from __future__ import annotations

import re
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.orm import Session

from bench._harness import database, emit, live_server
from core.audit import Actor
from core.db import make_engine
from core.passwords import hash_password
from core.settings import Settings
from loyalty import members
from loyalty.models import MemberAccount
from web.app import create_app

ENTRIES = 10_000
PASSWORD = "bench-password"  # noqa: S105 - a throwaway database
T0 = datetime(2025, 12, 1, 2, 0, tzinfo=UTC)
_TIMING = re.compile(r"app;dur=([\d.]+)")


def setup(url: str) -> None:
    """One member with 5,000 purchases and 10,000 entries (an earn for each purchase, and a
    bonus, redeem or expiry in between), written straight to the tables."""
    engine = make_engine(url)
    with Session(engine) as session:
        member = members.create(
            session,
            Actor.cli("bench"),
            members.Profile(name="Bench Member", email="bench@example.com"),
            zone=ZoneInfo("Asia/Shanghai"),
            at=T0 - timedelta(days=400),
        )
        session.add(
            MemberAccount(
                member_id=member.id,
                password_hash=hash_password(PASSWORD),
                activated_at=T0,
            )
        )
        params = {"m": member.id, "t0": T0 - timedelta(days=365), "n": ENTRIES // 2}
        session.execute(
            text(
                """INSERT INTO purchases (source, external_id, member_id, occurred_at, amount,
                     currency, discount, base_amount, refunded_amount, net_base_amount, state,
                     points_earned, points_reversed, fingerprint, created_at, store)
                   SELECT 'pos', 'B' || g, :m, :t0 + g * interval '1 hour', 50 + g % 300, 'CNY',
                          0, 50 + g % 300, 0, 50 + g % 300, 'completed', 50 + g % 300, 0, '',
                          :t0, 'Store ' || (g % 12)
                   FROM generate_series(1, :n) AS g"""
            ),
            params,
        )
        session.execute(
            text(
                """INSERT INTO ledger_entries (member_id, occurred_at, type, points,
                     balance_after, reason, rule, source_type, source_id, actor_kind,
                     actor_label, idempotency_key)
                   SELECT :m, p.occurred_at, 'earn', p.points_earned, 0,
                          'Points for your purchase', 'base', 'purchase', p.id, 'cli', 'bench',
                          'bench:earn:' || p.id
                   FROM purchases p WHERE p.member_id = :m
                   UNION ALL
                   SELECT :m, :t0 + g * interval '1 hour' + interval '30 minutes',
                          CASE g % 3 WHEN 0 THEN 'bonus' WHEN 1 THEN 'redeem' ELSE 'expire' END,
                          CASE g % 3 WHEN 0 THEN 300 WHEN 1 THEN -100 ELSE -10 END, 0,
                          CASE g % 3 WHEN 0 THEN 'Repeat purchase bonus'
                               WHEN 1 THEN 'Reward: ¥10 voucher' ELSE 'Points expired' END,
                          CASE g % 3 WHEN 0 THEN 'repeat_purchase' WHEN 1 THEN 'reward:1'
                               ELSE 'expiry' END,
                          NULL, NULL, 'cli', 'bench', 'bench:other:' || g
                   FROM generate_series(1, :n - 1) AS g"""
            ),
            params,
        )
        session.execute(
            text(
                """UPDATE members SET balance = (SELECT sum(points) FROM ledger_entries
                   WHERE member_id = :m) WHERE id = :m"""
            ),
            params,
        )
        session.execute(text("ANALYZE"))
        session.commit()
    engine.dispose()


def timed(client: httpx.Client, path: str, times: int) -> float:
    """The median of the app's own timing over `times` requests, after two warm-ups."""
    durations = []
    for n in range(times + 2):
        response = client.get(path)
        response.raise_for_status()
        if n >= 2:
            found = _TIMING.search(response.headers["server-timing"])
            assert found, response.headers
            durations.append(float(found.group(1)))
    return statistics.median(durations)


def main() -> None:
    with database() as url:
        setup(url)
        settings = Settings(
            env="test", data_dir=Path("var/bench"), database_url=url, secret_key=SecretStr("b" * 40)
        )
        with live_server(create_app(settings)) as base, httpx.Client(base_url=base) as client:
            form = client.get("/my/signin").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token
            signed = client.post(
                "/my/signin",
                data={
                    "identifier": "bench@example.com",
                    "password": PASSWORD,
                    "csrf_token": token.group(1),
                },
            )
            assert signed.status_code == 303, signed.text
            # Walk to page 50 the way a member does: "load more", 49 times.
            path, cursor = "/my/history", None
            for _ in range(49):
                page = client.get(path, headers={"HX-Request": "true", "HX-Target": "more"})
                found = re.search(r'hx-get="(/my/history\?before=\d+)"', page.text)
                assert found, "ran out of pages before page 50"
                path = cursor = found.group(1)
            assert cursor is not None
            home = timed(client, "/my", 40)
            first = timed(client, "/my/history", 40)
            fiftieth = timed(client, cursor, 40)
    emit("portal_home_median_ms_10000_entries", home, "ms", "< 50")
    emit("portal_history_page_1_median_ms", first, "ms", "< 50")
    emit("portal_history_page_50_median_ms", fiftieth, "ms")
    emit("portal_history_page_50_vs_page_1", fiftieth / first, "x", "<= 1.5")


if __name__ == "__main__":
    main()
