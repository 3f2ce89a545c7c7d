"""What a member has bought and spent, for the staff member page: their latest purchases with
amounts, refunds and points, and their lifetime spend.

Lifetime spend is net of refunds, in the base currency, as booked: the sum of the purchases'
`net_base_amount` (each purchase's base amount booked once when it was recorded, less its
refunds' booked base amounts, `plans.refund`). Nothing is converted or rounded here, so the
figure adds up to the cent with every other report that sums booked amounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from loyalty.models import Purchase, Refund

RECENT = 20  # purchases listed on the page


@dataclass(frozen=True, slots=True)
class Bought:
    """One purchase as the member page lists it."""

    id: int
    occurred_at: datetime
    external_id: str
    store: str | None
    amount: Decimal  # paid, in `currency`
    currency: str
    base_amount: Decimal  # booked in the base currency when recorded
    refunds: int  # how many refunds it had
    refunded_amount: Decimal  # in `currency`
    refunded_base: Decimal  # the refunds' booked base amounts
    net_base_amount: Decimal  # base_amount - refunded_base
    points_earned: int
    points_reversed: int
    state: str
    campaign_code: str | None


@dataclass(frozen=True, slots=True)
class Spend:
    purchases: int  # every purchase of the member's
    refunds: int
    sold: Decimal  # purchases' booked base amounts
    refunded: Decimal  # refunds' booked base amounts
    lifetime: Decimal  # net of refunds: sold - refunded, the sum of net base amounts
    recent: list[Bought]  # the latest, newest first


def of_member(session: Session, member_id: int, *, recent: int = RECENT) -> Spend:
    """The member's purchase counts, booked totals and lifetime spend, and their latest
    `recent` purchases (newest first)."""
    purchases, sold, lifetime = session.execute(
        select(
            func.count(Purchase.id),
            func.coalesce(func.sum(Purchase.base_amount), 0),
            func.coalesce(func.sum(Purchase.net_base_amount), 0),
        ).where(Purchase.member_id == member_id)
    ).one()
    refunds, refunded = session.execute(
        select(func.count(Refund.id), func.coalesce(func.sum(Refund.base_amount), 0))
        .join(Purchase, Purchase.id == Refund.purchase_id)
        .where(Purchase.member_id == member_id)
    ).one()
    counted = (
        select(func.count(Refund.id))
        .where(Refund.purchase_id == Purchase.id)
        .correlate(Purchase)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Purchase, Campaign.code, counted)
        .outerjoin(Campaign, Campaign.id == Purchase.campaign_id)
        .where(Purchase.member_id == member_id)
        .order_by(Purchase.occurred_at.desc(), Purchase.id.desc())
        .limit(recent)
    ).all()
    return Spend(
        purchases=int(purchases),
        refunds=int(refunds),
        sold=Decimal(sold),
        refunded=Decimal(refunded),
        lifetime=Decimal(lifetime),
        recent=[
            Bought(
                id=p.id,
                occurred_at=p.occurred_at,
                external_id=p.external_id,
                store=p.store,
                amount=p.amount,
                currency=p.currency,
                base_amount=p.base_amount,
                refunds=int(n or 0),
                refunded_amount=p.refunded_amount,
                refunded_base=p.base_amount - p.net_base_amount,
                net_base_amount=p.net_base_amount,
                points_earned=p.points_earned,
                points_reversed=p.points_reversed,
                state=p.state,
                campaign_code=code,
            )
            for p, code, n in rows
        ],
    )
