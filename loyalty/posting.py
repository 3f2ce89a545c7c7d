"""A member's purchase without coupons, the one a till posts all day, in a few statements.

Same rules and same rows as the general path in `purchases.record` (a test posts the same
sequence both ways and compares every row), written with Core statements instead of the
unit of work, because this is the path that must take 1,000 purchases a second:

1. lock the member and read the settings' version token and whether the purchase's month
   is closed (one statement);
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
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Date,
    Select,
    String,
    Table,
    any_,
    bindparam,
    exists,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ClauseElement

from campaigns.models import ClosedPeriod
from core.audit import Actor
from core.errors import NotFound
from core.text import N_
from core.timeutil import UTCDateTime, utcnow
from loyalty import codes, coupons, history, plans
from loyalty import program as program_settings
from loyalty.models import (
    Batch,
    ConfigVersion,
    Coupon,
    CouponState,
    LedgerEntry,
    Lot,
    Member,
    Purchase,
    PurchaseLine,
    PurchaseState,
    Redemption,
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
_coupons = cast(Table, Coupon.__table__)
_batches = cast(Table, Batch.__table__)
_redemptions = cast(Table, Redemption.__table__)

# Built once: executing a prepared statement object skips rebuilding and re-keying it.
# Whether the purchase's month is closed rides along with the first read (no statement of its
# own): `plans.purchase` refuses a sale dated in a closed month.
_CLOSED = exists().where(ClosedPeriod.month == bindparam("month", type_=Date()))
_TOKEN = select(ConfigVersion.token).where(ConfigVersion.id == 1).scalar_subquery()
_GUEST = select(_TOKEN, _CLOSED)
_LOCK = (
    select(
        _members.c.number,
        _members.c.status,
        _members.c.tier_id,
        _members.c.tier_since,
        _members.c.balance,
        _members.c.pending_points,
        _members.c.debt,
        _TOKEN,
        _CLOSED,
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
    member_id: int | None  # None: a guest
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
    coupon_codes: tuple[str, ...] = ()  # as given, in order, without repeats


@dataclass(slots=True)
class Posted:
    purchase: PostedPurchase | None  # None: the id was taken (a retry); replay it
    member: Member | PostedMember | None
    plan: plans.PurchasePlan | None
    balance: int | None  # after the purchase
    coupons: list[PostedRedemption] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PostedPurchase:
    """The purchase as written, for the response (an ORM object costs more to build)."""

    id: int
    source: str
    external_id: str
    member_id: int | None
    campaign_id: int | None
    amount: Decimal
    currency: str
    base_amount: Decimal
    points_earned: int
    state: str = PurchaseState.COMPLETED.value


@dataclass(frozen=True, slots=True)
class PostedRedemption:
    """A coupon used by the purchase, for the response."""

    batch_id: int
    coupon_id: int | None
    discount: Decimal
    currency: str


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
    """WITH c AS (
         UPDATE coupons SET state = 'redeemed', redeemed_at = :occurred_at
         WHERE id = ANY(CAST(:coupon_ids AS bigint[])) AND state = 'issued'
         RETURNING id),
       p AS (
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
       r AS (
         INSERT INTO coupon_redemptions (batch_id, coupon_id, member_id, purchase_id, discount,
           currency, redeemed_at, idempotency_key)
         SELECT x.batch_id, x.coupon_id, :member_id, p.id, x.discount, x.currency,
           :occurred_at, 'purchase:' || p.id || ':coupon:' || x.code
         FROM p CROSS JOIN json_to_recordset(CAST(:redemptions AS json))
           AS x(batch_id integer, coupon_id bigint, discount numeric, currency text, code text)),
       m AS (
         UPDATE members SET balance = :new_balance, pending_points = :new_pending,
           debt = :new_debt, tier_id = :new_tier_id, tier_since = :new_tier_since,
           updated_at = :now
         WHERE id = :member_id AND EXISTS (SELECT 1 FROM p))
       SELECT (SELECT id FROM p), (SELECT array_agg(id) FROM c)"""
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
    member: dict[str, Any] | None  # new balance, pending, debt, tier, tier_since
    tier_change: dict[str, Any] | None
    coupon_ids: list[int]
    redemptions: list[dict[str, Any]]  # batch_id, coupon_id, discount, currency, code


def _write_postgresql(conn: Connection, rows: _Rows, actor: Actor) -> tuple[int | None, list[int]]:
    """All of it in one statement (data-modifying CTEs): on a retry no purchase is written.
    Returns the purchase's id and the coupons this statement redeemed."""
    lot = rows.lot or {"remaining": 0, "state": "active", "available_at": None, "expires_at": None}
    purchase = rows.purchase
    member = rows.member or dict.fromkeys(_MEMBER_KEYS)
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
            "coupon_ids": rows.coupon_ids,
            "redemptions": json.dumps(rows.redemptions, ensure_ascii=False),
            "actor_kind": actor.kind,
            "actor_label": actor.label,
            "actor_user_id": actor.user_id,
            **{f"new_{k}": v for k, v in member.items()},
        },
    )
    return cast(int | None, row[0]), list(row[1] or [])


_MEMBER_KEYS = ("balance", "pending", "debt", "tier_id", "tier_since")
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
_REDEEM_COUPONS = (
    update(_coupons)
    .where(
        _coupons.c.id.in_(bindparam("coupon_ids", expanding=True)),
        _coupons.c.state == CouponState.ISSUED.value,
    )
    .values(state=CouponState.REDEEMED.value, redeemed_at=bindparam("at", type_=UTCDateTime()))
    .returning(_coupons.c.id)
)
_GIVE_BACK = (
    update(_coupons)
    .where(_coupons.c.id.in_(bindparam("coupon_ids", expanding=True)))
    .values(state=CouponState.ISSUED.value, redeemed_at=None)
)


def _write_portable(conn: Connection, rows: _Rows, actor: Actor) -> tuple[int | None, list[int]]:
    """The same rows statement by statement (SQLite has no data-modifying CTEs)."""
    purchase_id = conn.execute(_INSERT[conn.dialect.name], rows.purchase).scalar()
    if purchase_id is None:
        return None, []
    redeemed: list[int] = []
    if rows.coupon_ids:
        at = rows.purchase["occurred_at"]
        params = {"coupon_ids": rows.coupon_ids, "at": at}
        redeemed = list(conn.execute(_REDEEM_COUPONS, params).scalars())
    if rows.redemptions:
        conn.execute(
            insert(_redemptions),
            [
                {
                    "batch_id": r["batch_id"],
                    "coupon_id": r["coupon_id"],
                    "member_id": rows.purchase["member_id"],
                    "purchase_id": purchase_id,
                    "discount": Decimal(r["discount"]),
                    "currency": r["currency"],
                    "redeemed_at": rows.purchase["occurred_at"],
                    "idempotency_key": f"purchase:{purchase_id}:coupon:{r['code']}",
                }
                for r in rows.redemptions
            ],
        )
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
    if rows.member is not None:
        conn.execute(
            _UPDATE_MEMBER,
            {
                "member_id": rows.purchase["member_id"],
                **{f"new_{k}": v for k, v in rows.member.items()},
            },
        )
    return cast(int, purchase_id), redeemed


def _rows(
    sale: Sale,
    campaign_id: int | None,
    plan: plans.PurchasePlan,
    after: plans.MemberState | None,
    used: list[tuple[str, coupons.Check]],
) -> _Rows:
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
            "campaign_id": campaign_id,
            "state": PurchaseState.COMPLETED.value,
            "points_earned": plan.points,
            "points_reversed": 0,
            "fingerprint": sale.fingerprint,
            "balance_after": after.points.balance if after else None,
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
        member=None
        if after is None
        else {
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
        coupon_ids=[c.coupon.id for _, c in used if c.coupon is not None],
        redemptions=[
            {
                "batch_id": c.batch.id,
                "coupon_id": c.coupon.id if c.coupon else None,
                "discount": str(c.discount),
                "currency": c.batch.currency,
                "code": code,
            }
            for code, c in used
            if c.batch is not None
        ],
    )


def _codes_statement(dialect: str) -> Select[Any]:
    wanted = (
        _coupons.c.code == any_(bindparam("codes", type_=ARRAY(String())))
        if dialect == "postgresql"
        else _coupons.c.code.in_(bindparam("codes", expanding=True))
    )
    return (
        select(
            *(_coupons.c[name] for name in coupons.COUPON_COLUMNS),
            *(_batches.c[name] for name in coupons.BATCH_COLUMNS),
        )
        .join(_batches, _batches.c.id == _coupons.c.batch_id)
        .where(wanted)
    )


_CODES = {dialect: _codes_statement(dialect) for dialect in ("postgresql", "sqlite")}
_EXISTING = select(_purchases.c.id).where(
    _purchases.c.source == bindparam("source"),
    _purchases.c.external_id == bindparam("external_id"),
)
_PG.update(codes=_Driver(_CODES["postgresql"]))


class _Sent:
    """What the first round trip read."""

    def __init__(self) -> None:
        self.member: Any = None
        self.facts: Any = None
        self.coupons: list[Any] = []


def _read(conn: Connection, sale: Sale, wanted: list[str], month: date) -> tuple[_Sent, Any]:
    """The first round trip: the member locked (with the settings' token and whether
    `month` is closed), the history's
    facts (with the settings used last, if any), the coupons' rows. On PostgreSQL in one
    pipeline: its statements run in order, so the facts are read under the lock, as if sent
    one by one."""
    sent = _Sent()
    fast = conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
    member = sale.member_id
    guess = program_settings.latest() if fast and member is not None else None
    if not fast:
        if member is not None:
            sent.member = conn.execute(_LOCK, {"member_id": member, "month": month}).one_or_none()
        if wanted:
            sent.coupons = list(conn.execute(_CODES[conn.dialect.name], {"codes": wanted}))
        return sent, None
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.pipeline():
        cursors = {}
        if member is not None:
            cursors["member"] = _PG["lock"].send(raw, {"member_id": member, "month": month})
            if guess is not None:
                asked = history.params(guess.program, member, sale.occurred_at)
                cursors["facts"] = _PG[guess.program.tier_metric].send(raw, asked)
        if wanted:
            cursors["coupons"] = _PG["codes"].send(raw, {"codes": wanted})
    if "member" in cursors:
        sent.member = cursors["member"].fetchone()
    if "facts" in cursors:
        sent.facts = cursors["facts"].fetchone()
    if "coupons" in cursors:
        sent.coupons = cursors["coupons"].fetchall()
    return sent, guess


def post(
    session: Session, actor: Actor, sale: Sale, *, zone: ZoneInfo, base_currency: str
) -> Posted | None:
    """Post `sale`; None when the general path must (an inactive member, whose purchase it
    explains; a public or unknown coupon code, whose use it counts or refuses)."""
    if session.new or session.dirty or session.deleted:
        session.flush()  # what the caller changed in this session is visible to the SQL below
    conn = session.connection()
    fast = conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
    at = sale.occurred_at
    wanted = [codes.normalise(code) for code in sale.coupon_codes]
    month = plans.month_of(at, zone)
    sent, guess = _read(conn, sale, wanted, month)
    member: plans.MemberState | None = None
    if sale.member_id is not None:
        if sent.member is None:
            raise NotFound("member.not_found", "No member with id %(id)s.", id=sale.member_id)
        number, status, tier_id, tier_since, balance, pending, debt, token, shut = sent.member
        if status != "active":
            return None
        member = plans.MemberState(
            sale.member_id,
            number,
            status,
            tier_id,
            tier_since,
            plans.Points(balance, pending, debt),
        )
    else:
        token, shut = conn.execute(_GUEST, {"month": month}).one()
    config = program_settings.config(session, token)
    program = config.program
    facts = None
    if member is not None:
        if guess is None or guess.token != token:  # no guess, or the settings changed since
            asked = history.params(program, member.id, at)
            if fast:
                sent.facts = _PG[program.tier_metric].run(conn, asked)
            else:
                sent.facts = conn.execute(history.statement(program), asked).one()
        facts = history.from_row(sent.facts)
    settings = plans.Settings(
        program,
        config.ladder,
        config.rules,
        program_settings.campaign_names(session, config.rules),
    )
    try:
        used = _check_coupons(sale, wanted, sent.coupons, member, settings)
    except coupons.CouponRefused:
        # A retry finds its coupons used, by itself: replay it rather than refuse. (Looked
        # for only here: a retry without coupons is found by the write's ON CONFLICT.)
        ids = {"source": sale.source, "external_id": sale.external_id}
        if conn.execute(_EXISTING, ids).first() is not None:
            return Posted(None, None, None, None)
        raise
    if used is None:
        return None
    campaign_id = plans.campaign(
        sale.campaign_id, [found.batch.campaign_id for _, found in used if found.batch]
    )
    try:
        plan = plans.purchase(
            settings,
            member,
            facts,
            plans.Sale(at, sale.base_amount, sale.channel_id, campaign_id, sale.categories),
            zone=zone,
            base_currency=base_currency,
            closed=(month,) if shut else (),
        )
    except plans.MonthClosed:
        # A retry of a purchase recorded before its month closed: replay it (idempotency
        # beats the close). Looked for only here: a closed month is rare.
        ids = {"source": sale.source, "external_id": sale.external_id}
        if conn.execute(_EXISTING, ids).first() is not None:
            return Posted(None, None, None, None)
        raise
    after = None if member is None else plans.after(member, plan)
    rows = _rows(sale, campaign_id, plan, after, used)
    write = _write_postgresql if fast else _write_portable
    purchase_id, redeemed = write(conn, rows, actor)
    if purchase_id is None:  # recorded already, by a retry: replay it
        if redeemed:  # the coupons this statement took (still valid for it): give them back
            conn.execute(_GIVE_BACK, {"coupon_ids": redeemed})
        return Posted(None, None, None, None)
    if len(redeemed) != len(rows.coupon_ids):
        # Another purchase redeemed a coupon first: refuse, and the caller rolls back.
        raise coupons.CouponRefused(
            "coupon.used", N_("A coupon on this purchase was already used.")
        )
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
    if used:
        _expire_coupons(session, rows.coupon_ids)
    purchase = PostedPurchase(
        purchase_id,
        sale.source,
        sale.external_id,
        sale.member_id,
        campaign_id,
        sale.amount,
        sale.currency,
        sale.base_amount,
        plan.points,
    )
    redemptions = [
        PostedRedemption(r["batch_id"], r["coupon_id"], Decimal(r["discount"]), r["currency"])
        for r in rows.redemptions
    ]
    if member is None or after is None:
        return Posted(purchase, None, plan, None, redemptions)
    values = {
        "number": member.number,
        "status": member.status,
        "tier_id": after.tier_id,
        "tier_since": after.tier_since,
        "balance": after.points.balance,
        "pending_points": after.points.pending,
        "debt": after.points.debt,
    }
    return Posted(
        purchase, _sync(session, member.id, values), plan, after.points.balance, redemptions
    )


def _check_coupons(
    sale: Sale,
    wanted: list[str],
    found: list[Any],
    member: plans.MemberState | None,
    settings: plans.Settings,
) -> list[tuple[str, coupons.Check]] | None:
    """Each code checked by `coupons.check`, in the order given; the first refusal raises.
    None when a code is not a personal or bearer coupon (a public code, or unknown): the
    general path counts public uses under the batch's lock, and explains an unknown code."""
    rows = {}
    width = len(coupons.COUPON_COLUMNS)
    for row in found:
        coupon = coupons.CouponRow(*row[:width])
        rows[coupon.code] = (coupon, coupons.BatchRow(*row[width:]))
    if any(code not in rows for code in wanted):
        return None
    tier = settings.tiers[member.tier_id].code if member else None
    used = []
    for given, code in zip(sale.coupon_codes, wanted, strict=True):
        coupon, batch = rows[code]
        result = coupons.check(
            code,
            coupon,
            batch,
            member_id=member.id if member else None,
            tier_code=tier,
            spend=sale.amount + sale.discount,
            currency=sale.currency,
            at=sale.occurred_at,
        )
        if not result.ok:
            raise result.refusal()
        used.append((given, result))
    return used


def _expire_coupons(session: Session, coupon_ids: list[int]) -> None:
    """Coupons this session holds reload what the statement changed."""
    for coupon_id in coupon_ids:
        held = session.identity_map.get(identity_key(Coupon, coupon_id))
        if held is not None:
            session.expire(held, ["state", "redeemed_at"])
