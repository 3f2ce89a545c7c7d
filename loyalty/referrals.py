"""Referrals (老客户推荐新客户): a member's code brings a new member; both are rewarded once the
new member's first qualifying purchase has outlived its return window.

Rules: no self-referral (same person, phone or email), the referee is new (no purchases),
one referrer per referee (a unique constraint), and at most `referral_monthly_cap` rewarded
referrals per referrer per calendar month (later ones complete without the referrer's reward).
A full refund of the qualifying purchase before completion cancels the referral.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import bounds
from core.audit import Actor
from core.errors import Conflict, NotFound, ValidationFailed
from loyalty import codes, coupons, ledger
from loyalty import program as program_settings
from loyalty.models import (
    EntryType,
    Member,
    MemberStatus,
    Program,
    Purchase,
    PurchaseState,
    Referral,
    ReferralState,
)


def _same_email(a: str | None, b: str | None) -> bool:
    """Gmail-style tags and dots do not make a new person: a.b+x@host is ab@host."""
    if not a or not b:
        return False

    def canonical(email: str) -> str:
        local, _, host = email.lower().partition("@")
        return re.sub(r"\+.*$", "", local).replace(".", "") + "@" + host

    return canonical(a) == canonical(b)


def _same_phone(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return re.sub(r"\D", "", a)[-11:] == re.sub(r"\D", "", b)[-11:]


def referrer_by_code(session: Session, code: str) -> Member:
    wanted = codes.normalise(code)
    referrer = None
    if not bounds.text_problem(wanted, bounds.length(Member.referral_code)):
        referrer = session.scalar(select(Member).where(Member.referral_code == wanted))
    if referrer is None or referrer.status != MemberStatus.ACTIVE:
        shown = code.strip()[:20]
        raise ValidationFailed(
            "referral.code",
            "The referral code %(referral_code)s is not valid.",
            referral_code=repr(shown),
        )
    return referrer


def start(session: Session, referee: Member, code: str, *, at: datetime) -> Referral:
    """A pending referral for a new member who signed up with `code`."""
    referrer = referrer_by_code(session, code)
    if (
        referrer.id == referee.id
        or _same_phone(referrer.phone, referee.phone)
        or _same_email(referrer.email, referee.email)
    ):
        raise ValidationFailed("referral.self", "Members cannot refer themselves.")
    if session.scalar(select(Referral.id).where(Referral.referee_id == referee.id)):
        raise Conflict("referral.exists", "This member was already referred by someone.")
    if session.scalar(select(Purchase.id).where(Purchase.member_id == referee.id).limit(1)):
        raise Conflict("referral.not_new", "Only new members (no purchases yet) can be referred.")
    referral = Referral(referrer_id=referrer.id, referee_id=referee.id, created_at=at)
    session.add(referral)
    session.flush()
    return referral


def start_wait(session: Session, referee_id: int, purchase_id: int, completes_at: datetime) -> None:
    """The referee's qualifying first purchase (`plans.purchase` decides which) starts the
    wait: the referral completes at `completes_at` unless the purchase is refunded."""
    session.execute(
        update(Referral)
        .where(Referral.referee_id == referee_id, Referral.state == ReferralState.PENDING)
        .values(state=ReferralState.QUALIFYING, purchase_id=purchase_id, completes_at=completes_at)
        .execution_options(synchronize_session="fetch")
    )


def on_full_refund(session: Session, purchase: Purchase) -> Referral | None:
    referral = session.scalar(
        select(Referral).where(
            Referral.purchase_id == purchase.id, Referral.state == ReferralState.QUALIFYING
        )
    )
    if referral is None:
        return None
    referral.state = ReferralState.CANCELLED
    referral.note = "The qualifying purchase was refunded."
    session.flush()
    return referral


def _reward(
    session: Session,
    actor: Actor,
    program: Program,
    member: Member,
    *,
    points: int,
    batch_id: int | None,
    referral: Referral,
    side: str,
    reason: str,
    at: datetime,
    zone: ZoneInfo,
) -> None:
    if batch_id is not None:
        coupons.issue(session, actor, batch_id, member, reason=reason, at=at)
    elif points:
        ledger.credit(
            session,
            member,
            actor,
            [ledger.Credit(points, reason, f"referral_{side}", EntryType.BONUS)],
            key=f"referral:{referral.id}:{side}",
            at=at,
            program=program,
            zone=zone,
            source=("referral", referral.id),
        )


def complete_due(session: Session, actor: Actor, at: datetime, zone: ZoneInfo) -> int:
    """Complete every referral whose qualifying purchase has passed its return window."""
    program = program_settings.get(session)
    due = list(
        session.scalars(
            select(Referral.id)
            .where(Referral.state == ReferralState.QUALIFYING, Referral.completes_at <= at)
            .order_by(Referral.id)
        )
    )
    done = 0
    for referral_id in due:
        done += _complete(session, actor, program, referral_id, at, zone)
    return done


def _complete(
    session: Session, actor: Actor, program: Program, referral_id: int, at: datetime, zone: ZoneInfo
) -> int:
    referral = session.get(Referral, referral_id)
    assert referral is not None
    # Both members' points change: lock them in id order so two jobs cannot deadlock.
    first, second = sorted((referral.referrer_id, referral.referee_id))
    locked = {
        first: ledger.lock_member(session, first),
        second: ledger.lock_member(session, second),
    }
    session.refresh(referral, with_for_update=True)
    if referral.state != ReferralState.QUALIFYING:
        return 0  # another runner got here first
    purchase = session.get(Purchase, referral.purchase_id)
    if purchase is None or purchase.state == PurchaseState.REFUNDED:
        referral.state, referral.note = (
            ReferralState.CANCELLED,
            "The qualifying purchase was refunded.",
        )
        return 0
    referrer, referee = locked[referral.referrer_id], locked[referral.referee_id]
    _reward(
        session,
        actor,
        program,
        referee,
        points=program.referee_points,
        batch_id=program.referee_batch_id,
        referral=referral,
        side="referee",
        # Member numbers, not names: the ledger is kept for good, a name is erased on closing.
        reason=f"Welcome reward: referred by member {referrer.number}",
        at=at,
        zone=zone,
    )
    local = at.astimezone(zone).date()
    month_start = datetime.combine(local.replace(day=1), datetime.min.time(), zone)
    rewarded = (
        session.scalar(
            select(func.count(Referral.id)).where(
                Referral.referrer_id == referrer.id,
                Referral.referrer_rewarded,
                Referral.completed_at >= month_start,
            )
        )
        or 0
    )
    if referrer.status == MemberStatus.ACTIVE and rewarded < program.referral_monthly_cap:
        _reward(
            session,
            actor,
            program,
            referrer,
            points=program.referrer_points,
            batch_id=program.referrer_batch_id,
            referral=referral,
            side="referrer",
            reason=f"Referral reward: member {referee.number} joined",
            at=at,
            zone=zone,
        )
        referral.referrer_rewarded = True
    else:
        referral.note = "Monthly referral cap reached: no referrer reward this time."
    referral.state, referral.completed_at = ReferralState.COMPLETED, at
    session.flush()
    return 1


def of_member(session: Session, member_id: int) -> list[tuple[Referral, Member]]:
    rows = session.execute(
        select(Referral, Member)
        .join(Member, Member.id == Referral.referee_id)
        .where(Referral.referrer_id == member_id)
        .order_by(Referral.id.desc())
    ).all()
    return [(r, m) for r, m in rows]


def revenue_by_referrer(session: Session) -> pd.DataFrame:
    """Per referrer: referred members (not cancelled), their purchases and net revenue in the
    base currency after refunds, largest first."""
    referrer = Member.__table__.alias("referrer")
    revenue = func.coalesce(func.sum(Purchase.net_base_amount), 0)
    query = (
        select(
            referrer.c.number,
            referrer.c.name,
            func.count(func.distinct(Referral.referee_id)),
            func.count(Purchase.id),
            revenue,
        )
        .join(referrer, referrer.c.id == Referral.referrer_id)
        .outerjoin(Purchase, Purchase.member_id == Referral.referee_id)
        .where(Referral.state != ReferralState.CANCELLED)
        .group_by(referrer.c.number, referrer.c.name)
        .order_by(revenue.desc(), referrer.c.number)
    )
    columns = ["referrer_number", "referrer_name", "referees", "purchases", "revenue"]
    return pd.DataFrame(session.execute(query).all(), columns=columns)


def get(session: Session, referral_id: int) -> Referral:
    referral = session.get(Referral, referral_id)
    if referral is None:
        raise NotFound("referral.not_found", "No referral %(id)s.", id=referral_id)
    return referral
