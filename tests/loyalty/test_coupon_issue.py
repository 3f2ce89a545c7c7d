"""Issuing a batch to many members: who it reaches (a blank tier choice is no choice), the
count shown before confirming, a confirmation that no longer holds, and a batch's counts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.errors import Conflict, ValidationFailed
from loyalty import coupons
from loyalty.models import Coupon, Member, Tier
from tests.loyalty.conftest import ACTOR, T0, Shop


def batch(shop: Shop, **extra: object) -> int:
    fields: dict[str, object] = {
        "name": "Ten off",
        "kind": "fixed",
        "value": Decimal(10),
        "currency": "CNY",
        "valid_days": 30,
    }
    fields.update(extra)
    return coupons.create_batch(shop.db, ACTOR, **fields).id  # type: ignore[arg-type]


def promote(shop: Shop, member: Member, tier: str) -> None:
    member.tier_id = shop.db.scalars(select(Tier.id).where(Tier.code == tier)).one()
    shop.db.flush()


def held(shop: Shop, batch_id: int) -> int:
    return (
        shop.db.scalar(
            select(func.count(Coupon.id)).where(
                Coupon.batch_id == batch_id, Coupon.member_id.is_not(None)
            )
        )
        or 0
    )


def test_every_member_is_the_blank_tier_choice(shop: Shop) -> None:
    """The page's "Every member" option posts tiers="" : that reached nobody."""
    for n in range(3):
        shop.join(f"M{n}")
    batch_id = batch(shop)
    plan = coupons.plan_issue(shop.db, ACTOR, batch_id, tier_codes=[""], region="", city=" ")
    assert (plan.members, plan.tiers, plan.region, plan.city) == (3, [], None, None)
    issued = coupons.issue_to_members(
        shop.db, ACTOR, batch_id, tier_codes=[""], region="", city="", at=T0
    )
    assert issued == 3 and held(shop, batch_id) == 3


def test_eligible_tiers_is_the_blank_choice_of_a_tier_batch(shop: Shop) -> None:
    members = [shop.join(f"M{n}") for n in range(3)]
    promote(shop, members[0], "silver")
    batch_id = batch(shop, eligible_tiers=["silver"])
    assert coupons.plan_issue(shop.db, ACTOR, batch_id, tier_codes=[""]).members == 1
    assert coupons.issue_to_members(shop.db, ACTOR, batch_id, tier_codes=[""], at=T0) == 1
    coupon = shop.db.scalars(select(Coupon).where(Coupon.batch_id == batch_id)).one()
    assert coupon.member_id == members[0].id


def test_a_chosen_tier_must_exist_and_be_one_of_the_batchs(shop: Shop) -> None:
    member = shop.join()
    promote(shop, member, "silver")
    batch_id = batch(shop, eligible_tiers=["silver"])
    assert coupons.plan_issue(shop.db, ACTOR, batch_id, tier_codes=[" Silver "]).members == 1
    others = shop.db.scalars(select(Tier.code).where(Tier.code != "silver")).all()
    with pytest.raises(ValidationFailed, match="only"):
        coupons.issue_to_members(shop.db, ACTOR, batch_id, tier_codes=[others[0]], at=T0)
    with pytest.raises(ValidationFailed, match="Unknown tier"):
        coupons.plan_issue(shop.db, ACTOR, batch_id, tier_codes=["platinum-x"])
    assert held(shop, batch_id) == 0


def test_a_confirmation_issues_once(shop: Shop) -> None:
    for n in range(2):
        shop.join(f"M{n}")
    batch_id = batch(shop)
    plan = coupons.plan_issue(shop.db, ACTOR, batch_id)
    assert (plan.members, plan.issued_before) == (2, 0)

    def confirm() -> int:
        return coupons.issue_to_members(
            shop.db, ACTOR, batch_id, at=T0, expected=plan.members, issued_before=plan.issued_before
        )

    assert confirm() == 2
    with pytest.raises(Conflict, match="changed since you confirmed"):  # a double submit
        confirm()
    assert held(shop, batch_id) == 2


def test_more_members_than_confirmed_issues_nothing(shop: Shop) -> None:
    shop.join("M0")
    batch_id = batch(shop)
    plan = coupons.plan_issue(shop.db, ACTOR, batch_id)
    shop.join("M1")
    with pytest.raises(Conflict, match="more than the 1 you confirmed"):
        coupons.issue_to_members(
            shop.db, ACTOR, batch_id, at=T0, expected=plan.members, issued_before=0
        )
    assert held(shop, batch_id) == 0


def test_the_plan_refuses_what_the_issue_would(shop: Shop) -> None:
    for n in range(3):
        shop.join(f"M{n}")
    with pytest.raises(Conflict, match="allows 2 more coupons, not 3"):
        coupons.plan_issue(shop.db, ACTOR, batch(shop, total_limit=2))
    public = batch(shop, name="Public", public_code="OPEN2026")
    with pytest.raises(Conflict, match="public code"):
        coupons.plan_issue(shop.db, ACTOR, public)


def test_counts_keep_generated_issued_and_redeemed_apart(shop: Shop) -> None:
    owner, other = shop.join("Owner"), shop.join("Other")
    batch_id = batch(shop)
    empty = batch(shop, name="Empty")
    coupons.generate(shop.db, ACTOR, batch_id, 5, at=T0)
    mine = coupons.issue(shop.db, ACTOR, batch_id, owner, reason="test", at=T0)
    theirs = coupons.issue(shop.db, ACTOR, batch_id, other, reason="test", at=T0)
    first = coupons.redeem(shop.db, ACTOR, mine.code, member=owner, key="k1", at=T0)
    coupons.redeem(shop.db, ACTOR, theirs.code, member=other, key="k2", at=T0)
    coupons.restore(shop.db, first, at=T0)  # reversed by a refund: not a redemption
    assert coupons.counts(shop.db)[batch_id] == coupons.BatchCounts(
        generated=5, issued=2, redeemed=1
    )
    assert empty not in coupons.counts(shop.db)
    assert coupons.counts(shop.db, [empty]) == {}
