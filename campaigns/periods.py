"""Month close: once finance closes a month it is frozen, and its figures never change.

A month cannot close while receipts dated in it await approval (the refusal lists them), nor
while a document dated in it has no exchange rate. Once closed, nothing dated in it is added
or changed: receipts (create, edit, submit, approve, reject, attach, delete), revenue records
and exchange rates that would convert anything dated in it (`rates.set_rate`). A refund counts
in the month it is made, so a refund never reaches back into a closed month. Only an admin
reopens a month.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import ClosedPeriod, Receipt, ReceiptStatus, RevenueRecord
from core import audit, bounds
from core.audit import Actor
from core.errors import Conflict, ValidationFailed
from core.text import N_

S = ReceiptStatus

# What to do instead, a whole sentence the staff catalog translates (a refusal's param).
RECEIPT_CORRECTION = N_("Record a correction as a new adjusting receipt dated in an open month.")
REVENUE_CORRECTION = N_(
    "Record a correction as a new revenue record (negative for money paid back) dated in an "
    "open month."
)


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
        raise ValidationFailed(
            "period.month",
            N_("'%(value)s' is not a month like 2026-03.")
            if problem is None
            else N_("That is not a month like 2026-03."),
            value=text,
        ) from None
    return bounds.check_day(month, "period.month", label=N_("The month"))


def is_closed(session: Session, day: date) -> bool:
    return session.get(ClosedPeriod, month_of(day)) is not None


def month_end(month: date) -> date:
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def ensure_open(
    session: Session, day: date, doing: str, correction: str = RECEIPT_CORRECTION
) -> None:
    """Refuse when `day` lies in a closed month. `doing` ("edit its receipts") and
    `correction` (a whole sentence) are `N_` phrases, so the staff catalog translates them."""
    if is_closed(session, day):
        month = f"{month_of(day):%Y-%m}"
        raise Conflict(
            "period.closed",
            "%(month)s is closed, so you cannot %(doing)s. %(correction)s",
            {"month": month},
            month=month,
            doing=doing,
            correction=correction,
        )


def closed_months(session: Session) -> list[date]:
    return list(session.scalars(select(ClosedPeriod.month).order_by(ClosedPeriod.month)))


def awaiting_approval(session: Session, month: date) -> list[Receipt]:
    """Receipts dated in `month` that are submitted and not yet decided."""
    return list(
        session.scalars(
            select(Receipt)
            .where(
                Receipt.status == S.SUBMITTED,
                Receipt.expense_date >= month,
                Receipt.expense_date <= month_end(month),
            )
            .order_by(Receipt.expense_date, Receipt.id)
        )
    )


def _unconvertible(session: Session, month: date, base: str) -> None:
    """Raise (naming currency and date) if a document dated in `month` has no rate: closed,
    the rate could never be entered, and the month's report would fail for good."""
    import pandas as pd

    from campaigns import rates

    frames = []
    for day, currency, where in (
        (
            Receipt.expense_date,
            Receipt.currency,
            Receipt.status.in_((S.SUBMITTED, S.APPROVED, S.PAID)),
        ),
        (RevenueRecord.received_on, RevenueRecord.currency, None),
    ):
        query = (
            select(currency, day)
            .where(day >= month, day <= month_end(month), currency != base)
            .distinct()
        )
        if where is not None:
            query = query.where(where)
        frames.append(pd.DataFrame(session.execute(query).all(), columns=["currency", "day"]))
    wanted = pd.concat(frames, ignore_index=True)
    if wanted.empty:
        return
    wanted["amount"] = 0
    rates.convert(wanted, rates.rates_frame(session, set(wanted["currency"])), base)


def close_month(
    session: Session, actor: Actor, month: date, base: str | None = None
) -> ClosedPeriod:
    """Close `month`: refused while receipts dated in it await approval (the refusal lists
    them: id, vendor, amount, currency, link) or, given the base currency, while a document
    dated in it has no exchange rate."""
    actor.require("finance", doing=N_("close a month"))
    month = bounds.check_day(month_of(month), "period.month", label=N_("The month"))
    if is_closed(session, month):
        raise Conflict(
            "period.already_closed", "%(month)s is already closed.", month=f"{month:%Y-%m}"
        )
    waiting = awaiting_approval(session, month)
    if waiting:
        listed = "; ".join(f"#{r.id} {r.vendor} {r.amount:,.2f} {r.currency}" for r in waiting[:10])
        raise Conflict(
            "period.receipts_pending",
            N_(
                "%(month)s cannot close: %(count)s receipt(s) dated in it await approval "
                "(%(list)s; and %(more)s more). Approve or reject them first."
            )
            if len(waiting) > 10
            else N_(
                "%(month)s cannot close: %(count)s receipt(s) dated in it await approval "
                "(%(list)s). Approve or reject them first."
            ),
            [
                {
                    "id": r.id,
                    "vendor": r.vendor,
                    "amount": f"{r.amount:.2f}",
                    "currency": r.currency,
                    "expense_date": str(r.expense_date),
                    "url": f"/receipts/{r.id}",
                }
                for r in waiting
            ],
            month=f"{month:%Y-%m}",
            count=len(waiting),
            list=listed,
            more=len(waiting) - 10,
        )
    if base is not None:
        try:
            _unconvertible(session, month, base)
        except ValidationFailed as exc:
            raise Conflict(
                "period.rate_missing",
                "%(month)s cannot close: %(reason)s",
                exc.details,
                month=f"{month:%Y-%m}",
                reason=exc.message,
            ) from None
    period = ClosedPeriod(month=month, closed_by_id=actor.user_id)
    session.add(period)
    session.flush()
    audit.record(session, actor, "period.close", "period", f"{month:%Y-%m}", after={"closed": True})
    return period


def reopen_month(session: Session, actor: Actor, month: date) -> None:
    actor.require("admin", doing=N_("reopen a closed month"))
    month = bounds.check_day(month_of(month), "period.month", label=N_("The month"))
    period = session.get(ClosedPeriod, month)
    if period is None:
        raise Conflict("period.not_closed", "%(month)s is not closed.", month=f"{month:%Y-%m}")
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
