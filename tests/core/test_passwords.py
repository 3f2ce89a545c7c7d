from __future__ import annotations

import pytest

from core import passwords
from core.errors import ValidationFailed


def test_hash_and_verify() -> None:
    hashed = passwords.hash_password("a long passphrase")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password(hashed, "a long passphrase")
    assert not passwords.verify_password(hashed, "a long passphrasE")
    assert not passwords.verify_password(None, "a long passphrase")
    assert not passwords.verify_password("not-a-hash", "x")


def test_strength() -> None:
    with pytest.raises(ValidationFailed, match="at least 10"):
        passwords.check_strength("short")
    passwords.check_strength("long enough!")
