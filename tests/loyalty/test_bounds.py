"""Bad input to the loyalty services is refused with a message, never stored or left to the
database: amounts, times, text, ids, points, multipliers, ranks, roles (issue 11)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import passwords
from core.audit import Actor, AuditEntry
from core.errors import NotFound, PermissionDenied, RetainError, ValidationFailed
from core.timeutil import utcnow
from loyalty import accounts, coupons, imports, members, purchases, referrals, rewards
from loyalty import program as program_settings
from loyalty.models import Coupon, LedgerEntry, Member, Purchase, Tier
from loyalty.purchases import Line
from tests.loyalty.conftest import ACTOR, BASE, T0, ZONE, Shop
from tests.loyalty.test_imports import factory

FINANCE = Actor("user", "fin@example.com", roles=frozenset({"finance"}))
MARKETER = Actor("user", "mark@example.com", roles=frozenset({"marketer"}))
LONG = "x" * 65  # one more than Purchase.external_id (64) and the member's region (64)


@pytest.fixture(params=[True, False], ids=["fast", "general"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(purchases, "FAST_PATH", request.param)
    return bool(request.param)


def _code(exc: pytest.ExceptionInfo[RetainError]) -> str:
    return exc.value.code


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("1e15", "purchase.amount.range"),
        ("1e30", "purchase.amount.range"),
        ("0.00001", "purchase.amount.precision"),
        ("0", "purchase.amount.range"),
        ("NaN", "purchase.amount.invalid"),
    ],
)
def test_purchase_amounts_beyond_what_is_stored_are_refused(
    shop: Shop, path: bool, amount: str, code: str
) -> None:
    member = shop.join()
    with pytest.raises(ValidationFailed) as refused:
        shop.buy(member, amount)
    assert _code(refused) == code
    with pytest.raises(ValidationFailed, match="discount"):
        shop.buy(member, "10", discount=Decimal("1e15"))
    assert shop.db.scalar(select(func.count(Purchase.id))) == 0


def test_purchase_times_outside_the_documented_range_are_refused(shop: Shop, path: bool) -> None:
    member = shop.join()
    for at, says in (
        (datetime(1, 1, 1, tzinfo=UTC), "before 1900-01-01"),
        (datetime(1899, 12, 31, 23, 59, tzinfo=UTC), "before 1900-01-01"),
        (utcnow() + timedelta(minutes=6), "in the future"),
        (datetime(2206, 1, 1, tzinfo=UTC), "in the future"),
    ):
        with pytest.raises(ValidationFailed, match=says):
            shop.buy(member, "10", at=at)
    # A till clock a little fast is fine (the documented skew).
    assert shop.buy(member, "10", at=utcnow() + timedelta(minutes=4)).points == 10 + 200


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"ext": LONG}, "purchase.external_id.invalid"),
        ({"ext": "T\x00"}, "purchase.external_id.invalid"),
        ({"ext": "T\ud800"}, "purchase.external_id.invalid"),
        ({"store": "s" * 65}, "purchase.store.invalid"),
        ({"channel": "c" * 33}, "purchase.channel.invalid"),
        ({"campaign_code": "C\x07"}, "purchase.campaign_code.invalid"),
        ({"currency": "RMB"}, "money.currency"),
        ({"currency": "XAU"}, "money.currency"),
        ({"coupon_codes": ("A\x00B",)}, "coupon.code.invalid"),
        ({"lines": (Line("s" * 65, 1, Decimal(1)),)}, "purchase.line.invalid"),
        ({"lines": (Line("SKU", 1, Decimal(1), "c" * 65),)}, "purchase.line.invalid"),
        ({"lines": (Line("SKU", 2**31, Decimal(1)),)}, "purchase.line"),
        ({"lines": (Line("SKU", 1, Decimal("0.00001")),)}, "purchase.line.precision"),
    ],
)
def test_purchase_text_codes_and_lines_are_held_to_their_columns(
    shop: Shop, path: bool, extra: dict[str, object], code: str
) -> None:
    member = shop.join()
    with pytest.raises(ValidationFailed) as refused:
        shop.buy(member, "10", **extra)  # type: ignore[arg-type]
    assert _code(refused) == code
    assert refused.value.message  # a sentence, not a database error


def test_a_purchase_that_would_earn_more_than_one_entry_holds_is_refused(
    shop: Shop, path: bool
) -> None:
    shop.program(earn_rate=Decimal(1000))
    member = shop.join()
    with pytest.raises(ValidationFailed) as refused:
        shop.buy(member, "999999999999")
    assert _code(refused) == "purchase.points" and "at most 1,000,000,000" in refused.value.message
    shop.check(member)


def test_refunds_dated_before_their_purchase_or_ahead_are_refused(shop: Shop) -> None:
    member = shop.join()
    shop.buy(member, "100", ext="P1", at=T0)
    for at, says in (
        (T0 - timedelta(seconds=1), "before its purchase"),
        (datetime(1, 1, 1, tzinfo=UTC), "before 1900-01-01"),
        (utcnow() + timedelta(hours=1), "in the future"),
    ):
        with pytest.raises(ValidationFailed, match=says):
            shop.refund("P1", "10", at=at)
    for amount, code in (
        ("0.00001", "refund.amount.precision"),
        ("1e15", "refund.amount.range"),
        ("1e30", "refund.amount.range"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            shop.refund("P1", amount, at=T0 + timedelta(hours=1))
        assert _code(refused) == code
    long_id = purchases.RefundInput("pos", LONG, "pos", "P1", T0 + timedelta(hours=1))
    with pytest.raises(ValidationFailed, match="longer than 64"):
        purchases.refund(shop.db, ACTOR, long_id, base_currency=BASE, zone=ZONE)
    done = shop.refund("P1", "10", at=T0)  # the purchase's own moment is fine
    assert done.refund.amount == Decimal(10)


def test_profile_text_is_held_to_its_columns(shop: Shop) -> None:
    for profile, code in (
        ({"name": "n" * 101}, "member.name.invalid"),
        ({"name": "Li\x00Lei"}, "member.name.invalid"),
        ({"name": "Li\ud800"}, "member.name.invalid"),
        ({"region": LONG}, "member.region.invalid"),
        ({"city": "c" * 65}, "member.city.invalid"),
        ({"occupation": "o\x1b"}, "member.occupation.invalid"),
        ({"email": "a\x00@example.com"}, "member.email"),
        ({"email": "a" * 250 + "@ex.com"}, "member.email"),
        ({"phone": "1" * 40}, "member.phone"),
        ({"birthday": date(1, 1, 1)}, "member.birthday.range"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            shop.join(**profile)
        assert _code(refused) == code, profile


def test_a_not_null_profile_field_cannot_be_removed(shop: Shop) -> None:
    member = shop.join()
    for name in ("name", "marketing_consent"):
        with pytest.raises(ValidationFailed, match="cannot be removed"):
            members.update_profile(shop.db, ACTOR, member.id, **{name: None})
    with pytest.raises(ValidationFailed):
        members.update_profile(shop.db, ACTOR, member.id, region="r" * 65)
    assert shop.fresh(member).name == "Li Lei"


def test_search_and_lookups_refuse_what_cannot_be_a_member(shop: Shop) -> None:
    shop.join()
    with pytest.raises(ValidationFailed, match="longer than 200"):
        members.search(shop.db, "x" * 50_000)
    with pytest.raises(ValidationFailed, match="control characters"):
        members.search(shop.db, "Li\x00")
    assert members.search(shop.db, "x" * 200) == []
    for number in ("M\x00", "M" * 5000, "M\ud800"):
        with pytest.raises(NotFound):
            members.by_number(shop.db, number)
    with pytest.raises(ValidationFailed, match="not valid"):
        referrals.referrer_by_code(shop.db, "AB\x00CD")


def test_adjustments_are_bounded_by_the_programs_setting(shop: Shop) -> None:
    member = shop.join()

    def adjust(points: int, key: str) -> LedgerEntry:
        return rewards.adjust(
            shop.db, ACTOR, member.id, points, reason="Fix", key=key, at=T0, zone=ZONE
        )

    for points in (2**63, -(2**63), 2**31, 100_001, -100_001):
        with pytest.raises(ValidationFailed, match="at most 100,000 points"):
            adjust(points, f"k{points}")
    assert adjust(100_000, "max").points == 100_000
    shop.program(max_adjustment=200_000)
    assert adjust(-200_000, "raised").points == -200_000
    with pytest.raises(ValidationFailed):
        shop.program(max_adjustment=2**31)
    with pytest.raises(ValidationFailed, match="plain characters"):
        adjust(5, "k" * 101)
    with pytest.raises(ValidationFailed, match="longer than 200"):
        rewards.adjust(shop.db, ACTOR, member.id, 5, reason="r" * 201, key="r", at=T0, zone=ZONE)
    shop.check(member)


def test_a_taken_tier_rank_is_a_field_message(shop: Shop) -> None:
    with pytest.raises(ValidationFailed) as refused:
        program_settings.save_tier(
            shop.db,
            ACTOR,
            code="diamond",
            name="Diamond",
            rank=2,  # Gold's
            threshold=50_000,
            multiplier=Decimal(3),
        )
    assert _code(refused) == "tier.rank.taken" and "Gold" in refused.value.message
    assert shop.db.scalar(select(Tier).where(Tier.code == "diamond")) is None
    program_settings.save_tier(
        shop.db, ACTOR, code="diamond", name="Diamond", rank=4, threshold=50_000,
        multiplier=Decimal(3),
    )  # fmt: skip
    for change, says in (
        ({"rank": 2**31}, "rank must be"),
        ({"threshold": 2**63}, "threshold must be"),
        ({"multiplier": Decimal("1.0001")}, "3 decimal places"),
        ({"name": "D" * 65}, "longer than 64"),
    ):
        fields = {"rank": 4, "threshold": 50_000, "multiplier": Decimal(3), "name": "Diamond"}
        with pytest.raises(ValidationFailed, match=says):
            program_settings.save_tier(
                shop.db,
                ACTOR,
                code="diamond",
                **{**fields, **change},  # type: ignore[arg-type]
            )


def test_multipliers_are_bounded_by_the_programs_setting(shop: Shop) -> None:
    def tier(multiplier: str) -> Tier:
        return program_settings.save_tier(
            shop.db, ACTOR, code="gold", name="Gold", rank=2, threshold=5000,
            multiplier=Decimal(multiplier),
        )  # fmt: skip

    def rule(multiplier: str) -> object:
        return program_settings.save_rule(
            shop.db, ACTOR, name="Big", multiplier=Decimal(multiplier)
        )

    for make in (tier, rule):
        with pytest.raises(ValidationFailed, match="from 1 to 10"):
            make("10.5")
        with pytest.raises(ValidationFailed):
            make("1e30")
    assert tier("10").multiplier == 10
    shop.program(max_multiplier=Decimal(20))
    assert rule("20").multiplier == Decimal(20)  # type: ignore[attr-defined]
    with pytest.raises(ValidationFailed, match=r"lower (them|it) first"):
        shop.program(max_multiplier=Decimal(5))
    assert program_settings.get(shop.db).max_multiplier == Decimal(20)


def test_program_settings_and_bonus_rules_stay_within_their_columns(shop: Shop) -> None:
    for change in (
        {"return_window_days": 10**10},
        {"signup_bonus": 2**31},
        {"earn_rate": Decimal("0.00001")},
        {"earn_rate": Decimal("1e7")},
        {"referral_min_amount": Decimal("1e15")},
        {"birthday_batch_id": 2**31},
        {"repeat_count": True},
    ):
        with pytest.raises(ValidationFailed):
            shop.program(**change)
    for rule in (
        {"fixed_points": 2**31},
        {"fixed_points": 5, "priority": 2**31},
        {"fixed_points": 5, "channel_id": 2**40},
        {"fixed_points": 5, "campaign_id": 999_999},
        {"fixed_points": 5, "category": "\x00"},
        {"fixed_points": 5, "min_spend": Decimal("0.00001")},
        {"fixed_points": 5, "starts_on": date(1, 1, 1)},
        {"fixed_points": 5, "rule_id": 2**63},
    ):
        with pytest.raises(RetainError):
            program_settings.save_rule(shop.db, ACTOR, name="R", **rule)


def test_batches_take_iso_currencies_and_bounded_values(shop: Shop) -> None:
    base = {"name": "Ten off", "kind": "fixed", "currency": "CNY", "value": Decimal(10)}
    for change in (
        {"currency": "RMB"},
        {"currency": "XAU"},
        {"value": Decimal("1e15")},
        {"value": Decimal("0.00001")},
        {"name": "n" * 101},
        {"valid_days": 10**9},
        {"total_limit": 2**31},
        {"campaign_id": 2**40},
        {"public_code": "AB\x00CD"},
        {"public_code": "A" * 40},
        {"valid_until": datetime(1, 1, 2, tzinfo=UTC), "valid_days": None},
    ):
        fields = {"valid_days": 30, **base, **change}
        with pytest.raises(ValidationFailed):
            coupons.create_batch(shop.db, ACTOR, **fields)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match="control characters"):
        coupons.validate(shop.db, "AB\x00CD", member=None)


def test_coupons_are_issued_and_redeemed_only_by_their_roles_and_audited(shop: Shop) -> None:
    member = shop.join()
    batch = coupons.create_batch(
        shop.db, ACTOR, name="Ten off", kind="fixed", currency="CNY", value=Decimal(10),
        valid_days=30,
    )  # fmt: skip
    with pytest.raises(PermissionDenied):
        coupons.issue(shop.db, FINANCE, batch.id, member, reason="Sorry")
    with pytest.raises(PermissionDenied):
        coupons.issue(shop.db, Actor.member(member.number), batch.id, member, reason="Mine")
    coupon = coupons.issue(shop.db, MARKETER, batch.id, member, reason="Sorry")
    with pytest.raises(PermissionDenied):
        coupons.redeem(shop.db, MARKETER, coupon.code, member=member, key="m1")
    coupons.redeem(shop.db, FINANCE, coupon.code, member=member, key="f1")
    rows = shop.db.execute(
        select(AuditEntry.action, AuditEntry.actor_label, AuditEntry.entity_id).where(
            AuditEntry.action.in_(["coupon.issue", "coupon.redeem"])
        )
    ).all()
    assert sorted(rows) == [
        ("coupon.issue", "mark@example.com", coupon.code),
        ("coupon.redeem", "fin@example.com", coupon.code),
    ]
    with pytest.raises(ValidationFailed):
        coupons.issue(shop.db, MARKETER, batch.id, member, reason="Sorry\x00")
    long = coupons.issue(shop.db, MARKETER, batch.id, member, reason="r" * 150)
    assert long.issued_reason == "r" * 100  # a reward's full name may be longer: cut
    with pytest.raises(NotFound):
        coupons.issue(shop.db, MARKETER, 2**63, member, reason="Sorry")


def test_rewards_are_redeemed_by_the_member_or_the_till_only(shop: Shop) -> None:
    member, other = shop.join(), shop.join("Other")
    rewards.adjust(shop.db, ACTOR, member.id, 1000, reason="Gift", key="g", at=T0, zone=ZONE)
    batch = coupons.create_batch(
        shop.db, ACTOR, name="Mug", kind="gift", gift="A mug", currency="CNY", valid_days=30
    )
    reward = rewards.save(shop.db, ACTOR, name="Mug", points_cost=100, batch_id=batch.id)
    for actor in (Actor.member(other.number), MARKETER):
        with pytest.raises(PermissionDenied):
            rewards.redeem(shop.db, actor, member.id, reward.id, key="k1", at=T0)
    with pytest.raises(ValidationFailed):
        rewards.redeem(shop.db, FINANCE, member.id, 2**63, key="k1", at=T0)
    done = rewards.redeem(
        shop.db, Actor.member(member.number), member.id, reward.id, key="k1", at=T0
    )
    assert done.coupon.reward_entry_id == done.entry.id
    issued = shop.db.scalar(select(AuditEntry).where(AuditEntry.action == "coupon.issue"))
    assert issued is not None and issued.actor_label == f"member {member.number}"
    fields: dict[str, Any] = {"name": "M", "points_cost": 5, "batch_id": batch.id}
    for bad in ({"points_cost": 2**31}, {"name": "n" * 101}, {"batch_id": 2**63}):
        with pytest.raises(ValidationFailed):
            rewards.save(shop.db, ACTOR, **{**fields, **bad})


def test_portal_account_services_check_who_acts_and_audit_it(db: Session, shop: Shop) -> None:
    member = shop.join(email="own@example.com")
    other = shop.join(email="other@example.com")
    found = accounts.account(db, member)
    found.password_hash = passwords.hash_password("old-password-1")
    own, stranger = Actor.member(member.number), Actor.member(other.number)
    with pytest.raises(PermissionDenied):
        accounts.set_password(db, stranger, member, "old-password-1", "new-password-1", keep=None)
    with pytest.raises(PermissionDenied):
        accounts.close(db, MARKETER, member, "old-password-1")
    with pytest.raises(PermissionDenied):
        accounts.set_language(db, stranger, member, "zh")
    with pytest.raises(ValidationFailed):
        accounts.set_password(db, own, member, "old-password-1", "new\x00password-1", keep=None)
    with pytest.raises(ValidationFailed, match="not right"):
        accounts.set_password(db, own, member, "old\ud800", "new-password-1", keep=None)
    accounts.set_password(db, own, member, "old-password-1", "new-password-1", keep=None)
    accounts.set_language(db, own, member, "zh")
    with pytest.raises(ValidationFailed):
        accounts.set_language(db, own, member, "z" * 9)
    rows = db.execute(
        select(AuditEntry.action, AuditEntry.actor_label).where(
            AuditEntry.action.in_(["member.password", "member.language"])
        )
    ).all()
    assert sorted(rows) == [
        ("member.language", f"member {member.number}"),
        ("member.password", f"member {member.number}"),
    ]


def test_sign_in_with_unstorable_text_is_answered_like_any_wrong_sign_in(
    db: Session, shop: Shop
) -> None:
    shop.join(email="mei@example.com")
    for identifier, password in (
        ("mei\x00@example.com", "whatever-1"),
        ("\ud800", "whatever-1"),
        ("mei@example.com", "pass\ud800word"),
    ):
        with pytest.raises(RetainError) as refused:
            accounts.authenticate(
                db, identifier, password, "10.0.0.1", max_failures=50, lock_minutes=15
            )
        assert refused.value.message == accounts.BAD_CREDENTIALS
    assert accounts.request_link(db, "a\x00b", base_url="http://x", ip=None) is None


def test_an_import_refuses_rows_beyond_the_bounds_and_imports_nothing(shop: Shop) -> None:
    member = shop.join()
    when = "2026-03-02T10:00:00+08:00"
    data = (
        "source,external_id,occurred_at,amount,member_number,currency,store\n"
        f"pos,A1,{when},10,{member.number},CNY,\n"
        f"pos,A2,{when},1e15,,CNY,\n"
        f"pos,A3,{when},0.00001,,CNY,\n"
        f"pos,{LONG},{when},10,,CNY,\n"
        "pos,A5,0001-01-01T00:00:00+00:00,10,,CNY,\n"
        f"pos,A6,{when},10,,RMB,\n"
        f"pos,A7,{when},10,,CNY,{'s' * 65}\n"
        f"pos,A8,{when},10,{'M' * 40},CNY,\n"
    ).encode()
    with pytest.raises(imports.ImportFailed) as failed:
        imports.import_purchases(factory(shop.db), ACTOR, data, base=BASE, zone=ZONE)
    lines = {(e["line"], e["message"].split(" ")[0]) for e in failed.value.details}
    assert {(3, "amount"), (4, "amount"), (5, "external_id"), (6, "occurred_at")} <= lines
    assert {(7, "currency"), (8, "store"), (9, "member_number")} <= lines
    assert shop.db.scalar(select(func.count(Purchase.id))) == 0
    assert shop.db.scalar(select(func.count(Member.id))) == 1
    assert shop.db.scalar(select(func.count(Coupon.id))) == 0
