"""Production's HTTPS header, and flash messages that cannot outgrow the session cookie."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import sessionmaker
from starlette.requests import Request

from core.settings import Settings
from web.app import create_app
from web.headers import HSTS
from web.rendering import FLASH_CHARS, FLASHES_KEPT, flash, pop_flashes


def _health(settings: Settings) -> dict[str, str]:
    with TestClient(create_app(settings, session_factory=sessionmaker())) as client:
        return dict(client.get("/healthz").headers)


def test_production_tells_browsers_to_keep_to_https(tmp_path: Path) -> None:
    key = SecretStr("k" * 40)
    production = Settings(
        env="production",
        secret_key=key,
        public_url="https://retain.example.com",
        data_dir=tmp_path,
    )
    assert _health(production).get("strict-transport-security") == HSTS
    development = Settings(env="development", secret_key=key, data_dir=tmp_path)
    assert "strict-transport-security" not in _health(development)


def test_a_long_message_is_cut_and_only_the_latest_few_are_kept() -> None:
    request = Request({"type": "http", "session": {}})
    for n in range(FLASHES_KEPT + 2):
        flash(request, f"{n}:" + "x" * 3000)
    kept = pop_flashes(request)
    assert [m["message"].split(":")[0] for m in kept] == [
        str(n) for n in range(2, FLASHES_KEPT + 2)
    ]
    assert all(len(m["message"]) == FLASH_CHARS and m["message"].endswith("…") for m in kept)
    assert pop_flashes(request) == []
