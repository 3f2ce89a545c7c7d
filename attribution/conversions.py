"""Conversions: what the journeys end in, read from the database as a frame.

- **Purchases** by members (guests have no journey). The value is the purchase's net base
  amount after refunds, as booked: `purchases.net_base_amount`, the base amount booked once
  when the purchase was recorded less its refunds' booked base amounts (`loyalty.plans.refund`
  books each refund's share as a running target, so a purchase refunded in parts nets to
  exactly zero). Nothing is converted or rounded here: the values add up with every other
  report that sums booked amounts. Refunds count as known when the run is made, whatever
  their date, so a run after a refund shows less. A fully refunded purchase is no
  conversion (it sold nothing).
- The member's **first purchase** (the earliest that is not fully refunded, by time, then
  by id, over all of their history, not only the period) has the kind `first_purchase`, an
  acquisition kind (its lookback is the acquisition one); later ones `purchase`.
- **Sign-ups**, when asked for (`signups=True`): each member's joining time
  (`members.joined_at`, the business time of the sign-up; `created_at` is when the row was
  written, which for imported members is not when they joined), kind `signup`, value 0.

The period filter runs in SQL; the first-purchase test is a correlated `EXISTS` on the
(member, time) index, so it costs one index probe per purchase read.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, exists, literal, or_, select
from sqlalchemy.orm import Session, aliased

from loyalty.models import Member, Purchase, PurchaseState

FIRST_PURCHASE = "first_purchase"
PURCHASE = "purchase"
SIGNUP = "signup"
FRAME_COLUMNS = ("member", "at", "value", "kind")
# At the same instant a sign-up comes before the purchase it led to.
_TIE_ORDER = {SIGNUP: 0, FIRST_PURCHASE: 1, PURCHASE: 1}


def _counted() -> list[ColumnElement[bool]]:
    return [Purchase.member_id.is_not(None), Purchase.state != PurchaseState.REFUNDED]


def purchases(
    session: Session, *, start: datetime | None = None, end: datetime | None = None
) -> list[tuple[int, datetime, object, str]]:
    """(member id, time, net base amount, kind) of members' purchases in [start, end)."""
    earlier = aliased(Purchase)
    before = exists().where(
        earlier.member_id == Purchase.member_id,
        earlier.state != PurchaseState.REFUNDED,
        or_(
            earlier.occurred_at < Purchase.occurred_at,
            and_(earlier.occurred_at == Purchase.occurred_at, earlier.id < Purchase.id),
        ),
    )
    kind = case((before, literal(PURCHASE)), else_=literal(FIRST_PURCHASE))
    query = (
        select(Purchase.member_id, Purchase.occurred_at, Purchase.net_base_amount, kind)
        .where(*_counted())
        .order_by(Purchase.occurred_at, Purchase.id)
    )
    if start is not None:
        query = query.where(Purchase.occurred_at >= start)
    if end is not None:
        query = query.where(Purchase.occurred_at < end)
    return [(int(m), at, value, str(k)) for m, at, value, k in session.execute(query)]


def signups(
    session: Session, *, start: datetime | None = None, end: datetime | None = None
) -> list[tuple[int, datetime, object, str]]:
    """(member id, joining time, 0, "signup") of members who joined in [start, end)."""
    query = select(Member.id, Member.joined_at).order_by(Member.joined_at, Member.id)
    if start is not None:
        query = query.where(Member.joined_at >= start)
    if end is not None:
        query = query.where(Member.joined_at < end)
    return [(int(m), at, Decimal(0), SIGNUP) for m, at in session.execute(query)]


def frame(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    include_signups: bool = False,
) -> pd.DataFrame:
    """The conversions in [start, end) as `attribution.paths` reads them: `member` (int64),
    `at` (UTC), `value` (Decimal), `kind`; in time order (ties: sign-ups first, then by id)."""
    rows = purchases(session, start=start, end=end)
    if include_signups:
        rows = sorted(
            signups(session, start=start, end=end) + rows,
            key=lambda r: (r[1], _TIE_ORDER[r[3]]),
        )
    return pd.DataFrame(
        {
            "member": pd.Series([r[0] for r in rows], dtype="int64"),
            "at": pd.Series([r[1] for r in rows], dtype="datetime64[us, UTC]"),
            "value": pd.Series([r[2] for r in rows], dtype=object),
            "kind": pd.Series([r[3] for r in rows], dtype=object),
        }
    )
