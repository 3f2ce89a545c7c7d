"""`retain liability` (issue 15): the roll-forward or the month's journal lines as text, CSV or
JSON, the same figures as the page and the API. Run against the test's own session (both
databases) by handing it to the command in place of a new one."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty import liability_facts
from tests.loyalty.conftest import BASE, ZONE
from tests.test_cli import invoke
from tests.web.test_liability_page import MARCH, fifteen_months
from web import cli
from web.cli import app

runner = CliRunner()


@pytest.fixture
def shared(db: Session, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setattr(cli, "_session", lambda settings: contextlib.nullcontext(db))
    return db


def test_the_roll_forward_as_text_csv_and_json(shared: Session) -> None:
    fifteen_months(shared)
    made = liability_facts.report(shared, ZONE, MARCH, base=BASE)
    last = made.frame.iloc[-1]

    text = invoke("liability", "--until", "2026-03")
    lines = text.splitlines()
    assert lines[0] == (
        "Points liability at the end of 2026-03, in CNY (Additive (incremental redemption rates))"
    )
    assert lines[1].startswith(f"Expected redemption rate {last['expected_rate'] * 100:.2f}%")
    assert "Closing points equal the ledger's total: yes" in lines[2]
    months = [line.split()[0] for line in lines if line[:4] in ("2025", "2026")]
    assert months == [f"{m:%Y-%m}" for m in made.frame.tail(12)["month"]] * 2
    assert f"{last['closing_value']:,}" in text and f"{int(last['closing_points']):,}" in text

    rows = list(
        csv.DictReader(io.StringIO(invoke("liability", "--until", "2026-03", "--format", "csv")))
    )
    assert len(rows) == 12
    assert rows[-1]["Month"] == "2026-03"
    assert int(rows[-1]["Closing points"]) == last["closing_points"]
    assert Decimal(rows[-1]["Closing liability (CNY)"]) == last["closing_value"]

    body = json.loads(
        invoke("liability", "--until", "2026-03", "--method", "chain_ladder", "--format", "json")
    )
    chained = liability_facts.report(shared, ZONE, MARCH, base=BASE, method="chain_ladder")
    assert body["method"] == "chain_ladder" and len(body["months"]) == 12
    assert body["months"][-1]["closing_value"] == f"{chained.frame.iloc[-1]['closing_value']:.2f}"
    assert body["reconciliation"]["reconciles"] is True


def test_the_journal(shared: Session) -> None:
    fifteen_months(shared)
    made = liability_facts.report(shared, ZONE, date(2026, 2, 1), base=BASE)
    lines = made.journal[made.journal["entry"].str.startswith("LOY-2026-02")]
    text = invoke("liability", "--until", "2026-02", "--journal")
    assert "Journal lines for 2026-02:" in text
    for entry in lines["entry"]:
        assert entry in text
    total = f"{sum(lines['debit']):,.2f}"
    assert text.splitlines()[-1].split()[-2:] == [total, total]
    rows = list(
        csv.DictReader(
            io.StringIO(invoke("liability", "--until", "2026-02", "--journal", "--format", "csv"))
        )
    )
    assert [r["Entry"] for r in rows] == list(lines["entry"])
    body = json.loads(invoke("liability", "--until", "2026-02", "--journal", "--format", "json"))
    assert len(body["lines"]) == len(lines) and body["total_debit"] == body["total_credit"]


def test_without_points_and_bad_input(shared: Session) -> None:
    assert "No points yet" in invoke("liability", "--until", "2026-03")
    for bad in (
        ["--until", "2026-13"],
        ["--until", "2199-12"],
        ["--method", "magic"],
        ["--format", "xml"],
    ):
        result = runner.invoke(app, ["liability", *bad])
        assert result.exit_code == 1, bad
        assert "Error:" in result.output


def test_it_has_help() -> None:
    assert "--journal" in invoke("liability", "--help")
