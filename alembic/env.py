"""Alembic environment: the models' metadata, and a connection from the caller or settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from alembic import context
from core.db import make_engine
from core.money import MoneyAmount
from core.settings import get_settings
from core.timeutil import UTCDateTime
from web.registry import metadata

config = context.config
target_metadata = metadata()


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations spell our column types with plain SQLAlchemy types.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, MoneyAmount):
        # Dialect-specific storage (exact integers on SQLite), so migrations use the type.
        autogen_context.imports.add("from core.money import MoneyAmount")
        return "MoneyAmount()"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().sqlalchemy_url
    engine = make_engine(url)
    with engine.connect() as conn:
        run(conn)
        conn.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run against a database.")
main()
