"""The points liability page (issue 15, "Points liability and breakage"): it renders with data
and without, who may read it, the month picker, the method switch, the CSV and XLSX files
holding the report's own rows, and the reconciliation line.

The shop (`fifteen_months`): three members from January 2025 to March 2026 (Shanghai time),
points expiring 90 days after they become spendable. Ann buys every month and redeems most
months, Bob buys most months and redeems now and then, Cat buys every other month and never
redeems (her points expire); Bob returns one purchase. By March 2026 the oldest issue month
is 14 months old, so the redemption curve is used from January 2026 (12 months of history)
and the fallback rate (1) before.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from core.accounts.models import User
from loyalty import liability, liability_facts
from loyalty import rewards as catalog
from loyalty.models import Member
from tests.loyalty.conftest import ACTOR, BASE, ZONE, Shop
from tests.loyalty.test_rewards import make_reward
from tests.web.conftest import sign_in
from web.pages import liability as page

TODAY = datetime(2026, 4, 15, 12, tzinfo=ZONE)  # the last full month is March 2026
MARCH = date(2026, 3, 1)


def at(year: int, month: int, day: int) -> datetime:
    """Noon in Shanghai."""
    return datetime(year, month, day, 4, tzinfo=UTC)


def months(first: date, last: date) -> Iterator[date]:
    month = first
    while month <= last:
        yield month
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)


def fifteen_months(db: Session) -> dict[str, Member]:
    shop = Shop(db)
    shop.program(expiry_policy="days_after_active", expiry_n=90)
    reward = make_reward(shop, cost=300)
    ann = shop.join("Ann", at=at(2025, 1, 2))
    bob = shop.join("Bob", at=at(2025, 1, 2))
    cat = shop.join("Cat", at=at(2025, 1, 2))
    for n, month in enumerate(months(date(2025, 1, 1), MARCH)):
        y, m = month.year, month.month
        shop.jobs(at(y, m, 1), "unlock_pending", "expire_lots")
        shop.buy(ann, "300", at=at(y, m, 3), ext=f"A{y}{m:02d}")
        if n % 4 != 3:
            shop.buy(bob, "200", at=at(y, m, 5), ext=f"B{y}{m:02d}")
        if n % 2 == 0:
            shop.buy(cat, "500", at=at(y, m, 6), ext=f"C{y}{m:02d}")
        if month == date(2025, 6, 1):
            shop.refund("B202506", None, at=at(2025, 6, 8))
        shop.jobs(at(y, m, 15), "unlock_pending", "expire_lots")
        if shop.fresh(ann).available >= 300 and n % 3 != 2:
            catalog.redeem(db, ACTOR, ann.id, reward.id, key=f"a{n}", at=at(y, m, 20))
        if shop.fresh(bob).available >= 300 and n % 3 == 0:
            catalog.redeem(db, ACTOR, bob.id, reward.id, key=f"b{n}", at=at(y, m, 21))
    for member in (ann, bob, cat):
        shop.check(member)
    return {"ann": ann, "bob": bob, "cat": cat}


@pytest.fixture
def clocked(app: FastAPI) -> FastAPI:
    app.dependency_overrides[page.clock] = lambda: TODAY
    return app


@pytest.fixture
def reader(
    clocked: FastAPI, client: TestClient, make_user: Callable[..., User]
) -> Callable[[str], TestClient]:
    """Sign in with one role."""

    def as_role(role: str) -> TestClient:
        make_user(f"{role}@example.com", (role,), role.title())
        sign_in(client, f"{role}@example.com")
        return client

    return as_role


def report(db: Session, month: date = MARCH, method: liability.Method = "additive") -> Any:
    return liability_facts.report(db, ZONE, month, base=BASE, method=method)


def day_of(cell: object) -> date:
    """An XLSX date cell's day (openpyxl reads dates as datetimes)."""
    assert isinstance(cell, datetime)
    return cell.date()


def text_of(html: str) -> str:
    """The page as words: tags out, spaces squeezed."""
    body = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).replace("&#39;", "'")


def test_the_page_shows_the_month_its_rate_curve_roll_forward_and_journal(
    db: Session, reader: Callable[[str], TestClient]
) -> None:
    fifteen_months(db)
    client = reader("finance")
    answer = client.get("/finance/liability")
    assert answer.status_code == 200
    html, words = answer.text, text_of(answer.text)
    made = report(db)
    row = made.frame.iloc[-1]
    assert "At the end of 2026-03" in words
    # The month picker defaults to the last full month and goes no further than this one.
    assert re.search(r'type="month" name="month" id="f-month" value="2026-03" max="2026-04"', html)
    closing = page.money(row["closing_value"], 2)
    assert f"Contract liability {closing} CNY" in words
    assert f"Points outstanding {int(row['closing_points']):,}" in words
    assert "Value per point 0.01 CNY" in words
    # The rate and where it comes from; the method in words (`Estimate.describe`).
    assert made.expectations[MARCH].estimated
    assert f"Expected redemption rate {page.percent(row['expected_rate'])}" in words
    assert "Estimated from the redemption curve" in words
    assert made.estimate is not None and made.estimate.describe() in words
    # The curve: a chart's data and the tables.
    assert 'id="chart-liability-curve"' in html and 'id="liability-chart-data"' in html
    assert "/static/liability.js" in html and "/static/vendor/chart.umd.min.js" in html
    assert "Ultimate redemption rate: " + page.percent(made.estimate.curve[-1]) in words
    # The roll-forward: 12 months (April 2025 to March 2026), in points and in money.
    assert "Monthly roll-forward, 2025-04 – 2026-03" in words
    points_rows = re.findall(r'<th scope="row" class="nowrap">(\d{4}-\d{2})</th>', html)
    assert points_rows == [f"{m:%Y-%m}" for m in months(date(2025, 4, 1), MARCH)] * 2
    # Months on the fallback rate are marked.
    assert made.expectations[date(2025, 12, 1)].estimated is False
    assert "100.00%*" in words
    # The journal for March, balanced.
    journal = made.journal[made.journal["entry"].str.startswith("LOY-2026-03")]
    assert len(journal) > 0
    for entry in journal["entry"]:
        assert entry in html
    total = page.money(sum(journal["debit"]), 2)
    assert f"Total {total} {total}" in words
    assert "/finance/liability/journal.csv?month=2026-03&amp;method=additive" in html
    assert "/finance/liability/roll-forward.xlsx?month=2026-03&amp;method=additive" in html


def test_the_reconciliation_line(
    db: Session, reader: Callable[[str], TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    fifteen_months(db)
    client = reader("finance")
    made = report(db)
    closing = int(made.frame.iloc[-1]["closing_points"])
    ledger = page.ledger_points_before(db, liability_facts.month_end(MARCH, ZONE))
    assert closing == ledger
    words = text_of(client.get("/finance/liability").text)
    assert "Closing points equal the ledger's total: ✓" in words
    assert (
        f"{closing:,} points in the roll-forward; {ledger:,} points in every ledger entry dated"
        " before the end of 2026-03." in words
    )
    # Were they ever to differ, the page says so.
    monkeypatch.setattr(page, "ledger_points_before", lambda db, end: 7)
    words = text_of(client.get("/finance/liability").text)
    assert "Closing points do not equal the ledger's total: ✗" in words
    assert f"{closing:,} points in the roll-forward; 7 points" in words


def test_without_points_the_page_says_so(db: Session, reader: Callable[[str], TestClient]) -> None:
    client = reader("finance")
    answer = client.get("/finance/liability")
    assert answer.status_code == 200
    words = text_of(answer.text)
    assert "The program has no points yet." in words
    assert 'id="liability-roll-forward"' not in answer.text
    # The files say as much too: a header and no rows.
    rows = list(csv.reader(io.StringIO(client.get("/finance/liability/journal.csv").text)))
    assert len(rows) == 1
    assert client.get("/finance/liability/roll-forward.xlsx").status_code == 200


def test_a_month_before_the_first_points_links_to_them(
    db: Session, reader: Callable[[str], TestClient]
) -> None:
    fifteen_months(db)
    client = reader("finance")
    answer = client.get("/finance/liability?month=2024-11")
    assert answer.status_code == 200
    words = text_of(answer.text)
    assert "No points had been issued by the end of 2024-11." in words
    assert "The first points were issued in 2025-01." in words
    assert "/finance/liability?month=2025-01&amp;method=additive" in answer.text


@pytest.mark.parametrize("role", ["finance", "admin", "marketer"])
def test_finance_admins_and_marketers_read_it(
    db: Session, reader: Callable[[str], TestClient], role: str
) -> None:
    fifteen_months(db)
    client = reader(role)
    answer = client.get("/finance/liability")
    assert answer.status_code == 200
    html = answer.text
    # Only an admin changes the value per point; finance's own pages are linked for finance.
    assert ('href="/loyalty/program#settings"' in html) is (role == "admin")
    assert ('href="/finance/periods"' in html) is (role in ("finance", "admin"))
    assert 'href="/finance/liability"' in html  # the navigation
    assert client.get("/finance/liability/journal.csv").status_code == 200


def test_a_stranger_is_sent_to_sign_in(clocked: FastAPI, client: TestClient) -> None:
    for path in ("/finance/liability", "/finance/liability/journal.csv"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")


def test_the_month_picker(db: Session, reader: Callable[[str], TestClient]) -> None:
    fifteen_months(db)
    client = reader("finance")
    words = text_of(client.get("/finance/liability?month=2025-12").text)
    assert "At the end of 2025-12" in words
    assert "Monthly roll-forward, 2025-01 – 2025-12" in words
    assert "Journal lines for 2025-12" in words
    # Too little history in December 2025: the fallback, and the curve shown but not used.
    assert "Not enough history yet" in words
    assert "the report does not use this curve yet" in words
    # The current month may be chosen (it has begun); one to come, or nonsense, may not.
    assert client.get("/finance/liability?month=2026-04").status_code == 200
    for bad, says in (
        ("2026-05", "2026-05 has not begun; choose 2026-04 or an earlier month."),
        ("2026-13", "'2026-13' is not a month like 2026-03."),
        ("March", "'March' is not a month like 2026-03."),
        ("x" * 300, "is not a month like 2026-03."),
    ):
        answer = client.get("/finance/liability", params={"month": bad})
        assert answer.status_code == 422, bad
        words = text_of(answer.text)
        assert says in words and "It was ignored." in words
        assert "At the end of 2026-03" in words  # the default, drawn anyway
        assert (
            client.get("/finance/liability/journal.csv", params={"month": bad}).status_code == 422
        )


def test_the_method_switch(db: Session, reader: Callable[[str], TestClient]) -> None:
    fifteen_months(db)
    client = reader("finance")
    additive = client.get("/finance/liability").text
    assert re.search(r'<option value="additive" selected>', additive)
    assert "Additive development" in text_of(additive)
    assert 'href="/finance/liability?month=2026-03&amp;method=chain_ladder"' in additive
    chained = client.get("/finance/liability?month=2026-03&method=chain_ladder")
    assert chained.status_code == 200
    assert re.search(r'<option value="chain_ladder" selected>', chained.text)
    words = text_of(chained.text)
    made = report(db, method="chain_ladder")
    assert made.estimate is not None and made.estimate.describe() in words
    assert f"Expected redemption rate {page.percent(made.estimate.rate)}" in words
    # The select submits its form by itself (web/static/controls.js; no inline script).
    assert re.search(r'<select name="method" id="f-method"\s*data-autosubmit>', chained.text)
    bad = client.get("/finance/liability?method=bornhuetter")
    assert bad.status_code == 422
    assert "Choose the additive method or the chain ladder." in text_of(bad.text)


def test_the_roll_forward_files_hold_the_reports_rows(
    db: Session, reader: Callable[[str], TestClient]
) -> None:
    fifteen_months(db)
    client = reader("finance")
    for method in liability.METHODS:
        made = report(db, method=method)
        expected = made.frame.tail(12).to_dict("records")
        query = f"?month=2026-03&method={method}"

        answer = client.get("/finance/liability/roll-forward.csv" + query)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert f"points-liability-2026-03-{method}.csv" in answer.headers["content-disposition"]
        assert answer.content.startswith("\ufeff".encode())  # Excel reads it as UTF-8
        rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert len(rows) == 12
        for got, want in zip(rows, expected, strict=True):
            assert got["Month"] == f"{want['month']:%Y-%m}"
            assert Decimal(got["Expected redemption rate"]) == want["expected_rate"]
            for column, (label, kind) in page.ROLL_FORWARD_HEADERS.items():
                name = f"{label} (CNY)" if kind == "money" else label
                if kind == "points":
                    assert int(got[name]) == want[column], column
                elif kind == "money":
                    assert Decimal(got[name]) == want[column], column

        book = load_workbook(
            io.BytesIO(client.get("/finance/liability/roll-forward.xlsx" + query).content)
        )
        sheet = book.active
        assert sheet is not None
        title = [str(sheet.cell(n, 1).value) for n in range(1, 8)]
        assert title[0] == "Points liability roll-forward (IFRS 15)"
        assert title[1] == "Period: 2025-04 – 2026-03"
        assert title[2] == "Base currency: CNY"
        assert title[3].startswith(f"Method: {page.METHOD_NAMES[method]}; expected redemption")
        assert title[4] == "Value per point: 0.01 CNY"
        assert title[5] == "Points closing = the ledger's total: yes"
        assert title[6] == "Generated at 2026-04-15 12:00 (Asia/Shanghai)"
        header = 9
        assert sheet.freeze_panes == f"A{header + 1}"
        headers = [c.value for c in sheet[header]]
        assert headers[0] == "Month" and "Closing liability (CNY)" in headers
        for offset, want in enumerate(expected, start=1):
            cells = {h: c for h, c in zip(headers, sheet[header + offset], strict=True)}
            assert day_of(cells["Month"].value) == want["month"]
            assert cells["Month"].number_format == "yyyy-mm"
            assert Decimal(str(cells["Expected redemption rate"].value)) == want["expected_rate"]
            assert cells["Expected redemption rate"].number_format == "0.00%"
            assert cells["Closing points"].value == want["closing_points"]
            assert cells["Closing points"].number_format == "#,##0"
            closing = cells["Closing liability (CNY)"]
            assert Decimal(str(closing.value)) == want["closing_value"]
            assert closing.number_format == "#,##0.00"
            assert (
                Decimal(str(cells["Cumulative catch-up (revenue) (CNY)"].value))
                == (want["catch_up_value"])
            )


def test_the_journal_files_hold_the_months_lines(
    db: Session, reader: Callable[[str], TestClient]
) -> None:
    fifteen_months(db)
    client = reader("admin")
    made = report(db)
    lines = made.journal[made.journal["entry"].str.startswith("LOY-2026-03")].to_dict("records")
    assert lines

    answer = client.get("/finance/liability/journal.csv?month=2026-03")
    assert answer.status_code == 200
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [
        (r["Date"], r["Entry"], r["Kind"], r["Account"], r["Debit (CNY)"], r["Credit (CNY)"])
        for r in rows
    ] == [
        (
            line["date"].isoformat(),
            line["entry"],
            line["kind"],
            line["account"],
            f"{line['debit']:.2f}",
            f"{line['credit']:.2f}",
        )
        for line in lines
    ]
    assert all(r["Description"] for r in rows)

    book = load_workbook(io.BytesIO(client.get("/finance/liability/journal.xlsx").content))
    sheet = book.active
    assert sheet is not None
    assert sheet["A1"].value == "Points liability journal (IFRS 15)"
    assert sheet["A2"].value == "Period: 2026-03"
    header = 9
    assert [c.value for c in sheet[header]] == [
        "Date",
        "Entry",
        "Kind",
        "Account",
        "Debit (CNY)",
        "Credit (CNY)",
        "Description",
    ]
    body = list(sheet.iter_rows(min_row=header + 1, values_only=True))
    assert len(body) == len(lines) + 1  # and the total
    for got, want in zip(body, lines, strict=False):
        assert day_of(got[0]) == want["date"] and got[1] == want["entry"]
        assert Decimal(str(got[4])) == want["debit"] and Decimal(str(got[5])) == want["credit"]
    total = body[-1]
    assert total[3] == "Total"
    assert Decimal(str(total[4])) == Decimal(str(total[5])) == sum(x["debit"] for x in lines)
    assert sheet.cell(header + 1, 5).number_format == "#,##0.00"
    assert client.get("/finance/liability/journal.pdf").status_code == 422
