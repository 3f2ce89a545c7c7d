"""Sign-in throttling, stored in the database so it holds across server processes.

Two counts, each over the last `minutes`:

- per account (`key`: a staff email, a member's id): its failures since its own last
  success, so the owner signing in clears only their own count;
- per address: every failed try from it, whichever account it was against, aging out with
  the window only. No success clears it, so signing in to one's own account between
  guesses at others' does not buy more guesses.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.accounts.models import SigninAttempt
from core.db import rowcount
from core.errors import RateLimited

# An address may fail this many times more than one account before it is stopped.
IP_FACTOR = 4
# How long attempts are kept for admins to see who tried; far longer than any window.
RETENTION = timedelta(days=90)
_KEY_LENGTH = 254  # signin_attempts.email


def _stored(key: str) -> str:
    """The key as it fits the column: a longer one (typed text matching no one) keeps its
    start and a digest of the whole, so it is still counted, under one key per text."""
    if len(key) <= _KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: _KEY_LENGTH - len(digest) - 1]}#{digest}"


def _account_failures(session: Session, key: str, since: datetime) -> list[datetime]:
    """The account's failures in the window after its own last success."""
    last_success = session.scalar(
        select(func.max(SigninAttempt.attempted_at)).where(
            SigninAttempt.email == key, SigninAttempt.succeeded.is_(True)
        )
    )
    start = max(since, last_success) if last_success else since
    rows = session.scalars(
        select(SigninAttempt.attempted_at)
        .where(
            SigninAttempt.email == key,
            SigninAttempt.succeeded.is_(False),
            SigninAttempt.attempted_at > start,
        )
        .order_by(SigninAttempt.attempted_at)
    )
    return list(rows)


def _address_failures(session: Session, ip: str, since: datetime) -> list[datetime]:
    """Every failure from the address in the window, against any account."""
    rows = session.scalars(
        select(SigninAttempt.attempted_at)
        .where(
            SigninAttempt.ip == ip,
            SigninAttempt.succeeded.is_(False),
            SigninAttempt.attempted_at > since,
        )
        .order_by(SigninAttempt.attempted_at)
    )
    return list(rows)


def check_allowed(
    session: Session, key: str, ip: str | None, now: datetime, max_failures: int, minutes: int
) -> None:
    """Refuse a try after `max_failures` failures within `minutes` against the account `key`
    (counted since its last success), or `max_failures * IP_FACTOR` from the address `ip`
    (whatever succeeded in between)."""
    key = _stored(key)
    window = timedelta(minutes=minutes)
    since = now - window
    counts = [(_account_failures(session, key, since), max_failures)]
    if ip is not None:
        counts.append((_address_failures(session, ip, since), max_failures * IP_FACTOR))
    for failures, allowed in counts:
        if len(failures) >= allowed:
            unlock = failures[-allowed] + window
            wait = max(1, math.ceil((unlock - now).total_seconds()))
            raise RateLimited(
                "auth.throttled",
                "Too many failed sign-in attempts. Try again in %(minutes)s minutes.",
                minutes=math.ceil(wait / 60),
                retry_after=wait,
            )


def record_attempt(
    session: Session, key: str, ip: str | None, now: datetime, succeeded: bool
) -> None:
    session.add(SigninAttempt(email=_stored(key), ip=ip, attempted_at=now, succeeded=succeeded))
    session.flush()


def limit(
    session: Session, key: str, now: datetime, max_hits: int, minutes: int, message: str
) -> None:
    """Count one use of `key` (for example "reset:+8613800000000") and refuse beyond
    `max_hits` within `minutes`. Kept with sign-in attempts under its own key, so the two
    never count against each other."""
    key = _stored(key)
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
        # `message` is the caller's whole sentence, a `core.text.N_` phrase the staff catalog
        # translates where it is shown.
        raise RateLimited("rate_limited", "%(refusal)s", retry_after=wait, refusal=message)
    record_attempt(session, key, None, now, succeeded=False)


def prune(session: Session, now: datetime) -> int:
    """Forget attempts older than RETENTION (the nightly jobs call this), so the table, which
    anyone can add to by guessing, stays bounded."""
    return rowcount(
        session.execute(delete(SigninAttempt).where(SigninAttempt.attempted_at < now - RETENTION))
    )
