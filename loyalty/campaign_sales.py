"""A campaign's purchase revenue, for its page: the part of its ROI revenue that comes from
purchases carrying its code or coupon (`loyalty.reports.purchase_revenue`).

Lifetime figures, summed exactly as the report sums them (`report_data.booked_groups` over the
base amounts booked when each purchase and refund was recorded): net = purchases' booked base
amounts less refunds' booked base amounts, so this net plus the campaign's revenue records
equals the campaign's revenue in the ROI report to the cent. No exchange rate is read: every
amount here was booked when it was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from campaigns import report_data
from loyalty.models import Member, Purchase, Refund

RECENT = 20  # purchases listed on the page


@dataclass(frozen=True, slots=True)
class Sale:
    """One purchase as the campaign page lists it."""

    day: date  # local date in the configured zone
    occurred_at: datetime
    source: str
    external_id: str
    member_number: str | None  # None: a guest purchase
    amount: Decimal  # paid, in `currency`
    currency: str
    base_amount: Decimal  # booked in the base currency when recorded
    refunded_amount: Decimal  # in `currency`
    refunded_base: Decimal  # refunds' booked base amounts
    state: str


@dataclass(frozen=True, slots=True)
class CampaignSales:
    purchases: int
    refunds: int
    sold: Decimal  # purchases' booked base amounts
    refunded: Decimal  # refunds' booked base amounts
    recent: list[Sale]

    @property
    def net(self) -> Decimal:
        """What the ROI report counts as this campaign's purchase revenue (lifetime)."""
        return self.sold - self.refunded


def _sum(
    session: Session, campaign_id: int, amount: Any, where: list[ColumnElement[bool]], base: str
) -> tuple[int, Decimal]:
    """How many documents and their booked base total, summed as the report sums them."""
    frame = report_data.booked_groups(
        session,
        [Purchase.campaign_id],
        amount,
        [func.count()],
        [Purchase.campaign_id == campaign_id, *where],
        base,
    )
    count = sum((int(n) for n in frame["sum_0"]), 0)
    return count, sum(frame["amount"], Decimal(0))


def campaign_sales(
    session: Session, campaign_id: int, base: str, zone: ZoneInfo, *, recent: int = RECENT
) -> CampaignSales:
    """Purchase and refund counts and booked totals of `campaign_id`, and its latest
    `recent` purchases (newest first)."""
    purchases, sold = _sum(session, campaign_id, Purchase.base_amount, [], base)
    refunds, refunded = _sum(
        session, campaign_id, Refund.base_amount, [Refund.purchase_id == Purchase.id], base
    )
    refunded_base = (
        select(func.coalesce(func.sum(Refund.base_amount), 0))
        .where(Refund.purchase_id == Purchase.id)
        .correlate(Purchase)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Purchase, Member.number, refunded_base)
        .outerjoin(Member, Member.id == Purchase.member_id)
        .where(Purchase.campaign_id == campaign_id)
        .order_by(Purchase.occurred_at.desc(), Purchase.id.desc())
        .limit(recent)
    ).all()
    return CampaignSales(
        purchases=purchases,
        refunds=refunds,
        sold=sold,
        refunded=refunded,
        recent=[
            Sale(
                day=p.occurred_at.astimezone(zone).date(),
                occurred_at=p.occurred_at,
                source=p.source,
                external_id=p.external_id,
                member_number=number,
                amount=p.amount,
                currency=p.currency,
                base_amount=p.base_amount,
                refunded_amount=p.refunded_amount,
                refunded_base=Decimal(back or 0),
                state=p.state,
            )
            for p, number, back in rows
        ],
    )
