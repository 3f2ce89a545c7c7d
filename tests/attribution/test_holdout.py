"""Holdout assignment: the documented hash rule, its realised share, independence between
campaigns, nesting in the share, the same answer in another process, and `assign` agreeing
with `held_out` member by member."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from attribution.holdout import MAX_SHARE, assign, check_share, draw, held_out, threshold
from core.errors import ValidationFailed

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = np.arange(1, 100_001, dtype=np.int64)


def documented(campaign_id: int, member_id: int, share: Decimal) -> bool:
    """The rule exactly as the module doc writes it, independently of the module's code."""
    key = f"retain.holdout.v1:{campaign_id}:{member_id}".encode()
    value = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
    numerator, denominator = share.as_integer_ratio()
    return value < numerator * 2**64 // denominator  # draw < floor(share × 2**64)


@pytest.mark.parametrize("campaign_id", [1, 7, 2_147_483_647])
@pytest.mark.parametrize("share", [Decimal("0.05"), Decimal("0.1"), Decimal("0.5")])
def test_assignment_follows_the_documented_formula(campaign_id: int, share: Decimal) -> None:
    members = [1, 2, 3, 10, 99, 1000, 123_456, 2_147_483_647]
    for member in members:
        assert held_out(campaign_id, member, share) is documented(campaign_id, member, share)
    assert assign(campaign_id, members, share).tolist() == [
        documented(campaign_id, m, share) for m in members
    ]


def test_the_draw_is_the_first_eight_bytes_of_the_key_hash() -> None:
    digest = hashlib.sha256(b"retain.holdout.v1:42:7").digest()
    assert draw(42, 7) == int.from_bytes(digest[:8], "big")
    assert 0 <= draw(42, 7) < 2**64


def test_threshold_is_exact() -> None:
    assert threshold(Decimal(0)) == 0
    assert threshold(MAX_SHARE) == 2**63
    assert threshold(Decimal("0.1")) == 2**64 // 10  # floor(0.1 × 2**64), no float rounding
    assert threshold(Decimal("0.25")) == 2**62


@pytest.mark.parametrize("share", [Decimal("0.05"), Decimal("0.1"), Decimal("0.3")])
def test_realised_share_is_within_binomial_tolerance(share: Decimal) -> None:
    held = assign(3, MEMBERS, share)
    p, n = float(share), MEMBERS.size
    standard_error = math.sqrt(p * (1 - p) / n)
    assert abs(held.mean() - p) < 5 * standard_error


def test_the_ends_of_the_range() -> None:
    assert not assign(3, MEMBERS[:5000], Decimal(0)).any()
    half = assign(3, MEMBERS, MAX_SHARE)
    assert abs(half.mean() - 0.5) < 5 * math.sqrt(0.25 / MEMBERS.size)


def test_campaigns_are_independent() -> None:
    share = Decimal("0.2")
    first, second = assign(1, MEMBERS, share), assign(2, MEMBERS, share)
    # Being held out of campaign 1 says nothing about campaign 2: among campaign 1's holdout,
    # campaign 2 holds out the share again, within sampling error; nobody is always left out.
    both = second[first]
    standard_error = math.sqrt(0.2 * 0.8 / both.size)
    assert abs(both.mean() - 0.2) < 5 * standard_error
    always = np.logical_and.reduce([assign(c, MEMBERS, share) for c in range(1, 11)])
    assert always.sum() < 10  # expected 100,000 × 0.2**10 ≈ 0.01


def test_a_larger_share_only_adds_members() -> None:
    small = assign(5, MEMBERS[:20_000], Decimal("0.1"))
    large = assign(5, MEMBERS[:20_000], Decimal("0.2"))
    assert np.all(large[small])
    assert large.sum() > small.sum()


@pytest.mark.parametrize("share", [Decimal(0), Decimal("0.01"), Decimal("0.15"), MAX_SHARE])
def test_vectorised_agrees_with_scalar(share: Decimal) -> None:
    members = np.concatenate([np.arange(1, 3001), [2**31 - 1, 2**40, 0]]).astype(np.int64)
    vector = assign(11, members, share)
    assert vector.dtype == np.bool_ and vector.shape == members.shape
    assert vector.tolist() == [held_out(11, int(m), share) for m in members]
    # Any iterable of ids gives the same answer as an array.
    assert assign(11, (int(m) for m in members), share).tolist() == vector.tolist()


def test_no_members_no_answers() -> None:
    empty = assign(1, [], Decimal("0.1"))
    assert empty.dtype == np.bool_ and empty.size == 0


PROGRAM = """
import sys
from decimal import Decimal
sys.path.insert(0, {root!r})
from attribution.holdout import assign
print(''.join('1' if held else '0' for held in assign(9, range(1, 2001), Decimal('0.25'))))
"""


def test_the_same_answer_in_another_process() -> None:
    env = {**os.environ, "PYTHONHASHSEED": "4321"}
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(root=str(ROOT))],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    here = "".join("1" if h else "0" for h in assign(9, range(1, 2001), Decimal("0.25")))
    assert out.stdout.strip() == here


@pytest.mark.parametrize("share", [Decimal("-0.01"), Decimal("0.51"), Decimal(1), Decimal("NaN")])
def test_shares_out_of_range_are_refused(share: Decimal) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_share(share)
    assert refused.value.code == "holdout.share_range"
    with pytest.raises(ValidationFailed):
        held_out(1, 1, share)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        held_out(1, 1, 0.1)  # type: ignore[arg-type]
    assert refused.value.code == "holdout.share_type"
    with pytest.raises(ValueError, match="negative"):
        held_out(1, -1, Decimal("0.1"))
    with pytest.raises(TypeError):
        assign(1, np.array([1.5, 2.0]), Decimal("0.1"))
