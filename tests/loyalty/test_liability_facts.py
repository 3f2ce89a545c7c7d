"""The points liability's facts on both databases: in points, the roll-forward is the ledger.

A small shop over five months (Shanghai time) with every kind of movement: sign-up bonuses,
purchases whose points wait out the return window (some across a month's end), rewards,
a refund that takes back points already spent (the balance goes negative and a later lot pays
it back), a refund of pending points, manual adjustments both ways, expiry by the nightly job,
and a purchase made on the last evening of a month in UTC that is the next month locally.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty import liability, liability_facts
from loyalty import rewards as catalog
from loyalty.models import LedgerEntry, Lot, LotState, Member
from tests.loyalty.conftest import ACTOR, BASE, ZONE, Shop
from tests.loyalty.test_rewards import make_reward

UNTIL = date(2026, 5, 31)


def at(month: int, day: int, hour: int = 4) -> datetime:
    """A time in 2026, given in UTC (04:00 UTC is noon in Shanghai)."""
    return datetime(2026, month, day, hour, tzinfo=UTC)


def adjust(shop: Shop, member: Member, points: int, when: datetime, key: str) -> None:
    catalog.adjust(
        shop.db, ACTOR, member.id, points, reason="Correction", key=key, at=when, zone=ZONE
    )


def history(shop: Shop) -> dict[str, Member]:
    """Five months of a small shop; returns its members."""
    shop.program(expiry_policy="days_after_active", expiry_n=40)
    reward = make_reward(shop, cost=300)
    big = make_reward(shop, cost=400)
    ann = shop.join("Ann", at=at(1, 5))  # sign-up bonus 100, active at once
    bob = shop.join("Bob", at=at(1, 5))
    cat = shop.join("Cat", at=at(1, 20))
    shop.buy(ann, "500", at=at(1, 10), ext="ANN-1")  # 500 + 200 first purchase, pending
    shop.jobs(at(1, 18), "unlock_pending")
    catalog.redeem(shop.db, ACTOR, ann.id, reward.id, key="a1", at=at(1, 25))
    # 17:30 UTC on 31 January is 01:30 on 1 February in Shanghai: a February purchase.
    shop.buy(bob, "300", at=datetime(2026, 1, 31, 17, 30, tzinfo=UTC), ext="BOB-1")
    catalog.redeem(shop.db, ACTOR, ann.id, big.id, key="a2", at=at(2, 2))
    # Ann returns everything: 700 points back, but only 100 are left of that purchase's lot
    # and she holds nothing else, so she owes 600 (her balance goes to −600).
    shop.refund("ANN-1", None, at=at(2, 5))
    adjust(shop, bob, 50, at(2, 6), "b-plus")
    shop.jobs(at(2, 10), "unlock_pending")
    adjust(shop, bob, -30, at(2, 11), "b-minus")
    shop.jobs(at(2, 20), "unlock_pending", "expire_lots")  # the sign-up lots of 5 January
    shop.buy(ann, "1000", at=at(3, 1), ext="ANN-2")  # pending until 8 March
    shop.buy(cat, "250", at=at(3, 3), ext="CAT-1")
    shop.jobs(at(3, 10), "unlock_pending")  # Ann's new lot pays back the 600 she owed
    shop.buy(cat, "400", at=at(3, 28), ext="CAT-2")  # pending at the end of March
    shop.refund("CAT-2", "100", at=at(3, 30))  # a quarter of its pending points back
    catalog.redeem(shop.db, ACTOR, cat.id, reward.id, key="c1", at=at(3, 31))
    shop.jobs(at(4, 6), "unlock_pending")
    adjust(shop, ann, -2000, at(4, 8), "a-minus")  # more than she holds: she owes again
    shop.jobs(at(4, 30), "unlock_pending", "expire_lots")
    shop.buy(bob, "800", at=at(5, 2), ext="BOB-2")
    shop.jobs(at(5, 12), "unlock_pending")
    catalog.redeem(shop.db, ACTOR, bob.id, big.id, key="b1", at=at(5, 15))
    shop.jobs(at(5, 28), "unlock_pending", "expire_lots")
    for member in (ann, bob, cat):
        shop.check(member)
    return {"ann": ann, "bob": bob, "cat": cat}


def ledger_points_before(db: Session, end: datetime) -> int:
    total = db.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(LedgerEntry.occurred_at < end)
    )
    return int(total or 0)


def test_the_roll_forward_in_points_is_the_ledger_every_month(shop: Shop) -> None:
    members = history(shop)
    facts = liability_facts.load(shop.db, ZONE, UNTIL, base=BASE)
    months = facts.months
    assert [liability.month_of(m) for m in months["month"]] == [
        date(2026, m, 1) for m in range(1, 6)
    ]
    expectations = liability.expected_rates(facts.flows, list(months["month"]), min_history=0)
    rates = {m: e.rate for m, e in expectations.items()}
    allocated = liability.allocated_values(months, Decimal("0.01"), rates, places=2)
    frame = liability.roll_forward(
        months,
        facts.flows,
        rates,
        allocated,
        places=2,
        curves={m: e.estimate for m, e in expectations.items()},
    )

    opening = 0
    for row in frame.to_dict("records"):
        month = row["month"]
        end = liability_facts.month_end(month, ZONE)
        # closing = opening + movements = Σ ledger points up to the month's (local) end
        assert row["opening_points"] == opening
        moved = (
            row["issued_points"]
            - row["redeemed_points"]
            - row["expired_points"]
            - row["reversed_points"]
            - row["forfeited_points"]
        )
        assert row["closing_points"] == opening + moved
        assert row["closing_points"] == ledger_points_before(shop.db, end), month
        assert row["held_points"] - row["owed_points"] == row["closing_points"]
        opening = row["closing_points"]

    by_month = {row["month"]: row for row in frame.to_dict("records")}
    jan, feb, mar, apr, may = (by_month[date(2026, m, 1)] for m in range(1, 6))
    # Bob's purchase at 01:30 on 1 February local time counts in February.
    assert jan["issued_points"] == 100 * 3 + 700
    assert feb["issued_points"] == 500 + 50
    assert feb["reversed_points"] == 700 and feb["forfeited_points"] == 30
    assert feb["owed_points"] == 600  # Ann's debt, paid back in March
    assert mar["owed_points"] == 0
    assert feb["expired_points"] > 0 and apr["expired_points"] + may["expired_points"] > 0
    assert apr["forfeited_points"] == 2000
    assert mar["reversed_points"] == 100  # a quarter of Cat's 400 pending points
    assert sum(frame["redeemed_points"]) == 300 + 400 + 300 + 400

    # The last month ends where the members stand today.
    members_now = shop.db.scalars(select(Member)).all()
    lots = shop.db.scalars(
        select(Lot).where(Lot.state.in_([LotState.PENDING, LotState.ACTIVE]))
    ).all()
    assert may["closing_points"] == sum(m.balance for m in members_now)
    assert may["owed_points"] == sum(m.debt for m in members_now) > 0
    assert may["held_points"] == sum(lot.remaining for lot in lots)
    assert shop.fresh(members["ann"]).debt == 1_600  # the 2,000 taken less the 400 she held

    # Every kind of cohort flow happened; Ann's March lot paid back the 600 she owed.
    flows = facts.flows
    for name in liability.FLOW_COLUMNS[2:]:
        assert flows[name].sum() > 0, name
    march = date(2026, 3, 1)
    paid = flows[(flows["cohort"] == march) & (flows["month"] == march)]
    assert list(paid["settled"]) == [600]


def test_sales_and_sold_points_feed_the_allocation(shop: Shop) -> None:
    history(shop)
    months = liability_facts.month_facts(shop.db, ZONE, UNTIL, base=BASE)
    by_month = {liability.month_of(r["month"]): r for r in months.to_dict("records")}
    assert by_month[date(2026, 1, 1)]["sales"] == Decimal("500.00")
    assert by_month[date(2026, 1, 1)]["sold"] == 700
    assert by_month[date(2026, 2, 1)]["sales"] == Decimal("300.00")
    assert by_month[date(2026, 3, 1)]["sales"] == Decimal("1650.00")
    assert by_month[date(2026, 4, 1)]["sales"] == Decimal(0)


def test_the_report_balances_and_its_journal_follows_it(shop: Shop) -> None:
    history(shop)
    made = liability_facts.report(shop.db, ZONE, UNTIL, base=BASE, min_history=1)
    frame = made.frame
    assert not frame.empty
    journal = made.journal
    assert sum(journal["debit"]) == sum(journal["credit"])
    for row in frame.to_dict("records"):
        assert row["closing_value"] >= 0
        assert row["current_value"] + row["non_current_value"] == row["closing_value"]
        lines = journal[journal["entry"].str.startswith(f"LOY-{row['month']:%Y-%m}")]
        liability_lines = lines[lines["account"] == liability.CONTRACT_LIABILITY]
        change = sum(liability_lines["credit"]) - sum(liability_lines["debit"])
        assert change == row["closing_value"] - row["opening_value"]
    assert made.estimate is not None
    assert "Additive development" in made.estimate.describe()


def test_an_empty_ledger_has_no_months(db: Session) -> None:
    facts = liability_facts.load(db, ZONE, UNTIL, base=BASE)
    assert facts.months.empty and facts.flows.empty
    made = liability_facts.report(db, ZONE, UNTIL, base=BASE)
    assert made.frame.empty and made.journal.empty and made.estimate is None


@pytest.mark.parametrize("hours", [0, 15, 16])
def test_months_are_local(shop: Shop, hours: int) -> None:
    """An entry at 15:59 UTC on the last day is that day in Shanghai; 16:00 is the next."""
    shop.join("Dee", at=datetime(2026, 1, 31, hours, 59 if hours == 15 else 0, tzinfo=UTC))
    months = liability_facts.month_facts(shop.db, ZONE, UNTIL, base=BASE)
    first = liability.month_of(months["month"].iloc[0])
    assert first == (date(2026, 2, 1) if hours == 16 else date(2026, 1, 1))
    flows = liability_facts.cohort_flows(shop.db, ZONE, UNTIL)
    assert liability.month_of(flows["cohort"].iloc[0]) == first


def test_a_refund_recorded_late_but_dated_before_a_later_lot_is_owed_until_it(
    shop: Shop,
) -> None:
    """Buy in January, spend it all in February, buy in March, then record a refund of the
    January purchase dated in February: it draws on the March lot (the points were owed
    until then). The report runs and still is the ledger in points every month."""
    reward = make_reward(shop, cost=700)
    dan = shop.join("Dan", at=at(1, 5))
    shop.buy(dan, "500", at=at(1, 10), ext="DAN-1")
    shop.jobs(at(1, 18), "unlock_pending")
    catalog.redeem(shop.db, ACTOR, dan.id, reward.id, key="d1", at=at(2, 2))
    shop.buy(dan, "900", at=at(3, 1), ext="DAN-2")
    shop.jobs(at(3, 10), "unlock_pending")
    shop.refund("DAN-1", None, at=at(2, 20))
    made = liability_facts.report(shop.db, ZONE, UNTIL, base=BASE, min_history=1)
    rows = made.frame.to_dict("records")
    assert rows
    for row in rows:
        end = liability_facts.month_end(row["month"], ZONE)
        assert row["closing_points"] == ledger_points_before(shop.db, end), row["month"]
