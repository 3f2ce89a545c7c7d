"""Pydantic shapes for the campaigns API. Money is Decimal and travels as a string."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

# Money out of the API: a string with two decimals, the same however the value was loaded.
Amount = Annotated[Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str)]


class CampaignIn(BaseModel):
    code: str = Field(examples=["SPRING26"])
    name: str
    channel: str = Field(examples=["wechat"], description="Channel code")
    owner_id: int | None = Field(None, description="Defaults to the caller")
    starts_on: date
    ends_on: date
    budget: Decimal = Field(ge=0)
    currency: str = Field("CNY", min_length=3, max_length=3)
    expected_revenue: Decimal | None = None
    objective: str = ""
    target_segment: str = ""
    target_region: str | None = None
    target_age_band: str | None = None
    target_occupation: str | None = None
    notes: str = ""
    status: str = "draft"
    budget_lines: dict[str, Decimal] = Field(default_factory=dict)


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
    campaign_id: int
    vendor: str
    category: str = Field(examples=["media"])
    amount: Decimal
    currency: str = Field("CNY", min_length=3, max_length=3)
    expense_date: date
    description: str = ""
    tax_amount: Decimal = Decimal(0)
    invoice_number: str | None = None
    payment_mode: str = "company"
    reimburse_to: str | None = None
    adjusts_receipt_id: int | None = None


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


class TransitionIn(BaseModel):
    reason: str | None = Field(None, description="Required to reject")


class RevenueIn(BaseModel):
    campaign_id: int
    received_on: date
    amount: Decimal
    currency: str = Field("CNY", min_length=3, max_length=3)
    reference: str = ""
    orders: int | None = Field(None, ge=0)


class RateIn(BaseModel):
    currency: str = Field(min_length=3, max_length=3)
    rate_date: date
    rate: Decimal = Field(gt=0)
