"""Chinese names on the pages: staff enter them beside the names (bounded like the column),
and a member reading the portal in Chinese sees them (tiers, rewards, coupon batches, bonus
rules in the history) where staff gave one, the name elsewhere; a member reading English
always sees the name. The API returns them beside the names."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor
from loyalty import coupons, purchases, rewards
from loyalty import program as program_settings
from loyalty.models import Member, MemberAccount, Tier
from loyalty.purchases import PurchaseInput
from tests.web.conftest import member_sign_in, sign_in

ACTOR = Actor.cli("test")
ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


def names_given(db: Session) -> dict[str, int]:
    """A gold tier, a bonus rule, a batch and a reward with Chinese names; a silver tier and a
    second batch without."""
    program_settings.save_tier(
        db, ACTOR, code="gold", name="Gold", name_zh="金卡", rank=2, threshold=5000,
        multiplier=Decimal("1.5"),
    )  # fmt: skip
    program_settings.save_rule(
        db, ACTOR, name="Double points", name_zh="双倍积分", multiplier=Decimal(2), priority=1
    )
    batch = coupons.create_batch(
        db, ACTOR, name="Ten off", name_zh="立减十元", kind="fixed", value=Decimal(10),
        currency="CNY", valid_days=30,
    )  # fmt: skip
    plain = coupons.create_batch(
        db, ACTOR, name="Tea gift", kind="gift", gift="Tea", currency="CNY", valid_days=30
    )
    reward = rewards.save(
        db, ACTOR, name="Voucher", name_zh="代金券", points_cost=100, batch_id=batch.id
    )
    db.commit()
    return {"batch": batch.id, "plain": plain.id, "reward": reward.id}


def reader(
    db: Session, make_member: Callable[..., Member], language: str, ids: dict[str, int]
) -> Member:
    """A gold member with a purchase (earned under the bonus rule and the tier) and a coupon
    of each batch, reading the portal in `language`."""
    member = make_member(f"{language}@example.com", f"Reader {language}")
    member.tier_id = db.scalars(select(Tier.id).where(Tier.code == "gold")).one()
    account = db.get(MemberAccount, member.id)
    assert account is not None
    account.language = language
    data = PurchaseInput(
        source="pos", external_id=f"P-{language}", occurred_at=T0, amount=Decimal(100),
        currency="CNY", member_id=member.id,
    )  # fmt: skip
    purchases.record(db, ACTOR, data, base_currency="CNY", zone=ZONE)
    for batch_id in (ids["batch"], ids["plain"]):
        coupons.issue(db, ACTOR, batch_id, member, reason="test")
    db.commit()
    return member


def test_a_chinese_reader_sees_the_chinese_names_staff_gave(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    ids = names_given(db)
    member = reader(db, make_member, "zh", ids)
    member_sign_in(client, member.email or "")
    home = client.get("/my").text
    assert '<span class="badge tier-gold">金卡</span>' in home
    assert "白金" not in home and "Platinum" in home  # no Chinese name given: the name
    history = client.get("/my/history").text
    assert "活动奖励：双倍积分" in history  # the bonus rule's Chinese name
    assert "等级加成：金卡会员 ×1.5" in history  # the tier's
    assert "Double points" not in history and "Gold member" not in history
    wallet = client.get("/my/coupons").text
    assert "立减十元" in wallet and "Tea gift" in wallet and ">Ten off<" not in wallet
    catalog = client.get("/my/rewards").text
    assert "<strong>代金券</strong>" in catalog and "Voucher" not in catalog
    confirm = client.get(f"/my/rewards/{ids['reward']}").text
    assert "代金券" in confirm and "Voucher" not in confirm
    api = client.get("/my/api/coupons").json()["coupons"]
    assert sorted(c["name"] for c in api) == sorted(["立减十元", "Tea gift"])


def test_an_english_reader_sees_the_names(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    ids = names_given(db)
    member = reader(db, make_member, "en", ids)
    member_sign_in(client, member.email or "")
    home = client.get("/my").text
    assert '<span class="badge tier-gold">Gold</span>' in home and "金卡" not in home
    history = client.get("/my/history").text
    assert "Bonus: Double points" in history and "Tier bonus: Gold member ×1.5" in history
    assert "双倍积分" not in history
    assert "Ten off" in client.get("/my/coupons").text
    assert "<strong>Voucher</strong>" in client.get("/my/rewards").text


def test_a_renamed_rule_is_shown_as_it_was_posted(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    ids = names_given(db)
    member = reader(db, make_member, "zh", ids)
    rule = program_settings.rules(db)[0]
    program_settings.save_rule(
        db, ACTOR, rule_id=rule.id, name="Twice the points", name_zh="两倍积分",
        multiplier=Decimal(2), priority=1,
    )  # fmt: skip
    db.commit()
    member_sign_in(client, member.email or "")
    # The entry says what it was posted as: its name then, not today's Chinese name.
    assert "活动奖励：Double points" in client.get("/my/history").text


def test_staff_forms_offer_a_bounded_chinese_name(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    names_given(db)
    make_user("mark@example.com", ("marketer",))
    sign_in(client, "mark@example.com")
    program = client.get("/loyalty/program").text
    gold = re.search(r'<input name="name_zh" value="金卡" maxlength="64"[^>]*>', program)
    assert gold and 'lang="zh-Hans"' in gold.group(0)
    rules = program.split('action="/loyalty/rules"')[1]
    assert re.search(r'<input name="name_zh" maxlength="100" lang="zh-Hans"', rules)
    assert "Chinese name (中文名称)" in rules and "双倍积分" in program  # listed with the rule
    batches = client.get("/loyalty/coupons").text
    assert re.search(r'<input name="name_zh" id="f-name_zh" maxlength="100"', batches)
    assert "立减十元" in batches
    catalog = client.get("/loyalty/rewards").text
    assert re.search(r'<input name="name_zh" id="f-name_zh" maxlength="100"', catalog)
    assert "代金券" in catalog


def test_the_api_returns_the_chinese_names(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    ids = names_given(db)
    member = reader(db, make_member, "en", ids)
    _, key = api_keys.create(db, Actor.system(), name="POS", scopes=list(api_keys.SCOPES))
    db.commit()
    client.headers["Authorization"] = f"Bearer {key}"
    found = client.get(f"/api/v1/members/{member.number}").json()
    assert (found["tier"], found["tier_zh"]) == ("Gold", "金卡")
    balance = client.get(f"/api/v1/members/{member.number}/balance").json()
    assert (balance["tier"], balance["tier_zh"]) == ("Gold", "金卡")
    wallet = client.get(f"/api/v1/members/{member.number}/coupons").json()
    assert sorted((c["batch"], c["batch_zh"]) for c in wallet) == [
        ("Tea gift", None),
        ("Ten off", "立减十元"),
    ]
    batch = client.get(f"/api/v1/coupon-batches/{ids['batch']}").json()
    assert (batch["name"], batch["name_zh"]) == ("Ten off", "立减十元")
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert "tier_zh" in schema["MemberOut"]["properties"]
    assert "batch_zh" in schema["CouponOut"]["properties"]
