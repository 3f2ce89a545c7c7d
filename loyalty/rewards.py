"""The reward catalog, and points adjustments by staff.

Redeeming a reward is one transaction: the redeem entry and the coupon issue commit
together or not at all, and a retry with the same key returns the first result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, bounds
from core.audit import Actor
from core.errors import Conflict, NotFound, Problems, ValidationFailed
from core.text import N_
from loyalty import coupons, ledger, members
from loyalty import program as program_settings
from loyalty.models import (
    NOTE_LENGTH,
    Batch,
    Coupon,
    EntryType,
    LedgerEntry,
    Member,
    Reward,
    Tier,
    check_name_zh,
)

# An idempotency key (the API's header, a form's one-time key): the ledger's key holds it.
KEY_LENGTH = 100


def _check_key(key: str) -> None:
    if not key.strip() or bounds.text_problem(key, KEY_LENGTH):
        raise ValidationFailed(
            "points.key",
            "The request's key must be 1 to %(most)s plain characters.",
            most=KEY_LENGTH,
        )


def save(
    session: Session,
    actor: Actor,
    *,
    reward_id: int | None = None,
    name: str,
    points_cost: int,
    batch_id: int,
    description: str = "",
    eligible_tiers: list[str] | None = None,
    active: bool = True,
    name_zh: str | None = None,
) -> Reward:
    """Add a reward or change one. Every problem with the fields is named at once, under the
    keyword's name (`core.errors.Invalid`)."""
    actor.require("admin", "marketer", doing=N_("edit the reward catalog"))
    problems = Problems()

    def checked_name() -> str:
        text = bounds.check_text(name, "reward.name", bounds.length(Reward.name), N_("The name"))
        if not text.strip():
            raise ValidationFailed("reward.name", "Give the reward a name.")
        return text.strip()

    def checked_tiers() -> list[str]:
        for tier in eligible_tiers or []:
            bounds.check_text(tier, "reward.tiers", bounds.length(Tier.code), N_("A tier code"))
        tiers = [t.strip().lower() for t in eligible_tiers or [] if t.strip()]
        unknown = set(tiers) - set(session.scalars(select(Tier.code)))
        if unknown:
            raise ValidationFailed(
                "reward.tiers", "Unknown tier %(tiers)s.", tiers=", ".join(sorted(unknown))
            )
        return tiers

    reward_name = problems.check("name", checked_name)
    chinese = problems.check(
        "name_zh", lambda: check_name_zh(name_zh, bounds.length(Reward.name_zh), "reward")
    )
    text = problems.check(
        "description",
        lambda: bounds.check_text(
            description, "reward.description", NOTE_LENGTH, N_("The description")
        ).strip(),
    )
    if isinstance(points_cost, bool) or not 1 <= points_cost <= bounds.MAX_POINTS:
        problems.add(
            "points_cost",
            "A reward costs from 1 to %(most)s points.",
            "reward.cost",
            most=f"{bounds.MAX_POINTS:,}",
        )
    if not 1 <= batch_id <= bounds.MAX_ID or session.get(Batch, batch_id) is None:
        problems.add("batch_id", "No coupon batch %(id)s.", "reward.batch", id=batch_id)
    if reward_id is not None:
        problems.check("reward_id", lambda: bounds.check_id(reward_id, "reward_id"))
    tiers = problems.check("eligible_tiers", checked_tiers)
    problems.raise_any()
    assert reward_name is not None and text is not None and tiers is not None
    reward = session.get(Reward, reward_id) if reward_id else Reward()
    if reward is None:
        raise NotFound("reward.not_found", "No reward %(id)s.", id=reward_id)
    before = _snapshot(reward) if reward_id else None
    reward.name, reward.name_zh = reward_name, chinese
    reward.points_cost, reward.batch_id = points_cost, batch_id
    reward.description, reward.eligible_tiers, reward.active = text, tiers, active
    session.add(reward)
    session.flush()
    audit.record(
        session, actor, "reward.save", "reward", reward.id, before=before, after=_snapshot(reward)
    )
    return reward


def _snapshot(reward: Reward) -> dict[str, Any]:
    return {
        "name": reward.name,
        "name_zh": reward.name_zh,
        "points_cost": reward.points_cost,
        "batch_id": reward.batch_id,
        "eligible_tiers": reward.eligible_tiers,
        "active": reward.active,
    }


def catalog(session: Session, member: Member | None = None) -> list[Reward]:
    """Active rewards, cheapest first; for a member, only those their tier can see."""
    rewards = list(
        session.scalars(select(Reward).where(Reward.active).order_by(Reward.points_cost, Reward.id))
    )
    if member is None:
        return rewards
    tier_code = session.scalar(select(Tier.code).where(Tier.id == member.tier_id))
    return [r for r in rewards if not r.eligible_tiers or tier_code in r.eligible_tiers]


@dataclass(frozen=True, slots=True)
class Redeemed:
    entry: LedgerEntry
    coupon: Coupon
    replayed: bool = False


def _entry_key(member_id: int, key: str) -> str:
    return f"reward:{member_id}:{key}"


def earlier(session: Session, member_id: int, key: str) -> Redeemed | None:
    """The redemption already made under this member's form `key`, replayed (a double submit
    or a resubmitted page gives back the first coupon); None when the key is unused. The key
    is the member's own: another member's finds nothing."""
    entry = ledger.existing(session, _entry_key(member_id, key))
    if entry is None:
        return None
    coupon = session.scalar(select(Coupon).where(Coupon.reward_entry_id == entry.id))
    assert coupon is not None
    return Redeemed(entry, coupon, replayed=True)


def redeem(
    session: Session,
    actor: Actor,
    member_id: int,
    reward_id: int,
    *,
    key: str,
    at: datetime,
) -> Redeemed:
    """Spend points on a reward: the redeem entry and the coupon issue in one transaction.
    The member spends their own points in the portal; the till (finance, admin) for them."""
    member = ledger.lock_member(session, member_id)
    if not members.is_self(actor, member):
        actor.require("admin", "finance", doing=N_("redeem rewards for a member"))
    bounds.check_id(reward_id, "reward_id")
    _check_key(key)
    entry_key = _entry_key(member.id, key)
    done = earlier(session, member.id, key)
    if done is not None:
        return done
    reward = session.get(Reward, reward_id)
    if reward is None or not reward.active or reward not in catalog(session, member):
        raise NotFound("reward.not_found", "This reward is not in your catalog.")
    entry = ledger.debit(
        session,
        member,
        actor,
        reward.points_cost,
        type=EntryType.REDEEM,
        reason=f"Reward: {reward.name}",
        rule=f"reward:{reward.id}",
        key=entry_key,
        at=at,
        source=("reward", reward.id),
    )
    coupon = coupons.issue(
        session, actor, reward.batch_id, member, reason=f"Reward: {reward.name}", at=at, paid=entry
    )
    return Redeemed(entry, coupon)


def adjust(
    session: Session,
    actor: Actor,
    member_id: int,
    points: int,
    *,
    reason: str,
    key: str,
    at: datetime,
    zone: ZoneInfo,
) -> LedgerEntry:
    """A manual correction by admin or finance: a reason is required and an audit row written.
    A deduction may leave the balance negative (it becomes debt)."""
    actor.require("admin", "finance", doing=N_("adjust points"))
    reason = bounds.check_text(
        reason, "points.reason", bounds.length(LedgerEntry.reason), N_("The reason")
    ).strip()
    if not reason:
        raise ValidationFailed("points.reason", "Say why the points change; members see it.")
    if isinstance(points, bool) or not isinstance(points, int):
        raise ValidationFailed("points.amount", "Give the points as a whole number.")
    if points == 0:
        raise ValidationFailed("points.amount", "An adjustment of 0 points changes nothing.")
    largest = program_settings.get(session).max_adjustment
    if abs(points) > largest:
        raise ValidationFailed(
            "points.amount.range",
            "One adjustment adds or takes away at most %(most)s points (the program's "
            "limit); split a larger correction, or ask an admin to raise the limit.",
            most=f"{largest:,}",
        )
    _check_key(key)
    member = ledger.lock_member(session, member_id)
    entry_key = f"adjust:{key}:adjust"
    earlier = ledger.existing(session, entry_key)
    if earlier is not None:
        if earlier.member_id != member.id or earlier.points != points:
            raise Conflict("points.key_reused", "This adjustment key was used for another change.")
        return earlier
    before = {"balance": member.balance}
    if points > 0:
        program = program_settings.get(session)
        _, entries = ledger.credit(
            session,
            member,
            actor,
            [ledger.Credit(points, reason, "adjust", EntryType.ADJUST)],
            key=f"adjust:{key}",
            at=at,
            program=program,
            zone=zone,
            source=("adjustment", member.id),
        )
        entry = entries[0]
    else:
        entry = ledger.debit(
            session,
            member,
            actor,
            -points,
            type=EntryType.ADJUST,
            reason=reason,
            rule="adjust",
            key=entry_key,
            at=at,
            source=("adjustment", member.id),
            allow_debt=True,
        )
    audit.record(
        session,
        actor,
        "points.adjust",
        "member",
        member.number,
        before=before,
        after={"balance": member.balance, "points": points, "reason": reason},
    )
    return entry
