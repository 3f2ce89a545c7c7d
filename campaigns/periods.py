"""Month close: once finance closes a month, its receipts are frozen. Only an admin reopens."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import ClosedPeriod
from core import audit, bounds
from core.audit import Actor
from core.errors import Conflict, ValidationFailed


def month_of(day: date) -> date:
    return day.replace(day=1)


def parse_month(value: str) -> date:
    """The first day of a month written like 2026-03, within the bounds of any date."""
    text = value.strip()
    problem = bounds.text_problem(text, 7)
    try:
        if problem or not re.fullmatch(r"[0-9]{4}-[0-9]{2}", text):
            raise ValueError
        month = date(int(text[:4]), int(text[5:]), 1)
    except ValueError:
        shown = f"'{text}' is" if problem is None else "That"
        raise ValidationFailed("period.month", f"{shown} not a month like 2026-03.") from None
    return bounds.check_day(month, "period.month", label="The month")


def is_closed(session: Session, day: date) -> bool:
    return session.get(ClosedPeriod, month_of(day)) is not None


def ensure_open(session: Session, day: date, doing: str) -> None:
    if is_closed(session, day):
        raise Conflict(
            "period.closed",
            f"{month_of(day):%Y-%m} is closed, so you cannot {doing}. Record a correction as a "
            "new adjusting receipt dated in an open month.",
        )


def closed_months(session: Session) -> list[date]:
    return list(session.scalars(select(ClosedPeriod.month).order_by(ClosedPeriod.month)))


def close_month(session: Session, actor: Actor, month: date) -> ClosedPeriod:
    actor.require("finance", doing="close a month")
    month = bounds.check_day(month_of(month), "period.month", label="The month")
    if is_closed(session, month):
        raise Conflict("period.already_closed", f"{month:%Y-%m} is already closed.")
    period = ClosedPeriod(month=month, closed_by_id=actor.user_id)
    session.add(period)
    session.flush()
    audit.record(session, actor, "period.close", "period", f"{month:%Y-%m}", after={"closed": True})
    return period


def reopen_month(session: Session, actor: Actor, month: date) -> None:
    actor.require("admin", doing="reopen a closed month")
    month = bounds.check_day(month_of(month), "period.month", label="The month")
    period = session.get(ClosedPeriod, month)
    if period is None:
        raise Conflict("period.not_closed", f"{month:%Y-%m} is not closed.")
    session.delete(period)
    session.flush()
    audit.record(
        session,
        actor,
        "period.reopen",
        "period",
        f"{month:%Y-%m}",
        before={"closed": True},
        after={"closed": False},
    )
