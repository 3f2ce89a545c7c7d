"""A member's purchase without coupons, the one a till posts all day, in a few statements.

Same rules and same rows as the general path in `purchases.record` (a test posts the same
sequence both ways and compares every row), written with Core statements instead of the
unit of work, because this is the path that must take 1,000 purchases a second:

1. lock the member and read the settings' version token (one statement);
2. read what earning needs: purchases so far, those in the repeat window, a repeat bonus
   already given, the tier metric, a pending referral (one statement);
3. write the purchase (ON CONFLICT DO NOTHING: a retry finds its id taken and writes
   nothing), its lot, its entries and the member's new balance: on PostgreSQL in one
   statement (data-modifying CTEs), elsewhere in four.

Lines, a tier upgrade and a referral's first purchase add their own statements, rarely. Settings
come from `program.config`, cached per version token; earning is `earning.earn`, shared.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Select,
    Table,
    bindparam,
    exists,
    func,
    insert,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ClauseElement, ColumnElement

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
    purchase: PostedPurchase | None  # None: the id was taken (a retry); replay it
    member: Member | PostedMember
    credits: list[ledger.Credit]
    pending_until: datetime | None
    tier_move: tiers.TierMove | None
    referral_started: bool
    returns_at: datetime


@dataclass(frozen=True, slots=True)
class PostedPurchase:
    """The purchase as written, for the response (an ORM object costs more to build)."""

    id: int
    source: str
    external_id: str
    member_id: int
    campaign_id: int | None
    amount: Decimal
    currency: str
    base_amount: Decimal
    points_earned: int
    state: str = PurchaseState.COMPLETED.value


@dataclass(frozen=True, slots=True)
class PostedMember:
    """The member after the purchase, for the response."""

    id: int
    number: str
    balance: int
    pending_points: int
    tier_id: int


def _sync(session: Session, member_id: int, values: dict[str, Any]) -> Member | PostedMember:
    """The caller's Member object (if this session holds one) reloads what changed on its
    next use (expired, not overwritten: a savepoint rolled back later must not leave it
    showing values the database no longer has); otherwise a plain record carries the new
    values for the response."""
    held = session.identity_map.get(identity_key(Member, member_id))
    if isinstance(held, Member):
        session.expire(held, [k for k in values if k not in ("number", "status")])
        return held
    return PostedMember(
        member_id,
        values["number"],
        values["balance"],
        values["pending_points"],
        values["tier_id"],
    )


_WRITE_PG = text(
    """WITH p AS (
         INSERT INTO purchases (source, external_id, member_id, channel_id, store, occurred_at,
           amount, currency, discount, base_amount, refunded_amount, net_base_amount,
           campaign_id, state, points_earned, points_reversed, fingerprint, created_at)
         VALUES (:source, :external_id, :member_id, :channel_id, :store, :occurred_at,
           :amount, :currency, :discount, :base_amount, 0, :base_amount, :campaign_id,
           'completed', :points, 0, :fingerprint, :now)
         ON CONFLICT (source, external_id) DO NOTHING
         RETURNING id),
       l AS (
         INSERT INTO point_lots (member_id, purchase_id, points, remaining, state, earned_at,
           available_at, expires_at)
         SELECT :member_id, p.id, :points, :remaining, :lot_state, :occurred_at,
           :available_at, :expires_at
         FROM p WHERE :points > 0
         RETURNING id, purchase_id),
       e AS (
         INSERT INTO ledger_entries (member_id, occurred_at, type, points, balance_after,
           reason, rule, bonus_rule_id, source_type, source_id, lot_id, actor_kind,
           actor_label, actor_user_id, idempotency_key)
         SELECT :member_id, :occurred_at, x.type, x.points, x.balance_after, x.reason, x.rule,
           x.bonus_rule_id, 'purchase', l.purchase_id, l.id, :actor_kind, :actor_label,
           :actor_user_id, 'purchase:' || l.purchase_id || ':' || x.rule
         FROM l CROSS JOIN ROWS FROM (json_to_recordset(CAST(:entries AS json))
           AS (type text, points bigint, balance_after bigint, reason text, rule text,
               bonus_rule_id integer))
           WITH ORDINALITY AS x(type, points, balance_after, reason, rule, bonus_rule_id, n)
         ORDER BY x.n),
       m AS (
         UPDATE members SET balance = :new_balance, pending_points = :new_pending,
           debt = :new_debt, tier_id = :new_tier_id, tier_since = :new_tier_since,
           updated_at = :now
         WHERE id = :member_id AND EXISTS (SELECT 1 FROM p))
       SELECT (SELECT id FROM p)"""
)


class _Driver:
    """A statement compiled once for psycopg and sent on the raw connection. On this path
    SQLAlchemy's per-execute bookkeeping costs more than the database's work; the SQL is
    still SQLAlchemy's (compiled from the same objects the portable path runs)."""

    _dialect = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=self._dialect)
        self.sql = str(compiled)
        self.constants = {k: v for k, v in compiled.params.items() if v is not None}

    def send(self, raw: Any, params: dict[str, Any]) -> Any:
        """The cursor; in a pipeline its row arrives when the pipeline syncs."""
        return raw.execute(self.sql, {**self.constants, **params})

    def run(self, conn: Connection, params: dict[str, Any]) -> Any:
        return self.send(conn.connection.driver_connection, params).fetchone()


_PG = {
    "lock": _Driver(_LOCK),
    "write": _Driver(_WRITE_PG),
    **{metric: _Driver(statement) for metric, statement in _FACTS.items()},
}


@dataclass(slots=True)
class _Plan:
    """Everything a purchase writes, worked out before the first write."""

    purchase: dict[str, Any]
    lot: dict[str, Any] | None
    entries: list[dict[str, Any]]
    member: dict[str, Any]  # new balance, pending, debt, tier, tier_since
    tier_change: dict[str, Any] | None


def _write_postgresql(conn: Connection, plan: _Plan, actor: Actor) -> int | None:
    """All of it in one statement (data-modifying CTEs): on a retry nothing is written."""
    lot = plan.lot or {"remaining": 0, "state": "active", "available_at": None, "expires_at": None}
    purchase = plan.purchase
    row = _PG["write"].run(
        conn,
        {
            **{k: purchase[k] for k in _PURCHASE_KEYS},
            "points": purchase["points_earned"],
            "now": purchase["created_at"],
            "remaining": lot["remaining"],
            "lot_state": lot["state"],
            "available_at": lot["available_at"],
            "expires_at": lot["expires_at"],
            # One JSON text adapts faster than six arrays.
            "entries": json.dumps(plan.entries, ensure_ascii=False),
            "actor_kind": actor.kind,
            "actor_label": actor.label,
            "actor_user_id": actor.user_id,
            **{f"new_{k}": v for k, v in plan.member.items()},
        },
    )
    return None if row is None else cast(int | None, row[0])


_PURCHASE_KEYS = (
    "source",
    "external_id",
    "member_id",
    "channel_id",
    "store",
    "occurred_at",
    "amount",
    "currency",
    "discount",
    "base_amount",
    "campaign_id",
    "fingerprint",
)


def _write_portable(conn: Connection, plan: _Plan, actor: Actor) -> int | None:
    """The same rows statement by statement (SQLite has no data-modifying CTEs)."""
    purchase_id = conn.execute(_INSERT[conn.dialect.name], plan.purchase).scalar()
    if purchase_id is None:
        return None
    if plan.lot is not None:
        lot_id = conn.execute(_INSERT_LOT, {**plan.lot, "purchase_id": purchase_id}).scalar_one()
        conn.execute(
            insert(_entries),
            [
                {
                    **entry,
                    "member_id": plan.purchase["member_id"],
                    "occurred_at": plan.purchase["occurred_at"],
                    "source_type": "purchase",
                    "source_id": purchase_id,
                    "lot_id": lot_id,
                    "actor_kind": actor.kind,
                    "actor_label": actor.label,
                    "actor_user_id": actor.user_id,
                    "idempotency_key": f"purchase:{purchase_id}:{entry['rule']}",
                }
                for entry in plan.entries
            ],
        )
    conn.execute(
        _UPDATE_MEMBER,
        {
            "member_id": plan.purchase["member_id"],
            **{f"new_{k}": v for k, v in plan.member.items()},
        },
    )
    return cast(int, purchase_id)


def _asked(sale: Sale, settings: program_settings.Config) -> dict[str, Any]:
    at, program = sale.occurred_at, settings.program
    return {
        "member_id": sale.member_id,
        "at": at,
        "repeat_from": at - timedelta(days=program.repeat_days),
        "window_from": tiers.window_start(program, at),
    }


def post(
    session: Session, actor: Actor, sale: Sale, *, zone: ZoneInfo, base_currency: str
) -> Posted | None:
    """Post `sale`; None when the member is not active (the general path explains why)."""
    if session.new or session.dirty or session.deleted:
        session.flush()  # what the caller changed in this session is visible to the SQL below
    conn = session.connection()
    fast = conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
    at = sale.occurred_at
    locked = {"member_id": sale.member_id}
    guess = program_settings.latest() if fast else None
    facts_row: Any = None
    if guess is not None:
        # One round trip for both: PostgreSQL runs a pipeline's statements in order, so the
        # facts are read after the lock is held, as if sent one by one.
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.pipeline():
            lock_cursor = _PG["lock"].send(raw, locked)
            facts_cursor = _PG[guess.program.tier_metric].send(raw, _asked(sale, guess))
        row, facts_row = lock_cursor.fetchone(), facts_cursor.fetchone()
    elif fast:
        row = _PG["lock"].run(conn, locked)
    else:
        row = conn.execute(_LOCK, locked).one_or_none()
    if row is None:
        raise NotFound("member.not_found", f"No member with id {sale.member_id}.")
    number, status, tier_id, tier_since, balance, pending, debt, token = row
    if status != "active":
        return None
    settings = program_settings.config(session, token)
    program, ladder = settings.program, settings.ladder
    if guess is None or guess.token != token:  # no guess, or the settings changed since
        asked = _asked(sale, settings)
        if fast:
            facts_row = _PG[program.tier_metric].run(conn, asked)
        else:
            facts_row = conn.execute(_FACTS[program.tier_metric], asked).one()
    earlier, in_window, repeat_given, metric_sum, referral_pending = facts_row
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
    now = utcnow()
    plan = _Plan(
        purchase={
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
            "created_at": now,
        },
        lot=None,
        entries=[],
        member={
            "balance": balance,
            "pending": pending,
            "debt": debt,
            "tier_id": tier_id,
            "tier_since": tier_since,
        },
        tier_change=None,
    )
    pending_until: datetime | None = None
    if total:
        is_pending = returns_at > at
        available_at = returns_at if is_pending else at
        paid = 0 if is_pending else min(debt, total)  # a new active lot pays back debt first
        state = LotState.PENDING if is_pending else LotState.ACTIVE
        if not is_pending and paid == total:
            state = LotState.SPENT
        plan.lot = {
            "member_id": sale.member_id,
            "points": total,
            "remaining": total - paid,
            "state": state.value,
            "earned_at": at,
            "available_at": available_at,
            "expires_at": ledger.expires_at(program, available_at, zone),
        }
        running = balance
        for line in credits:
            running += line.points
            plan.entries.append(
                {
                    "type": str(line.type),
                    "points": line.points,
                    "balance_after": running,
                    "reason": line.reason[:200],
                    "rule": line.rule,
                    "bonus_rule_id": line.bonus_rule_id,
                }
            )
        pending_until = available_at
        plan.member["balance"] = running
        plan.member["pending"] = pending + total if is_pending else pending
        plan.member["debt"] = debt - paid

    move = None
    if tier.rank != ladder[-1].rank:
        if program.tier_metric == TierMetric.SPEND:
            # This purchase's row is not in the sum yet: add its spend.
            # (rounded as the column stores it, which is what the general path sums)
            stored = sale.base_amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            value = math.floor(Decimal(metric_sum or 0) + stored)
        else:
            value = int(metric_sum or 0) + total  # nor its points
        reached = max((t for t in ladder if t.threshold <= value), key=lambda t: t.rank)
        if reached.rank > tier.rank:
            reason = (
                f"Reached {reached.name}: {value:,} {tiers.unit(program, base_currency)} "
                f"in {program.tier_window_months} months"
            )
            plan.member["tier_id"], plan.member["tier_since"] = reached.id, at
            plan.tier_change = {
                "member_id": sale.member_id,
                "from_tier_id": tier.id,
                "to_tier_id": reached.id,
                "reason": reason,
                "metric_value": value,
                "changed_at": at,
            }
            move = tiers.TierMove(tier.name, reached.name, reason)

    write = _write_postgresql if fast else _write_portable
    purchase_id = write(conn, plan, actor)
    before = {
        "number": number,
        "status": status,
        "tier_id": tier_id,
        "tier_since": tier_since,
        "balance": balance,
        "pending_points": pending,
        "debt": debt,
    }
    if purchase_id is None:  # a retry: nothing was written
        return Posted(
            None, _sync(session, sale.member_id, before), [], None, None, False, returns_at
        )
    if sale.lines:
        conn.execute(insert(_lines), [{**line, "purchase_id": purchase_id} for line in sale.lines])
    if plan.tier_change is not None:
        conn.execute(insert(_tier_changes), plan.tier_change)
    started = False
    if referral_pending and sale.base_amount >= program.referral_min_amount:
        conn.execute(
            _START_REFERRAL,
            {"member_id": sale.member_id, "purchase_id": purchase_id, "completes_at": returns_at},
        )
        started = True
    bought = plan.purchase
    purchase = PostedPurchase(
        purchase_id,
        sale.source,
        sale.external_id,
        sale.member_id,
        sale.campaign_id,
        sale.amount,
        sale.currency,
        sale.base_amount,
        bought["points_earned"],
    )
    after = {
        **before,
        "balance": plan.member["balance"],
        "pending_points": plan.member["pending"],
        "debt": plan.member["debt"],
        "tier_id": plan.member["tier_id"],
        "tier_since": plan.member["tier_since"],
    }
    member = _sync(session, sale.member_id, after)
    return Posted(purchase, member, credits, pending_until, move, started, returns_at)
