"""Demo data for campaigns: ~30 campaigns over the last 12 months, ~500 receipts in every
state (some in USD), manual revenue, daily USD rates, older months closed. Deterministic
(a fixed seed) and idempotent (skipped when demo campaigns exist)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import periods, planning, rates, receipts, revenue
from campaigns.models import Campaign
from campaigns.receipts import ReceiptInput
from core.accounts.models import User
from core.audit import Actor

CHANNELS = [
    "wechat",
    "douyin",
    "xiaohongshu",
    "sms",
    "email",
    "search_ads",
    "in_store",
    "offline_event",
    "partner",
]
THEMES = [
    "Spring sale",
    "Member week",
    "618 festival",
    "Summer launch",
    "Back to school",
    "Mid-autumn gifts",
    "Golden week",
    "Singles' day",
    "Double 12",
    "New year",
    "Lantern festival",
    "Women's day",
]
VENDORS = {
    "media": ["Tencent Ads", "Ocean Engine", "Xiaohongshu Ads", "Baidu Search"],
    "creative": ["Blue Whale Studio", "Print & Co", "Moon Design"],
    "gifts": ["Gift Box Ltd", "Tea House Supplies"],
    "events": ["Expo Hall Shanghai", "Sound & Light Rental"],
    "staff": ["Temp Staffing Co"],
}
STEPS = [
    [],
    ["submit"],
    ["submit", "approve"],
    ["submit", "approve", "pay"],
    ["submit", "approve", "pay"],
    ["submit", "reject"],
]


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def load(session: Session, today: date) -> int:
    """Adds the demo campaigns; returns how many were created (0 if already there)."""
    if session.scalar(select(Campaign.id).where(Campaign.code.startswith("DEMO"))) is not None:
        return 0
    people = {u.email: u for u in session.scalars(select(User))}
    mei, fang = people["marketer@demo.retain"], people["finance@demo.retain"]
    marketer = Actor("user", mei.email, user_id=mei.id, roles=frozenset({"marketer"}))
    finance = Actor("user", fang.email, user_id=fang.id, roles=frozenset({"finance"}))
    rng = random.Random(20261122)  # noqa: S311 - demo data, not security
    first = (today.replace(day=1) - timedelta(days=335)).replace(day=1)

    day = first - timedelta(days=31)
    rate = Decimal("7.10")
    while day <= today:
        rate = (rate + Decimal(rng.randint(-3, 3)) / 100).quantize(Decimal("0.0001"))
        rates.set_rate(session, finance, "USD", day, rate, "CNY")
        day += timedelta(days=1)

    created = 0
    for n in range(30):
        starts = first + timedelta(days=rng.randint(0, 320))
        if n >= 26:  # a few running now, so the dashboard has live campaigns
            starts = today - timedelta(days=rng.randint(5, 25))
        ends = min(starts + timedelta(days=rng.randint(14, 60)), today + timedelta(days=30))
        usd = n % 7 == 3
        budget = _money(rng, 35_000, 150_000) / (7 if usd else 1)
        status = "ended" if ends < today else "active"
        channel = CHANNELS[n % len(CHANNELS)]
        campaign = planning.create(
            session,
            marketer,
            code=f"DEMO{n + 1:02d}",
            name=f"{THEMES[n % len(THEMES)]} · {planning.channel_by_code(session, channel).name}",
            channel=channel,
            owner_id=mei.id,
            starts_on=starts,
            ends_on=ends,
            budget=budget.quantize(Decimal("1")),
            currency="USD" if usd else "CNY",
            expected_revenue=(budget * 4).quantize(Decimal("1")),
            status=status,
            objective="Bring lapsed members back and grow repeat purchases.",
            target_segment="Members inactive for 90+ days",
        )
        created += 1
        span = max(1, min((ends - starts).days, (today - starts).days))
        for r in range(rng.randint(12, 22)):
            category = rng.choice(list(VENDORS))
            spent_on = starts + timedelta(days=rng.randint(0, span))
            currency = "USD" if (usd or rng.random() < 0.08) else "CNY"
            amount = _money(rng, 200, 5200) / (7 if currency == "USD" else 1)
            receipt = receipts.create(
                session,
                marketer,
                ReceiptInput(
                    campaign_id=campaign.id,
                    vendor=rng.choice(VENDORS[category]),
                    category=category,
                    amount=amount.quantize(Decimal("0.01")),
                    currency=currency,
                    expense_date=spent_on,
                    invoice_number=f"INV-{n + 1:02d}{r:03d}",
                    description=f"{category.title()} for {campaign.name}",
                ),
            )
            steps = STEPS[rng.randrange(len(STEPS))]
            if (today - spent_on).days > 100 and steps in ([], ["submit"]):
                steps = ["submit", "approve", "pay"]  # old months are settled before closing
            for step in steps:
                actor = marketer if step == "submit" else finance
                receipts.transition(
                    session, actor, receipt.id, step, reason="Missing the official invoice (发票)"
                )
        for _ in range(rng.randint(3, 10)):
            received = starts + timedelta(days=rng.randint(0, span))
            revenue.record(
                session,
                finance,
                campaign_id=campaign.id,
                received_on=received,
                amount=_money(rng, 5_000, 60_000),
                currency="CNY",
                reference=f"POS-{rng.randint(10000, 99999)}",
                orders=rng.randint(20, 400),
            )
    return created


def close_old_months(session: Session, today: date) -> None:
    """Finance closes the months over four months old, once every demo document is in (a
    closed month takes no more purchases, revenue or rates)."""
    fang = session.scalars(select(User).where(User.email == "finance@demo.retain")).one()
    finance = Actor("user", fang.email, user_id=fang.id, roles=frozenset({"finance"}))
    month = (today.replace(day=1) - timedelta(days=335)).replace(day=1)
    while (today - month).days > 130:
        if not periods.is_closed(session, month):
            periods.close_month(session, finance, month)
        month = (month + timedelta(days=32)).replace(day=1)
