"""Value runs from the database: facts loaded by SQL, the rules of the pure modules, stored.

One small shop with figures worked by hand, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import facts, runs
from analytics.models import MemberScore
from analytics.pyramid import LOW_CONTRIBUTION, MOST_VALUABLE
from analytics.rfm import NO_PURCHASE
from core.errors import NotFound, ValidationFailed
from loyalty import coupons, rewards
from loyalty.models import Member
from loyalty.purchases import Line
from tests.loyalty.conftest import ACTOR, BASE, T0, ZONE, Shop

D = Decimal


def local(n: int) -> date:
    return (T0 + timedelta(days=n)).astimezone(ZONE).date()


@dataclass
class Town:
    shop: Shop
    a: Member  # three purchase days, a coupon, a reward, categories
    b: Member  # joined, never bought
    c: Member  # one full-price purchase with a campaign code? no: plain


@pytest.fixture
def town(db: Session) -> Town:
    shop = Shop(db)
    shop.program(
        signup_bonus=0,
        first_purchase_bonus=0,
        repeat_bonus=0,
        birthday_points=0,
        point_value=D("0.05"),
        earn_rate=D(0),
    )
    a = shop.join("A", at=T0 - timedelta(days=1))
    b = shop.join("B", at=T0 - timedelta(days=1))
    c = shop.join("C", at=T0 - timedelta(days=1))
    food = Line("F1", 1, D("60"), "food")
    drink = Line("D1", 1, D("40"), "drink")
    shop.buy(a, "100", at=T0, lines=(food, drink))
    shop.buy(a, "50", at=T0 + timedelta(days=10), lines=(Line("F2", 1, D("50"), "food"),))
    shop.buy(a, "30", at=T0 + timedelta(days=10, hours=2), lines=(Line("T1", 1, D("30"), "toys"),))
    batch = coupons.create_batch(
        db, ACTOR, name="Five off", kind="fixed", value=D(5), currency=BASE, valid_days=90
    )
    coupon = coupons.issue(db, ACTOR, batch.id, a, reason="test", at=T0)
    shop.buy(a, "20", at=T0 + timedelta(days=20), discount=D(5), coupon_codes=(coupon.code,))
    shop.buy(c, "200", at=T0 + timedelta(days=5))
    gift = coupons.create_batch(
        db, ACTOR, name="Mug", kind="gift", gift="Mug", currency=BASE, valid_days=30
    )
    reward = rewards.save(db, ACTOR, name="Mug", points_cost=200, batch_id=gift.id)
    rewards.adjust(db, ACTOR, a.id, 1000, reason="Goodwill", key="g", at=T0, zone=ZONE)
    rewards.redeem(db, ACTOR, a.id, reward.id, key="r1", at=T0 + timedelta(days=21))
    db.flush()
    return Town(shop, a, b, c)


def params(**changes: object) -> runs.ValueParams:
    return runs.ValueParams(as_of=local(30), **changes)  # type: ignore[arg-type]


def test_the_daily_facts_merge_a_day_and_flag_discounts(db: Session, town: Town) -> None:
    window = facts.Window(local(30), 365, ZONE)
    daily = facts.daily(db, window)
    a = daily[daily["customer_id"] == town.a.id]
    assert a["ticks"].tolist() == [100 * facts.TICKS, 80 * facts.TICKS, 20 * facts.TICKS]
    assert a["discounted"].tolist() == [0, 0, 1]
    assert [d.date() for d in a["date"]] == [local(0), local(10), local(20)]
    costs = facts.period_costs(db, window)
    assert costs.loc[town.a.id, "coupon_ticks"] == 5 * facts.TICKS
    assert costs.loc[town.a.id, "points_redeemed"] == 200
    assert town.b.id not in daily["customer_id"].tolist()


def test_a_run_scores_each_member_by_the_hand_worked_figures(db: Session, town: Town) -> None:
    computed = runs.compute(db, params(), base=BASE, zone=ZONE)
    s = computed.scores
    a, b, c = s.loc[town.a.id], s.loc[town.b.id], s.loc[town.c.id]
    # Pyramid: margin 30% on 205 (the coupon's 5 added back) less the coupon 5 and
    # 200 points × 0.05 = 10.
    assert a["net_purchases"] == D("205.00") and a["cost_to_serve"] == D("15.00")
    assert a["value"] == D("46.50")
    assert c["value"] == D("60.00") and b["value"] == D("0.00")
    # Top 50% of the positive value (106.50): C alone holds 60 ≥ 53.25.
    assert c["layer"] == MOST_VALUABLE
    assert b["layer"] == LOW_CONTRIBUTION and b["predicted_value"] is None
    # RFM and history.
    assert (a["purchases"], a["last_purchase"], a["monetary"]) == (3, local(20), D("200.00"))
    assert b["rfm_segment"] == NO_PURCHASE and pd.isna(b["r"])
    # CLV parts: first day 100; toys 30 beyond food/drink; repeat so far 200 − 100 − 30.
    assert a["clv1"] == D("100.00") and a["clv3"] == D("30.00")
    predicted = a["predicted_value"]
    assert a["clv2"] == D("70.00") + predicted
    # CLV6: program full-price share (180 + 200) / 400 = 0.95.
    assert a["clv6"] == D("-10.00") and c["clv6"] == D("10.00")
    for row in (a, b, c):
        parts = sum((row[f"clv{i}"] for i in range(1, 7)), D(0))
        assert parts == row["clv_total"]
    assert computed.summary["full_price_share"] == "0.950000"
    assert computed.params["point_value"] == "0.0500"


def test_a_run_is_stored_and_read_back(db: Session, town: Town) -> None:
    first = runs.run(db, ACTOR, params(), base=BASE, zone=ZONE)
    second = runs.run(db, ACTOR, params(margin=D("0.5")), base=BASE, zone=ZONE)
    assert runs.latest_run(db) is second and runs.get_run(db, first.id) is first
    stored = runs.scores(db, second.id)
    assert stored.loc[town.c.id, "value"] == D("100.00")
    again = runs.compute(db, params(margin=D("0.5")), base=BASE, zone=ZONE).scores
    assert stored["clv_total"].map(Decimal).tolist() == again["clv_total"].map(Decimal).tolist()
    assert stored["layer"].tolist() == again["layer"].tolist()
    count = db.scalar(select(func.count()).where(MemberScore.run_id == first.id))
    assert count == first.members == 3
    with pytest.raises(NotFound):
        runs.get_run(db, 999_999)


def test_as_of_cuts_what_is_read(db: Session, town: Town) -> None:
    early = runs.compute(db, runs.ValueParams(as_of=local(5)), base=BASE, zone=ZONE).scores
    assert early.loc[town.a.id, "purchases"] == 1
    assert early.loc[town.a.id, "monetary"] == D("100.00")
    assert early.loc[town.c.id, "purchases"] == 1  # bought on day 5: the as-of day counts


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"period_days": 7}, "value.period_days"),
        ({"margin": D("1.5")}, "value.margin"),
        ({"top_share": D(0)}, "value.top_share"),
        ({"growth_factor": D("0.5")}, "value.growth_factor"),
        ({"horizon_months": 0}, "value.horizon_months"),
        ({"point_value": D(-1)}, "value.point_value"),
    ],
)
def test_parameters_are_held_to_their_bounds(changes: dict[str, object], code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        runs.ValueParams(**changes)  # type: ignore[arg-type]
    assert caught.value.code == code


def test_an_empty_program_gives_an_empty_run(db: Session) -> None:
    computed = runs.compute(db, params(), base=BASE, zone=ZONE)
    assert computed.scores.empty and "note" in computed.fit
