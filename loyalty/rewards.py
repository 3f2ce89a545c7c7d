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

from core import audit
from core.audit import Actor
from core.errors import Conflict, NotFound, ValidationFailed
from loyalty import coupons, ledger
from loyalty import program as program_settings
from loyalty.models import Batch, Coupon, EntryType, LedgerEntry, Member, Reward, Tier


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
) -> Reward:
    actor.require("admin", "marketer", doing="edit the reward catalog")
    if not name.strip():
        raise ValidationFailed("reward.name", "Give the reward a name.")
    if points_cost <= 0:
        raise ValidationFailed("reward.cost", "A reward costs at least 1 point.")
    if session.get(Batch, batch_id) is None:
        raise ValidationFailed("reward.batch", f"No coupon batch {batch_id}.")
    tiers = [t.strip().lower() for t in eligible_tiers or [] if t.strip()]
    unknown = set(tiers) - set(session.scalars(select(Tier.code)))
    if unknown:
        raise ValidationFailed("reward.tiers", f"Unknown tier {', '.join(sorted(unknown))}.")
    reward = session.get(Reward, reward_id) if reward_id else Reward()
    if reward is None:
        raise NotFound("reward.not_found", f"No reward {reward_id}.")
    before = _snapshot(reward) if reward_id else None
    reward.name, reward.points_cost, reward.batch_id = name.strip(), points_cost, batch_id
    reward.description, reward.eligible_tiers, reward.active = description.strip(), tiers, active
    session.add(reward)
    session.flush()
    audit.record(
        session, actor, "reward.save", "reward", reward.id, before=before, after=_snapshot(reward)
    )
    return reward


def _snapshot(reward: Reward) -> dict[str, Any]:
    return {
        "name": reward.name,
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


def redeem(
    session: Session,
    actor: Actor,
    member_id: int,
    reward_id: int,
    *,
    key: str,
    at: datetime,
) -> Redeemed:
    """Spend points on a reward: the redeem entry and the coupon issue in one transaction."""
    member = ledger.lock_member(session, member_id)
    entry_key = f"reward:{member.id}:{key}"
    earlier = ledger.existing(session, entry_key)
    if earlier is not None:
        coupon = session.scalar(select(Coupon).where(Coupon.reward_entry_id == earlier.id))
        assert coupon is not None
        return Redeemed(earlier, coupon, replayed=True)
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
        session, actor, reward.batch_id, member, reason=f"Reward: {reward.name}", at=at
    )
    coupon.reward_entry_id = entry.id
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
    actor.require("admin", "finance", doing="adjust points")
    if not reason.strip():
        raise ValidationFailed("points.reason", "Say why the points change; members see it.")
    if points == 0:
        raise ValidationFailed("points.amount", "An adjustment of 0 points changes nothing.")
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
            [ledger.Credit(points, reason.strip(), "adjust", EntryType.ADJUST)],
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
            reason=reason.strip(),
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
        after={"balance": member.balance, "points": points, "reason": reason.strip()},
    )
    return entry
