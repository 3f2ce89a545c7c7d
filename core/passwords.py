"""Password hashing with argon2id (argon2-cffi's tuned defaults)."""

from __future__ import annotations

import os
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import ValidationFailed

MIN_LENGTH = 10
_hasher = PasswordHasher()
# Verified against when the account does not exist, so a missing account costs
# the same time as a wrong password and timing does not reveal which it was.
_DUMMY_HASH = _hasher.hash("retain-timing-equaliser")
# Each argon2 hash takes 64 MiB and a core for a quarter second: a burst of sign-ins would
# take the server's memory with it. At most this many run at once; the rest wait their turn.
CONCURRENT_HASHES = max(2, os.cpu_count() or 2)
_hashing = threading.BoundedSemaphore(CONCURRENT_HASHES)


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise ValidationFailed(
            "password.too_short",
            "Use a password of at least %(min)s characters.",
            min=MIN_LENGTH,
        )
    if len(password) > 512:
        raise ValidationFailed("password.too_long", "Use a password of at most 512 characters.")


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        with _hashing:
            ok = _hasher.verify(password_hash or _DUMMY_HASH, password)
        return ok and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
