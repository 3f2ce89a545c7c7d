"""The `retain` command line, run against a real SQLite file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from analytics.models import ValueRun
from core.accounts import api_keys, users
from core.accounts.models import ApiKey
from core.audit import Actor
from core.db import make_engine, make_session_factory
from core.settings import get_settings
from loyalty import members
from loyalty.models import Member
from web.cli import app

runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["migrate"],
        ["demo"],
        ["user", "create"],
        ["apikey", "create"],
        ["import", "receipts"],
        ["import", "revenue"],
        ["import", "rates"],
        ["report", "roi"],
        ["import", "purchases"],
        ["jobs", "run"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    output = invoke(*command, "--help")
    assert "Usage:" in output


def test_migrate_demo_user_and_key(data_dir: Path) -> None:
    invoke("migrate")
    assert (data_dir / "retain.db").exists()
    assert "3 accounts created, 0 already there; 30 campaigns and 2,000 members added" in invoke(
        "demo", "--if-empty"
    )
    assert "already has data" in invoke("demo", "--if-empty")
    assert "0 accounts created, 3 already there; 0 campaigns and 0 members added" in invoke(
        "demo"
    )  # idempotent

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
        # Two customer value runs a quarter apart, every member who had joined scored.
        stored = session.scalars(select(ValueRun).order_by(ValueRun.as_of)).all()
        members = session.scalar(select(func.count(Member.id)))
        assert 0 < stored[0].members < stored[1].members == members
        assert (stored[1].as_of - stored[0].as_of).days == 91


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


def test_imports_and_the_roi_report(data_dir: Path) -> None:
    invoke("migrate")
    invoke(
        "user",
        "create",
        "mei@example.com",
        "--name",
        "Mei",
        "--role",
        "marketer",
        "--password",
        "long-password-1",
    )
    from campaigns import planning
    from core.audit import Actor

    session = make_session_factory(make_engine(get_settings().sqlalchemy_url))()
    with session:
        owner = users.find_by_email(session, "mei@example.com")
        assert owner is not None
        planning.create(
            session,
            Actor.cli(),
            code="SPRING26",
            name="Spring",
            channel="wechat",
            owner_id=owner.id,
            starts_on=date(2026, 3, 1),
            ends_on=date(2026, 3, 31),
            budget=Decimal("1000"),
            currency="CNY",
        )
        session.commit()
    good = data_dir / "receipts.csv"
    good.write_text(
        "campaign_code,vendor,category,amount,currency,expense_date\n"
        "SPRING26,Ads,media,400,CNY,2026-03-02\n",
        encoding="utf-8-sig",
    )
    assert "Imported 1 receipts row(s)" in invoke("import", "receipts", str(good))
    bad = data_dir / "bad.csv"
    bad.write_text("campaign_code,received_on,amount,currency\nSPRING26,2026-03-02,x,CNY\n")
    result = runner.invoke(app, ["import", "revenue", str(bad)])
    assert result.exit_code == 1
    assert "line 2: amount: 'x' is not an amount" in result.output
    out = data_dir / "roi.xlsx"
    assert "Wrote 1 row(s)" in invoke(
        "report",
        "roi",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--format",
        "xlsx",
        "--out",
        str(out),
    )
    assert out.read_bytes()[:2] == b"PK"  # an XLSX is a zip
    bad_group = runner.invoke(app, ["report", "roi", "--group-by", "week", "--out", str(out)])
    assert bad_group.exit_code == 1 and "must be one of" in bad_group.output


def test_import_purchases_then_run_the_jobs(data_dir: Path) -> None:
    invoke("migrate")
    settings = get_settings()
    factory = make_session_factory(make_engine(settings.sqlalchemy_url))
    with factory() as session, session.begin():
        member = members.create(
            session,
            Actor.cli(),
            members.Profile(name="Li Lei", phone="13800001111"),
            zone=settings.zone,
        )
        number = member.number
    good = data_dir / "purchases.csv"
    good.write_text(
        "source,external_id,occurred_at,amount,member_number\n"
        f"pos,A1,2026-03-02T10:00:00+08:00,120,{number}\n"
        "pos,A2,2026-03-02T11:00:00+08:00,30,\n"
    )
    assert "Imported 2 purchase(s)" in invoke("import", "purchases", str(good))
    assert "0 purchase(s)" in invoke("import", "purchases", str(good))  # a rerun skips
    bad = data_dir / "bad.csv"
    bad.write_text("source,external_id,occurred_at,amount\npos,B1,soon,12\n")
    result = runner.invoke(app, ["import", "purchases", str(bad)])
    assert result.exit_code == 1 and "line 2: occurred_at" in result.output
    # The purchase's return window is long past: the job unlocks its points.
    output = invoke("jobs", "run")
    assert "unlock_pending: done 1" in output and "evaluate_tiers:" in output
    assert "unlock_pending: done 0" in invoke("jobs", "run", "--only", "unlock_pending")
    with factory() as session:
        member = members.by_number(session, number)
        assert (member.balance, member.pending_points) == (100 + 120 + 200, 0)


def test_serve_passes_workers_to_uvicorn(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options, app=app))
    invoke("serve", "--workers", "3")
    assert (seen["app"], seen["workers"], seen["factory"]) == ("web.app:create_app", 3, True)
    refused = runner.invoke(app, ["serve", "--workers", "2", "--reload"])
    assert refused.exit_code != 0 and "not both" in refused.output
