"""The loyalty cost on the ROI report page, its exports, the API and the command line
(issue 15).

One campaign, GIVE (CNY, budget 1,000, 2026-03-01 … 04-30), value per point 0.05:
  a receipt of 100.00, approved, 03-05;
  a member pays 100.00 on 03-10 with GIVE's coupon of 50.00 off (so the purchase is GIVE's,
  revenue 100.00), and GIVE's bonus rule gives that purchase 200 points (10.00);
  loyalty cost 50.00 + 10.00 = 60.00; total cost 160.00.
With it (the default):  profit −60.00; ROI −60/160 = −37.5%; ratio 100/160 = 0.63.
Without it:             profit 0.00;   ROI 0.0%;              ratio 1.00.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from campaigns import planning
from campaigns.models import Campaign
from core.accounts.models import User
from core.audit import Actor
from core.db import make_engine, make_session_factory
from core.settings import get_settings
from loyalty import coupons, members, purchases
from loyalty import program as program_settings
from loyalty.purchases import PurchaseInput
from tests.campaigns.conftest import file_receipt
from tests.web.conftest import sign_in
from tests.web.test_roi_report_page import Report, query
from web.cli import app as cli_app

D = Decimal
SYSTEM = Actor.system()
AT = datetime(2026, 3, 10, 4, tzinfo=UTC)  # 12:00 in Shanghai


def give_away(db: Session, owner_id: int, budget: str = "1000", status: str = "draft") -> Campaign:
    """GIVE and its loyalty cost, as the module docstring says."""
    program_settings.update(db, SYSTEM, point_value=D("0.05"))
    campaign = planning.create(
        db,
        SYSTEM,
        code="GIVE",
        name="Give-away",
        channel="wechat",
        owner_id=owner_id,
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 4, 30),
        budget=D(budget),
        currency="CNY",
        status=status,
    )
    file_receipt(db, campaign.id, "100.00", day=date(2026, 3, 5))
    program_settings.save_rule(
        db, SYSTEM, name="Give 200", campaign_id=campaign.id, fixed_points=200
    )
    batch = coupons.create_batch(
        db,
        SYSTEM,
        name="50 off",
        kind="fixed",
        value=D(50),
        currency="CNY",
        valid_days=30,
        campaign_id=campaign.id,
    )
    member = members.create(
        db,
        SYSTEM,
        members.Profile(name="Li Lei", phone="13800000001"),
        zone=get_settings().zone,
        at=AT,
    )
    coupon = coupons.issue(db, SYSTEM, batch.id, member, reason="test", at=AT)
    purchases.record(
        db,
        SYSTEM,
        PurchaseInput(
            source="pos",
            external_id="P1",
            occurred_at=AT,
            amount=D(100),
            currency="CNY",
            member_id=member.id,
            discount=D(50),
            coupon_codes=(coupon.code,),
        ),
        base_currency="CNY",
        zone=get_settings().zone,
    )
    return campaign


@pytest.fixture
def shop(db: Session, make_user: Callable[..., User], client: TestClient) -> Campaign:
    marketer = make_user("marketer@example.com", ("marketer",), "Marketer")
    campaign = give_away(db, marketer.id)
    db.commit()
    sign_in(client, "marketer@example.com")
    return campaign


def page(client: TestClient, **params: str) -> Report:
    answer = client.get("/reports/roi", params=params)
    assert answer.status_code == 200, answer.text
    return Report(answer.text)


def test_the_page_counts_loyalty_cost_by_default(client: TestClient, shop: Campaign) -> None:
    report = page(client)
    assert report.labels[:6] == [
        "Code",
        "Name",
        "Budget",
        "Approved cost",
        "Loyalty cost",
        "Total cost",
    ]
    give = report.row("GIVE")
    shown = {label: give[label]["text"] for label in report.labels}
    assert (shown["Approved cost"], shown["Loyalty cost"], shown["Total cost"]) == (
        "100.00",
        "60.00",
        "160.00",
    )
    assert (shown["Revenue"], shown["Profit"], shown["ROI %"]) == ("100.00", "-60.00", "-37.5%")
    assert shown["Input-output ratio"] == "1 : 0.63"
    assert report.total["Loyalty cost"]["text"] == "60.00"
    html = report.html
    switch = html.index('id="loyalty-cost-switch"')
    assert html.rindex('<input type="hidden" name="loyalty_cost" value="0">', 0, switch) > 0
    assert "checked" in html[switch : html.index(">", switch)]
    assert "Loyalty cost is included in the total cost." in html
    # The state's link and the headers' links: the default needs no parameter.
    assert 'href="/reports/roi?loyalty_cost=0"' in html
    assert "loyalty_cost" not in query(report.head("Profit")["href"])
    sorted_by = page(client, sort="loyalty_cost", dir="desc")
    assert sorted_by.head("Loyalty cost")["aria-sort"] == "descending"


def test_the_switch_off_shows_the_report_without_it(client: TestClient, shop: Campaign) -> None:
    report = page(client, loyalty_cost="0")
    assert "Loyalty cost" not in report.labels and "Total cost" not in report.labels
    give = report.row("GIVE")
    assert (give["Profit"]["text"], give["ROI %"]["text"]) == ("0.00", "0.0%")
    assert give["Input-output ratio"]["text"] == "1 : 1.00"
    html = report.html
    switch = html.index('id="loyalty-cost-switch"')
    assert "checked" not in html[switch : html.index(">", switch)]
    assert "Loyalty cost is not included: cost is approved receipts only." in html
    assert query(report.head("Profit")["href"]) == {"sort": "profit", "loyalty_cost": "0"}
    assert "/reports/roi.csv?loyalty_cost=0" in html
    # The form sends the hidden 0 and, ticked, a 1 after it: the last one counts.
    ticked = client.get("/reports/roi?loyalty_cost=0&loyalty_cost=1")
    assert "Loyalty cost" in Report(ticked.text).labels


def test_a_bad_switch_value_is_named_and_ignored(client: TestClient, shop: Campaign) -> None:
    answer = client.get("/reports/roi", params={"loyalty_cost": "maybe"})
    assert answer.status_code == 422
    assert "&#39;maybe&#39; is not a loyalty cost choice (1 or 0); it was ignored." in answer.text
    assert "Loyalty cost" in Report(answer.text).labels  # the default
    assert client.get("/reports/roi.csv", params={"loyalty_cost": "maybe"}).status_code == 422


def test_the_comparison_and_the_charts_follow_it(client: TestClient, shop: Campaign) -> None:
    april = page(client, **{"from": "2026-04-01", "to": "2026-04-30", "compare": "1"})
    give = april.row("GIVE")
    assert give["Loyalty cost, previous period"]["text"] == "60.00"
    assert give["Loyalty cost, change"]["text"] == "−60.00"
    assert give["Total cost, change"]["text"] == "−160.00"
    chart = json.loads(april.html.split('id="roi-chart-data">', 1)[1].split("</script>", 1)[0])
    march = page(client, group_by="month")
    data = json.loads(march.html.split('id="roi-chart-data">', 1)[1].split("</script>", 1)[0])
    assert data["month_cost"] == [160.0] and chart["cost"] == [0.0]
    assert "Total cost against budget" in march.html


def title_lines(xlsx: bytes) -> list[object]:
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert sheet is not None
    return [sheet.cell(row, 1).value for row in range(1, 7)]


def test_the_exports_say_whether_it_is_included(client: TestClient, shop: Campaign) -> None:
    rows = list(
        csv.DictReader(io.StringIO(client.get("/reports/roi.csv").content.decode("utf-8-sig")))
    )
    assert (rows[0]["Loyalty cost"], rows[0]["Total cost"], rows[0]["Profit"]) == (
        "60.00",
        "160.00",
        "-60.00",
    )
    with_it = client.get("/reports/roi.xlsx")
    lines = title_lines(with_it.content)
    assert any(str(line).startswith("Loyalty cost: included in the total cost") for line in lines)
    without = client.get("/reports/roi.xlsx", params={"loyalty_cost": "0"})
    assert "-without-loyalty-cost.xlsx" in without.headers["content-disposition"]
    lines = title_lines(without.content)
    assert "Loyalty cost: not included (cost is approved receipts only)" in lines
    plain = client.get("/reports/roi.csv", params={"loyalty_cost": "0"}).content
    assert "Loyalty cost" not in plain.decode("utf-8-sig").splitlines()[0]


def test_the_api_takes_the_switch(client: TestClient, shop: Campaign) -> None:
    body = client.get("/api/v1/reports/roi").json()
    assert body["loyalty_cost"] is True
    give = body["rows"][0]
    assert (give["loyalty_cost"], give["total_cost"], give["roi_pct"]) == (
        "60.00",
        "160.00",
        "-37.5",
    )
    assert give["loyalty_cost_parts"] == {
        "coupons": "50.00",
        "bonus_points": "10.00",
        "rewards": "0.00",
    }
    off = client.get("/api/v1/reports/roi", params={"loyalty_cost": "false"}).json()
    assert off["loyalty_cost"] is False
    assert "loyalty_cost" not in off["rows"][0] and off["rows"][0]["roi_pct"] == "0.0"
    as_csv = client.get("/api/v1/reports/roi", params={"format": "csv"}).content.decode("utf-8-sig")
    assert "Loyalty cost,Total cost" in as_csv.splitlines()[0]
    bad = client.get("/api/v1/reports/roi", params={"loyalty_cost": "maybe"})
    assert bad.status_code == 422


def test_the_dashboard_counts_it_as_the_report_does(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    """With a budget of 150.00 GIVE has used 160/150 = 106.7% of it: over budget (on
    approved receipts alone, 100/150 = 66.7%, no alert)."""
    marketer = make_user("marketer@example.com", ("marketer",), "Marketer")
    give_away(db, marketer.id, budget="150", status="active")
    db.commit()
    sign_in(client, "marketer@example.com")
    html = client.get("/dashboard").text
    alerts = html[html.index('id="budget-alerts"') :]
    assert "GIVE" in alerts and "106.7%" in alerts and "over budget" in alerts


def test_the_command_line_counts_it_unless_told(data_dir: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli_app, ["migrate"]).exit_code == 0
    factory = make_session_factory(make_engine(get_settings().sqlalchemy_url))
    with factory() as session, session.begin():
        from core.accounts import users

        owner = users.create(
            session,
            SYSTEM,
            email="m@example.com",
            name="M",
            roles=["marketer"],
            password="long-password-1",
        )
        give_away(session, owner.id)
    out = data_dir / "roi.csv"

    def header_and_give(*extra: str) -> dict[str, Any]:
        done = runner.invoke(cli_app, ["report", "roi", "--out", str(out), *extra])
        assert done.exit_code == 0, done.output
        rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
        return rows[0]

    counted = header_and_give()
    assert (counted["Loyalty cost"], counted["Total cost"]) == ("60.00", "160.00")
    plain = header_and_give("--without-loyalty-cost")
    assert "Loyalty cost" not in plain and plain["Profit"] == "0.00"
