"""Staff accounts: create, invite, accept, sign in, change roles, disable, enable."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit, bounds, passwords
from core.accounts import sessions, throttle
from core.accounts.models import Invite, Role, User, UserRole, UserStatus
from core.accounts.tokens import new_token, token_hash
from core.audit import Actor
from core.errors import Conflict, NotAuthenticated, NotFound, ValidationFailed
from core.settings import Settings
from core.text import N_
from core.timeutil import utcnow

INVITE_DAYS = 7
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# One message whichever part was wrong, so sign-in never reveals who has an account.
BAD_CREDENTIALS = "Email or password is incorrect."


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if bounds.text_problem(email, bounds.length(User.email)):
        raise ValidationFailed("user.email", "That is not an email address.")
    if not _EMAIL.match(email):
        raise ValidationFailed("user.email", "'%(email)s' is not an email address.", email=email)
    return email


def parse_roles(values: Iterable[str]) -> set[Role]:
    roles: set[Role] = set()
    for value in values:
        try:
            roles.add(Role(value.strip().lower()))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise ValidationFailed(
                "user.role", "Unknown role '%(value)s'; use %(known)s.", value=value, known=known
            ) from None
    if not roles:
        raise ValidationFailed("user.roles_empty", "Give the person at least one role.")
    return roles


def snapshot(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "name": user.name,
        "status": user.status,
        "roles": sorted(r.value for r in user.roles),
    }


def get(session: Session, user_id: int) -> User:
    # An id out of the column's range names nobody (and must not reach the database).
    user = session.get(User, user_id) if 1 <= user_id <= bounds.MAX_ID else None
    if user is None:
        raise NotFound("user.not_found", "No staff account with id %(id)s.", id=user_id)
    return user


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def list_all(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name, User.email)))


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def _new_user(session: Session, email: str, name: str, roles: set[Role], status: str) -> User:
    email = normalise_email(email)
    name = name.strip()
    if not name:
        raise ValidationFailed("user.name", "Enter the person's name.")
    bounds.check_text(name, "user.name", bounds.length(User.name), label=N_("The name"))
    if find_by_email(session, email) is not None:
        raise Conflict(
            "user.email_taken", "There is already an account for %(email)s.", email=email
        )
    user = User(email=email, name=name, status=status)
    user.role_rows = [UserRole(role=r.value) for r in sorted(roles)]
    session.add(user)
    session.flush()
    return user


def create(
    session: Session, actor: Actor, *, email: str, name: str, roles: Iterable[str], password: str
) -> User:
    """An active account with a password (command line and demo data)."""
    passwords.check_strength(password)
    user = _new_user(session, email, name, parse_roles(roles), UserStatus.ACTIVE)
    user.password_hash = passwords.hash_password(password)
    audit.record(session, actor, "user.create", "user", user.id, after=snapshot(user))
    return user


def _issue_invite(session: Session, user: User) -> str:
    token = new_token()
    session.add(
        Invite(
            user_id=user.id,
            token_hash=token_hash(token),
            expires_at=utcnow() + timedelta(days=INVITE_DAYS),
        )
    )
    session.flush()
    return token


def invite(
    session: Session, actor: Actor, *, email: str, name: str, roles: Iterable[str]
) -> tuple[User, str]:
    """An invited account and the one-time token for its set-password link."""
    user = _new_user(session, email, name, parse_roles(roles), UserStatus.INVITED)
    token = _issue_invite(session, user)
    audit.record(session, actor, "user.invite", "user", user.id, after=snapshot(user))
    return user, token


def reissue_invite(session: Session, actor: Actor, user_id: int) -> str:
    user = get(session, user_id)
    if user.status != UserStatus.INVITED:
        raise Conflict(
            "user.not_invited", "%(email)s has already set a password.", email=user.email
        )
    token = _issue_invite(session, user)
    audit.record(session, actor, "user.reinvite", "user", user.id)
    return token


def invite_for_token(session: Session, token: str) -> tuple[Invite, User]:
    row = session.execute(
        select(Invite, User)
        .join(User, User.id == Invite.user_id)
        .where(Invite.token_hash == token_hash(token))
    ).first()
    if row is None:
        raise NotFound("invite.not_found", "This invitation link is not valid.")
    invitation, user = row
    if invitation.used_at is not None or user.status != UserStatus.INVITED:
        raise Conflict("invite.used", "This invitation was already used. Sign in instead.")
    if invitation.expires_at <= utcnow():
        raise Conflict("invite.expired", "This invitation has expired. Ask an admin for a new one.")
    return invitation, user


def accept_invite(session: Session, token: str, password: str, ip: str | None = None) -> User:
    invitation, user = invite_for_token(session, token)
    passwords.check_strength(password)
    before = snapshot(user)
    user.password_hash = passwords.hash_password(password)
    user.status = UserStatus.ACTIVE
    invitation.used_at = utcnow()
    actor = Actor("user", user.email, user_id=user.id, ip=ip)
    audit.record(
        session, actor, "user.activate", "user", user.id, before=before, after=snapshot(user)
    )
    return user


def authenticate(
    session: Session,
    settings: Settings,
    email: str,
    password: str,
    ip: str | None,
    *,
    before_hash: Callable[[], None] = lambda: None,
) -> User:
    """The user for these credentials; every failure raises the same message.
    `before_hash` runs between the reads and the slow password check: the web layer ends its
    read transaction there, so the quarter second of argon2 holds no lock and no snapshot
    (SQLite cannot turn a read that others have written past into a write)."""
    email = email.strip().lower()
    if bounds.text_problem(email, bounds.length(User.email)):
        # No account can have such an address (and the database could not even look it up).
        raise NotAuthenticated("auth.invalid_credentials", "Email or password is incorrect.")
    now = utcnow()
    throttle.check_allowed(
        session, email, ip, now, settings.signin_max_failures, settings.signin_lock_minutes
    )
    user = find_by_email(session, email)
    before_hash()
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        throttle.record_attempt(session, email, ip, now, succeeded=False)
        raise NotAuthenticated("auth.invalid_credentials", "Email or password is incorrect.")
    throttle.record_attempt(session, email, ip, now, succeeded=True)
    assert user.password_hash is not None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_signin_at = now
    return user


def _active_admin_count(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(UserRole)
            .join(User, User.id == UserRole.user_id)
            .where(UserRole.role == Role.ADMIN, User.status == UserStatus.ACTIVE)
        )
        or 0
    )


def _is_last_admin(session: Session, user: User) -> bool:
    return user.is_active and Role.ADMIN in user.roles and _active_admin_count(session) <= 1


def set_roles(session: Session, actor: Actor, user_id: int, roles: Iterable[str]) -> User:
    user = get(session, user_id)
    new_roles = parse_roles(roles)
    if new_roles == user.roles:
        return user
    if Role.ADMIN not in new_roles and _is_last_admin(session, user):
        raise Conflict(
            "user.last_admin", "Keep at least one active admin; make someone else admin first."
        )
    before = snapshot(user)
    user.role_rows = [UserRole(role=r.value) for r in sorted(new_roles)]
    session.flush()
    audit.record(session, actor, "user.roles", "user", user.id, before=before, after=snapshot(user))
    return user


def disable(session: Session, actor: Actor, user_id: int) -> User:
    user = get(session, user_id)
    if actor.user_id == user.id:
        raise Conflict("user.disable_self", "You cannot disable your own account.")
    if user.status == UserStatus.DISABLED:
        return user
    if _is_last_admin(session, user):
        raise Conflict(
            "user.last_admin", "This is the last active admin; make someone else admin first."
        )
    before = snapshot(user)
    user.status = UserStatus.DISABLED
    sessions.revoke_all(session, user.id)
    audit.record(
        session, actor, "user.disable", "user", user.id, before=before, after=snapshot(user)
    )
    return user


def enable(session: Session, actor: Actor, user_id: int) -> User:
    user = get(session, user_id)
    if user.status != UserStatus.DISABLED:
        return user
    before = snapshot(user)
    user.status = UserStatus.ACTIVE if user.password_hash else UserStatus.INVITED
    audit.record(
        session, actor, "user.enable", "user", user.id, before=before, after=snapshot(user)
    )
    return user


LANGUAGE_LENGTH = 8


def set_language(session: Session, actor: Actor, user: User, language: str | None) -> None:
    """The language a person's staff pages speak; None follows the browser. The web layer
    offers the choices."""
    if language is not None:
        bounds.check_text(language, "language", LANGUAGE_LENGTH, N_("The language"))
    if user.language != language:
        before = {"language": user.language}
        user.language = language
        audit.record(
            session,
            actor,
            "user.language",
            "user",
            user.id,
            before=before,
            after={"language": language},
        )
