"""Sign-in throttling, stored in the database so it holds across server processes."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.accounts.models import SigninAttempt
from core.errors import RateLimited

# An address may fail this many times more than one account before it is stopped.
IP_FACTOR = 4


def _recent_failures(
    session: Session, column: InstrumentedAttribute[Any], value: str, since: datetime
) -> list[datetime]:
    last_success = session.scalar(
        select(func.max(SigninAttempt.attempted_at)).where(
            column == value,
            SigninAttempt.succeeded.is_(True),
        )
    )
    start = max(since, last_success) if last_success else since
    rows = session.scalars(
        select(SigninAttempt.attempted_at)
        .where(
            column == value,
            SigninAttempt.succeeded.is_(False),
            SigninAttempt.attempted_at > start,
        )
        .order_by(SigninAttempt.attempted_at)
    )
    return list(rows)


def check_allowed(
    session: Session, email: str, ip: str | None, now: datetime, max_failures: int, minutes: int
) -> None:
    """Refuse a try after `max_failures` failures within `minutes` (per account and per IP)."""
    window = timedelta(minutes=minutes)
    checks: list[tuple[InstrumentedAttribute[Any], str | None, int]] = [
        (SigninAttempt.email, email, max_failures),
        (SigninAttempt.ip, ip, max_failures * IP_FACTOR),
    ]
    for column, value, limit in checks:
        if value is None:
            continue
        failures = _recent_failures(session, column, value, now - window)
        if len(failures) >= limit:
            unlock = failures[-limit] + window
            wait = max(1, math.ceil((unlock - now).total_seconds()))
            raise RateLimited(
                "auth.throttled",
                f"Too many failed sign-in attempts. Try again in {math.ceil(wait / 60)} minutes.",
                retry_after=wait,
            )


def record_attempt(
    session: Session, email: str, ip: str | None, now: datetime, succeeded: bool
) -> None:
    session.add(SigninAttempt(email=email, ip=ip, attempted_at=now, succeeded=succeeded))
    session.flush()


def limit(
    session: Session, key: str, now: datetime, max_hits: int, minutes: int, message: str
) -> None:
    """Count one use of `key` (for example "reset:+8613800000000") and refuse beyond
    `max_hits` within `minutes`. Kept with sign-in attempts under its own key, so the two
    never count against each other."""
    since = now - timedelta(minutes=minutes)
    hits = list(
        session.scalars(
            select(SigninAttempt.attempted_at)
            .where(SigninAttempt.email == key, SigninAttempt.attempted_at > since)
            .order_by(SigninAttempt.attempted_at)
        )
    )
    if len(hits) >= max_hits:
        wait = max(
            1, math.ceil((hits[-max_hits] + timedelta(minutes=minutes) - now).total_seconds())
        )
        raise RateLimited("rate_limited", message, retry_after=wait)
    record_attempt(session, key, None, now, succeeded=False)
