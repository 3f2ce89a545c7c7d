from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from core.errors import ConfigError
from core.settings import Settings


def test_defaults_use_sqlite_under_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / 'retain.db'}"
    assert settings.base_currency == "CNY"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.demo_mode


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RETAIN_DATABASE_URL", "postgresql://u@db/retain")
    monkeypatch.setenv("RETAIN_PORT", "9001")
    monkeypatch.setenv("RETAIN_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.sqlalchemy_url == "postgresql+psycopg://u@db/retain"
    assert settings.port == 9001
    assert settings.data_dir == tmp_path


def test_secret_key_generated_once_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = settings.resolve_secret_key()
    assert len(first) >= 32
    assert Settings(data_dir=tmp_path / "data").resolve_secret_key() == first
    mode = (tmp_path / "data" / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_production_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    settings = Settings(env="production", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="RETAIN_SECRET_KEY"):
        settings.resolve_secret_key()
    assert not (tmp_path / "secret_key").exists()
    assert not settings.demo_mode
    key = "k" * 40
    assert Settings(env="production", secret_key=SecretStr(key)).resolve_secret_key() == key


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="ISO 4217"):
        Settings(base_currency="yuan")
    with pytest.raises(ValidationError, match="unknown time zone"):
        Settings(timezone="Mars/Olympus")
    assert Settings(base_currency=" usd ").base_currency == "USD"


def test_production_needs_its_public_https_address_at_start(tmp_path: Path) -> None:
    key = SecretStr("k" * 40)
    for url in (None, "http://retain.example.com"):
        with pytest.raises(ConfigError, match="RETAIN_PUBLIC_URL"):
            Settings(env="production", secret_key=key, public_url=url).check_production()
    Settings(
        env="production", secret_key=key, public_url="https://retain.example.com"
    ).check_production()
    Settings(data_dir=tmp_path).check_production()  # development needs neither
