"""What a purchase earns, line by line, each line explained. Pure: no database.

The order, which is also the order of the lines a member sees:

1. Base: the net amount in the base currency × the program's earn rate, rounded down.
2. Tier: base × (tier multiplier − 1), rounded down ("Gold ×1.5" adds half the base).
3. Bonus rules, by priority (lower first) then id. A rule applies when the purchase falls in
   its dates and matches its channel, campaign and product category; the category, if set,
   narrows the spend the rule looks at to that category's lines. Minimum spend is checked on
   that spend. A rule of a campaign that holds the member out (its holdout group,
   `loyalty.audiences`) does not apply to them, whatever the purchase carries. A
   multiplier rule adds (multiplier − 1) × the base points of that spend; a fixed rule adds
   its points. A matching rule with "stop further rules" ends the list.
   Multipliers never compound: each one works on base points, so the order cannot change
   the total, only which rules a "stop" cuts off.
4. First purchase bonus (the member's first purchase ever).
5. Repeat-purchase bonus: when this is the Nth purchase within D days and no repeat bonus
   was given in those D days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, Decimal

from loyalty.models import BonusRule, EntryType, Program, Tier

REPEAT_RULE = "repeat_purchase"


@dataclass(frozen=True, slots=True)
class Credit:
    """One line of points to credit: what, how many, and why (shown to the member)."""

    points: int
    reason: str
    rule: str
    type: EntryType = EntryType.EARN
    bonus_rule_id: int | None = None


@dataclass(frozen=True, slots=True)
class PurchaseFacts:
    base_amount: Decimal  # net of discounts, in the base currency
    local_date: date
    channel_id: int | None = None
    campaign_id: int | None = None
    # Spend per product category (base currency), from the purchase's lines.
    categories: dict[str, Decimal] = field(default_factory=dict)
    first_purchase: bool = False
    purchases_in_repeat_window: int = 1  # including this one
    repeat_bonus_in_window: bool = False
    # The campaigns whose holdout the member is in: their bonus rules skip the member.
    held_out_campaigns: frozenset[int] = frozenset()


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _format_multiplier(value: Decimal) -> str:
    return f"×{value.normalize():f}"


def rule_matches(rule: BonusRule, facts: PurchaseFacts) -> Decimal | None:
    """The spend the rule applies to, or None when it does not apply."""
    if not rule.active:
        return None
    if rule.starts_on and facts.local_date < rule.starts_on:
        return None
    if rule.ends_on and facts.local_date > rule.ends_on:
        return None
    if rule.channel_id is not None and rule.channel_id != facts.channel_id:
        return None
    if rule.campaign_id is not None and rule.campaign_id != facts.campaign_id:
        return None
    if rule.campaign_id is not None and rule.campaign_id in facts.held_out_campaigns:
        return None
    spend = facts.base_amount
    if rule.category:
        if rule.category not in facts.categories:
            return None
        spend = min(facts.categories[rule.category], facts.base_amount)
    if rule.min_spend is not None and spend < rule.min_spend:
        return None
    return spend


def earn(
    program: Program,
    tier: Tier,
    rules: list[BonusRule],
    facts: PurchaseFacts,
    *,
    campaign_names: dict[int, str] | None = None,
) -> list[Credit]:
    names = campaign_names or {}
    rate = program.earn_rate
    base = _floor(facts.base_amount * rate)
    lines = [Credit(base, "Points for your purchase", "base")]
    if tier.multiplier > 1:
        lines.append(
            Credit(
                _floor(base * (tier.multiplier - 1)),
                f"{tier.name} member {_format_multiplier(tier.multiplier)}",
                "tier",
            )
        )
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        spend = rule_matches(rule, facts)
        if spend is None:
            continue
        if rule.multiplier is not None:
            points = _floor(_floor(spend * rate) * (rule.multiplier - 1))
        else:
            points = rule.fixed_points or 0
        reason = rule.name
        if rule.campaign_id is not None and rule.campaign_id in names:
            reason = f"{rule.name} — {names[rule.campaign_id]}"
        lines.append(Credit(points, reason, f"bonus_rule:{rule.id}", EntryType.EARN, rule.id))
        if rule.stop_further:
            break
    if facts.first_purchase and program.first_purchase_bonus:
        lines.append(
            Credit(
                program.first_purchase_bonus,
                "First purchase bonus",
                "first_purchase",
                EntryType.BONUS,
            )
        )
    if (
        program.repeat_bonus
        and facts.purchases_in_repeat_window >= program.repeat_count
        and not facts.repeat_bonus_in_window
    ):
        lines.append(
            Credit(
                program.repeat_bonus,
                repeat_reason(program),
                REPEAT_RULE,
                EntryType.BONUS,
            )
        )
    return [line for line in lines if line.points > 0]


def repeat_reason(program: Program) -> str:
    return f"Repeat bonus: {program.repeat_count} purchases in {program.repeat_days} days"
