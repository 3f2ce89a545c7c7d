"""Run Alembic from code (CLI, tests, benchmarks) without depending on the working directory."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy import Connection, Engine, inspect

from alembic import command

SCRIPT_LOCATION = Path(__file__).resolve().parents[1] / "alembic"


def config(url: str, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        command.upgrade(config(str(engine.url), connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.downgrade(config(str(engine.url), connection), revision)


def is_empty(engine: Engine) -> bool:
    return not inspect(engine).has_table("alembic_version")
