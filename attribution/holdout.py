"""Holdout groups: which members of a campaign's target segment are held out, stably.

A campaign with a target segment can hold out a random share of it. Held-out members are the
*holdout* (control) arm: they are not issued the campaign's coupons or messages and are
excluded from its bonus rules. Everybody else in the segment is the *treated* arm. Comparing
the two over the campaign window (`attribution.lift`) tells what the campaign really added,
rather than what would have come anyway.

**The assignment is a hash, not a coin toss.** No table of who is held out is needed, and the
answer never changes: the same campaign and member give the same answer in every process, on
every machine and in every Python version (Python's own ``hash()`` is salted per process and
is never used). For campaign ``c`` and member ``m`` (both whole numbers ≥ 0, written in
decimal without sign or leading zeros)::

    key       = "retain.holdout.v1:{c}:{m}"                 (UTF-8; ASCII in fact)
    draw      = the first 8 bytes of SHA-256(key), read as a big-endian unsigned integer
                (0 ≤ draw < 2**64, uniform for all practical purposes)
    threshold = floor(share × 2**64), computed exactly from the decimal share
    held out  ⇔ draw < threshold

So the chance of being held out is ``threshold / 2**64``, within 2**-64 of the share. The
``v1`` in the key names this rule: a different rule must use a different tag, so that
nobody's assignment for an existing campaign moves silently.

Properties that follow, and that the tests check:

- *Independent between campaigns*: the campaign id is part of the key, so being held out of
  one campaign says nothing about the next; nobody is always the one left out.
- *Nested in the share*: a member held out at 10 % is also held out at 20 % (the same draw,
  a higher threshold). Raising the share only moves members from treated to holdout. It should
  still be fixed before the campaign starts: members who already received the campaign and are
  then counted as held out would blur the comparison.
- *Exact at the ends*: share 0 holds out nobody; share 0.5 holds out exactly the draws below
  2**63.

**Why at most half.** The holdout exists to measure, and every held-out member is a member
the campaign does not reach, so it costs revenue. For a segment of a given size, the
comparison between two arms is most precise when they are equal, so a holdout larger than
half would cost more revenue *and* measure less well than an even split. Typical shares are
5–20 %; `attribution.lift.sample_size` says how many members a chosen share needs.

`held_out` answers for one member; `assign` answers for an array of members at once (the
same rule; the tests check they agree).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from core.errors import ValidationFailed

KEY_PREFIX = "retain.holdout.v1"
MAX_SHARE = Decimal("0.5")
_DRAW_BYTES = 8
_SCALE = 1 << (8 * _DRAW_BYTES)  # 2**64


def check_share(share: Decimal) -> Decimal:
    """`share` if it is a decimal fraction of the segment from 0 to 0.5, else refused."""
    if isinstance(share, bool) or not isinstance(share, Decimal | int):
        raise ValidationFailed(
            "holdout.share_type", "A holdout share is a decimal number such as 0.1."
        )
    share = Decimal(share)
    if not share.is_finite() or not 0 <= share <= MAX_SHARE:
        raise ValidationFailed(
            "holdout.share_range",
            "A holdout share must be between 0 and 0.5 (at most half of the segment).",
        )
    return share


def threshold(share: Decimal) -> int:
    """``floor(share × 2**64)``, exactly: a member is held out when their draw is below it."""
    numerator, denominator = Fraction(check_share(share)).as_integer_ratio()
    return numerator * _SCALE // denominator


def _whole(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"a {what} id is a whole number, not {type(value).__name__}")
    number = int(value)
    if number < 0:
        raise ValueError(f"a {what} id cannot be negative: {number}")
    return number


def _prefix(campaign_id: int) -> bytes:
    return f"{KEY_PREFIX}:{_whole(campaign_id, 'campaign')}:".encode("ascii")


def _digest_head(prefix: bytes, member_id: int) -> bytes:
    key = prefix + str(_whole(member_id, "member")).encode("ascii")
    return hashlib.sha256(key).digest()[:_DRAW_BYTES]


def draw(campaign_id: int, member_id: int) -> int:
    """The member's 64-bit draw for the campaign: the first 8 bytes of SHA-256 of the key."""
    return int.from_bytes(_digest_head(_prefix(campaign_id), member_id), "big")


def held_out(campaign_id: int, member_id: int, share: Decimal) -> bool:
    """Whether the member is in the campaign's holdout when `share` of the segment is held out."""
    return draw(campaign_id, member_id) < threshold(share)


def assign(
    campaign_id: int, member_ids: Iterable[int] | npt.NDArray[np.integer], share: Decimal
) -> npt.NDArray[np.bool_]:
    """`held_out` for each member id, in order, as a boolean array (True = held out)."""
    limit = threshold(share)
    prefix = _prefix(campaign_id)
    ids = member_ids.tolist() if isinstance(member_ids, np.ndarray) else list(member_ids)
    if not ids:
        return np.zeros(0, dtype=np.bool_)
    heads = b"".join(_digest_head(prefix, member) for member in ids)
    draws = np.frombuffer(heads, dtype=">u8")
    # threshold ≤ 2**63 (share ≤ 0.5), so it fits an unsigned 64-bit integer.
    result: npt.NDArray[np.bool_] = draws < np.uint64(limit)
    return result
