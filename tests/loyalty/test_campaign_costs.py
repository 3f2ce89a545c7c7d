"""The loyalty cost of campaigns (issue 15), against a shop computed by hand.

Value per point 0.05 CNY. Zone Asia/Shanghai; T0 = 2026-03-02 12:00 local. Campaign SPRING26 has
a "Double points" bonus rule (×2: (2 − 1) × the base points of the spend) and three coupon
batches: 20 CNY off, 10 CNY off (the prize of a 500-point reward) and 5 USD off. Campaign
OTHER has a 15 CNY off batch. Noise that must not count: a bonus rule of no campaign (50
points on every purchase) and a batch of no campaign.

    when (local)   what                                           coupons  bonus   rewards
    03-02 12:00   A pays 180.00 CNY with SPRING26's 20 off          +20.00   +9.00
                  (the coupon makes it SPRING26's: rule gives 180 points × 0.05)
    03-05 12:00   C pays 1.00 USD (+5 USD discount) with the 5 USD  +35.60   +0.35
                  off; USD 7.1234 on 03-01: the purchase is booked
                  7.12 CNY, so its rate is 7.12 and 5 USD is 35.60
                  (not 5 × 7.1234 = 35.62); the rule gives floor(7.12) = 7 points
    03-06 12:00   D pays 85.00 with OTHER's 15 off (OTHER)             15.00
                  and 100.00 with the batch of no campaign (nothing)
    03-10 12:00   A refunds 90.00 of 180.00: half of the rule's 180            −4.50
                  points go back, round(180 × 0.5) = 90; no coupon back
    03-12 12:00   B spends 500 points on the reward (SPRING26's 10 off)               +25.00
    03-15 12:00   B pays 100.00 with that reward coupon: bought with             +5.00
                  points, so its discount is not counted again; the rule
                  gives 100 points
    04-01 01:00   A refunds the other 90.00 (2026-03-31 17:00 UTC: local   −20.00  −4.50
                  April): the rest of the rule's points, 180 − 90, and the
                  coupon comes back, so its discount is taken back

    SPRING26  March   coupons 55.60, bonus 9.85, rewards 25.00: 90.45
              April   coupons −20.00, bonus −4.50: −24.50
              all     coupons 35.60, bonus 5.35, rewards 25.00: 65.95
    OTHER     March   coupons 15.00
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from campaigns import rates
from campaigns.models import Campaign
from campaigns.report_data import ReportFilter
from campaigns.reports import GroupBy
from loyalty import campaign_costs, coupons, rewards
from loyalty import program as program_settings
from loyalty import reports as loyalty_reports
from loyalty.campaign_costs import at_purchase_rate, loyalty_costs, rule_share_taken
from loyalty.models import Member, Program
from tests.campaigns.conftest import Staff, file_receipt, make_campaign
from tests.loyalty.conftest import ACTOR, T0, ZONE, Shop

D = Decimal
MARCH = ReportFilter(start=date(2026, 3, 1), end=date(2026, 3, 31))
APRIL = ReportFilter(start=date(2026, 4, 1), end=date(2026, 4, 30))


def local(day: int, month: int = 3, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=ZONE).astimezone(UTC)


def _batch(shop: Shop, name: str, value: str, campaign: Campaign | None, **extra: object) -> int:
    fields: dict[str, object] = {
        "name": name,
        "kind": "fixed",
        "value": D(value),
        "currency": "CNY",
        "valid_days": 60,
        "campaign_id": campaign.id if campaign else None,
    }
    fields.update(extra)
    return coupons.create_batch(shop.db, ACTOR, **fields).id  # type: ignore[arg-type]


def _code(shop: Shop, batch_id: int, member: Member) -> str:
    return coupons.issue(shop.db, ACTOR, batch_id, member, reason="test", at=T0).code


@pytest.fixture
def spring(shop: Shop, staff: Staff) -> tuple[Campaign, Campaign]:
    db = shop.db
    shop.program(point_value=D("0.05"))
    rates.set_rate(db, staff.finance, "USD", date(2026, 3, 1), D("7.1234"), "CNY")
    spring = make_campaign(db, staff, "SPRING26")
    other = make_campaign(db, staff, "OTHER", name="Other sale")
    program_settings.save_rule(
        db, ACTOR, name="Double points", campaign_id=spring.id, multiplier=D(2)
    )
    program_settings.save_rule(db, ACTOR, name="Everyone", fixed_points=50)
    twenty = _batch(shop, "20 off", "20", spring)
    prize = _batch(shop, "10 off", "10", spring)
    dollars = _batch(shop, "5 USD off", "5", spring, currency="USD")
    fifteen = _batch(shop, "15 off", "15", other)
    plain = _batch(shop, "No campaign", "30", None)

    a, b, c, d = (shop.join(name) for name in ("A", "B", "C", "D"))
    shop.buy(a, "180.00", discount=D(20), coupon_codes=(_code(shop, twenty, a),), ext="A1")
    shop.buy(
        c,
        "1.00",
        currency="USD",
        discount=D(5),
        coupon_codes=(_code(shop, dollars, c),),
        at=local(5),
    )
    shop.buy(d, "85.00", discount=D(15), coupon_codes=(_code(shop, fifteen, d),), at=local(6))
    shop.buy(d, "100.00", discount=D(30), coupon_codes=(_code(shop, plain, d),), at=local(6))
    shop.refund("A1", "90.00", at=local(10))
    rewards.adjust(db, ACTOR, b.id, 1000, reason="welcome", key="b", at=T0, zone=ZONE)
    reward = rewards.save(db, ACTOR, name="10 off", points_cost=500, batch_id=prize)
    bought = rewards.redeem(db, ACTOR, b.id, reward.id, key="r", at=local(12))
    shop.buy(b, "100.00", discount=D(10), coupon_codes=(bought.coupon.code,), at=local(15))
    shop.refund("A1", None, at=datetime(2026, 3, 31, 17, tzinfo=UTC))
    return spring, other


def parts(frame: pd.DataFrame, campaign: Campaign) -> dict[str, Decimal]:
    mine = frame[frame["campaign_id"] == campaign.id]
    found: dict[str, Decimal] = {}
    for part, amount in zip(mine["part"], mine["amount"], strict=True):
        found[part] = found.get(part, D(0)) + amount
    return found


def test_each_part_by_hand(shop: Shop, spring: tuple[Campaign, Campaign]) -> None:
    spring_, other = spring
    every = loyalty_costs(shop.db, ReportFilter(), ZONE, by_day=False, base="CNY")
    assert list(every.columns) == ["campaign_id", "day", "amount", "part"]
    assert parts(every, spring_) == {
        "coupons": D("35.60"),
        "bonus_points": D("5.35"),
        "rewards": D("25.00"),
    }
    assert parts(every, other) == {"coupons": D("15.00")}
    assert set(every["campaign_id"]) == {spring_.id, other.id}  # nothing of no campaign
    assert all(isinstance(a, Decimal) and a.as_tuple().exponent == -2 for a in every["amount"])


def test_by_day_each_on_its_local_day(shop: Shop, spring: tuple[Campaign, Campaign]) -> None:
    spring_, _ = spring
    frame = loyalty_costs(shop.db, ReportFilter(), ZONE, by_day=True, base="CNY")
    mine = frame[frame["campaign_id"] == spring_.id]
    days = zip(mine["day"], mine["part"], mine["amount"], strict=True)
    got = {(d.isoformat(), p): a for d, p, a in days}
    assert got == {
        ("2026-03-02", "coupons"): D("20.00"),
        ("2026-03-02", "bonus_points"): D("9.00"),
        ("2026-03-05", "coupons"): D("35.60"),
        ("2026-03-05", "bonus_points"): D("0.35"),
        ("2026-03-10", "bonus_points"): D("-4.50"),
        ("2026-03-12", "rewards"): D("25.00"),
        ("2026-03-15", "bonus_points"): D("5.00"),
        ("2026-04-01", "coupons"): D("-20.00"),
        ("2026-04-01", "bonus_points"): D("-4.50"),
    }


def test_a_period_selects_by_each_records_own_date(
    shop: Shop, spring: tuple[Campaign, Campaign]
) -> None:
    spring_, other = spring
    march = loyalty_costs(shop.db, MARCH, ZONE, by_day=False, base="CNY")
    april = loyalty_costs(shop.db, APRIL, ZONE, by_day=False, base="CNY")
    assert parts(march, spring_) == {
        "coupons": D("55.60"),
        "bonus_points": D("9.85"),
        "rewards": D("25.00"),
    }
    assert parts(april, spring_) == {"coupons": D("-20.00"), "bonus_points": D("-4.50")}
    assert parts(april, other) == {}
    # The campaign filter narrows it to one campaign.
    only = loyalty_costs(
        shop.db, ReportFilter(campaign_ids=(other.id,)), ZONE, by_day=False, base="CNY"
    )
    assert set(only["campaign_id"]) == {other.id}


def test_the_report_counts_it_and_a_month_alone_equals_its_row(
    shop: Shop, staff: Staff, spring: tuple[Campaign, Campaign]
) -> None:
    """SPRING26 also has an approved receipt of 50.00 on 03-05. March alone: loyalty 90.45,
    total cost 140.45; the monthly report's March row says the same, April's −24.50."""
    spring_, _ = spring
    file_receipt(shop.db, spring_.id, "50.00", day=date(2026, 3, 5))
    only = ReportFilter(campaign_ids=(spring_.id,))

    def report(f: ReportFilter, group_by: GroupBy = "campaign") -> dict[str, Any]:
        made = loyalty_reports.roi(shop.db, "CNY", f, group_by, zone=ZONE)
        return campaign_costs.include(shop.db, made, f, ZONE, base="CNY").as_json()

    march = report(ReportFilter(start=MARCH.start, end=MARCH.end, campaign_ids=only.campaign_ids))
    row = march["rows"][0]
    assert (row["approved_cost"], row["loyalty_cost"], row["total_cost"]) == (
        "50.00",
        "90.45",
        "140.45",
    )
    assert row["loyalty_cost_parts"] == {
        "coupons": "55.60",
        "bonus_points": "9.85",
        "rewards": "25.00",
    }
    months = {r["month"]: r for r in report(only, "month")["rows"]}
    assert months["2026-03"]["loyalty_cost"] == "90.45"
    assert months["2026-03"]["total_cost"] == row["total_cost"]
    assert months["2026-04"]["loyalty_cost"] == "-24.50"


def test_a_campaign_with_only_loyalty_cost_in_the_period_is_shown(shop: Shop, staff: Staff) -> None:
    """A campaign that ended in February whose reward is redeemed in March: no receipt, no
    revenue in March, but its loyalty cost is a record dated in March, so it is a row."""
    old = make_campaign(
        shop.db, staff, "WINTER", starts_on=date(2026, 1, 1), ends_on=date(2026, 2, 28)
    )
    shop.program(point_value=D("0.05"))
    member = shop.join()
    rewards.adjust(shop.db, ACTOR, member.id, 200, reason="gift", key="g", at=T0, zone=ZONE)
    prize = _batch(shop, "5 off", "5", old)
    reward = rewards.save(shop.db, ACTOR, name="5 off", points_cost=200, batch_id=prize)
    rewards.redeem(shop.db, ACTOR, member.id, reward.id, key="w", at=local(3))
    plain = loyalty_reports.roi(shop.db, "CNY", MARCH, zone=ZONE)
    assert [r.key["code"] for r in plain.rows] == []
    counted = campaign_costs.include(shop.db, plain, MARCH, ZONE, base="CNY")
    assert [(r.key["code"], r.values["loyalty_cost"]) for r in counted.rows] == [
        ("WINTER", D("10.00"))
    ]


def test_booking_rules() -> None:
    """5 USD on a purchase of 1.00 USD booked 7.12 CNY: 35.60. Points × value, half up."""
    assert at_purchase_rate(D(5), D("1.00"), D("7.12"), "CNY") == D("35.60")
    assert at_purchase_rate(D("3.33"), D("33.33"), D("237.42"), "CNY") == D("23.72")  # 23.7206…
    assert campaign_costs.points_value(7, D("0.0125"), "CNY") == D("0.09")  # 0.0875
    program = Program(restore_coupon_on_refund=True)
    # 101 points, a purchase of 3.00 refunded 1.00 then 1.00 then 1.00: 34, 33, 34.
    assert [rule_share_taken(101, D(3), D(before), D(1), program) for before in (0, 1, 2)] == [
        34,
        33,
        34,
    ]
    assert rule_share_taken(101, D(3), D(0), D(3), program) == 101


def test_nothing_to_count_is_an_empty_frame(shop: Shop) -> None:
    frame = loyalty_costs(shop.db, MARCH, ZONE, by_day=True, base="CNY")
    assert frame.empty and list(frame.columns) == ["campaign_id", "day", "amount", "part"]


def test_a_use_without_a_purchase_converts_at_the_rate_of_its_day(shop: Shop, staff: Staff) -> None:
    """A till redemption of 5 USD off (no purchase) on 03-07: USD 7.1234 on 03-01, 7.30 from
    03-20, so 5 × 7.1234 = 35.617, booked 35.62. Without a rate for its day it is refused,
    naming the currency and the date, as the report is."""
    campaign = make_campaign(shop.db, staff, "TILL")
    member = shop.join()
    dollars = _batch(shop, "5 USD off", "5", campaign, currency="USD")
    code = _code(shop, dollars, member)
    coupons.redeem(
        shop.db, ACTOR, code, member=member, key="till", spend=D(10), currency="USD", at=local(7)
    )
    with pytest.raises(rates.MissingRate, match="USD on or before 2026-03-07"):
        loyalty_costs(shop.db, MARCH, ZONE, by_day=False, base="CNY")
    rates.set_rate(shop.db, staff.finance, "USD", date(2026, 3, 1), D("7.1234"), "CNY")
    rates.set_rate(shop.db, staff.finance, "USD", date(2026, 3, 20), D("7.30"), "CNY")
    frame = loyalty_costs(shop.db, MARCH, ZONE, by_day=True, base="CNY")
    assert [
        (d.isoformat(), a, p)
        for d, a, p in zip(frame["day"], frame["amount"], frame["part"], strict=True)
    ] == [("2026-03-07", D("35.62"), "coupons")]
