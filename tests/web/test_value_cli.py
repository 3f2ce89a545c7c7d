"""`retain value fit`: anyone can run the CDNOW check from the command line (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.analytics.test_fit import cdnow_csv
from web.cli import app

runner = CliRunner()


def test_the_cdnow_fit_from_a_file_prints_the_published_parameters(tmp_path: Path) -> None:
    log = tmp_path / "cdnow.csv"
    log.write_text(cdnow_csv())
    args = ["value", "fit", "--transactions", str(log), "--calibration-end", "1997-09-30"]
    result = runner.invoke(app, [*args, "--holdout-end", "1998-06-30", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    fitted = {name: round(p["value"], 3) for name, p in report["bgnbd"]["params"].items()}
    assert fitted == {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert round(report["bgnbd"]["log_likelihood"], 1) == -9582.4
    spend = {name: round(p["value"], 2) for name, p in report["gamma_gamma"]["params"].items()}
    assert spend == {"p": 6.25, "q": 3.74, "gamma": 15.44}
    assert report["repeat_buyers"] == 946
    printed = runner.invoke(app, args)
    assert printed.exit_code == 0 and "log-likelihood -9,582.43" in printed.output


def test_a_bad_file_is_named_by_line_and_the_exit_code_is_1(tmp_path: Path) -> None:
    log = tmp_path / "bad.csv"
    log.write_text("customer_id,date,amount\nc1,2024-01-05,7,85\nc2,yesterday,3\n")
    result = runner.invoke(
        app, ["value", "fit", "--transactions", str(log), "--calibration-end", "2024-06-30"]
    )
    assert result.exit_code == 1
    assert "Error:" in result.output
