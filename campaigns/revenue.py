"""Manual revenue records (回款记录): offline and B2B money a campaign brought in."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from campaigns import planning
from campaigns.models import RevenueRecord
from core import audit
from core.audit import Actor
from core.errors import ValidationFailed
from core.money import normalise_currency


def record(
    session: Session,
    actor: Actor,
    *,
    campaign_id: int,
    received_on: date,
    amount: Decimal,
    currency: str,
    reference: str = "",
    orders: int | None = None,
) -> RevenueRecord:
    actor.require("finance", doing="record revenue")
    planning.get(session, campaign_id)
    if amount == 0:
        raise ValidationFailed("revenue.amount", "The amount cannot be zero.")
    if orders is not None and orders < 0:
        raise ValidationFailed("revenue.orders", "Orders cannot be negative.")
    row = RevenueRecord(
        campaign_id=campaign_id,
        received_on=received_on,
        amount=amount,
        currency=normalise_currency(currency),
        reference=reference.strip(),
        orders=orders,
        created_by_id=actor.user_id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "revenue.create",
        "revenue_record",
        row.id,
        after={
            "campaign_id": campaign_id,
            "received_on": str(received_on),
            "amount": f"{amount} {row.currency}",
            "reference": row.reference,
            "orders": orders,
        },
    )
    return row
