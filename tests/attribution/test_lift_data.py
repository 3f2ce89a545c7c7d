"""The lift report from the database, on both databases: the frozen arms, revenue in the
campaign window by local day (its edges in Asia/Shanghai), purchases refunded in full left out
and partial refunds netted, the cost as the ROI report counts it (approved receipts and the
loyalty cost), and incremental revenue as a revenue frame whose days add up exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from sqlalchemy.orm import Session

from attribution import lift, lift_data, roi
from attribution.lift import Arm
from campaigns.models import Campaign
from campaigns.report_data import ReportFilter
from loyalty import audiences, campaign_costs
from loyalty import program as program_settings
from loyalty.models import Member
from tests.campaigns.conftest import Staff, file_receipt, make_campaign
from tests.loyalty.conftest import ACTOR, BASE, ZONE, Shop

# The campaign runs 1 March – 30 April 2026, local days in Shanghai (UTC+8).
FIRST = datetime(2026, 2, 28, 16, 0, tzinfo=UTC)  # 00:00 on 1 March in Shanghai
AFTER = datetime(2026, 4, 30, 16, 0, tzinfo=UTC)  # 00:00 on 1 May in Shanghai
TODAY = date(2026, 5, 10)


@pytest.fixture
def campaign(db: Session, staff: Staff) -> Campaign:
    return make_campaign(db, staff, code="LIFT26")


@pytest.fixture
def people(db: Session) -> dict[str, Member]:
    shop = Shop(db)
    joined = FIRST - timedelta(days=90)
    return {name: shop.join(name, at=joined) for name in "ABCDEF"}


def _world(db: Session, campaign: Campaign, people: dict[str, Member]) -> None:
    """A, B, C get the campaign; D, E are held out; F is not in the audience."""
    audiences.freeze(
        db,
        campaign.id,
        [people[n].id for n in "ABCDE"],
        [n in "DE" for n in "ABCDE"],
    )
    shop = Shop(db)
    buy = shop.buy
    buy(people["A"], "100.00", at=FIRST + timedelta(minutes=30), ext="A1")  # first local day
    buy(people["A"], "50.00", at=FIRST - timedelta(minutes=30), ext="A0")  # the day before
    buy(people["B"], "200.00", at=AFTER - timedelta(minutes=1), ext="B1")  # last local minute
    buy(people["B"], "80.00", at=AFTER, ext="B2")  # the day after
    buy(people["C"], "300.00", at=FIRST + timedelta(days=10), ext="C1")
    shop.refund("C1", None, at=FIRST + timedelta(days=12))  # refunded in full: never counts
    buy(people["D"], "120.00", at=FIRST + timedelta(days=20), ext="D1")
    shop.refund("D1", "20.00", at=AFTER + timedelta(days=2))  # after the window: still netted
    buy(people["F"], "999.00", at=FIRST + timedelta(days=5), ext="F1")  # not in the audience
    db.flush()


def test_arms_revenue_in_the_window_and_refunds(
    db: Session, campaign: Campaign, people: dict[str, Member]
) -> None:
    _world(db, campaign, people)
    window = lift_data.Window.of(campaign, ZONE)
    assert (window.start, window.end) == (FIRST, AFTER)
    data = lift_data.arm_data(db, campaign.id, window)
    assert (data.treated_members, data.holdout_members) == (3, 2)
    assert sorted(data.treated_revenue) == [Decimal(100), Decimal(200)]
    assert data.holdout_revenue == [Decimal(100)]

    found = lift_data.campaign_lift(db, campaign.id, today=TODAY, zone=ZONE, base=BASE)
    assert found.state == "measured" and found.through == date(2026, 4, 30)
    report = found.report
    assert report is not None
    assert (report.treated.members, report.treated.converters) == (3, 2)
    assert (report.holdout.members, report.holdout.converters) == (2, 1)
    assert report.treated.revenue == Decimal("300.00")
    assert report.treated.revenue_per_member == Decimal("100.00")
    assert report.holdout.revenue_per_member == Decimal("50.00")
    assert report.incremental_revenue == Decimal("150.00")  # 3 × (100 − 50)
    assert report.lift == pytest.approx((2 / 3) / (1 / 2) - 1)
    assert report.incremental_conversions == pytest.approx(2 - 3 * 1 / 2)
    # The same as the pure report given the arms by hand.
    by_hand = lift.lift_report(
        Arm.of([Decimal(100), Decimal(200), Decimal(0)], 2, 2),
        Arm.of([Decimal(100), Decimal(0)], 1, 2),
        found.cost.total if found.cost else Decimal(0),
        2,
    )
    assert by_hand == report


def test_cost_is_approved_receipts_and_loyalty_cost(
    db: Session, campaign: Campaign, people: dict[str, Member]
) -> None:
    program_settings.save_rule(
        db,
        ACTOR,
        name="Campaign bonus",
        campaign_id=campaign.id,
        fixed_points=500,
    )
    _world(db, campaign, people)
    Shop(db).buy(
        people["B"], "40.00", at=FIRST + timedelta(days=3), ext="B3", campaign_code=campaign.code
    )
    file_receipt(db, campaign.id, "1000.00")
    file_receipt(db, campaign.id, "300.00", steps=("submit",))  # awaiting approval: not cost
    file_receipt(db, campaign.id, "200.00", day=date(2026, 6, 2), steps=("submit", "approve"))
    db.flush()
    cost = lift_data.campaign_cost(db, campaign.id, zone=ZONE, base=BASE)
    assert cost.receipts == Decimal("1200.00")  # every date, approved only
    frame = campaign_costs.loyalty_costs(
        db, ReportFilter(campaign_ids=(campaign.id,)), ZONE, by_day=False, base=BASE
    )
    assert cost.loyalty == sum(frame["amount"], Decimal(0)) and cost.loyalty > 0
    found = lift_data.campaign_lift(db, campaign.id, today=TODAY, zone=ZONE, base=BASE)
    report = found.report
    assert report is not None and found.cost == cost
    assert report.incremental_revenue == Decimal("190.00")  # B's 40 more: 3 × (340/3 − 50)
    total = cost.total
    assert report.cost == total
    assert report.incremental_roas == (Decimal("190.00") / total).quantize(Decimal("0.01"))


def test_states_before_a_report(db: Session, campaign: Campaign, people: dict[str, Member]) -> None:
    found = lift_data.campaign_lift(db, campaign.id, today=TODAY, zone=ZONE, base=BASE)
    assert found.state == "no_audience" and found.report is None
    _world(db, campaign, people)
    early = lift_data.campaign_lift(db, campaign.id, today=date(2026, 2, 28), zone=ZONE, base=BASE)
    assert early.state == "not_started" and early.report is None
    assert (early.arms.treated, early.arms.held_out) == (3, 2)
    # While it runs, it is measured so far.
    running = lift_data.campaign_lift(
        db, campaign.id, today=date(2026, 3, 15), zone=ZONE, base=BASE
    )
    assert running.state == "measured" and running.through == date(2026, 3, 15)


def test_incremental_revenue_as_a_revenue_frame(
    db: Session, staff: Staff, campaign: Campaign, people: dict[str, Member]
) -> None:
    _world(db, campaign, people)
    plain = make_campaign(db, staff, code="PLAIN26")  # no holdout: left out
    audiences.freeze(db, plain.id, [people["F"].id], [False])
    whole = lift_data.incremental_revenue_by_campaign(db, zone=ZONE, base=BASE)
    assert list(whole.columns) == ["campaign_id", "day", "amount", "orders"]
    assert whole["campaign_id"].tolist() == [campaign.id]
    assert whole["day"].tolist() == [None] and whole["amount"].tolist() == [Decimal("150.00")]
    assert whole["orders"].isna().all()

    daily = lift_data.incremental_revenue_by_campaign(db, zone=ZONE, base=BASE, by_day=True)
    # T on 1 March (A: 100) and 30 April (B: 200); H on 21 March (D: 100 × 3/2 = −150).
    assert dict(zip(daily["day"], daily["amount"], strict=True)) == {
        date(2026, 3, 1): Decimal("100.00"),
        date(2026, 3, 21): Decimal("-150.00"),
        date(2026, 4, 30): Decimal("200.00"),
    }
    assert sum(daily["amount"], Decimal(0)) == whole["amount"][0]
    only = lift_data.incremental_revenue_by_campaign(
        db, zone=ZONE, base=BASE, campaign_ids=[plain.id]
    )
    assert only.empty


def test_days_split_exactly_by_largest_remainder() -> None:
    parts = {
        date(2026, 3, 1): Fraction(1, 3),
        date(2026, 3, 2): Fraction(1, 3),
        date(2026, 3, 3): Fraction(1, 3),
    }
    split = lift_data.split_by_day(Decimal("1.00"), parts, 2)
    assert split == {
        date(2026, 3, 1): Decimal("0.34"),
        date(2026, 3, 2): Decimal("0.33"),
        date(2026, 3, 3): Decimal("0.33"),
    }
    signed = {date(2026, 3, 1): Fraction(-1001, 1000), date(2026, 3, 2): Fraction(2, 1000)}
    total = Decimal("-1.00")  # −0.999 rounded half up to the cent
    assert sum(lift_data.split_by_day(total, signed, 2).values()) == total


def test_the_roi_report_on_the_incremental_basis(
    db: Session, staff: Staff, campaign: Campaign, people: dict[str, Member]
) -> None:
    """With a holdout, the campaign's revenue is what it added (150.00 over its window; a
    month shows that month's days); a campaign without one keeps its linked purchases."""
    _world(db, campaign, people)
    plain = make_campaign(db, staff, code="PLAIN26")
    Shop(db).buy(
        people["F"], "40.00", at=FIRST + timedelta(days=3), ext="F2", campaign_code="PLAIN26"
    )

    def revenue(basis: str, f: ReportFilter, group_by: str = "campaign") -> dict[str, Decimal]:
        report, _ = roi.roi(db, BASE, f, group_by, zone=ZONE, basis=basis)  # type: ignore[arg-type]
        return {
            r.key.get("code", r.key.get("month", "")): Decimal(str(r.values["revenue"]))
            for r in report.rows
        }

    everything = ReportFilter(campaign_ids=(campaign.id, plain.id))
    assert revenue("incremental", everything) == {
        "LIFT26": Decimal("150.00"),
        "PLAIN26": Decimal("40.00"),
    }
    assert revenue("direct", everything)["LIFT26"] == Decimal("0.00")  # no code, no coupon
    march = ReportFilter(start=date(2026, 3, 1), end=date(2026, 3, 31), campaign_ids=(campaign.id,))
    assert revenue("incremental", march) == {"LIFT26": Decimal("-50.00")}  # 100 − 150
    by_month = ReportFilter(
        start=date(2026, 3, 1), end=date(2026, 4, 30), campaign_ids=(campaign.id,)
    )
    assert revenue("incremental", by_month, "month") == {
        "2026-03": Decimal("-50.00"),
        "2026-04": Decimal("200.00"),
    }
