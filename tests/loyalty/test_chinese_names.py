"""Optional Chinese names (name_zh) for what staff name and members see: tiers, bonus rules,
coupon batches and rewards. Each is bounded like its name's column, stored trimmed (blank is
none), audited, and shown by one rule (`loyalty.models.name_in`): the Chinese name to a
reader of Chinese when there is one, else the name."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import bounds
from core.audit import AuditEntry
from core.errors import Invalid
from loyalty import coupons, rewards
from loyalty import program as program_settings
from loyalty.models import Batch, BonusRule, ConfigVersion, Named, Reward, Tier, name_in
from tests.loyalty.conftest import ACTOR, Shop


def named(name: str, name_zh: str | None) -> Named:
    found: Named = SimpleNamespace(name=name, name_zh=name_zh)
    return found


@pytest.mark.parametrize(
    ("name_zh", "language", "shown"),
    [
        ("金卡", "zh", "金卡"),
        ("金卡", "en", "Gold"),
        (None, "zh", "Gold"),
        ("", "zh", "Gold"),
        (None, "en", "Gold"),
    ],
)
def test_the_name_in_a_language(name_zh: str | None, language: str, shown: str) -> None:
    assert name_in(named("Gold", name_zh), language) == shown


def test_each_chinese_name_column_is_as_long_as_its_name() -> None:
    for model in (Tier, BonusRule, Batch, Reward):
        assert bounds.length(model.name_zh) == bounds.length(model.name), model


def _tier(shop: Shop, **change: Any) -> Tier:
    fields: dict[str, Any] = {
        "code": "gold",
        "name": "Gold",
        "rank": 2,
        "threshold": 5000,
        "multiplier": Decimal("1.5"),
    }
    return program_settings.save_tier(shop.db, ACTOR, **{**fields, **change})


def _rule(shop: Shop, **change: Any) -> BonusRule:
    return program_settings.save_rule(
        shop.db, ACTOR, **{"name": "Double points", "multiplier": Decimal(2), **change}
    )


def _batch(shop: Shop, **change: Any) -> Batch:
    fields: dict[str, Any] = {
        "name": "Ten off",
        "kind": "fixed",
        "value": Decimal(10),
        "currency": "CNY",
        "valid_days": 30,
    }
    return coupons.create_batch(shop.db, ACTOR, **{**fields, **change})


def _reward(shop: Shop, **change: Any) -> Reward:
    batch = _batch(shop, name=f"For a reward {len(change)}")
    return rewards.save(
        shop.db,
        ACTOR,
        **{"name": "Voucher", "points_cost": 300, "batch_id": batch.id, **change},
    )


MAKERS: dict[str, tuple[Callable[..., Named], int]] = {
    "tier": (_tier, 64),
    "rule": (_rule, 100),
    "batch": (_batch, 100),
    "reward": (_reward, 100),
}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_a_chinese_name_is_stored_trimmed_and_blank_is_none(shop: Shop, kind: str) -> None:
    make, _ = MAKERS[kind]
    assert make(shop, name_zh="  双倍积分 ").name_zh == "双倍积分"
    assert make(shop, name_zh="   ").name_zh is None
    assert make(shop, name_zh=None).name_zh is None
    assert make(shop).name_zh is None  # it is optional


@pytest.mark.parametrize("kind", list(MAKERS))
def test_a_chinese_name_is_bounded_like_its_column(shop: Shop, kind: str) -> None:
    make, size = MAKERS[kind]
    assert make(shop, name_zh="金" * size).name_zh == "金" * size  # characters, not bytes
    for bad, says in (
        ("金" * (size + 1), f"The Chinese name is longer than {size} characters."),
        ("金\x00卡", "The Chinese name must not contain control characters."),
        ("金\ud800", "The Chinese name is not valid text (a lone surrogate character)."),
    ):
        with pytest.raises(Invalid) as refused:
            make(shop, name_zh=bad)
        assert refused.value.fields == {"name_zh": says}


def test_every_problem_of_a_tier_is_named_at_once(shop: Shop) -> None:
    with pytest.raises(Invalid) as refused:
        _tier(shop, name="", name_zh="金" * 65, rank=5000, multiplier=Decimal("0.5"))
    assert set(refused.value.fields) == {"name", "name_zh", "rank", "multiplier"}
    assert refused.value.code == "tier.name"  # the first problem's code, as before
    shop.db.expire_all()
    assert shop.db.scalar(select(Tier.name).where(Tier.code == "gold")) == "Gold"


def test_every_problem_of_a_rule_batch_and_reward_is_named_at_once(shop: Shop) -> None:
    with pytest.raises(Invalid) as rule:
        _rule(shop, name=" ", name_zh="x" * 101, priority=-1, starts_on=None, multiplier=None)
    assert set(rule.value.fields) == {"name", "name_zh", "priority", "multiplier"}
    with pytest.raises(Invalid) as batch:
        _batch(shop, name="", currency="RMB", value=Decimal(-1), valid_days=None, total_limit=0)
    assert set(batch.value.fields) == {"name", "currency", "value", "valid_until", "total_limit"}
    with pytest.raises(Invalid) as reward:
        _reward(shop, name="", points_cost=0, batch_id=2**40, eligible_tiers=["nope"])
    assert set(reward.value.fields) == {"name", "points_cost", "batch_id", "eligible_tiers"}


def test_chinese_names_are_audited(shop: Shop) -> None:
    _tier(shop, name_zh="金卡")
    _tier(shop, name_zh="黄金卡")
    tier_rows = shop.db.scalars(
        select(AuditEntry).where(AuditEntry.action == "tier.save").order_by(AuditEntry.id)
    ).all()
    assert tier_rows[-1].before is not None and tier_rows[-1].after is not None
    assert (tier_rows[-1].before["name_zh"], tier_rows[-1].after["name_zh"]) == ("金卡", "黄金卡")
    for action, make in (
        ("bonus_rule.save", _rule),
        ("coupon_batch.create", _batch),
        ("reward.save", _reward),
    ):
        make(shop, name_zh="中文")
        row = shop.db.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id.desc())
        ).first()
        assert row is not None and row.after is not None and row.after["name_zh"] == "中文"


def test_changing_a_chinese_name_keeps_the_tier_ladder_and_the_settings_cache_fresh(
    shop: Shop, db: Session
) -> None:
    before = db.scalar(select(ConfigVersion.token))
    _tier(shop, name_zh="金卡")
    db.flush()
    assert db.scalar(select(ConfigVersion.token)) != before  # the trigger survived migration 0012
    assert [t.code for t in program_settings.ladder(db)] == ["member", "silver", "gold", "platinum"]
