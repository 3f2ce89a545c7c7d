"""A closed month is frozen for loyalty too: no purchase or refund dated in it (in the
configured zone) is recorded on any path, its ROI purchase revenue never changes, and a
retry of a purchase or refund recorded before the close still replays its first answer."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from campaigns import periods
from campaigns.report_data import ReportFilter
from core.errors import Conflict
from loyalty import imports, purchases, reports
from loyalty.models import Member, Purchase, Refund
from tests.campaigns.conftest import Staff, make_campaign
from tests.loyalty.conftest import ACTOR, BASE, T0, ZONE, Shop
from tests.loyalty.test_imports import factory

MARCH = date(2026, 3, 1)
APRIL = T0 + timedelta(days=40)  # 2026-04-11


@pytest.fixture(params=[True, False], ids=["fast", "general"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(purchases, "FAST_PATH", request.param)
    return bool(request.param)


def march_revenue(shop: Shop) -> Decimal:
    f = ReportFilter(start=MARCH, end=date(2026, 3, 31))
    revenue = reports.roi(shop.db, BASE, f, zone=ZONE).total.values["revenue"]
    assert isinstance(revenue, Decimal)
    return revenue


def counts(shop: Shop) -> tuple[int, int]:
    return (
        shop.db.scalar(select(func.count(Purchase.id))) or 0,
        shop.db.scalar(select(func.count(Refund.id))) or 0,
    )


@pytest.fixture
def closed(shop: Shop, staff: Staff) -> Member:
    """A member with a March purchase (P-MARCH, refunded in part), then March closed."""
    make_campaign(shop.db, staff)
    member = shop.join()
    shop.buy(member, "300", ext="P-MARCH", campaign_code="SPRING26")
    shop.refund("P-MARCH", "100", at=T0 + timedelta(days=1), ext="R-MARCH")
    periods.close_month(shop.db, staff.finance, MARCH)
    return member


def test_a_purchase_dated_in_a_closed_month_is_refused(
    shop: Shop, closed: Member, path: bool
) -> None:
    before, revenue = counts(shop), march_revenue(shop)
    assert revenue == Decimal("200.00")
    for member in (closed, None):  # a member's purchase and a guest's
        with pytest.raises(Conflict) as refused:
            shop.buy(member, "50", at=T0 + timedelta(days=3), campaign_code="SPRING26")
        assert refused.value.code == "period.closed"
        assert refused.value.message == (
            "March 2026 is closed: a purchase dated 2026-03-05 can no longer be recorded. "
            "Ask finance to reopen it."
        )
        assert refused.value.details == {"month": "2026-03"}
    # The month is the local one: 2026-03-31T16:30Z is 00:30 on April 1 in Shanghai.
    late = shop.buy(closed, "10", at=T0.replace(day=31, hour=16, minute=30), ext="P-APRIL1")
    assert not late.replayed
    assert counts(shop) == (before[0] + 1, before[1])
    assert march_revenue(shop) == revenue
    shop.check(closed)


def test_a_retry_of_a_purchase_recorded_before_the_close_replays(
    shop: Shop, closed: Member, path: bool
) -> None:
    before, revenue = counts(shop), march_revenue(shop)
    again = shop.buy(closed, "300", ext="P-MARCH", campaign_code="SPRING26")
    assert again.replayed and again.note == "Already recorded; nothing was changed."
    # Different content under the same id is still a conflict about the id, not the month.
    with pytest.raises(Conflict) as reused:
        shop.buy(closed, "301", ext="P-MARCH", campaign_code="SPRING26")
    assert reused.value.code == "purchase.id_reused"
    assert counts(shop) == before and march_revenue(shop) == revenue


def test_a_refund_dated_in_a_closed_month_is_refused(shop: Shop, closed: Member) -> None:
    before, revenue = counts(shop), march_revenue(shop)
    with pytest.raises(Conflict) as refused:
        shop.refund("P-MARCH", "50", at=T0 + timedelta(days=10))
    assert refused.value.code == "period.closed"
    assert "a refund dated 2026-03-12 can no longer be recorded" in refused.value.message
    # A retry of the refund recorded before the close replays.
    again = shop.refund("P-MARCH", "100", at=T0 + timedelta(days=1), ext="R-MARCH")
    assert again.replayed
    assert counts(shop) == before and march_revenue(shop) == revenue
    # A refund counts in its own month: an April refund of a March purchase is taken.
    later = shop.refund("P-MARCH", "50", at=APRIL)
    assert not later.replayed and later.refund.base_amount == Decimal("50.0000")
    assert march_revenue(shop) == revenue
    shop.check(closed)


@pytest.mark.parametrize("row_by_row", [False, True], ids=["bulk", "service"])
def test_an_import_reports_closed_month_rows_as_refused(
    shop: Shop, closed: Member, row_by_row: bool
) -> None:
    revenue = march_revenue(shop)
    number = closed.number
    body = "\n".join(
        [
            "source,external_id,occurred_at,amount,currency,member_number,campaign_code",
            f"pos,P-MARCH,2026-03-02T12:00:00+08:00,300,CNY,{number},SPRING26",  # imported before
            f"pos,I-1,2026-03-20T10:00:00+08:00,70,CNY,{number},SPRING26",  # closed
            f"pos,I-2,{APRIL.isoformat()},40,CNY,{number},SPRING26",
            "pos,I-3,2026-03-31 23:30,25,CNY,,SPRING26",  # a guest, local time: closed
            "pos,I-4,2026-04-01 00:30,25,CNY,,SPRING26",  # local April 1: open
        ]
    )
    report = imports.import_purchases(
        factory(shop.db),
        ACTOR,
        (body + "\n").encode(),
        base=BASE,
        zone=ZONE,
        row_by_row=row_by_row,
    )
    assert (report.rows, report.skipped, report.imported) == (5, 1, 2)
    assert [(r["line"], r["external_id"], r["code"]) for r in report.refused] == [
        (3, "I-1", "period.closed"),
        (5, "I-3", "period.closed"),
    ]
    assert report.refused[0]["message"] == (
        "March 2026 is closed: a purchase dated 2026-03-20 can no longer be recorded. "
        "Ask finance to reopen it."
    )
    found = shop.db.scalars(select(Purchase.external_id).order_by(Purchase.external_id))
    assert list(found) == ["I-2", "I-4", "P-MARCH"]
    assert march_revenue(shop) == revenue
    shop.check(closed)
