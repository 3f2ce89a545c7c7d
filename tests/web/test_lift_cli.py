"""`retain lift CAMPAIGN_CODE` and `retain lift sample-size`: the report as text and JSON
against a migrated database, the calculator, and refusals with exit code 1."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from analytics import segments
from analytics.segments import Criteria
from campaigns import planning
from core.accounts import users
from core.audit import Actor
from core.db import make_engine, make_session_factory
from core.settings import get_settings
from loyalty import audiences, members, purchases
from tests.test_cli import invoke
from web.cli import app

runner = CliRunner()
ZONE = ZoneInfo("Asia/Shanghai")
ACTOR = Actor.cli("test")


def test_the_lift_of_a_campaign_as_text_and_json(data_dir: Path) -> None:
    invoke("migrate")
    factory = make_session_factory(make_engine(get_settings().sqlalchemy_url))
    with factory() as session:
        owner = users.create(
            session, ACTOR, email="m@example.com", name="M", roles=["marketer"], password="x" * 12
        )
        people = [
            members.create(
                session,
                ACTOR,
                members.Profile(name=f"P{n}", phone=f"1360000{n:04d}", region="East"),
                zone=ZONE,
                at=datetime(2026, 1, 5, tzinfo=UTC),
            )
            for n in range(30)
        ]
        campaign = planning.create(
            session,
            ACTOR,
            code="CLI26",
            name="Command line",
            channel="sms",
            owner_id=owner.id,
            starts_on=date(2026, 3, 1),
            ends_on=date(2026, 3, 31),
            budget=Decimal(1000),
            currency="CNY",
        )
        segment = segments.save(session, ACTOR, "East", "", Criteria(regions=("East",))).segment
        segments.set_campaign_target(
            session,
            ACTOR,
            campaign.id,
            segment.id,
            today=date(2026, 2, 1),
            zone=ZONE,
            holdout_share=Decimal("0.5"),
        )
        for n, member in enumerate(people[::2]):
            purchases.record(
                session,
                ACTOR,
                purchases.PurchaseInput(
                    source="pos",
                    external_id=f"C{n}",
                    occurred_at=datetime(2026, 3, 2, 4, tzinfo=UTC) + timedelta(days=n),
                    amount=Decimal("88.00"),
                    currency="CNY",
                    member_id=member.id,
                ),
                base_currency="CNY",
                zone=ZONE,
            )
        arms = audiences.arms(session, campaign.id)
        session.commit()

    text = invoke("lift", "CLI26")
    assert text.startswith("CLI26 · Command line: 2026-03-01 – 2026-03-31, money in CNY")
    assert "50% of the segment held out" in text
    treated = next(line for line in text.splitlines() if line.startswith("got the campaign"))
    assert treated.split()[3] == f"{arms.treated:,}"
    assert "incremental revenue" in text and "Verdict:" in text

    body = json.loads(invoke("lift", "cli26", "--format", "json"))
    assert body["state"] == "measured" and body["campaign"]["code"] == "CLI26"
    assert body["treated"]["members"] == arms.treated
    assert body["holdout"]["members"] == arms.held_out

    missing = runner.invoke(app, ["lift", "NOPE26"])
    assert missing.exit_code == 1 and "No campaign with code NOPE26" in missing.output
    bad = runner.invoke(app, ["lift", "CLI26", "--format", "xml"])
    assert bad.exit_code == 1 and "--format text or json" in bad.output


def test_sample_size_and_help() -> None:
    out = invoke("lift", "sample-size", "--baseline", "0.1", "--lift", "0.5")
    assert "686 held out and 686 who get the campaign, 1,372 in all" in out
    body = json.loads(
        invoke(
            "lift",
            "sample-size",
            "--baseline",
            "0.1",
            "--lift",
            "0.5",
            "--holdout-share",
            "0.2",
            "--format",
            "json",
        )
    )
    assert body["holdout"] < body["treated"] and body["total"] == body["holdout"] + body["treated"]
    refused = runner.invoke(app, ["lift", "sample-size", "--baseline", "0.8", "--lift", "0.5"])
    assert refused.exit_code == 1 and "Error:" in refused.output
    tiny = runner.invoke(app, ["lift", "sample-size", "--baseline", "1e-300", "--lift", "0.5"])
    assert tiny.exit_code == 1 and "baseline must be from 0.0001" in tiny.output
    assert "sample-size" in invoke("lift", "--help")
    assert "Usage:" in invoke("lift", "sample-size", "--help")
