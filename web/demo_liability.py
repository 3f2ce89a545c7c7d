"""Demo points history for the points liability page: two years of redemptions and a January
of expiries, so the redemption curve, the roll-forward and its catch-up are believable.

`demo_loyalty` gives a year of purchases (points earned every month), but its members
redeem only today and its nightly jobs run once, today: the redemption curve would be flat
at nothing. This adds, through the product's services and jobs only (no ledger row is
written by hand), walking forward in time:

- early members: joined in the second half of the year before last, bought for a few months
  to a year (through the CSV import's bulk path, as a migrated history would), redeemed, then
  lapsed. The expiry job, run at each local month's start, expires what they kept when it
  falls due (on 1 January under the default policy, "at the end of the next calendar year"),
  so the 12 months before this one show expiry, and the curve has history before them;
- redemptions by about seven members in ten (the others never redeem, as in a real
  programme; the portal's demo member is left as `demo_loyalty` made them): each week a
  redeemer who holds enough points now and then takes a tea gift box (2,500 points) or
  coffee for two (1,200 points, a gift reward added here; neither belongs to a campaign, so
  the ROI report's loyalty cost is unchanged). A redemption on a past day may only spend
  points earned and spendable before it: the ledger spends the soonest-expiring lots first,
  so the plan is checked on the member's lots, and each redemption runs in a savepoint that
  is undone if it drew a later lot.

Deterministic (a fixed seed) and idempotent (skipped when the early members exist). Days in
a closed month get no redemption. Ends by running the jobs again at today's time.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import periods
from core.audit import Actor
from core.errors import RetainError
from loyalty import coupons, imports, jobs, members, rewards
from loyalty.models import (
    Lot,
    LotDraw,
    LotState,
    Member,
    MemberStatus,
    Reward,
)
from web.demo_loyalty import DEMO_MEMBER_EMAIL

SEED = 20261201
EARLY = 150
EARLY_PHONE = "1590000{n:04d}"  # demo_loyalty's members have 13x numbers
EARLY_SURNAMES = ["Qian", "Song", "Tang", "Feng", "Deng", "Xie", "Han", "Cao"]
EARLY_GIVEN = ["Lan", "Bo", "Qing", "Hao", "Rui", "Xin", "Yu", "Kai"]
REDEEMERS = 0.72  # the share of members who ever redeem; the others let their points lapse
WEEKLY_CHANCE = 0.11  # of a redeemer who holds enough points redeeming in a given week
TEA_BOX = "Tea gift box"
COFFEE = "Coffee for two"
COFFEE_COST = 1_200


@dataclass
class _Lot:
    id: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    remaining: int
    state: str


def _session_factory(session: Session) -> Callable[[], Session]:
    """Sessions inside the demo's transaction (the import opens one per chunk)."""
    connection = session.connection()
    return lambda: Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _lots(session: Session, member_ids: list[int]) -> dict[int, list[_Lot]]:
    """The members' lots as they are now, in the order the ledger spends them."""
    found: dict[int, list[_Lot]] = defaultdict(list)
    for start in range(0, len(member_ids), 500):
        rows = session.execute(
            select(
                Lot.member_id,
                Lot.id,
                Lot.earned_at,
                Lot.available_at,
                Lot.expires_at,
                Lot.remaining,
                Lot.state,
            ).where(Lot.member_id.in_(member_ids[start : start + 500]))
        )
        for member_id, lot_id, earned, available, expires, remaining, state in rows:
            found[member_id].append(
                _Lot(
                    lot_id,
                    _aware(earned),
                    _aware(available),
                    None if expires is None else _aware(expires),
                    int(remaining),
                    str(state),
                )
            )
    for lots in found.values():
        _order(lots)
    return found


def _order(lots: list[_Lot]) -> None:
    """`ledger._spendable`'s order: soonest-expiring first, never-expiring last, then id."""
    far = datetime.max.replace(tzinfo=UTC)
    lots.sort(key=lambda lot: (lot.expires_at is None, lot.expires_at or far, lot.id))


def _spendable_before(lots: list[_Lot], at: datetime) -> int:
    """Points the ledger would spend now that were also earned and spendable before `at`:
    only the leading lots of the spending order count (a later lot ahead of them would be
    drawn first)."""
    total = 0
    for lot in lots:
        if lot.state != LotState.ACTIVE or lot.remaining <= 0:
            continue
        if lot.earned_at >= at or lot.available_at > at:
            break
        total += lot.remaining
    return total


def _month_starts(first: datetime, last: datetime, zone: ZoneInfo) -> list[datetime]:
    local = first.astimezone(zone).date().replace(day=1)
    found: list[datetime] = []
    while True:
        local = (local + timedelta(days=32)).replace(day=1)
        start = datetime.combine(local, time(0), zone)
        if start > last:
            return found
        found.append(start)


def load(session: Session, today: date, zone: ZoneInfo, base: str) -> int:
    """Adds the early members and the redemptions; returns the redemptions made
    (0 when already loaded, or without demo_loyalty's catalog)."""
    if session.scalar(select(Member.id).where(Member.phone == EARLY_PHONE.format(n=1))):
        return 0
    tea = session.scalar(select(Reward).where(Reward.name == TEA_BOX, Reward.active))
    if tea is None:
        return 0
    rng = random.Random(SEED)  # noqa: S311 - demo data, not security
    actor = Actor.cli("retain demo")
    now = min(datetime.combine(today, time(9), zone), datetime.now(UTC))
    coffee_batch = coupons.create_batch(
        session,
        actor,
        name=COFFEE,
        kind="gift",
        gift="Two coffees at any store",
        currency=base,
        valid_days=60,
    )
    coffee = rewards.save(
        session,
        actor,
        name=COFFEE,
        points_cost=COFFEE_COST,
        batch_id=coffee_batch.id,
        description="Two coffees at any store",
    )
    costs = {tea.id: tea.points_cost, coffee.id: coffee.points_cost}

    # The early members: joined in the second half of the year before last, bought and
    # redeemed for a few months to a year, then lapsed. What they kept from that year falls
    # due on 1 January of the last full month's year (under the default expiry policy).
    last_full = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    start = datetime.combine(date(last_full.year - 2, 7, 1), time(10), zone)
    rows = ["source,external_id,occurred_at,amount,member_number,campaign_code,channel"]
    early: dict[int, datetime] = {}  # member → the day they lapsed
    for n in range(1, EARLY + 1):
        joined = start + timedelta(minutes=rng.randint(0, 165 * 24 * 60))
        member = members.create(
            session,
            actor,
            members.Profile(
                name=f"{rng.choice(EARLY_SURNAMES)} {rng.choice(EARLY_GIVEN)}",
                phone=EARLY_PHONE.format(n=n),
                region=rng.choice(["East", "North", "South", "West"]),
                marketing_consent=rng.random() < 0.5,
            ),
            zone=zone,
            at=joined,
        )
        lapsed = min(joined + timedelta(days=rng.randint(90, 480)), now)
        early[member.id] = lapsed
        spend = rng.lognormvariate(5.6, 0.6)  # a typical basket, in the base currency
        when = joined
        while True:
            when += timedelta(days=rng.randint(5, 40), hours=rng.randint(0, 9))
            if when >= lapsed:
                break
            amount = max(30, int(rng.gauss(spend, spend / 3)))
            rows.append(
                f"shop,E{n:04d}-{when:%Y%m%d%H%M},{when.astimezone(UTC).isoformat()},"
                f"{amount}.00,{member.number},,in_store"
            )
    session.flush()
    imports.import_purchases(
        _session_factory(session), actor, ("\n".join(rows) + "\n").encode(), base=base, zone=zone
    )
    session.expire_all()  # the import wrote through sessions of its own

    demo_member = session.scalar(select(Member.id).where(Member.email == DEMO_MEMBER_EMAIL))
    redeemers = list(
        session.scalars(
            select(Member.id)
            .where(Member.status == MemberStatus.ACTIVE, Member.id != (demo_member or 0))
            .order_by(Member.id)
        )
    )
    # Who ever redeems: most members of a real programme never do.
    redeemers = [m for m in redeemers if rng.random() < REDEEMERS]
    lots = _lots(session, redeemers)
    closed = set(periods.closed_months(session))

    # The timeline: weekly redemption evenings and the expiry run at each month's start.
    events: list[tuple[datetime, bool]] = [(at, True) for at in _month_starts(start, now, zone)]
    step = start + timedelta(days=7)
    while step < now:
        evening = datetime.combine(step.astimezone(zone).date(), time(19), zone)
        if evening < now:
            events.append((evening, False))
        step += timedelta(days=7)
    events.sort()

    made = 0
    for at, month_start in events:
        jobs.run(session, "unlock_pending", at, zone)
        if month_start:  # the nightly expiry run at the turn of the month
            jobs.run(session, "expire_lots", at, zone)
            touched = [m for m, held in lots.items() if any(_due(lot, at) for lot in held)]
            lots.update(_lots(session, touched))
            continue
        for held in lots.values():  # what the unlock run made spendable
            for lot in held:
                if lot.state == LotState.PENDING and lot.available_at <= at:
                    lot.state = LotState.ACTIVE
        if at.astimezone(zone).date().replace(day=1) in closed:
            continue
        made += _redeem_week(session, actor, rng, at, lots, costs, early)

    for name in ("unlock_pending", "expire_lots", "expire_coupons"):
        jobs.run(session, name, now, zone)
    session.flush()
    return made


def _due(lot: _Lot, at: datetime) -> bool:
    return (
        lot.state == LotState.ACTIVE
        and lot.remaining > 0
        and lot.expires_at is not None
        and lot.expires_at <= at
    )


def _redeem_week(
    session: Session,
    actor: Actor,
    rng: random.Random,
    at: datetime,
    lots: dict[int, list[_Lot]],
    costs: dict[int, int],
    lapsed: dict[int, datetime],
) -> int:
    """One evening's redemptions: each member who holds enough points earned before it
    redeems now and then (the bigger the balance, the likelier a tea box)."""
    made = 0
    tea, coffee = sorted(costs, key=lambda reward: -costs[reward])
    for member_id in sorted(lots):
        if member_id in lapsed and at > lapsed[member_id]:
            continue
        if rng.random() >= WEEKLY_CHANCE:
            continue
        spendable = _spendable_before(lots[member_id], at)
        if spendable < costs[coffee]:
            continue
        reward = (
            tea
            if spendable >= 2 * costs[tea] or (spendable >= costs[tea] and rng.random() < 0.4)
            else coffee
        )
        if _redeem(session, actor, member_id, reward, at):
            made += 1
            _spend(lots[member_id], costs[reward])
        else:  # refused or undone: read the lots again
            lots.update(_lots(session, [member_id]))
    return made


def _spend(lots: list[_Lot], points: int) -> None:
    """What the ledger's draw did to the lots (`plans.draw` in the spending order)."""
    for lot in lots:
        if points == 0:
            return
        if lot.state != LotState.ACTIVE or lot.remaining <= 0:
            continue
        take = min(points, lot.remaining)
        lot.remaining -= take
        points -= take
        if lot.remaining == 0:
            lot.state = LotState.SPENT


def _redeem(session: Session, actor: Actor, member_id: int, reward_id: int, at: datetime) -> bool:
    """Redeem in a savepoint; undone if the ledger drew any lot earned or spendable only
    after `at` (the history would then spend points before they existed)."""
    savepoint = session.begin_nested()
    try:
        done = rewards.redeem(
            session,
            actor,
            member_id,
            reward_id,
            key=f"demo-liability-{at:%Y%m%d}",
            at=at,
        )
    except RetainError:
        savepoint.rollback()
        return False
    later = session.scalar(
        select(LotDraw.id)
        .join(Lot, Lot.id == LotDraw.lot_id)
        .where(
            LotDraw.entry_id == done.entry.id,
            (Lot.earned_at >= at) | (Lot.available_at > at),
        )
        .limit(1)
    )
    if later is not None:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True
