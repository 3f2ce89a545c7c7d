"""Demo data for attribution: touchpoints for the demo members across the demo channels, with
believable journeys, then the touchpoints the product's own records imply, then a stored run
of every model by channel and by campaign, so the attribution page has something to show at
once. Deterministic (a fixed seed) and idempotent (skipped when demo touchpoints exist).

- About half of the members' purchases of the last year had a journey before them: one to
  five touches over the three weeks before, drawn from the mix of the campaign running then
  (its own channel most, two supporting channels less; each campaign its own mix), or from
  the everyday mix (search, the WeChat account, walking past a store) when none ran.
- Null journeys: some members saw ads and messages and bought nothing in the following
  months.
- Anonymous visitors browsed before signing in; some were later linked to a member (their
  touches then count as the member's), the rest stay anonymous null journeys.
- Derived: coupons issued from campaign batches, coupons used, purchases carrying a campaign
  code, referrals (`attribution.touchpoints.derive`).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from attribution import runs, touchpoints
from attribution.models import Touchpoint
from attribution.touchpoints import TouchInput
from campaigns.models import Campaign
from core.audit import Actor
from loyalty.models import Member, Purchase

SEED = 20261201
SOURCES = {  # which system reports a channel's touches
    "wechat": "wechat-oa",
    "douyin": "ads",
    "xiaohongshu": "ads",
    "search_ads": "ads",
    "partner": "ads",
    "sms": "crm",
    "email": "crm",
    "in_store": "pos",
    "offline_event": "events",
}
KINDS = {
    "wechat": ["message", "click"],
    "douyin": ["impression", "impression", "click"],
    "xiaohongshu": ["impression", "click"],
    "search_ads": ["impression", "click", "click"],
    "partner": ["click", "impression"],
    "sms": ["message"],
    "email": ["message", "click"],
    "in_store": ["visit"],
    "offline_event": ["visit"],
}
EVERYDAY = [("search_ads", 5), ("wechat", 3), ("in_store", 2), ("xiaohongshu", 1)]
NULL_MEMBERS = 400
VISITORS = 250


def _pick(rng: random.Random, mix: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in mix], weights=[w for _, w in mix])[0]


def load(session: Session, today: date, zone: ZoneInfo, base: str) -> int:
    """Adds the demo touchpoints and stored runs; returns how many touchpoints were added
    (0 when demo touchpoints exist already)."""
    marker = select(Touchpoint.id).where(
        Touchpoint.source.in_(sorted(set(SOURCES.values()))),
        Touchpoint.external_id.startswith("demo-"),
    )
    if session.scalar(marker.limit(1)) is not None:
        return 0
    rng = random.Random(SEED)  # noqa: S311 - demo data, not security
    actor = Actor.cli("retain demo")
    now = min(datetime.combine(today, time(9), zone), datetime.now(UTC))
    year_ago = now - timedelta(days=365)
    campaigns = session.scalars(
        select(Campaign).where(Campaign.code.startswith("DEMO")).order_by(Campaign.code)
    ).all()
    channels = sorted(SOURCES)
    mixes: dict[str, list[tuple[str, int]]] = {}
    for campaign in campaigns:
        own = campaign.channel.code
        support = rng.sample([c for c in channels if c != own], 2)
        mixes[campaign.code] = [(own, 6), (support[0], 3), (support[1], 2)]
    numbers = {int(i): str(n) for i, n in session.execute(select(Member.id, Member.number))}
    if not numbers:
        return 0
    items: list[TouchInput] = []

    def touch(
        member: int | None,
        channel: str,
        at: datetime,
        *,
        campaign: str | None = None,
        visitor: str | None = None,
    ) -> None:
        items.append(
            TouchInput(
                source=SOURCES[channel],
                external_id=f"demo-{len(items) + 1:07d}",
                channel=channel,
                kind=rng.choice(KINDS[channel]),
                occurred_at=at.astimezone(UTC),
                member_number=numbers[member] if member is not None else None,
                visitor_id=visitor,
                campaign_code=campaign,
            )
        )

    bought = session.execute(
        select(Purchase.member_id, Purchase.occurred_at)
        .where(Purchase.member_id.is_not(None), Purchase.occurred_at >= year_ago)
        .order_by(Purchase.occurred_at, Purchase.id)
    ).all()
    for member_id, at in bought:
        if rng.random() >= 0.5:
            continue
        day = at.astimezone(zone).date()
        running = [c for c in campaigns if c.starts_on <= day <= c.ends_on]
        code = rng.choice(running).code if running and rng.random() < 0.7 else None
        mix = mixes[code] if code else EVERYDAY
        for _ in range(rng.choice([1, 1, 2, 2, 2, 3, 3, 4, 5])):
            channel = _pick(rng, mix)
            when = at - timedelta(minutes=rng.randint(5, 21 * 24 * 60))
            touch(member_id, channel, when, campaign=code if rng.random() < 0.85 else None)

    # Members who saw the marketing and bought nothing after it.
    for member_id in rng.sample(sorted(numbers), min(NULL_MEMBERS, len(numbers))):
        when = year_ago + timedelta(minutes=rng.randint(0, 300 * 24 * 60))
        day = when.astimezone(zone).date()
        running = [c for c in campaigns if c.starts_on <= day <= c.ends_on]
        for _ in range(rng.randint(1, 3)):
            if running:
                code = rng.choice(running).code
                touch(member_id, _pick(rng, mixes[code]), when, campaign=code)
            else:
                touch(member_id, _pick(rng, EVERYDAY), when)
            when += timedelta(hours=rng.randint(1, 72))

    # Anonymous visitors; some sign in later and are linked to their member.
    links: list[tuple[str, int, datetime]] = []
    for n in range(VISITORS):
        visitor = f"demo-visitor-{n:04d}"
        when = year_ago + timedelta(minutes=rng.randint(0, 330 * 24 * 60))
        for _ in range(rng.randint(1, 3)):
            touch(None, _pick(rng, EVERYDAY), when, visitor=visitor)
            when += timedelta(hours=rng.randint(1, 48))
        if rng.random() < 0.4:
            links.append((visitor, rng.choice(sorted(numbers)), min(when, now)))

    items = [i for i in items if i.occurred_at <= now]
    for start in range(0, len(items), touchpoints.MAX_BATCH):
        touchpoints.record_batch(session, actor, items[start : start + touchpoints.MAX_BATCH])
    for visitor, member_id, at in links:
        touchpoints.link_visitor(session, actor, visitor, numbers[member_id], at=at)
    touchpoints.derive(session, actor)
    for unit in runs.UNITS:
        runs.run_all(session, actor, runs.RunParams(unit=unit), base=base, zone=zone)
    return len(items)
