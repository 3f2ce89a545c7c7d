"""A test client over the app, sharing the rolled-back test session."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import users
from core.accounts.models import User
from core.audit import Actor
from core.passwords import hash_password
from core.settings import Settings
from core.timeutil import utcnow
from loyalty import members
from loyalty.models import Member, MemberAccount
from web.app import create_app
from web.deps import get_db

PASSWORD = "correct-horse-9"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(env="test", data_dir=tmp_path, secret_key=SecretStr("t" * 40), demo=True)


@pytest.fixture
def app(settings: Settings, db: Session) -> FastAPI:
    application = create_app(settings, session_factory=sessionmaker())

    def test_db() -> Iterator[Session]:
        # As get_db does: a failed request rolls back (here to the test's savepoint), so
        # the next request in the same test starts clean.
        try:
            yield db
        except BaseException:
            db.rollback()
            raise

    application.dependency_overrides[get_db] = test_db
    return application


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def make_user(db: Session) -> Callable[..., User]:
    def make(
        email: str = "ada@example.com", roles: tuple[str, ...] = ("admin",), name: str = ""
    ) -> User:
        user = users.create(
            db,
            Actor.system("test"),
            email=email,
            name=name or email.split("@")[0].title(),
            roles=roles,
            password=PASSWORD,
        )
        db.commit()
        return user

    return make


def csrf_from(client: TestClient, path: str = "/signin") -> str:
    response = client.get(path)
    match = _CSRF.search(response.text)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> None:
    token = csrf_from(client)
    response = client.post(
        "/signin", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard"


@pytest.fixture
def admin_client(client: TestClient, make_user: Callable[..., User]) -> TestClient:
    make_user("admin@example.com", ("admin",), "Ada Admin")
    sign_in(client, "admin@example.com")
    return client


@pytest.fixture
def csrf(admin_client: TestClient) -> str:
    return csrf_from(admin_client, "/dashboard")


MEMBER_PASSWORD = "member-pass-1"


@pytest.fixture
def make_member(db: Session) -> Callable[..., Member]:
    """A member with an active portal account (password MEMBER_PASSWORD)."""

    def make(email: str = "mei@example.com", name: str = "Han Meimei", **profile: Any) -> Member:
        member = members.create(
            db,
            Actor.cli("test"),
            members.Profile(name=name, email=email, **profile),
            zone=ZoneInfo("Asia/Shanghai"),
        )
        db.add(
            MemberAccount(
                member_id=member.id,
                password_hash=hash_password(MEMBER_PASSWORD),
                activated_at=utcnow(),
            )
        )
        db.commit()
        return member

    return make


def member_sign_in(client: TestClient, identifier: str, password: str = MEMBER_PASSWORD) -> str:
    """Sign a member in; returns the CSRF token for the portal's forms."""
    token = csrf_from(client, "/my/signin")
    response = client.post(
        "/my/signin", data={"identifier": identifier, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return csrf_from(client, "/my/profile")
