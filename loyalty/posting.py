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
come from `program.config`, cached per version token. What the purchase does is decided by
`plans.purchase` from the facts `history` defines: this file only reads and writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ClauseElement

from core.audit import Actor
from core.errors import NotFound
from core.timeutil import UTCDateTime, utcnow
from loyalty import history, plans
from loyalty import program as program_settings
from loyalty.models import (
    ConfigVersion,
    LedgerEntry,
    Lot,
    Member,
    Purchase,
    PurchaseLine,
    PurchaseState,
    Referral,
    ReferralState,
    TierChange,
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
    plan: plans.PurchasePlan
    balance: int  # after the purchase


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
           campaign_id, state, points_earned, points_reversed, fingerprint, balance_after,
           created_at)
         VALUES (:source, :external_id, :member_id, :channel_id, :store, :occurred_at,
           :amount, :currency, :discount, :base_amount, 0, :base_amount, :campaign_id,
           'completed', :points, 0, :fingerprint, :balance_after, :now)
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
    **{metric: _Driver(statement) for metric, statement in history.STATEMENTS.items()},
}


@dataclass(slots=True)
class _Rows:
    """The plan as the rows and values the statements take."""

    purchase: dict[str, Any]
    lot: dict[str, Any] | None
    entries: list[dict[str, Any]]
    member: dict[str, Any]  # new balance, pending, debt, tier, tier_since
    tier_change: dict[str, Any] | None


def _write_postgresql(conn: Connection, rows: _Rows, actor: Actor) -> int | None:
    """All of it in one statement (data-modifying CTEs): on a retry nothing is written."""
    lot = rows.lot or {"remaining": 0, "state": "active", "available_at": None, "expires_at": None}
    purchase = rows.purchase
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
            "entries": json.dumps(rows.entries, ensure_ascii=False),
            "actor_kind": actor.kind,
            "actor_label": actor.label,
            "actor_user_id": actor.user_id,
            **{f"new_{k}": v for k, v in rows.member.items()},
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
    "balance_after",
)


def _write_portable(conn: Connection, rows: _Rows, actor: Actor) -> int | None:
    """The same rows statement by statement (SQLite has no data-modifying CTEs)."""
    purchase_id = conn.execute(_INSERT[conn.dialect.name], rows.purchase).scalar()
    if purchase_id is None:
        return None
    if rows.lot is not None:
        lot_id = conn.execute(_INSERT_LOT, {**rows.lot, "purchase_id": purchase_id}).scalar_one()
        conn.execute(
            insert(_entries),
            [
                {
                    **entry,
                    "member_id": rows.purchase["member_id"],
                    "occurred_at": rows.purchase["occurred_at"],
                    "source_type": "purchase",
                    "source_id": purchase_id,
                    "lot_id": lot_id,
                    "actor_kind": actor.kind,
                    "actor_label": actor.label,
                    "actor_user_id": actor.user_id,
                    "idempotency_key": f"purchase:{purchase_id}:{entry['rule']}",
                }
                for entry in rows.entries
            ],
        )
    conn.execute(
        _UPDATE_MEMBER,
        {
            "member_id": rows.purchase["member_id"],
            **{f"new_{k}": v for k, v in rows.member.items()},
        },
    )
    return cast(int, purchase_id)


def _rows(sale: Sale, plan: plans.PurchasePlan, after: plans.MemberState) -> _Rows:
    credit = plan.credit
    lot = credit.lot if credit else None
    move = plan.tier_move
    return _Rows(
        purchase={
            "source": sale.source,
            "external_id": sale.external_id,
            "member_id": sale.member_id,
            "channel_id": sale.channel_id,
            "store": sale.store,
            "occurred_at": sale.occurred_at,
            "amount": sale.amount,
            "currency": sale.currency,
            "discount": sale.discount,
            "base_amount": sale.base_amount,
            "refunded_amount": Decimal(0),
            "net_base_amount": sale.base_amount,
            "campaign_id": sale.campaign_id,
            "state": PurchaseState.COMPLETED.value,
            "points_earned": plan.points,
            "points_reversed": 0,
            "fingerprint": sale.fingerprint,
            "balance_after": after.points.balance,
            "created_at": utcnow(),
        },
        # Plain dicts by hand: dataclasses.asdict deep-copies, a cost on this path.
        lot=None
        if lot is None
        else {
            "member_id": sale.member_id,
            "points": lot.points,
            "remaining": lot.remaining,
            "state": lot.state,
            "earned_at": lot.earned_at,
            "available_at": lot.available_at,
            "expires_at": lot.expires_at,
        },
        entries=[
            {
                "type": e.type,
                "points": e.points,
                "balance_after": e.balance_after,
                "reason": e.reason,
                "rule": e.rule,
                "bonus_rule_id": e.bonus_rule_id,
            }
            for e in (credit.entries if credit else [])
        ],
        member={
            "balance": after.points.balance,
            "pending": after.points.pending,
            "debt": after.points.debt,
            "tier_id": after.tier_id,
            "tier_since": after.tier_since,
        },
        tier_change=None
        if move is None
        else {
            "member_id": sale.member_id,
            "from_tier_id": move.from_tier.id,
            "to_tier_id": move.to_tier.id,
            "reason": move.reason,
            "metric_value": move.metric_value,
            "changed_at": move.at,
        },
    )


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
        asked = history.params(guess.program, sale.member_id, at)
        with raw.pipeline():
            lock_cursor = _PG["lock"].send(raw, locked)
            facts_cursor = _PG[guess.program.tier_metric].send(raw, asked)
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
    config = program_settings.config(session, token)
    program = config.program
    if guess is None or guess.token != token:  # no guess, or the settings changed since
        asked = history.params(program, sale.member_id, at)
        if fast:
            facts_row = _PG[program.tier_metric].run(conn, asked)
        else:
            facts_row = conn.execute(history.statement(program), asked).one()
    settings = plans.Settings(
        program,
        config.ladder,
        config.rules,
        program_settings.campaign_names(session, config.rules),
    )
    member = plans.MemberState(
        sale.member_id, number, status, tier_id, tier_since, plans.Points(balance, pending, debt)
    )
    plan = plans.purchase(
        settings,
        member,
        history.from_row(facts_row),
        plans.Sale(at, sale.base_amount, sale.channel_id, sale.campaign_id, sale.categories),
        zone=zone,
        base_currency=base_currency,
    )
    after = plans.after(member, plan)
    rows = _rows(sale, plan, after)
    write = _write_postgresql if fast else _write_portable
    purchase_id = write(conn, rows, actor)
    values = {
        "number": number,
        "status": status,
        "tier_id": tier_id,
        "tier_since": tier_since,
        "balance": balance,
        "pending_points": pending,
        "debt": debt,
    }
    if purchase_id is None:  # a retry: nothing was written
        return Posted(None, _sync(session, sale.member_id, values), plan, balance)
    if sale.lines:
        conn.execute(insert(_lines), [{**line, "purchase_id": purchase_id} for line in sale.lines])
    if rows.tier_change is not None:
        conn.execute(insert(_tier_changes), {**rows.tier_change, "purchase_id": purchase_id})
    if plan.referral_completes_at is not None:
        conn.execute(
            _START_REFERRAL,
            {
                "member_id": sale.member_id,
                "purchase_id": purchase_id,
                "completes_at": plan.referral_completes_at,
            },
        )
    purchase = PostedPurchase(
        purchase_id,
        sale.source,
        sale.external_id,
        sale.member_id,
        sale.campaign_id,
        sale.amount,
        sale.currency,
        sale.base_amount,
        plan.points,
    )
    values.update(
        balance=after.points.balance,
        pending_points=after.points.pending,
        debt=after.points.debt,
        tier_id=after.tier_id,
        tier_since=after.tier_since,
    )
    return Posted(purchase, _sync(session, sale.member_id, values), plan, after.points.balance)
