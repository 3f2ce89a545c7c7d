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

from core import audit, bounds
from core.audit import Actor
from core.errors import Conflict, NotFound, ValidationFailed
from core.timeutil import utcnow
from loyalty import codes, ledger, program, referrals
from loyalty.models import (
    NOTE_LENGTH,
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


# What a person may type for a phone number: digits with spaces, dashes, brackets, a "+".
PHONE_TYPED = bounds.length(Member.phone)


# The longest each field of the portal's forms may be (their `maxlength`): what the
# services accept, so a browser stops a person before the server has to.
LIMITS = {
    "name": bounds.length(Member.name),
    "phone": PHONE_TYPED,
    "email": bounds.length(Member.email),
    "referral_code": bounds.length(Member.referral_code),
    "identifier": bounds.length(Member.email),
}


def is_self(actor: Actor, member: Member) -> bool:
    """Is `actor` this member, acting on their own account in the portal?"""
    return actor.kind == "member" and actor.label == f"member {member.number}"


def normalise_phone(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if bounds.text_problem(text, PHONE_TYPED):
        raise ValidationFailed("member.phone", f"'{text[:40]}' is not a phone number.")
    digits = re.sub(r"\D", "", text)
    if not 6 <= len(digits) <= 15:
        raise ValidationFailed("member.phone", f"'{raw}' is not a phone number.")
    return ("+" if text.startswith("+") else "") + digits


def normalise_email(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    email = raw.strip().lower()
    if (
        bounds.text_problem(email, bounds.length(Member.email))
        or not _EMAIL.match(email)
        or not email.isprintable()
    ):
        raise ValidationFailed("member.email", f"'{raw[:60]}' is not an email address.")
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


# Free-text profile fields: (column, label). Each is checked for its column's length and
# for characters no name holds (control characters, lone surrogates).
TEXT_FIELDS = {
    "region": (Member.region, "Region"),
    "city": (Member.city, "City"),
    "occupation": (Member.occupation, "Occupation"),
    "industry": (Member.industry, "Industry"),
}
# Profile fields whose column is NOT NULL: they can be changed, never removed.
REQUIRED = ("name", "marketing_consent")


def _clean(profile: Profile) -> Profile:
    if not isinstance(profile.name, str):
        raise ValidationFailed("member.name", "Give the member's name.")
    profile.name = bounds.check_text(
        profile.name, "member.name", bounds.length(Member.name), "The name"
    ).strip()
    if not profile.name:
        raise ValidationFailed("member.name", "Give the member's name.")
    if not isinstance(profile.marketing_consent, bool):
        raise ValidationFailed("member.marketing_consent", "Say yes or no to marketing.")
    profile.phone = normalise_phone(profile.phone)
    profile.email = normalise_email(profile.email)
    if profile.phone is None and profile.email is None:
        raise ValidationFailed("member.contact", "Give a phone number or an email address.")
    if profile.gender is not None:
        profile.gender = profile.gender.strip().lower() or None
        if profile.gender not in (None, *GENDERS):
            raise ValidationFailed("member.gender", f"Gender is one of {', '.join(GENDERS)}.")
    if profile.birthday is not None:
        bounds.check_day(profile.birthday, "member.birthday", "The birthday")
        if profile.birthday > utcnow().date():
            raise ValidationFailed("member.birthday", "The birthday is in the future.")
    for name, (column, label) in TEXT_FIELDS.items():
        value = getattr(profile, name)
        if isinstance(value, str):
            value = bounds.check_text(value, f"member.{name}", bounds.length(column), label)
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
    """The member with this number ("M00000042"); anything that cannot be one is not found."""
    wanted = number.strip().upper()
    member = None
    if not bounds.text_problem(wanted, bounds.length(Member.number)):
        member = session.scalar(select(Member).where(Member.number == wanted))
    if member is None:
        shown = wanted[:20] + ("…" if len(wanted) > 20 else "")
        raise NotFound("member.not_found", f"No member numbered {shown!r}.")
    return member


def update_profile(session: Session, actor: Actor, member_id: int, **changes: Any) -> Member:
    """Change profile fields (staff or the member's own integration). Audited."""
    member = ledger.lock_member(session, member_id)
    if member.status == MemberStatus.CLOSED:
        raise Conflict("member.closed", f"Member {member.number} is closed.")
    unknown = set(changes) - {f.name for f in fields(Profile)}
    if unknown:
        raise ValidationFailed("member.field", f"Unknown field {', '.join(sorted(unknown))}.")
    for name in REQUIRED:
        if name in changes and changes[name] is None:
            raise ValidationFailed(
                f"member.{name}", f"The member's {name.replace('_', ' ')} cannot be removed."
            )
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
    bounds.check_text(reason, "member.reason", NOTE_LENGTH, "The reason")
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
    """By member number or email (exact), name (contains) or phone: a text of digits (spaces,
    dashes, brackets and a plus allowed) of at least 4 finds phones containing them, so the
    till can type the last four digits. The search text is at most `bounds.MAX_SEARCH`
    characters."""
    text = bounds.check_text(q, "member.search", bounds.MAX_SEARCH, "The search").strip()
    if not text:
        return list(session.scalars(select(Member).order_by(Member.id.desc()).limit(limit)))
    conditions = [Member.number == text.upper(), Member.name.icontains(text, autoescape=True)]
    if "@" in text:
        conditions.append(Member.email == text.lower())
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 4 and re.fullmatch(r"[\d\s+()-]+", text, re.ASCII):
        conditions.append(Member.phone.contains(digits, autoescape=True))
    elif len(digits) >= 6:
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
