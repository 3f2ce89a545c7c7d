"""SQLAlchemy engine, session factory and the declarative Base."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, Engine, MetaData, Result, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Stable constraint names so Alembic migrations are reproducible on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINTs and DDL rollback; let
    # SQLAlchemy emit BEGIN itself (the recipe in SQLAlchemy's SQLite dialect docs).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # A writer waits for the one before it rather than failing (see BEGIN IMMEDIATE below).
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # The web server hands a request's session to a worker thread.
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # IMMEDIATE: a transaction takes SQLite's one write lock when it begins, waiting for
        # it (busy_timeout) if another holds it. A deferred transaction that reads, then
        # writes after someone else wrote, fails at once with "database is locked": SQLite
        # cannot move its snapshot forward, and no timeout helps. Requests are short and
        # SQLite has one writer anyway; the slow part of a sign-in (argon2) runs outside.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine, "checkin", _mark_idle)
        event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A connection back from the database's restart or a dropped network is found by a ping
# before use; but a ping on every checkout is a round trip on every request, and on the
# busiest path (posting purchases) it cost a sixth of the throughput. Connections used in
# the last few seconds skip it: one that died in between fails its request once and is
# replaced (SQLAlchemy invalidates it on the disconnect error), as without any ping.
IDLE_PING_SECONDS = 5.0


def _mark_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.get("idle_since")
    if idle_since is not None and time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:  # any failure: this connection is not usable
        # The pool discards this connection and checks out another (SQLAlchemy's recipe
        # for custom pessimistic pings).
        raise DisconnectionError(str(exc)) from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One business action: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def rowcount(result: Result[Any]) -> int:
    """Rows an INSERT/UPDATE/DELETE touched (`Session.execute` types its result loosely)."""
    return int(result.rowcount) if isinstance(result, CursorResult) else 0
