"""Schemathesis over every API operation: no 5xx and answers that match the schema.

It runs on SQLite and PostgreSQL, once with a key that holds every scope and once with no
key at all. `RETAIN_FUZZ_EXAMPLES` sets the examples per operation (default 25, a few
minutes in all); the run is derandomised so a failure repeats.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import positive_data_acceptance
from sqlalchemy.orm import Session

from core.accounts import api_keys
from core.audit import Actor
from core.settings import Settings
from web.app import create_app

EXAMPLES = int(os.environ.get("RETAIN_FUZZ_EXAMPLES", "25"))

# The schema is read once from an app with no database; each case is sent to the test's own
# app (its rolled-back session on one backend).
_schema_app = create_app(
    Settings(env="test", data_dir=Path(tempfile.gettempdir()), secret_key=SecretStr("s" * 40))
)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", _schema_app)
# The test sets the Authorization header itself (a real key, or none): schemathesis must not
# generate one, nor count a case that omits it as "schema-violating" when the key is then sent.
schema.config.generation.update(with_security_parameters=False)


@pytest.fixture(params=["all-scopes", "no-key"])
def auth(request: pytest.FixtureRequest, db: Session) -> dict[str, str]:
    if request.param == "no-key":
        return {}
    _, raw = api_keys.create(db, Actor.system("fuzz"), name="fuzz", scopes=list(api_keys.SCOPES))
    db.commit()
    return {"Authorization": f"Bearer {raw}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_has_no_server_errors(case: Any, app: FastAPI, auth: dict[str, str]) -> None:
    # Every other check runs. "Schema-valid request accepted" is left out: a valid shape may
    # still name a campaign or member that does not exist, and 404/422 is then the answer.
    case.call_and_validate(headers=auth, app=app, excluded_checks=[positive_data_acceptance])
