"""`retain value run`: compute and store a customer value run against the configured database
and print the layer table, the members per segment and per type (issue 14)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from analytics.models import MemberScore, ValueRun
from core.audit import Actor
from core.db import make_engine, make_session_factory
from core.settings import get_settings
from loyalty import members, purchases
from tests.test_cli import invoke
from web.cli import app

runner = CliRunner()
ZONE = ZoneInfo("Asia/Shanghai")
JOINED = datetime(2025, 1, 5, 4, tzinfo=UTC)


def test_a_run_is_stored_and_its_tables_printed(data_dir: Path) -> None:
    invoke("migrate")
    factory = make_session_factory(make_engine(get_settings().sqlalchemy_url))
    actor = Actor.cli("test")
    with factory() as session:
        for i in range(5):
            member = members.create(
                session,
                actor,
                members.Profile(name=f"Member {i}", phone=f"1380000{i:04d}"),
                zone=ZONE,
                at=JOINED,
            )
            for k in range(i):
                purchases.record(
                    session,
                    actor,
                    purchases.PurchaseInput(
                        source="pos",
                        external_id=f"P{i}-{k}",
                        occurred_at=JOINED + timedelta(days=20 * k + i),
                        amount=Decimal(f"{(i + 1) * 30}.00"),
                        currency="CNY",
                        member_id=member.id,
                    ),
                    base_currency="CNY",
                    zone=ZONE,
                )
        session.commit()

    out = invoke(
        "value", "run", "--as-of", "2025-12-31", "--margin", "0.3", "--point-value", "0.01",
        "--service-cost", "2", "--horizon-months", "6",
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[0].startswith("Stored run 1: 5 member(s) as of 2025-12-31 (365 days)")
    assert lines[1].split()[:2] == ["layer", "members"]
    names = [line[:18].strip() for line in lines[2:7]]
    assert names == [
        "Most valuable",
        "Most growable",
        "Low contribution",
        "Negative value",
        "All members",
    ]
    assert lines[6].split()[2] == "5"
    assert "RFM segments:" in out and "Champions" in out and "No Purchase" in out
    assert "Loyalty types:" in out and "Super-value loyalty" in out
    with factory() as session:
        run = session.scalars(select(ValueRun)).one()
        assert run.params["horizon_months"] == 6 and run.params["yearly_service_cost"] == "2"
        assert run.actor_label == "command line"
        counted = session.scalar(
            select(func.count()).select_from(MemberScore).where(MemberScore.run_id == run.id)
        )
        assert counted == 5

    as_json = json.loads(invoke("value", "run", "--as-of", "2025-12-31", "--format", "json"))
    assert as_json["id"] == 2 and as_json["members"] == 5
    assert sum(row["members"] for row in as_json["layers"]) == 5
    assert as_json["params"]["margin"] == "0.3"
    assert Decimal(as_json["params"]["point_value"]) == Decimal("0.01")  # the program's


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--margin", "1.5"], "The gross margin must be between 0 and 1"),
        (["--margin", "30%"], "--margin: '30%' is not an amount"),
        (["--period-days", "7"], "The period must be 28–1095 days."),
        (["--format", "xml"], "Use --format text or json."),
    ],
)
def test_bad_options_are_refused_with_exit_code_1(
    data_dir: Path, args: list[str], message: str
) -> None:
    invoke("migrate")
    result = runner.invoke(app, ["value", "run", *args])
    assert result.exit_code == 1
    assert message in result.output
    with make_session_factory(make_engine(get_settings().sqlalchemy_url))() as session:
        assert session.scalar(select(func.count(ValueRun.id))) == 0


def test_value_run_has_help() -> None:
    assert "--as-of" in invoke("value", "run", "--help")
