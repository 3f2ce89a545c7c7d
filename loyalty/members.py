"""Members: sign-up (with an optional referral code), profile changes, status, search."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.models import Campaign, Channel
from core import audit, bounds
from core.audit import Actor, AuditEntry
from core.errors import Conflict, NotFound, Problems, ValidationFailed
from core.text import N_
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
        raise ValidationFailed(
            "member.phone", "'%(phone)s' is not a phone number.", phone=text[:40]
        )
    digits = re.sub(r"\D", "", text)
    if not 6 <= len(digits) <= 15:
        raise ValidationFailed("member.phone", "'%(phone)s' is not a phone number.", phone=raw)
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
        raise ValidationFailed(
            "member.email", "'%(email)s' is not an email address.", email=raw[:60]
        )
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
    "region": (Member.region, N_("Region")),
    "city": (Member.city, N_("City")),
    "occupation": (Member.occupation, N_("Occupation")),
    "industry": (Member.industry, N_("Industry")),
}
# Profile fields whose column is NOT NULL: they can be changed, never removed.
REQUIRED = ("name", "marketing_consent")


def _clean(profile: Profile, problems: Problems | None = None) -> Profile:
    """The profile as it will be stored. Every field's problem is noted under the field's
    name (the `Profile` attribute, which the forms use); they are raised together at the
    end, unless the caller passes its own `problems` to add more before raising."""
    found = Problems() if problems is None else problems

    def name() -> str:
        if not isinstance(profile.name, str):
            raise ValidationFailed("member.name", "Give the member's name.")
        text = bounds.check_text(
            profile.name, "member.name", bounds.length(Member.name), N_("The name")
        ).strip()
        if not text:
            raise ValidationFailed("member.name", "Give the member's name.")
        return text

    def consent() -> bool:
        if not isinstance(profile.marketing_consent, bool):
            raise ValidationFailed("member.marketing_consent", "Say yes or no to marketing.")
        return profile.marketing_consent

    def gender() -> str | None:
        value = profile.gender.strip().lower() or None if profile.gender is not None else None
        if value not in (None, *GENDERS):
            raise ValidationFailed(
                "member.gender", "Gender is one of %(choices)s.", choices=", ".join(GENDERS)
            )
        return value

    def birthday() -> date | None:
        if profile.birthday is not None:
            bounds.check_day(profile.birthday, "member.birthday", N_("The birthday"))
            if profile.birthday > utcnow().date():
                raise ValidationFailed("member.birthday", "The birthday is in the future.")
        return profile.birthday

    def text(field: str) -> str | None:
        column, label = TEXT_FIELDS[field]
        value = getattr(profile, field)
        if isinstance(value, str):
            value = bounds.check_text(value, f"member.{field}", bounds.length(column), label)
            return value.strip() or None
        return value  # type: ignore[no-any-return]

    profile.name = found.check("name", name) or profile.name
    profile.marketing_consent = bool(found.check("marketing_consent", consent))
    phone_given = profile.phone is not None and bool(str(profile.phone).strip())
    email_given = profile.email is not None and bool(str(profile.email).strip())
    profile.phone = found.check("phone", lambda: normalise_phone(profile.phone))
    profile.email = found.check("email", lambda: normalise_email(profile.email))
    if not phone_given and not email_given:
        found.add("phone", "Give a phone number or an email address.", "member.contact")
    profile.gender = found.check("gender", gender)
    profile.birthday = found.check("birthday", birthday)
    for field in TEXT_FIELDS:
        setattr(profile, field, found.check(field, partial(text, field)))
    if problems is None:
        found.raise_any()
    return profile


def _check_joins(session: Session, profile: Profile, problems: Problems) -> None:
    """The channel and campaign a member joined through, when given, must exist."""
    for field, model in (("join_channel_id", Channel), ("join_campaign_id", Campaign)):
        found = getattr(profile, field)
        if found is None:
            continue
        if (
            isinstance(found, bool)
            or not isinstance(found, int)
            or not 1 <= found <= bounds.MAX_ID
            or session.get(model, found) is None
        ):
            problems.add(
                field,
                N_("There is no channel %(id)s.")
                if model is Channel
                else N_("There is no campaign %(id)s."),
                "member.join",
                id=found,
            )


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
                f"member.{field}_taken",
                N_("The phone %(value)s belongs to member %(member)s.")
                if field == "phone"
                else N_("The email %(value)s belongs to member %(member)s."),
                value=value,
                member=clash,
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


# The audit field of a member's creation that holds a staff form's one-time key.
ENROL_KEY = "enrol_key"
KEY_LENGTH = 100
KEY_DAYS = 1  # a form's key replays its member for a day


def enrolled(session: Session, key: str) -> Member | None:
    """The member a staff form with this one-time `key` already enrolled (a double submit, or
    a reload of the POST), or None. The key is kept on the creation's audit row."""
    since = utcnow() - timedelta(days=KEY_DAYS)
    number = session.scalar(
        select(AuditEntry.entity_id)
        .where(
            AuditEntry.action == "member.create",
            AuditEntry.occurred_at >= since,
            AuditEntry.after[ENROL_KEY].as_string() == key,
        )
        .order_by(AuditEntry.id)
        .limit(1)
    )
    if number is None:
        return None
    return session.scalar(select(Member).where(Member.number == number))


def validate(
    session: Session, profile: Profile, *, referral_code: str | None, problems: Problems
) -> Profile:
    """A new member's profile as it will be stored, and the referral code they joined with:
    each problem noted in `problems` under the field's name, none raised."""
    profile = _clean(profile, problems)
    _check_joins(session, profile, problems)
    if referral_code:
        problems.check("referral_code", lambda: referrals.referrer_by_code(session, referral_code))
    return profile


def create(
    session: Session,
    actor: Actor,
    profile: Profile,
    *,
    referral_code: str | None = None,
    zone: ZoneInfo,
    at: datetime | None = None,
    key: str | None = None,
) -> Member:
    """A new member, with the sign-up bonus and, given a referral code, a pending referral.
    Every problem with the profile and the referral code is named at once
    (`core.errors.Invalid`). Given a staff form's one-time `key`, a second submit of the
    same form answers the member the first one enrolled instead of enrolling again."""
    at = at or utcnow()
    if key is not None and (not key.strip() or bounds.text_problem(key, KEY_LENGTH)):
        raise ValidationFailed(
            "member.key", "This form has expired: reload the page and enter the member again."
        )
    if key is not None:
        earlier = enrolled(session, key)
        if earlier is not None:
            return earlier
    problems = Problems()
    profile = validate(session, profile, referral_code=referral_code, problems=problems)
    problems.raise_any()
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
        # Lost a race with a sign-up using the same phone or email: the same form submitted
        # twice at once, or another sign-up.
        earlier = enrolled(session, key) if key is not None else None
        if earlier is not None:
            return earlier
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
    after = snapshot(member) | ({ENROL_KEY: key} if key is not None else {})
    audit.record(session, actor, "member.create", "member", member.number, after=after)
    return member


def _set_birthday(member: Member, birthday: date | None) -> None:
    member.birthday = birthday
    member.birth_month = birthday.month if birthday else None
    member.birth_day = birthday.day if birthday else None


def get(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound("member.not_found", "No member with id %(id)s.", id=member_id)
    return member


def by_number(session: Session, number: str) -> Member:
    """The member with this number ("M00000042"); anything that cannot be one is not found."""
    wanted = number.strip().upper()
    member = None
    if not bounds.text_problem(wanted, bounds.length(Member.number)):
        member = session.scalar(select(Member).where(Member.number == wanted))
    if member is None:
        shown = wanted[:20] + ("…" if len(wanted) > 20 else "")
        raise NotFound("member.not_found", "No member numbered %(number)s.", number=repr(shown))
    return member


def update_profile(session: Session, actor: Actor, member_id: int, **changes: Any) -> Member:
    """Change profile fields (staff or the member's own integration). Audited."""
    member = ledger.lock_member(session, member_id)
    if member.status == MemberStatus.CLOSED:
        raise Conflict("member.closed", "Member %(member)s is closed.", member=member.number)
    unknown = set(changes) - {f.name for f in fields(Profile)}
    if unknown:
        raise ValidationFailed(
            "member.field", "Unknown field %(fields)s.", fields=", ".join(sorted(unknown))
        )
    for name in REQUIRED:
        if name in changes and changes[name] is None:
            raise ValidationFailed(
                f"member.{name}",
                N_("The member's name cannot be removed.")
                if name == "name"
                else N_("The member's marketing consent cannot be removed."),
            )
    current = Profile(**{f.name: getattr(member, f.name) for f in fields(Profile)})
    for name, value in changes.items():
        setattr(current, name, value)
    problems = Problems()
    profile = _clean(current, problems)
    _check_joins(session, profile, problems)
    problems.raise_any()
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
    actor.require("admin", "marketer", doing=N_("suspend or reinstate members"))
    if status not in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        raise ValidationFailed("member.status", "Status is active or suspended.")
    bounds.check_text(reason, "member.reason", NOTE_LENGTH, N_("The reason"))
    if not reason.strip():
        raise ValidationFailed("member.reason", "Say why the status changes.")
    member = ledger.lock_member(session, member_id)
    if member.status == MemberStatus.CLOSED:
        raise Conflict("member.closed", "Member %(member)s is closed.", member=member.number)
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
        raise Conflict(
            "member.closed", "Member %(member)s is already closed.", member=member.number
        )
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
    text = bounds.check_text(q, "member.search", bounds.MAX_SEARCH, N_("The search")).strip()
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
