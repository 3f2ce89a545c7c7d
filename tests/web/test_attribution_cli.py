"""`retain attribution`: credits from a ChannelAttribution paths file and from the database,
as a table, CSV or JSON; derived and imported touchpoints."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from attribution import touchpoints
from attribution.models import AttributionRun, Touchpoint
from attribution.touchpoints import TouchInput
from core.audit import Actor
from core.db import make_engine, make_session_factory
from core.settings import get_settings
from loyalty import members, purchases
from web.cli import app

runner = CliRunner()
BRYL = Path(__file__).parents[1] / "attribution" / "data" / "bryl_2016_three_journeys.csv"
ZONE = ZoneInfo("Asia/Shanghai")


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_markov_on_the_classic_three_journeys_file_prints_02_04_04() -> None:
    table = invoke("attribution", "run", "--paths", str(BRYL), "--model", "markov", "--order", "1")
    lines = table.splitlines()
    assert lines[0].startswith("markov (order 1): 1 conversion(s)")
    assert [line.split()[:2] for line in lines[2:]] == [
        ["C1", "0.200000"],
        ["C2", "0.400000"],
        ["C3", "0.400000"],
    ]

    as_csv = invoke("attribution", "run", "--paths", str(BRYL), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert [(r["key"], r["conversions"], r["removal_effect"]) for r in rows] == [
        ("C1", "0.200000", "0.500000"),
        ("C2", "0.400000", "1.000000"),
        ("C3", "0.400000", "1.000000"),
    ]

    as_json = json.loads(invoke("attribution", "run", "--paths", str(BRYL), "--format", "json"))
    assert [c["conversions"] for c in as_json[0]["credits"]] == ["0.200000", "0.400000", "0.400000"]
    assert as_json[0]["model"] == "markov" and as_json[0]["run_id"] is None


def test_every_model_on_a_file_and_the_options(tmp_path: Path) -> None:
    every = json.loads(
        invoke("attribution", "run", "--paths", str(BRYL), "--model", "all", "--format", "json")
    )
    # A paths file has no times: time decay is left out of "all".
    assert [m["model"] for m in every] == [
        "first",
        "last",
        "linear",
        "position",
        "markov",
        "shapley",
        "ordered-shapley",
    ]
    for model in every:
        assert sum(Decimal(c["conversions"]) for c in model["credits"]) == Decimal(1)

    repeats = tmp_path / "repeats.csv"
    repeats.write_text(
        "path;total_conversions;total_conversion_value;total_null\n"
        "email > email > search;3;300.00;0\n"
    )
    kept = invoke(
        "attribution", "run", "--paths", str(repeats), "--model", "linear", "--format", "csv"
    )
    collapsed = invoke(
        "attribution",
        "run",
        "--paths",
        str(repeats),
        "--model",
        "linear",
        "--collapse",
        "--format",
        "csv",
    )
    assert "linear,email,2.000000,200.00" in kept
    assert "linear,email,1.500000,150.00" in collapsed

    for bad in (["--model", "magic"], ["--format", "xml"], ["--model", "time-decay"]):
        result = runner.invoke(app, ["attribution", "run", "--paths", str(BRYL), *bad])
        assert result.exit_code == 1, result.output
    broken = tmp_path / "broken.csv"
    broken.write_text("path,total_conversions\nemail > ,x\n")
    result = runner.invoke(app, ["attribution", "run", "--paths", str(broken)])
    assert result.exit_code == 1 and "Line 2" in result.output


def test_runs_from_the_database_are_stored_and_touchpoints_derived_and_imported(
    data_dir: Path,
) -> None:
    invoke("migrate")
    factory = make_session_factory(make_engine(get_settings().sqlalchemy_url))
    actor = Actor.cli("test")
    at = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
    with factory() as session:
        member = members.create(
            session, actor, members.Profile(name="Li Lei", phone="13800001111"), zone=ZONE
        )
        touchpoints.record_batch(
            session,
            actor,
            [
                TouchInput("web", "E1", "email", "click", at, member_number=member.number),
                TouchInput(
                    "web", "S1", "sms", "message", at.replace(day=3), member_number=member.number
                ),
            ],
        )
        purchases.record(
            session,
            actor,
            purchases.PurchaseInput(
                source="pos",
                external_id="P1",
                occurred_at=at.replace(day=4),
                amount=Decimal("80.00"),
                currency="CNY",
                member_id=member.id,
            ),
            base_currency="CNY",
            zone=ZONE,
        )
        session.commit()
        number = member.number

    out = invoke(
        "attribution", "run", "--model", "linear", "--from", "2026-03-01", "--to", "2026-03-31"
    )
    assert "stored as run" in out and "email" in out and "40.00" in out
    every = json.loads(invoke("attribution", "run", "--model", "all", "--format", "json"))
    assert {m["model"] for m in every} >= {"time-decay", "markov"}
    assert all(m["run_id"] for m in every) and every[0]["currency"] == "CNY"
    invoke("attribution", "run", "--no-store", "--model", "shapley")
    with factory() as session:
        assert session.scalar(select(func.count(AttributionRun.id))) == 9

    assert "purchase 0" in invoke("attribution", "derive")
    data = data_dir / "touches.csv"
    data.write_text(
        "source,external_id,channel,kind,occurred_at,member_number\n"
        f"ads,I1,douyin,impression,2026-03-01T09:00:00+08:00,{number}\n"
    )
    assert "Imported 1 touchpoint(s)" in invoke("attribution", "import", str(data))
    assert "(1 already there)" in invoke("attribution", "import", str(data))
    data.write_text(
        "source,external_id,channel,kind,occurred_at,member_number\n"
        "ads,I2,fax,impression,2026-03-01T09:00:00+08:00,M1\n"
    )
    refused = runner.invoke(app, ["attribution", "import", str(data)])
    assert refused.exit_code == 1 and "line 2: Unknown channel 'fax'" in refused.output
    with factory() as session:
        assert session.scalar(select(func.count(Touchpoint.id))) == 3


@pytest.mark.parametrize(
    "command",
    [["attribution"], ["attribution", "run"], ["attribution", "derive"], ["attribution", "import"]],
)
def test_every_attribution_command_has_help(command: list[str]) -> None:
    assert "Usage:" in invoke(*command, "--help")
