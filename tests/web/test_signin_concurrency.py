"""Sign-ins at the same moment, over HTTP, on a real database file or server: 8 people
signing in with the right password while 4 threads keep sending wrong ones. Every right one
gets in. On SQLite this once answered 500 "database is locked": a sign-in read, spent a
quarter second in argon2 inside its transaction, then could not write because another had
written meanwhile."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from core import migrations
from core.accounts import users
from core.audit import Actor
from core.db import make_engine, make_session_factory
from core.settings import Settings
from tests.conftest import fresh_database_url
from web.app import create_app

PASSWORD = "correct-horse-9"
PEOPLE, GUESSERS, GUESSES = 8, 4, 3
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    eng = make_engine(fresh_database_url(request, request.param), pool_size=20, max_overflow=0)
    migrations.upgrade(eng)
    yield eng
    eng.dispose()


def _attempt(app: object, email: str, password: str) -> int:
    with TestClient(app, follow_redirects=False) as client:  # type: ignore[arg-type]
        token = _CSRF.search(client.get("/signin").text)
        assert token is not None
        response = client.post(
            "/signin", data={"email": email, "password": password, "csrf_token": token[1]}
        )
        return response.status_code


def test_right_passwords_get_in_while_others_guess(engine: Engine, tmp_path: Path) -> None:
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        for n in range(PEOPLE):
            users.create(
                session,
                Actor.system("test"),
                email=f"person{n}@example.com",
                name=f"Person {n}",
                roles=["marketer"],
                password=PASSWORD,
            )
    settings = Settings(env="test", data_dir=tmp_path, secret_key=SecretStr("t" * 40), demo=True)
    app = create_app(settings, session_factory=factory)
    results: dict[str, list[int]] = {"right": [], "wrong": []}
    errors: list[BaseException] = []

    def right(n: int) -> None:
        try:
            results["right"].append(_attempt(app, f"person{n}@example.com", PASSWORD))
        except BaseException as exc:
            errors.append(exc)

    def wrong(n: int) -> None:
        try:
            for _ in range(GUESSES):
                code = _attempt(app, f"person{n % PEOPLE}@example.com", "not-the-password")
                results["wrong"].append(code)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=right, args=(n,)) for n in range(PEOPLE)]
    threads += [threading.Thread(target=wrong, args=(n,)) for n in range(GUESSERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert results["right"] == [303] * PEOPLE, results
    assert sorted(set(results["wrong"])) == [401], results
