"""The migrations and the models agree, and the migrations run both ways, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from core import migrations
from core.db import make_engine
from tests.conftest import BACKENDS, fresh_database_url
from web.registry import metadata


def test_one_head_and_dated_names() -> None:
    script = ScriptDirectory.from_config(migrations.config("sqlite://"))
    assert len(script.get_heads()) == 1
    for revision in script.walk_revisions():
        assert revision.path is not None
        name = revision.path.rsplit("/", 1)[-1]
        assert name[:8].isdigit() and name.startswith(revision.revision), name


def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata())
    assert diff == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_downgrade_upgrade(request: pytest.FixtureRequest, backend: str) -> None:
    fresh = make_engine(fresh_database_url(request, backend))
    try:
        assert migrations.is_empty(fresh)
        migrations.upgrade(fresh)
        tables = set(inspect(fresh).get_table_names())
        assert {"users", "user_roles", "api_keys", "audit_log", "auth_sessions"} <= tables
        migrations.downgrade(fresh, "base")
        assert set(inspect(fresh).get_table_names()) <= {"alembic_version"}
        migrations.upgrade(fresh)
        assert set(inspect(fresh).get_table_names()) == tables
    finally:
        fresh.dispose()
