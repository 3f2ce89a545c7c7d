"""Codes people read aloud and type: coupons and referral codes.

32 symbols without 0/O and 1/I, so each symbol is exactly 5 random bits from the
operating system's CSPRNG (no modulo bias) and no code is ambiguous when read.
A 10-symbol code carries 50 bits: guessing one of a million live codes takes about
a billion tries, which rate limits and single use make pointless.
"""

from __future__ import annotations

import secrets

import numpy as np

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_SYMBOLS = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
COUPON_LENGTH = 10
REFERRAL_LENGTH = 8


def generate(count: int, length: int = COUPON_LENGTH) -> list[str]:
    """`count` random codes (vectorised: a million take well under a second)."""
    if count <= 0:
        return []
    raw = np.frombuffer(secrets.token_bytes(count * length), dtype=np.uint8) & 31
    symbols = _SYMBOLS[raw].reshape(count, length)
    return symbols.view(f"S{length}").ravel().astype(str).tolist()  # type: ignore[no-any-return]


def one(length: int = COUPON_LENGTH) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def normalise(code: str) -> str:
    """What a person typed, as stored: upper case, without spaces or dashes."""
    return "".join(code.split()).replace("-", "").upper()
