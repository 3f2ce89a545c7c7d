"""Program settings, the tier ladder and bonus rules: configured by staff, every change audited."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Any, TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from core import audit
from core.audit import Actor
from core.errors import NotFound, ValidationFailed
from loyalty.models import BonusRule, ConfigVersion, ExpiryPolicy, Program, Tier, TierMetric

T = TypeVar("T", Program, Tier, BonusRule)

# Program fields an admin may change, with the check each must pass.
_NON_NEGATIVE_INTS = (
    "return_window_days",
    "expiry_n",
    "tier_window_months",
    "tier_retention_days",
    "signup_bonus",
    "first_purchase_bonus",
    "birthday_points",
    "repeat_bonus",
    "referrer_points",
    "referee_points",
    "referral_monthly_cap",
)
EDITABLE = (
    "earn_rate",
    "expiry_policy",
    "tier_metric",
    "repeat_count",
    "repeat_days",
    "referral_min_amount",
    "restore_coupon_on_refund",
    "birthday_batch_id",
    "referrer_batch_id",
    "referee_batch_id",
    *_NON_NEGATIVE_INTS,
)


@dataclass(frozen=True, slots=True)
class Config:
    """A read-only copy of the settings a purchase needs, shared across requests."""

    token: str
    program: Program
    ladder: list[Tier]
    rules: list[BonusRule]  # active ones, in evaluation order


_configs: dict[str, Config] = {}
_latest: list[Config] = []  # the one loaded last, a good guess for the next purchase
_configs_lock = threading.Lock()


def _copy(row: T) -> T:
    """A transient copy: plain attributes, tied to no session, safe to share between threads."""
    cls = type(row)
    return cls(**{attr.key: getattr(row, attr.key) for attr in inspect(cls).column_attrs})


def config(session: Session, token: str) -> Config:
    """The settings under version `token` (see ConfigVersion), loaded once per process and
    version. Changing anything gives a new token, so a stale copy is never used."""
    found = _configs.get(token)
    if found is not None:
        return found
    # What the database holds, not copies this session read before a change.
    loaded = Config(
        token,
        _copy(get(session, fresh=True)),
        [_copy(t) for t in ladder(session, fresh=True)],
        [_copy(r) for r in rules(session, active_only=True, fresh=True)],
    )
    # Cache only if nothing changed while loading; else use it for this purchase alone.
    if session.scalar(select(ConfigVersion.token)) == token:
        with _configs_lock:
            if len(_configs) > 32:
                _configs.clear()
            _configs[token] = loaded
            _latest[:] = [loaded]
    return loaded


def latest() -> Config | None:
    """The settings most recently used in this process (they may have changed since: check
    the token)."""
    return _latest[0] if _latest else None


def campaign_names(session: Session, rules: list[BonusRule]) -> dict[int, str]:
    """Names of the campaigns bonus rules belong to, for "Double points — Spring sale"."""
    ids = {r.campaign_id for r in rules if r.campaign_id}
    if not ids:
        return {}
    found = session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids)))
    return {campaign_id: name for campaign_id, name in found}


def get(session: Session, *, fresh: bool = False) -> Program:
    program = session.get(Program, 1, populate_existing=fresh)
    if program is None:  # the migration seeds it; a hand-emptied table gets the defaults
        program = Program(id=1)
        session.add(program)
        session.flush()
    return program


def snapshot(program: Program) -> dict[str, Any]:
    values = {f: getattr(program, f) for f in EDITABLE}
    return {f: str(v) if isinstance(v, Decimal) else v for f, v in values.items()}


def update(session: Session, actor: Actor, **changes: Any) -> Program:
    actor.require("admin", doing="change the loyalty program's settings")
    program = get(session)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationFailed("program.field", f"Unknown setting {', '.join(sorted(unknown))}.")
    for name in _NON_NEGATIVE_INTS:
        if name in changes and (not isinstance(changes[name], int) or changes[name] < 0):
            raise ValidationFailed(f"program.{name}", f"{name} must be a whole number ≥ 0.")
    if "earn_rate" in changes and Decimal(changes["earn_rate"]) < 0:
        raise ValidationFailed("program.earn_rate", "The earn rate cannot be negative.")
    if "expiry_policy" in changes and changes["expiry_policy"] not in set(ExpiryPolicy):
        raise ValidationFailed(
            "program.expiry_policy", f"Choose one of {', '.join(p.value for p in ExpiryPolicy)}."
        )
    if "tier_metric" in changes and changes["tier_metric"] not in set(TierMetric):
        raise ValidationFailed("program.tier_metric", "Choose points or spend.")
    if "repeat_count" in changes and changes["repeat_count"] < 2:
        raise ValidationFailed("program.repeat_count", "A repeat purchase is the 2nd or later.")
    if "repeat_days" in changes and changes["repeat_days"] < 1:
        raise ValidationFailed("program.repeat_days", "The repeat window is at least one day.")
    before = snapshot(program)
    for name, value in changes.items():
        setattr(program, name, value)
    session.flush()
    after = snapshot(program)
    audit.record(
        session,
        actor,
        "program.update",
        "loyalty_program",
        1,
        before={k: v for k, v in before.items() if after[k] != v},
        after={k: v for k, v in after.items() if before[k] != v},
    )
    return program


def ladder(session: Session, *, fresh: bool = False) -> list[Tier]:
    query = select(Tier).order_by(Tier.rank).execution_options(populate_existing=fresh)
    return list(session.scalars(query))


def entry_tier(session: Session) -> Tier:
    tier = session.scalar(select(Tier).order_by(Tier.rank).limit(1))
    if tier is None:
        raise NotFound("tier.none", "The tier ladder is empty; add a first tier.")
    return tier


def save_tier(
    session: Session,
    actor: Actor,
    *,
    code: str,
    name: str,
    rank: int,
    threshold: int,
    multiplier: Decimal,
    benefits: str = "",
) -> Tier:
    """Add a tier or change one (by code). Thresholds must rise with rank."""
    actor.require("admin", "marketer", doing="configure tiers")
    code = code.strip().lower()
    if not code or not name.strip():
        raise ValidationFailed("tier.name", "A tier needs a code and a name.")
    if threshold < 0 or multiplier < 1:
        raise ValidationFailed("tier.values", "Threshold must be ≥ 0 and multiplier ≥ 1.")
    tier = session.scalar(select(Tier).where(Tier.code == code))
    before = None if tier is None else _tier_snapshot(tier)
    if tier is None:
        tier = Tier(code=code)
        session.add(tier)
    tier.name, tier.rank, tier.threshold = name.strip(), rank, threshold
    tier.multiplier, tier.benefits = multiplier, benefits.strip()
    session.flush()
    ordered = ladder(session)
    if ordered[0].threshold != 0:
        raise ValidationFailed("tier.entry", "The lowest tier's threshold must be 0.")
    for lower, higher in pairwise(ordered):
        if higher.threshold <= lower.threshold:
            raise ValidationFailed(
                "tier.order",
                f"{higher.name} must need more than {lower.name} ({lower.threshold:,}).",
            )
    audit.record(
        session, actor, "tier.save", "tier", tier.code, before=before, after=_tier_snapshot(tier)
    )
    return tier


def _tier_snapshot(tier: Tier) -> dict[str, Any]:
    return {
        "name": tier.name,
        "rank": tier.rank,
        "threshold": tier.threshold,
        "multiplier": str(tier.multiplier),
        "benefits": tier.benefits,
    }


def rules(session: Session, *, active_only: bool = False, fresh: bool = False) -> list[BonusRule]:
    """Bonus rules in evaluation order: priority (lower first), then id. `fresh` re-reads
    rows this session already holds."""
    query = (
        select(BonusRule)
        .order_by(BonusRule.priority, BonusRule.id)
        .execution_options(populate_existing=fresh)
    )
    return list(session.scalars(query.where(BonusRule.active) if active_only else query))


def save_rule(
    session: Session,
    actor: Actor,
    *,
    rule_id: int | None = None,
    name: str,
    priority: int = 100,
    active: bool = True,
    starts_on: date | None = None,
    ends_on: date | None = None,
    channel_id: int | None = None,
    campaign_id: int | None = None,
    category: str | None = None,
    min_spend: Decimal | None = None,
    multiplier: Decimal | None = None,
    fixed_points: int | None = None,
    stop_further: bool = False,
) -> BonusRule:
    actor.require("admin", "marketer", doing="configure bonus rules")
    if not name.strip():
        raise ValidationFailed("rule.name", "Give the rule a name members will see.")
    if (multiplier is None) == (fixed_points is None):
        raise ValidationFailed("rule.effect", "Give either a multiplier or a fixed bonus.")
    if multiplier is not None and multiplier <= 1:
        raise ValidationFailed("rule.multiplier", "A multiplier must be above 1 (2 = double).")
    if fixed_points is not None and fixed_points <= 0:
        raise ValidationFailed("rule.fixed_points", "A fixed bonus must be positive.")
    if starts_on and ends_on and ends_on < starts_on:
        raise ValidationFailed("rule.dates", "The rule ends before it starts.")
    if min_spend is not None and min_spend < 0:
        raise ValidationFailed("rule.min_spend", "Minimum spend cannot be negative.")
    rule = None if rule_id is None else session.get(BonusRule, rule_id)
    if rule_id is not None and rule is None:
        raise NotFound("rule.not_found", f"No bonus rule {rule_id}.")
    before = None if rule is None else _rule_snapshot(rule)
    if rule is None:
        rule = BonusRule()
        session.add(rule)
    rule.name, rule.priority, rule.active = name.strip(), priority, active
    rule.starts_on, rule.ends_on = starts_on, ends_on
    rule.channel_id, rule.campaign_id = channel_id, campaign_id
    rule.category = (category or "").strip().lower() or None
    rule.min_spend, rule.multiplier, rule.fixed_points = min_spend, multiplier, fixed_points
    rule.stop_further = stop_further
    session.flush()
    audit.record(
        session,
        actor,
        "bonus_rule.save",
        "bonus_rule",
        rule.id,
        before=before,
        after=_rule_snapshot(rule),
    )
    return rule


def _rule_snapshot(rule: BonusRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "priority": rule.priority,
        "active": rule.active,
        "starts_on": str(rule.starts_on) if rule.starts_on else None,
        "ends_on": str(rule.ends_on) if rule.ends_on else None,
        "channel_id": rule.channel_id,
        "campaign_id": rule.campaign_id,
        "category": rule.category,
        "min_spend": None if rule.min_spend is None else str(rule.min_spend),
        "multiplier": None if rule.multiplier is None else str(rule.multiplier),
        "fixed_points": rule.fixed_points,
        "stop_further": rule.stop_further,
    }
