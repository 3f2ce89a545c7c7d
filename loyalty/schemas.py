"""Pydantic shapes for the loyalty API. Money travels as a string with two decimals."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from campaigns.schemas import Amount


class MemberIn(BaseModel):
    name: str = Field(examples=["Li Lei"])
    phone: str | None = Field(None, examples=["13800001234"])
    email: str | None = None
    birthday: date | None = None
    gender: str | None = Field(None, description="female, male or other")
    region: str | None = None
    city: str | None = None
    occupation: str | None = None
    industry: str | None = None
    marketing_consent: bool = False
    join_channel: str | None = Field(None, description="Channel code")
    join_campaign: str | None = Field(None, description="Campaign code")
    referral_code: str | None = Field(None, description="The referrer's code, at sign-up only")


class MemberPatch(BaseModel):
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    birthday: date | None = None
    gender: str | None = None
    region: str | None = None
    city: str | None = None
    occupation: str | None = None
    industry: str | None = None
    marketing_consent: bool | None = None


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: str
    name: str
    phone: str | None
    email: str | None
    birthday: date | None
    gender: str | None
    region: str | None
    city: str | None
    occupation: str | None
    industry: str | None
    joined_at: datetime
    marketing_consent: bool
    consent_at: datetime | None
    status: str
    referral_code: str
    tier: str
    balance: int
    available: int
    pending_points: int


class LotOut(BaseModel):
    points: int
    date: datetime


class BalanceOut(BaseModel):
    number: str
    balance: int = Field(description="Sum of all entries, pending included")
    available: int = Field(description="Spendable now; negative after a refund of spent points")
    pending_points: int
    pending: list[LotOut] = Field(description="Pending points and when each lot unlocks")
    expiring_30_days: int
    expiring_90_days: int
    redeem_blocked: bool
    tier: str


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    type: str
    points: int
    balance_after: int
    reason: str
    rule: str
    source_type: str | None
    source_id: int | None


class LedgerPage(BaseModel):
    entries: list[EntryOut]
    next_before_id: int | None = Field(description="Pass as before_id for the next page")


class AdjustmentIn(BaseModel):
    points: int = Field(description="Positive to add, negative to take away")
    reason: str = Field(min_length=1)


class LineIn(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0)
    category: str | None = None


class PurchaseIn(BaseModel):
    source: str = Field(examples=["pos-shanghai-01"], description="With external_id: idempotency")
    external_id: str = Field(examples=["T-20260301-0042"])
    occurred_at: AwareDatetime
    amount: Decimal = Field(gt=0, description="Paid, after discounts")
    currency: str = Field("CNY", min_length=3, max_length=3)
    discount: Decimal = Field(Decimal(0), ge=0)
    member_number: str | None = Field(None, description="Omit for a guest purchase")
    channel: str | None = Field(None, description="Channel code")
    store: str | None = None
    campaign_code: str | None = None
    coupon_codes: list[str] = Field(default_factory=list)
    lines: list[LineIn] = Field(default_factory=list)


class EarnedOut(BaseModel):
    points: int
    reason: str
    rule: str


class CouponUseOut(BaseModel):
    batch_id: int
    coupon_id: int | None
    discount: Amount
    currency: str


class TierChangeOut(BaseModel):
    from_tier: str
    to_tier: str
    reason: str


class PurchaseOut(BaseModel):
    purchase_id: int
    replayed: bool = Field(description="True when this id was already recorded")
    member_number: str | None
    campaign_id: int | None
    base_amount: Amount
    points: int
    earned: list[EarnedOut]
    pending_until: datetime | None
    coupons: list[CouponUseOut]
    tier_change: TierChangeOut | None
    referral: str | None
    balance: int | None
    note: str | None


class RefundIn(BaseModel):
    source: str
    external_id: str = Field(description="The refund's own id: posting it twice applies it once")
    purchase_source: str
    purchase_external_id: str
    occurred_at: AwareDatetime
    amount: Decimal | None = Field(None, gt=0, description="Omit to refund what is left")
    reason: str = ""


class RefundOut(BaseModel):
    refund_id: int
    replayed: bool
    purchase_id: int
    amount: Amount
    purchase_state: str
    points_reversed: int
    coupon_restored: bool
    referral_cancelled: bool
    balance: int | None


class CouponCheckIn(BaseModel):
    code: str
    member_number: str | None = None
    amount: Decimal | None = Field(None, description="The spend, to check minimum spend")
    currency: str | None = None


class CouponCheckOut(BaseModel):
    ok: bool
    code: str = Field(description="ok, or why not: coupon.expired, coupon.used, …")
    message: str
    discount: Amount
    batch_id: int | None


class CouponOut(BaseModel):
    code: str
    state: str
    offer: str
    batch: str
    valid_from: datetime | None
    valid_until: datetime | None
    issued_reason: str


class RedemptionOut(BaseModel):
    redemption_id: int
    batch_id: int
    discount: Amount
    currency: str


class RewardRedeemedOut(BaseModel):
    entry_id: int
    points: int
    coupon_code: str
    replayed: bool
    balance: int


class ReferralOut(BaseModel):
    referee_number: str
    referee_name: str
    state: str
    created_at: datetime
    completes_at: datetime | None
    completed_at: datetime | None
    referrer_rewarded: bool
    note: str


class ReferralIn(BaseModel):
    referee_number: str
    referral_code: str


class StatusIn(BaseModel):
    status: str = Field(description="active or suspended")
    reason: str = Field(min_length=1)
