"""The reward catalog: spend points for a coupon in one transaction."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from loyalty import coupons
from loyalty import rewards as catalog
from loyalty.models import Reward
from tests.loyalty.conftest import ACTOR, T0, Shop


def make_reward(shop: Shop, cost: int = 500, **batch: object) -> Reward:
    made = coupons.create_batch(
        shop.db,
        ACTOR,
        name="10 off",
        kind="fixed",
        value=Decimal(10),
        currency="CNY",
        valid_days=30,
        **batch,  # type: ignore[arg-type]
    )
    return catalog.save(shop.db, ACTOR, name="10 CNY voucher", points_cost=cost, batch_id=made.id)


def test_redeeming_issues_the_coupon_and_a_retry_returns_it(shop: Shop) -> None:
    member = shop.join()
    reward = make_reward(shop, cost=60)
    first = catalog.redeem(shop.db, ACTOR, member.id, reward.id, key="k", at=T0)
    again = catalog.redeem(shop.db, ACTOR, member.id, reward.id, key="k", at=T0)
    assert again.replayed and again.coupon.id == first.coupon.id
    assert first.coupon.member_id == member.id
    assert first.coupon.valid_until == T0 + timedelta(days=30)
    assert shop.check(member).balance == 40
