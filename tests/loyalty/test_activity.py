"""Loyalty activity by month (`loyalty.activity`): points issued, redeemed, expired and
reversed, new members and the redemption rate, each in the month of its local date in the
display zone (summer time included), checked against figures worked out by hand and against
a plain-Python bucketing of every ledger entry."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.audit import Actor
from loyalty import activity, members, rewards
from loyalty.models import LedgerEntry, Member, MemberStatus
from tests.loyalty.conftest import ACTOR, ZONE, Shop
from tests.loyalty.test_rewards import make_reward

LONDON = ZoneInfo("Europe/London")
SIGNS = {"earn": 1, "bonus": 1, "redeem": -1, "expire": -1, "reverse": -1, "adjust": 1}
NAMES = {
    "earn": "issued",
    "bonus": "issued",
    "redeem": "redeemed",
    "expire": "expired",
    "reverse": "reversed",
    "adjust": "adjusted",
}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def by_hand(shop: Shop, zone: ZoneInfo) -> dict[date, dict[str, int]]:
    """Every entry and member bucketed in Python (`astimezone`), the SQL's independent twin."""
    months: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for at, kind, points in shop.db.execute(
        select(LedgerEntry.occurred_at, LedgerEntry.type, LedgerEntry.points)
    ):
        months[at.astimezone(zone).date().replace(day=1)][NAMES[kind]] += SIGNS[kind] * points
    for (joined,) in shop.db.execute(select(Member.joined_at)):
        months[joined.astimezone(zone).date().replace(day=1)]["new_members"] += 1
    return months


def figures(m: activity.MonthActivity) -> dict[str, int]:
    names = ("issued", "redeemed", "expired", "reversed", "adjusted", "new_members")
    return {n: getattr(m, n) for n in names if getattr(m, n)}


def test_redemption_rate() -> None:
    assert activity.redemption_rate(150, 300) == Decimal("50.0")
    assert activity.redemption_rate(150, 700) == Decimal("21.4")  # 21.428…
    assert activity.redemption_rate(1, 16) == Decimal("6.3")  # 6.25, half-up
    assert activity.redemption_rate(500, 200) == Decimal("250.0")  # earlier months' points
    assert activity.redemption_rate(0, 10) == Decimal("0.0")
    assert activity.redemption_rate(0, 0) is None


@pytest.fixture
def spring(shop: Shop) -> tuple[Member, Member]:
    """Program: 1 point per CNY, sign-up bonus 100, no first-purchase bonus, points expire
    10 days after they become active, 7-day return window. Shanghai is UTC+8.

    - A joins 2026-03-31 15:59:59Z (23:59:59 on 31 March in Shanghai): +100, March.
    - A buys 300.00 at 15:00Z on 31 March (23:00 local): +300 earned, March.
    - B joins 16:00:00Z on 31 March (00:00 on 1 April local): +100, April.
    - A's purchase is refunded 100.00 (a third) at 02:00Z on 1 April: 100 reversed, April.
    - B buys 200.00 on 2 April: +200, April.
    - 9 April: pending lots unlock; A spends 150 on a reward (drawn from the soonest-expiring
      lot: the 100 of the sign-up, then 50 of the purchase): 150 redeemed, April.
    - 10 April 16:00Z: B's sign-up lot (active since 31 March 16:00Z) is 10 days old: 100
      expire; A's sign-up lot is spent, nothing of it expires.

    March: issued 400, 1 new member. April: issued 300, reversed 100, redeemed 150, expired
    100, 1 new member; redemption rate 150 ÷ 300 = 50.0%. Over the twelve months: issued
    700, redeemed 150: 21.4%."""
    shop.program(first_purchase_bonus=0, expiry_policy="days_after_active", expiry_n=10)
    a = shop.join("A", at=utc(2026, 3, 31, 15, 59, 59))
    shop.buy(a, "300.00", at=utc(2026, 3, 31, 15), ext="A1")
    b = shop.join("B", at=utc(2026, 3, 31, 16))
    shop.refund("A1", "100.00", at=utc(2026, 4, 1, 2))
    shop.buy(b, "200.00", at=utc(2026, 4, 2, 4))
    shop.jobs(utc(2026, 4, 9, 5), "unlock_pending")
    reward = make_reward(shop, cost=150)
    rewards.redeem(shop.db, ACTOR, a.id, reward.id, key="spring", at=utc(2026, 4, 9, 6))
    assert shop.jobs(utc(2026, 4, 10, 16), "expire_lots")["expire_lots"]["done"] == 1
    shop.check(a), shop.check(b)
    return a, b


def test_monthly_figures_across_a_month_boundary_in_the_zone(
    shop: Shop, spring: tuple[Member, Member]
) -> None:
    found = activity.activity(shop.db, ZONE, date(2026, 4, 20))
    assert [f"{m.month:%Y-%m}" for m in found.months] == [
        *(f"2025-{n:02d}" for n in range(5, 13)),
        *(f"2026-{n:02d}" for n in range(1, 5)),
    ]
    assert found.this_month.month == date(2026, 4, 1)
    march, april = found.months[-2], found.months[-1]
    assert march.month == date(2026, 3, 1)
    assert figures(march) == {"issued": 400, "new_members": 1}
    assert figures(april) == {
        "issued": 300,
        "redeemed": 150,
        "expired": 100,
        "reversed": 100,
        "new_members": 1,
    }
    assert march.redemption_rate == Decimal("0.0")
    assert april.redemption_rate == Decimal("50.0")
    assert all(figures(m) == {} and m.redemption_rate is None for m in found.months[:-2])
    year = found.trailing
    assert (year.issued, year.redeemed, year.new_members) == (700, 150, 2)
    assert year.redemption_rate == Decimal("21.4")
    assert found.active_members == 2
    # The same figures bucketed in Python, and each month's net is its entries' sum.
    expected = by_hand(shop, ZONE)
    for m in found.months:
        assert figures(m) == {k: v for k, v in expected.get(m.month, {}).items() if v}, m.month
    assert april.net == 300 - 150 - 100 - 100


def test_months_follow_summer_time_and_the_span_starts_at_local_midnight(shop: Shop) -> None:
    """Europe/London: GMT (UTC+0) until 29 March 2026 and from 25 October 2025, BST (UTC+1)
    between. Each member's sign-up bonus is 100 points, issued when they join.

    - 2025-04-30 22:59:59Z is 23:59:59 on 30 April (BST): before the twelve months ending with
      April 2026, not counted; 23:00:00Z is midnight on 1 May: May.
    - 2025-09-30 23:30Z is 00:30 on 1 October (BST): October; 2025-10-31 23:30Z is 23:30 on
      31 October (GMT): October too.
    - 2026-01-31 23:30Z is January (GMT); 2026-03-31 22:30Z is 23:30 on 31 March (BST):
      March; 23:30Z is 00:30 on 1 April: April.

    In Shanghai (UTC+8, no summer time) the same instants fall in May 2025 (both of the
    first two), October, November, February, April and April."""
    for n, at in enumerate(
        (
            utc(2025, 4, 30, 22, 59, 59),
            utc(2025, 4, 30, 23),
            utc(2025, 9, 30, 23, 30),
            utc(2025, 10, 31, 23, 30),
            utc(2026, 1, 31, 23, 30),
            utc(2026, 3, 31, 22, 30),
            utc(2026, 3, 31, 23, 30),
        )
    ):
        shop.join(f"M{n}", at=at)
    today = date(2026, 4, 15)

    def joined(zone: ZoneInfo) -> dict[str, tuple[int, int]]:
        found = activity.activity(shop.db, zone, today)
        return {
            f"{m.month:%Y-%m}": (m.new_members, m.issued) for m in found.months if m.new_members
        }

    assert joined(LONDON) == {
        "2025-05": (1, 100),
        "2025-10": (2, 200),
        "2026-01": (1, 100),
        "2026-03": (1, 100),
        "2026-04": (1, 100),
    }
    assert joined(ZONE) == {
        "2025-05": (2, 200),
        "2025-10": (1, 100),
        "2025-11": (1, 100),
        "2026-02": (1, 100),
        "2026-04": (2, 200),
    }
    for zone in (LONDON, ZONE):
        expected = by_hand(shop, zone)
        for m in activity.activity(shop.db, zone, today).months:
            assert figures(m) == {k: v for k, v in expected[m.month].items() if v}, (zone, m)


def test_active_members_leave_out_suspended_and_closed(shop: Shop) -> None:
    kept, suspended, closed = (shop.join(n) for n in ("Kept", "Suspended", "Closed"))
    members.set_status(shop.db, Actor.system(), suspended.id, MemberStatus.SUSPENDED, "test")
    members.close(shop.db, Actor.system(), closed.id)
    found = activity.activity(shop.db, ZONE, date(2026, 3, 10))
    assert found.active_members == 1
    assert found.this_month.new_members == 3  # joining is history: all three joined in March
    assert kept.status == MemberStatus.ACTIVE
