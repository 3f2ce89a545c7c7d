"""Test fixtures: both databases for real (migrated with Alembic), each test rolled back.

Tests that take `engine` or `db` run once on SQLite and once on a throwaway
PostgreSQL server started from the machine's binaries (ids `sqlite`, `postgresql`).
With CI=true a missing PostgreSQL or Chromium fails the run instead of skipping.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core import migrations
from core.db import make_engine
from core.pgserver import PostgresUnavailable, ThrowawayPostgres
from core.settings import get_settings

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


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Any, bool]]:
    """(client, processes) of a 2-worker LocalCluster for the Dask tests, one per test
    module: worker processes if the machine allows, else threads (and a warning that says
    so). If neither starts, the tests fail with the reason: never skip."""
    from distributed import Client, LocalCluster

    errors: list[str] = []
    for processes in (True, False):
        try:
            cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=2,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                silence_logs=40,
            )
        except Exception as exc:  # any failure to start is reported below
            errors.append(f"processes={processes}: {type(exc).__name__}: {exc}")
            continue
        if not processes:
            warnings.warn(
                "LocalCluster could not start worker processes here; the Dask tests ran on "
                f"2 worker threads instead ({errors[0]})",
                stacklevel=1,
            )
        with cluster, Client(cluster) as dask_client:  # type: ignore[no-untyped-call]
            yield dask_client, processes
        return
    pytest.fail("Dask could not start a LocalCluster: " + "; ".join(errors), pytrace=False)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data directory for the command line, its SQLite database inside: the settings
    from the environment, as `retain` reads them."""
    monkeypatch.setenv("RETAIN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RETAIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("RETAIN_ENV", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
