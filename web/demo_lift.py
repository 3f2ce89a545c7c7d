"""Demo holdout: a win-back campaign that held out 20% of its segment, so the lift page shows a
real report.

500 members in Ningbo (a city no other demo member lives in) make a saved segment. The
campaign `LIFT-DEMO` ran from 40 to 10 days ago; its target was set, with a 20% holdout, the
day before it started, freezing the audience. Its coupon went to the treated members (the
issue skips the held-out ones), its bonus rule doubled their points, and during the window
14% of the treated members and 11% of the held-out ones bought (exactly: believable for a
modest campaign, and too few members for the difference to be significant, which the verdict
says and the sample-size calculator explains). Some of the treated buyers used the coupon, one
purchase was refunded in full, and members also bought before the window. Two approved
receipts are its cost.

Deterministic (a fixed seed) and idempotent (skipped when the campaign exists).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import segments
from analytics.models import CampaignTarget
from analytics.segments import Criteria
from campaigns import planning, receipts
from campaigns.models import Campaign
from campaigns.receipts import ReceiptInput
from core.accounts.models import User
from core.audit import Actor
from loyalty import audiences, coupons, imports, members, purchases
from loyalty import program as program_settings
from loyalty.models import Coupon, Member
from loyalty.purchases import PurchaseInput, RefundInput
from web.demo_loyalty import GIVEN, SURNAMES

CODE = "LIFT-DEMO"
CITY, REGION = "Ningbo", "East"
MEMBERS = 500
SHARE = Decimal("0.2")
TREATED_RATE, HOLDOUT_RATE = Decimal("0.14"), Decimal("0.11")
COUPON_USES = 20  # treated buyers who paid with the campaign's coupon


def _actor(session: Session, email: str, role: str) -> tuple[Actor, int]:
    user = session.scalars(select(User).where(User.email == email)).one()
    return Actor("user", user.email, user_id=user.id, roles=frozenset({role})), user.id


def _session_factory(session: Session) -> Any:
    """Sessions inside the demo's transaction (the import opens one per chunk)."""
    connection = session.connection()
    return lambda: Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


def _at(rng: random.Random, first: date, last: date, zone: ZoneInfo, now: datetime) -> datetime:
    """A shop hour on a day from `first` to `last`, never after `now`."""
    day = first + timedelta(days=rng.randint(0, (last - first).days))
    when = datetime.combine(day, time(rng.randint(10, 20), rng.randint(0, 59)), zone)
    return min(when, now - timedelta(minutes=rng.randint(5, 600)))


def load(session: Session, today: date, zone: ZoneInfo, base: str) -> int:
    """Adds the campaign with its holdout and its members' purchases; returns how many
    members it created (0 if already there)."""
    if session.scalar(select(Campaign.id).where(Campaign.code == CODE)) is not None:
        return 0
    rng = random.Random(20261201)  # noqa: S311 - demo data, not security
    actor = Actor.cli("retain demo")
    marketer, mei = _actor(session, "marketer@demo.retain", "marketer")
    finance, _ = _actor(session, "finance@demo.retain", "finance")
    now = min(datetime.combine(today, time(9), zone), datetime.now(UTC))
    starts, ends = today - timedelta(days=40), today - timedelta(days=10)

    people: list[Member] = []
    for n in range(MEMBERS):
        joined = now - timedelta(days=rng.randint(90, 400))
        profile = members.Profile(
            name=f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}",
            phone=f"1580000{n:04d}",
            email=f"ningbo{n}@example.com" if n % 2 else None,
            birthday=date(rng.randint(1965, 2002), rng.randint(1, 12), rng.randint(1, 28)),
            gender=rng.choice(["female", "male", "female", None]),
            region=REGION,
            city=CITY,
            marketing_consent=rng.random() < 0.8,
        )
        people.append(members.create(session, actor, profile, zone=zone, at=joined))
    session.flush()

    segment = segments.save(
        session,
        marketer,
        "Ningbo members",
        "Every active member in Ningbo: the win-back campaign's audience.",
        Criteria(cities=(CITY,)),
    ).segment
    campaign = planning.create(
        session,
        marketer,
        code=CODE,
        name="Ningbo win-back (holdout test)",
        channel="sms",
        owner_id=mei,
        starts_on=starts,
        ends_on=ends,
        budget=Decimal(6000),
        currency=base,
        expected_revenue=Decimal(15000),
        status="planned",
        objective="Win back Ningbo members, and measure what the campaign really adds.",
        target_segment="Ningbo members",
    )
    # Set the day before it started, as a marketer would: the audience is frozen then.
    eve = starts - timedelta(days=1)
    segments.set_campaign_target(
        session, marketer, campaign.id, segment.id, today=eve, zone=zone, holdout_share=SHARE
    )
    target = session.get(CampaignTarget, campaign.id)
    assert target is not None
    target.set_at = datetime.combine(eve, time(16, 30), zone)
    planning.set_status(session, marketer, campaign.id, "active")  # it ran …
    planning.set_status(session, marketer, campaign.id, "ended")  # … and ended
    for vendor, category, amount, day in (
        ("China Mobile SMS Gateway", "media", Decimal("2400.00"), starts),
        ("Studio Hai", "creative", Decimal("650.00"), starts - timedelta(days=3)),
    ):
        receipt = receipts.create(
            session,
            marketer,
            ReceiptInput(
                campaign_id=campaign.id,
                vendor=vendor,
                category=category,
                amount=amount,
                currency=base,
                expense_date=day,
                invoice_number=f"LIFT-{category.upper()}",
                description=f"{category.title()} for the Ningbo win-back",
            ),
        )
        receipts.transition(session, marketer, receipt.id, "submit")
        receipts.transition(session, finance, receipt.id, "approve")
    program_settings.save_rule(
        session,
        actor,
        name="Win-back double points",
        campaign_id=campaign.id,
        multiplier=Decimal(2),
        priority=20,
        starts_on=starts,
        ends_on=ends,
    )
    voucher = coupons.create_batch(
        session,
        actor,
        name="Ningbo ¥20 off ¥150",
        kind="fixed",
        value=Decimal(20),
        currency=base,
        min_spend=Decimal(150),
        valid_days=31,
        campaign_id=campaign.id,
    )
    members_in = segments.member_ids(session, segments.stored(segment), today=starts, zone=zone)
    coupons.issue_to_members(
        session,
        marketer,
        voucher.id,
        members_in=members_in,
        segment=segment.name,
        reason="Win-back SMS",
        at=datetime.combine(starts, time(9), zone),
    )

    held = set(session.scalars(audiences.held_out_ids(session, campaign.id)))
    treated = [m for m in people if m.id not in held]
    holdout = [m for m in people if m.id in held]
    buyers = rng.sample(treated, round(TREATED_RATE * len(treated))) + rng.sample(
        holdout, round(HOLDOUT_RATE * len(holdout))
    )
    with_coupon = set(rng.sample([m.id for m in buyers if m.id not in held], COUPON_USES))
    rows = ["source,external_id,occurred_at,amount,member_number,campaign_code,channel"]
    count = 0

    def row(member: Member, when: datetime, amount: Decimal, code: str = "") -> None:
        nonlocal count
        count += 1
        rows.append(
            f"shop,N{count:05d},{when.astimezone(UTC).isoformat()},{amount:.2f},"
            f"{member.number},{code},{rng.choice(['in_store', 'wechat'])}"
        )

    # Before the window: what these members bought anyway.
    before = starts - timedelta(days=1)
    for member in people:
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            first = max(member.joined_at.astimezone(zone).date(), starts - timedelta(days=150))
            if first <= before:
                row(member, _at(rng, first, before, zone, now), Decimal(rng.randint(40, 420)))
    # In the window: the buyers, some twice; treated buyers often under the campaign's code.
    for member in buyers:
        if member.id in with_coupon:
            continue
        for _ in range(rng.choice([1, 1, 1, 2])):
            code = CODE if member.id not in held and rng.random() < 0.5 else ""
            row(member, _at(rng, starts, ends, zone, now), Decimal(rng.randint(60, 480)), code)
    imports.import_purchases(
        _session_factory(session), actor, ("\n".join(rows) + "\n").encode(), base=base, zone=zone
    )
    wallet = dict(
        session.execute(
            select(Coupon.member_id, Coupon.code).where(Coupon.batch_id == voucher.id)
        ).all()
    )
    for n, member_id in enumerate(sorted(with_coupon)):
        purchases.record(
            session,
            actor,
            PurchaseInput(
                source="shop",
                external_id=f"NC{n:04d}",
                occurred_at=_at(rng, starts, ends, zone, now),
                amount=Decimal(rng.randint(150, 520)),
                discount=Decimal(20),
                currency=base,
                member_id=member_id,
                coupon_codes=(wallet[member_id],),
            ),
            base_currency=base,
            zone=zone,
        )
    # A treated buyer's extra purchase, refunded in full a few days later: it never counts.
    returned = next(m for m in buyers if m.id not in held and m.id not in with_coupon)
    bought = _at(rng, starts, ends - timedelta(days=5), zone, now)
    purchases.record(
        session,
        actor,
        PurchaseInput(
            source="shop",
            external_id="NR0001",
            occurred_at=bought,
            amount=Decimal(899),
            currency=base,
            member_id=returned.id,
            campaign_code=CODE,
        ),
        base_currency=base,
        zone=zone,
    )
    purchases.refund(
        session,
        actor,
        RefundInput(
            source="shop",
            external_id="NRR0001",
            purchase_source="shop",
            purchase_external_id="NR0001",
            occurred_at=bought + timedelta(days=3),
            reason="Wrong size",
        ),
        base_currency=base,
        zone=zone,
    )
    session.flush()
    return len(people)
