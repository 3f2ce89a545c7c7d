"""Coupons: every reason validate gives, limits, public codes, restore on refund, export."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.errors import Conflict
from loyalty import codes, coupons
from loyalty.models import Coupon, CouponState, Member, Tier
from tests.loyalty.conftest import ACTOR, T0, Shop


def batch(shop: Shop, **extra: object) -> int:
    fields: dict[str, object] = {
        "name": "20% off",
        "kind": "percent",
        "value": Decimal(20),
        "currency": "CNY",
        "valid_days": 30,
    }
    fields.update(extra)
    return coupons.create_batch(shop.db, ACTOR, **fields).id  # type: ignore[arg-type]


def test_validate_says_why_a_code_cannot_be_used(shop: Shop) -> None:
    owner, other = shop.join("Owner"), shop.join("Other")
    batch_id = batch(shop, max_discount=Decimal(30), min_spend=Decimal(100))
    coupon = coupons.issue(shop.db, ACTOR, batch_id, owner, reason="test", at=T0)

    def why(member: Member | None, spend: str | None = "200", at: datetime = T0) -> str:
        return coupons.validate(
            shop.db,
            coupon.code,
            member=member,
            at=at,
            spend=None if spend is None else Decimal(spend),
        ).code

    assert why(owner) == "ok"
    assert coupons.validate(
        shop.db, coupon.code.lower(), member=owner, spend=Decimal(200), at=T0
    ).discount == Decimal("30.00")  # 40 capped at 30
    assert coupons.validate(
        shop.db, coupon.code, member=owner, spend=Decimal(120), at=T0
    ).discount == Decimal("24.00")
    assert why(other) == "coupon.not_yours"
    assert why(owner, "99.99") == "coupon.min_spend"
    assert why(owner, at=T0 + timedelta(days=30)) == "coupon.expired"
    assert why(None) == "coupon.not_yours"
    assert coupons.validate(shop.db, "ZZZZZZZZ", member=owner).code == "coupon.unknown"
    coupons.redeem(shop.db, ACTOR, coupon.code, member=owner, key="k1", spend=Decimal(200), at=T0)
    assert why(owner) == "coupon.used"


def test_limits_tiers_and_windows(shop: Shop) -> None:
    member = shop.join()
    gold_only = batch(shop, eligible_tiers=["gold"])
    with pytest.raises(Conflict, match="gold"):
        coupons.issue(shop.db, ACTOR, gold_only, member, reason="test", at=T0)
    once = batch(shop, per_member_limit=1, total_limit=2)
    coupons.issue(shop.db, ACTOR, once, member, reason="test", at=T0)
    with pytest.raises(Conflict) as err:
        coupons.issue(shop.db, ACTOR, once, member, reason="test", at=T0)
    assert err.value.code == "coupon.member_limit"
    with pytest.raises(Conflict) as err:
        coupons.generate(shop.db, ACTOR, once, 2)
    assert err.value.code == "batch.limit"
    later = batch(
        shop,
        valid_days=None,
        valid_from=T0 + timedelta(days=5),
        valid_until=T0 + timedelta(days=10),
    )
    coupon = coupons.issue(shop.db, ACTOR, later, member, reason="test", at=T0)
    assert coupons.validate(shop.db, coupon.code, member=member, at=T0).code == "coupon.not_started"


def test_a_public_code_counts_its_uses(shop: Shop) -> None:
    a, b = shop.join("A"), shop.join("B")
    batch(
        shop,
        public_code="spring-10",
        kind="fixed",
        value=Decimal(10),
        total_limit=2,
        per_member_limit=1,
    )
    coupons.redeem(shop.db, ACTOR, "SPRING10", member=a, key="p1", at=T0)
    assert coupons.validate(shop.db, "SPRING10", member=a, at=T0).code == "coupon.member_limit"
    coupons.redeem(shop.db, ACTOR, "spring 10", member=b, key="p2", at=T0)
    assert coupons.validate(shop.db, "SPRING10", member=shop.join("C"), at=T0).code == "coupon.cap"


def test_a_coupon_used_on_a_fully_refunded_purchase_comes_back(shop: Shop) -> None:
    member = shop.join()
    batch_id = batch(shop, kind="fixed", value=Decimal(15))
    coupon = coupons.issue(shop.db, ACTOR, batch_id, member, reason="test", at=T0)
    outcome = shop.buy(member, "85.00", discount=Decimal(15), coupon_codes=(coupon.code,), ext="C1")
    assert [r.discount for r in outcome.coupons] == [Decimal("15.00")]
    shop.db.refresh(coupon)
    assert coupon.state == CouponState.REDEEMED
    assert not shop.refund("C1", "40.00").coupon_restored  # partial: the coupon stays used
    assert shop.refund("C1", None).coupon_restored
    shop.db.refresh(coupon)
    assert coupon.state == CouponState.ISSUED


def test_generate_a_batch_and_export_its_codes(shop: Shop) -> None:
    batch_id = batch(shop)
    assert coupons.generate(shop.db, ACTOR, batch_id, 500) == 500
    made = shop.db.scalars(select(Coupon.code).where(Coupon.batch_id == batch_id)).all()
    assert len(set(made)) == 500
    assert all(len(c) == codes.COUPON_LENGTH and set(c) <= set(codes.ALPHABET) for c in made)
    exported = "".join(coupons.export_csv(shop.db, batch_id)).lstrip("\ufeff").splitlines()
    assert exported[0] == "code,state,member_number,valid_from,valid_until"
    assert sorted(line.split(",")[0] for line in exported[1:]) == sorted(made)


def test_exported_codes_never_open_as_spreadsheet_formulas(shop: Shop) -> None:
    """Codes and member numbers are generated today, but a legacy import or a hand-made code
    must not turn the export into a formula either."""
    member = shop.join()
    batch_id = batch(shop)
    coupons.issue(shop.db, ACTOR, batch_id, member, reason="test", at=T0)
    coupons.generate(shop.db, ACTOR, batch_id, 3)
    made = shop.db.scalars(
        select(Coupon).where(Coupon.batch_id == batch_id).order_by(Coupon.id)
    ).all()
    hostile = ['=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1)", "\tTAB"]
    for coupon, code in zip(made, hostile, strict=True):
        coupon.code = code
    member.number = "-2+3"
    shop.db.flush()
    text = "".join(coupons.export_csv(shop.db, batch_id))
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["code"] for r in rows] == ["'" + code for code in hostile]
    assert rows[0]["member_number"] == "'-2+3"
    assert made[0].valid_until is not None
    assert rows[0]["valid_until"] == made[0].valid_until.isoformat()
    assert rows[1]["member_number"] == "" and rows[1]["state"] == "issued"


def test_issue_to_a_tier(shop: Shop) -> None:
    members = [shop.join(f"M{n}") for n in range(3)]
    silver = shop.db.scalar(select(Tier.id).where(Tier.code == "silver"))
    assert silver is not None
    members[0].tier_id = silver
    shop.db.flush()
    batch_id = batch(shop, per_member_limit=1)
    assert coupons.issue_to_members(shop.db, ACTOR, batch_id, tier_codes=["silver"], at=T0) == 1
    assert coupons.issue_to_members(shop.db, ACTOR, batch_id, tier_codes=["silver"], at=T0) == 0
    assert coupons.issue_to_members(shop.db, ACTOR, batch_id, at=T0) == 2


def test_a_code_that_clashes_is_drawn_again(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    batch_id = batch(shop)
    coupons.generate(shop.db, ACTOR, batch_id, 1)
    existing = shop.db.scalars(select(Coupon.code).where(Coupon.batch_id == batch_id)).one()
    real = codes.generate
    draws: list[int] = []

    def clashing(count: int, length: int = codes.COUPON_LENGTH) -> list[str]:
        draws.append(count)
        return [existing, *real(count - 1)] if len(draws) == 1 else real(count, length)

    monkeypatch.setattr(codes, "generate", clashing)
    assert coupons.generate(shop.db, ACTOR, batch_id, 3) == 3
    assert draws == [3, 1]  # the clashing code was drawn again, alone
    made = shop.db.scalars(select(Coupon.code).where(Coupon.batch_id == batch_id)).all()
    assert len(made) == len(set(made)) == 4
