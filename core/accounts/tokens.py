"""Random bearer tokens: the holder keeps the token, the database keeps only its hash.

SHA-256 (not argon2) is right here: the tokens carry 256 bits of entropy, so
there is nothing to brute-force, and lookups happen on every request.
"""

from __future__ import annotations

import hashlib
import secrets


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
