"""Members: sign-up (with an optional referral code), profile changes, status, search."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit
from core.audit import Actor
from core.errors import Conflict, NotFound, ValidationFailed
from core.timeutil import utcnow
from loyalty import codes, ledger, program, referrals
from loyalty.models import (
    Batch,
    Coupon,
    CouponState,
    EntryType,
    LedgerEntry,
    Member,
    MemberStatus,
    Purchase,
    Referral,
    TierChange,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
GENDERS = ("female", "male", "other")


def normalise_phone(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    if not 6 <= len(digits) <= 15:
        raise ValidationFailed("member.phone", f"'{raw}' is not a phone number.")
    return ("+" if text.startswith("+") else "") + digits


def normalise_email(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    email = raw.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise ValidationFailed("member.email", f"'{raw}' is not an email address.")
    return email


@dataclass(slots=True)
class Profile:
    """The fields staff, integrations and members fill in. None leaves a field unset."""

    name: str = ""
    phone: str | None = None
    email: str | None = None
    birthday: date | None = None
    gender: str | None = None
    region: str | None = None
    city: str | None = None
    occupation: str | None = None
    industry: str | None = None
    marketing_consent: bool = False
    join_channel_id: int | None = None
    join_campaign_id: int | None = None


def _clean(profile: Profile) -> Profile:
    profile.name = profile.name.strip()
    if not profile.name:
        raise ValidationFailed("member.name", "Give the member's name.")
    profile.phone = normalise_phone(profile.phone)
    profile.email = normalise_email(profile.email)
    if profile.phone is None and profile.email is None:
        raise ValidationFailed("member.contact", "Give a phone number or an email address.")
    if profile.gender is not None:
        profile.gender = profile.gender.strip().lower() or None
        if profile.gender not in (None, *GENDERS):
            raise ValidationFailed("member.gender", f"Gender is one of {', '.join(GENDERS)}.")
    if profile.birthday is not None and profile.birthday > utcnow().date():
        raise ValidationFailed("member.birthday", "The birthday is in the future.")
    for name in ("region", "city", "occupation", "industry"):
        value = getattr(profile, name)
        setattr(profile, name, value.strip() or None if isinstance(value, str) else value)
    return profile


def _check_unique(session: Session, profile: Profile, member_id: int | None = None) -> None:
    for field, value in (("phone", profile.phone), ("email", profile.email)):
        if value is None:
            continue
        column = getattr(Member, field)
        clash = session.scalar(
            select(Member.number).where(column == value, Member.id != (member_id or 0))
        )
        if clash:
            raise Conflict(
                f"member.{field}_taken", f"The {field} {value} belongs to member {clash}."
            )


def snapshot(member: Member) -> dict[str, Any]:
    return {
        "number": member.number,
        "name": member.name,
        "phone": member.phone,
        "email": member.email,
        "birthday": str(member.birthday) if member.birthday else None,
        "gender": member.gender,
        "region": member.region,
        "city": member.city,
        "occupation": member.occupation,
        "industry": member.industry,
        "marketing_consent": member.marketing_consent,
        "status": member.status,
    }


def create(
    session: Session,
    actor: Actor,
    profile: Profile,
    *,
    referral_code: str | None = None,
    zone: ZoneInfo,
    at: datetime | None = None,
) -> Member:
    """A new member, with the sign-up bonus and, given a referral code, a pending referral."""
    at = at or utcnow()
    profile = _clean(profile)
    _check_unique(session, profile)
    settings = program.get(session)
    tier = program.entry_tier(session)
    member = Member(
        number=f"new-{codes.one(12)}",  # replaced by the id-based number below
        referral_code=codes.one(codes.REFERRAL_LENGTH),
        tier_id=tier.id,
        tier_since=at,
        joined_at=at,
        consent_at=at if profile.marketing_consent else None,
        **{f.name: getattr(profile, f.name) for f in fields(Profile)},
    )
    _set_birthday(member, profile.birthday)
    try:
        # Add inside the savepoint: begin_nested() flushes pending objects before it starts.
        with session.begin_nested():
            session.add(member)
            session.flush()
    except IntegrityError:
        # Lost a race with a sign-up using the same phone or email.
        _check_unique(session, profile)
        raise
    member.number = f"M{member.id:08d}"
    session.add(TierChange(member_id=member.id, to_tier_id=tier.id, reason="Joined", changed_at=at))
    session.flush()
    if settings.signup_bonus:
        ledger.credit(
            session,
            member,
            actor,
            [ledger.Credit(settings.signup_bonus, "Welcome bonus", "signup", EntryType.BONUS)],
            key=f"signup:{member.id}",
            at=at,
            program=settings,
            zone=zone,
            source=("member", member.id),
        )
    if referral_code:
        referrals.start(session, member, referral_code, at=at)
    audit.record(session, actor, "member.create", "member", member.number, after=snapshot(member))
    return member


def _set_birthday(member: Member, birthday: date | None) -> None:
    member.birthday = birthday
    member.birth_month = birthday.month if birthday else None
    member.birth_day = birthday.day if birthday else None


def get(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound("member.not_found", f"No member with id {member_id}.")
    return member


def by_number(session: Session, number: str) -> Member:
    member = session.scalar(select(Member).where(Member.number == number.strip().upper()))
    if member is None:
        raise NotFound("member.not_found", f"No member numbered {number}.")
    return member


def update_profile(session: Session, actor: Actor, member_id: int, **changes: Any) -> Member:
    """Change profile fields (staff or the member's own integration). Audited."""
    member = ledger.lock_member(session, member_id)
    if member.status == MemberStatus.CLOSED:
        raise Conflict("member.closed", f"Member {member.number} is closed.")
    unknown = set(changes) - {f.name for f in fields(Profile)}
    if unknown:
        raise ValidationFailed("member.field", f"Unknown field {', '.join(sorted(unknown))}.")
    current = Profile(**{f.name: getattr(member, f.name) for f in fields(Profile)})
    for name, value in changes.items():
        setattr(current, name, value)
    profile = _clean(current)
    _check_unique(session, profile, member.id)
    before = snapshot(member)
    if profile.marketing_consent != member.marketing_consent:
        member.consent_at = utcnow()
    for f in fields(Profile):
        if f.name != "birthday":
            setattr(member, f.name, getattr(profile, f.name))
    _set_birthday(member, profile.birthday)
    session.flush()
    after = snapshot(member)
    audit.record(
        session,
        actor,
        "member.update",
        "member",
        member.number,
        before={k: v for k, v in before.items() if after[k] != v},
        after={k: v for k, v in after.items() if before[k] != v},
    )
    return member


def set_status(session: Session, actor: Actor, member_id: int, status: str, reason: str) -> Member:
    actor.require("admin", "marketer", doing="suspend or reinstate members")
    if status not in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        raise ValidationFailed("member.status", "Status is active or suspended.")
    if not reason.strip():
        raise ValidationFailed("member.reason", "Say why the status changes.")
    member = ledger.lock_member(session, member_id)
    if member.status == MemberStatus.CLOSED:
        raise Conflict("member.closed", f"Member {member.number} is closed.")
    before = member.status
    member.status = status
    session.flush()
    audit.record(
        session,
        actor,
        "member.status",
        "member",
        member.number,
        before={"status": before},
        after={"status": status, "reason": reason.strip()},
    )
    return member


def close(session: Session, actor: Actor, member_id: int) -> Member:
    """Close and anonymise: personal fields are erased, the member number, tier and every
    ledger entry stay (the books must still add up). Unused personal coupons are voided.
    The audit row keeps no personal data either."""
    member = ledger.lock_member(session, member_id)
    if member.status == MemberStatus.CLOSED:
        raise Conflict("member.closed", f"Member {member.number} is already closed.")
    member.status = MemberStatus.CLOSED
    member.name = "Closed member"
    for name in ("phone", "email", "birthday", "birth_month", "birth_day", "gender", "region"):
        setattr(member, name, None)
    member.city = member.occupation = member.industry = None
    member.marketing_consent, member.consent_at = False, utcnow()
    member.notes = ""
    session.execute(
        update(Coupon)
        .where(Coupon.member_id == member.id, Coupon.state == CouponState.ISSUED)
        .values(state=CouponState.VOID)
    )
    session.flush()
    audit.record(
        session, actor, "member.close", "member", member.number, after={"status": "closed"}
    )
    return member


def search(session: Session, q: str, *, limit: int = 50) -> list[Member]:
    """By member number, phone, email (exact) or name (contains)."""
    text = q.strip()
    if not text:
        return list(session.scalars(select(Member).order_by(Member.id.desc()).limit(limit)))
    conditions = [Member.number == text.upper(), Member.name.icontains(text, autoescape=True)]
    if "@" in text:
        conditions.append(Member.email == text.lower())
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 6:
        conditions.append(Member.phone.in_([digits, "+" + digits]))
    return list(
        session.scalars(select(Member).where(or_(*conditions)).order_by(Member.id).limit(limit))
    )


def count(session: Session) -> int:
    return int(session.scalar(select(func.count(Member.id))) or 0)


def export(session: Session, member_id: int) -> dict[str, list[dict[str, Any]]]:
    """Everything Retain holds about a member, table by table, for "download my data".
    Staff-only fields (internal notes, costs, who on staff did what) are left out."""
    member = get(session, member_id)
    profile = snapshot(member) | {
        "joined_at": member.joined_at.isoformat(),
        "marketing_consent_at": member.consent_at.isoformat() if member.consent_at else None,
        "referral_code": member.referral_code,
        "balance": member.balance,
        "pending_points": member.pending_points,
    }
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.member_id == member_id).order_by(LedgerEntry.id)
    )
    bought = session.scalars(
        select(Purchase).where(Purchase.member_id == member_id).order_by(Purchase.id)
    )
    held = session.execute(
        select(Coupon, Batch.name)
        .join(Batch, Batch.id == Coupon.batch_id)
        .where(Coupon.member_id == member_id)
        .order_by(Coupon.id)
    )
    made = session.scalars(
        select(Referral).where(Referral.referrer_id == member_id).order_by(Referral.id)
    )

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "profile": [profile],
        "points": [
            {
                "date": when(e.occurred_at),
                "type": e.type,
                "points": e.points,
                "balance_after": e.balance_after,
                # A referral line names the other member; the member gets the gist.
                "reason": "Referral reward" if e.rule.startswith("referral_") else e.reason,
            }
            for e in entries
        ],
        "purchases": [
            {
                "date": when(p.occurred_at),
                "reference": p.external_id,
                "store": p.store,
                "amount": str(p.amount),
                "currency": p.currency,
                "refunded": str(p.refunded_amount),
                "points_earned": p.points_earned,
                "points_reversed": p.points_reversed,
            }
            for p in bought
        ],
        "coupons": [
            {
                "code": c.code,
                "offer": name,
                "state": c.state,
                "issued_at": when(c.issued_at),
                "valid_until": when(c.valid_until),
                "redeemed_at": when(c.redeemed_at),
            }
            for c, name in held
        ],
        "referrals": [
            {
                "created_at": when(r.created_at),
                "state": r.state,
                "completed_at": when(r.completed_at),
            }
            for r in made
        ],
    }
