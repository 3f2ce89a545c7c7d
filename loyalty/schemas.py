"""Pydantic shapes for the loyalty API. Money travels as a string with two decimals.

Every input states its bound (core.bounds; text by its column's length), so the OpenAPI
documents what the services check; the services check the same again for the pages, the
portal and the CSV import.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from campaigns.models import Campaign, Channel
from campaigns.schemas import Amount, Day
from core import bounds
from core.bounds import Text
from loyalty.coupons import TYPED
from loyalty.models import (
    NOTE_LENGTH,
    LedgerEntry,
    Member,
    Purchase,
    PurchaseLine,
    Refund,
)
from loyalty.purchases import EARLIEST, FUTURE_SKEW, MAX_COUPONS, MAX_LINES, MAX_QUANTITY

# Text held to its column (bounds.Text: length, no control character, no lone surrogate).
if TYPE_CHECKING:  # pydantic reads the bounds; the type checker sees plain text
    MemberName = str
    Phone = str
    Email = str
    Gender = str
    Region = str
    City = str
    Occupation = str
    Industry = str
    MemberNumber = str
    ReferralCode = str
    ChannelCode = str
    CampaignCode = str
    Currency = str
    Source = str
    ExternalId = str
    Store = str
    Sku = str
    Category = str
    CouponCode = str
    RefundSource = str
    RefundExternalId = str
    Reason = str
    Note = str
else:
    MemberName = Text(Member.name, min_length=1, examples=["Li Lei"])
    Phone = Text(Member.phone, examples=["13800001234"])
    Email = Text(Member.email)
    Gender = Text(Member.gender, description="female, male or other")
    Region = Text(Member.region)
    City = Text(Member.city)
    Occupation = Text(Member.occupation)
    Industry = Text(Member.industry)
    MemberNumber = Text(Member.number, min_length=1, examples=["M00000042"])
    ReferralCode = Text(Member.referral_code, description="A member's referral code")
    ChannelCode = Text(Channel.code, description="Channel code")
    CampaignCode = Text(Campaign.code, description="Campaign code")
    Currency = Text(
        Purchase.currency, min_length=3, pattern="^[A-Za-z]{3}$", description="ISO 4217"
    )
    Source = Text(Purchase.source, min_length=1)
    ExternalId = Text(Purchase.external_id, min_length=1)
    Store = Text(Purchase.store)
    Sku = Text(PurchaseLine.sku, min_length=1)
    Category = Text(PurchaseLine.category)
    CouponCode = Text(TYPED, min_length=1, description="As printed; spaces and dashes allowed")
    RefundSource = Text(Refund.source, min_length=1)
    RefundExternalId = Text(Refund.external_id, min_length=1)
    Reason = Text(LedgerEntry.reason, min_length=1, description="Shown to the member")
    Note = Text(NOTE_LENGTH)

# When a purchase or refund happened: from 1900-01-01 up to a few minutes ahead of the server.
When = Annotated[
    AwareDatetime,
    Field(
        ge=EARLIEST,
        description=f"With its offset; from {EARLIEST:%Y-%m-%d} (UTC) to at most "
        f"{int(FUTURE_SKEW.total_seconds() // 60)} minutes ahead of the server's clock",
    ),
]


def _no_null(schema: dict[str, Any]) -> None:
    """An optional field that may be left out but never set to null (its column is NOT NULL):
    no default in the schema, so the OpenAPI does not offer null."""
    schema.pop("default", None)


def _omittable() -> Any:
    return Field(None, json_schema_extra=_no_null)


class MemberIn(BaseModel):
    name: MemberName
    phone: Phone | None = None
    email: Email | None = None
    birthday: Day | None = None
    gender: Gender | None = None
    region: Region | None = None
    city: City | None = None
    occupation: Occupation | None = None
    industry: Industry | None = None
    marketing_consent: bool = False
    join_channel: ChannelCode | None = None
    join_campaign: CampaignCode | None = None
    referral_code: ReferralCode | None = Field(
        None, description="The referrer's code, at sign-up only"
    )


class MemberPatch(BaseModel):
    """Only the fields sent change. `name` and `marketing_consent` can be changed, never
    removed (null is refused); the others are removed with null."""

    name: MemberName = _omittable()
    phone: Phone | None = None
    email: Email | None = None
    birthday: Day | None = None
    gender: Gender | None = None
    region: Region | None = None
    city: City | None = None
    occupation: Occupation | None = None
    industry: Industry | None = None
    marketing_consent: bool = _omittable()


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
    tier_zh: str | None = Field(
        None, description="The tier's Chinese name (中文名称), when staff gave one"
    )
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
    tier_zh: str | None = Field(
        None, description="The tier's Chinese name (中文名称), when staff gave one"
    )


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
    points: bounds.Points = Field(
        description="Positive to add, negative to take away; not 0, and at most the "
        "program's largest manual adjustment either way (100,000 unless changed)"
    )
    reason: Reason


class LineIn(BaseModel):
    sku: Sku
    quantity: int = Field(gt=0, le=MAX_QUANTITY)
    unit_price: bounds.Money
    category: Category | None = None


class PurchaseIn(BaseModel):
    source: Source = Field(
        examples=["pos-shanghai-01"], description="With external_id: idempotency"
    )
    external_id: ExternalId = Field(examples=["T-20260301-0042"])
    occurred_at: When
    amount: bounds.PositiveMoney = Field(description="Paid, after discounts")
    currency: Currency = "CNY"
    discount: bounds.Money = Decimal(0)
    member_number: MemberNumber | None = Field(None, description="Omit for a guest purchase")
    channel: ChannelCode | None = None
    store: Store | None = None
    campaign_code: CampaignCode | None = None
    coupon_codes: list[CouponCode] = Field(default_factory=list, max_length=MAX_COUPONS)
    lines: list[LineIn] = Field(default_factory=list, max_length=MAX_LINES)


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
    source: RefundSource
    external_id: RefundExternalId = Field(
        description="The refund's own id: posting it twice applies it once"
    )
    purchase_source: Source
    purchase_external_id: ExternalId
    occurred_at: When = Field(description="Not before the purchase, not in the future")
    amount: bounds.PositiveMoney | None = Field(None, description="Omit to refund what is left")
    reason: Note = ""


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
    code: CouponCode
    member_number: MemberNumber | None = None
    amount: bounds.Money | None = Field(None, description="The spend, to check minimum spend")
    currency: Currency | None = None


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
    batch_zh: str | None = Field(
        None, description="The batch's Chinese name (中文名称), when staff gave one"
    )
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
    referee_number: MemberNumber
    referral_code: ReferralCode


class StatusIn(BaseModel):
    status: Literal["active", "suspended"]
    reason: Note = Field(min_length=1)
