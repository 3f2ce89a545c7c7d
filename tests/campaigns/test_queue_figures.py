"""Finance's queue in money (`campaigns.queue`): amounts awaiting approval and payment booked
in the base currency like the ROI report, by age since the expense date; and recent months'
close state. The expected amounts are worked out by hand in each docstring."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from campaigns import periods, queue, rates
from campaigns.models import Campaign
from campaigns.report_data import ReportFilter
from loyalty import reports
from tests.campaigns.conftest import Staff, file_receipt
from tests.loyalty.conftest import ZONE

TODAY = date(2026, 6, 15)
D = Decimal


def bands(w: queue.Waiting) -> list[tuple[int, Decimal | None]]:
    return [(a.count, a.amount) for a in w.ages]


@pytest.mark.parametrize(
    ("age", "band"),
    [(-5, 0), (0, 0), (7, 0), (8, 1), (30, 1), (31, 2), (60, 2), (61, 3), (400, 3)],
)
def test_age_bands_edges(age: int, band: int) -> None:
    expense = date.fromordinal(TODAY.toordinal() - age)
    assert queue.age_band(TODAY, expense) == queue.AGE_BANDS[band]


@pytest.fixture
def filed(db: Session, staff: Staff, campaign: Campaign) -> None:
    """Rates: USD 7.1234 from 1 March, GBP 9.1234 from 1 April (CNY is the base).

    Awaiting approval (submitted), seen on 15 June:
    - 100.00 CNY dated 15 June (0 days) → 100.00
    - 101.58 GBP dated 8 June (7 days) → 926.754972, booked 926.75
    - 50.00 CNY dated 20 June (ahead of today: 0–7) → 50.00
    - 33.33 USD dated 7 June (8 days) → 237.422922, booked 237.42
    - 2 × 0.05 USD dated 16 May (30 days) → 0.35617 each, booked 0.36 each = 0.72 (booking
      the sum 0.10 USD would give 0.71: each document is booked once, then summed)
    0–7: 3 receipts, 1,076.75; 8–30: 3 receipts, 238.14; total 6 receipts, 1,314.89.

    Awaiting payment (approved):
    - 250.00 USD dated 16 April (60 days) → 1,780.85
    - 1,000.00 CNY dated 15 April (61 days) → 1,000.00
    Total 2 receipts, 2,780.85.

    Not waiting: a paid 999 CNY, a rejected 888 CNY and a draft 777 CNY receipt."""
    rates.set_rate(db, staff.finance, "USD", date(2026, 3, 1), D("7.1234"), "CNY")
    rates.set_rate(db, staff.finance, "GBP", date(2026, 4, 1), D("9.1234"), "CNY")
    submit = ("submit",)
    for amount, currency, day in (
        ("100.00", "CNY", date(2026, 6, 15)),
        ("101.58", "GBP", date(2026, 6, 8)),
        ("50.00", "CNY", date(2026, 6, 20)),
        ("33.33", "USD", date(2026, 6, 7)),
        ("0.05", "USD", date(2026, 5, 16)),
        ("0.05", "USD", date(2026, 5, 16)),
    ):
        file_receipt(db, campaign.id, amount, currency=currency, day=day, steps=submit)
    file_receipt(db, campaign.id, "250.00", currency="USD", day=date(2026, 4, 16))
    file_receipt(db, campaign.id, "1000.00", day=date(2026, 4, 15))
    file_receipt(db, campaign.id, "999", day=date(2026, 4, 1), steps=("submit", "approve", "pay"))
    file_receipt(db, campaign.id, "888", day=date(2026, 4, 1), steps=("submit", "reject"))
    file_receipt(db, campaign.id, "777", day=date(2026, 4, 1), steps=())


@pytest.mark.usefixtures("filed")
def test_amounts_by_age_are_booked_like_the_report(db: Session) -> None:
    q = queue.waiting(db, "CNY", TODAY)
    assert q.problem is None and q.currency == "CNY"
    assert bands(q.approval) == [
        (3, D("1076.75")),
        (3, D("238.14")),
        (0, D("0.00")),
        (0, D("0.00")),
    ]
    assert (q.approval.count, q.approval.amount) == (6, D("1314.89"))
    assert bands(q.payment) == [
        (0, D("0.00")),
        (0, D("0.00")),
        (1, D("1780.85")),
        (1, D("1000.00")),
    ]
    assert (q.payment.count, q.payment.amount) == (2, D("2780.85"))
    # The same booking as the ROI report's "Awaiting approval" over every campaign.
    report = reports.roi(db, "CNY", ReportFilter(), zone=ZONE)
    assert report.total.values["pending_cost"] == q.approval.amount


@pytest.mark.usefixtures("filed")
def test_a_missing_rate_keeps_the_counts_and_says_why(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    file_receipt(db, campaign.id, "10.00", currency="EUR", day=date(2026, 6, 1), steps=("submit",))
    q = queue.waiting(db, "CNY", TODAY)
    assert q.problem is not None and q.problem.code == "rate.missing"
    assert "No exchange rate for EUR on or before 2026-06-01" in q.problem.message
    assert [a.count for a in q.approval.ages] == [3, 4, 0, 0]
    assert q.approval.amount is None and all(a.amount is None for a in q.approval.ages)
    assert (q.payment.count, q.payment.amount) == (2, None)


def test_nothing_waiting_is_zero_not_missing(db: Session) -> None:
    q = queue.waiting(db, "CNY", TODAY)
    assert q.problem is None
    assert (q.approval.count, q.approval.amount) == (0, D("0.00"))
    assert (q.payment.count, q.payment.amount) == (0, D("0.00"))


def test_recent_months_close_state(db: Session, staff: Staff, campaign: Campaign) -> None:
    """March closed by Finance; one receipt dated in April and two in May await approval
    (one more, dated June, is outside the six months ending with May); an approved one in
    April does not count."""
    file_receipt(db, campaign.id, "10", day=date(2026, 3, 3), steps=("submit", "approve"))
    periods.close_month(db, staff.finance, date(2026, 3, 1))
    file_receipt(db, campaign.id, "20", day=date(2026, 4, 30), steps=("submit",))
    file_receipt(db, campaign.id, "21", day=date(2026, 4, 2), steps=("submit", "approve"))
    file_receipt(db, campaign.id, "30", day=date(2026, 5, 1), steps=("submit",))
    file_receipt(db, campaign.id, "31", day=date(2026, 5, 31), steps=("submit",))
    file_receipt(db, campaign.id, "40", day=date(2026, 6, 1), steps=("submit",))
    months = queue.recent_months(db, date(2026, 5, 20))
    assert [(m.month, m.closed, m.closed_by, m.awaiting_approval) for m in months] == [
        (date(2026, 5, 1), False, None, 2),
        (date(2026, 4, 1), False, None, 1),
        (date(2026, 3, 1), True, "Finance", 0),
        (date(2026, 2, 1), False, None, 0),
        (date(2026, 1, 1), False, None, 0),
        (date(2025, 12, 1), False, None, 0),
    ]
    assert months[2].closed_at is not None and months[2].closed_at.tzinfo is not None
