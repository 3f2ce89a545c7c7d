"""Each ledger entry in words, in the reader's language: what rule gave or took the points, and
which purchase, refund or reward it belongs to. The member reads them in their own voice
(`MEMBER`: "Points for your purchase", with the Chinese names staff gave when they read
Chinese); the staff member page uses the same rules in staff's voice (`Voice`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.models import (
    BonusRule,
    Coupon,
    LedgerEntry,
    Purchase,
    Refund,
    Reward,
    Tier,
    name_in,
)
from web.i18n import Formatter
from web.portal.messages import N_

# Rule → sentence. Bonus rules and staff adjustments carry a name or reason staff wrote;
# those are shown as written, after a translated label.
FIXED = {
    "base": N_("Points for your purchase"),
    "first_purchase": N_("First purchase bonus"),
    "repeat_purchase": N_("Repeat purchase bonus"),
    "signup": N_("Welcome bonus"),
    "birthday": N_("Happy birthday!"),
    "referral_referee": N_("Welcome reward for joining with a friend's code"),
    "referral_referrer": N_("Reward for referring a friend"),
    "expiry": N_("Points expired"),
    "refund": N_("Points taken back for a refund"),
}
TYPES = {
    "earn": N_("Earned"),
    "bonus": N_("Bonus"),
    "redeem": N_("Redeemed"),
    "reverse": N_("Refund"),
    "expire": N_("Expired"),
    "adjust": N_("Adjustment"),
}


@dataclass(frozen=True, slots=True)
class Voice:
    """Whom the entries are explained to. The rules that choose each sentence (`lines`) are
    the same for everyone; a voice gives the words: the member's own ("Points for your
    purchase", `MEMBER`), or staff looking at a member (`web.pages.members.STAFF_VOICE`).
    Each is a gettext message of the catalog the `Formatter` reads."""

    fixed: Mapping[str, str]  # rule → sentence
    types: Mapping[str, str]  # entry type → word
    tier: str  # with %(reason)s: "Gold member ×1.5"
    bonus: str  # with %(name)s: the bonus rule's name as posted
    reward: str  # with %(name)s: the reward's name
    adjust: str  # with %(reason)s: the reason staff gave
    coupon: str  # with %(code)s: the coupon a redemption bought
    purchase: str  # with %(ref)s, %(amount)s, %(date)s
    # Names staff gave (tiers, bonus rules, rewards) in the reader's language (`name_in`).
    local_names: bool = False


MEMBER = Voice(
    fixed=FIXED,
    types=TYPES,
    tier=N_("Tier bonus: %(reason)s"),
    bonus=N_("Bonus: %(name)s"),
    reward=N_("Reward: %(name)s"),
    adjust=N_("Adjustment: %(reason)s"),
    coupon=N_("Coupon %(code)s"),
    purchase=N_("Purchase %(ref)s of %(amount)s on %(date)s"),
    local_names=True,
)
# The tier's part of a tier bonus's reason ("Gold member ×1.5"), with the tier's own name in
# the reader's language.
TIER_REASON = N_("%(tier)s member %(multiplier)s")


@dataclass(frozen=True, slots=True)
class Line:
    entry: LedgerEntry
    kind: str  # the entry type, translated
    what: str  # why, translated
    about: str | None  # the purchase or refund it belongs to


@dataclass(frozen=True, slots=True)
class Names:
    """What staff named the tiers, bonus rules and rewards that entries mention."""

    tiers: list[Tier]
    rules: dict[int, BonusRule]
    rewards: dict[int, Reward]


def _reward_id(rule: str) -> int | None:
    number = rule.removeprefix("reward:")
    return int(number) if number.isascii() and number.isdigit() and len(number) < 10 else None


def _names(session: Session, entries: Sequence[LedgerEntry]) -> Names:
    rule_ids = {e.bonus_rule_id for e in entries if e.bonus_rule_id is not None}
    reward_ids = {_reward_id(e.rule) for e in entries if (e.rule or "").startswith("reward:")}
    wanted = {r for r in reward_ids if r is not None}
    tiers = []
    if any(e.rule == "tier" for e in entries):
        tiers = list(session.scalars(select(Tier).where(Tier.name_zh.is_not(None))))
    rules = {}
    if rule_ids:
        found = session.scalars(select(BonusRule).where(BonusRule.id.in_(rule_ids)))
        rules = {r.id: r for r in found}
    rewards = {}
    if wanted:
        rewards = {r.id: r for r in session.scalars(select(Reward).where(Reward.id.in_(wanted)))}
    return Names(tiers, rules, rewards)


def _renamed(reason: str, item: BonusRule | Reward | None, language: str) -> str:
    """`reason` as posted, with the name it starts with in `language` (`name_in`); as
    posted when the name has changed since."""
    if item is None or not reason.startswith(item.name):
        return reason
    return name_in(item, language) + reason[len(item.name) :]


def _what(fmt: Formatter, entry: LedgerEntry, voice: Voice, names: Names | None) -> str:
    rule = entry.rule or ""
    if rule in voice.fixed:
        return fmt.gettext(voice.fixed[rule])
    if rule == "tier":
        # The stored reason is "Gold member ×1.5"; the tier name is the staff's.
        reason = entry.reason
        for tier in names.tiers if names else []:
            if reason.startswith(f"{tier.name} member "):
                reason = fmt.gettext(TIER_REASON) % {
                    "tier": name_in(tier, fmt.language),
                    "multiplier": reason.removeprefix(f"{tier.name} member "),
                }
                break
        return fmt.gettext(voice.tier) % {"reason": reason}
    if rule.startswith("bonus_rule:"):
        name = entry.reason
        if names and entry.bonus_rule_id is not None:
            name = _renamed(name, names.rules.get(entry.bonus_rule_id), fmt.language)
        return fmt.gettext(voice.bonus) % {"name": name}
    if rule.startswith("reward:"):
        name = entry.reason.removeprefix("Reward: ")
        reward_id = _reward_id(rule)
        if names and reward_id is not None:
            name = _renamed(name, names.rewards.get(reward_id), fmt.language)
        return fmt.gettext(voice.reward) % {"name": name}
    if rule == "adjust":
        return fmt.gettext(voice.adjust) % {"reason": entry.reason}
    return entry.reason


def lines(
    session: Session, fmt: Formatter, entries: Sequence[LedgerEntry], voice: Voice = MEMBER
) -> list[Line]:
    """Each entry in `voice`'s words, in `fmt`'s language, with what it belongs to."""
    names = _names(session, entries) if voice.local_names and fmt.language == "zh" else None
    purchase_ids = {e.source_id for e in entries if e.source_type == "purchase" and e.source_id}
    refund_ids = {e.source_id for e in entries if e.source_type == "refund" and e.source_id}
    refunds: dict[int, int] = {}
    if refund_ids:
        found = session.execute(
            select(Refund.id, Refund.purchase_id).where(Refund.id.in_(refund_ids))
        )
        refunds = {refund_id: purchase_id for refund_id, purchase_id in found}
        purchase_ids |= set(refunds.values())
    redeemed = [e.id for e in entries if e.type == "redeem"]
    bought: dict[int, str] = {}
    if redeemed:
        found_codes = session.execute(
            select(Coupon.reward_entry_id, Coupon.code).where(Coupon.reward_entry_id.in_(redeemed))
        )
        bought = {entry_id: code for entry_id, code in found_codes if entry_id is not None}
    purchases: dict[int, Purchase] = {}
    if purchase_ids:
        purchases = {
            p.id: p for p in session.scalars(select(Purchase).where(Purchase.id.in_(purchase_ids)))
        }

    def about(entry: LedgerEntry) -> str | None:
        if entry.id in bought:
            return fmt.gettext(voice.coupon) % {"code": bought[entry.id]}
        purchase_id = entry.source_id if entry.source_type == "purchase" else None
        if entry.source_type == "refund" and entry.source_id in refunds:
            purchase_id = refunds[entry.source_id]
        purchase = purchases.get(purchase_id) if purchase_id else None
        if purchase is None:
            return None
        where = f" · {purchase.store}" if purchase.store else ""
        return (
            fmt.gettext(voice.purchase)
            % {
                "ref": purchase.external_id,
                "amount": fmt.money(purchase.amount, purchase.currency),
                "date": fmt.date(purchase.occurred_at),
            }
            + where
        )

    return [
        Line(e, fmt.gettext(voice.types.get(e.type, e.type)), _what(fmt, e, voice, names), about(e))
        for e in entries
    ]
