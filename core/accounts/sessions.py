"""Signed-in browser sessions, revocable on the server (sign-out, disable)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.accounts.models import AuthSession, User
from core.accounts.tokens import new_token, token_hash
from core.timeutil import utcnow


def start(
    session: Session, user: User, *, hours: int, ip: str | None, user_agent: str | None
) -> str:
    token = new_token()
    now = utcnow()
    session.add(
        AuthSession(
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            ip=ip,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    session.flush()
    return token


def resolve(session: Session, token: str, now: datetime | None = None) -> User | None:
    """The active user behind a session token, or None if expired, revoked or disabled."""
    now = now or utcnow()
    row = session.execute(
        select(AuthSession, User)
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    auth, user = row
    if auth.revoked_at is not None or auth.expires_at <= now or not user.is_active:
        return None
    return user


def end(session: Session, token: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == token_hash(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_all(session: Session, user_id: int) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
