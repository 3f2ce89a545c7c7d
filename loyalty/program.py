"""Program settings, the tier ladder and bonus rules: configured by staff, every change audited."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Any, TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.models import Campaign, Channel
from core import audit, bounds
from core.audit import Actor
from core.errors import NotFound, Problems, ValidationFailed
from core.text import N_
from loyalty.models import (
    MAX_BIG,
    NOTE_LENGTH,
    Batch,
    BonusRule,
    ConfigVersion,
    ExpiryPolicy,
    Program,
    Tier,
    TierMetric,
    check_name_zh,
)

T = TypeVar("T", Program, Tier, BonusRule)

# Whole-number settings an admin may change: (lowest, highest, what it is). Days and months
# stay where dates can still be computed; points stay within one ledger entry's bound.
WHOLE: dict[str, tuple[int, int, str]] = {
    "return_window_days": (0, 365, N_("The return window (days)")),
    "expiry_n": (0, 3650, N_("N for the expiry policy")),
    "tier_window_months": (0, 120, N_("The qualifying window (months)")),
    "tier_retention_days": (0, 3650, N_("Days a tier is kept")),
    "signup_bonus": (0, bounds.MAX_POINTS, N_("The sign-up bonus")),
    "first_purchase_bonus": (0, bounds.MAX_POINTS, N_("The first-purchase bonus")),
    "birthday_points": (0, bounds.MAX_POINTS, N_("The birthday reward")),
    "repeat_count": (2, 1000, N_("The repeat purchase (the Nth)")),
    "repeat_days": (1, 3650, N_("The repeat window (days)")),
    "repeat_bonus": (0, bounds.MAX_POINTS, N_("The repeat bonus")),
    "referrer_points": (0, bounds.MAX_POINTS, N_("The referrer's reward")),
    "referee_points": (0, bounds.MAX_POINTS, N_("The new member's referral reward")),
    "referral_monthly_cap": (0, 100_000, N_("Rewarded referrals per month")),
    "max_adjustment": (1, bounds.MAX_POINTS, N_("The largest manual adjustment")),
}
BATCHES = ("birthday_batch_id", "referrer_batch_id", "referee_batch_id")
EDITABLE = (
    "earn_rate",
    "point_value",
    "expiry_policy",
    "tier_metric",
    "referral_min_amount",
    "restore_coupon_on_refund",
    "max_multiplier",
    *BATCHES,
    *WHOLE,
)
# NUMERIC(10, 4) and NUMERIC(6, 3): the most each column holds.
MAX_EARN_RATE = Decimal("999999.9999")
MAX_POINT_VALUE = Decimal(1000)  # a point worth more than 1,000 of the base currency is a typo
MAX_MULTIPLIER = Decimal("999.999")
MAX_RANK = 999
MAX_PRIORITY = 1_000_000


def whole(value: object, field: str, low: int, high: int, label: str) -> int:
    """A whole number within [low, high], or a ValidationFailed naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(
            f"{field}.range",
            "%(label)s must be a whole number from %(low)s to %(high)s.",
            label=label,
            low=f"{low:,}",
            high=f"{high:,}",
        )
    return value


def decimal(
    value: object, field: str, low: Decimal, high: Decimal, places: int, label: str
) -> Decimal:
    """A decimal within [low, high] with at most `places` decimals (what its column keeps)."""
    try:
        number = Decimal(value)  # type: ignore[arg-type]
    except (ArithmeticError, TypeError, ValueError):
        raise ValidationFailed(
            f"{field}.invalid", "%(label)s is not a number.", label=label
        ) from None
    if not number.is_finite() or not low <= number <= high:
        raise ValidationFailed(
            f"{field}.range",
            "%(label)s must be from %(low)s to %(high)s.",
            label=label,
            low=f"{low}",
            high=f"{high:,}",
        )
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise ValidationFailed(
            f"{field}.precision",
            "%(label)s has at most %(places)s decimal places.",
            label=label,
            places=places,
        )
    return number


def _multiplier(
    session: Session, value: Decimal, field: str, label: str, *, above_one: bool
) -> Decimal:
    """A tier's or a rule's multiplier: at least 1 (a rule's above 1), at most the program's
    `max_multiplier`, three decimals."""
    number = decimal(value, field, Decimal(1), get(session).max_multiplier, 3, label)
    if above_one and number <= 1:
        raise ValidationFailed(
            f"{field}.range", "%(label)s must be above 1 (2 = double).", label=label
        )
    return number


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
    actor.require("admin", doing=N_("change the loyalty program's settings"))
    program = get(session)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationFailed(
            "program.field", "Unknown setting %(names)s.", names=", ".join(sorted(unknown))
        )
    changes = _checked(session, changes)
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


def _checked(session: Session, changes: dict[str, Any]) -> dict[str, Any]:
    """Each change within its bound (see WHOLE); every refusal is named at once, under the
    setting's name (`core.errors.Invalid`)."""
    checked = dict(changes)
    problems = Problems()

    def keep(name: str, run: Callable[[], Any]) -> None:
        value = problems.check(name, run)
        if name not in problems:
            checked[name] = value

    for name, (low, high, label) in WHOLE.items():
        if name in changes:
            keep(
                name,
                lambda name=name, low=low, high=high, label=label: whole(  # type: ignore[misc]
                    changes[name], f"program.{name}", low, high, label
                ),
            )
    if "earn_rate" in changes:
        keep(
            "earn_rate",
            lambda: decimal(
                changes["earn_rate"],
                "program.earn_rate",
                Decimal(0),
                MAX_EARN_RATE,
                4,
                N_("The earn rate"),
            ),
        )

    if "point_value" in changes:
        keep(
            "point_value",
            lambda: decimal(
                changes["point_value"],
                "program.point_value",
                Decimal(0),
                MAX_POINT_VALUE,
                4,
                N_("The value of one point"),
            ),
        )

    def referral_min_amount() -> Decimal:
        amount = changes["referral_min_amount"]
        if not isinstance(amount, Decimal | int):
            raise ValidationFailed("program.referral_min_amount", "Give the amount as a number.")
        return bounds.check_amount(
            Decimal(amount), "program.referral_min_amount", label=N_("The referral's minimum")
        )

    if "referral_min_amount" in changes:
        keep("referral_min_amount", referral_min_amount)

    def max_multiplier() -> Decimal:
        highest = decimal(
            changes["max_multiplier"],
            "program.max_multiplier",
            Decimal(1),
            MAX_MULTIPLIER,
            3,
            N_("The highest multiplier"),
        )
        over = [t.name for t in ladder(session) if t.multiplier > highest] + [
            r.name for r in rules(session) if r.multiplier is not None and r.multiplier > highest
        ]
        if over:
            raise ValidationFailed(
                "program.max_multiplier.in_use",
                N_("%(names)s multiplies by more than %(highest)s; lower it first.")
                if len(over) == 1
                else N_("%(names)s multiply by more than %(highest)s; lower them first."),
                names=", ".join(over),
                highest=f"{highest:f}",
            )
        return highest

    if "max_multiplier" in changes:
        keep("max_multiplier", max_multiplier)
    if "expiry_policy" in changes and changes["expiry_policy"] not in set(ExpiryPolicy):
        problems.add(
            "expiry_policy",
            "Choose one of %(choices)s.",
            "program.expiry_policy",
            choices=", ".join(p.value for p in ExpiryPolicy),
        )
    if "tier_metric" in changes and changes["tier_metric"] not in set(TierMetric):
        problems.add("tier_metric", "Choose points or spend.", "program.tier_metric")
    if "restore_coupon_on_refund" in changes and not isinstance(
        changes["restore_coupon_on_refund"], bool
    ):
        problems.add(
            "restore_coupon_on_refund", "Say yes or no.", "program.restore_coupon_on_refund"
        )
    for name in BATCHES:
        batch_id = changes.get(name)
        if batch_id is not None and (
            isinstance(batch_id, bool)
            or not isinstance(batch_id, int)
            or not 1 <= batch_id <= bounds.MAX_ID
            or session.get(Batch, batch_id) is None
        ):
            problems.add(name, "There is no coupon batch %(id)s.", f"program.{name}", id=batch_id)
    problems.raise_any()
    return checked


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
    name_zh: str | None = None,
) -> Tier:
    """Add a tier or change one (by code). Thresholds must rise with rank; each rank is one
    tier's. Every problem with the fields is named at once, under the keyword's name."""
    actor.require("admin", "marketer", doing=N_("configure tiers"))
    problems = Problems()

    def checked_code() -> str:
        text = bounds.check_text(code, "tier.code", bounds.length(Tier.code), N_("The code"))
        if not text.strip():
            raise ValidationFailed("tier.name", "A tier needs a code and a name.")
        return text.strip().lower()

    def checked_name() -> str:
        text = bounds.check_text(
            name, "tier.name", bounds.length(Tier.name), N_("The name")
        ).strip()
        if not text:
            raise ValidationFailed("tier.name", "A tier needs a code and a name.")
        return text

    tier_code = problems.check("code", checked_code)
    tier_name = problems.check("name", checked_name)
    chinese = problems.check(
        "name_zh", lambda: check_name_zh(name_zh, bounds.length(Tier.name_zh), "tier")
    )
    text = problems.check(
        "benefits",
        lambda: bounds.check_text(benefits, "tier.benefits", NOTE_LENGTH, N_("Benefits")).strip(),
    )
    tier_rank = problems.check(
        "rank", lambda: whole(rank, "tier.rank", 0, MAX_RANK, N_("The rank"))
    )
    tier_threshold = problems.check(
        "threshold", lambda: whole(threshold, "tier.threshold", 0, MAX_BIG, N_("The threshold"))
    )
    tier_multiplier = problems.check(
        "multiplier",
        lambda: _multiplier(
            session, multiplier, "tier.multiplier", N_("The multiplier"), above_one=False
        ),
    )
    if tier_rank is not None and tier_code is not None:
        taken = session.scalar(select(Tier).where(Tier.rank == tier_rank, Tier.code != tier_code))
        if taken is not None:
            problems.add(
                "rank",
                "Rank %(rank)s is %(holder)s's already; give %(tier)s another rank.",
                "tier.rank.taken",
                rank=tier_rank,
                holder=taken.name,
                tier=tier_name or tier_code,
            )
    problems.raise_any()
    assert tier_code is not None and tier_name is not None and text is not None
    assert tier_rank is not None and tier_threshold is not None and tier_multiplier is not None
    tier = session.scalar(select(Tier).where(Tier.code == tier_code))
    before = None if tier is None else _tier_snapshot(tier)
    try:
        # Changed inside the savepoint: begin_nested() flushes pending changes before it starts.
        with session.begin_nested():
            if tier is None:
                tier = Tier(code=tier_code)
                session.add(tier)
            tier.name, tier.name_zh, tier.rank = tier_name, chinese, tier_rank
            tier.threshold, tier.multiplier, tier.benefits = tier_threshold, tier_multiplier, text
            session.flush()
    except IntegrityError:
        # Another save took the code or the rank between the check above and this write.
        raise ValidationFailed(
            "tier.rank.taken",
            "Rank %(rank)s or code %(tier_code)s was just taken; reload and try again.",
            rank=tier_rank,
            tier_code=tier_code,
        ) from None
    ordered = ladder(session)
    if ordered[0].threshold != 0:
        raise ValidationFailed("tier.entry", "The lowest tier's threshold must be 0.")
    for lower, higher in pairwise(ordered):
        if higher.threshold <= lower.threshold:
            raise ValidationFailed(
                "tier.order",
                "%(higher)s must need more than %(lower)s (%(threshold)s).",
                higher=higher.name,
                lower=lower.name,
                threshold=f"{lower.threshold:,}",
            )
    audit.record(
        session, actor, "tier.save", "tier", tier.code, before=before, after=_tier_snapshot(tier)
    )
    return tier


def _tier_snapshot(tier: Tier) -> dict[str, Any]:
    return {
        "name": tier.name,
        "name_zh": tier.name_zh,
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
    name_zh: str | None = None,
) -> BonusRule:
    """Add a bonus rule or change one. Every problem with the fields is named at once, under
    the keyword's name (`core.errors.Invalid`)."""
    actor.require("admin", "marketer", doing=N_("configure bonus rules"))
    problems = Problems()

    def checked_name() -> str:
        text = bounds.check_text(
            name, "rule.name", bounds.length(BonusRule.name), N_("The name")
        ).strip()
        if not text:
            raise ValidationFailed("rule.name", "Give the rule a name members will see.")
        return text

    rule_name = problems.check("name", checked_name)
    chinese = problems.check(
        "name_zh", lambda: check_name_zh(name_zh, bounds.length(BonusRule.name_zh), "rule")
    )
    rule_priority = problems.check(
        "priority", lambda: whole(priority, "rule.priority", 0, MAX_PRIORITY, N_("The priority"))
    )
    if (multiplier is None) == (fixed_points is None):
        problems.add("multiplier", "Give either a multiplier or a fixed bonus.", "rule.effect")
    if multiplier is not None:
        multiplier = problems.check(
            "multiplier",
            lambda: _multiplier(
                session, multiplier, "rule.multiplier", N_("A rule's multiplier"), above_one=True
            ),
        )
    if fixed_points is not None:
        fixed_points = problems.check(
            "fixed_points",
            lambda: whole(
                fixed_points, "rule.fixed_points", 1, bounds.MAX_POINTS, N_("A fixed bonus")
            ),
        )
    for field, day, label in (
        ("starts_on", starts_on, N_("The start")),
        ("ends_on", ends_on, N_("The end")),
    ):
        if day is not None:
            problems.check(
                field,
                lambda day=day, label=label: bounds.check_day(day, "rule.dates", label),  # type: ignore[misc]
            )
    if starts_on and ends_on and ends_on < starts_on and "ends_on" not in problems:
        problems.add("ends_on", "The rule ends before it starts.", "rule.dates")
    if min_spend is not None:
        problems.check(
            "min_spend",
            lambda: bounds.check_amount(min_spend, "rule.min_spend", label=N_("Minimum spend")),
        )
    if category is not None:
        problems.check(
            "category",
            lambda: bounds.check_text(
                category, "rule.category", bounds.length(BonusRule.category), N_("The category")
            ),
        )
    for field, what, found, model in (
        ("channel_id", "channel", channel_id, Channel),
        ("campaign_id", "campaign", campaign_id, Campaign),
    ):
        if found is not None and (
            not 1 <= found <= bounds.MAX_ID or session.get(model, found) is None
        ):
            problems.add(
                field,
                N_("There is no channel %(id)s.")
                if model is Channel
                else N_("There is no campaign %(id)s."),
                f"rule.{what}",
                id=found,
            )
    if rule_id is not None:
        problems.check("rule_id", lambda: bounds.check_id(rule_id, "rule_id"))
    problems.raise_any()
    assert rule_name is not None and rule_priority is not None
    rule = None if rule_id is None else session.get(BonusRule, rule_id)
    if rule_id is not None and rule is None:
        raise NotFound("rule.not_found", "No bonus rule %(id)s.", id=rule_id)
    before = None if rule is None else _rule_snapshot(rule)
    if rule is None:
        rule = BonusRule()
        session.add(rule)
    rule.name, rule.name_zh, rule.priority, rule.active = rule_name, chinese, rule_priority, active
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
        "name_zh": rule.name_zh,
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
