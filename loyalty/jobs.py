"""Scheduled jobs (`retain jobs run`): unlock pending points, expire lots and coupons,
birthday rewards, referral completion, tier evaluation.

Each job runs in its own transaction and first takes its row in `job_runs` (an UPDATE,
which locks the row on PostgreSQL and takes the write lock on SQLite), so a second runner
started at the same time waits and then finds nothing left to do. Every job also only
touches what is still due, so running one twice does nothing the second time.
Set-based jobs lock the members they change in id order first, like every other change to
a member's points, so a purchase posted meanwhile is never lost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, func, insert, literal, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Select

from core.accounts import throttle
from core.audit import Actor
from core.db import rowcount
from core.timeutil import UTCDateTime
from loyalty import coupons, ledger, referrals, tiers
from loyalty import program as program_settings
from loyalty.models import (
    Coupon,
    EntryType,
    JobRun,
    LedgerEntry,
    Lot,
    LotState,
    Member,
    MemberStatus,
)

JOB_ACTOR = Actor.system("scheduled job")
Job = Callable[[Session, datetime, ZoneInfo], int | dict[str, int]]


def _lock_members(session: Session, member_ids: Select[int]) -> list[int]:
    """Lock the members selected by the subquery `member_ids`, in id order."""
    return list(
        session.scalars(
            select(Member.id).where(Member.id.in_(member_ids)).order_by(Member.id).with_for_update()
        )
    )


def unlock_pending(session: Session, at: datetime, zone: ZoneInfo) -> int:
    """Pending lots whose return window has passed become spendable."""
    due = and_(Lot.state == LotState.PENDING, Lot.available_at <= at)
    locked = _lock_members(session, select(Lot.member_id).where(due))
    if not locked:
        return 0
    sums = (
        select(Lot.member_id, func.sum(Lot.remaining).label("points"))
        .where(due)
        .group_by(Lot.member_id)
        .subquery()
    )
    session.execute(
        update(Member)
        .where(Member.id == sums.c.member_id)
        .values(pending_points=Member.pending_points - sums.c.points)
        .execution_options(synchronize_session=False)
    )
    in_debt = list(
        session.scalars(
            select(Member.id).where(
                Member.id.in_(select(Lot.member_id).where(due)), Member.debt > 0
            )
        )
    )
    unlocked = rowcount(
        session.execute(
            update(Lot)
            .where(due)
            .values(state=LotState.ACTIVE)
            .execution_options(synchronize_session=False)
        )
    )
    session.expire_all()
    for member_id in in_debt:  # rare: a refund took back points already spent
        member = session.get(Member, member_id)
        assert member is not None
        active = session.scalars(
            select(Lot)
            .where(Lot.member_id == member_id, Lot.state == LotState.ACTIVE, Lot.remaining > 0)
            .order_by(Lot.available_at.desc(), Lot.id)
        )
        ledger.settle_debt(member, list(active))
    session.flush()
    return unlocked


def expire_lots(session: Session, at: datetime, zone: ZoneInfo) -> int:
    """Write an expire entry for what is left of each lot past its expiry, set-based."""
    due = and_(Lot.state == LotState.ACTIVE, Lot.expires_at <= at, Lot.remaining > 0)
    if not _lock_members(session, select(Lot.member_id).where(due)):
        return 0
    running = func.sum(Lot.remaining).over(partition_by=Lot.member_id, order_by=Lot.id)
    rows = (
        select(
            Lot.member_id,
            literal(at, UTCDateTime()),
            literal(EntryType.EXPIRE.value),
            -Lot.remaining,
            Member.balance - running,
            literal("Points expired"),
            literal("expiry"),
            literal("lot"),
            Lot.id,
            literal(JOB_ACTOR.kind),
            literal(JOB_ACTOR.label),
            literal("expire:lot:") + cast(Lot.id, String),
        )
        .join(Member, Member.id == Lot.member_id)
        .where(due)
    )
    session.execute(
        insert(LedgerEntry).from_select(
            [
                "member_id",
                "occurred_at",
                "type",
                "points",
                "balance_after",
                "reason",
                "rule",
                "source_type",
                "source_id",
                "actor_kind",
                "actor_label",
                "idempotency_key",
            ],
            rows,
        )
    )
    sums = (
        select(Lot.member_id, func.sum(Lot.remaining).label("points"))
        .where(due)
        .group_by(Lot.member_id)
        .subquery()
    )
    session.execute(
        update(Member)
        .where(Member.id == sums.c.member_id)
        .values(balance=Member.balance - sums.c.points)
        .execution_options(synchronize_session=False)
    )
    expired = rowcount(
        session.execute(
            update(Lot)
            .where(due)
            .values(remaining=0, state=LotState.EXPIRED)
            .execution_options(synchronize_session=False)
        )
    )
    session.expire_all()
    return expired


def expire_coupons(session: Session, at: datetime, zone: ZoneInfo) -> int:
    return coupons.expire_due(session, at)


def birthdays(session: Session, at: datetime, zone: ZoneInfo) -> int:
    """Today's birthdays (local date) get their reward once a year; 29 February birthdays
    are celebrated on the 28th in other years."""
    today = at.astimezone(zone).date()
    days = [today.day]
    if today.month == 2 and today.day == 28 and not _leap(today.year):
        days.append(29)
    program = program_settings.get(session)
    if not program.birthday_points and program.birthday_batch_id is None:
        return 0
    candidates = session.scalars(
        select(Member.id)
        .where(
            Member.status == MemberStatus.ACTIVE,
            Member.birth_month == today.month,
            Member.birth_day.in_(days),
        )
        .order_by(Member.id)
    ).all()
    reason = f"Happy birthday {today.year}!"
    given = 0
    for member_id in candidates:
        member = ledger.lock_member(session, member_id)
        key = f"birthday:{today.year}:{member_id}"
        if program.birthday_batch_id is not None:
            # The coupon itself is the record that this year's reward was given.
            if session.scalar(
                select(Coupon.id).where(
                    Coupon.member_id == member_id,
                    Coupon.batch_id == program.birthday_batch_id,
                    Coupon.issued_reason == reason,
                )
            ):
                continue
            coupons.issue(
                session, JOB_ACTOR, program.birthday_batch_id, member, reason=reason, at=at
            )
        else:
            if ledger.existing(session, f"{key}:birthday") is not None:
                continue
            ledger.credit(
                session,
                member,
                JOB_ACTOR,
                [ledger.Credit(program.birthday_points, reason, "birthday", EntryType.BONUS)],
                key=key,
                at=at,
                program=program,
                zone=zone,
                source=("birthday", today.year),
            )
        given += 1
    return given


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def complete_referrals(session: Session, at: datetime, zone: ZoneInfo) -> int:
    return referrals.complete_due(session, JOB_ACTOR, at, zone)


def evaluate_tiers(session: Session, at: datetime, zone: ZoneInfo) -> dict[str, int]:
    return tiers.evaluate(session, at)


JOBS: dict[str, Job] = {
    "unlock_pending": unlock_pending,
    "expire_lots": expire_lots,
    "expire_coupons": expire_coupons,
    "birthdays": birthdays,
    "complete_referrals": complete_referrals,
    "evaluate_tiers": evaluate_tiers,
    # Not loyalty's own, but nightly like the rest: sign-in attempts past their retention.
    "prune_signin_attempts": lambda session, at, zone: throttle.prune(session, at),
}


def _claim(session: Session, name: str, at: datetime) -> None:
    claimed = rowcount(
        session.execute(update(JobRun).where(JobRun.name == name).values(last_started_at=at))
    )
    if not claimed:
        session.add(JobRun(name=name, last_started_at=at))
        session.flush()


def run(session: Session, name: str, at: datetime, zone: ZoneInfo) -> dict[str, int]:
    """Run one job inside `session`'s transaction (the caller commits)."""
    _claim(session, name, at)
    result = JOBS[name](session, at, zone)
    counts = result if isinstance(result, dict) else {"done": result}
    session.execute(
        update(JobRun).where(JobRun.name == name).values(last_finished_at=at, last_result=counts)
    )
    return counts


def run_due(
    factory: sessionmaker[Session], at: datetime, zone: ZoneInfo, only: list[str] | None = None
) -> dict[str, dict[str, int]]:
    """Every job (or `only` some), each in its own transaction, in dependency order."""
    results: dict[str, dict[str, int]] = {}
    for name in JOBS:
        if only and name not in only:
            continue
        with factory() as session, session.begin():
            results[name] = run(session, name, at, zone)
    return results
