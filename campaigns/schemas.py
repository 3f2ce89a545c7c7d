"""Pydantic shapes for the campaigns API. Money is Decimal and travels as a string.

Every input field states its bound (core.bounds, the column's length), so the OpenAPI
documents what the services check; the services check it again for pages and CSV imports.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, Strict

from campaigns.models import (
    Campaign,
    CampaignStatus,
    Channel,
    CostCategory,
    PaymentMode,
    Receipt,
    RevenueRecord,
)
from campaigns.planning import LONG_TEXT
from campaigns.revenue import MAX_ORDERS
from core import bounds
from core.bounds import Text

# Money out of the API: a string with two decimals, the same however the value was loaded.
Amount = Annotated[Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str)]

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: Any) -> Any:
    """Only a date written like 2026-03-31 (pydantic would also read 0 as 1970-01-01)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return value
    raise ValueError("must be a date like 2026-03-31")


# A document's date: ISO 8601, 1900-01-01 … 2199-12-31.
Day = Annotated[
    bounds.Day,
    BeforeValidator(_iso_day),
    Field(description=f"A date from {bounds.FIRST_DAY} to {bounds.LAST_DAY}"),
]
# An id in a body: a JSON integer (not "5"), within the INTEGER column.
Ref = Annotated[bounds.RecordId, Strict()]
# An amount that may be negative: an adjusting receipt, a revenue correction.
SignedMoney = Annotated[
    Decimal,
    Field(ge=-bounds.MAX_AMOUNT, le=bounds.MAX_AMOUNT, decimal_places=bounds.AMOUNT_PLACES),
]
Rate = bounds.Rate
Orders = Annotated[int, Strict(), Field(ge=0, le=MAX_ORDERS)]

# Text held to its column (bounds.Text: length, no control character, no lone surrogate).
if TYPE_CHECKING:  # pydantic reads the bounds; the type checker sees plain text
    Currency = str
    CampaignCode = str
    CampaignName = str
    ChannelCode = str
    LongText = str
    Region = str
    AgeBand = str
    Occupation = str
    Vendor = str
    InvoiceNumber = str
    ReimburseTo = str
    PaymentReference = str
    Reference = str
    Search = str
else:
    # ISO 4217, any case (stored upper case); the service refuses codes that are not money.
    Currency = Text(Campaign.currency, min_length=3, pattern="^[A-Za-z]{3}$", examples=["CNY"])
    CampaignCode = Text(Campaign.code, min_length=2, examples=["SPRING26"])
    CampaignName = Text(Campaign.name, min_length=1)
    ChannelCode = Text(Channel.code, examples=["wechat"], description="Channel code")
    LongText = Text(LONG_TEXT)
    Region = Text(Campaign.target_region)
    AgeBand = Text(Campaign.target_age_band)
    Occupation = Text(Campaign.target_occupation)
    Vendor = Text(Receipt.vendor, min_length=1)
    InvoiceNumber = Text(Receipt.invoice_number)
    ReimburseTo = Text(Receipt.reimburse_to)
    PaymentReference = Text(Receipt.payment_reference)
    Reference = Text(RevenueRecord.reference)
    Search = Text(bounds.MAX_SEARCH, description="Part of a name or code")


class CampaignIn(BaseModel):
    code: CampaignCode
    name: CampaignName
    channel: ChannelCode
    owner_id: Ref | None = Field(None, description="Defaults to the caller")
    starts_on: Day
    ends_on: Day
    budget: bounds.Money
    currency: Currency = "CNY"
    expected_revenue: bounds.Money | None = None
    objective: LongText = ""
    target_segment: LongText = ""
    target_region: Region | None = None
    target_age_band: AgeBand | None = None
    target_occupation: Occupation | None = None
    notes: LongText = ""
    status: CampaignStatus = CampaignStatus.DRAFT
    budget_lines: dict[CostCategory, bounds.Money] = Field(default_factory=dict)


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    channel_id: int
    owner_id: int
    status: str
    starts_on: date
    ends_on: date
    currency: str
    budget_amount: Amount
    expected_revenue: Amount | None
    objective: str
    target_segment: str


class ReceiptIn(BaseModel):
    campaign_id: Ref
    vendor: Vendor
    category: CostCategory = Field(examples=["media"])
    amount: SignedMoney = Field(
        description="More than zero; negative only on an adjusting receipt (adjusts_receipt_id)"
    )
    currency: Currency = "CNY"
    expense_date: Day
    description: LongText = ""
    tax_amount: bounds.Money = Field(Decimal(0), description="From zero up to the amount")
    invoice_number: InvoiceNumber | None = None
    payment_mode: PaymentMode = PaymentMode.COMPANY
    reimburse_to: ReimburseTo | None = Field(
        None, description="The employee to pay back; required for a reimbursement"
    )
    adjusts_receipt_id: Ref | None = Field(
        None, description="The receipt this one corrects (an adjusting receipt)"
    )


class AttachmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class ReceiptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int
    vendor: str
    category: str
    amount: Amount
    tax_amount: Amount
    currency: str
    expense_date: date
    invoice_number: str | None
    payment_mode: str
    status: str
    rejection_reason: str | None
    duplicate_flags: list[dict[str, Any]]
    attachments: list[AttachmentOut]
    created_at: datetime
    paid_on: date | None = Field(None, description="The day it was paid (paid receipts)")
    payment_reference: str | None = Field(
        None, description="The bank transfer's or voucher's reference, when one was given"
    )


class TransitionIn(BaseModel):
    reason: LongText | None = Field(None, description="Required to reject")


class PayIn(BaseModel):
    paid_on: Day | None = Field(
        None,
        description="The day the money was paid, not after today in the configured time zone;"
        " today there when absent",
    )
    payment_reference: PaymentReference | None = Field(
        None,
        description="The bank transfer's or voucher's number: optional, but it is how the"
        " books find the payment",
    )


class RevenueIn(BaseModel):
    campaign_id: Ref
    received_on: Day
    amount: SignedMoney = Field(description="Not zero; negative to correct an earlier record")
    currency: Currency = "CNY"
    reference: Reference = ""
    orders: Orders | None = None


class RateIn(BaseModel):
    currency: Currency
    rate_date: Day
    rate: Rate = Field(description="Units of the base currency per unit of `currency`")
