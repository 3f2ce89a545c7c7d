"""The fast path (loyalty/posting.py) and the unit-of-work path write the same rows.

One sequence of purchases (first purchase, repeat bonus, campaign and category bonus
rules, a tier upgrade, a referral's first purchase, a retry, lines) is posted twice, once
each way, for two members with identical histories; every row and every answer must match.
Repeated for the spend metric and for a zero-day return window with a debt to pay back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns import rates
from core import migrations
from core.db import make_engine, make_session_factory
from core.errors import Conflict, ValidationFailed
from loyalty import coupons, purchases, rewards
from loyalty import program as program_settings
from loyalty.models import (
    ConfigVersion,
    Coupon,
    LedgerEntry,
    Lot,
    Member,
    Purchase,
    PurchaseLine,
    Referral,
    Tier,
    TierChange,
)
from loyalty.purchases import Line, PurchaseInput
from tests.campaigns.conftest import Staff, make_campaign
from tests.conftest import fresh_database_url
from tests.loyalty.conftest import ACTOR, T0, ZONE, Shop


@pytest.fixture
def both_ways(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def set_fast(on: bool) -> None:
        monkeypatch.setattr(purchases, "FAST_PATH", on)

    yield set_fast


def _sequence(shop: Shop, tag: str, phone: str, friend_code: str) -> list[tuple[Any, ...]]:
    member = shop.join(f"Member {tag}", phone=phone, referral=friend_code)
    answers: list[tuple[Any, ...]] = []
    plan: list[dict[str, Any]] = [
        {"amount": "150.00"},  # first purchase; starts the referral
        {"amount": "80.00", "days": 2, "channel": "in_store"},
        {"amount": "60.00", "days": 4},  # third in 30 days: repeat bonus
        {"amount": "900.00", "days": 6, "campaign_code": "SPRING26"},  # crosses Silver
        {
            "amount": "300.00",
            "days": 8,
            "lines": (
                Line("TEA-1", 2, Decimal("100.00"), "Tea"),
                Line("CUP-1", 1, Decimal("100.00"), "cups"),
            ),
        },
        {"amount": "45.50", "days": 40, "discount": Decimal("4.50")},
    ]
    for n, step in enumerate(plan):
        outcome = shop.buy(
            member,
            step["amount"],
            at=T0 + timedelta(days=step.get("days", 0)),
            ext=f"{tag}-{n}",
            **{k: v for k, v in step.items() if k not in ("amount", "days")},
        )
        answers.append(
            (
                [(e.points, e.reason, e.rule) for e in outcome.earned],
                outcome.pending_until,
                outcome.tier_change,
                outcome.referral,
                outcome.member.balance if outcome.member else None,
            )
        )
    retry = shop.buy(member, "150.00", at=T0, ext=f"{tag}-0")  # the first one again
    answers.append((retry.replayed, [(e.points, e.rule) for e in retry.earned]))
    return answers


def _rows(db: Session, member_id: int, tag: str) -> dict[str, Any]:
    def strip(values: dict[str, Any], *drop: str) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k not in ("id", *drop)}

    def table(model: Any, where: Any, *drop: str) -> list[dict[str, Any]]:
        return [
            strip({c.key: getattr(row, c.key) for c in model.__table__.columns}, *drop)
            for row in db.scalars(select(model).where(where).order_by(model.id))
        ]

    mine = select(Purchase.id).where(Purchase.member_id == member_id)
    member = db.get(Member, member_id)
    assert member is not None
    entries = table(LedgerEntry, LedgerEntry.member_id == member_id, "source_id", "lot_id")
    for entry in entries:
        entry["idempotency_key"] = entry["idempotency_key"].split(":")[0] + entry["rule"]
    return {
        "member": (member.balance, member.pending_points, member.debt, member.tier_id),
        "purchases": [
            {**p, "external_id": p["external_id"].removeprefix(tag)}
            for p in table(
                Purchase, Purchase.member_id == member_id, "member_id", "created_at", "fingerprint"
            )
        ],
        "lines": table(PurchaseLine, PurchaseLine.purchase_id.in_(mine), "purchase_id"),
        "lots": table(Lot, Lot.member_id == member_id, "member_id", "purchase_id"),
        "entries": [{k: v for k, v in e.items() if k != "member_id"} for e in entries],
        "tiers": table(TierChange, TierChange.member_id == member_id, "member_id", "purchase_id"),
        "referral": table(Referral, Referral.referee_id == member_id, "referee_id", "purchase_id"),
    }


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"tier_metric": "spend"},
        {"return_window_days": 0},
    ],
    ids=["points", "spend", "no-return-window"],
)
def test_fast_and_general_paths_write_the_same_rows(
    shop: Shop, staff: Staff, both_ways: Any, settings: dict[str, Any]
) -> None:
    campaign = make_campaign(shop.db, staff)
    program_settings.save_rule(
        shop.db, ACTOR, name="Double points", campaign_id=campaign.id, multiplier=Decimal(2)
    )
    program_settings.save_rule(
        shop.db, ACTOR, name="Tea week", category="tea", fixed_points=50, priority=5
    )
    if settings:
        shop.program(**settings)
    friend = shop.join("Friend", phone="13700000001")
    results = {}
    for tag, fast, phone in (("F", True, "13700000002"), ("G", False, "13700000003")):
        both_ways(fast)
        answers = _sequence(shop, tag, phone, friend.referral_code)
        member_id = shop.db.scalar(select(Member.id).where(Member.phone == phone))
        assert member_id is not None
        shop.check(shop.db.get(Member, member_id))  # type: ignore[arg-type]
        results[tag] = (answers, _rows(shop.db, member_id, tag))
    fast_answers, fast_rows = results["F"]
    general_answers, general_rows = results["G"]
    assert fast_rows == general_rows
    assert fast_answers == general_answers
    assert fast_rows["tiers"], "the sequence crosses a tier"
    assert fast_rows["referral"][0]["state"] == "qualifying"


def test_a_debt_is_paid_back_by_an_active_lot_the_same_way(shop: Shop, both_ways: Any) -> None:
    shop.program(return_window_days=0)
    results = []
    for fast, phone in ((True, "13700000012"), (False, "13700000013")):
        both_ways(fast)
        member = shop.join("Debtor", phone=phone)
        rewards.adjust(
            shop.db, ACTOR, member.id, -250, reason="Correction", key=phone, at=T0, zone=ZONE
        )
        shop.buy(member, "100.00", ext=f"D{phone}")
        m = shop.check(member)
        lots = shop.db.scalars(select(Lot).where(Lot.member_id == m.id).order_by(Lot.id)).all()
        results.append(
            (m.balance, m.debt, [(lot.points, lot.remaining, lot.state) for lot in lots])
        )
    assert results[0] == results[1]
    assert results[0][1] == 0  # the new lot paid the debt


def test_a_settings_change_reaches_the_next_purchase_at_once(shop: Shop) -> None:
    """The fast path caches the settings per version token; triggers renew the token on any
    change to the program, tiers or rules, even one made straight in SQL."""
    member = shop.join("Cached", phone="13700000021")
    token = shop.db.scalar(select(ConfigVersion.token))
    first = shop.buy(member, "100.00", ext="C1", at=T0)
    assert first.earned[0].points == 100
    shop.program(earn_rate=Decimal(2))
    assert shop.db.scalar(select(ConfigVersion.token)) != token
    second = shop.buy(member, "100.00", ext="C2", at=T0 + timedelta(days=1))
    assert second.earned[0].points == 200
    shop.db.execute(update(Tier).where(Tier.code == "member").values(multiplier=Decimal(3)))
    third = shop.buy(member, "100.00", ext="C3", at=T0 + timedelta(days=2))
    assert [(e.rule, e.points) for e in third.earned][:2] == [("base", 200), ("tier", 400)]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_an_amount_finer_than_stored_is_refused_on_both_paths(
    shop: Shop, both_ways: Any, fast: bool
) -> None:
    """999.99995 would be stored as 1000.0000: refused, never rounded silently; the amount
    as stored reaches Silver (threshold 1,000) on both paths."""
    both_ways(fast)
    shop.program(tier_metric="spend")
    member = shop.join("Rounding", phone="13700000031")
    with pytest.raises(ValidationFailed) as refused:
        shop.buy(member, "999.99995", ext=f"R{fast}")
    assert refused.value.code == "purchase.amount.precision"
    outcome = shop.buy(member, "1000.0000", ext=f"R{fast}")
    assert outcome.tier_change is not None and outcome.tier_change.to_tier == "Silver"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_a_rolled_back_savepoint_leaves_the_member_object_true(
    shop: Shop, both_ways: Any, fast: bool
) -> None:
    both_ways(fast)
    member = shop.join("Savepoint", phone="13700000032")
    with pytest.raises(RuntimeError), shop.db.begin_nested():
        shop.buy(member, "100.00", ext=f"SP{fast}")
        raise RuntimeError("a later step of the same action failed")
    assert member.balance == 100  # the welcome bonus only, as in the database
    rewards.adjust(shop.db, ACTOR, member.id, 10, reason="Check", key=f"sp{fast}", at=T0, zone=ZONE)
    shop.check(member)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_a_retry_replays_even_if_its_campaign_code_was_retired(
    shop: Shop, staff: Staff, both_ways: Any, fast: bool
) -> None:
    both_ways(fast)
    campaign = make_campaign(shop.db, staff, code=f"OLD{int(fast)}")
    member = shop.join("Retry", phone=f"1370000004{int(fast)}")
    first = shop.buy(member, "50.00", ext=f"OLD{fast}", campaign_code=campaign.code)
    campaign.code = f"GONE{int(fast)}"
    shop.db.flush()
    again = shop.buy(member, "50.00", ext=f"OLD{fast}", campaign_code=f"OLD{int(fast)}")
    assert again.replayed and again.purchase.id == first.purchase.id


def test_settings_read_by_another_session_are_not_cached_stale(
    request: pytest.FixtureRequest,
) -> None:
    """A session that read the settings before someone changed them must still cache (and
    use) what the database holds under the new token."""
    engine = make_engine(fresh_database_url(request, "postgresql"))
    migrations.upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        member_id = Shop(session).join("Stale", phone="13700000051").id

    def buy(session: Session, ext: str) -> int:
        data = PurchaseInput(
            source="pos",
            external_id=ext,
            occurred_at=T0,
            amount=Decimal(100),
            currency="CNY",
            member_id=member_id,
        )
        outcome = purchases.record(session, ACTOR, data, base_currency="CNY", zone=ZONE)
        return outcome.earned[0].points

    early = factory()
    program_settings.get(early)  # this session now holds the old settings
    early.commit()
    with factory() as other, other.begin():
        program_settings.update(other, ACTOR, earn_rate=Decimal(2))
    assert buy(early, "ST1") == 200
    early.commit()
    early.close()
    with factory() as fresh, fresh.begin():
        assert buy(fresh, "ST2") == 200
    engine.dispose()


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_a_retry_replays_the_first_answer_field_for_field(
    shop: Shop, both_ways: Any, fast: bool
) -> None:
    """The first answer unlocks points later, moves a tier and starts a referral's wait; a
    retry written differently (a line price of 100 for 100.00, usd for USD, the channel in
    capitals) is the same body and replays all of it, even after the balance has moved on."""
    both_ways(fast)
    rates.set_rate(shop.db, ACTOR, "USD", T0.date(), Decimal("7.0"), "CNY")
    friend = shop.join("Friend", phone=f"1370000006{int(fast)}")
    member = shop.join("Retried", phone=f"1370000007{int(fast)}", referral=friend.referral_code)
    lines = (Line("TEA-1", 2, Decimal("100.00"), "tea"),)
    first = shop.buy(
        member, "200.00", ext=f"RE{fast}", currency="USD", channel="wechat", lines=lines
    )
    assert first.pending_until is not None and first.tier_change is not None
    assert first.referral is not None and first.balance is not None
    shop.buy(member, "10.00", ext=f"RE{fast}-later", at=T0 + timedelta(days=1))
    again = shop.buy(
        member,
        "200",
        ext=f"RE{fast}",
        currency="usd",
        channel=" WeChat",
        lines=(Line("TEA-1", 2, Decimal("100"), "Tea"),),
    )
    assert again.replayed and again.purchase.id == first.purchase.id

    def answer(o: purchases.Outcome) -> tuple[Any, ...]:
        return (
            [(e.points, e.reason, e.rule) for e in o.earned],
            o.pending_until,
            o.tier_change,
            o.referral,
            o.balance,
            o.purchase.base_amount,
        )

    assert answer(again) == answer(first)
    with pytest.raises(Conflict):
        shop.buy(member, "201.00", ext=f"RE{fast}", currency="USD", channel="wechat", lines=lines)


def test_a_guest_retry_replays(shop: Shop) -> None:
    first = shop.buy(None, "30.00", ext="GUEST-1")
    again = shop.buy(None, "30", ext="GUEST-1")
    assert again.replayed and again.purchase.id == first.purchase.id
    assert (again.balance, again.earned, again.tier_change) == (None, [], None)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_a_coupon_purchase_retried_replays_and_leaves_its_coupons_as_they_are(
    shop: Shop, both_ways: Any, fast: bool
) -> None:
    """Retried as it was, the purchase replays (its coupon is used by itself). Retried
    after a full refund gave the coupon back, it still replays, and the coupon stays free."""
    both_ways(fast)
    member = shop.join("Couponer", phone=f"1370000008{int(fast)}")
    batch = coupons.create_batch(
        shop.db,
        ACTOR,
        name="Five off",
        kind="fixed",
        currency="CNY",
        value=Decimal(5),
        valid_days=400,
    )
    code = coupons.issue(shop.db, ACTOR, batch.id, member, reason="Test", at=T0).code
    first = shop.buy(member, "50.00", ext=f"CP{fast}", coupon_codes=(code,))
    again = shop.buy(member, "50.00", ext=f"CP{fast}", coupon_codes=(code,))
    assert again.replayed and again.purchase.id == first.purchase.id
    assert [r.discount for r in again.coupons] == [Decimal("5.0000")]
    shop.refund(f"CP{fast}", None, at=T0 + timedelta(hours=1))
    shop.db.expire_all()

    def state() -> str | None:
        return shop.db.scalar(select(Coupon.state).where(Coupon.code == code))

    assert state() == "issued"
    later = shop.buy(member, "50.00", ext=f"CP{fast}", coupon_codes=(code,))
    assert later.replayed and later.purchase.id == first.purchase.id
    shop.db.expire_all()
    assert state() == "issued"
