"""The database kernel: SQLite pragmas, UTC times, one transaction per business action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from core.accounts.models import User, UserRole
from core.audit import Actor, AuditEntry, record
from core.db import make_engine, make_session_factory, transaction


def test_sqlite_has_foreign_keys_and_wal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_times_come_back_as_aware_utc(db: Session) -> None:
    shanghai = timezone(timedelta(hours=8))
    entry = record(db, Actor.cli(), "t.time", "thing", 1)
    entry.occurred_at = datetime(2026, 3, 1, 8, 30, tzinfo=shanghai)
    db.commit()
    db.expire_all()
    stored = db.scalar(select(AuditEntry.occurred_at).where(AuditEntry.id == entry.id))
    assert stored == datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    assert stored is not None and stored.utcoffset() == timedelta(0)


def test_naive_times_are_refused(db: Session) -> None:
    entry = record(db, Actor.cli(), "t.naive", "thing", 1)
    entry.occurred_at = datetime(2026, 3, 1, 8, 30)  # noqa: DTZ001 - the point of the test
    with pytest.raises(StatementError, match="naive datetime"):
        db.flush()


def test_foreign_keys_are_enforced(db: Session) -> None:
    db.add(UserRole(user_id=987654, role="admin"))
    with pytest.raises(IntegrityError):
        db.flush()


def test_a_failed_business_action_leaves_nothing_behind(engine: Engine) -> None:
    factory = make_session_factory(engine)
    marker = f"rollback-{engine.dialect.name}"
    with pytest.raises(RuntimeError), transaction(factory) as session:
        record(session, Actor.cli(), marker, "thing", 1)
        session.add(User(email=f"{marker}@example.com", name="X", status="active"))
        session.flush()
        raise RuntimeError("half-way")
    with factory() as session:
        assert session.scalar(select(func.count()).where(AuditEntry.action == marker)) == 0
        assert session.scalar(select(func.count()).where(User.email.startswith(marker))) == 0


def test_an_idle_postgresql_connection_that_died_is_replaced_before_use(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections ping only after being idle (core.db.IDLE_PING_SECONDS); a dead one is
    then swapped for a fresh one instead of failing the request."""
    import core.db
    from tests.conftest import fresh_database_url

    engine = make_engine(fresh_database_url(request, "postgresql"), pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    killer = make_engine(str(engine.url.render_as_string(hide_password=False)))
    with killer.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    killer.dispose()
    monkeypatch.setattr(core.db, "IDLE_PING_SECONDS", 0.0)  # everything counts as idle
    with engine.connect() as conn:
        second = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    assert second != first
    engine.dispose()
