"""Expense receipts (报销单据): draft → submitted → approved → paid, or rejected with a reason
and resubmittable. Each transition checks the role and the period, and writes an audit row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from campaigns import periods, planning
from campaigns.models import (
    Attachment,
    CostCategory,
    PaymentMode,
    Receipt,
    ReceiptStatus,
)
from campaigns.rates import currency_code
from core import audit, bounds
from core.accounts.models import User
from core.audit import Actor, AuditEntry
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from core.timeutil import utcnow

S = ReceiptStatus
ENTERERS = ("marketer", "finance")
# Which status may move to which, and who may move it.
TRANSITIONS: dict[str, tuple[set[str], tuple[str, ...]]] = {
    "submit": ({S.DRAFT, S.REJECTED}, ENTERERS),
    "approve": ({S.SUBMITTED}, ("finance",)),
    "reject": ({S.SUBMITTED}, ("finance",)),
    "pay": ({S.APPROVED}, ("finance",)),
}
EDITABLE = {S.DRAFT, S.REJECTED}
# Decisions about money only a signed-in person takes, never an integration's API key.
PERSON_ONLY = ("approve", "pay")
# Audit actions whose author prepared the receipt, so may not approve it (four eyes).
PREPARED = ("receipt.create", "receipt.update", "receipt.submit")


@dataclass(frozen=True, slots=True)
class ReceiptInput:
    campaign_id: int
    vendor: str
    category: str
    amount: Decimal
    currency: str
    expense_date: date
    description: str = ""
    tax_amount: Decimal = Decimal(0)
    invoice_number: str | None = None
    payment_mode: str = PaymentMode.COMPANY
    reimburse_to: str | None = None
    adjusts_receipt_id: int | None = None


def vendor_key(vendor: str) -> str:
    # Case folding can lengthen a name (ß → ss): the key is cut to its column.
    return " ".join(vendor.casefold().split())[: bounds.length(Receipt.vendor_key)]


def snapshot(r: Receipt) -> dict[str, Any]:
    return {
        "campaign_id": r.campaign_id,
        "vendor": r.vendor,
        "category": r.category,
        "amount": f"{r.amount} {r.currency}",
        "tax": str(r.tax_amount),
        "expense_date": str(r.expense_date),
        "invoice_number": r.invoice_number,
        "payment_mode": r.payment_mode,
        "reimburse_to": r.reimburse_to,
        "status": r.status,
    }


def _check(data: ReceiptInput, *, adjusting: bool = False) -> None:
    """Every field against its rule and its column, before anything reaches the database.
    An adjusting receipt (one correcting an earlier receipt) may have a negative amount."""
    adjusting = adjusting or data.adjusts_receipt_id is not None
    bounds.check_id(data.campaign_id, "campaign_id")
    vendor = data.vendor.strip()
    bounds.check_text(vendor, "receipt.vendor", bounds.length(Receipt.vendor), label="The vendor")
    if not vendor:
        raise ValidationFailed("receipt.vendor", "Enter the vendor's name.")
    bounds.check_text(data.category, "receipt.category", 16, label="The category")
    if data.category not in set(CostCategory):
        known = ", ".join(c.value for c in CostCategory)
        raise ValidationFailed(
            "receipt.category", f"Unknown category '{data.category}'; use {known}."
        )
    bounds.check_amount(data.amount, "receipt.amount", sign="any", label="The amount")
    if data.amount == 0:
        raise ValidationFailed("receipt.amount", "The amount cannot be zero.")
    if data.amount < 0 and not adjusting:
        raise ValidationFailed(
            "receipt.amount", "A negative amount is only allowed on an adjusting receipt."
        )
    bounds.check_amount(data.tax_amount, "receipt.tax", label="The tax")
    if abs(data.tax_amount) > abs(data.amount):
        raise ValidationFailed("receipt.tax", "Tax must be between zero and the amount.")
    bounds.check_day(data.expense_date, "receipt.expense_date", label="The expense date")
    bounds.check_text(
        data.description, "receipt.description", planning.LONG_TEXT, label="The description"
    )
    bounds.check_text(
        (data.invoice_number or "").strip(),
        "receipt.invoice_number",
        bounds.length(Receipt.invoice_number),
        label="The invoice number",
    )
    bounds.check_text(data.payment_mode, "receipt.payment_mode", 16, label="The payment mode")
    if data.payment_mode not in set(PaymentMode):
        raise ValidationFailed("receipt.payment_mode", "Payment mode is company or reimbursement.")
    bounds.check_text(
        (data.reimburse_to or "").strip(),
        "receipt.reimburse_to",
        bounds.length(Receipt.reimburse_to),
        label="The person to reimburse",
    )
    if data.payment_mode == PaymentMode.REIMBURSEMENT and not (data.reimburse_to or "").strip():
        raise ValidationFailed("receipt.reimburse_to", "Name the employee to reimburse.")
    if data.adjusts_receipt_id is not None:
        bounds.check_id(data.adjusts_receipt_id, "adjusts_receipt_id")


def get(session: Session, receipt_id: int) -> Receipt:
    # An id out of the column's range names no receipt (and must not reach the database).
    receipt = session.get(Receipt, receipt_id) if 1 <= receipt_id <= bounds.MAX_ID else None
    if receipt is None:
        raise NotFound("receipt.not_found", f"No receipt with id {receipt_id}.")
    return receipt


def find_duplicates(session: Session, receipt: Receipt) -> list[dict[str, Any]]:
    """Other receipts that look like the same expense. Shown as warnings, never merged."""
    flags: list[dict[str, Any]] = []
    conditions = [
        (Receipt.vendor_key == receipt.vendor_key)
        & (Receipt.amount == receipt.amount)
        & (Receipt.currency == receipt.currency)
        & (Receipt.expense_date == receipt.expense_date)
    ]
    if receipt.invoice_number:
        conditions.append(
            (Receipt.vendor_key == receipt.vendor_key)
            & (Receipt.invoice_number == receipt.invoice_number)
        )
    for other in session.scalars(
        select(Receipt).where(or_(*conditions), Receipt.id != receipt.id).order_by(Receipt.id)
    ):
        if receipt.invoice_number and other.invoice_number == receipt.invoice_number:
            flags.append(
                {
                    "kind": "invoice",
                    "receipt_id": other.id,
                    "message": f"Same vendor and invoice number as receipt #{other.id}.",
                }
            )
        else:
            flags.append(
                {
                    "kind": "amount_date",
                    "receipt_id": other.id,
                    "message": f"Same vendor, amount and date as receipt #{other.id}.",
                }
            )
    hashes = [a.sha256 for a in receipt.attachments]
    if hashes:
        for other_id in session.scalars(
            select(Attachment.receipt_id)
            .where(Attachment.sha256.in_(hashes), Attachment.receipt_id != receipt.id)
            .distinct()
            .order_by(Attachment.receipt_id)
        ):
            flags.append(
                {
                    "kind": "attachment",
                    "receipt_id": other_id,
                    "message": f"The same attachment is on receipt #{other_id}.",
                }
            )
    return flags


def refresh_duplicates(session: Session, receipt: Receipt) -> None:
    receipt.duplicate_flags = find_duplicates(session, receipt)
    session.flush()


def create(session: Session, actor: Actor, data: ReceiptInput) -> Receipt:
    actor.require(*ENTERERS, doing="enter receipts")
    _check(data)
    planning.referenced(session, data.campaign_id)
    periods.ensure_open(session, data.expense_date, "add a receipt dated in it")
    adjusts = data.adjusts_receipt_id
    if adjusts is not None and session.get(Receipt, adjusts) is None:
        raise ValidationFailed(
            "receipt.adjusts",
            f"No receipt #{data.adjusts_receipt_id} to adjust; give the id of the receipt "
            "this one corrects.",
        )
    receipt = Receipt(
        campaign_id=data.campaign_id,
        vendor=data.vendor.strip(),
        vendor_key=vendor_key(data.vendor),
        description=data.description,
        category=str(data.category),
        amount=data.amount,
        tax_amount=data.tax_amount,
        currency=currency_code(data.currency),
        expense_date=data.expense_date,
        invoice_number=(data.invoice_number or "").strip() or None,
        payment_mode=str(data.payment_mode),
        reimburse_to=(data.reimburse_to or "").strip() or None,
        adjusts_receipt_id=data.adjusts_receipt_id,
        created_by_id=actor.user_id,
        status=S.DRAFT,
        duplicate_flags=[],
    )
    session.add(receipt)
    session.flush()
    refresh_duplicates(session, receipt)
    audit.record(session, actor, "receipt.create", "receipt", receipt.id, after=snapshot(receipt))
    return receipt


def update(session: Session, actor: Actor, receipt_id: int, data: ReceiptInput) -> Receipt:
    actor.require(*ENTERERS, doing="edit receipts")
    receipt = get(session, receipt_id)
    if receipt.status not in EDITABLE:
        raise Conflict(
            "receipt.not_editable",
            f"A {receipt.status} receipt cannot be edited; only drafts and rejected ones.",
        )
    _check(data, adjusting=receipt.adjusts_receipt_id is not None)
    periods.ensure_open(session, receipt.expense_date, "edit its receipts")
    periods.ensure_open(session, data.expense_date, "move a receipt into it")
    before = snapshot(receipt)
    receipt.campaign_id = planning.referenced(session, data.campaign_id).id
    receipt.vendor, receipt.vendor_key = data.vendor.strip(), vendor_key(data.vendor)
    receipt.description, receipt.category = data.description, str(data.category)
    receipt.amount, receipt.tax_amount = data.amount, data.tax_amount
    receipt.currency = currency_code(data.currency)
    receipt.expense_date = data.expense_date
    receipt.invoice_number = (data.invoice_number or "").strip() or None
    receipt.payment_mode = str(data.payment_mode)
    receipt.reimburse_to = (data.reimburse_to or "").strip() or None
    session.flush()
    refresh_duplicates(session, receipt)
    audit.record(
        session,
        actor,
        "receipt.update",
        "receipt",
        receipt.id,
        before=before,
        after=snapshot(receipt),
    )
    return receipt


def transition(
    session: Session, actor: Actor, receipt_id: int, action: str, reason: str | None = None
) -> Receipt:
    """Move a receipt along the workflow: submit, approve, reject (with a reason), pay."""
    allowed_from, roles = TRANSITIONS[action]
    actor.require(*roles, doing=f"{action} receipts")
    if action in PERSON_ONLY and actor.kind == "api_key":
        raise PermissionDenied(
            "receipt.person_only",
            f"An API key cannot {action} receipts; a finance person signed in to Retain must.",
        )
    receipt = get(session, receipt_id)
    if receipt.status not in allowed_from:
        raise Conflict(
            "receipt.transition",
            f"Receipt #{receipt.id} is {receipt.status}; only a "
            f"{' or '.join(sorted(allowed_from))} receipt can be {action_past(action)}.",
        )
    if action == "approve":
        problem = four_eyes_problem(session, actor, receipt)
        if problem:
            raise PermissionDenied("receipt.four_eyes", problem)
    if action == "reject":
        bounds.check_text(reason or "", "receipt.reason", planning.LONG_TEXT, label="The reason")
    if action != "pay":
        periods.ensure_open(session, receipt.expense_date, f"{action} its receipts")
    before = snapshot(receipt)
    now = utcnow()
    if action == "submit":
        receipt.status, receipt.submitted_at, receipt.rejection_reason = S.SUBMITTED, now, None
        refresh_duplicates(session, receipt)
    elif action == "approve":
        receipt.status, receipt.decided_at, receipt.decided_by_id = S.APPROVED, now, actor.user_id
    elif action == "reject":
        if not (reason or "").strip():
            raise ValidationFailed("receipt.reason", "Say why the receipt is rejected.")
        receipt.status, receipt.decided_at, receipt.decided_by_id = S.REJECTED, now, actor.user_id
        receipt.rejection_reason = (reason or "").strip()
    else:
        receipt.status, receipt.paid_at, receipt.paid_by_id = S.PAID, now, actor.user_id
    session.flush()
    after = snapshot(receipt) | ({"reason": receipt.rejection_reason} if action == "reject" else {})
    audit.record(
        session, actor, f"receipt.{action}", "receipt", receipt.id, before=before, after=after
    )
    return receipt


def _same_person(name: str, user: User) -> bool:
    def norm(value: str) -> str:
        return " ".join(value.casefold().split())

    return norm(name) in {norm(user.name), norm(user.email)}


def four_eyes_problem(session: Session, actor: Actor, receipt: Receipt) -> str | None:
    """Why `actor` may not approve `receipt`, or None. Whoever entered, edited or submitted a
    receipt, or is the employee it reimburses, cannot approve it: another person must.
    (The command line and system jobs act for the operator and are not a person here.)"""
    if actor.user_id is None:
        return None
    prepared = set(
        session.scalars(
            select(AuditEntry.actor_user_id).where(
                AuditEntry.entity_type == "receipt",
                AuditEntry.entity_id == str(receipt.id),
                AuditEntry.action.in_(PREPARED),
            )
        )
    )
    if actor.user_id == receipt.created_by_id or actor.user_id in prepared:
        return (
            f"You entered or submitted receipt #{receipt.id}, so you cannot approve it too; "
            "ask another finance person to approve it."
        )
    user = session.get(User, actor.user_id)
    if receipt.reimburse_to and user is not None and _same_person(receipt.reimburse_to, user):
        return (
            f"Receipt #{receipt.id} reimburses you ({receipt.reimburse_to}), so you cannot "
            "approve it; ask another finance person to approve it."
        )
    return None


def action_past(action: str) -> str:
    return {"submit": "submitted", "approve": "approved", "reject": "rejected", "pay": "paid"}[
        action
    ]


def delete(session: Session, actor: Actor, receipt_id: int) -> None:
    actor.require(*ENTERERS, doing="delete receipts")
    receipt = get(session, receipt_id)
    if receipt.status not in EDITABLE:
        raise Conflict(
            "receipt.not_deletable",
            f"A {receipt.status} receipt cannot be deleted; only drafts and rejected ones.",
        )
    periods.ensure_open(session, receipt.expense_date, "delete its receipts")
    audit.record(session, actor, "receipt.delete", "receipt", receipt.id, before=snapshot(receipt))
    session.delete(receipt)
    session.flush()
