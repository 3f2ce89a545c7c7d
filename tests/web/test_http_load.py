"""A real server over real HTTP: a burst larger than the connection pool, and keep-alive
after a 500.

The burst is the outside review's reproduction, made harder: 50 concurrent reward
redemptions for one member whose points pay for 10, while another client keeps reading the
balance, on PostgreSQL (row locks, a pool of 15 connections). Exactly 10 succeed, every
refusal is a 409, nothing answers 5xx, and no connection drops. The scenario lives in
`bench/burst.py`, which also prints how long the refusals took (speed is a figure, not an
assertion).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench._harness import live_server
from bench.burst import AFFORDABLE, ATTEMPTS, Shop, fire, prepare
from core import migrations
from core.db import make_engine
from core.settings import Settings
from loyalty.models import Coupon, Member
from tests.conftest import fresh_database_url
from web.app import create_app


@pytest.fixture
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Shop]]:
    url = fresh_database_url(request, "postgresql")
    engine = make_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    prepared = prepare(url)
    settings = Settings(
        env="test", data_dir=tmp_path, database_url=url, secret_key=SecretStr("l" * 40)
    )
    with live_server(create_app(settings)) as base:
        yield base, url, prepared


def test_a_burst_of_redemptions_beyond_the_pool_answers_every_one(
    shop: tuple[str, str, Shop],
) -> None:
    base, url, prepared = shop
    burst = fire(base, prepared)

    # A request that stalled for the pool would end in its timeout error (5xx), not a 409.
    statuses = [status for status, _, _ in burst.results]
    assert statuses.count(201) == AFFORDABLE, burst.results
    assert statuses.count(409) == ATTEMPTS - AFFORDABLE, burst.results
    assert burst.reads and set(burst.reads) == {200}, (burst.reads, burst.read_errors)
    assert not burst.read_errors

    engine = make_engine(url)
    with Session(engine) as session:
        member = session.scalars(select(Member).where(Member.number == prepared.number)).one()
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
