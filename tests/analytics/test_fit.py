"""What `retain value fit` runs: strict CSV parsing and the whole fit on CDNOW."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from analytics.fit import fit_transactions, parse_transactions_csv
from core.errors import ValidationFailed
from tests.analytics.test_summaries import cdnow_transactions


def cdnow_csv() -> str:
    frame = cdnow_transactions()
    lines = ["customer_id,date,amount"] + [
        f"{c},{d:%Y%m%d},{a:.2f}"
        for c, d, a in zip(frame["customer_id"], frame["date"], frame["amount"], strict=True)
    ]
    return "\n".join(lines) + "\n"


def test_a_good_file() -> None:
    text = (
        "\ufeffCustomer_ID, Date ,amount,category\r\n"
        'c1,2024-01-05,"1,234.56",music\r\n'
        "\r\n"
        "c1,20240107,7.5,\r\n"
        "c2,2024-02-29,0,books\r\n"
    )
    frame = parse_transactions_csv(text)
    assert list(frame.columns) == ["customer_id", "date", "amount", "category"]
    assert list(frame["customer_id"]) == ["c1", "c1", "c2"]
    assert list(frame["date"]) == [
        pd.Timestamp("2024-01-05"),
        pd.Timestamp("2024-01-07"),
        pd.Timestamp("2024-02-29"),
    ]
    assert frame["date"].dtype == "datetime64[ns]"
    assert list(frame["amount"]) == [1234.56, 7.5, 0.0]
    assert list(frame["category"]) == ["music", None, "books"]
    without = parse_transactions_csv("amount,customer_id,date\n3,x,2024-01-01\n")
    assert list(without.columns) == ["customer_id", "date", "amount"]


def test_every_bad_line_is_named() -> None:
    text = (
        "customer_id,date,amount\n"
        "a,2024-01-01,10\n"  # line 2: good
        "b,2024-02-30,10\n"  # line 3: no such day
        "c,01/02/2024,10\n"  # line 4: ambiguous form
        "d,2024-01-01,-5\n"  # line 5: a refund
        'e,2024-01-01,"7,85"\n'  # line 6: a decimal comma
        ",2024-01-01,10\n"  # line 7: no customer
        "f,2024-01-01\n"  # line 8: a field short
        "g,2024-01-01T10:00,1\n"  # line 9: a time
        "h,1850-01-01,1.23456\n"  # line 10: out of range, too many decimals
    )
    with pytest.raises(ValidationFailed) as caught:
        parse_transactions_csv(text)
    error = caught.value
    assert error.code == "transactions.invalid"
    found = {(e["line"], e["column"]) for e in error.details["errors"]}
    assert found == {
        (3, "date"),
        (4, "date"),
        (5, "amount"),
        (6, "amount"),
        (7, "customer_id"),
        (8, None),
        (9, "date"),
        (10, "date"),
        (10, "amount"),
    }
    assert "line 3:" in error.message and "(and 4 more)" in error.message
    messages = {(e["line"], e["column"]): e["message"] for e in error.details["errors"]}
    assert "Did you mean 7.85?" in messages[(6, "amount")]
    assert "must not be negative" in messages[(5, "amount")]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "transactions.empty"),
        ("\n\n", "transactions.empty"),
        ("customer_id,date,amount\n", "transactions.empty"),
        ("customer_id,date\nx,2024-01-01\n", "transactions.columns"),
        ("customer_id,date,amount,price\nx,2024-01-01,1,2\n", "transactions.columns"),
        ("customer_id,date,amount,amount\nx,2024-01-01,1,2\n", "transactions.columns"),
        ('customer_id,date,amount\nx,2024-01-01,"1\n', "transactions.invalid"),
        ("customer_id,date,amount\nx\x00,2024-01-01,1\n", "transactions.invalid"),
    ],
)
def test_bad_files_are_refused(text: str, code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_transactions_csv(text)
    assert caught.value.code == code


def test_the_cdnow_check_from_a_csv_file() -> None:
    frame = parse_transactions_csv(cdnow_csv())
    assert len(frame) == 6919
    report = fit_transactions(frame, "1997-09-30", date(1998, 6, 30), unit="W")
    b = report.bgnbd.params
    assert (round(b.r, 3), round(b.alpha, 3), round(b.a, 3), round(b.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(report.bgnbd.log_likelihood, 1) == -9582.4
    assert report.gamma_gamma is not None
    g = report.gamma_gamma.params
    assert (round(g.p, 2), round(g.q, 2), round(g.gamma, 2)) == (6.25, 3.74, 15.44)
    assert report.gamma_gamma.customers == 946
    assert (report.customers, report.repeat_buyers, report.repeat_purchases) == (2357, 946, 2457)
    assert report.spend_frequency_correlation == pytest.approx(0.11, abs=0.01)
    assert report.holdout is not None
    assert report.holdout.actual_total == 1882
    assert round(report.holdout.predicted_total, 1) == 1653.4

    text = report.text()
    assert "log-likelihood -9,582.43" in text
    assert "r            0.2426" in text
    assert "total: actual 1,882, predicted 1,653.4" in text
    data = report.as_dict()
    json.dumps(data, allow_nan=False)
    assert data["bgnbd"]["params"]["alpha"]["value"] == pytest.approx(4.4136, abs=1e-4)
    assert data["holdout"]["by_frequency"][7]["frequency"] == "7+"


def test_without_a_holdout() -> None:
    frame = parse_transactions_csv(cdnow_csv())
    report = fit_transactions(frame, date(1997, 9, 30))
    assert report.holdout is None and report.holdout_end is None
    assert "Holdout" not in report.text()
    assert report.as_dict()["holdout"] is None


def small() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c", "d", "d"],
            "date": pd.to_datetime(
                [
                    "2024-01-01",
                    "2024-01-20",
                    "2024-03-01",
                    "2024-01-03",
                    "2024-02-10",
                    "2024-01-09",
                    "2024-01-10",
                    "2024-02-01",
                ]
            ),
            "amount": [10.0, 12.0, 9.0, 30.0, 0.0, 5.0, 8.0, 11.0],
        }
    )


def test_free_repeat_purchases_are_left_out_of_the_spend_model() -> None:
    report = fit_transactions(small(), "2024-03-31", unit="D")
    assert report.repeat_buyers == 3
    assert "1 repeat buyer(s)" in report.gamma_gamma_note
    if report.gamma_gamma is not None:
        assert report.gamma_gamma.customers == 2


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"calibration_end": "2024-03-31", "holdout_end": "2024-03-01"}, "value.holdout_end"),
        ({"calibration_end": "2023-12-31"}, "value.no_customers"),
        ({"calibration_end": "2024-01-10"}, "value.no_repeat"),
        ({"calibration_end": "2024-03-31", "unit": "M"}, "value.unit"),
        ({"calibration_end": "31/03/2024"}, "value.date"),
    ],
)
def test_bad_requests_are_refused(kwargs, code) -> None:
    with pytest.raises(ValidationFailed) as caught:
        fit_transactions(small(), **kwargs)
    assert caught.value.code == code


def test_the_report_of_a_fit_that_did_not_converge_says_so() -> None:
    # two customers cannot identify four parameters: whatever the optimiser finds, the
    # report must be printable and JSON-ready
    report = fit_transactions(small(), "2024-03-31", unit="D")
    json.dumps(report.as_dict(), allow_nan=False)
    assert report.text().startswith("Calibration to 2024-03-31")
    assert np.isfinite(report.bgnbd.log_likelihood)
