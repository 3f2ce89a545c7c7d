"""A real server over real HTTP: a burst larger than the connection pool, and keep-alive
after a 500.

The burst is the outside review's reproduction, made harder: 50 concurrent reward
redemptions for one member whose points pay for 10, while another client keeps reading the
balance, on PostgreSQL (row locks, a pool of 15 connections). Exactly 10 succeed, every
refusal is a 409 in well under the pool timeout, nothing answers 5xx, and no connection drops.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench._harness import live_server
from core import migrations
from core.accounts import api_keys
from core.audit import Actor
from core.db import make_engine
from core.settings import Settings
from core.timeutil import utcnow
from loyalty import coupons, members, rewards
from loyalty.models import Coupon, Member
from tests.conftest import fresh_database_url
from web.app import create_app

ZONE = ZoneInfo("Asia/Shanghai")
COST, AFFORDABLE, ATTEMPTS = 100, 10, 50


@dataclass
class Shop:
    base: str
    db_url: str
    key: str
    number: str
    reward_id: int


@pytest.fixture
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    url = fresh_database_url(request, "postgresql")
    engine = make_engine(url)
    migrations.upgrade(engine)
    actor = Actor.cli("test")
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
        number, reward_id = member.number, reward.id
    settings = Settings(
        env="test", data_dir=tmp_path, database_url=url, secret_key=SecretStr("l" * 40)
    )
    with live_server(create_app(settings)) as base:
        yield Shop(base, url, key, number, reward_id)
    engine.dispose()


def test_a_burst_of_redemptions_beyond_the_pool_answers_every_one_quickly(shop: Shop) -> None:
    headers = {"Authorization": f"Bearer {shop.key}"}
    start = threading.Barrier(ATTEMPTS + 1)
    done = threading.Event()
    reads: list[int] = []
    read_errors: list[str] = []

    def redeem(i: int) -> tuple[int, float, str]:
        with httpx.Client(base_url=shop.base, headers=headers, timeout=60) as client:
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
        with httpx.Client(base_url=shop.base, headers=headers, timeout=60) as client:
            start.wait()
            while not done.is_set():
                try:
                    reads.append(client.get(f"/api/v1/members/{shop.number}/balance").status_code)
                except httpx.HTTPError as exc:
                    read_errors.append(repr(exc))
                    return

    reader = threading.Thread(target=read_balance)
    reader.start()
    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        results = list(pool.map(redeem, range(ATTEMPTS)))
    done.set()
    reader.join(timeout=60)

    statuses = [status for status, _, _ in results]
    assert statuses.count(201) == AFFORDABLE, results
    assert statuses.count(409) == ATTEMPTS - AFFORDABLE, results
    slow = [(s, round(t, 2)) for s, t, _ in results if s == 409 and t >= 2]
    assert not slow, f"refusals slower than 2 s: {slow}"
    assert reads and set(reads) == {200}, (reads, read_errors)
    assert not read_errors

    engine = make_engine(shop.db_url)
    with Session(engine) as session:
        member = session.scalars(select(Member).where(Member.number == shop.number)).one()
        issued = session.scalar(select(func.count()).select_from(Coupon))
    engine.dispose()
    assert member.balance == 0 and issued == AFFORDABLE


def test_the_connection_stays_open_after_a_500(tmp_path: Path) -> None:
    settings = Settings(env="test", data_dir=tmp_path, secret_key=SecretStr("k" * 40))
    app = create_app(settings)

    @app.get("/api/v1/_boom")
    def boom() -> None:
        raise RuntimeError("internals")

    with live_server(app) as base:
        host, port = base.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/api/v1/_boom")
        first = connection.getresponse()
        first.read()
        sock = connection.sock
        assert first.status == 500
        assert first.getheader("x-content-type-options") == "nosniff"
        assert (first.getheader("connection") or "").lower() != "close"
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        second.read()
        assert connection.sock is sock and sock is not None  # the same connection, reused
        assert second.status == 200
        connection.close()
