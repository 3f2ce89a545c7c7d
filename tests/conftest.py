"""Test fixtures: both databases for real (migrated with Alembic), each test rolled back.

Tests that take `engine` or `db` run once on SQLite and once on a throwaway
PostgreSQL server started from the machine's binaries (ids `sqlite`, `postgresql`).
With CI=true a missing PostgreSQL or Chromium fails the run instead of skipping.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core import migrations
from core.db import make_engine
from core.pgserver import PostgresUnavailable, ThrowawayPostgres

CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgresql"]


def unavailable(reason: str) -> None:
    """Skip on a developer machine; fail on CI, where everything must be installed."""
    if CI:
        pytest.fail(f"{reason} (CI=true: required, not skipped)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayPostgres]:
    try:
        server = ThrowawayPostgres().start()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    yield server
    server.stop()


_db_counter = Counter[str]()


def fresh_database_url(request: pytest.FixtureRequest, backend: str) -> str:
    """An empty database of the given kind, unique to the caller."""
    _db_counter[backend] += 1
    name = f"retain_test_{_db_counter[backend]}"
    if backend == "sqlite":
        folder = request.getfixturevalue("tmp_path_factory").mktemp("sqlite")
        return f"sqlite:///{folder / (name + '.db')}"
    server: ThrowawayPostgres = request.getfixturevalue("pg_server")
    return server.create_database(name)


@pytest.fixture(scope="session", params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database shared by the session's tests of one backend."""
    eng = make_engine(fresh_database_url(request, request.param))
    migrations.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside a transaction rolled back at the end."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


_BACKEND_ID = re.compile(r"\[(?:[^\]]*-)?(sqlite|postgresql)(?:-[^\]]*)?\]")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            match = _BACKEND_ID.search(getattr(report, "nodeid", ""))
            if match and getattr(report, "when", "call") in ("call", "setup"):
                if outcome == "passed" and report.when != "call":
                    continue
                counts[(match.group(1), outcome)] += 1
    if counts:
        terminalreporter.section("database backends")
        for backend in BACKENDS:
            parts = [
                f"{counts[(backend, o)]} {o}"
                for o in ("passed", "failed", "error", "skipped")
                if counts[(backend, o)]
            ]
            terminalreporter.write_line(f"{backend}: {', '.join(parts) or 'no tests'}")
