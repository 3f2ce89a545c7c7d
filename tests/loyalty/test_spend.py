"""A member's purchases and lifetime spend (`loyalty.spend`): net of refunds, in the base
currency, as booked when each purchase and refund was recorded. The expected figures are
booked here by hand: amount × rate, rounded half up to the cent; a refund's share of its
purchase's booked amount the same way, the last one taking what is left."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session

from campaigns import rates
from loyalty import spend
from tests.campaigns.conftest import Staff, make_campaign
from tests.loyalty.conftest import BASE, T0, Shop

RATE = Decimal("7.1234")
CENT = Decimal("0.01")


def booked(amount: str) -> Decimal:
    return (Decimal(amount) * RATE).quantize(CENT, ROUND_HALF_UP)


def test_lifetime_spend_is_bought_less_refunded_as_booked(
    shop: Shop, db: Session, staff: Staff
) -> None:
    rates.set_rate(db, staff.finance, "USD", T0.date() - timedelta(days=1), RATE, BASE)
    make_campaign(db, staff)
    member = shop.join("Li Lei")
    other = shop.join("Han Meimei")
    shop.buy(member, "100.00", ext="C1", campaign_code="SPRING26")
    shop.buy(member, "10.50", ext="U1", currency="USD", at=T0 + timedelta(hours=1))
    shop.buy(member, "3.00", ext="U2", currency="USD", at=T0 + timedelta(hours=2))
    shop.buy(other, "999.00", ext="X1")  # someone else's
    shop.buy(None, "50.00", ext="G1")  # a guest's
    shop.refund("C1", "30.00", at=T0 + timedelta(days=1))
    shop.refund("U1", "5.25", at=T0 + timedelta(days=1))
    shop.refund("U2", "1.00", at=T0 + timedelta(days=1))
    shop.refund("U2", None, at=T0 + timedelta(days=2))  # the rest: 2.00

    found = spend.of_member(db, member.id)

    u1, u2 = booked("10.50"), booked("3.00")
    assert (u1, u2) == (Decimal("74.80"), Decimal("21.37"))
    u1_back = (u1 * Decimal("5.25") / Decimal("10.50")).quantize(CENT, ROUND_HALF_UP)
    u2_first = (u2 * Decimal("1.00") / Decimal("3.00")).quantize(CENT, ROUND_HALF_UP)
    u2_rest = u2 - u2_first  # the last refund takes exactly what is left
    assert (found.purchases, found.refunds) == (3, 4)
    assert found.sold == Decimal("100.00") + u1 + u2
    assert found.refunded == Decimal("30.00") + u1_back + u2_first + u2_rest
    assert found.lifetime == found.sold - found.refunded == Decimal("70.00") + (u1 - u1_back)
    assert found.lifetime == Decimal("107.40")
    newest_first = [b.external_id for b in found.recent]
    assert newest_first == ["U2", "U1", "C1"]
    by_id = {b.external_id: b for b in found.recent}
    assert (by_id["C1"].campaign_code, by_id["U1"].campaign_code) == ("SPRING26", None)
    assert (by_id["U1"].amount, by_id["U1"].currency, by_id["U1"].base_amount) == (
        Decimal("10.50"),
        "USD",
        u1,
    )
    assert (by_id["U1"].refunds, by_id["U1"].refunded_amount) == (1, Decimal("5.25"))
    assert by_id["U1"].refunded_base == u1_back and by_id["U1"].net_base_amount == u1 - u1_back
    assert (by_id["U2"].refunds, by_id["U2"].net_base_amount, by_id["U2"].state) == (
        2,
        Decimal(0),
        "refunded",
    )
    # 1 point per CNY and the first-purchase bonus; a refund of 30% takes back 30% of them.
    assert (by_id["C1"].points_earned, by_id["C1"].points_reversed) == (100 + 200, 90)
    assert sum((b.net_base_amount for b in found.recent), Decimal(0)) == found.lifetime


def test_a_member_without_purchases_spent_nothing_and_the_list_is_cut(shop: Shop) -> None:
    member = shop.join()
    assert spend.of_member(shop.db, member.id) == spend.Spend(
        0, 0, Decimal(0), Decimal(0), Decimal(0), []
    )
    for n in range(3):
        shop.buy(member, "10", ext=f"P{n}", at=T0 + timedelta(minutes=n))
    found = spend.of_member(shop.db, member.id, recent=2)
    assert found.purchases == 3 and [b.external_id for b in found.recent] == ["P2", "P1"]
    assert found.lifetime == Decimal(30)
