"""The `retain` command line, run against a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.accounts import api_keys, users
from core.accounts.models import ApiKey
from core.db import make_engine, make_session_factory
from core.settings import get_settings
from web.cli import app

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RETAIN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RETAIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("RETAIN_ENV", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def invoke(*args: str, input: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    "command", [[], ["serve"], ["migrate"], ["demo"], ["user", "create"], ["apikey", "create"]]
)
def test_every_command_has_help(command: list[str]) -> None:
    output = invoke(*command, "--help")
    assert "Usage:" in output


def test_migrate_demo_user_and_key(data_dir: Path) -> None:
    invoke("migrate")
    assert (data_dir / "retain.db").exists()
    assert "3 accounts created" in invoke("demo", "--if-empty")
    assert "already has data" in invoke("demo", "--if-empty")
    assert "0 accounts created, 3 already there" in invoke("demo")  # idempotent

    out = invoke(
        "user",
        "create",
        "li@example.com",
        "--name",
        "Li Lei",
        "--role",
        "finance",
        "--role",
        "marketer",
        input="long-password-1\nlong-password-1\n",
    )
    assert "Created li@example.com (finance, marketer)" in out
    out = invoke("apikey", "create", "Web shop", "--scope", "purchases:write")
    raw = out.strip().splitlines()[-1]

    session = make_session_factory(make_engine(get_settings().sqlalchemy_url))()
    with session:
        assert users.authenticate(session, get_settings(), "admin@demo.retain", "retain-demo", None)
        assert users.authenticate(
            session, get_settings(), "li@example.com", "long-password-1", None
        )
        key = session.scalar(select(ApiKey))
        assert key is not None and api_keys.authenticate(session, raw).id == key.id


def test_errors_are_plain_sentences(data_dir: Path) -> None:
    invoke("migrate")
    result = runner.invoke(
        app,
        [
            "user",
            "create",
            "x@example.com",
            "--name",
            "X",
            "--role",
            "boss",
            "--password",
            "long-password-1",
        ],
    )
    assert result.exit_code == 1
    assert "Unknown role 'boss'" in result.output
    assert "Traceback" not in result.output


def test_demo_is_refused_in_production(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("migrate")
    monkeypatch.setenv("RETAIN_ENV", "production")
    monkeypatch.setenv("RETAIN_SECRET_KEY", "p" * 40)
    get_settings.cache_clear()
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 1 and "only for demo mode" in result.output
