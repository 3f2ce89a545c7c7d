"""Tiers: up at once, down only at evaluation, one level at a time, after retention."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from loyalty import tiers
from loyalty.models import Member, Tier, TierChange
from tests.loyalty.conftest import T0, Shop


def tier_of(shop: Shop, member_id: int) -> str:
    member = shop.db.get_one(Member, member_id)
    shop.db.refresh(member)
    tier = shop.db.get(Tier, member.tier_id)
    assert tier is not None
    return tier.code


def test_downgrades_wait_for_retention_and_go_one_level_at_a_time(shop: Shop) -> None:
    member = shop.join()
    outcome = shop.buy(member, "5000.00")  # 5,000 + 200 first purchase: Gold at once
    assert outcome.tier_change is not None and outcome.tier_change.to_tier == "Gold"
    # 60 days later nothing moves: the metric still qualifies.
    assert tiers.evaluate(shop.db, T0 + timedelta(days=60)) == {"upgraded": 0, "downgraded": 0}
    year_on = T0 + timedelta(days=400)  # the purchase has left the 12-month window
    assert tiers.evaluate(shop.db, year_on)["downgraded"] == 1
    assert tier_of(shop, member.id) == "silver"
    # Just moved: retention (90 days) holds it there.
    assert tiers.evaluate(shop.db, year_on + timedelta(days=30))["downgraded"] == 0
    assert tiers.evaluate(shop.db, year_on + timedelta(days=91))["downgraded"] == 1
    assert tier_of(shop, member.id) == "member"
    assert tiers.evaluate(shop.db, year_on + timedelta(days=400))["downgraded"] == 0
    reasons = shop.db.scalars(
        select(TierChange.reason).where(TierChange.member_id == member.id).order_by(TierChange.id)
    ).all()
    assert reasons[0] == "Joined" and reasons[1].startswith("Reached Gold: 5,200 points")
    assert reasons[2].startswith("Moved down to Silver")


def test_evaluation_upgrades_members_a_bulk_load_left_behind(shop: Shop) -> None:
    member = shop.join()
    shop.buy(member, "1500.00")
    member = shop.fresh(member)
    member.tier_id = shop.db.scalars(select(Tier.id).where(Tier.code == "member")).one()
    shop.db.flush()
    assert tiers.evaluate(shop.db, T0 + timedelta(days=1), upgrades_only=True)["upgraded"] == 1
    assert tier_of(shop, member.id) == "silver"
