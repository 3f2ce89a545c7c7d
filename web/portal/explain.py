"""Each ledger entry in words a member understands, in their language: what rule gave or took
the points, and which purchase, refund or reward it belongs to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.models import Coupon, LedgerEntry, Purchase, Refund
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
class Line:
    entry: LedgerEntry
    kind: str  # the entry type, translated
    what: str  # why, translated
    about: str | None  # the purchase or refund it belongs to


def _what(fmt: Formatter, entry: LedgerEntry) -> str:
    rule = entry.rule or ""
    if rule in FIXED:
        return fmt.gettext(FIXED[rule])
    if rule == "tier":
        # The stored reason is "Gold member ×1.5"; the tier name is the staff's.
        return fmt.gettext("Tier bonus: %(reason)s") % {"reason": entry.reason}
    if rule.startswith("bonus_rule:"):
        return fmt.gettext("Bonus: %(name)s") % {"name": entry.reason}
    if rule.startswith("reward:"):
        name = entry.reason.removeprefix("Reward: ")
        return fmt.gettext("Reward: %(name)s") % {"name": name}
    if rule == "adjust":
        return fmt.gettext("Adjustment: %(reason)s") % {"reason": entry.reason}
    return entry.reason


def lines(session: Session, fmt: Formatter, entries: Sequence[LedgerEntry]) -> list[Line]:
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
            return fmt.gettext("Coupon %(code)s") % {"code": bought[entry.id]}
        purchase_id = entry.source_id if entry.source_type == "purchase" else None
        if entry.source_type == "refund" and entry.source_id in refunds:
            purchase_id = refunds[entry.source_id]
        purchase = purchases.get(purchase_id) if purchase_id else None
        if purchase is None:
            return None
        where = f" · {purchase.store}" if purchase.store else ""
        return (
            fmt.gettext("Purchase %(ref)s of %(amount)s on %(date)s")
            % {
                "ref": purchase.external_id,
                "amount": fmt.money(purchase.amount, purchase.currency),
                "date": fmt.date(purchase.occurred_at),
            }
            + where
        )

    return [
        Line(e, fmt.gettext(TYPES.get(e.type, e.type)), _what(fmt, e), about(e)) for e in entries
    ]
