"""Tables of the campaigns domain. Money is MoneyAmount + an ISO 4217 currency beside it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base
from core.money import MoneyAmount
from core.timeutil import UTCDateTime, utcnow


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    PLANNED = "planned"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"


class CostCategory(StrEnum):
    MEDIA = "media"
    CREATIVE = "creative"
    GIFTS = "gifts"  # gifts and rewards
    EVENTS = "events"
    STAFF = "staff"


class ReceiptStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAID = "paid"


class PaymentMode(StrEnum):
    COMPANY = "company"  # paid by the company to the vendor
    REIMBURSEMENT = "reimbursement"  # an employee paid and is paid back


def _in(values: type[StrEnum]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(f"status in {_in(CampaignStatus)}", name="status_valid"),
        CheckConstraint("ends_on >= starts_on", name="dates_ordered"),
        CheckConstraint("budget_amount >= 0", name="budget_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), index=True)
    objective: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    budget_amount: Mapped[Decimal] = mapped_column(MoneyAmount)
    expected_revenue: Mapped[Decimal | None] = mapped_column(MoneyAmount)
    target_segment: Mapped[str] = mapped_column(Text, default="")
    target_region: Mapped[str | None] = mapped_column(String(100))
    target_age_band: Mapped[str | None] = mapped_column(String(20))
    target_occupation: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    channel: Mapped[Channel] = relationship(lazy="joined")
    budget_lines: Mapped[list[BudgetLine]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="BudgetLine.category"
    )


class BudgetLine(Base):
    __tablename__ = "budget_lines"
    __table_args__ = (
        UniqueConstraint("campaign_id", "category"),
        CheckConstraint(f"category in {_in(CostCategory)}", name="category_valid"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(MoneyAmount)  # in the campaign's currency


class Receipt(Base):
    """An expense receipt (报销单据). Corrections after a month closes are new receipts."""

    __tablename__ = "receipts"
    __table_args__ = (
        CheckConstraint(f"status in {_in(ReceiptStatus)}", name="status_valid"),
        CheckConstraint(f"category in {_in(CostCategory)}", name="category_valid"),
        CheckConstraint(f"payment_mode in {_in(PaymentMode)}", name="payment_mode_valid"),
        Index("ix_receipts_campaign_status", "campaign_id", "status"),
        Index("ix_receipts_vendor_invoice", "vendor_key", "invoice_number"),
        Index("ix_receipts_expense_date", "expense_date"),
        Index("ix_receipts_currency", "currency"),
        # "My receipts": a person's receipts by status.
        Index("ix_receipts_created_by_status", "created_by_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    vendor: Mapped[str] = mapped_column(String(200))
    vendor_key: Mapped[str] = mapped_column(String(200))  # normalised, for duplicate checks
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(16))
    # A negative amount is an adjusting receipt correcting a closed month.
    amount: Mapped[Decimal] = mapped_column(MoneyAmount)
    tax_amount: Mapped[Decimal] = mapped_column(MoneyAmount, default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    expense_date: Mapped[date] = mapped_column(Date)
    invoice_number: Mapped[str | None] = mapped_column(String(64))
    payment_mode: Mapped[str] = mapped_column(String(16), default=PaymentMode.COMPANY)
    reimburse_to: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=ReceiptStatus.DRAFT)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    duplicate_flags: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    adjusts_receipt_id: Mapped[int | None] = mapped_column(ForeignKey("receipts.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it was recorded
    # The day the money went out and the bank transfer's or voucher's number, as finance
    # enters them; paid_at above is only when the payment was recorded.
    paid_on: Mapped[date | None] = mapped_column(Date)
    payment_reference: Mapped[str | None] = mapped_column(String(100))

    attachments: Mapped[list[Attachment]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="Attachment.id"
    )


class Attachment(Base):
    """A receipt's file, stored outside the web root under its SHA-256."""

    __tablename__ = "receipt_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(
        ForeignKey("receipts.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RevenueRecord(Base):
    """Money received that a campaign produced (回款记录), entered or imported by finance."""

    __tablename__ = "revenue_records"
    __table_args__ = (
        Index("ix_revenue_records_campaign_date", "campaign_id", "received_on"),
        # Reports convert the (few) foreign-currency rows by date; this finds them.
        Index("ix_revenue_records_currency", "currency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    received_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MoneyAmount)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(100), default="")
    orders: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExchangeRate(Base):
    """How many units of the base currency one unit of `currency` buys on `rate_date`."""

    __tablename__ = "exchange_rates"
    __table_args__ = (
        UniqueConstraint("currency", "rate_date"),
        CheckConstraint("rate > 0", name="rate_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    rate_date: Mapped[date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(Numeric(18, 8, asdecimal=True))


class ClosedPeriod(Base):
    """A closed month: its receipts can no longer be created, edited, approved or deleted."""

    __tablename__ = "closed_periods"

    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the 1st of the month
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
