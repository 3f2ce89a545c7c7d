"""A member's purchase without coupons, the one a till posts all day, in a few statements.

Same rules and same rows as the general path in `purchases.record` (a test posts the same
sequence both ways and compares every row), written with Core statements instead of the
unit of work, because this is the path that must take 1,000 purchases a second:

1. lock the member and read the settings' version token (one statement);
2. read what earning needs: purchases so far, those in the repeat window, a repeat bonus
   already given, the tier metric, a pending referral (one statement);
3. insert the purchase, ON CONFLICT DO NOTHING: a retry finds its id taken and replays;
4. insert the lot, the entries (one statement for all lines), update the member.

Tier upgrades and a referral's first purchase add their own statements, rarely. Settings
come from `program.config`, cached per version token; earning is `earning.earn`, shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, Table, bindparam, exists, func, insert, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ColumnElement

from core.audit import Actor
from core.errors import NotFound
from core.money import MoneyAmount
from core.timeutil import UTCDateTime, utcnow
from loyalty import earning, ledger, tiers
from loyalty import program as program_settings
from loyalty.models import (
    ConfigVersion,
    LedgerEntry,
    Lot,
    LotState,
    Member,
    Purchase,
    PurchaseLine,
    PurchaseState,
    Referral,
    ReferralState,
    TierChange,
    TierMetric,
)

_members = cast(Table, Member.__table__)
_purchases = cast(Table, Purchase.__table__)
_lots = cast(Table, Lot.__table__)
_entries = cast(Table, LedgerEntry.__table__)
_lines = cast(Table, PurchaseLine.__table__)
_tier_changes = cast(Table, TierChange.__table__)
_referrals = cast(Table, Referral.__table__)

# Built once: executing a prepared statement object skips rebuilding and re-keying it.
_LOCK = (
    select(
        _members.c.number,
        _members.c.status,
        _members.c.tier_id,
        _members.c.tier_since,
        _members.c.balance,
        _members.c.pending_points,
        _members.c.debt,
        select(ConfigVersion.token).where(ConfigVersion.id == 1).scalar_subquery(),
    )
    .where(_members.c.id == bindparam("member_id"))
    .with_for_update(of=_members)
)


def _facts(metric: ColumnElement[Any]) -> Select[Any]:
    mine = _purchases.c.member_id == bindparam("member_id")
    at = bindparam("at", type_=UTCDateTime())
    repeat_from = bindparam("repeat_from", type_=UTCDateTime())
    return select(
        select(func.count()).select_from(_purchases).where(mine).scalar_subquery(),
        select(func.count())
        .select_from(_purchases)
        .where(
            mine,
            _purchases.c.occurred_at > repeat_from,
            _purchases.c.occurred_at <= at,
            _purchases.c.state != PurchaseState.REFUNDED.value,
        )
        .scalar_subquery(),
        exists()
        .where(
            _entries.c.member_id == bindparam("member_id"),
            _entries.c.rule == "repeat_purchase",
            _entries.c.occurred_at > repeat_from,
        )
        .correlate(None),
        select(func.sum(metric))
        .where(
            mine,
            _purchases.c.occurred_at >= bindparam("window_from", type_=UTCDateTime()),
            _purchases.c.occurred_at <= at,
        )
        .scalar_subquery(),
        exists()
        .where(
            _referrals.c.referee_id == bindparam("member_id"),
            _referrals.c.state == ReferralState.PENDING.value,
        )
        .correlate(None),
    )


_FACTS = {
    TierMetric.POINTS.value: _facts(_purchases.c.points_earned - _purchases.c.points_reversed),
    TierMetric.SPEND.value: _facts(
        type_coerce(_purchases.c.net_base_amount, cast(Any, MoneyAmount()))
    ),
}
_INSERT = {
    name: module.insert(_purchases)
    .on_conflict_do_nothing(index_elements=["source", "external_id"])
    .returning(_purchases.c.id)
    for name, module in (("postgresql", postgresql), ("sqlite", sqlite))
}
_INSERT_LOT = insert(_lots).returning(_lots.c.id)
_UPDATE_MEMBER = (
    update(_members)
    .where(_members.c.id == bindparam("member_id"))
    .values(
        balance=bindparam("new_balance"),
        pending_points=bindparam("new_pending"),
        debt=bindparam("new_debt"),
        tier_id=bindparam("new_tier_id"),
        tier_since=bindparam("new_tier_since", type_=UTCDateTime()),
    )
)
_START_REFERRAL = (
    update(_referrals)
    .where(
        _referrals.c.referee_id == bindparam("member_id"),
        _referrals.c.state == ReferralState.PENDING.value,
    )
    .values(
        state=ReferralState.QUALIFYING.value,
        purchase_id=bindparam("purchase_id"),
        completes_at=bindparam("completes_at", type_=UTCDateTime()),
    )
)


@dataclass(frozen=True, slots=True)
class Sale:
    """A purchase checked and converted by `purchases.record`, ready to post."""

    source: str
    external_id: str
    member_id: int
    occurred_at: datetime
    amount: Decimal
    currency: str
    discount: Decimal
    base_amount: Decimal
    channel_id: int | None
    campaign_id: int | None
    store: str | None
    fingerprint: str
    categories: dict[str, Decimal]  # spend per category, base currency
    lines: list[dict[str, Any]]


@dataclass(slots=True)
class Posted:
    purchase: Purchase | None  # None: the id was taken (a retry); replay it
    member: Member
    credits: list[ledger.Credit]
    pending_until: datetime | None
    tier_move: tiers.TierMove | None
    referral_started: bool
    returns_at: datetime


def _sync(session: Session, member_id: int, values: dict[str, Any]) -> Member:
    """The caller's Member object (if this session holds one) shows the new values, as if
    read back; otherwise a detached stand-in carries them for the response."""
    held = session.identity_map.get(identity_key(Member, member_id))
    if isinstance(held, Member):
        for key, value in values.items():
            set_committed_value(held, key, value)
        return held
    return Member(id=member_id, **values)


def post(
    session: Session, actor: Actor, sale: Sale, *, zone: ZoneInfo, base_currency: str
) -> Posted | None:
    """Post `sale`; None when the member is not active (the general path explains why)."""
    session.flush()  # anything the caller changed in this session is visible to the SQL below
    conn = session.connection()
    row = conn.execute(_LOCK, {"member_id": sale.member_id}).one_or_none()
    if row is None:
        raise NotFound("member.not_found", f"No member with id {sale.member_id}.")
    number, status, tier_id, tier_since, balance, pending, debt, token = row
    if status != "active":
        return None
    settings = program_settings.config(session, token)
    program, ladder = settings.program, settings.ladder
    at = sale.occurred_at
    earlier, in_window, repeat_given, metric_sum, referral_pending = conn.execute(
        _FACTS[program.tier_metric],
        {
            "member_id": sale.member_id,
            "at": at,
            "repeat_from": at - timedelta(days=program.repeat_days),
            "window_from": tiers.window_start(program, at),
        },
    ).one()
    tier = next(t for t in ladder if t.id == tier_id)
    facts = earning.PurchaseFacts(
        base_amount=sale.base_amount,
        local_date=at.astimezone(zone).date(),
        channel_id=sale.channel_id,
        campaign_id=sale.campaign_id,
        categories=sale.categories,
        first_purchase=earlier == 0,
        purchases_in_repeat_window=int(in_window) + 1,  # this one counts too
        repeat_bonus_in_window=bool(repeat_given) and int(in_window) + 1 >= program.repeat_count,
    )
    names = program_settings.campaign_names(session, settings.rules)
    credits = earning.earn(program, tier, settings.rules, facts, campaign_names=names)
    total = sum(c.points for c in credits)
    returns_at = at + timedelta(days=program.return_window_days)
    purchase_id = conn.execute(
        _INSERT[conn.dialect.name],
        {
            "source": sale.source,
            "external_id": sale.external_id,
            "member_id": sale.member_id,
            "channel_id": sale.channel_id,
            "store": sale.store,
            "occurred_at": at,
            "amount": sale.amount,
            "currency": sale.currency,
            "discount": sale.discount,
            "base_amount": sale.base_amount,
            "refunded_amount": Decimal(0),
            "net_base_amount": sale.base_amount,
            "campaign_id": sale.campaign_id,
            "state": PurchaseState.COMPLETED.value,
            "points_earned": total,
            "points_reversed": 0,
            "fingerprint": sale.fingerprint,
            "created_at": utcnow(),
        },
    ).scalar()
    member_values: dict[str, Any] = {
        "number": number,
        "status": status,
        "tier_id": tier_id,
        "tier_since": tier_since,
        "balance": balance,
        "pending_points": pending,
        "debt": debt,
    }
    if purchase_id is None:
        held = _sync(session, sale.member_id, member_values)
        return Posted(None, held, [], None, None, False, returns_at)
    if sale.lines:
        conn.execute(insert(_lines), [{**line, "purchase_id": purchase_id} for line in sale.lines])

    pending_until: datetime | None = None
    if total:
        is_pending = returns_at > at
        available_at = returns_at if is_pending else at
        paid = 0 if is_pending else min(debt, total)  # a new active lot pays back debt first
        state = LotState.PENDING if is_pending else LotState.ACTIVE
        if not is_pending and paid == total:
            state = LotState.SPENT
        lot_id = conn.execute(
            _INSERT_LOT,
            {
                "member_id": sale.member_id,
                "purchase_id": purchase_id,
                "points": total,
                "remaining": total - paid,
                "state": state.value,
                "earned_at": at,
                "available_at": available_at,
                "expires_at": ledger.expires_at(program, available_at, zone),
            },
        ).scalar_one()
        running = balance
        entries = []
        for line in credits:
            running += line.points
            entries.append(
                {
                    "member_id": sale.member_id,
                    "occurred_at": at,
                    "type": str(line.type),
                    "points": line.points,
                    "balance_after": running,
                    "reason": line.reason[:200],
                    "rule": line.rule,
                    "bonus_rule_id": line.bonus_rule_id,
                    "source_type": "purchase",
                    "source_id": purchase_id,
                    "lot_id": lot_id,
                    "actor_kind": actor.kind,
                    "actor_label": actor.label,
                    "actor_user_id": actor.user_id,
                    "idempotency_key": f"purchase:{purchase_id}:{line.rule}",
                }
            )
        conn.execute(insert(_entries), entries)
        pending_until = available_at
        member_values["balance"] = running
        if is_pending:
            member_values["pending_points"] = pending + total
        member_values["debt"] = debt - paid

    move = None
    top = ladder[-1]
    if tier.rank != top.rank:
        if program.tier_metric == TierMetric.SPEND:
            # This purchase's row is not in the sum yet: add its spend.
            value = math.floor(Decimal(metric_sum or 0) + sale.base_amount)
        else:
            value = int(metric_sum or 0) + total  # nor its points
        reached = max((t for t in ladder if t.threshold <= value), key=lambda t: t.rank)
        if reached.rank > tier.rank:
            reason = (
                f"Reached {reached.name}: {value:,} {tiers.unit(program, base_currency)} "
                f"in {program.tier_window_months} months"
            )
            member_values["tier_id"], member_values["tier_since"] = reached.id, at
            conn.execute(
                insert(_tier_changes),
                {
                    "member_id": sale.member_id,
                    "from_tier_id": tier.id,
                    "to_tier_id": reached.id,
                    "reason": reason,
                    "metric_value": value,
                    "changed_at": at,
                },
            )
            move = tiers.TierMove(tier.name, reached.name, reason)
    conn.execute(
        _UPDATE_MEMBER,
        {
            "member_id": sale.member_id,
            "new_balance": member_values["balance"],
            "new_pending": member_values["pending_points"],
            "new_debt": member_values["debt"],
            "new_tier_id": member_values["tier_id"],
            "new_tier_since": member_values["tier_since"],
        },
    )

    started = False
    if referral_pending and sale.base_amount >= program.referral_min_amount:
        conn.execute(
            _START_REFERRAL,
            {"member_id": sale.member_id, "purchase_id": purchase_id, "completes_at": returns_at},
        )
        started = True
    purchase = Purchase(
        id=purchase_id,
        source=sale.source,
        external_id=sale.external_id,
        member_id=sale.member_id,
        channel_id=sale.channel_id,
        store=sale.store,
        occurred_at=at,
        amount=sale.amount,
        currency=sale.currency,
        discount=sale.discount,
        base_amount=sale.base_amount,
        net_base_amount=sale.base_amount,
        refunded_amount=Decimal(0),
        campaign_id=sale.campaign_id,
        state=PurchaseState.COMPLETED,
        points_earned=total,
        points_reversed=0,
        fingerprint=sale.fingerprint,
    )
    member = _sync(session, sale.member_id, member_values)
    return Posted(purchase, member, credits, pending_until, move, started, returns_at)
