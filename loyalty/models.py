"""Tables of the loyalty domain. Points are integers; money is MoneyAmount + currency.

The ledger (`ledger_entries`) is append-only: a database trigger refuses UPDATE and
DELETE on it, so no code path (nor a hurried hand in psql) can rewrite history.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core import bounds
from core.db import Base
from core.money import MoneyAmount
from core.text import N_
from core.timeutil import UTCDateTime, utcnow

# Free text kept in unbounded Text columns (a refund's or a status change's reason, a tier's
# benefits, a reward's description): bounded here, for every path that writes one.
NOTE_LENGTH = 1000
MAX_BIG = bounds.MAX_BIG_ID  # the largest BIGINT: ledger, lot and purchase ids, tier thresholds


def _in(values: type[StrEnum]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


class Named(Protocol):
    """A thing staff name for members: a tier, a reward, a bonus rule, a coupon batch. Its
    `name` is the one staff use; `name_zh`, when staff gave one, is its Chinese name."""

    @property
    def name(self) -> str: ...

    @property
    def name_zh(self) -> str | None: ...


def name_in(item: Named, language: str) -> str:
    """The name to show a member who reads `language`: the Chinese name to a reader of
    Chinese when there is one, else the name."""
    if language == "zh" and item.name_zh:
        return item.name_zh
    return item.name


def check_name_zh(value: str | None, size: int, field: str) -> str | None:
    """A Chinese name as staff typed it, as it will be stored: bounded like its column
    (`size`), with no control character; left blank, there is none."""
    if value is None:
        return None
    text = bounds.check_text(value, f"{field}.name_zh", size, N_("The Chinese name")).strip()
    return text or None


class ExpiryPolicy(StrEnum):
    DAYS_AFTER_ACTIVE = "days_after_active"  # N days after the points become active
    END_OF_MONTH = "end_of_month"  # end of the month N months after they become active
    END_OF_NEXT_YEAR = "end_of_next_year"  # 31 December of the following year
    NEVER = "never"


class TierMetric(StrEnum):
    POINTS = "points"  # points earned from purchases in the window
    SPEND = "spend"  # net spend in the base currency in the window


class Program(Base):
    """The loyalty program's settings: one row (id 1), edited by admins, audited."""

    __tablename__ = "loyalty_program"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint(f"expiry_policy in {_in(ExpiryPolicy)}", name="expiry_policy_valid"),
        CheckConstraint(f"tier_metric in {_in(TierMetric)}", name="tier_metric_valid"),
        CheckConstraint("earn_rate >= 0", name="earn_rate_not_negative"),
        CheckConstraint("return_window_days >= 0", name="return_window_not_negative"),
        CheckConstraint("max_adjustment > 0", name="max_adjustment_positive"),
        CheckConstraint("max_multiplier >= 1", name="max_multiplier_at_least_one"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    # Points per one unit of the base currency (rounded down per purchase).
    earn_rate: Mapped[Decimal] = mapped_column(Numeric(10, 4), default=Decimal(1))
    return_window_days: Mapped[int] = mapped_column(Integer, default=7)
    expiry_policy: Mapped[str] = mapped_column(String(24), default=ExpiryPolicy.END_OF_NEXT_YEAR)
    expiry_n: Mapped[int] = mapped_column(Integer, default=12)
    tier_metric: Mapped[str] = mapped_column(String(16), default=TierMetric.POINTS)
    tier_window_months: Mapped[int] = mapped_column(Integer, default=12)
    tier_retention_days: Mapped[int] = mapped_column(Integer, default=90)
    signup_bonus: Mapped[int] = mapped_column(Integer, default=100)
    first_purchase_bonus: Mapped[int] = mapped_column(Integer, default=200)
    birthday_points: Mapped[int] = mapped_column(Integer, default=500)
    birthday_batch_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_batches.id"))
    repeat_count: Mapped[int] = mapped_column(Integer, default=3)  # the Nth purchase…
    repeat_days: Mapped[int] = mapped_column(Integer, default=30)  # …within D days
    repeat_bonus: Mapped[int] = mapped_column(Integer, default=300)
    # What one point costs the program, in the base currency: rewards and bonus points at
    # this value are a cost to serve (the customer pyramid) and a loyalty cost (ROI).
    point_value: Mapped[Decimal] = mapped_column(Numeric(10, 4), default=Decimal("0.01"))
    referral_min_amount: Mapped[Decimal] = mapped_column(MoneyAmount, default=Decimal(100))
    referrer_points: Mapped[int] = mapped_column(Integer, default=500)
    referee_points: Mapped[int] = mapped_column(Integer, default=300)
    referrer_batch_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_batches.id"))
    referee_batch_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_batches.id"))
    referral_monthly_cap: Mapped[int] = mapped_column(Integer, default=10)
    restore_coupon_on_refund: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bounds staff work within: the most points one manual adjustment may add or take away,
    # and the highest multiplier a tier or a bonus rule may have.
    max_adjustment: Mapped[int] = mapped_column(Integer, default=100_000)
    max_multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 3), default=Decimal(10))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ConfigVersion(Base):
    """A random token that database triggers replace on any change to the program, tiers or
    bonus rules. The purchase path caches its copy of the settings under it: one cheap read
    tells whether the copy is current. Random, not a counter: a rolled-back change must
    never leave a cached copy that a later, different change would match."""

    __tablename__ = "loyalty_config_version"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    token: Mapped[str] = mapped_column(String(40))


class Tier(Base):
    """A rung of the ladder. `threshold` is in points or base-currency units (the metric)."""

    __tablename__ = "tiers"
    __table_args__ = (
        CheckConstraint("threshold >= 0", name="threshold_not_negative"),
        CheckConstraint("multiplier >= 1", name="multiplier_at_least_one"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    name_zh: Mapped[str | None] = mapped_column(String(64))  # see `name_in`
    rank: Mapped[int] = mapped_column(Integer, unique=True)
    threshold: Mapped[int] = mapped_column(BigInteger)
    multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 3), default=Decimal(1))
    benefits: Mapped[str] = mapped_column(Text, default="")


class MemberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint(f"status in {_in(MemberStatus)}", name="status_valid"),
        CheckConstraint(
            "phone IS NOT NULL OR email IS NOT NULL OR status = 'closed'", name="has_contact"
        ),
        CheckConstraint("pending_points >= 0", name="pending_not_negative"),
        Index("ix_members_name", "name"),
        Index("ix_members_tier", "tier_id"),
        Index("ix_members_birthday_md", "birth_month", "birth_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    birthday: Mapped[date | None] = mapped_column(Date)
    # Kept apart so the birthday job finds today's birthdays with an index.
    birth_month: Mapped[int | None] = mapped_column(Integer)
    birth_day: Mapped[int | None] = mapped_column(Integer)
    gender: Mapped[str | None] = mapped_column(String(16))
    region: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(64))
    occupation: Mapped[str | None] = mapped_column(String(64))
    industry: Mapped[str | None] = mapped_column(String(64))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    join_channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"))
    join_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=MemberStatus.ACTIVE)
    referral_code: Mapped[str] = mapped_column(String(16), unique=True)
    tier_id: Mapped[int] = mapped_column(ForeignKey("tiers.id"))
    tier_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Stored for speed; always equal to the sums they summarise (tests check it):
    # balance = sum of ledger entries; pending = remaining points of pending lots;
    # debt = points reversed after they were spent (balance goes negative).
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_points: Mapped[int] = mapped_column(BigInteger, default=0)
    debt: Mapped[int] = mapped_column(BigInteger, default=0)
    notes: Mapped[str] = mapped_column(Text, default="")  # staff only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def available(self) -> int:
        """Points that can be spent now (negative while a refund left a debt)."""
        return self.balance - self.pending_points


class TierChange(Base):
    __tablename__ = "tier_history"
    __table_args__ = (Index("ix_tier_history_member", "member_id", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    # The purchase that moved the member up, if one did (its retry answers the same move).
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    from_tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"))
    to_tier_id: Mapped[int] = mapped_column(ForeignKey("tiers.id"))
    reason: Mapped[str] = mapped_column(Text)
    metric_value: Mapped[int | None] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EntryType(StrEnum):
    EARN = "earn"  # points from a purchase (base, tier, bonus rules)
    BONUS = "bonus"  # sign-up, first purchase, repeat purchase, birthday, referral
    REDEEM = "redeem"  # spent on a reward
    REVERSE = "reverse"  # taken back by a refund
    EXPIRE = "expire"
    ADJUST = "adjust"  # manual, by admin or finance, with a reason


class LedgerEntry(Base):
    """One line of a member's points history. Never updated or deleted."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(f"type in {_in(EntryType)}", name="type_valid"),
        CheckConstraint("points <> 0", name="points_not_zero"),
        Index("ix_ledger_entries_member_time", "member_id", "occurred_at", "id"),
        Index("ix_ledger_entries_source", "source_type", "source_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    type: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    # Shown to the member as is: "Double points — Spring campaign".
    reason: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(64))  # base, tier, bonus_rule:7, first_purchase…
    bonus_rule_id: Mapped[int | None] = mapped_column(ForeignKey("bonus_rules.id"), index=True)
    source_type: Mapped[str | None] = mapped_column(String(24))  # purchase, refund, reward…
    source_id: Mapped[int | None] = mapped_column(BigInteger)
    lot_id: Mapped[int | None] = mapped_column(BigInteger)  # the lot an earning created
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_label: Mapped[str] = mapped_column(String(255))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)


class LotState(StrEnum):
    PENDING = "pending"  # inside the return window; cannot be spent
    ACTIVE = "active"
    SPENT = "spent"  # nothing left: used, reversed or cancelled
    EXPIRED = "expired"


class Lot(Base):
    """Points earned together (one purchase, one bonus), spent and expired as a unit."""

    __tablename__ = "point_lots"
    __table_args__ = (
        CheckConstraint(f"state in {_in(LotState)}", name="state_valid"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_in_range"),
        Index("ix_point_lots_member_state", "member_id", "state", "expires_at"),
        Index("ix_point_lots_due", "state", "available_at"),
        Index("ix_point_lots_expiry", "state", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LotDraw(Base):
    """Which lots an outgoing entry (redeem, reverse, expire, adjust) took its points from."""

    __tablename__ = "lot_draws"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("point_lots.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)


class BonusRule(Base):
    """Extra points for purchases that match. Evaluated by priority, then id (see earning)."""

    __tablename__ = "bonus_rules"
    __table_args__ = (
        CheckConstraint(
            "(multiplier IS NULL) <> (fixed_points IS NULL)", name="multiplier_or_fixed"
        ),
        CheckConstraint("multiplier IS NULL OR multiplier > 1", name="multiplier_above_one"),
        CheckConstraint("fixed_points IS NULL OR fixed_points > 0", name="fixed_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))  # shown to members: "Double points"
    name_zh: Mapped[str | None] = mapped_column(String(100))  # see `name_in`
    priority: Mapped[int] = mapped_column(Integer, default=100)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    category: Mapped[str | None] = mapped_column(String(64))
    min_spend: Mapped[Decimal | None] = mapped_column(MoneyAmount)  # base currency
    multiplier: Mapped[Decimal | None] = mapped_column(Numeric(6, 3))
    fixed_points: Mapped[int | None] = mapped_column(Integer)
    stop_further: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignAudience(Base):
    """A campaign's audience, frozen when its target segment was set with a holdout: each
    member of the segment at that moment, in the treated arm or held out
    (`loyalty.audiences`, `analytics.segments.set_campaign_target`). Held-out members are not
    issued the campaign's coupons and its bonus rules skip them on every purchase path."""

    __tablename__ = "campaign_audiences"
    __table_args__ = (
        Index("ix_campaign_audiences_campaign_held_out", "campaign_id", "held_out"),
        Index("ix_campaign_audiences_member_id", "member_id"),  # a member's holdouts
    )

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    held_out: Mapped[bool] = mapped_column(Boolean)


class PurchaseState(StrEnum):
    COMPLETED = "completed"
    PARTLY_REFUNDED = "partly_refunded"
    REFUNDED = "refunded"


class Purchase(Base):
    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint(f"state in {_in(PurchaseState)}", name="state_valid"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refund_range"),
        Index("ix_purchases_member_time", "member_id", "occurred_at"),
        Index("ix_purchases_campaign_time", "campaign_id", "occurred_at"),
        Index("ix_purchases_currency", "currency"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"))
    store: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the customer paid, after every discount; `discount` is what they saved.
    amount: Mapped[Decimal] = mapped_column(MoneyAmount)
    currency: Mapped[str] = mapped_column(String(3))
    discount: Mapped[Decimal] = mapped_column(MoneyAmount, default=Decimal(0))
    base_amount: Mapped[Decimal] = mapped_column(MoneyAmount)  # in the base currency
    refunded_amount: Mapped[Decimal] = mapped_column(MoneyAmount, default=Decimal(0))
    net_base_amount: Mapped[Decimal] = mapped_column(MoneyAmount)  # base, after refunds
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    state: Mapped[str] = mapped_column(String(16), default=PurchaseState.COMPLETED)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    # A fingerprint of what was posted, so a retry with different content is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # The member's balance right after posting: a retry answers what the first post did.
    balance_after: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def net_amount(self) -> Decimal:
        return self.amount - self.refunded_amount


class PurchaseLine(Base):
    __tablename__ = "purchase_lines"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchases.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(MoneyAmount)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchases.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(MoneyAmount)  # in the purchase's currency
    base_amount: Mapped[Decimal] = mapped_column(MoneyAmount)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_restored: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponKind(StrEnum):
    PERCENT = "percent"  # value is a percentage, capped by `max_discount`
    FIXED = "fixed"  # value is an amount in the batch's currency
    GIFT = "gift"  # a gift, described in `gift`


class Batch(Base):
    """A set of coupons with one offer, linked to the campaign that pays for it."""

    __tablename__ = "coupon_batches"
    __table_args__ = (
        CheckConstraint(f"kind in {_in(CouponKind)}", name="kind_valid"),
        CheckConstraint("(valid_days IS NULL) <> (valid_until IS NULL)", name="one_validity_rule"),
        CheckConstraint("value >= 0", name="value_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_zh: Mapped[str | None] = mapped_column(String(100))  # see `name_in`
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[Decimal] = mapped_column(MoneyAmount, default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    max_discount: Mapped[Decimal | None] = mapped_column(MoneyAmount)
    gift: Mapped[str] = mapped_column(String(200), default="")
    min_spend: Mapped[Decimal] = mapped_column(MoneyAmount, default=Decimal(0))
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_days: Mapped[int | None] = mapped_column(Integer)
    total_limit: Mapped[int | None] = mapped_column(Integer)  # coupons (or public uses)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    eligible_tiers: Mapped[list[str]] = mapped_column(JSON, default=list)  # tier codes; [] = all
    public_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    public_uses: Mapped[int] = mapped_column(Integer, default=0)
    issued_count: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponState(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    VOID = "void"


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint(f"state in {_in(CouponState)}", name="state_valid"),
        Index("ix_coupons_member_state", "member_id", "state"),
        Index("ix_coupons_batch_member", "batch_id", "member_id"),
        Index("ix_coupons_state_until", "state", "valid_until"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("coupon_batches.id"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))  # None: bearer code
    state: Mapped[str] = mapped_column(String(16), default=CouponState.ISSUED)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_reason: Mapped[str] = mapped_column(String(100), default="")
    # The redeem entry that paid for it, when a member bought it with points.
    reward_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Redemption(Base):
    """A use of a coupon or of a batch's public code, on a purchase or over the API."""

    __tablename__ = "coupon_redemptions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("coupon_batches.id"), index=True)
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"), index=True)
    discount: Mapped[Decimal] = mapped_column(MoneyAmount, default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)


class Reward(Base):
    """The catalog: members spend points for a coupon of a batch, or a gift."""

    __tablename__ = "rewards"
    __table_args__ = (CheckConstraint("points_cost > 0", name="cost_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_zh: Mapped[str | None] = mapped_column(String(100))  # see `name_in`
    description: Mapped[str] = mapped_column(Text, default="")
    points_cost: Mapped[int] = mapped_column(Integer)
    batch_id: Mapped[int] = mapped_column(ForeignKey("coupon_batches.id"))
    eligible_tiers: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReferralState(StrEnum):
    PENDING = "pending"  # signed up; no qualifying purchase yet
    QUALIFYING = "qualifying"  # qualifying purchase made; waiting out its return window
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint(f"state in {_in(ReferralState)}", name="state_valid"),
        CheckConstraint("referrer_id <> referee_id", name="not_self"),
        Index("ix_referrals_referrer", "referrer_id", "state"),
        Index("ix_referrals_due", "state", "completes_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    referee_id: Mapped[int] = mapped_column(ForeignKey("members.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=ReferralState.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    completes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    referrer_rewarded: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(200), default="")


class JobRun(Base):
    """One row per job: locked while it runs, so two runners never do the same work."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_result: Mapped[dict[str, int] | None] = mapped_column(JSON)


class MemberAccount(Base):
    """A member's portal sign-in. Created unactivated at sign-up; a staff- or till-created
    member gets one when they first ask for an activation link."""

    __tablename__ = "member_accounts"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    language: Mapped[str | None] = mapped_column(String(8))  # None: from the browser
    last_signin_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenPurpose(StrEnum):
    ACTIVATE = "activate"
    RESET = "reset"


class MemberToken(Base):
    """A one-time, expiring link token (activation, password reset); only its hash is kept."""

    __tablename__ = "member_tokens"
    __table_args__ = (
        CheckConstraint(f"purpose in {_in(TokenPurpose)}", name="purpose_valid"),
        Index("ix_member_tokens_member", "member_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MemberSession(Base):
    """A signed-in member's browser; kept apart from staff sessions on purpose."""

    __tablename__ = "member_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
