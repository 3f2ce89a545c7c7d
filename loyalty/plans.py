"""What a purchase, a credit or a spend does to a member's points: decided here, once. Pure.

Every path that posts a purchase (the unit of work in `purchases`, the few-statement path in
`posting`, the bulk import in `imports`) loads the same facts, calls `purchase` and writes the
plan it returns; none decides a rule of its own. A differential test posts random sequences
through all three and compares every row.

A purchase, in order:

1. Earning (`earning.earn`): base, tier multiplier, bonus rules, first purchase, repeat bonus,
   from the member's tier *when the purchase is posted* and the `history.Facts` of the
   purchases recorded before it (see `loyalty/history.py` for which those are).
2. The lot: the points earned together. Pending until the return window ends, then spendable;
   with a zero-day window it is active at once and first pays back any debt.
3. Entries: one per earning line, each with the running balance.
4. The tier: upgraded at once when the metric over the rolling window, this purchase
   included, reaches a higher tier (never more than one move; downgrades are nightly).
5. A referral: the referee's first purchase at or above the minimum starts the wait; both
   are rewarded by the nightly job once it has outlived the return window.

Before any of it, the month: a purchase (or a refund, `check_open`) dated, in the configured
zone, in a month finance has closed is refused (`MonthClosed`), so a closed month's purchase
revenue never changes. The closed months are a fact each path loads (a small table); a retry
of a purchase recorded before the close is found before this rule and replays its answer.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from core import bounds
from core.errors import Conflict, ValidationFailed
from core.money import minor_units
from core.text import N_
from loyalty import earning, tiers
from loyalty.earning import Credit
from loyalty.history import Facts
from loyalty.models import (
    BonusRule,
    ExpiryPolicy,
    LotState,
    MemberStatus,
    Program,
    PurchaseState,
    Tier,
    TierMetric,
)

STORED = Decimal("0.0001")  # the precision money columns keep


@dataclass(frozen=True, slots=True)
class Points:
    """A member's point totals: balance = pending and active lots' remaining − debt."""

    balance: int
    pending: int
    debt: int


@dataclass(frozen=True, slots=True)
class MemberState:
    """The member as the lock read them."""

    id: int
    number: str
    status: str
    tier_id: int
    tier_since: datetime
    points: Points


@dataclass(frozen=True, slots=True)
class Settings:
    """What the program says: settings, the tier ladder (by rank), active bonus rules (in
    evaluation order) and the names of their campaigns."""

    program: Program
    ladder: list[Tier]
    rules: list[BonusRule]
    campaign_names: dict[int, str] = field(default_factory=dict)
    # Derived once: each tier by id, and the threshold of the tier above it (None at the top).
    tiers: dict[int, Tier] = field(init=False)
    next_threshold: dict[int, int | None] = field(init=False)

    def __post_init__(self) -> None:
        above = [t.threshold for t in self.ladder[1:]] + [None]
        object.__setattr__(self, "tiers", {t.id: t for t in self.ladder})
        object.__setattr__(
            self,
            "next_threshold",
            {t.id: up for t, up in zip(self.ladder, above, strict=True)},
        )


@dataclass(frozen=True, slots=True)
class Sale:
    """A purchase as the rules see it, converted to the base currency."""

    occurred_at: datetime
    base_amount: Decimal
    channel_id: int | None = None
    campaign_id: int | None = None
    categories: dict[str, Decimal] = field(default_factory=dict)  # spend per category, base


@dataclass(frozen=True, slots=True)
class LotPlan:
    points: int
    remaining: int
    state: str
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class EntryPlan:
    type: str
    points: int
    balance_after: int
    reason: str
    rule: str
    bonus_rule_id: int | None


@dataclass(frozen=True, slots=True)
class CreditPlan:
    """Lines credited as one lot: the lot, its entries (keys are the caller's key plus the
    rule), and the member's totals after."""

    lot: LotPlan | None
    entries: list[EntryPlan]
    after: Points
    debt_paid: int


@dataclass(frozen=True, slots=True)
class TierMovePlan:
    from_tier: Tier
    to_tier: Tier
    reason: str
    metric_value: int
    at: datetime


@dataclass(frozen=True, slots=True)
class PurchasePlan:
    """Everything posting a purchase changes, worked out before the first write."""

    returns_at: datetime  # the end of the return window
    credits: list[Credit] = field(default_factory=list)
    credit: CreditPlan | None = None  # None: the member earns nothing (guest, not active)
    tier_move: TierMovePlan | None = None
    referral_completes_at: datetime | None = None  # set: the referral's wait starts
    note: str | None = None

    @property
    def points(self) -> int:
        return self.credit.lot.points if self.credit and self.credit.lot else 0

    @property
    def pending_until(self) -> datetime | None:
        lot = self.credit.lot if self.credit else None
        return lot.available_at if lot else None


def expires_at(program: Program, available_at: datetime, zone: ZoneInfo) -> datetime | None:
    """When points that become active at `available_at` expire, under the program's policy.
    Month and year ends are the member's local midnight (the configured zone)."""
    policy = ExpiryPolicy(program.expiry_policy)
    if policy is ExpiryPolicy.NEVER:
        return None
    if policy is ExpiryPolicy.DAYS_AFTER_ACTIVE:
        return available_at + timedelta(days=program.expiry_n)
    return _period_end(policy, program.expiry_n, available_at.astimezone(zone).date(), zone)


@lru_cache(maxsize=4096)
def _period_end(policy: ExpiryPolicy, n: int, local: date, zone: ZoneInfo) -> datetime:
    """The end of the month or year points active on `local` expire at (one per day: cached,
    a bulk import asks for the same days again and again)."""
    if policy is ExpiryPolicy.END_OF_MONTH:
        months = local.year * 12 + (local.month - 1) + n
        year, month0 = divmod(months, 12)
        last = date(year, month0 + 1, calendar.monthrange(year, month0 + 1)[1])
    else:  # end of the next calendar year
        last = date(local.year + 1, 12, 31)
    # Valid through the last day: expiry is the following local midnight.
    return datetime.combine(last + timedelta(days=1), time(0), zone).astimezone(UTC)


def credit(
    points: Points,
    lines: Sequence[Credit],
    *,
    at: datetime,
    program: Program,
    zone: ZoneInfo,
    pending_until: datetime | None = None,
) -> CreditPlan:
    """Credit `lines` as one lot, pending until `pending_until` when that is later than
    `at`. An active lot first pays back debt (a refund took back points already spent)."""
    lines = [line for line in lines if line.points > 0]
    if not lines:
        return CreditPlan(None, [], points, 0)
    total = sum(line.points for line in lines)
    pending = pending_until is not None and pending_until > at
    available_at = pending_until if pending and pending_until else at
    paid = 0 if pending else min(points.debt, total)
    state = LotState.PENDING if pending else LotState.ACTIVE
    if paid == total:
        state = LotState.SPENT
    lot = LotPlan(
        points=total,
        remaining=total - paid,
        state=state.value,
        earned_at=at,
        available_at=available_at,
        expires_at=expires_at(program, available_at, zone),
    )
    entries, running = [], points.balance
    for line in lines:
        running += line.points
        entries.append(
            EntryPlan(
                str(line.type),
                line.points,
                running,
                line.reason[:200],
                line.rule,
                line.bonus_rule_id,
            )
        )
    after = Points(
        balance=running,
        pending=points.pending + total if pending else points.pending,
        debt=points.debt - paid,
    )
    return CreditPlan(lot, entries, after, paid)


def settle(debt: int, remaining: Sequence[int]) -> list[int]:
    """Newly active lots (in the order given) pay back `debt`: what each pays."""
    paid = []
    for left in remaining:
        take = min(debt, left)
        paid.append(take)
        debt -= take
    return paid


def draw(remaining: Sequence[int], points: int) -> tuple[list[int], int]:
    """Take up to `points` from lots in the order given: what each gives, and what is still
    owed (which becomes debt)."""
    takes, owed = [], points
    for left in remaining:
        take = min(owed, left)
        takes.append(take)
        owed -= take
    return takes, owed


def stored(amount: Decimal) -> Decimal:
    """An amount as a money column keeps it."""
    return amount.quantize(STORED, rounding=ROUND_HALF_UP)


def tier_value(program: Program, so_far: Decimal, points: int, base_amount: Decimal) -> int:
    """The tier metric with this purchase counted: its points, or its spend as stored, in
    whole units (rounded down)."""
    if program.tier_metric == TierMetric.SPEND:
        return math.floor(so_far + stored(base_amount))
    return math.floor(so_far) + points


def upgrade(
    settings: Settings, tier: Tier, value: int, at: datetime, base_currency: str
) -> TierMovePlan | None:
    """The tier `value` reaches, when it is above the member's; upgrades only."""
    program = settings.program
    up = settings.next_threshold[tier.id]
    if up is None or value < up:
        return None
    reached = max((t for t in settings.ladder if t.threshold <= value), key=lambda t: t.rank)
    reason = (
        f"Reached {reached.name}: {value:,} {tiers.unit(program, base_currency)} "
        f"in {program.tier_window_months} months"
    )
    return TierMovePlan(tier, reached, reason, value, at)


def campaign(given: int | None, coupon_campaigns: Sequence[int | None]) -> int | None:
    """The campaign a purchase counts for: the one it names, else the campaign of its first
    coupon that has one (in the order the coupons were given)."""
    if given is not None:
        return given
    return next((c for c in coupon_campaigns if c is not None), None)


class MonthClosed(Conflict):
    """A purchase or refund dated in a closed month."""

    default_code = "period.closed"


def month_of(at: datetime, zone: ZoneInfo) -> date:
    """The month (its first day) `at` falls in, in the configured zone."""
    return at.astimezone(zone).date().replace(day=1)


def check_open(
    at: datetime, zone: ZoneInfo, closed: Container[date], what: str = "purchase"
) -> None:
    """Refuse a `what` ("purchase" or "refund") dated at `at` when its local month is in
    `closed` (months as their first day): a closed month's figures never change."""
    month = month_of(at, zone)
    if month in closed:
        raise MonthClosed(
            "period.closed",
            N_(
                "%(month)s is closed: a refund dated %(day)s can no longer be recorded. Ask "
                "finance to reopen it."
            )
            if what == "refund"
            else N_(
                "%(month)s is closed: a purchase dated %(day)s can no longer be recorded. Ask "
                "finance to reopen it."
            ),
            {"month": f"{month:%Y-%m}"},
            month=f"{month:%B %Y}",
            day=f"{at.astimezone(zone):%Y-%m-%d}",
        )


GUEST_NOTE = "Guest purchase: counted as campaign revenue; no points."


def purchase(
    settings: Settings,
    member: MemberState | None,
    facts: Facts | None,
    sale: Sale,
    *,
    zone: ZoneInfo,
    base_currency: str,
    closed: Container[date],
) -> PurchasePlan:
    """What posting `sale` for `member` (locked, as read) does; `facts` are the recorded
    purchases' (None for a guest); `closed` the closed months (first days). A sale dated in
    a closed month is refused (`MonthClosed`)."""
    program = settings.program
    at = sale.occurred_at
    check_open(at, zone, closed)
    returns_at = at + timedelta(days=program.return_window_days)
    if member is None:
        return PurchasePlan(returns_at, note=GUEST_NOTE)
    if member.status != MemberStatus.ACTIVE:
        return PurchasePlan(
            returns_at, note=f"Member {member.number} is {member.status}: no points earned."
        )
    assert facts is not None, "an active member's purchase needs the history's facts"
    tier = settings.tiers[member.tier_id]
    earning_facts = earning.PurchaseFacts(
        base_amount=sale.base_amount,
        local_date=at.astimezone(zone).date(),
        channel_id=sale.channel_id,
        campaign_id=sale.campaign_id,
        categories=sale.categories,
        first_purchase=facts.purchases == 0,
        purchases_in_repeat_window=facts.in_repeat_window + 1,  # this one counts too
        repeat_bonus_in_window=facts.repeat_bonus_since,
        held_out_campaigns=facts.held_out,
    )
    credits = earning.earn(
        program, tier, settings.rules, earning_facts, campaign_names=settings.campaign_names
    )
    earned = sum(c.points for c in credits)
    if earned > bounds.MAX_POINTS:
        raise ValidationFailed(
            "purchase.points",
            "This purchase would earn %(earned)s points; one purchase earns at most "
            "%(most)s. Check the amount, or post it as separate purchases.",
            earned=f"{earned:,}",
            most=f"{bounds.MAX_POINTS:,}",
        )
    credited = credit(
        member.points, credits, at=at, program=program, zone=zone, pending_until=returns_at
    )
    move = None
    if settings.next_threshold[tier.id] is not None:  # not at the top
        points = credited.lot.points if credited.lot else 0
        value = tier_value(program, facts.tier_metric, points, sale.base_amount)
        move = upgrade(settings, tier, value, at, base_currency)
    starts = facts.referral_pending and sale.base_amount >= program.referral_min_amount
    return PurchasePlan(
        returns_at,
        credits=credits,
        credit=credited,
        tier_move=move,
        referral_completes_at=returns_at if starts else None,
    )


def after(member: MemberState, plan: PurchasePlan) -> MemberState:
    """The member once `plan` is written."""
    move, credit = plan.tier_move, plan.credit
    if credit is None and move is None:
        return member
    return MemberState(
        member.id,
        member.number,
        member.status,
        move.to_tier.id if move else member.tier_id,
        move.at if move else member.tier_since,
        credit.after if credit else member.points,
    )


@dataclass(frozen=True, slots=True)
class Sold:
    """A recorded purchase as a refund sees it."""

    external_id: str
    amount: Decimal
    currency: str
    base_amount: Decimal
    refunded_amount: Decimal
    net_base_amount: Decimal
    points_earned: int
    points_reversed: int
    base_currency: str = "CNY"  # whose minor unit a refund's base share is booked to


@dataclass(frozen=True, slots=True)
class RefundPlan:
    amount: Decimal  # refunded now, in the purchase's currency
    base_amount: Decimal  # its share of the base amount, as stored
    refunded_amount: Decimal  # refunded in all, after this one
    net_base_amount: Decimal
    state: str
    full: bool
    points: int  # to take back now (`ledger.reverse` draws them)
    restore_coupons: bool
    cancel_referral: bool


def refund(sold: Sold, amount: Decimal | None, program: Program) -> RefundPlan:
    """Refund `amount` (None: everything left) of `sold`. Points go back in proportion to
    the share refunded so far, rounded half up, less what was taken back before: partial
    refunds never drift, and a full refund takes back exactly what was earned. A full refund
    gives back its coupons (if the program says so) and cancels a referral it qualified."""
    left = sold.amount - sold.refunded_amount
    amount = left if amount is None else amount
    if amount <= 0:
        raise ValidationFailed("refund.amount", "A refund amount must be above zero.")
    if amount > left:
        raise ValidationFailed(
            "refund.too_much",
            "The refund of %(amount)s %(currency)s exceeds the %(left)s still refundable on "
            "purchase %(purchase)s.",
            amount=f"{amount:.2f}",
            currency=sold.currency,
            left=f"{left:.2f}",
            purchase=sold.external_id,
        )
    refunded = sold.refunded_amount + amount
    full = refunded == sold.amount
    # The base amount given back so far is booked as a running target, the purchase's base
    # amount times the share refunded in all, rounded half up to the base currency's minor
    # unit; this refund takes the step from what earlier refunds took. So each refund is a
    # booked amount, and the last one takes exactly what is left: two halves of 926.75 are
    # 463.38 and 463.37, and a fully refunded purchase nets to zero in every report.
    unit = Decimal(1).scaleb(-minor_units(sold.base_currency))
    taken = sold.base_amount - sold.net_base_amount
    target = (
        sold.base_amount
        if full
        else (sold.base_amount * refunded / sold.amount).quantize(unit, rounding=ROUND_HALF_UP)
    )
    share = stored(max(target - taken, Decimal(0)))
    points_target = Decimal(sold.points_earned) * refunded / sold.amount
    points = int(points_target.to_integral_value(rounding=ROUND_HALF_UP)) - sold.points_reversed
    return RefundPlan(
        amount=amount,
        base_amount=share,
        refunded_amount=refunded,
        net_base_amount=Decimal(0) if full else sold.net_base_amount - share,
        state=(PurchaseState.REFUNDED if full else PurchaseState.PARTLY_REFUNDED).value,
        full=full,
        points=max(points, 0),
        restore_coupons=full and program.restore_coupon_on_refund,
        cancel_referral=full,
    )


def referral_note(completes_at: datetime, zone: ZoneInfo) -> str:
    return (
        f"First purchase for a referral: both members are rewarded on "
        f"{completes_at.astimezone(zone):%Y-%m-%d} if it is not returned."
    )
