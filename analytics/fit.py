"""Fit the lifetime-value models to any transaction log: what ``retain value fit
--transactions FILE.csv --calibration-end DATE [--holdout-end DATE] [--unit W]`` runs.

`parse_transactions_csv` reads the file strictly; `fit_transactions` summarises it
(`analytics.summaries`), fits the BG/NBD (`analytics.bgnbd`) and the Gamma-Gamma
(`analytics.gammagamma`) and, with a holdout end, compares predicted and actual holdout
purchases (`analytics.holdout`). `FitReport.text()` is what the command prints and
`FitReport.as_dict()` what a JSON answer or a page shows.

**The file.** UTF-8 (a BOM is allowed), comma-separated, a header naming the columns
``customer_id``, ``date``, ``amount`` and optionally ``category``, in any order (case and
surrounding spaces in the header ignored); no other columns. Each row:

- ``customer_id``: any text, not empty, at most 100 characters, no control characters;
- ``date``: a calendar day, ``YYYY-MM-DD`` or ``YYYYMMDD`` (as in the CDNOW file), from 1900
  to 2199; nothing else (no times, no day-first or month-first forms, which are ambiguous);
- ``amount``: 0 or more, written as the forms write amounts (``1234.56`` or ``1,234.56``,
  quoted when it has a comma; `core.money.parse_amount`), at most 4 decimals. Negative
  amounts (refunds) are refused: the models have no negative spend. A zero amount is a
  purchase (CDNOW has eight, all first purchases); a repeat buyer whose repeat purchases were
  all free is left out of the Gamma-Gamma fit, which has no zero spend, and the report says
  so;
- ``category``: optional text (may be empty).

Blank lines are skipped. Every bad row is reported, up to 200, each with its line number
(the header is line 1), in one ValidationFailed (code ``transactions.invalid``, the rows in
``details["errors"]`` as ``{"line", "column", "message"}``).

To check the published CDNOW figures, convert ``CDNOW_sample.txt`` (fields: customer id, id
in the master file, date YYYYMMDD, CDs, dollar value) to ``customer_id,date,amount`` and run
with ``--calibration-end 1997-09-30 --holdout-end 1998-06-30``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from analytics import bgnbd, gammagamma
from analytics.holdout import HoldoutReport, holdout_report
from analytics.summaries import UNIT_NAMES, DateLike, Unit, check_unit, summarise, to_day
from core.bounds import check_amount, check_day, text_problem
from core.errors import ValidationFailed
from core.money import parse_amount
from core.text import N_

COLUMNS = ("customer_id", "date", "amount")
OPTIONAL = ("category",)
MAX_ERRORS = 200
MAX_ID_LENGTH = 100
MAX_CATEGORY_LENGTH = 100
_DAY = re.compile(r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})", re.ASCII)


def _parse_day(text: str) -> date:
    match = _DAY.fullmatch(text)
    dashes = text.count("-")
    if match is None or dashes not in (0, 2):
        raise ValueError
    year, month, day = (int(g) for g in match.groups())
    return date(year, month, day)


def _row_problems(
    values: dict[str, str],
) -> tuple[list[tuple[str, str]], tuple[str, date, float, str | None] | None]:
    problems: list[tuple[str, str]] = []
    customer = values["customer_id"].strip()
    if not customer:
        problems.append(("customer_id", "customer_id is empty."))
    else:
        problem = text_problem(customer, MAX_ID_LENGTH)
        if problem:
            problems.append(("customer_id", f"customer_id {problem}."))
    day: date | None = None
    raw_date = values["date"].strip()
    try:
        day = check_day(_parse_day(raw_date), "date", N_("The date"))
    except ValueError:
        shown = raw_date if len(raw_date) <= 24 else raw_date[:23] + "…"
        problems.append(("date", f"date '{shown}' is not a day like 1997-09-30 or 19970930."))
    except ValidationFailed as exc:
        problems.append(("date", exc.message))
    amount: float | None = None
    try:
        number = check_amount(
            parse_amount(values["amount"], "amount"),
            "amount",
            sign="non-negative",
            label=N_("The amount"),
        )
        amount = float(number)
    except ValidationFailed as exc:
        problems.append(("amount", exc.message))
    category: str | None = None
    if "category" in values:
        category = values["category"].strip() or None
        if category is not None:
            problem = text_problem(category, MAX_CATEGORY_LENGTH)
            if problem:
                problems.append(("category", f"category {problem}."))
    if problems or day is None or amount is None:
        return problems, None
    return problems, (customer, day, amount, category)


def parse_transactions_csv(text: str) -> pd.DataFrame:
    """The transactions of a CSV file (see the module docstring) as a frame with columns
    ``customer_id`` (text), ``date`` (datetime64, midnight), ``amount`` (float) and, when
    the file has it, ``category`` (text or None), in file order. Raises ValidationFailed
    naming every bad line."""
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    errors: list[dict[str, Any]] = []
    header: list[str] | None = None
    customers: list[str] = []
    days: list[date] = []
    amounts: list[float] = []
    categories: list[str | None] = []
    line = 1
    try:
        for fields in reader:
            start, line = line, reader.line_num + 1
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if header is None:
                header = [f.strip().lower() for f in fields]
                _check_header(header, start)
                continue
            if len(fields) != len(header):
                errors.append(
                    {
                        "line": start,
                        "column": None,
                        "message": f"expected {len(header)} fields, found {len(fields)}.",
                    }
                )
            else:
                problems, row = _row_problems(dict(zip(header, fields, strict=True)))
                errors.extend(
                    {"line": start, "column": column, "message": message}
                    for column, message in problems
                )
                if row is not None:
                    customers.append(row[0])
                    days.append(row[1])
                    amounts.append(row[2])
                    categories.append(row[3])
            if len(errors) >= MAX_ERRORS:
                break
    except csv.Error as exc:
        errors.append({"line": reader.line_num or 1, "column": None, "message": f"{exc}."})
    if header is None:
        raise ValidationFailed(
            "transactions.empty",
            "The file is empty: expected a header customer_id,date,amount.",
            {"errors": []},
        )
    if errors:
        raise ValidationFailed(
            "transactions.invalid",
            N_("%(count)s problem(s) in the transactions file: %(list)s (and %(more)s more)")
            if len(errors) > 5
            else N_("%(count)s problem(s) in the transactions file: %(list)s"),
            {"errors": errors},
            count=len(errors),
            list="; ".join(f"line {e['line']}: {e['message']}" for e in errors[:5]),
            more=len(errors) - 5,
        )
    if not customers:
        raise ValidationFailed(
            "transactions.empty", "The file has a header but no transactions.", {"errors": []}
        )
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series(customers, dtype=object),
            "date": pd.to_datetime(pd.Series(days, dtype=object)).astype("datetime64[ns]"),
            "amount": np.asarray(amounts, dtype=np.float64),
        }
    )
    if header is not None and "category" in header:
        frame["category"] = pd.Series(categories, dtype=object)
    return frame


def _check_header(header: list[str], line: int) -> None:
    unknown = [h for h in header if h not in COLUMNS + OPTIONAL]
    missing = [c for c in COLUMNS if c not in header]
    repeated = sorted({h for h in header if header.count(h) > 1})
    m, u, r = bool(missing), bool(unknown), bool(repeated)
    if m or u or r:
        # One whole sentence for each combination of the three problems.
        error = ValidationFailed(
            "transactions.columns",
            N_(
                "Line %(line)s: missing column(s) %(missing)s; unknown column(s) %(unknown)s; "
                "repeated column(s) %(repeated)s (expected customer_id, date, amount and "
                "optionally category)."
            )
            if m and u and r
            else N_(
                "Line %(line)s: missing column(s) %(missing)s; unknown column(s) %(unknown)s "
                "(expected customer_id, date, amount and optionally category)."
            )
            if m and u
            else N_(
                "Line %(line)s: missing column(s) %(missing)s; repeated column(s) "
                "%(repeated)s (expected customer_id, date, amount and optionally category)."
            )
            if m and r
            else N_(
                "Line %(line)s: unknown column(s) %(unknown)s; repeated column(s) "
                "%(repeated)s (expected customer_id, date, amount and optionally category)."
            )
            if u and r
            else N_(
                "Line %(line)s: missing column(s) %(missing)s (expected customer_id, date, "
                "amount and optionally category)."
            )
            if m
            else N_(
                "Line %(line)s: unknown column(s) %(unknown)s (expected customer_id, date, "
                "amount and optionally category)."
            )
            if u
            else N_(
                "Line %(line)s: repeated column(s) %(repeated)s (expected customer_id, "
                "date, amount and optionally category)."
            ),
            line=line,
            missing=", ".join(missing),
            unknown=", ".join(repr(h[:24]) for h in unknown[:5]),
            repeated=", ".join(repeated),
        )
        error.details = {"errors": [{"line": line, "column": None, "message": error.message}]}
        raise error


# --- The fit ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FitReport:
    """What `fit_transactions` found. `gamma_gamma` is None (with `gamma_gamma_note` saying
    why) when it could not be fitted; `holdout` is None without a holdout end."""

    unit: Unit
    calibration_end: date
    holdout_end: date | None
    customers: int
    repeat_buyers: int
    repeat_purchases: int
    bgnbd: bgnbd.BgNbdFit
    gamma_gamma: gammagamma.GammaGammaFit | None
    gamma_gamma_note: str
    spend_frequency_correlation: float | None  # the Gamma-Gamma assumes none
    holdout: HoldoutReport | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None)."""

        def number(value: float) -> float | None:
            return None if math.isnan(value) or math.isinf(value) else float(value)

        def fitted(params: Any, errors: Any, names: tuple[str, ...]) -> dict[str, Any]:
            return {
                n: {"value": number(getattr(params, n)), "se": number(getattr(errors, n))}
                for n in names
            }

        result: dict[str, Any] = {
            "unit": self.unit,
            "calibration_end": self.calibration_end.isoformat(),
            "holdout_end": self.holdout_end.isoformat() if self.holdout_end else None,
            "customers": self.customers,
            "repeat_buyers": self.repeat_buyers,
            "repeat_purchases": self.repeat_purchases,
            "bgnbd": {
                "params": fitted(
                    self.bgnbd.params, self.bgnbd.standard_errors, ("r", "alpha", "a", "b")
                ),
                "log_likelihood": number(self.bgnbd.log_likelihood),
                "converged": self.bgnbd.converged,
                "message": self.bgnbd.message,
            },
            "gamma_gamma": None,
            "gamma_gamma_note": self.gamma_gamma_note,
            "spend_frequency_correlation": (
                None
                if self.spend_frequency_correlation is None
                else number(self.spend_frequency_correlation)
            ),
            "holdout": None,
        }
        if self.gamma_gamma is not None:
            result["gamma_gamma"] = {
                "params": fitted(
                    self.gamma_gamma.params,
                    self.gamma_gamma.standard_errors,
                    ("p", "q", "gamma"),
                ),
                "log_likelihood": number(self.gamma_gamma.log_likelihood),
                "customers": self.gamma_gamma.customers,
                "converged": self.gamma_gamma.converged,
                "message": self.gamma_gamma.message,
            }
        if self.holdout is not None:
            result["holdout"] = {
                "duration": self.holdout.duration,
                "customers": self.holdout.customers,
                "actual_total": self.holdout.actual_total,
                "predicted_total": self.holdout.predicted_total,
                "by_frequency": self.holdout.records(),
            }
        return result

    def text(self) -> str:
        """The report as the command prints it."""
        b = self.bgnbd
        lines = [
            f"Calibration to {self.calibration_end.isoformat()}, time in {UNIT_NAMES[self.unit]}",
            f"Customers {self.customers:,}; repeat buyers {self.repeat_buyers:,}; "
            f"repeat purchases {self.repeat_purchases:,}",
            "",
            f"BG/NBD  log-likelihood {b.log_likelihood:,.2f}"
            + ("" if b.converged else f"  (not converged: {b.message})"),
            *_parameter_lines(b.params, b.standard_errors, ("r", "alpha", "a", "b")),
            "",
        ]
        g = self.gamma_gamma
        if g is None:
            lines += [f"Gamma-Gamma  not fitted: {self.gamma_gamma_note}", ""]
        else:
            lines += [
                f"Gamma-Gamma  {g.customers:,} repeat buyers, log-likelihood "
                f"{g.log_likelihood:,.2f}"
                + ("" if g.converged else f"  (not converged: {g.message})"),
                *_parameter_lines(g.params, g.standard_errors, ("p", "q", "gamma")),
            ]
            if self.spend_frequency_correlation is not None:
                lines.append(
                    "  correlation of frequency and mean spend "
                    f"{self.spend_frequency_correlation:.3f} (the model assumes none)"
                )
            lines.append("")
        h = self.holdout
        if h is not None and self.holdout_end is not None:
            lines += [
                f"Holdout to {self.holdout_end.isoformat()} "
                f"({h.duration:.2f} {_UNITS[self.unit]}): "
                "repeat purchases per customer by calibration frequency",
                f"  {'x':>4} {'customers':>10} {'actual':>9} {'predicted':>10}",
            ]
            for row in h.records():
                actual = "-" if row["actual"] is None else f"{row['actual']:.3f}"
                predicted = "-" if row["predicted"] is None else f"{row['predicted']:.3f}"
                lines.append(
                    f"  {row['frequency']:>4} {row['customers']:>10,} {actual:>9} {predicted:>10}"
                )
            lines.append(f"  total: actual {h.actual_total:,}, predicted {h.predicted_total:,.1f}")
        return "\n".join(lines).rstrip() + "\n"


_NAMES = {"alpha": "α", "gamma": "γ"}
_UNITS = {"D": "days", "W": "weeks"}


def _parameter_lines(params: Any, errors: Any, names: tuple[str, ...]) -> list[str]:
    return [
        f"  {_NAMES.get(n, n):<6} {getattr(params, n):>12.4f}   (SE {getattr(errors, n):.4f})"
        for n in names
    ]


def fit_transactions(
    frame: pd.DataFrame,
    calibration_end: DateLike,
    holdout_end: DateLike | None = None,
    unit: str = "W",
) -> FitReport:
    """Summarise the log, fit the BG/NBD and the Gamma-Gamma to the calibration period and,
    with a holdout end, compare the holdout. ValidationFailed when the dates or unit are
    wrong, nobody bought by the calibration end, or nobody bought twice (the BG/NBD then
    has no maximum)."""
    checked_unit = check_unit(unit)
    cal = to_day(calibration_end, N_("The calibration end"))
    hold = None if holdout_end is None else to_day(holdout_end, N_("The holdout end"))
    summaries = summarise(frame, cal, hold, checked_unit)
    if summaries.empty:
        raise ValidationFailed(
            "value.no_customers",
            "No customer bought on or before the calibration end %(cal)s.",
            cal=cal.isoformat(),
        )
    x = summaries["frequency"].to_numpy(dtype=np.float64)
    fitted = bgnbd.fit(x, summaries["recency"].to_numpy(), summaries["T"].to_numpy())
    repeat = x > 0
    spend: gammagamma.GammaGammaFit | None = None
    note = ""
    correlation: float | None = None
    monetary = summaries["monetary_value"].to_numpy(dtype=np.float64)
    free = repeat & ~(monetary > 0)
    if free.any():
        note = (
            f"{int(free.sum()):,} repeat buyer(s) whose repeat purchases were all free are "
            "left out of the Gamma-Gamma fit."
        )
    try:
        spend = gammagamma.fit(np.where(free, 0.0, x), np.where(free, np.nan, monetary))
    except ValidationFailed as exc:
        note = exc.message
    if repeat.sum() >= 3 and np.ptp(x[repeat]) > 0 and np.ptp(monetary[repeat]) > 0:
        correlation = float(np.corrcoef(x[repeat], monetary[repeat])[0, 1])
    report = None if hold is None else holdout_report(fitted.params, summaries)
    return FitReport(
        unit=checked_unit,
        calibration_end=cal,
        holdout_end=hold,
        customers=len(summaries),
        repeat_buyers=int(repeat.sum()),
        repeat_purchases=int(x.sum()),
        bgnbd=fitted,
        gamma_gamma=spend,
        gamma_gamma_note=note,
        spend_frequency_correlation=correlation,
        holdout=report,
    )
