"""Purchases and refunds: one transaction each, idempotent by (source, external id).

A purchase, in order (the walk in DESIGN.md): lock the member, return the earlier result if
this (source, external id) was seen, convert to the base currency, record, redeem coupons,
credit points as a pending lot, upgrade the tier, start a referral's wait. Any error rolls
all of it back. A retry with the same content replays the first answer; a different content
under the same id is refused, so a buggy integration cannot silently rewrite a sale.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns import rates
from campaigns.models import Campaign, Channel
from core.audit import Actor
from core.errors import Conflict, NotFound, RetainError, ValidationFailed
from core.money import normalise_currency
from core.timeutil import utcnow
from loyalty import coupons, earning, ledger, posting, referrals, tiers
from loyalty import program as program_settings
from loyalty.models import (
    Batch,
    LedgerEntry,
    Member,
    MemberStatus,
    Purchase,
    PurchaseLine,
    PurchaseState,
    Redemption,
    Refund,
)

ROLES = ("admin", "finance")
# Members' purchases without coupons go through `posting` (Core statements, built for
# throughput); the rest, and this switch off, through the unit of work below. Tests post the
# same sequence both ways and compare the rows.
FAST_PATH = True


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int
    unit_price: Decimal
    category: str | None = None


@dataclass(frozen=True, slots=True)
class PurchaseInput:
    source: str
    external_id: str
    occurred_at: datetime
    amount: Decimal  # paid, after discounts
    currency: str
    member_id: int | None = None
    discount: Decimal = Decimal(0)
    channel: str | None = None  # channel code
    store: str | None = None
    campaign_code: str | None = None
    coupon_codes: tuple[str, ...] = ()
    lines: tuple[Line, ...] = ()

    def fingerprint(self) -> str:
        return fingerprint(
            {
                "source": self.source,
                "external_id": self.external_id,
                "occurred_at": self.occurred_at,
                "amount": self.amount,
                "currency": self.currency,
                "member_id": self.member_id,
                "discount": self.discount,
                "channel": self.channel,
                "store": self.store,
                "campaign_code": self.campaign_code,
                "coupon_codes": sorted(self.coupon_codes),
                "lines": [
                    [ln.sku, ln.quantity, str(ln.unit_price), ln.category] for ln in self.lines
                ],
            }
        )


def fingerprint(fields: dict[str, object]) -> str:
    """What a posting said, hashed: the same purchase posted again hashes the same. Amounts
    are normalised, so "88", "88.0" and "88.00" are one amount."""
    plain = {
        k: (
            v.astimezone(UTC).isoformat()
            if isinstance(v, datetime)
            else f"{v.normalize():f}"
            if isinstance(v, Decimal)
            else v
        )
        for k, v in fields.items()
    }
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Earned:
    points: int
    reason: str
    rule: str


@dataclass(slots=True)
class Outcome:
    """What happened, for the response: points and why, coupons, tier, referral."""

    purchase: Purchase | posting.PostedPurchase
    replayed: bool = False
    earned: list[Earned] = field(default_factory=list)
    pending_until: datetime | None = None
    coupons: list[Redemption] = field(default_factory=list)
    tier_change: tiers.TierMove | None = None
    referral: str | None = None
    member: Member | posting.PostedMember | None = None
    note: str | None = None

    @property
    def points(self) -> int:
        return sum(e.points for e in self.earned)


def _check(data: PurchaseInput) -> None:
    if not data.source.strip() or not data.external_id.strip():
        raise ValidationFailed("purchase.id", "Give the purchase's source and external id.")
    if data.amount <= 0:
        raise ValidationFailed("purchase.amount", "A purchase amount must be above zero.")
    if data.discount < 0:
        raise ValidationFailed("purchase.discount", "A discount cannot be negative.")
    if data.occurred_at.tzinfo is None:
        raise ValidationFailed("purchase.time", "Give the purchase time with its time zone.")
    if data.occurred_at > utcnow() + timedelta(minutes=5):
        raise ValidationFailed("purchase.time", "The purchase time is in the future.")
    for n, line in enumerate(data.lines, start=1):
        if line.quantity <= 0 or line.unit_price < 0 or not line.sku.strip():
            raise ValidationFailed(
                "purchase.line", f"Line {n}: needs a SKU, a quantity above 0 and a price ≥ 0."
            )


def find(session: Session, source: str, external_id: str) -> Purchase | None:
    return session.scalar(
        select(Purchase).where(Purchase.source == source, Purchase.external_id == external_id)
    )


def get(session: Session, purchase_id: int) -> Purchase:
    purchase = session.get(Purchase, purchase_id)
    if purchase is None:
        raise NotFound("purchase.not_found", f"No purchase {purchase_id}.")
    return purchase


def _replay(session: Session, purchase: Purchase, fingerprint: str) -> Outcome:
    if purchase.fingerprint != fingerprint:
        raise Conflict(
            "purchase.id_reused",
            f"Purchase {purchase.source}/{purchase.external_id} was already posted with "
            "different content; post a correction as a refund, or use a new external id.",
        )
    entries = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.source_type == "purchase", LedgerEntry.source_id == purchase.id)
        .order_by(LedgerEntry.id)
    )
    used = session.scalars(select(Redemption).where(Redemption.purchase_id == purchase.id))
    member = session.get(Member, purchase.member_id) if purchase.member_id else None
    return Outcome(
        purchase,
        replayed=True,
        earned=[Earned(e.points, e.reason, e.rule) for e in entries],
        coupons=list(used),
        member=member,
        note="Already recorded; nothing was changed.",
    )


def record(
    session: Session,
    actor: Actor,
    data: PurchaseInput,
    *,
    base_currency: str,
    zone: ZoneInfo,
) -> Outcome:
    actor.require(*ROLES, doing="record purchases")
    _check(data)
    source, external_id = data.source.strip(), data.external_id.strip()
    fingerprint = data.fingerprint()
    if data.member_id and not data.coupon_codes and FAST_PATH:
        fast = _post(session, actor, data, source, external_id, fingerprint, base_currency, zone)
        if fast is not None:
            return fast
    member = ledger.lock_member(session, data.member_id) if data.member_id else None
    earlier = find(session, source, external_id)
    if earlier is not None:
        return _replay(session, earlier, fingerprint)
    currency, base_amount, channel_id, campaign_id = _resolve(session, data, base_currency, zone)
    purchase = Purchase(
        source=source,
        external_id=external_id,
        member_id=member.id if member else None,
        channel_id=channel_id,
        store=(data.store or "").strip() or None,
        occurred_at=data.occurred_at,
        amount=data.amount,
        currency=currency,
        discount=data.discount,
        base_amount=base_amount,
        net_base_amount=base_amount,
        campaign_id=campaign_id,
        fingerprint=fingerprint,
    )
    try:
        # Add inside the savepoint: begin_nested() flushes pending objects before it starts.
        with session.begin_nested():
            session.add(purchase)
            session.flush()
    except IntegrityError:
        # A guest purchase posted twice at once: the other request recorded it first
        # (the savepoint's rollback has already dropped our copy from the session).
        earlier = find(session, source, external_id)
        if earlier is None:
            raise
        return _replay(session, earlier, fingerprint)
    if data.lines:
        session.execute(
            insert(PurchaseLine), [{**row, "purchase_id": purchase.id} for row in _line_rows(data)]
        )
    outcome = Outcome(purchase, member=member)
    for code in dict.fromkeys(data.coupon_codes):
        redemption = coupons.redeem(
            session,
            actor,
            code,
            member=member,
            key=f"purchase:{purchase.id}:coupon:{code}",
            spend=data.amount + data.discount,
            currency=currency,
            purchase_id=purchase.id,
            at=data.occurred_at,
        )
        outcome.coupons.append(redemption)
        if purchase.campaign_id is None:
            purchase.campaign_id = session.scalar(
                select(Batch.campaign_id).where(Batch.id == redemption.batch_id)
            )
    if member is None:
        outcome.note = "Guest purchase: counted as campaign revenue; no points."
    elif member.status != MemberStatus.ACTIVE:
        outcome.note = f"Member {member.number} is {member.status}: no points earned."
    else:
        _earn(session, actor, purchase, member, data, outcome, base_amount, base_currency, zone)
    session.flush()
    return outcome


def _resolve(
    session: Session, data: PurchaseInput, base_currency: str, zone: ZoneInfo
) -> tuple[str, Decimal, int | None, int | None]:
    """Currency, amount in the base currency, channel id and campaign id; an unknown code or
    a missing exchange rate is refused here."""
    currency = normalise_currency(data.currency)
    local_day = data.occurred_at.astimezone(zone).date()
    base_amount = rates.to_base(session, data.amount, currency, local_day, base_currency)
    channel_id = _channel_id(session, data.channel)
    campaign = _campaign(session, data.campaign_code)
    return currency, base_amount, channel_id, campaign.id if campaign else None


def _post(
    session: Session,
    actor: Actor,
    data: PurchaseInput,
    source: str,
    external_id: str,
    fingerprint: str,
    base_currency: str,
    zone: ZoneInfo,
) -> Outcome | None:
    """A member's purchase without coupons through `posting` (the fast path); None when the
    member is not active, for the general path to explain."""
    assert data.member_id is not None
    try:
        currency, base_amount, channel_id, campaign_id = _resolve(
            session, data, base_currency, zone
        )
    except RetainError:
        # A retry of something recorded before (say, a campaign code since retired) gets
        # its first answer, as on the general path, which looks for the earlier one first.
        earlier = find(session, source, external_id)
        if earlier is None:
            raise
        return _replay(session, earlier, fingerprint)
    sale = posting.Sale(
        source=source,
        external_id=external_id,
        member_id=data.member_id,
        occurred_at=data.occurred_at,
        amount=data.amount,
        currency=currency,
        discount=data.discount,
        base_amount=base_amount,
        channel_id=channel_id,
        campaign_id=campaign_id,
        store=(data.store or "").strip() or None,
        fingerprint=fingerprint,
        categories=_categories(data, base_amount),
        lines=_line_rows(data),
    )
    posted = posting.post(session, actor, sale, zone=zone, base_currency=base_currency)
    if posted is None:
        return None
    if posted.purchase is None:
        earlier = find(session, source, external_id)
        assert earlier is not None
        return _replay(session, earlier, fingerprint)
    outcome = Outcome(
        posted.purchase,
        member=posted.member,
        earned=[Earned(c.points, c.reason, c.rule) for c in posted.credits],
        pending_until=posted.pending_until,
        tier_change=posted.tier_move,
    )
    if posted.referral_started:
        outcome.referral = _referral_note(posted.returns_at, zone)
    return outcome


def _referral_note(pending_until: datetime, zone: ZoneInfo) -> str:
    return (
        f"First purchase for a referral: both members are rewarded on "
        f"{pending_until.astimezone(zone):%Y-%m-%d} if it is not returned."
    )


def _earn(
    session: Session,
    actor: Actor,
    purchase: Purchase,
    member: Member,
    data: PurchaseInput,
    outcome: Outcome,
    base_amount: Decimal,
    base_currency: str,
    zone: ZoneInfo,
) -> None:
    program = program_settings.get(session)
    at = data.occurred_at
    ladder = program_settings.ladder(session)
    tier = next(t for t in ladder if t.id == member.tier_id)
    repeat_from = at - timedelta(days=program.repeat_days)
    # One query for both counts: purchases before this one, and those in the repeat window.
    in_window_filter = (
        (Purchase.occurred_at > repeat_from)
        & (Purchase.occurred_at <= at)
        & (Purchase.state != PurchaseState.REFUNDED)
    )
    counts = session.execute(
        select(func.count(Purchase.id), func.count(Purchase.id).filter(in_window_filter)).where(
            Purchase.member_id == member.id
        )
    ).one()
    earlier_purchases, in_window = int(counts[0]) - 1, int(counts[1])
    repeat_given = (
        in_window >= program.repeat_count
        and session.scalar(
            select(LedgerEntry.id)
            .where(
                LedgerEntry.member_id == member.id,
                LedgerEntry.rule == "repeat_purchase",
                LedgerEntry.occurred_at > repeat_from,
            )
            .limit(1)
        )
        is not None
    )
    categories = _categories(data, base_amount)
    facts = earning.PurchaseFacts(
        base_amount=base_amount,
        local_date=at.astimezone(zone).date(),
        channel_id=purchase.channel_id,
        campaign_id=purchase.campaign_id,
        categories=categories,
        first_purchase=earlier_purchases == 0,
        purchases_in_repeat_window=in_window,
        repeat_bonus_in_window=repeat_given,
    )
    rules = program_settings.rules(session, active_only=True)
    names = program_settings.campaign_names(session, rules)
    credits = earning.earn(program, tier, rules, facts, campaign_names=names)
    pending_until = at + timedelta(days=program.return_window_days)
    lot, _ = ledger.credit(
        session,
        member,
        actor,
        credits,
        key=f"purchase:{purchase.id}",
        at=at,
        program=program,
        zone=zone,
        source=("purchase", purchase.id),
        purchase_id=purchase.id,
        pending_until=pending_until,
    )
    purchase.points_earned = lot.points if lot else 0
    outcome.earned = [Earned(c.points, c.reason, c.rule) for c in credits]
    outcome.pending_until = lot.available_at if lot else None
    outcome.tier_change = tiers.upgrade_if_due(session, member, program, at, base_currency, ladder)
    referral = referrals.on_purchase(session, program, purchase, pending_until)
    if referral is not None:
        outcome.referral = _referral_note(pending_until, zone)


def _categories(data: PurchaseInput, base_amount: Decimal) -> dict[str, Decimal]:
    """Spend per product category in the base currency, shared out by the lines' values."""
    categories: dict[str, Decimal] = {}
    gross = sum((line.unit_price * line.quantity for line in data.lines), Decimal(0))
    for line in data.lines:
        if line.category and gross > 0:
            share = line.unit_price * line.quantity / gross
            key = line.category.strip().lower()
            categories[key] = categories.get(key, Decimal(0)) + base_amount * share
    return categories


def _line_rows(data: PurchaseInput) -> list[dict[str, object]]:
    return [
        {
            "sku": line.sku.strip(),
            "category": (line.category or "").strip().lower() or None,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
        }
        for line in data.lines
    ]


def _channel_id(session: Session, code: str | None) -> int | None:
    if not code:
        return None
    channel_id = session.scalar(select(Channel.id).where(Channel.code == code.strip().lower()))
    if channel_id is None:
        raise ValidationFailed("purchase.channel", f"Unknown channel '{code}'.")
    return channel_id


def _campaign(session: Session, code: str | None) -> Campaign | None:
    if not code:
        return None
    campaign = session.scalar(select(Campaign).where(Campaign.code == code.strip().upper()))
    if campaign is None:
        raise ValidationFailed("purchase.campaign", f"Unknown campaign code '{code}'.")
    return campaign


@dataclass(frozen=True, slots=True)
class RefundInput:
    source: str
    external_id: str
    purchase_source: str
    purchase_external_id: str
    occurred_at: datetime
    amount: Decimal | None = None  # None: everything still refundable
    reason: str = ""


@dataclass(slots=True)
class RefundOutcome:
    refund: Refund
    purchase: Purchase
    replayed: bool = False
    points_reversed: int = 0
    coupon_restored: bool = False
    referral_cancelled: bool = False
    member: Member | None = None


def refund(
    session: Session, actor: Actor, data: RefundInput, *, base_currency: str, zone: ZoneInfo
) -> RefundOutcome:
    """Refund all or part of a purchase; points go back in proportion. Idempotent by id."""
    actor.require(*ROLES, doing="record refunds")
    if not data.source.strip() or not data.external_id.strip():
        raise ValidationFailed("refund.id", "Give the refund's source and external id.")
    found = find(session, data.purchase_source.strip(), data.purchase_external_id.strip())
    if found is None:
        raise NotFound(
            "refund.purchase",
            f"No purchase {data.purchase_source}/{data.purchase_external_id} to refund.",
        )
    member = ledger.lock_member(session, found.member_id) if found.member_id else None
    purchase = session.scalar(
        select(Purchase)
        .where(Purchase.id == found.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert purchase is not None
    earlier = session.scalar(
        select(Refund).where(
            Refund.source == data.source.strip(), Refund.external_id == data.external_id.strip()
        )
    )
    if earlier is not None:
        if earlier.purchase_id != purchase.id or (
            data.amount is not None and data.amount != earlier.amount
        ):
            raise Conflict(
                "refund.id_reused",
                f"Refund {data.external_id} was already posted for a different purchase or amount.",
            )
        return RefundOutcome(
            earlier,
            purchase,
            replayed=True,
            points_reversed=earlier.points_reversed,
            coupon_restored=earlier.coupon_restored,
            member=member,
        )
    left = purchase.amount - purchase.refunded_amount
    amount = left if data.amount is None else data.amount
    if amount <= 0:
        raise ValidationFailed("refund.amount", "A refund amount must be above zero.")
    if amount > left:
        raise ValidationFailed(
            "refund.too_much",
            f"The refund of {amount:.2f} {purchase.currency} exceeds the {left:.2f} still "
            f"refundable on purchase {purchase.external_id}.",
        )
    purchase.refunded_amount += amount
    full = purchase.refunded_amount == purchase.amount
    base_share = (purchase.base_amount * amount / purchase.amount).quantize(Decimal("0.0001"))
    purchase.net_base_amount = Decimal(0) if full else purchase.net_base_amount - base_share
    purchase.state = PurchaseState.REFUNDED if full else PurchaseState.PARTLY_REFUNDED
    row = Refund(
        source=data.source.strip(),
        external_id=data.external_id.strip(),
        purchase_id=purchase.id,
        amount=amount,
        base_amount=base_share,
        occurred_at=data.occurred_at,
        reason=data.reason.strip(),
    )
    session.add(row)
    session.flush()
    outcome = RefundOutcome(row, purchase, member=member)
    # Reverse in proportion to the share refunded so far: rounding never drifts across
    # several partial refunds, and a full refund takes back exactly what was earned.
    target = Decimal(purchase.points_earned) * purchase.refunded_amount / purchase.amount
    to_reverse = int(target.to_integral_value(rounding=ROUND_HALF_UP)) - purchase.points_reversed
    if member is not None and to_reverse > 0:
        ledger.reverse(
            session,
            member,
            actor,
            to_reverse,
            purchase_id=purchase.id,
            reason=f"Refund on purchase {purchase.external_id}",
            key=f"refund:{row.id}",
            at=data.occurred_at,
            source=("refund", row.id),
        )
        purchase.points_reversed += to_reverse
        row.points_reversed = to_reverse
        outcome.points_reversed = to_reverse
    if full:
        program = program_settings.get(session)
        if program.restore_coupon_on_refund:
            used = session.scalars(select(Redemption).where(Redemption.purchase_id == purchase.id))
            outcome.coupon_restored = any(
                [coupons.restore(session, r, at=data.occurred_at) for r in used]
            )
            row.coupon_restored = outcome.coupon_restored
        outcome.referral_cancelled = referrals.on_full_refund(session, purchase) is not None
    session.flush()
    return outcome
