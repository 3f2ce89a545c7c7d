"""Scenarios with points computed by hand (the arithmetic is in each docstring).

Program defaults from the migration: 1 point per CNY, 7-day return window, expiry at the
end of the next calendar year, sign-up bonus 100, first-purchase bonus 200, repeat bonus 300
for the 3rd purchase in 30 days, tiers Member / Silver ×1.25 / Gold ×1.5 / Platinum ×2.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from campaigns.models import Campaign
from campaigns.report_data import ReportFilter
from loyalty import program as program_settings
from loyalty import reports as loyalty_reports
from loyalty import rewards
from loyalty.ledger import NegativeBalance
from loyalty.models import Tier
from tests.campaigns.conftest import Staff, file_receipt, make_campaign
from tests.loyalty.conftest import ACTOR, T0, ZONE, Shop
from tests.loyalty.test_rewards import make_reward


def gold(shop: Shop) -> int:
    tier = shop.db.scalar(select(Tier).where(Tier.code == "gold"))
    assert tier is not None
    return tier.id


def test_tier_multiplier_with_a_campaign_bonus(shop: Shop, staff: Staff) -> None:
    """A Gold member buys 200.00 CNY under campaign SPRING26 with a "Double points" rule:
    base 200 × 1 = 200; Gold ×1.5 adds 200 × 0.5 = 100; Double points adds 200 × (2−1) = 200;
    first purchase 200. Earned 700, plus the 100 sign-up bonus: balance 800, of which the
    700 are pending for 7 days."""
    campaign: Campaign = make_campaign(shop.db, staff)
    program_settings.save_rule(
        shop.db, ACTOR, name="Double points", campaign_id=campaign.id, multiplier=Decimal(2)
    )
    member = shop.join()
    member.tier_id = gold(shop)
    outcome = shop.buy(member, "200.00", campaign_code="SPRING26")
    assert [(e.points, e.reason) for e in outcome.earned] == [
        (200, "Points for your purchase"),
        (100, "Gold member ×1.5"),
        (200, "Double points — Spring sale"),
        (200, "First purchase bonus"),
    ]
    m = shop.check(member)
    assert (m.balance, m.pending_points, m.available) == (800, 700, 100)
    assert outcome.pending_until == T0 + timedelta(days=7)
    assert outcome.purchase.campaign_id == campaign.id


def test_partial_refund_after_part_of_the_points_were_spent(shop: Shop) -> None:
    """Sign-up 100. Purchase 1,000.00: base 1,000 + first purchase 200 = 1,200, pending 7 days;
    crossing 1,000 points makes the member Silver at once. After the window the member spends
    1,000 on a reward: 300 left (1,300 − 1,000). A refund of 600.00 (60%) reverses
    round(1,200 × 0.6) = 720: the purchase's lot holds 200 (1,200 less the 1,000 spent),
    the sign-up lot 100: 300 drawn, 420 left as debt. Balance 300 − 720 = −420; redemption is
    refused until it is positive."""
    member = shop.join()
    outcome = shop.buy(member, "1000.00", ext="BIG")
    assert outcome.points == 1200 and outcome.tier_change is not None
    assert outcome.tier_change.to_tier == "Silver"
    later = T0 + timedelta(days=8)
    shop.jobs(later, "unlock_pending")
    reward = make_reward(shop, cost=1000)
    rewards.redeem(shop.db, ACTOR, member.id, reward.id, key="r1", at=later)
    assert shop.check(member).balance == 300
    result = shop.refund("BIG", "600.00", at=later)
    assert result.points_reversed == 720
    m = shop.check(member)
    assert (m.balance, m.debt, m.available) == (-420, 420, -420)
    with pytest.raises(NegativeBalance):
        rewards.redeem(shop.db, ACTOR, member.id, reward.id, key="r2", at=later)
    # The rest of the purchase refunded: 1,200 − 720 = 480 more, all debt now.
    assert shop.refund("BIG", None, at=later).points_reversed == 480
    assert shop.check(member).balance == -900


def test_expiry_at_a_policy_boundary(shop: Shop) -> None:
    """Policy "end of the month 1 month later": points active on 9 March (Shanghai) expire at
    local midnight after 30 April, i.e. 2026-04-30T16:00Z. At 15:59:59Z nothing expires; at
    16:00:00Z the 100 remaining of the purchase lot expire (the sign-up lot, active on
    2 March, expired at the end of April too: both go)."""
    shop.program(expiry_policy="end_of_month", expiry_n=1, first_purchase_bonus=0)
    member = shop.join()
    shop.buy(member, "100.00")
    shop.jobs(T0 + timedelta(days=7), "unlock_pending")
    boundary = datetime(2026, 4, 30, 16, 0, tzinfo=UTC)
    assert shop.jobs(boundary - timedelta(seconds=1), "expire_lots")["expire_lots"]["done"] == 0
    assert shop.check(member).balance == 200
    assert shop.jobs(boundary, "expire_lots")["expire_lots"]["done"] == 2
    m = shop.check(member)
    assert m.balance == 0
    assert [e[:2] for e in shop.entries(member)][-2:] == [("expire", -100), ("expire", -100)]
    # Running again changes nothing.
    assert shop.jobs(boundary, "expire_lots")["expire_lots"]["done"] == 0


def test_referral_completes_only_after_the_return_window(shop: Shop) -> None:
    """Referrer A, referee B joins with A's code and buys 150.00 (≥ 100 minimum). Six days
    later the job completes nothing; on day 7 both are rewarded: A +500, B +300."""
    a = shop.join("A")
    b = shop.join("B", referral=a.referral_code)
    outcome = shop.buy(b, "150.00")
    assert outcome.referral is not None
    assert (
        shop.jobs(T0 + timedelta(days=6, hours=23), "complete_referrals")["complete_referrals"][
            "done"
        ]
        == 0
    )
    assert (
        shop.jobs(T0 + timedelta(days=7), "complete_referrals")["complete_referrals"]["done"] == 1
    )
    assert shop.check(a).balance == 100 + 500
    # B: sign-up 100 + purchase 150 + first purchase 200 + referee reward 300.
    assert shop.check(b).balance == 100 + 150 + 200 + 300
    assert (
        shop.jobs(T0 + timedelta(days=8), "complete_referrals")["complete_referrals"]["done"] == 0
    )


def test_a_refunded_first_purchase_cancels_the_referral(shop: Shop) -> None:
    a = shop.join("A")
    b = shop.join("B", referral=a.referral_code)
    shop.buy(b, "150.00", ext="FIRST")
    assert shop.refund("FIRST", None, at=T0 + timedelta(days=2)).referral_cancelled
    assert (
        shop.jobs(T0 + timedelta(days=8), "complete_referrals")["complete_referrals"]["done"] == 0
    )
    assert shop.check(a).balance == 100


def test_birthday_reward_once_per_year(shop: Shop) -> None:
    """Born 1990-03-10: the job on 10 March (Shanghai) gives 500 once; a second run that day
    and a run the next day give nothing; the next year's birthday gives 500 again."""
    member = shop.join(birthday=date(1990, 3, 10))
    day = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert shop.jobs(day, "birthdays")["birthdays"]["done"] == 1
    assert shop.jobs(day + timedelta(hours=5), "birthdays")["birthdays"]["done"] == 0
    assert shop.jobs(day + timedelta(days=1), "birthdays")["birthdays"]["done"] == 0
    assert shop.check(member).balance == 100 + 500
    assert shop.jobs(day.replace(year=2027), "birthdays")["birthdays"]["done"] == 1
    assert shop.check(member).balance == 100 + 500 + 500


def test_purchases_feed_the_campaign_roi_report(shop: Shop, staff: Staff) -> None:
    """Campaign SPRING26 (approved cost 500.00): a member buys 300.00 with its code, a guest
    100.00 with its code, and 999.00 without a code. A 50.00 refund lowers the first.
    Revenue 300 − 50 + 100 = 350.00 over 2 orders; ratio 350 / 500 = 0.70."""
    campaign = make_campaign(shop.db, staff)
    file_receipt(shop.db, campaign.id, "500.00")
    member = shop.join()
    shop.buy(member, "300.00", campaign_code="SPRING26", ext="C1")
    shop.buy(None, "100.00", campaign_code="SPRING26")
    shop.buy(member, "999.00")
    shop.refund("C1", "50.00")
    for group_by in ("campaign", "month"):
        report = loyalty_reports.roi(
            shop.db, "CNY", ReportFilter(campaign_ids=(campaign.id,)), group_by, zone=ZONE
        )
        assert report.total.values["revenue"] == Decimal("350.00")
        assert report.total.values["orders"] == 2
