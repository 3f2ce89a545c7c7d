"""Manual revenue records (回款记录): offline and B2B money a campaign brought in. A record is
never edited; one dated in a closed month cannot be added (corrections are new records)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from campaigns import periods, planning
from campaigns.models import RevenueRecord
from campaigns.rates import currency_code
from core import audit, bounds
from core.audit import Actor
from core.errors import Problems, ValidationFailed
from core.text import N_

MAX_ORDERS = bounds.MAX_ID  # orders are counted in an INTEGER column, as ids are


def validate(
    session: Session,
    problems: Problems,
    *,
    campaign_id: int,
    received_on: date | None,
    amount: Decimal | None,
    currency: str,
    reference: str = "",
    orders: int | None = None,
) -> None:
    """Note each field's problem in `problems`, under `record`'s keyword names. A field that
    already has one (a form notes what it could not read first, and passes None) keeps it."""

    def check(field: str, run: Callable[[], object]) -> None:
        if field not in problems:
            problems.check(field, run)

    def check_amount() -> None:
        assert amount is not None  # None only when the form noted a problem
        # A correction (money paid back) is a negative record; nothing is ever zero.
        bounds.check_amount(amount, "revenue.amount", sign="any", label=N_("The amount"))
        if amount == 0:
            raise ValidationFailed("revenue.amount", "The amount cannot be zero.")

    def check_orders() -> None:
        if orders is not None and orders < 0:
            raise ValidationFailed("revenue.orders", "Orders cannot be negative.")
        if orders is not None and orders > MAX_ORDERS:
            raise ValidationFailed(
                "revenue.orders", "Orders must be at most %(max)s.", max=f"{MAX_ORDERS:,}"
            )

    def check_received_on() -> None:
        assert received_on is not None  # None only when the form noted a problem
        bounds.check_day(received_on, "revenue.received_on", label=N_("The date received"))

    check("amount", check_amount)
    check("received_on", check_received_on)
    check(
        "reference",
        lambda: bounds.check_text(
            reference.strip(),
            "revenue.reference",
            bounds.length(RevenueRecord.reference),
            label=N_("The reference"),
        ),
    )
    check("orders", check_orders)
    check("currency", lambda: currency_code(currency))
    check("campaign_id", lambda: planning.referenced(session, campaign_id))


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
    actor.require("finance", doing=N_("record revenue"))
    problems = Problems()
    validate(
        session,
        problems,
        campaign_id=campaign_id,
        received_on=received_on,
        amount=amount,
        currency=currency,
        reference=reference,
        orders=orders,
    )
    problems.raise_any()
    currency = currency_code(currency)
    # A closed month is frozen: its revenue never changes (corrections go in an open month).
    periods.ensure_open(
        session, received_on, N_("record revenue dated in it"), periods.REVENUE_CORRECTION
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
