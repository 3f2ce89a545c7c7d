"""Demo data for loyalty: about 2,000 members across the tiers with 12 months of purchases
(many under the demo campaigns' codes and dates), refunds, coupons, rewards and referrals,
then the nightly jobs. Deterministic (a fixed seed) and idempotent (skipped when demo
members exist). Purchases load through the CSV import's bulk path, as a real migration of
history would; coupon purchases and refunds go through the services."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from core import passwords
from core.audit import Actor
from loyalty import coupons, imports, jobs, members, purchases, rewards
from loyalty import program as program_settings
from loyalty.models import Member, MemberAccount
from loyalty.purchases import PurchaseInput, RefundInput

MEMBERS = 2_000
CATEGORIES = ["tea", "teaware", "snacks", "gifts"]
DEMO_MEMBER_EMAIL = "member@demo.retain"
DEMO_MEMBER_PASSWORD = "retain-demo"  # noqa: S105 - a published demo password, demo mode only
SURNAMES = [
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Zhao",
    "Huang",
    "Zhou",
    "Wu",
    "Xu",
    "Sun",
    "Hu",
    "Zhu",
    "Gao",
    "Lin",
    "He",
    "Ma",
]
GIVEN = [
    "Wei",
    "Fang",
    "Na",
    "Min",
    "Jing",
    "Lei",
    "Yang",
    "Jun",
    "Yan",
    "Jie",
    "Tao",
    "Ming",
    "Chao",
    "Xia",
    "Ping",
    "Hui",
    "Ying",
]
REGIONS = {
    "East": ["Shanghai", "Hangzhou", "Nanjing", "Suzhou"],
    "North": ["Beijing", "Tianjin", "Qingdao"],
    "South": ["Guangzhou", "Shenzhen", "Xiamen"],
    "West": ["Chengdu", "Chongqing", "Xi'an"],
}
OCCUPATIONS = [
    ("Engineer", "Technology"),
    ("Teacher", "Education"),
    ("Nurse", "Healthcare"),
    ("Designer", "Media"),
    ("Accountant", "Finance"),
    ("Student", "Education"),
    ("Shop owner", "Retail"),
    ("Manager", "Manufacturing"),
]


def _session_factory(session: Session) -> Any:
    """Sessions inside the demo's transaction (the import opens one per chunk)."""
    connection = session.connection()
    return lambda: Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


def load(session: Session, today: date, zone: ZoneInfo, base: str) -> int:
    """Adds the demo members and their history; returns how many members were created."""
    if session.scalar(select(Member.id).where(Member.email == DEMO_MEMBER_EMAIL)) is not None:
        return 0
    rng = random.Random(20261123)  # noqa: S311 - demo data, not security
    actor = Actor.cli("retain demo")
    # Morning of `today`, or now if that is still ahead: nothing may happen in the future.
    now = min(datetime.combine(today, time(9), zone), datetime.now(UTC))
    year_ago = now - timedelta(days=365)
    campaigns = session.scalars(select(Campaign).where(Campaign.code.startswith("DEMO"))).all()
    live = [c for c in campaigns if c.status == "active"]
    batch_campaign = live[0].id if live else None
    if live:
        program_settings.save_rule(
            session,
            actor,
            name="Double points",
            campaign_id=live[0].id,
            multiplier=Decimal(2),
            priority=10,
        )
    program_settings.save_rule(
        session,
        actor,
        name="Big basket bonus",
        fixed_points=200,
        min_spend=Decimal(800),
        priority=50,
    )
    voucher = coupons.create_batch(
        session,
        actor,
        name="¥20 off ¥200",
        kind="fixed",
        value=Decimal(20),
        currency=base,
        min_spend=Decimal(200),
        valid_days=60,
        campaign_id=batch_campaign,
    )
    gold = coupons.create_batch(
        session,
        actor,
        name="Gold 15% off",
        kind="percent",
        value=Decimal(15),
        max_discount=Decimal(100),
        currency=base,
        valid_days=90,
        eligible_tiers=["gold", "platinum"],
        per_member_limit=2,
        campaign_id=batch_campaign,
    )
    gift = coupons.create_batch(
        session,
        actor,
        name="Tea gift box",
        kind="gift",
        gift="A box of Longjing tea",
        currency=base,
        valid_days=30,
    )
    coupons.create_batch(
        session,
        actor,
        name="Welcome 10 off",
        kind="fixed",
        value=Decimal(10),
        currency=base,
        public_code="WELCOME10",
        total_limit=5_000,
        per_member_limit=1,
        valid_from=year_ago,
        valid_until=now + timedelta(days=90),
    )
    birthday = coupons.create_batch(
        session,
        actor,
        name="Birthday cake voucher",
        kind="gift",
        gift="A birthday cake at any store",
        currency=base,
        valid_days=30,
    )
    program_settings.update(session, actor, birthday_batch_id=birthday.id)
    voucher_reward = rewards.save(
        session,
        actor,
        name="¥20 voucher",
        points_cost=1_000,
        batch_id=voucher.id,
        description="¥20 off a purchase of ¥200 or more",
    )
    rewards.save(session, actor, name="Tea gift box", points_cost=2_500, batch_id=gift.id)
    rewards.save(
        session,
        actor,
        name="Gold 15% off",
        points_cost=3_000,
        batch_id=gold.id,
        eligible_tiers=["gold", "platinum"],
    )

    people: list[Member] = []
    for n in range(MEMBERS):
        region = rng.choice(list(REGIONS))
        job, industry = rng.choice(OCCUPATIONS)
        joined = (
            year_ago - timedelta(days=rng.randint(0, 400))
            if n % 5
            else (year_ago + timedelta(days=rng.randint(0, 330)))
        )
        referrer = rng.choice(people[:n]) if people and n % 13 == 0 else None
        profile = members.Profile(
            name=f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}",
            phone=f"13{rng.randint(0, 9)}{n:08d}",
            email=DEMO_MEMBER_EMAIL if n == 0 else (f"member{n}@example.com" if n % 3 else None),
            birthday=date(rng.randint(1960, 2004), rng.randint(1, 12), rng.randint(1, 28)),
            gender=rng.choice(["female", "male", "female", None]),
            region=region,
            city=rng.choice(REGIONS[region]),
            occupation=job,
            industry=industry,
            marketing_consent=rng.random() < 0.7,
        )
        people.append(
            members.create(
                session,
                actor,
                profile,
                referral_code=referrer.referral_code if referrer else None,
                zone=zone,
                at=min(joined, now),
            )
        )
    session.flush()

    rows = ["source,external_id,occurred_at,amount,member_number,campaign_code,channel"]
    count = 0
    # Every fourth member's first and last purchases carry lines with a category, posted
    # through the service (the import has no lines): the last one in another category is
    # the cross-selling of customer value's CLV3.
    first_sales: list[tuple[Member, datetime, Decimal, str]] = []
    last_sales: list[tuple[Member, datetime, Decimal, str]] = []
    for n, member in enumerate(people):
        # Spending is skewed: most members buy now and then, a few a lot (the pyramid).
        spend_level = rng.lognormvariate(7.2, 1.0)
        start = max(member.joined_at, year_ago)
        if n == 0:  # the demo member: a rich history all year
            span = max(1, int((now - start).total_seconds() // 60))
            times = sorted(start + timedelta(minutes=rng.randint(0, span)) for _ in range(24))
        else:
            # Purchases as the BG/NBD model tells them: each member buys at their own rate
            # (purchases a week, gamma across members) and after each purchase may drop out
            # for good (a chance that is beta across members).
            rate = rng.gammavariate(0.9, 1 / 6)
            dropout = rng.betavariate(0.8, 3.0)
            times, when = [], start
            while rate > 0:
                when += timedelta(weeks=rng.expovariate(rate))
                if when > now:
                    break
                times.append(when)
                if rng.random() < dropout:
                    break
        visits = len(times)
        categorised = n % 4 == 1 and visits >= 2
        for i, when in enumerate(times):
            amount = Decimal(max(20, int(rng.gauss(spend_level / 6, spend_level / 12))))
            if categorised and i in (0, len(times) - 1):
                first, later = rng.sample(CATEGORIES, 2)
                sales = first_sales if i == 0 else last_sales
                sales.append((member, when, amount, first if i == 0 else later))
                continue
            day = when.astimezone(zone).date()
            running = [c for c in campaigns if c.starts_on <= day <= c.ends_on]
            # About one purchase in five comes from a campaign (its code or its coupon).
            code = rng.choice(running).code if running and rng.random() < 0.2 else ""
            count += 1
            rows.append(
                f"shop,D{count:06d},{when.astimezone(UTC).isoformat()},{amount:.2f},"
                f"{member.number},{code},{rng.choice(['in_store', 'wechat', 'douyin'])}"
            )

    def sell(sales: list[tuple[Member, datetime, Decimal, str]], prefix: str) -> None:
        for k, (member, when, amount, category) in enumerate(sales):
            purchases.record(
                session,
                actor,
                PurchaseInput(
                    source="shop",
                    external_id=f"{prefix}{k:05d}",
                    occurred_at=when,
                    amount=amount,
                    currency=base,
                    member_id=member.id,
                    lines=(purchases.Line(f"{category.upper()}-1", 1, amount, category),),
                ),
                base_currency=base,
                zone=zone,
            )

    sell(first_sales, "C")
    report = imports.import_purchases(
        _session_factory(session), actor, ("\n".join(rows) + "\n").encode(), base=base, zone=zone
    )
    sell(last_sales, "L")
    # Guests, coupon purchases and refunds, through the services.
    for n in range(150):
        when = now - timedelta(days=rng.randint(1, 300), hours=rng.randint(0, 12))
        running = [c for c in campaigns if c.starts_on <= when.astimezone(zone).date() <= c.ends_on]
        purchases.record(
            session,
            actor,
            PurchaseInput(
                source="shop",
                external_id=f"G{n:05d}",
                occurred_at=when,
                currency=base,
                amount=Decimal(rng.randint(30, 600)),
                campaign_code=running[0].code if running else None,
            ),
            base_currency=base,
            zone=zone,
        )
    holders = rng.sample(people[1:], 120)
    for n, member in enumerate(holders):
        coupon = coupons.issue(
            session, actor, voucher.id, member, reason="Spring mailing", at=now - timedelta(days=20)
        )
        if n % 2 == 0:
            purchases.record(
                session,
                actor,
                PurchaseInput(
                    source="shop",
                    external_id=f"V{n:05d}",
                    occurred_at=now - timedelta(days=rng.randint(1, 19)),
                    amount=Decimal(rng.randint(200, 900)),
                    discount=Decimal(20),
                    currency=base,
                    member_id=member.id,
                    coupon_codes=(coupon.code,),
                ),
                base_currency=base,
                zone=zone,
            )
    refunded = rng.sample(range(1, count + 1), max(1, count // 30))
    for n, number in enumerate(refunded):
        ext = f"D{number:06d}"
        sale = purchases.find(session, "shop", ext)
        if sale is None:
            continue
        share = None if n % 3 == 0 else (sale.amount / 2).quantize(Decimal("0.01"))
        purchases.refund(
            session,
            actor,
            RefundInput(
                source="shop",
                external_id=f"R{n:05d}",
                purchase_source="shop",
                purchase_external_id=ext,
                occurred_at=min(sale.occurred_at + timedelta(days=rng.randint(1, 20)), now),
                amount=share,
                reason="Returned",
            ),
            base_currency=base,
            zone=zone,
        )
    for name in jobs.JOBS:
        jobs.run(session, name, now, zone)
    for member in rng.sample(people, 60):
        fresh = session.get(Member, member.id)
        if fresh and fresh.available >= 1_000:
            rewards.redeem(
                session, actor, fresh.id, voucher_reward.id, key=f"demo-{fresh.id}", at=now
            )
    # The first member can sign in to the portal (the sign-in `retain serve` prints).
    session.add(
        MemberAccount(
            member_id=people[0].id,
            password_hash=passwords.hash_password(DEMO_MEMBER_PASSWORD),
            activated_at=now,
        )
    )
    session.flush()
    return len(people) if report.imported else 0
