"""A burst of reward redemptions larger than the connection pool, while another client keeps
reading the balance: the outside review's reproduction of the 30 s stall, made harder.

50 concurrent redemptions for one member whose points pay for 10, on PostgreSQL (row locks,
the default pool of 5 + 10 connections). `tests/web/test_http_load.py` runs the same scenario
and asserts what it must do (exactly 10 succeed, 40 refusals, no 5xx, no dropped connection);
this script prints how long it took. Target: every refusal in under 2 s on this machine (the
stall made them wait for the pool's 30 s timeout).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from pydantic import SecretStr
from sqlalchemy.orm import Session

from bench._harness import database, emit, live_server
from core.accounts import api_keys
from core.audit import Actor
from core.db import make_engine
from core.settings import Settings
from core.timeutil import utcnow
from loyalty import coupons, members, rewards
from web.app import create_app

ZONE = ZoneInfo("Asia/Shanghai")
COST, AFFORDABLE, ATTEMPTS = 100, 10, 50


@dataclass(frozen=True)
class Shop:
    key: str
    number: str
    reward_id: int


@dataclass
class Burst:
    results: list[tuple[int, float, str]]  # status (-1: transport error), seconds, body
    reads: list[int] = field(default_factory=list)
    read_errors: list[str] = field(default_factory=list)


def prepare(url: str) -> Shop:
    """A member with points for exactly AFFORDABLE rewards, and a till's API key."""
    engine = make_engine(url)
    actor = Actor.cli("burst")
    with Session(engine) as session:
        member = members.create(
            session, actor, members.Profile(name="Li Lei", phone="13900000001"), zone=ZONE
        )
        batch = coupons.create_batch(
            session, actor, name="Coffee", kind="gift", gift="Coffee", currency="CNY", valid_days=30
        )
        reward = rewards.save(session, actor, name="Coffee", points_cost=COST, batch_id=batch.id)
        rewards.adjust(
            session,
            actor,
            member.id,
            COST * AFFORDABLE - member.balance,  # less any sign-up bonus: 10 rewards exactly
            reason="Welcome",
            key="load",
            at=utcnow(),
            zone=ZONE,
        )
        _, key = api_keys.create(
            session, actor, name="till", scopes=["purchases:write", "members:read"]
        )
        session.commit()
        shop = Shop(key, member.number, reward.id)
    engine.dispose()
    return shop


def fire(base: str, shop: Shop) -> Burst:
    """ATTEMPTS redemptions at once, and one keep-alive reader until they are all answered."""
    headers = {"Authorization": f"Bearer {shop.key}"}
    start = threading.Barrier(ATTEMPTS + 1)
    done = threading.Event()
    burst = Burst(results=[])

    def redeem(i: int) -> tuple[int, float, str]:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            start.wait()
            began = time.monotonic()
            try:
                answer = client.post(
                    f"/api/v1/members/{shop.number}/rewards/{shop.reward_id}/redeem",
                    headers={"Idempotency-Key": f"burst-key-{i}"},
                )
            except httpx.HTTPError as exc:
                return -1, time.monotonic() - began, repr(exc)
            return answer.status_code, time.monotonic() - began, answer.text

    def read_balance() -> None:
        # One keep-alive connection throughout: a dropped connection shows as an error.
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            start.wait()
            while not done.is_set():
                try:
                    answer = client.get(f"/api/v1/members/{shop.number}/balance")
                    burst.reads.append(answer.status_code)
                except httpx.HTTPError as exc:
                    burst.read_errors.append(repr(exc))
                    return

    reader = threading.Thread(target=read_balance)
    reader.start()
    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        burst.results = list(pool.map(redeem, range(ATTEMPTS)))
    done.set()
    reader.join(timeout=60)
    return burst


def main() -> None:
    with database() as url, tempfile.TemporaryDirectory() as data_dir:
        shop = prepare(url)
        settings = Settings(
            env="test", data_dir=Path(data_dir), database_url=url, secret_key=SecretStr("b" * 40)
        )
        with live_server(create_app(settings)) as base:
            burst = fire(base, shop)
    refusals = [t for status, t, _ in burst.results if status == 409]
    granted = [t for status, t, _ in burst.results if status == 201]
    emit("burst_granted", len(granted), "requests", f"== {AFFORDABLE}")
    emit("burst_refused", len(refusals), "requests", f"== {ATTEMPTS - AFFORDABLE}")
    if refusals:
        emit("burst_refusal_median", statistics.median(refusals), "s")
        emit("burst_refusal_slowest", max(refusals), "s", "< 2")
    if granted:
        emit("burst_granted_slowest", max(granted), "s")
    emit("burst_balance_reads", len(burst.reads), "requests", ">= 1")


if __name__ == "__main__":
    main()
