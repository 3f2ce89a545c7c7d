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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from campaigns import periods, rates
from campaigns.models import Campaign, Channel
from core import bounds
from core.audit import Actor
from core.errors import Conflict, NotFound, RetainError, ValidationFailed
from core.money import normalise_currency
from core.text import N_
from core.timeutil import utcnow
from loyalty import codes, coupons, history, ledger, plans, posting, referrals, tiers
from loyalty import program as program_settings
from loyalty.models import (
    NOTE_LENGTH,
    Batch,
    LedgerEntry,
    Lot,
    Member,
    MemberStatus,
    Purchase,
    PurchaseLine,
    Redemption,
    Referral,
    Refund,
    Tier,
    TierChange,
)

ROLES = ("admin", "finance")

# The bounds of what a purchase or refund may say, in one place: the API states them, and
# `_check` (every service path) and the CSV import (`imports.read`) enforce the same ones.
# Times: from 1900-01-01 (UTC) up to a small clock skew ahead of now, so a till whose clock
# runs a little fast is not refused, and a date typed wrong (year 1, 2206) is.
FUTURE_SKEW = timedelta(minutes=5)
EARLIEST = datetime.combine(bounds.FIRST_DAY, time(0), UTC)
MAX_LINES = 1000
MAX_COUPONS = 20
MAX_QUANTITY = 1_000_000
# Text fields and the column each is stored in (or looked up by).
TEXT: dict[str, tuple[InstrumentedAttribute[Any], str]] = {
    "source": (Purchase.source, N_("The source")),
    "external_id": (Purchase.external_id, N_("The external id")),
    "store": (Purchase.store, N_("The store")),
    "channel": (Channel.code, N_("The channel code")),
    "campaign_code": (Campaign.code, N_("The campaign code")),
}
LINE_TEXT: dict[str, tuple[InstrumentedAttribute[Any], str]] = {
    "sku": (PurchaseLine.sku, N_("The SKU")),
    "category": (PurchaseLine.category, N_("The category")),
}
REFUND_TEXT: dict[str, tuple[InstrumentedAttribute[Any], str]] = {
    "source": (Refund.source, N_("The refund's source")),
    "external_id": (Refund.external_id, N_("The refund's external id")),
    "purchase_source": (Purchase.source, N_("The purchase's source")),
    "purchase_external_id": (Purchase.external_id, N_("The purchase's external id")),
}


def _time_fault(at: datetime, now: datetime) -> str | None:
    """What is wrong with a purchase's or refund's time ("zone", "early", "future"), or None."""
    if at.tzinfo is None:
        return "zone"
    if at < EARLIEST:
        return "early"
    if at > now + FUTURE_SKEW:
        return "future"
    return None


def time_problem(at: datetime, now: datetime) -> str | None:
    """Why a purchase's or refund's time cannot be taken, or None."""
    fault = _time_fault(at, now)
    if fault == "zone":
        return "needs its time zone (an offset like +08:00)"
    if fault == "early":
        return f"is before {bounds.FIRST_DAY.isoformat()}"
    if fault == "future":
        return "is in the future"
    return None


def _check_time(at: datetime, field: str, *, refund: bool = False) -> None:
    """A purchase's (or a refund's) time as `time_problem` takes it, refused in a sentence."""
    fault = _time_fault(at, utcnow())
    if fault == "zone":
        raise ValidationFailed(
            field,
            N_("The refund time needs its time zone (an offset like +08:00).")
            if refund
            else N_("The purchase time needs its time zone (an offset like +08:00)."),
        )
    if fault == "early":
        raise ValidationFailed(
            field,
            N_("The refund time is before %(day)s.")
            if refund
            else N_("The purchase time is before %(day)s."),
            day=bounds.FIRST_DAY.isoformat(),
        )
    if fault == "future":
        raise ValidationFailed(
            field,
            N_("The refund time is in the future.")
            if refund
            else N_("The purchase time is in the future."),
        )


def amount_problem(value: Decimal, *, sign: str) -> str | None:
    """Why an amount cannot be stored (`bounds.check_amount`), or None."""
    try:
        bounds.check_amount(value, "amount", sign=sign, label="it")
    except ValidationFailed as refused:
        return refused.message.removeprefix("it ")
    return None


def _check_text(
    value: str | None, field: str, column: InstrumentedAttribute[Any], label: str
) -> None:
    if value is not None:
        bounds.check_text(value.strip(), field, bounds.length(column), label)


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
        """What this posting says, normalised as it is stored: "usd" is USD, "100" is
        100.00, " in_store" is in_store; a retry written differently is the same body."""
        return fingerprint(
            {
                "source": self.source.strip(),
                "external_id": self.external_id.strip(),
                "occurred_at": self.occurred_at,
                "amount": self.amount,
                "currency": self.currency.strip().upper(),
                "member_id": self.member_id,
                "discount": self.discount,
                "channel": _text(self.channel, str.lower),
                "store": _text(self.store),
                "campaign_code": _text(self.campaign_code, str.upper),
                "coupon_codes": sorted({codes.normalise(c) for c in self.coupon_codes}),
                "lines": [
                    [ln.sku.strip(), ln.quantity, ln.unit_price, _text(ln.category, str.lower)]
                    for ln in self.lines
                ],
            }
        )


def _text(value: str | None, case: Callable[[str], str] = str.strip) -> str | None:
    """Optional text as stored: stripped, in its case; empty is None."""
    return case(value.strip()) if value and value.strip() else None


def fingerprint(fields: dict[str, object]) -> str:
    """What a posting said, hashed: the same purchase posted again hashes the same. Amounts
    are normalised, so "88", "88.0" and "88.00" are one amount, in lines too."""
    return hashlib.sha256(
        json.dumps(_plain(fields), sort_keys=True, default=str).encode()
    ).hexdigest()


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


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
    coupons: list[Redemption | posting.PostedRedemption] = field(default_factory=list)
    tier_change: tiers.TierMove | None = None
    referral: str | None = None
    member: Member | posting.PostedMember | None = None
    note: str | None = None
    balance: int | None = None  # the member's balance right after the purchase

    @property
    def points(self) -> int:
        return sum(e.points for e in self.earned)


def _check(data: PurchaseInput) -> None:
    """The purchase's own bounds, before anything is read or written (every path)."""
    for name, (column, label) in TEXT.items():
        _check_text(getattr(data, name), f"purchase.{name}", column, label)
    if not data.source.strip() or not data.external_id.strip():
        raise ValidationFailed("purchase.id", "Give the purchase's source and external id.")
    bounds.check_amount(data.amount, "purchase.amount", sign="positive", label=N_("The amount"))
    bounds.check_amount(data.discount, "purchase.discount", label=N_("The discount"))
    _check_time(data.occurred_at, "purchase.time")
    normalise_currency(data.currency)
    if len(data.coupon_codes) > MAX_COUPONS:
        raise ValidationFailed(
            "purchase.coupons", "A purchase uses at most %(most)s codes.", most=MAX_COUPONS
        )
    for code in data.coupon_codes:
        coupons.normalise_code(code)
    if len(data.lines) > MAX_LINES:
        raise ValidationFailed(
            "purchase.lines", "A purchase has at most %(most)s lines.", most=f"{MAX_LINES:,}"
        )
    for n, line in enumerate(data.lines, start=1):
        for name, (column, label) in LINE_TEXT.items():
            _check_text(getattr(line, name), "purchase.line", column, f"Line {n}: {label}")
        if (
            isinstance(line.quantity, bool)
            or not 1 <= line.quantity <= MAX_QUANTITY
            or not line.sku.strip()
        ):
            raise ValidationFailed(
                "purchase.line",
                "Line %(line)s: needs a SKU and a quantity from 1 to %(most)s.",
                line=n,
                most=f"{MAX_QUANTITY:,}",
            )
        bounds.check_amount(line.unit_price, "purchase.line", label=f"Line {n}: the unit price")


def find(session: Session, source: str, external_id: str) -> Purchase | None:
    return session.scalar(
        select(Purchase).where(Purchase.source == source, Purchase.external_id == external_id)
    )


def get(session: Session, purchase_id: int) -> Purchase:
    purchase = session.get(Purchase, purchase_id)
    if purchase is None:
        raise NotFound("purchase.not_found", "No purchase %(id)s.", id=purchase_id)
    return purchase


def _replay(session: Session, purchase: Purchase, fingerprint: str, zone: ZoneInfo) -> Outcome:
    """The first answer again, rebuilt from what the purchase wrote: its entries, its lot's
    unlock time, the tier move and referral wait it started, its coupons, the balance after."""
    if purchase.fingerprint != fingerprint:
        raise Conflict(
            "purchase.id_reused",
            "Purchase %(source)s/%(external_id)s was already posted with different content; "
            "post a correction as a refund, or use a new external id.",
            source=purchase.source,
            external_id=purchase.external_id,
        )
    entries = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.source_type == "purchase", LedgerEntry.source_id == purchase.id)
        .order_by(LedgerEntry.id)
    )
    lot = session.scalar(
        select(Lot.available_at).where(Lot.purchase_id == purchase.id).order_by(Lot.id).limit(1)
    )
    used = session.scalars(
        select(Redemption).where(Redemption.purchase_id == purchase.id).order_by(Redemption.id)
    )
    member = session.get(Member, purchase.member_id) if purchase.member_id else None
    from_tier, to_tier = aliased(Tier), aliased(Tier)
    move = session.execute(
        select(from_tier.name, to_tier.name, TierChange.reason)
        .join(from_tier, from_tier.id == TierChange.from_tier_id)
        .join(to_tier, to_tier.id == TierChange.to_tier_id)
        .where(TierChange.purchase_id == purchase.id)
    ).first()
    completes_at = session.scalar(
        select(Referral.completes_at).where(Referral.purchase_id == purchase.id)
    )
    balance = purchase.balance_after
    if balance is None and member is not None:  # posted before balances were kept
        balance = member.balance
    return Outcome(
        purchase,
        replayed=True,
        earned=[Earned(e.points, e.reason, e.rule) for e in entries],
        pending_until=lot,
        coupons=list(used),
        tier_change=tiers.TierMove(*move) if move else None,
        referral=None if completes_at is None else plans.referral_note(completes_at, zone),
        member=member,
        note="Already recorded; nothing was changed.",
        balance=balance,
    )


def record(
    session: Session,
    actor: Actor,
    data: PurchaseInput,
    *,
    base_currency: str,
    zone: ZoneInfo,
) -> Outcome:
    actor.require(*ROLES, doing=N_("record purchases"))
    _check(data)
    source, external_id = data.source.strip(), data.external_id.strip()
    fingerprint = data.fingerprint()
    if FAST_PATH:
        fast = _post(session, actor, data, source, external_id, fingerprint, base_currency, zone)
        if fast is not None:
            return fast
    member = ledger.lock_member(session, data.member_id) if data.member_id else None
    earlier = find(session, source, external_id)
    if earlier is not None:
        return _replay(session, earlier, fingerprint, zone)
    currency, base_amount, channel_id, campaign_id = _resolve(session, data, base_currency, zone)
    # Refused before anything is written (`plans.purchase` decides the same again).
    closed = set(periods.closed_months(session))
    plans.check_open(data.occurred_at, zone, closed)
    settings = load_settings(session)
    program = settings.program
    # Read before this purchase is written: the facts are about the ones recorded before it.
    facts = None
    if member is not None and member.status == MemberStatus.ACTIVE:
        row = session.execute(
            history.statement(program), history.params(program, member.id, data.occurred_at)
        ).one()
        facts = history.from_row(row)
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
        return _replay(session, earlier, fingerprint, zone)
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
    if outcome.coupons:
        wanted = {r.batch_id for r in outcome.coupons}
        batches = {
            batch_id: campaign_id
            for batch_id, campaign_id in session.execute(
                select(Batch.id, Batch.campaign_id).where(Batch.id.in_(wanted))
            )
        }
        purchase.campaign_id = plans.campaign(
            purchase.campaign_id, [batches[r.batch_id] for r in outcome.coupons]
        )
    sale = plans.Sale(
        occurred_at=data.occurred_at,
        base_amount=base_amount,
        channel_id=purchase.channel_id,
        campaign_id=purchase.campaign_id,
        categories=_categories(data, base_amount),
    )
    state = None if member is None else member_state(member)
    plan = plans.purchase(
        settings, state, facts, sale, zone=zone, base_currency=base_currency, closed=closed
    )
    _write(session, actor, plan, purchase, member)
    _answer(outcome, plan, zone)
    outcome.balance = purchase.balance_after
    session.flush()
    return outcome


def _answer(outcome: Outcome, plan: plans.PurchasePlan, zone: ZoneInfo) -> None:
    """The response's account of `plan`, the same from either path."""
    outcome.note = plan.note
    outcome.earned = [Earned(c.points, c.reason, c.rule) for c in plan.credits]
    outcome.pending_until = plan.pending_until
    if plan.tier_move is not None:
        move = plan.tier_move
        outcome.tier_change = tiers.TierMove(move.from_tier.name, move.to_tier.name, move.reason)
    if plan.referral_completes_at is not None:
        outcome.referral = plans.referral_note(plan.referral_completes_at, zone)


def member_state(member: Member) -> plans.MemberState:
    return plans.MemberState(
        member.id,
        member.number,
        member.status,
        member.tier_id,
        member.tier_since,
        ledger.points_of(member),
    )


def load_settings(session: Session) -> plans.Settings:
    """The program as the planner takes it, read in this session."""
    rules = program_settings.rules(session, active_only=True)
    return plans.Settings(
        program_settings.get(session),
        program_settings.ladder(session),
        rules,
        program_settings.campaign_names(session, rules),
    )


def _write(
    session: Session,
    actor: Actor,
    plan: plans.PurchasePlan,
    purchase: Purchase,
    member: Member | None,
) -> None:
    """The plan as ORM rows: lot and entries, the member's totals and tier, the tier's
    history, the referral's wait."""
    if member is None:
        return
    if plan.credit is not None:
        ledger.write_credit(
            session,
            member,
            actor,
            plan.credit,
            key=f"purchase:{purchase.id}",
            at=purchase.occurred_at,
            source=("purchase", purchase.id),
            purchase_id=purchase.id,
        )
    purchase.points_earned = plan.points
    purchase.balance_after = member.balance
    move = plan.tier_move
    if move is not None:
        member.tier_id, member.tier_since = move.to_tier.id, move.at
        session.add(
            TierChange(
                member_id=member.id,
                purchase_id=purchase.id,
                from_tier_id=move.from_tier.id,
                to_tier_id=move.to_tier.id,
                reason=move.reason,
                metric_value=move.metric_value,
                changed_at=move.at,
            )
        )
    if plan.referral_completes_at is not None:
        referrals.start_wait(session, member.id, purchase.id, plan.referral_completes_at)


def _resolve(
    session: Session, data: PurchaseInput, base_currency: str, zone: ZoneInfo
) -> tuple[str, Decimal, int | None, int | None]:
    """Currency, amount in the base currency, channel id and campaign id; an unknown code or
    a missing exchange rate is refused here."""
    currency = normalise_currency(data.currency)
    local_day = data.occurred_at.astimezone(zone).date()
    base_amount = rates.to_base(session, data.amount, currency, local_day, base_currency)
    bounds.check_amount(base_amount, "purchase.amount", label=f"The amount in {base_currency}")
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
    """The purchase through `posting` (the fast path); None when the general path must
    (an inactive member, a public or unknown coupon code)."""
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
        return _replay(session, earlier, fingerprint, zone)
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
        coupon_codes=tuple(dict.fromkeys(data.coupon_codes)),
    )
    posted = posting.post(session, actor, sale, zone=zone, base_currency=base_currency)
    if posted is None:
        return None
    if posted.purchase is None or posted.plan is None:
        earlier = find(session, source, external_id)
        assert earlier is not None
        return _replay(session, earlier, fingerprint, zone)
    outcome = Outcome(posted.purchase, member=posted.member, coupons=list(posted.coupons))
    _answer(outcome, posted.plan, zone)
    outcome.balance = posted.balance
    return outcome


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
        raise ValidationFailed("purchase.channel", "Unknown channel '%(channel)s'.", channel=code)
    return channel_id


def _campaign(session: Session, code: str | None) -> Campaign | None:
    if not code:
        return None
    campaign = session.scalar(select(Campaign).where(Campaign.code == code.strip().upper()))
    if campaign is None:
        raise ValidationFailed(
            "purchase.campaign", "Unknown campaign code '%(campaign)s'.", campaign=code
        )
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
    """Refund all or part of a purchase; points go back in proportion. Idempotent by id.
    A refund is dated no earlier than its purchase, not in the future, and not in a closed
    month (`plans.check_open`)."""
    actor.require(*ROLES, doing=N_("record refunds"))
    for name, (column, label) in REFUND_TEXT.items():
        _check_text(getattr(data, name), f"refund.{name}", column, label)
    bounds.check_text(data.reason, "refund.reason", NOTE_LENGTH, N_("The reason"))
    if not data.source.strip() or not data.external_id.strip():
        raise ValidationFailed("refund.id", "Give the refund's source and external id.")
    if data.amount is not None:
        bounds.check_amount(data.amount, "refund.amount", sign="positive", label=N_("The refund"))
    _check_time(data.occurred_at, "refund.time", refund=True)
    found = find(session, data.purchase_source.strip(), data.purchase_external_id.strip())
    if found is None:
        raise NotFound(
            "refund.purchase",
            "No purchase %(source)s/%(external_id)s to refund.",
            source=data.purchase_source,
            external_id=data.purchase_external_id,
        )
    if data.occurred_at < found.occurred_at:
        raise ValidationFailed(
            "refund.time",
            "The refund is dated %(refund)s, before its purchase (%(purchase)s).",
            refund=f"{data.occurred_at.astimezone(zone):%Y-%m-%d %H:%M}",
            purchase=f"{found.occurred_at.astimezone(zone):%Y-%m-%d %H:%M}",
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
                "Refund %(external_id)s was already posted for a different purchase or amount.",
                external_id=data.external_id,
            )
        return RefundOutcome(
            earlier,
            purchase,
            replayed=True,
            points_reversed=earlier.points_reversed,
            coupon_restored=earlier.coupon_restored,
            member=member,
        )
    # A refund counts in its own month: one dated in a closed month is refused (a retry of
    # one recorded before the close was answered above).
    plans.check_open(data.occurred_at, zone, set(periods.closed_months(session)), "refund")
    program = program_settings.get(session)
    plan = plans.refund(
        plans.Sold(
            purchase.external_id,
            purchase.amount,
            purchase.currency,
            purchase.base_amount,
            purchase.refunded_amount,
            purchase.net_base_amount,
            purchase.points_earned,
            purchase.points_reversed,
            base_currency,
        ),
        data.amount,
        program,
    )
    amount, base_share = plan.amount, plan.base_amount
    purchase.refunded_amount = plan.refunded_amount
    purchase.net_base_amount = plan.net_base_amount
    purchase.state = plan.state
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
    to_reverse = plan.points if member is not None else 0
    if to_reverse > 0:
        assert member is not None
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
    if plan.restore_coupons:
        used = session.scalars(select(Redemption).where(Redemption.purchase_id == purchase.id))
        outcome.coupon_restored = any(
            [coupons.restore(session, r, at=data.occurred_at) for r in used]
        )
        row.coupon_restored = outcome.coupon_restored
    if plan.cancel_referral:
        outcome.referral_cancelled = referrals.on_full_refund(session, purchase) is not None
    session.flush()
    return outcome
