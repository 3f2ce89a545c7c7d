"""Manual revenue records (回款记录): offline and B2B money a campaign brought in. A record is
never edited; one dated in a closed month cannot be added (corrections are new records)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from campaigns import periods, planning
from campaigns.models import RevenueRecord
from campaigns.rates import currency_code
from core import audit, bounds
from core.audit import Actor
from core.errors import ValidationFailed

MAX_ORDERS = bounds.MAX_ID  # orders are counted in an INTEGER column, as ids are


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
    # A correction (money paid back) is a negative record; nothing is ever zero.
    bounds.check_amount(amount, "revenue.amount", sign="any", label="The amount")
    if amount == 0:
        raise ValidationFailed("revenue.amount", "The amount cannot be zero.")
    bounds.check_day(received_on, "revenue.received_on", label="The date received")
    bounds.check_text(
        reference.strip(),
        "revenue.reference",
        bounds.length(RevenueRecord.reference),
        label="The reference",
    )
    if orders is not None and orders < 0:
        raise ValidationFailed("revenue.orders", "Orders cannot be negative.")
    if orders is not None and orders > MAX_ORDERS:
        raise ValidationFailed("revenue.orders", f"Orders must be at most {MAX_ORDERS:,}.")
    currency = currency_code(currency)
    planning.referenced(session, campaign_id)
    # A closed month is frozen: its revenue never changes (corrections go in an open month).
    periods.ensure_open(
        session, received_on, "record revenue dated in it", periods.REVENUE_CORRECTION
    )
    row = RevenueRecord(
        campaign_id=campaign_id,
        received_on=received_on,
        amount=amount,
        currency=currency,
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
