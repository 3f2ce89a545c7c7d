"""A campaign's holdout: the audience frozen with it, when it may be frozen again, and what
held-out members do not get: the campaign's coupons (one at a time, or issued to many) and
its bonus rules on every purchase path. Both databases."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import segments
from analytics.models import CampaignTarget
from analytics.segments import Criteria
from attribution import holdout
from campaigns.models import Campaign
from core.audit import AuditEntry
from core.errors import Conflict, ValidationFailed
from loyalty import audiences, coupons, earning, imports, purchases, rewards
from loyalty import program as program_settings
from loyalty.models import BonusRule, CampaignAudience, Coupon, LedgerEntry, Member
from tests.campaigns.conftest import Staff, make_campaign
from tests.loyalty.conftest import ACTOR, BASE, T0, ZONE, Shop

TODAY = date(2026, 2, 20)  # before the campaign (1 March – 30 April 2026)
STARTED = date(2026, 3, 1)
SHARE = Decimal("0.3")


def _east(shop: Shop, count: int) -> list[Member]:
    return [shop.join(f"East {n}", region="East", at=T0 - timedelta(days=60)) for n in range(count)]


def _audience(db: Session, campaign_id: int) -> dict[int, bool]:
    return dict(
        db.execute(
            select(CampaignAudience.member_id, CampaignAudience.held_out).where(
                CampaignAudience.campaign_id == campaign_id
            )
        ).all()
    )


@pytest.fixture
def shop(db: Session) -> Shop:
    return Shop(db)


@pytest.fixture
def east(shop: Shop) -> list[Member]:
    return _east(shop, 30)


@pytest.fixture
def campaign(db: Session, staff: Staff) -> Campaign:
    return make_campaign(db, staff, code="HOLD26")


def _target(
    db: Session,
    staff: Staff,
    campaign: Campaign,
    segment_id: int | None,
    share: Decimal,
    today: date = TODAY,
) -> segments.Target | None:
    return segments.set_campaign_target(
        db, staff.marketer, campaign.id, segment_id, today=today, zone=ZONE, holdout_share=share
    )


def test_the_audience_is_frozen_by_the_hash_and_refrozen_before_the_start(
    db: Session, shop: Shop, staff: Staff, east: list[Member], campaign: Campaign
) -> None:
    segment = segments.save(db, staff.marketer, "East", "", Criteria(regions=("East",))).segment
    shop.join("West", region="West")
    target = _target(db, staff, campaign, segment.id, SHARE)
    assert target is not None and target.holdout_share == SHARE and target.holdout_pct == 30
    frozen = _audience(db, campaign.id)
    assert set(frozen) == {m.id for m in east}  # the segment, nobody else
    assert frozen == {m.id: holdout.held_out(campaign.id, m.id, SHARE) for m in east}
    assert 0 < target.held_out < len(east) and target.treated + target.held_out == len(east)
    assert target.audience_size == len(east)
    assert db.get(CampaignTarget, campaign.id).holdout_share == SHARE  # type: ignore[union-attr]
    after = db.scalars(
        select(AuditEntry.after).where(AuditEntry.action == "campaign.target")
    ).all()[-1]
    assert after["holdout_share"] == "0.30" and after["held_out"] == target.held_out

    # Frozen: a member who joins the segment later is in neither arm.
    late = shop.join("Late", region="East")
    assert late.id not in _audience(db, campaign.id)
    shown = segments.campaign_target(db, campaign.id)
    assert shown is not None and (shown.treated, shown.held_out) == (
        target.treated,
        target.held_out,
    )

    # Before the start the share may change: the audience is frozen again, nested in the share.
    wider = _target(db, staff, campaign, segment.id, Decimal("0.5"))
    assert wider is not None and late.id in _audience(db, campaign.id)
    now = _audience(db, campaign.id)
    assert all(now[m] for m, held in frozen.items() if held)  # held out at 30% → at 50%
    assert audiences.is_held_out(db, campaign.id, late.id) == holdout.held_out(
        campaign.id, late.id, Decimal("0.5")
    )
    # A share of 0 keeps the target and forgets the audience; then a holdout again.
    plain = _target(db, staff, campaign, segment.id, Decimal(0))
    assert plain is not None and plain.held_out == 0 and _audience(db, campaign.id) == {}
    _target(db, staff, campaign, segment.id, SHARE)
    assert audiences.has_holdout(db, campaign.id)


def test_after_the_start_the_holdout_is_fixed(
    db: Session, shop: Shop, staff: Staff, east: list[Member], campaign: Campaign
) -> None:
    segment = segments.save(db, staff.marketer, "East", "", Criteria(regions=("East",))).segment
    other = segments.save(db, staff.marketer, "All", "", Criteria()).segment
    first = _target(db, staff, campaign, segment.id, SHARE)
    assert first is not None
    frozen = _audience(db, campaign.id)
    for segment_id, share in ((segment.id, Decimal("0.2")), (other.id, SHARE), (None, SHARE)):
        with pytest.raises(Conflict) as refused:
            _target(db, staff, campaign, segment_id, share, today=STARTED)
        assert refused.value.code == "campaign.holdout_started"
        assert campaign.code in refused.value.message and "2026-03-01" in refused.value.message
    assert _audience(db, campaign.id) == frozen
    # The same form sent again changes nothing and is not refused.
    shop.join("Late", region="East")
    again = _target(db, staff, campaign, segment.id, SHARE, today=STARTED)
    assert again is not None and _audience(db, campaign.id) == frozen
    assert (again.treated, again.held_out) == (first.treated, first.held_out)

    # A campaign without a holdout: its target changes freely, but no holdout can be added.
    plain = make_campaign(db, staff, code="PLAIN26")
    _target(db, staff, plain, segment.id, Decimal(0), today=STARTED)
    _target(db, staff, plain, other.id, Decimal(0), today=STARTED)
    with pytest.raises(Conflict, match="can no longer be added"):
        _target(db, staff, plain, other.id, Decimal("0.1"), today=STARTED)
    # Marked active before its first day counts as started too.
    early = make_campaign(db, staff, code="EARLY26", status="active")
    with pytest.raises(Conflict):
        _target(db, staff, early, segment.id, Decimal("0.1"))


@pytest.mark.parametrize(
    ("share", "code"),
    [
        (Decimal("0.6"), "holdout.share_range"),
        (Decimal("-0.1"), "holdout.share_range"),
        (Decimal("0.125"), "holdout.share_places"),
    ],
)
def test_a_share_outside_0_to_half_is_refused(
    db: Session, staff: Staff, east: list[Member], campaign: Campaign, share: Decimal, code: str
) -> None:
    segment = segments.save(db, staff.marketer, "East", "", Criteria(regions=("East",))).segment
    with pytest.raises(ValidationFailed) as refused:
        _target(db, staff, campaign, segment.id, share)
    assert refused.value.code == code
    assert db.get(CampaignTarget, campaign.id) is None


def test_freeze_takes_one_flag_per_member() -> None:
    with pytest.raises(ValueError, match="one each"):
        audiences.freeze(None, 1, [1, 2], [True])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="once"):
        audiences.freeze(None, 1, [1, 1], [True, False])  # type: ignore[arg-type]


def _frozen(db: Session, campaign: Campaign, people: list[Member]) -> tuple[Member, Member]:
    """Half of `people` held out (alternately); the first held-out and treated member."""
    flags = [n % 2 == 0 for n in range(len(people))]
    arms = audiences.freeze(db, campaign.id, [m.id for m in people], flags)
    assert (arms.held_out, arms.treated) == (
        (len(people) + 1) // 2,
        len(people) // 2,
    )
    return people[0], people[1]


def test_held_out_members_are_not_given_the_campaigns_coupons(
    db: Session, shop: Shop, east: list[Member], campaign: Campaign
) -> None:
    out, treated = _frozen(db, campaign, east)
    batch = coupons.create_batch(
        db,
        ACTOR,
        name="Ten off",
        kind="fixed",
        value=Decimal(10),
        currency=BASE,
        valid_days=30,
        campaign_id=campaign.id,
    )
    with pytest.raises(Conflict) as refused:
        coupons.issue(db, ACTOR, batch.id, out, reason="Mailing")
    assert refused.value.code == "coupon.held_out"
    assert out.number in refused.value.message and campaign.code in refused.value.message
    assert coupons.issue(db, ACTOR, batch.id, treated, reason="Mailing").member_id == treated.id
    # Another campaign's batch, or one without a campaign, is given as before.
    free = coupons.create_batch(
        db, ACTOR, name="Free", kind="fixed", value=Decimal(5), currency=BASE, valid_days=30
    )
    assert coupons.issue(db, ACTOR, free.id, out, reason="Mailing").member_id == out.id

    # To many: the plan counts the held-out members it leaves out, the issue skips them.
    segment = segments.save(db, ACTOR, "East", "", Criteria(regions=("East",))).segment
    members_in = segments.member_ids(db, segments.stored(segment), today=TODAY, zone=ZONE)
    plan = coupons.plan_issue(db, ACTOR, batch.id, members_in=members_in)
    assert (plan.members, plan.held_out) == (len(east) // 2, (len(east) + 1) // 2)
    issued = coupons.issue_to_members(
        db, ACTOR, batch.id, members_in=members_in, expected=plan.members
    )
    assert issued == len(east) // 2  # every treated member, none held out
    holders = set(
        db.scalars(select(Coupon.member_id).where(Coupon.batch_id == batch.id).distinct())
    )
    assert holders == {m.id for n, m in enumerate(east) if n % 2 == 1}
    audit = db.scalars(
        select(AuditEntry.after).where(AuditEntry.action == "coupon_batch.issue")
    ).all()[-1]
    assert audit["held_out"] == (len(east) + 1) // 2

    # A reward a held-out member buys with their own points is theirs to have.
    reward = rewards.save(db, ACTOR, name="Voucher", points_cost=100, batch_id=batch.id)
    rewards.adjust(db, ACTOR, out.id, 500, reason="Goodwill", key="gw", at=T0, zone=ZONE)
    bought = rewards.redeem(db, ACTOR, out.id, reward.id, key="r1", at=T0)
    assert bought.coupon is not None and bought.coupon.member_id == out.id


def test_the_pure_rule_skips_a_campaign_that_holds_the_member_out() -> None:
    rule = BonusRule(id=1, name="Double", active=True, campaign_id=7, multiplier=Decimal(2))
    facts = earning.PurchaseFacts(Decimal(100), T0.date(), campaign_id=7)
    assert earning.rule_matches(rule, facts) == Decimal(100)
    held = earning.PurchaseFacts(
        Decimal(100), T0.date(), campaign_id=7, held_out_campaigns=frozenset({7})
    )
    assert earning.rule_matches(rule, held) is None
    elsewhere = earning.PurchaseFacts(
        Decimal(100), T0.date(), campaign_id=7, held_out_campaigns=frozenset({8})
    )
    assert earning.rule_matches(rule, elsewhere) == Decimal(100)
    anyone = BonusRule(id=2, name="All", active=True, fixed_points=5)
    assert earning.rule_matches(anyone, held) == Decimal(100)


def _bonus(db: Session, member: Member, rule_id: int) -> int:
    return (
        db.scalar(
            select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                LedgerEntry.member_id == member.id, LedgerEntry.bonus_rule_id == rule_id
            )
        )
        or 0
    )


@pytest.mark.parametrize("path", ["general", "fast", "import"])
def test_held_out_members_earn_no_campaign_bonus_on_every_path(
    db: Session,
    shop: Shop,
    staff: Staff,
    east: list[Member],
    campaign: Campaign,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(purchases, "FAST_PATH", path == "fast")
    out, treated = _frozen(db, campaign, east[:4])
    other = make_campaign(db, staff, code="OTHER26")
    rule = program_settings.save_rule(
        db, ACTOR, name="Triple", campaign_id=campaign.id, fixed_points=300
    )
    elsewhere = program_settings.save_rule(
        db, ACTOR, name="Other's", campaign_id=other.id, fixed_points=70
    )
    db.flush()
    sales = [(out, campaign.code), (treated, campaign.code), (out, other.code)]
    if path == "import":
        body = "source,external_id,occurred_at,amount,member_number,campaign_code\n" + "".join(
            f"pos,I{n},{(T0 + timedelta(hours=n)).isoformat()},120.00,{m.number},{code}\n"
            for n, (m, code) in enumerate(sales)
        )
        connection = db.connection()

        def factory() -> Session:
            return Session(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )

        report = imports.import_purchases(factory, ACTOR, body.encode(), base=BASE, zone=ZONE)
        assert report.imported == len(sales)
        db.expire_all()
    else:
        for n, (member, code) in enumerate(sales):
            shop.buy(member, "120.00", at=T0 + timedelta(hours=n), campaign_code=code)
    assert _bonus(db, out, rule.id) == 0  # held out of this campaign
    assert _bonus(db, treated, rule.id) == 300
    assert _bonus(db, out, elsewhere.id) == 70  # not held out of the other one
