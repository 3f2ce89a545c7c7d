"""Settings from the environment (prefix RETAIN_), with safe defaults for a laptop."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETAIN_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = None
    base_currency: str = "CNY"
    timezone: str = "Asia/Shanghai"
    secret_key: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Demo data and demo passwords are only ever allowed when this is on.
    demo: bool | None = None
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    signin_max_failures: int = Field(default=5, ge=1)
    signin_lock_minutes: int = Field(default=15, ge=1)
    # The address members reach Retain at, for links in messages (required in production:
    # a link must never be built from a request's Host header).
    public_url: str | None = None
    # Where member messages (activation, reset links) go; unset, they wait in the outbox.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "Retain <no-reply@localhost>"

    @field_validator("base_currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        value = value.strip().upper()
        if len(value) != 3 or not value.isalpha():
            raise ValueError("base currency must be an ISO 4217 code such as CNY")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{value}'; use an IANA name such as Asia/Shanghai"
            ) from None
        return value

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def demo_mode(self) -> bool:
        return (not self.is_production) if self.demo is None else self.demo

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sqlalchemy_url(self) -> str:
        if not self.database_url:
            return f"sqlite:///{(self.data_dir / 'retain.db').resolve()}"
        url = self.database_url
        # Plain postgresql:// URLs would select psycopg2; we ship psycopg 3.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    def link_base(self, request_base: str) -> str:
        """Where links in messages point. Outside production the request's own address is
        fine (a developer's laptop); production insists on RETAIN_PUBLIC_URL, so a forged
        Host header can never send a member a reset link to someone else's site."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.is_production:
            raise ConfigError(
                "config.public_url",
                "RETAIN_PUBLIC_URL is not set; production needs it to put links in messages.",
            )
        return request_base.rstrip("/")

    def check_production(self) -> None:
        """What production needs, checked when the server starts rather than on the first
        request that needs it: the signing key, and the public address links point to."""
        self.resolve_secret_key()
        if self.is_production and not (self.public_url or "").startswith("https://"):
            raise ConfigError(
                "config.public_url",
                "Set RETAIN_PUBLIC_URL to the https:// address members reach Retain at; "
                "production puts it in every link it sends.",
            )

    def resolve_secret_key(self) -> str:
        """The signing key: from the environment, or generated once into the data folder.

        Production never generates one: a key that changes on each deploy would sign
        everyone out, and a key on local disk may not be shared between instances.
        """
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value()
            if len(value) < 32:
                raise ConfigError("config.secret_key", "RETAIN_SECRET_KEY must be 32+ characters.")
            return value
        if self.is_production:
            raise ConfigError(
                "config.secret_key",
                "RETAIN_SECRET_KEY is not set. Production refuses to start without one; "
                "generate it with: python -c 'import secrets; print(secrets.token_urlsafe(48))'",
            )
        path = self.data_dir / SECRET_KEY_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
