"""Members' portal accounts: sign-up, one-time links (activate, reset), sign-in, sessions.

Kept apart from staff accounts (`core.accounts`) on purpose: a member session is a different
row in a different table under a different cookie key, so it can never open a staff page and
a staff session is never a member.

A member signs in with the phone or email on their member record. The password is always
chosen through a link sent to that phone or email, never on the sign-up form: otherwise
someone could sign up with another person's email, pick the password, and own the account
the moment its real owner clicks "activate". A member created at the till or by staff gets
the same link from "Set up or reset my password". Links are random tokens (only the hash is
stored), single use (claimed with one conditional UPDATE), expiring, and a newer one voids
the older ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, bounds, outbox, passwords
from core.accounts import throttle
from core.accounts.tokens import new_token, token_hash
from core.audit import Actor
from core.db import rowcount
from core.errors import Conflict, NotAuthenticated, NotFound, ValidationFailed
from core.text import N_
from core.timeutil import utcnow
from loyalty import members
from loyalty.models import (
    Member,
    MemberAccount,
    MemberSession,
    MemberStatus,
    MemberToken,
    TokenPurpose,
)

LINK_HOURS = {TokenPurpose.ACTIVATE: 72, TokenPurpose.RESET: 1}
# What a person may type to name their account: a phone number or an email address.
IDENTIFIER_LENGTH = bounds.length(Member.email)
LANGUAGE_LENGTH = bounds.length(MemberAccount.language)
# The sign-in refusal's message (written out at the raise, a template the catalog finds).
BAD_CREDENTIALS = "That phone or email and password do not match an active account."
# Link requests per phone/email and per address within the window.
LINK_LIMIT, LINK_WINDOW_MINUTES = 3, 15


def _typeable(password: str) -> bool:
    """A password that can be hashed (UTF-8 holds no lone surrogate)."""
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_new_password(password: str) -> None:
    """A password a member chooses: long enough (`passwords.check_strength`) and made of
    characters a person can type."""
    passwords.check_strength(password)
    if bounds.text_problem(password):
        raise ValidationFailed(
            "password.invalid", "Use letters, digits, spaces and punctuation in a password."
        )


def _self_or_admin(actor: Actor, member: Member, doing: str) -> None:
    """The member on their own account, or an admin (support) on anyone's."""
    if not members.is_self(actor, member):
        actor.require("admin", doing=doing)


def canonical(identifier: str) -> str:
    """The phone or email as stored, so "138-0000 0000" and "13800000000" count as one for
    throttling; anything that is neither is kept as typed (it matches no one anyway)."""
    text = identifier.strip()
    if bounds.text_problem(text):
        # No one's phone or email holds control characters: counted under a digest, so the
        # key stays plain text whatever was typed.
        return "#" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    try:
        if "@" in text:
            return members.normalise_email(text) or ""
        return members.normalise_phone(text) or ""
    except ValidationFailed:
        return text.lower()


def signin_key(member: Member | None, identifier: str) -> str:
    """What sign-in failures are counted under: one key per member, whether they typed
    their phone or their email, and however it was written; an identifier that is no
    member's is counted under its canonical form (guessing at it is throttled too, and
    looks the same). The two prefixes differ, so no typed text can reach a member's key."""
    if member is not None:
        return f"member-id:{member.id}"
    return f"member:{canonical(identifier)}"


def find(session: Session, identifier: str) -> Member | None:
    """The member whose phone or email this is (written any usual way), or None."""
    text = identifier.strip()
    if not text or bounds.text_problem(text, IDENTIFIER_LENGTH):
        return None
    try:
        if "@" in text:
            return session.scalar(
                select(Member).where(Member.email == members.normalise_email(text))
            )
        phone = members.normalise_phone(text)
    except ValidationFailed:
        return None
    return session.scalar(select(Member).where(Member.phone == phone))


def account(session: Session, member: Member) -> MemberAccount:
    found = session.get(MemberAccount, member.id)
    if found is None:
        found = MemberAccount(member_id=member.id)
        session.add(found)
        session.flush()
    return found


def _link(session: Session, member: Member, purpose: TokenPurpose, base_url: str) -> str:
    """A fresh one-time link, queued to the member's email (else phone). Earlier unused
    links of the same purpose stop working: only the newest one counts."""
    now = utcnow()
    session.execute(
        update(MemberToken)
        .where(
            MemberToken.member_id == member.id,
            MemberToken.purpose == purpose,
            MemberToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = new_token()
    session.add(
        MemberToken(
            member_id=member.id,
            purpose=purpose,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + timedelta(hours=LINK_HOURS[purpose]),
        )
    )
    url = f"{base_url.rstrip('/')}/my/{purpose.value}/{token}"
    hours = LINK_HOURS[purpose]
    if purpose is TokenPurpose.ACTIVATE:
        subject = "Activate your Retain membership / 激活您的会员账户"
        body = (
            f"Hello {member.name},\n\nOpen this link within {hours} hours to choose your "
            f"password and activate your account:\n{url}\n\n"
            f"请在 {hours} 小时内打开以上链接，设置密码并激活账户。"
        )
    else:
        subject = "Reset your Retain password / 重置密码"
        body = (
            f"Hello {member.name},\n\nOpen this link within {hours} hour to choose a new "
            f"password:\n{url}\n\nIf you did not ask for this, ignore this message.\n\n"
            f"请在 {hours} 小时内打开以上链接设置新密码。如非本人操作，请忽略。"
        )
    recipient = member.email or member.phone
    assert recipient is not None  # an open member always has one (a check constraint)
    outbox.queue(session, to=recipient, subject=subject, body=body)
    return token


def sign_up(
    session: Session,
    profile: members.Profile,
    *,
    referral_code: str | None,
    language: str | None,
    base_url: str,
    zone: ZoneInfo,
    ip: str | None = None,
) -> Member | None:
    """A new member from the portal, with an account to activate by the link just queued.
    When the phone or email already belongs to a member, no one is created: they get a link
    to set their password instead, and the answer looks the same (sign-up does not tell a
    stranger who is a member)."""
    for identifier in (profile.email, profile.phone):
        if identifier and find(session, identifier) is not None:
            request_link(session, identifier, base_url=base_url, ip=ip)
            return None
    actor = Actor("member", "portal sign-up", ip=ip)
    member = members.create(
        session, actor, profile, referral_code=(referral_code or "").strip() or None, zone=zone
    )
    session.add(MemberAccount(member_id=member.id, language=language))
    session.flush()
    _link(session, member, TokenPurpose.ACTIVATE, base_url)
    return member


def request_link(session: Session, identifier: str, *, base_url: str, ip: str | None) -> str | None:
    """ "Set up or reset my password": an activation link for a member without an active
    account, a reset link otherwise. The answer to the person is the same whether or not
    the phone or email is known (no member lookup by trial); the token is returned for
    tests and the demo only."""
    now = utcnow()
    message = "Too many link requests. Wait a few minutes, then try again."
    key = canonical(identifier)
    throttle.limit(session, f"link:{key}", now, LINK_LIMIT, LINK_WINDOW_MINUTES, message)
    if ip:
        throttle.limit(session, f"link-ip:{ip}", now, LINK_LIMIT * 4, LINK_WINDOW_MINUTES, message)
    member = find(session, identifier)
    if member is None or member.status == MemberStatus.CLOSED:
        return None
    found = account(session, member)
    purpose = TokenPurpose.RESET if found.activated_at else TokenPurpose.ACTIVATE
    return _link(session, member, purpose, base_url)


def _token(session: Session, token: str, purpose: TokenPurpose) -> tuple[MemberToken, Member]:
    row = session.execute(
        select(MemberToken, Member)
        .join(Member, Member.id == MemberToken.member_id)
        .where(MemberToken.token_hash == token_hash(token), MemberToken.purpose == purpose)
    ).first()
    if row is None:
        raise NotFound("link.not_found", "This link is not valid. Ask for a new one.")
    link, member = row
    if link.used_at is not None:
        raise Conflict("link.used", "This link was already used or replaced. Ask for a new one.")
    if link.expires_at <= utcnow():
        raise Conflict("link.expired", "This link has expired. Ask for a new one.")
    if member.status == MemberStatus.CLOSED:
        raise Conflict("member.closed", "This account is closed.")
    return link, member


def check_link(session: Session, token: str, purpose: TokenPurpose) -> Member:
    return _token(session, token, purpose)[1]


def use_link(
    session: Session, token: str, purpose: TokenPurpose, password: str, ip: str | None
) -> Member:
    """Set the password and activate (or reset). Every signed-in browser of the member is
    signed out. Two clicks at once: one claims the link, the other is told it was used."""
    link, member = _token(session, token, purpose)
    check_new_password(password)
    now = utcnow()
    claimed = session.execute(
        update(MemberToken)
        .where(MemberToken.id == link.id, MemberToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(claimed) != 1:
        raise Conflict("link.used", "This link was already used or replaced. Ask for a new one.")
    found = account(session, member)
    found.password_hash = passwords.hash_password(password)
    found.activated_at = found.activated_at or now
    end_all(session, member.id)
    audit.record(
        session, Actor.member(member.number, ip), f"member.{purpose.value}", "member", member.number
    )
    session.flush()
    return member


def authenticate(
    session: Session,
    identifier: str,
    password: str,
    ip: str | None,
    *,
    max_failures: int,
    lock_minutes: int,
    before_hash: Callable[[], None] = lambda: None,
) -> Member:
    """The member for these credentials; every failure says the same, and failures count
    towards throttling per account (`signin_key`) and per address. `before_hash` runs
    before the slow password check (see `core.accounts.users.authenticate`)."""
    now = utcnow()
    member = find(session, identifier)
    key = signin_key(member, identifier)
    throttle.check_allowed(session, key, ip, now, max_failures, lock_minutes)
    found = session.get(MemberAccount, member.id) if member else None
    before_hash()
    # A password no one can have chosen (a lone surrogate) is simply wrong: counted the same.
    ok = _typeable(password) and passwords.verify_password(
        found.password_hash if found else None, password
    )
    if not ok or member is None or found is None or member.status == MemberStatus.CLOSED:
        throttle.record_attempt(session, key, ip, now, succeeded=False)
        raise NotAuthenticated(
            "auth.invalid_credentials",
            "That phone or email and password do not match an active account.",
        )
    throttle.record_attempt(session, key, ip, now, succeeded=True)
    # A password exists only once a link was used, which also activated the account.
    assert found.password_hash is not None
    if passwords.needs_rehash(found.password_hash):
        found.password_hash = passwords.hash_password(password)
    found.last_signin_at = now
    return member


def start(session: Session, member: Member, *, hours: int) -> str:
    token = new_token()
    now = utcnow()
    session.add(
        MemberSession(
            token_hash=token_hash(token),
            member_id=member.id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    session.flush()
    return token


def resolve(session: Session, token: str, now: datetime | None = None) -> Member | None:
    """The member behind a session token, or None when expired, revoked or closed."""
    now = now or utcnow()
    row = session.execute(
        select(MemberSession, Member)
        .join(Member, Member.id == MemberSession.member_id)
        .where(MemberSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    auth, member = row
    if auth.revoked_at is not None or auth.expires_at <= now:
        return None
    if member.status == MemberStatus.CLOSED:
        return None
    return member


def end(session: Session, token: str) -> None:
    session.execute(
        update(MemberSession)
        .where(MemberSession.token_hash == token_hash(token), MemberSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def end_all(session: Session, member_id: int, keep: str | None = None) -> None:
    """Sign the member out everywhere, except the browser holding session `keep`."""
    query = update(MemberSession).where(
        MemberSession.member_id == member_id, MemberSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(MemberSession.token_hash != token_hash(keep))
    session.execute(query.values(revoked_at=utcnow()))


def confirm_password(session: Session, member: Member, password: str) -> MemberAccount:
    found = account(session, member)
    if not (_typeable(password) and passwords.verify_password(found.password_hash, password)):
        raise ValidationFailed("password.wrong", "Your password is not right.")
    return found


def set_password(
    session: Session, actor: Actor, member: Member, current: str, new: str, *, keep: str | None
) -> None:
    """A new password, by the member (who knows the current one): other browsers are signed
    out, this one (`keep`) stays. Audited."""
    _self_or_admin(actor, member, "change a member's password")
    found = confirm_password(session, member, current)
    check_new_password(new)
    found.password_hash = passwords.hash_password(new)
    end_all(session, member.id, keep=keep)
    audit.record(session, actor, "member.password", "member", member.number)


def set_language(session: Session, actor: Actor, member: Member, language: str) -> None:
    """The language the portal speaks to the member (the web layer offers the choices)."""
    _self_or_admin(actor, member, "change a member's language")
    bounds.check_text(language, "member.language", LANGUAGE_LENGTH, N_("The language"))
    found = account(session, member)
    if found.language != language:
        before = found.language
        found.language = language
        audit.record(
            session,
            actor,
            "member.language",
            "member",
            member.number,
            before={"language": before},
            after={"language": language},
        )


def contact_changed(session: Session, actor: Actor, member: Member, *, keep: str | None) -> None:
    """After the phone or email changed: links sent to the old one stop working, and other
    browsers are signed out."""
    _self_or_admin(actor, member, "sign a member out")
    session.execute(
        update(MemberToken)
        .where(MemberToken.member_id == member.id, MemberToken.used_at.is_(None))
        .values(used_at=utcnow())
    )
    end_all(session, member.id, keep=keep)


def close(session: Session, actor: Actor, member: Member, password: str) -> None:
    """The member closes their own account: the profile is anonymised (members.close, which
    writes the audit row), the password and every session go; ledger totals stay for the
    books."""
    _self_or_admin(actor, member, "close a member's account")
    found = confirm_password(session, member, password)
    members.close(session, actor, member.id)
    found.password_hash = None
    end_all(session, member.id)
