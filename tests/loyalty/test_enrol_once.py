"""A staff form's one-time key enrols one member, even when the form is submitted twice at
the same moment (real threads on PostgreSQL, each with its own connection and transaction,
like two requests): the second answers the member the first enrolled."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core import migrations
from core.audit import AuditEntry
from core.db import make_engine, make_session_factory
from core.errors import Conflict, RetainError, ValidationFailed
from loyalty import members
from loyalty.models import LedgerEntry, Member
from tests.conftest import fresh_database_url
from tests.loyalty.conftest import ACTOR, ZONE, Shop


@pytest.fixture(scope="module")
def factory(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fresh_database_url(request, "postgresql"), pool_size=10, max_overflow=0)
    migrations.upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def enrol(session: Session, key: str | None, phone: str = "13911112222") -> Member:
    return members.create(
        session, ACTOR, members.Profile(name="Twice", phone=phone), zone=ZONE, key=key
    )


def at_once(factory: sessionmaker[Session], count: int, key: str) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        with factory() as session:
            barrier.wait()
            try:
                with session.begin():
                    results[i] = enrol(session, key).number
            except RetainError as exc:
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_one_key_submitted_at_once_enrols_one_member(factory: sessionmaker[Session]) -> None:
    numbers = at_once(factory, 4, "form-key-1")
    with factory() as session:
        found = session.scalars(select(Member.number)).all()
        bonuses = session.scalar(select(func.count(LedgerEntry.id)))
    assert len(found) == 1 and numbers == [found[0]] * 4
    assert bonuses == 1


def test_the_key_replays_and_another_key_is_a_clash(shop: Shop, db: Session) -> None:
    first = enrol(db, "key-a")
    assert enrol(db, "key-a").id == first.id  # a second submit of the same form
    with pytest.raises(Conflict) as clash:
        enrol(db, "key-b")  # a new form for the same phone
    assert clash.value.code == "member.phone_taken"
    assert enrol(db, None, phone="13911113333").id != first.id  # no key: enrols
    created = db.scalars(select(AuditEntry).where(AuditEntry.action == "member.create")).all()
    assert [a.after.get(members.ENROL_KEY) for a in created if a.after] == ["key-a", None]
    for bad in ("", "   ", "k\x00", "k" * 101):
        with pytest.raises(ValidationFailed) as refused:
            enrol(db, bad, phone="13911114444")
        assert refused.value.code == "member.key"
