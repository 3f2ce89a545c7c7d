"""The points ledger: append-only entries, lots that hold earned points, and draws.

Rules that keep it honest (tests check each after random sequences of actions):

- Every change to a member's points holds that member's row lock (`lock_member`), so two
  requests for one member run one after the other and a balance is never read stale.
- `member.balance` is the sum of the member's entries; it also equals the remaining points
  of their pending and active lots minus `member.debt`.
- Earned points form a lot. A purchase's lot is pending for the return window and cannot be
  spent; other lots (sign-up, birthday, referral, positive adjustment) are active at once.
- Spending draws active lots, soonest-expiring first. A refund reverses the purchase's own
  lot first (pending before active), then other active lots; what it still cannot cover
  becomes `debt`, the balance goes negative, and redemption is blocked until lots that
  become active later have paid the debt back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.audit import Actor
from core.errors import Conflict, NotFound, ValidationFailed
from core.text import N_, Phrase
from loyalty import plans
from loyalty.earning import Credit as Credit
from loyalty.models import (
    EntryType,
    LedgerEntry,
    Lot,
    LotDraw,
    LotState,
    Member,
    MemberStatus,
    Program,
)


class InsufficientPoints(Conflict):
    default_code = "points.insufficient"


class NegativeBalance(Conflict):
    default_code = "points.negative_balance"


def lock_member(session: Session, member_id: int) -> Member:
    """The member's row, locked until the transaction ends (serialises their points)."""
    member = session.scalar(
        select(Member)
        .where(Member.id == member_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if member is None:
        raise NotFound("member.not_found", "No member with id %(id)s.", id=member_id)
    return member


def existing(session: Session, key: str) -> LedgerEntry | None:
    return session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))


def _entry(
    member: Member,
    actor: Actor,
    *,
    type: EntryType,
    points: int,
    reason: str,
    rule: str,
    key: str,
    at: datetime,
    source: tuple[str, int] | None,
    bonus_rule_id: int | None = None,
    lot_id: int | None = None,
) -> LedgerEntry:
    member.balance += points
    return LedgerEntry(
        member_id=member.id,
        occurred_at=at,
        type=type,
        points=points,
        balance_after=member.balance,
        reason=reason[:200],
        rule=rule,
        bonus_rule_id=bonus_rule_id,
        source_type=source[0] if source else None,
        source_id=source[1] if source else None,
        lot_id=lot_id,
        actor_kind=actor.kind,
        actor_label=actor.label,
        actor_user_id=actor.user_id,
        idempotency_key=key,
    )


def credit(
    session: Session,
    member: Member,
    actor: Actor,
    lines: list[Credit],
    *,
    key: str,
    at: datetime,
    program: Program,
    zone: ZoneInfo,
    source: tuple[str, int] | None = None,
    purchase_id: int | None = None,
    pending_until: datetime | None = None,
) -> tuple[Lot | None, list[LedgerEntry]]:
    """Credit `lines` as one lot (pending until `pending_until`, if given; `plans.credit`
    decides). The member must be locked. Entry keys are `key` plus the line's rule, so a
    retry writes nothing twice."""
    plan = plans.credit(
        points_of(member), lines, at=at, program=program, zone=zone, pending_until=pending_until
    )
    return write_credit(
        session, member, actor, plan, key=key, at=at, source=source, purchase_id=purchase_id
    )


def points_of(member: Member) -> plans.Points:
    return plans.Points(member.balance, member.pending_points, member.debt)


def write_credit(
    session: Session,
    member: Member,
    actor: Actor,
    plan: plans.CreditPlan,
    *,
    key: str,
    at: datetime,
    source: tuple[str, int] | None,
    purchase_id: int | None = None,
) -> tuple[Lot | None, list[LedgerEntry]]:
    """Write a credit plan as ORM rows and move the member's totals to the plan's."""
    if plan.lot is None:
        return None, []
    lot = Lot(member_id=member.id, purchase_id=purchase_id, **asdict(plan.lot))
    session.add(lot)
    session.flush()
    entries = [
        LedgerEntry(
            member_id=member.id,
            occurred_at=at,
            type=entry.type,
            points=entry.points,
            balance_after=entry.balance_after,
            reason=entry.reason,
            rule=entry.rule,
            bonus_rule_id=entry.bonus_rule_id,
            source_type=source[0] if source else None,
            source_id=source[1] if source else None,
            lot_id=lot.id,
            actor_kind=actor.kind,
            actor_label=actor.label,
            actor_user_id=actor.user_id,
            idempotency_key=f"{key}:{entry.rule}",
        )
        for entry in plan.entries
    ]
    session.add_all(entries)
    member.balance = plan.after.balance
    member.pending_points = plan.after.pending
    member.debt = plan.after.debt
    session.flush()
    return lot, entries


def settle_debt(member: Member, lots: list[Lot]) -> None:
    """Newly active lots pay back a debt left by a refund before they can be spent."""
    for lot, paid in zip(
        lots, plans.settle(member.debt, [lot.remaining for lot in lots]), strict=True
    ):
        lot.remaining -= paid
        member.debt -= paid
        if paid and lot.remaining == 0:
            lot.state = LotState.SPENT


def _spendable(session: Session, member_id: int) -> list[Lot]:
    return list(
        session.scalars(
            select(Lot)
            .where(Lot.member_id == member_id, Lot.state == LotState.ACTIVE, Lot.remaining > 0)
            # Soonest-expiring first; points that never expire last.
            .order_by(case((Lot.expires_at.is_(None), 1), else_=0), Lot.expires_at, Lot.id)
            .with_for_update()
        )
    )


def _draw(session: Session, entry: LedgerEntry, lots: list[Lot], points: int) -> int:
    """Take up to `points` from `lots` in order (`plans.draw`); returns what is still owed."""
    takes, owed = plans.draw([lot.remaining for lot in lots], points)
    for lot, take in zip(lots, takes, strict=True):
        if take == 0:
            continue
        lot.remaining -= take
        if lot.remaining == 0:
            lot.state = LotState.SPENT
        session.add(LotDraw(entry_id=entry.id, lot_id=lot.id, points=take))
    return owed


def debit(
    session: Session,
    member: Member,
    actor: Actor,
    points: int,
    *,
    type: EntryType,
    reason: str,
    rule: str,
    key: str,
    at: datetime,
    source: tuple[str, int] | None = None,
    allow_debt: bool = False,
) -> LedgerEntry:
    """Spend `points` from active lots (the member must be locked). Redemptions refuse a short
    or negative balance; a manual deduction may leave a debt (`allow_debt`)."""
    if points <= 0:
        raise ValidationFailed("points.amount", "Points to take must be a positive number.")
    if not allow_debt:
        if member.status != MemberStatus.ACTIVE:
            raise Conflict(
                "member.inactive",
                "Member %(member)s is %(status)s.",
                member=member.number,
                status=Phrase(member.status),
            )
        if member.available < 0:
            raise NegativeBalance(
                "points.negative_balance",
                N_(
                    "The available balance is %(available)s after a refund took back points "
                    "already spent; redeeming resumes once it is positive again."
                ),
                {"available": member.available},
                available=f"{member.available:,}",
            )
        if member.available < points:
            raise InsufficientPoints(
                "points.insufficient",
                N_(
                    "This needs %(needed)s points; %(available)s are available "
                    "(%(pending)s more are pending)."
                )
                if member.pending_points
                else N_("This needs %(needed)s points; %(available)s are available."),
                {"needed": points, "available": member.available},
                needed=f"{points:,}",
                available=f"{member.available:,}",
                pending=f"{member.pending_points:,}",
            )
    entry = _entry(
        member,
        actor,
        type=type,
        points=-points,
        reason=reason,
        rule=rule,
        key=key,
        at=at,
        source=source,
    )
    session.add(entry)
    session.flush()
    owed = _draw(session, entry, _spendable(session, member.id), points)
    member.debt += owed
    session.flush()
    return entry


def reverse(
    session: Session,
    member: Member,
    actor: Actor,
    points: int,
    *,
    purchase_id: int,
    reason: str,
    key: str,
    at: datetime,
    source: tuple[str, int],
) -> LedgerEntry:
    """Take back a refunded purchase's points: its own lots first (pending before active),
    then other active lots; the rest becomes debt (the balance may go negative)."""
    entry = _entry(
        member,
        actor,
        type=EntryType.REVERSE,
        points=-points,
        reason=reason,
        rule="refund",
        key=key,
        at=at,
        source=source,
    )
    session.add(entry)
    session.flush()
    own = list(
        session.scalars(
            select(Lot)
            .where(
                Lot.purchase_id == purchase_id,
                Lot.state.in_([LotState.PENDING, LotState.ACTIVE]),
                Lot.remaining > 0,
            )
            .order_by(case((Lot.state == LotState.PENDING, 0), else_=1), Lot.id)
            .with_for_update()
        )
    )
    pending_before = sum(lot.remaining for lot in own if lot.state == LotState.PENDING)
    owed = _draw(session, entry, own, points)
    member.pending_points -= pending_before - sum(
        lot.remaining for lot in own if lot.state == LotState.PENDING
    )
    owed = _draw(session, entry, _spendable(session, member.id), owed)
    member.debt += owed
    session.flush()
    return entry


def history(
    session: Session,
    member_id: int,
    *,
    before_id: int | None = None,
    types: tuple[str, ...] = (),
    limit: int = 50,
) -> list[LedgerEntry]:
    """Newest first by when it happened (a refund posted late sorts by its own time), keyset
    paginated after the entry `before_id`: page 50 costs what page 1 does."""
    query = (
        select(LedgerEntry)
        .where(LedgerEntry.member_id == member_id)
        .order_by(LedgerEntry.occurred_at.desc(), LedgerEntry.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        cursor = session.get(LedgerEntry, before_id)
        if cursor is not None and cursor.member_id == member_id:
            query = query.where(
                (LedgerEntry.occurred_at < cursor.occurred_at)
                | ((LedgerEntry.occurred_at == cursor.occurred_at) & (LedgerEntry.id < before_id))
            )
    if types:
        query = query.where(LedgerEntry.type.in_(types))
    return list(session.scalars(query))


@dataclass(frozen=True, slots=True)
class Summary:
    """What a member's points look like now: pending lots and what expires soon."""

    pending: list[tuple[int, datetime]]  # (points, when they unlock)
    expiring_30: int
    expiring_90: int


def summary(session: Session, member_id: int, at: datetime) -> Summary:
    pending = session.execute(
        select(Lot.remaining, Lot.available_at)
        .where(Lot.member_id == member_id, Lot.state == LotState.PENDING, Lot.remaining > 0)
        .order_by(Lot.available_at)
    ).all()

    def expiring(days: int) -> int:
        return int(
            session.scalar(
                select(func.coalesce(func.sum(Lot.remaining), 0)).where(
                    Lot.member_id == member_id,
                    Lot.state.in_([LotState.ACTIVE, LotState.PENDING]),
                    Lot.expires_at <= at + timedelta(days=days),
                )
            )
            or 0
        )

    return Summary([(p, when) for p, when in pending], expiring(30), expiring(90))
