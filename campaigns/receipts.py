"""Expense receipts (报销单据): draft → submitted → approved → paid, or rejected with a reason
and resubmittable. Each transition checks the role and the period, and writes an audit row."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from campaigns import periods, planning, rates
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
from core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    Problems,
    RetainError,
    ValidationFailed,
)
from core.text import N_, Phrase
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
# What each action does, as a refusal names it ("Only finance staff can approve receipts.").
_DOING = {
    "submit": N_("submit receipts"),
    "approve": N_("approve receipts"),
    "reject": N_("reject receipts"),
    "pay": N_("pay receipts"),
}
# ... and to a closed month ("2026-03 is closed, so you cannot approve its receipts.").
_DOING_ITS = {
    "submit": N_("submit its receipts"),
    "approve": N_("approve its receipts"),
    "reject": N_("reject its receipts"),
    "pay": N_("pay its receipts"),
}
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
    shown = {
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
    if r.paid_on is not None:  # the payment, once there is one
        shown |= {"paid_on": str(r.paid_on), "payment_reference": r.payment_reference}
    return shown


def _check(session: Session, data: ReceiptInput, *, adjusting: bool = False) -> None:
    """Every field against its rule and its column, before anything reaches the database;
    every problem at once, under the field's name in `ReceiptInput` (`core.errors.Invalid`)."""
    problems = Problems()
    validate(session, data, problems, adjusting=adjusting)
    problems.raise_any()


def validate(
    session: Session, data: ReceiptInput, problems: Problems, *, adjusting: bool = False
) -> None:
    """Note each field's problem in `problems`, under its name in `ReceiptInput` (a field
    that already has one keeps it: a form notes what it could not parse first). An
    adjusting receipt (one correcting an earlier receipt) may have a negative amount."""
    adjusting = adjusting or data.adjusts_receipt_id is not None

    def campaign() -> None:
        bounds.check_id(data.campaign_id, "campaign_id")
        planning.referenced(session, data.campaign_id)

    def vendor() -> None:
        name = data.vendor.strip()
        bounds.check_text(
            name, "receipt.vendor", bounds.length(Receipt.vendor), label=N_("The vendor")
        )
        if not name:
            raise ValidationFailed("receipt.vendor", "Enter the vendor's name.")

    def category() -> None:
        bounds.check_text(data.category, "receipt.category", 16, label=N_("The category"))
        if data.category not in set(CostCategory):
            known = ", ".join(c.value for c in CostCategory)
            raise ValidationFailed(
                "receipt.category",
                "Unknown category '%(value)s'; use %(known)s.",
                value=data.category,
                known=known,
            )

    def amount() -> None:
        bounds.check_amount(data.amount, "receipt.amount", sign="any", label=N_("The amount"))
        if data.amount == 0:
            raise ValidationFailed("receipt.amount", "The amount cannot be zero.")
        if data.amount < 0 and not adjusting:
            raise ValidationFailed(
                "receipt.amount", "A negative amount is only allowed on an adjusting receipt."
            )

    def tax() -> None:
        bounds.check_amount(data.tax_amount, "receipt.tax", label=N_("The tax"))
        if "amount" not in problems and abs(data.tax_amount) > abs(data.amount):
            raise ValidationFailed("receipt.tax", "Tax must be between zero and the amount.")

    def text(value: str | None, name: str, length: int, label: str) -> Callable[[], object]:
        return lambda: bounds.check_text(
            (value or "").strip(), f"receipt.{name}", length, label=label
        )

    def payment_mode() -> None:
        bounds.check_text(
            data.payment_mode, "receipt.payment_mode", 16, label=N_("The payment mode")
        )
        if data.payment_mode not in set(PaymentMode):
            raise ValidationFailed(
                "receipt.payment_mode", "Payment mode is company or reimbursement."
            )

    def reimburse_to() -> None:
        text(
            data.reimburse_to,
            "reimburse_to",
            bounds.length(Receipt.reimburse_to),
            N_("The person to reimburse"),
        )()
        if data.payment_mode == PaymentMode.REIMBURSEMENT and not (data.reimburse_to or "").strip():
            raise ValidationFailed("receipt.reimburse_to", "Name the employee to reimburse.")

    problems.check("campaign_id", campaign)
    problems.check("vendor", vendor)
    problems.check("category", category)
    problems.check("amount", amount)
    problems.check("currency", lambda: currency_code(data.currency))
    problems.check("tax_amount", tax)
    problems.check(
        "expense_date",
        lambda: bounds.check_day(
            data.expense_date, "receipt.expense_date", label=N_("The expense date")
        ),
    )
    problems.check(
        "description",
        lambda: bounds.check_text(
            data.description, "receipt.description", planning.LONG_TEXT, label=N_("The description")
        ),
    )
    problems.check(
        "invoice_number",
        text(
            data.invoice_number,
            "invoice_number",
            bounds.length(Receipt.invoice_number),
            N_("The invoice number"),
        ),
    )
    problems.check("payment_mode", payment_mode)
    problems.check("reimburse_to", reimburse_to)
    if data.adjusts_receipt_id is not None:
        problems.check(
            "adjusts_receipt_id",
            lambda: bounds.check_id(data.adjusts_receipt_id or 0, "adjusts_receipt_id"),
        )


def get(session: Session, receipt_id: int) -> Receipt:
    # An id out of the column's range names no receipt (and must not reach the database).
    receipt = session.get(Receipt, receipt_id) if 1 <= receipt_id <= bounds.MAX_ID else None
    if receipt is None:
        raise NotFound("receipt.not_found", "No receipt with id %(id)s.", id=receipt_id)
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
    actor.require(*ENTERERS, doing=N_("enter receipts"))
    _check(session, data)
    periods.ensure_open(session, data.expense_date, N_("add a receipt dated in it"))
    adjusts = data.adjusts_receipt_id
    if adjusts is not None and session.get(Receipt, adjusts) is None:
        raise ValidationFailed(
            "receipt.adjusts",
            "No receipt #%(id)s to adjust; give the id of the receipt this one corrects.",
            id=data.adjusts_receipt_id,
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
    actor.require(*ENTERERS, doing=N_("edit receipts"))
    receipt = get(session, receipt_id)
    if receipt.status not in EDITABLE:
        raise Conflict(
            "receipt.not_editable",
            "A %(status)s receipt cannot be edited; only drafts and rejected ones.",
            status=Phrase(receipt.status),
        )
    _check(session, data, adjusting=receipt.adjusts_receipt_id is not None)
    periods.ensure_open(session, receipt.expense_date, N_("edit its receipts"))
    periods.ensure_open(session, data.expense_date, N_("move a receipt into it"))
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
    session: Session,
    actor: Actor,
    receipt_id: int,
    action: str,
    reason: str | None = None,
    *,
    paid_on: date | None = None,
    payment_reference: str | None = None,
    today: date | None = None,
) -> Receipt:
    """Move a receipt along the workflow: submit, approve, reject (with a reason), pay.

    "pay" is `pay`: give `paid_on` and `today` (the configured zone's date). Without them
    (scripts, the demo) the payment is dated on today's UTC date, with no reference."""
    if action == "pay":
        day = today or utcnow().date()
        return pay(
            session,
            actor,
            receipt_id,
            paid_on=paid_on or day,
            payment_reference=payment_reference,
            today=day,
        )
    receipt, before = _start(session, actor, receipt_id, action)
    if action == "approve":
        refusal = four_eyes_error(session, actor, receipt)
        if refusal is not None:
            raise refusal
    if action == "reject":
        bounds.check_text(
            reason or "", "receipt.reason", planning.LONG_TEXT, label=N_("The reason")
        )
    periods.ensure_open(session, receipt.expense_date, _DOING_ITS[action])
    now = utcnow()
    if action == "submit":
        receipt.status, receipt.submitted_at, receipt.rejection_reason = S.SUBMITTED, now, None
        refresh_duplicates(session, receipt)
    elif action == "approve":
        receipt.status, receipt.decided_at, receipt.decided_by_id = S.APPROVED, now, actor.user_id
    else:
        if not (reason or "").strip():
            raise ValidationFailed("receipt.reason", "Say why the receipt is rejected.")
        receipt.status, receipt.decided_at, receipt.decided_by_id = S.REJECTED, now, actor.user_id
        receipt.rejection_reason = (reason or "").strip()
    session.flush()
    after = snapshot(receipt) | ({"reason": receipt.rejection_reason} if action == "reject" else {})
    audit.record(
        session, actor, f"receipt.{action}", "receipt", receipt.id, before=before, after=after
    )
    return receipt


def _start(
    session: Session, actor: Actor, receipt_id: int, action: str
) -> tuple[Receipt, dict[str, Any]]:
    """The receipt `action` may move, after the checks every move makes (role, person, state),
    and its snapshot before the move."""
    if action not in TRANSITIONS:
        raise ValidationFailed("receipt.action", "Unknown action '%(value)s'.", value=action[:40])
    allowed_from, roles = TRANSITIONS[action]
    actor.require(*roles, doing=_DOING[action])
    if action in PERSON_ONLY and actor.kind == "api_key":
        raise PermissionDenied(
            "receipt.person_only",
            N_("An API key cannot approve receipts; a finance person signed in to Retain must.")
            if action == "approve"
            else N_("An API key cannot pay receipts; a finance person signed in to Retain must."),
        )
    receipt = get(session, receipt_id)
    if receipt.status not in allowed_from:
        raise _not_movable(receipt, action)
    return receipt, snapshot(receipt)


def check_payment(paid_on: date, payment_reference: str | None, today: date) -> str | None:
    """The payment's date and reference, held to their rules: a date within the bounds and
    not after `today` (the configured zone's date: a payment is recorded once it is made);
    a reference that fits its column. Returns the reference to store (None when blank)."""
    bounds.check_day(paid_on, "receipt.paid_on", label=N_("The payment date"))
    if paid_on > today:
        raise ValidationFailed(
            "receipt.paid_on",
            "The payment date %(day)s is in the future (today is %(today)s); record a payment "
            "on or after the day it is made.",
            day=f"{paid_on:%Y-%m-%d}",
            today=f"{today:%Y-%m-%d}",
        )
    reference = (payment_reference or "").strip()
    bounds.check_text(
        reference,
        "receipt.payment_reference",
        bounds.length(Receipt.payment_reference),
        label=N_("The payment reference"),
    )
    return reference or None


def pay(
    session: Session,
    actor: Actor,
    receipt_id: int,
    *,
    paid_on: date,
    payment_reference: str | None = None,
    today: date,
) -> Receipt:
    """Record that an approved receipt was paid on `paid_on`, with the bank transfer's or
    voucher's reference (optional, but it is how the books find the payment). A signed-in
    finance person only. Paying stays possible after the expense's month closed: the
    payment is a later event."""
    receipt, before = _start(session, actor, receipt_id, "pay")
    reference = check_payment(paid_on, payment_reference, today)
    receipt.status, receipt.paid_at, receipt.paid_by_id = S.PAID, utcnow(), actor.user_id
    receipt.paid_on, receipt.payment_reference = paid_on, reference
    session.flush()
    audit.record(
        session, actor, "receipt.pay", "receipt", receipt.id, before=before, after=snapshot(receipt)
    )
    return receipt


@dataclass(frozen=True, slots=True)
class Many:
    """What a bulk action did: the receipts it moved, and why each other one was refused."""

    action: str
    done: list[int] = field(default_factory=list)
    refused: list[tuple[int | None, str]] = field(default_factory=list)
    # Each refusal itself, in the order of `refused`, so a page can say it in its language.
    errors: list[RetainError] = field(default_factory=list)


def transition_many(
    session: Session,
    actor: Actor,
    receipt_ids: Iterable[int],
    action: str,
    reason: str | None = None,
    *,
    paid_on: date | None = None,
    payment_reference: str | None = None,
    today: date | None = None,
) -> Many:
    """One action on many receipts (the finance queue), each its own business action in a
    savepoint: one refused receipt does not stop the others. What applies to them all (the
    reason to reject, the payment's date and reference) is checked once, first."""
    if action not in ("approve", "reject", "pay"):
        raise ValidationFailed("receipt.action", "Choose approve, reject or pay.")
    if action == "reject":
        bounds.check_text(
            reason or "", "receipt.reason", planning.LONG_TEXT, label=N_("The reason")
        )
        if not (reason or "").strip():
            raise ValidationFailed(
                "receipt.reason",
                "Give the reason for rejecting; it is shown to whoever filed them.",
            )
    if action == "pay":
        if paid_on is None or today is None:
            raise ValidationFailed("receipt.paid_on", "Enter the date the receipts were paid.")
        check_payment(paid_on, payment_reference, today)
    actor.require(*TRANSITIONS[action][1], doing=_DOING[action])  # refuses them all
    result = Many(action)
    for receipt_id in dict.fromkeys(receipt_ids):  # each once, in the order given
        try:
            with session.begin_nested():
                if action == "pay":
                    assert paid_on is not None and today is not None
                    pay(
                        session,
                        actor,
                        receipt_id,
                        paid_on=paid_on,
                        payment_reference=payment_reference,
                        today=today,
                    )
                else:
                    transition(session, actor, receipt_id, action, reason)
        except RetainError as exc:
            result.refused.append((receipt_id, exc.message))
            result.errors.append(exc)
        else:
            result.done.append(receipt_id)
    return result


def _same_person(name: str, user: User) -> bool:
    def norm(value: str) -> str:
        return " ".join(value.casefold().split())

    return norm(name) in {norm(user.name), norm(user.email)}


def _not_movable(receipt: Receipt, action: str) -> Conflict:
    """The refusal to `action` a receipt whose status `TRANSITIONS` does not move from."""
    code, status = "receipt.transition", Phrase(receipt.status)
    if action == "submit":
        return Conflict(
            code,
            "Receipt #%(id)s is %(status)s; only a draft or rejected receipt can be submitted.",
            id=receipt.id,
            status=status,
        )
    if action == "approve":
        return Conflict(
            code,
            "Receipt #%(id)s is %(status)s; only a submitted receipt can be approved.",
            id=receipt.id,
            status=status,
        )
    if action == "reject":
        return Conflict(
            code,
            "Receipt #%(id)s is %(status)s; only a submitted receipt can be rejected.",
            id=receipt.id,
            status=status,
        )
    return Conflict(
        code,
        "Receipt #%(id)s is %(status)s; only an approved receipt can be paid.",
        id=receipt.id,
        status=status,
    )


def four_eyes_problem(session: Session, actor: Actor, receipt: Receipt) -> str | None:
    """Why `actor` may not approve `receipt` (in English), or None: `four_eyes_error`'s
    message."""
    refusal = four_eyes_error(session, actor, receipt)
    return None if refusal is None else refusal.message


def four_eyes_error(session: Session, actor: Actor, receipt: Receipt) -> PermissionDenied | None:
    """The refusal for `actor` to approve `receipt`, or None. Whoever entered, edited or
    submitted a receipt, or is the employee it reimburses, cannot approve it: another person
    must. (The command line and system jobs act for the operator and are not a person here.)"""
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
        return PermissionDenied(
            "receipt.four_eyes",
            "You entered or submitted receipt #%(id)s, so you cannot approve it too; ask another "
            "finance person to approve it.",
            id=receipt.id,
        )
    user = session.get(User, actor.user_id)
    if receipt.reimburse_to and user is not None and _same_person(receipt.reimburse_to, user):
        return PermissionDenied(
            "receipt.four_eyes",
            "Receipt #%(id)s reimburses you (%(name)s), so you cannot approve it; ask another "
            "finance person to approve it.",
            id=receipt.id,
            name=receipt.reimburse_to,
        )
    return None


def delete(session: Session, actor: Actor, receipt_id: int) -> None:
    actor.require(*ENTERERS, doing=N_("delete receipts"))
    receipt = get(session, receipt_id)
    if receipt.status not in EDITABLE:
        raise Conflict(
            "receipt.not_deletable",
            "A %(status)s receipt cannot be deleted; only drafts and rejected ones.",
            status=Phrase(receipt.status),
        )
    periods.ensure_open(session, receipt.expense_date, N_("delete its receipts"))
    audit.record(session, actor, "receipt.delete", "receipt", receipt.id, before=snapshot(receipt))
    session.delete(receipt)
    session.flush()


# --- Amounts in the base currency (the finance queue) --------------------------------------


@dataclass(frozen=True, slots=True)
class Booked:
    """Receipts' amounts booked in the base currency: by receipt id, None where no rate
    converts it (`problem` says which currency and date, and who can enter the rate)."""

    currency: str
    amounts: dict[int, Decimal | None]
    problem: ValidationFailed | None = None

    def total(self, receipt_ids: Iterable[int]) -> Decimal | None:
        """The sum of booked amounts (so rows add up to it), or None if one is missing."""
        total = Decimal(0).quantize(rates.minor_unit(self.currency))
        for receipt_id in receipt_ids:
            amount = self.amounts.get(receipt_id)
            if amount is None:
                return None
            total += amount
        return total


def booked(session: Session, rows: Sequence[Receipt], base: str) -> Booked:
    """Each receipt's amount in `base`, booked once as the ROI report books it
    (`rates.convert`, which calls `rates.book`: the latest rate on or before the expense
    date, rounded half-up to the base currency's minor unit)."""
    frame = pd.DataFrame(
        [(r.id, r.amount, r.currency, r.expense_date) for r in rows],
        columns=["id", "amount", "currency", "day"],
    )
    if frame.empty:
        return Booked(base, {})
    table = rates.rates_frame(session, set(frame["currency"]) - {base})
    try:
        converted = rates.convert(frame, table, base)
        return Booked(base, dict(zip(frame["id"], converted, strict=True)))
    except ValidationFailed as first:  # a missing or unusable rate: the others still book
        amounts: dict[int, Decimal | None] = {}
        for i in range(len(frame)):
            one = frame.iloc[[i]]
            try:
                amounts[int(one["id"].iloc[0])] = rates.convert(one, table, base).iloc[0]
            except ValidationFailed:
                amounts[int(one["id"].iloc[0])] = None
        return Booked(base, amounts, problem=first)


# --- A person's own receipts ---------------------------------------------------------------


def mine_condition(user_id: int) -> Any:
    """Receipts `user_id` entered, or submitted (finance may submit for someone else)."""
    submitted = select(AuditEntry.entity_id).where(
        AuditEntry.entity_type == "receipt",
        AuditEntry.action == "receipt.submit",
        AuditEntry.actor_user_id == user_id,
    )
    # Compared as text, as the audit log keeps ids: nothing to cast, nothing to fail.
    return or_(Receipt.created_by_id == user_id, cast(Receipt.id, String).in_(submitted))


def mine(
    session: Session,
    user_id: int,
    *,
    status: str | None = None,
    first_id: int | None = None,
    last_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Receipt]:
    """The receipts `user_id` entered or submitted, newest first; by status, and by an id
    range (a CSV import's receipts)."""
    query = select(Receipt).where(mine_condition(user_id))
    if status:
        query = query.where(Receipt.status == status)
    if first_id is not None:
        query = query.where(Receipt.id >= first_id)
    if last_id is not None:
        query = query.where(Receipt.id <= last_id)
    query = query.order_by(Receipt.created_at.desc(), Receipt.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset)))


def mine_counts(
    session: Session,
    user_id: int,
    *,
    first_id: int | None = None,
    last_id: int | None = None,
) -> dict[str, int]:
    """How many of the person's receipts are in each status (every status, zero included)."""
    query = select(Receipt.status, func.count()).where(mine_condition(user_id))
    if first_id is not None:
        query = query.where(Receipt.id >= first_id)
    if last_id is not None:
        query = query.where(Receipt.id <= last_id)
    found = {status: n for status, n in session.execute(query.group_by(Receipt.status))}
    return {s.value: int(found.get(s.value, 0)) for s in ReceiptStatus}
