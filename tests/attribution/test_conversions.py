"""Conversions from the database: members' purchases at their net booked base amount, the
first one an acquisition, optional sign-ups, the period filtered in SQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pandas as pd
from sqlalchemy import func, select

from attribution import conversions
from campaigns import rates
from loyalty.models import Purchase, Refund
from tests.attribution.conftest import World, day


def rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    return [
        (int(m), at.to_pydatetime(), v, k)
        for m, at, v, k in frame[["member", "at", "value", "kind"]].itertuples(index=False)
    ]


def test_purchases_at_their_net_booked_value_first_one_an_acquisition(world: World) -> None:
    li = world.join("Li", at=day(-30))
    han = world.join("Han", at=day(-30))
    world.buy(li, "100.00", at=day(0), ext="L1")
    world.buy(li, "250.00", at=day(1), ext="L2")
    world.refund("L2", "50.00", at=day(2))  # partly: value 200
    world.buy(han, "80.00", at=day(0), ext="H1")
    world.refund("H1", None, at=day(1))  # fully: no conversion; Han's next is the first
    world.buy(han, "90.00", at=day(3), ext="H2")
    world.buy(None, "70.00", at=day(3), ext="G1")  # a guest: no journey

    frame = conversions.frame(world.db)
    assert list(frame.columns) == ["member", "at", "value", "kind"]
    assert str(frame["at"].dtype) == "datetime64[us, UTC]"
    assert rows(frame) == [
        (li.id, day(0), Decimal("100.0000"), "first_purchase"),
        (li.id, day(1), Decimal("200.0000"), "purchase"),
        (han.id, day(3), Decimal("90.0000"), "first_purchase"),
    ]
    # The period: [start, end), and the first purchase is judged over all history.
    later = conversions.frame(world.db, start=day(1), end=day(3))
    assert rows(later) == [(li.id, day(1), Decimal("200.0000"), "purchase")]


def test_foreign_purchases_count_their_booked_base_amount_less_refunds(world: World) -> None:
    rates.set_rate(world.db, world.staff.finance, "USD", day(-1).date(), Decimal("7.1234"), "CNY")
    li = world.join("Li", at=day(-30))
    world.buy(li, "101.58", at=day(0), ext="U1", currency="USD")
    world.refund("U1", "33.33", at=day(1))
    purchase = world.db.scalars(select(Purchase).where(Purchase.external_id == "U1")).one()
    refunded = world.db.scalar(
        select(func.sum(Refund.base_amount)).where(Refund.purchase_id == purchase.id)
    ) or Decimal(0)
    assert purchase.base_amount == Decimal("723.59")  # 101.58 × 7.1234 = 723.594972, booked
    [(_, _, value, _)] = rows(conversions.frame(world.db))
    assert value == purchase.base_amount - refunded == purchase.net_base_amount


def test_sign_ups_are_optional_acquisitions_worth_nothing(world: World) -> None:
    li = world.join("Li", at=day(0))
    world.buy(li, "100.00", at=day(0), ext="L1")  # at the sign-up's instant: after it
    han = world.join("Han", at=day(5))
    assert rows(conversions.frame(world.db)) == [
        (li.id, day(0), Decimal("100.0000"), "first_purchase")
    ]
    assert rows(conversions.frame(world.db, include_signups=True)) == [
        (li.id, day(0), Decimal(0), "signup"),
        (li.id, day(0), Decimal("100.0000"), "first_purchase"),
        (han.id, day(5), Decimal(0), "signup"),
    ]
    assert rows(
        conversions.frame(
            world.db, start=day(1), end=day(5) + timedelta(seconds=1), include_signups=True
        )
    ) == [(han.id, day(5), Decimal(0), "signup")]


def test_no_conversions_is_an_empty_frame_of_the_right_types(world: World) -> None:
    frame = conversions.frame(world.db, include_signups=True)
    assert frame.empty and str(frame["at"].dtype) == "datetime64[us, UTC]"
    assert str(frame["member"].dtype) == "int64"
