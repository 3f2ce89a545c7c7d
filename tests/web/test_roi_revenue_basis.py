"""The ROI report on a revenue basis (issue 13): directly linked, or an attribution model's
credits from a stored campaign-unit run, on the page, in the exports and in the API.

The shop (all CNY; campaigns run 2026-03-01 … 2026-04-30):

  MAIL    email   cost 100 (03-05)
  SPRING  wechat  cost 400 (03-05)   revenue record 500 (03-10, finance: 回款记录)

  A: email (MAIL) 03-02 > wechat (SPRING) 03-03, buys 300.00 on 03-05 with code SPRING
  B: wechat (SPRING) 03-04, buys 200.00 on 03-06
  C: search ads (no campaign) 03-04, buys 100.00 on 03-07
  D: email (MAIL) 04-02, buys 80.00 on 04-03

Directly linked, March: SPRING = record 500 + A's purchase 300 = 800; MAIL = 0.
Linear attribution, March: A's 300 goes 150 / 150 to MAIL and SPRING, B's 200 to SPRING, C's
100 to no campaign: SPRING = 500 + 350 = 850, MAIL = 150; the total is 1,000 (C's 100 is in
no row).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from attribution import roi as basis_roi
from attribution import runs
from attribution.runs import RunParams, StoredRun
from campaigns import revenue
from campaigns.models import Campaign
from campaigns.report_data import ReportFilter
from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor
from core.db import make_engine, make_session_factory
from core.settings import get_settings
from tests.attribution.conftest import ZONE, World, day
from tests.campaigns.conftest import Staff, file_receipt
from tests.web.conftest import sign_in
from tests.web.test_roi_report_page import Report
from web.cli import app as cli_app

D = Decimal
BASE = "CNY"
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


def actor(user: User) -> Actor:
    return Actor("user", user.email, user_id=user.id, roles=frozenset(r.value for r in user.roles))


@pytest.fixture
def marketer(make_user: Callable[..., User]) -> User:
    return make_user("marketer@example.com", ("marketer",), "Mia Marketer")


@pytest.fixture
def shop(db: Session, marketer: User, make_user: Callable[..., User]) -> dict[str, Campaign]:
    finance = actor(make_user("finance@example.com", ("finance",), "Fei Finance"))
    admin = actor(make_user("admin@example.com", ("admin",), "Ada Admin"))
    world = World(db, Staff(actor(marketer), finance, admin))
    made = {
        "MAIL": world.campaign("MAIL", "email", name="Mail drop"),
        "SPRING": world.campaign("SPRING", "wechat", name="Spring sale"),
    }
    file_receipt(db, made["MAIL"].id, "100", day=date(2026, 3, 5))
    file_receipt(db, made["SPRING"].id, "400", day=date(2026, 3, 5))
    revenue.record(
        db,
        finance,
        campaign_id=made["SPRING"].id,
        received_on=date(2026, 3, 10),
        amount=D("500"),
        currency=BASE,
        orders=4,
    )
    a, b = world.join("A", at=day(-60)), world.join("B", at=day(-60))
    c, d = world.join("C", at=day(-60)), world.join("D", at=day(-60))
    world.touch(a, "email", day(0), campaign="MAIL")
    world.touch(a, "wechat", day(1), campaign="SPRING")
    world.buy(a, "300.00", at=day(3), campaign_code="SPRING")
    world.touch(b, "wechat", day(2), campaign="SPRING")
    world.buy(b, "200.00", at=day(4))
    world.touch(c, "search_ads", day(2))
    world.buy(c, "100.00", at=day(5))
    world.touch(d, "email", day(31), campaign="MAIL")
    world.buy(d, "80.00", at=day(32))
    db.commit()
    return made


def store(db: Session, who: User, model: str, start: date, end: date) -> StoredRun:
    run = runs.run(db, actor(who), basis_roi.run_params(model, start, end), base=BASE, zone=ZONE)
    db.commit()
    return run


def amount(text: str) -> Decimal:
    return D(text.replace(",", ""))


def test_the_revenue_is_the_records_plus_the_runs_credits(
    client: TestClient, db: Session, shop: dict[str, Campaign], marketer: User
) -> None:
    run = store(db, marketer, "linear", date(2026, 3, 1), date(2026, 3, 31))
    credited = {c.key: c.value for c in run.credits}
    assert credited == {"MAIL": D("150.00"), "SPRING": D("350.00"), "(no campaign)": D("100.00")}
    sign_in(client, "marketer@example.com")

    direct = Report(client.get("/reports/roi", params=MARCH).text)
    assert amount(direct.row("SPRING")["Revenue"]["text"]) == D("800.00")
    assert amount(direct.row("MAIL")["Revenue"]["text"]) == D("0.00")
    assert amount(direct.total["Revenue"]["text"]) == D("800.00")

    answer = client.get("/reports/roi", params=MARCH | {"basis": "linear"})
    assert answer.status_code == 200, answer.text
    linear = Report(answer.text)
    records = {"MAIL": D(0), "SPRING": D("500.00")}
    for code in ("MAIL", "SPRING"):
        shown = amount(linear.row(code)["Revenue"]["text"])
        assert shown == records[code] + credited[code], code
    assert amount(linear.total["Revenue"]["text"]) == D("1000.00")
    assert sum(amount(r["Revenue"]["text"]) for r in linear.rows) == D("1000.00")
    # Orders count only the revenue records': credited conversions are not orders.
    assert linear.row("SPRING")["Orders"]["text"].strip() == "4"
    assert linear.row("MAIL")["Orders"]["text"].strip() == "—"
    # The page says which revenue is replaced, which is kept, what is left out, which run.
    assert 'option value="linear" selected' in answer.text
    assert "replacing the purchases linked by code or coupon" in answer.text
    assert "Revenue records are kept" in answer.text
    assert "100.00 CNY credited to touches without a campaign" in answer.text
    assert f"From stored run #{run.id}, computed" in answer.text
    assert "/reports/roi.csv?from=2026-03-01&amp;to=2026-03-31&amp;basis=linear" in answer.text


def test_without_a_stored_run_the_page_says_so_and_links_to_compute_it(
    client: TestClient, db: Session, shop: dict[str, Campaign], marketer: User
) -> None:
    store(db, marketer, "linear", date(2026, 3, 1), date(2026, 3, 31))
    sign_in(client, "marketer@example.com")
    answer = client.get("/reports/roi", params=MARCH | {"basis": "markov"})
    assert answer.status_code == 200
    assert "No stored Markov chain run by campaign for this report" in answer.text
    assert 'href="/attribution?unit=campaign&amp;from=2026-03-01&amp;to=2026-03-31"' in answer.text
    assert 'id="roi-table"' not in answer.text  # no figures on a basis it cannot show
    assert "/reports/roi?from=2026-03-01&amp;to=2026-03-31" in answer.text  # directly linked
    # A run with other settings or another period does not stand in for it.
    april = client.get("/reports/roi", params={"from": "2026-04-01", "basis": "linear"})
    assert "No stored Linear run by campaign" in april.text
    assert client.get("/reports/roi.csv", params=MARCH | {"basis": "markov"}).status_code == 409


def test_the_exports_say_the_basis(
    client: TestClient, db: Session, shop: dict[str, Campaign], marketer: User
) -> None:
    run = store(db, marketer, "linear", date(2026, 3, 1), date(2026, 3, 31))
    sign_in(client, "marketer@example.com")
    as_csv = client.get("/reports/roi.csv", params=MARCH | {"basis": "linear"})
    assert as_csv.status_code == 200
    assert "-linear.csv" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    by_code = {r["Code"]: r for r in rows}
    assert by_code["SPRING"]["Revenue (Linear attribution)"] == "850.00"
    assert by_code["MAIL"]["Revenue (Linear attribution)"] == "150.00"
    plain = client.get("/reports/roi.csv", params=MARCH).content.decode("utf-8-sig")
    # The default is unchanged: after budget, approved, loyalty, total, paid and pending cost.
    assert plain.splitlines()[0].split(",")[8] == "Revenue"

    book = load_workbook(
        io.BytesIO(client.get("/reports/roi.xlsx", params=MARCH | {"basis": "linear"}).content)
    )
    sheet = book.active
    assert sheet is not None
    title = [str(sheet.cell(n, 1).value) for n in range(1, 10) if sheet.cell(n, 1).value]
    basis = next(line for line in title if line.startswith("Revenue basis: "))
    assert basis.startswith(f"Revenue basis: Linear attribution (stored run #{run.id} by campaign)")
    assert "revenue records kept" in basis
    direct = load_workbook(io.BytesIO(client.get("/reports/roi.xlsx", params=MARCH).content))
    assert direct.active is not None
    lines = [str(direct.active.cell(n, 1).value) for n in range(1, 10)]
    assert not any(line.startswith("Revenue basis") for line in lines)  # the default, as ever


def test_a_monthly_report_takes_a_run_per_month(
    client: TestClient, db: Session, shop: dict[str, Campaign], marketer: User
) -> None:
    store(db, marketer, "last", date(2026, 3, 1), date(2026, 3, 31))
    sign_in(client, "marketer@example.com")
    spring = {"from": "2026-03-01", "to": "2026-04-30", "group_by": "month", "basis": "last"}
    missing = client.get("/reports/roi", params=spring)
    assert "Compute it for 2026-04-01 – 2026-04-30 on the attribution page" in missing.text
    assert "Compute it for 2026-03-01 – 2026-03-31" not in missing.text
    store(db, marketer, "last", date(2026, 4, 1), date(2026, 4, 30))
    report = Report(client.get("/reports/roi", params=spring).text)
    # March: record 500 + last touch (A's 300 and B's 200 to SPRING); April: D's 80 to MAIL.
    assert amount(report.row("2026-03")["Revenue"]["text"]) == D("1000.00")
    assert amount(report.row("2026-04")["Revenue"]["text"]) == D("80.00")
    assert amount(report.total["Revenue"]["text"]) == D("1080.00")


def test_the_api_takes_a_revenue_basis_and_refuses_junk(
    client: TestClient, db: Session, shop: dict[str, Campaign], marketer: User
) -> None:
    run = store(db, marketer, "linear", date(2026, 3, 1), date(2026, 3, 31))
    _, key = api_keys.create(db, Actor.system(), name="books", scopes=["campaigns:read"])
    db.commit()
    client.headers["Authorization"] = f"Bearer {key}"

    def revenue_of(body: dict[str, object]) -> dict[str, Decimal]:
        rows = body["rows"]
        assert isinstance(rows, list)
        return {r["code"]: D(r["revenue"]) for r in rows}

    direct = client.get("/api/v1/reports/roi", params=MARCH).json()
    assert direct["revenue_basis"] == "direct" and "attribution_runs" not in direct
    assert revenue_of(direct) == {"MAIL": D("0"), "SPRING": D("800")}
    linear = client.get("/api/v1/reports/roi", params=MARCH | {"revenue_basis": "linear"})
    assert linear.status_code == 200, linear.text
    body = linear.json()
    assert body["revenue_basis"] == "linear" and body["attribution_runs"] == [run.id]
    assert revenue_of(body) == {"MAIL": D("150"), "SPRING": D("850")}
    assert D(body["total"]["revenue"]) == D("1000")
    as_csv = client.get(
        "/api/v1/reports/roi", params=MARCH | {"revenue_basis": "linear", "format": "csv"}
    )
    assert "Revenue (Linear attribution)" in as_csv.content.decode("utf-8-sig").splitlines()[0]

    for junk in ("junk", "Markov", "direct ", "x" * 500):
        refused = client.get("/api/v1/reports/roi", params={"revenue_basis": junk})
        assert refused.status_code == 422, junk
        error = refused.json()["error"]
        if len(junk) < 40:
            assert error["code"] == "report.revenue_basis"
            assert "choose one of: direct, incremental, first, last, linear" in error["message"]
    not_stored = client.get("/api/v1/reports/roi", params={"revenue_basis": "markov"})
    assert not_stored.status_code == 409
    error = not_stored.json()["error"]
    assert error["code"] == "report.basis_not_computed"
    assert error["details"]["missing"] == [{"from": None, "to": None}]
    assert "POST /api/v1/attribution/runs" in error["message"]

    schema = client.get("/api/openapi.json").json()
    parameters = schema["paths"]["/api/v1/reports/roi"]["get"]["parameters"]
    (basis,) = [p for p in parameters if p["name"] == "revenue_basis"]
    assert basis["schema"]["enum"] == ["direct", "incremental", *runs.MODELS]
    assert basis["schema"]["default"] == "direct"


def test_the_run_read_is_the_default_settings_for_the_period(
    db: Session, shop: dict[str, Campaign], marketer: User
) -> None:
    runs.run(
        db,
        actor(marketer),
        RunParams(
            model="linear",
            unit="campaign",
            lookback_days=10,
            period_from=date(2026, 3, 1),
            period_to=date(2026, 3, 31),
        ),
        base=BASE,
        zone=ZONE,
    )
    march = ReportFilter(start=date(2026, 3, 1), end=date(2026, 3, 31))
    with pytest.raises(basis_roi.NotComputed) as refused:
        basis_roi.roi(db, BASE, march, zone=ZONE, basis="linear")
    assert refused.value.code == "report.basis_not_computed"
    assert [(p.period_from, p.period_to) for p in refused.value.missing] == [
        (date(2026, 3, 1), date(2026, 3, 31))
    ]


def test_the_command_line_takes_a_basis(data_dir: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli_app, ["migrate"]).exit_code == 0
    out = data_dir / "roi.csv"
    junk = runner.invoke(cli_app, ["report", "roi", "--basis", "junk", "--out", str(out)])
    assert junk.exit_code == 1 and "is not a revenue basis" in junk.output
    missing = runner.invoke(cli_app, ["report", "roi", "--basis", "markov", "--out", str(out)])
    assert missing.exit_code == 1 and "No stored markov attribution run" in missing.output
    settings = get_settings()
    factory = make_session_factory(make_engine(settings.sqlalchemy_url))
    with factory() as session, session.begin():
        runs.run(
            session,
            Actor.cli("test"),
            basis_roi.run_params("markov", None, None),
            base=settings.base_currency,
            zone=settings.zone,
        )
    done = runner.invoke(cli_app, ["report", "roi", "--basis", "markov", "--out", str(out)])
    assert done.exit_code == 0, done.output
    header = out.read_bytes().decode("utf-8-sig").splitlines()[0]
    assert "Revenue (Markov chain attribution)" in header
