"""Receipt pages: enter a receipt with attachments, see one, move it through the workflow,
and the finance queue (approve, reject, pay; one by one or in bulk)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from campaigns import attachments, planning, receipts
from campaigns.models import Campaign, CostCategory, PaymentMode, Receipt, ReceiptStatus
from campaigns.receipts import ReceiptInput
from core import audit, bounds
from core.accounts.models import Role, User
from core.errors import RetainError, ValidationFailed
from core.money import format_amount, format_decimal, minor_units, parse_amount
from web.deps import AppSettings, Db, actor_for, require_roles
from web.errors import status_for
from web.forms import FormFields
from web.pages.campaigns import currency_choices
from web.rendering import flash, render

router = APIRouter()
Staff = Annotated[User, Depends(require_roles(Role.MARKETER, Role.FINANCE, Role.ADMIN))]
Enterer = Annotated[User, Depends(require_roles(Role.MARKETER, Role.FINANCE))]
Finance = Annotated[User, Depends(require_roles(Role.FINANCE))]
ACTIONS = ("submit", "approve", "reject", "pay")
ReceiptId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
AttachmentId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]


def _form_choices(db: Session, settings: AppSettings) -> dict[str, Any]:
    campaigns = db.execute(
        select(Campaign.id, Campaign.code, Campaign.name)
        .where(Campaign.status != "cancelled")
        .order_by(Campaign.code)
    ).all()
    return {
        "campaigns": campaigns,
        "categories": [c.value for c in CostCategory],
        "modes": [m.value for m in PaymentMode],
        "currencies": currency_choices(db, settings.base_currency),
    }


@router.get("/receipts/new")
def new_receipt(
    request: Request,
    user: Enterer,
    db: Db,
    settings: AppSettings,
    campaign_id: Annotated[int | None, Query(ge=1, le=bounds.MAX_ID)] = None,
) -> Response:
    return render(
        request,
        "receipts/new.html",
        {"form": {"campaign_id": str(campaign_id or "")}, **_form_choices(db, settings)},
    )


def _amount(value: str, label: str, *, required: bool = False) -> Decimal:
    """An amount field, "1234.56" or "1,234.56" (`money.parse_amount`), refused by its label;
    an empty optional one is zero."""
    if not value.strip():
        if required:
            raise ValidationFailed("form.amount", f"Enter the {label.lower()}.")
        return Decimal(0)
    return parse_amount(value, label)


def _input(fields: dict[str, str], settings: AppSettings) -> ReceiptInput:
    try:
        expense_date = date.fromisoformat(fields.get("expense_date", ""))
    except ValueError:
        raise ValidationFailed("form.date", "Enter the expense date.") from None
    campaign_id = bounds.parse_id(fields.get("campaign_id"), "campaign")
    if campaign_id is None:
        raise ValidationFailed("receipt.campaign", "Choose the campaign this receipt is for.")
    return ReceiptInput(
        campaign_id=campaign_id,
        vendor=fields.get("vendor", ""),
        category=fields.get("category", ""),
        amount=_amount(fields.get("amount", ""), "Amount", required=True),
        currency=fields.get("currency") or settings.base_currency,
        expense_date=expense_date,
        description=fields.get("description", ""),
        tax_amount=_amount(fields.get("tax_amount", ""), "Tax included"),
        invoice_number=fields.get("invoice_number") or None,
        payment_mode=fields.get("payment_mode") or "company",
        reimburse_to=fields.get("reimburse_to") or None,
    )


def _save(
    request: Request,
    user: User,
    db: Db,
    settings: AppSettings,
    form: FormData,
    receipt_id: int | None,
) -> Response:
    """Create or edit a receipt, attach its files, maybe submit: all of it, or nothing."""
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    files = [f for f in form.getlist("files") if not isinstance(f, str) and f.filename]
    actor = actor_for(request, user)
    try:
        data = _input(fields, settings)
        if receipt_id is None:
            receipt = receipts.create(db, actor, data)
        else:
            receipt = receipts.update(db, actor, receipt_id, data)
        for upload in files:
            # A spooled temporary file: read here, in the worker thread, never past the limit.
            content = upload.file.read(attachments.MAX_BYTES + 1)
            attachments.add(
                db, actor, receipt.id, upload.filename or "attachment", content, settings.data_dir
            )
        if fields.get("then") == "submit":
            receipts.transition(db, actor, receipt.id, "submit")
    except RetainError as exc:
        db.rollback()
        context = {
            "form": fields,
            "error": exc.message,
            "editing_id": receipt_id,
            **_form_choices(db, settings),
        }
        return render(request, "receipts/new.html", context, status_code=status_for(exc))
    db.commit()
    state = " and submitted" if receipt.status == "submitted" else " as a draft"
    stored = format_amount(receipt.amount, receipt.currency)
    if receipt.tax_amount:
        stored += f", tax included {format_amount(receipt.tax_amount, receipt.currency)}"
    flash(request, f"Receipt #{receipt.id} saved{state}: {stored}.")
    return RedirectResponse(f"/receipts/{receipt.id}", status_code=303)


@router.post("/receipts")
def create_receipt(
    request: Request, user: Enterer, db: Db, settings: AppSettings, form: FormFields
) -> Response:
    return _save(request, user, db, settings, form, None)


@router.get("/receipts/{receipt_id}/edit")
def edit_receipt(
    request: Request, receipt_id: ReceiptId, user: Enterer, db: Db, settings: AppSettings
) -> Response:
    r = receipts.get(db, receipt_id)
    form = {
        "campaign_id": str(r.campaign_id),
        "vendor": r.vendor,
        "category": r.category,
        "amount": format_decimal(r.amount, minor_units(r.currency)),
        "currency": r.currency,
        "expense_date": str(r.expense_date),
        "description": r.description,
        "tax_amount": format_decimal(r.tax_amount, minor_units(r.currency)),
        "invoice_number": r.invoice_number or "",
        "payment_mode": r.payment_mode,
        "reimburse_to": r.reimburse_to or "",
    }
    return render(
        request,
        "receipts/new.html",
        {"form": form, "editing_id": r.id, **_form_choices(db, settings)},
    )


@router.post("/receipts/{receipt_id}")
def save_receipt(
    request: Request,
    receipt_id: ReceiptId,
    user: Enterer,
    db: Db,
    settings: AppSettings,
    form: FormFields,
) -> Response:
    return _save(request, user, db, settings, form, receipt_id)


@router.get("/receipts/{receipt_id}")
def receipt_detail(request: Request, receipt_id: ReceiptId, user: Staff, db: Db) -> Response:
    receipt = receipts.get(db, receipt_id)
    history = audit.list_entries(
        db, audit.AuditFilter(entity_type="receipt", entity_id=str(receipt.id)), limit=50
    )
    editable = receipt.status in receipts.EDITABLE and user.has_any(Role.MARKETER, Role.FINANCE)
    allowed = [
        a
        for a in ACTIONS
        if receipt.status in receipts.TRANSITIONS[a][0]
        and user.has_any(*[Role(r) for r in receipts.TRANSITIONS[a][1]])
    ]
    # Four eyes: say why this person cannot approve, rather than offer a button that fails.
    approve_blocked = None
    if "approve" in allowed:
        approve_blocked = receipts.four_eyes_problem(db, actor_for(request, user), receipt)
        if approve_blocked:
            allowed.remove("approve")
    return render(
        request,
        "receipts/detail.html",
        {
            "r": receipt,
            "campaign": planning.get(db, receipt.campaign_id),
            "history": list(reversed(history)),
            "allowed": allowed,
            "editable": editable,
            "approve_blocked": approve_blocked,
        },
    )


@router.post("/receipts/{receipt_id}/delete")
def delete_receipt(request: Request, receipt_id: ReceiptId, user: Enterer, db: Db) -> Response:
    receipt = receipts.get(db, receipt_id)
    campaign_id = receipt.campaign_id
    try:
        receipts.delete(db, actor_for(request, user), receipt_id)
    except RetainError as exc:
        db.rollback()
        flash(request, exc.message, "error")
        return RedirectResponse(f"/receipts/{receipt_id}", status_code=303)
    db.commit()
    flash(request, f"Receipt #{receipt_id} deleted.")
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/receipts/{receipt_id}/{action}")
def receipt_action(
    request: Request,
    receipt_id: ReceiptId,
    action: str,
    user: Staff,
    db: Db,
    reason: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    if action not in ACTIONS:
        raise ValidationFailed("receipt.action", f"Unknown action '{action}'.")
    try:
        receipt = receipts.transition(db, actor_for(request, user), receipt_id, action, reason)
    except RetainError as exc:
        db.rollback()
        flash(request, exc.message, "error")
    else:
        db.commit()
        flash(request, f"Receipt #{receipt.id} {receipts.action_past(action)}.")
    target = (
        next if next.startswith("/") and not next.startswith("//") else f"/receipts/{receipt_id}"
    )
    return RedirectResponse(target, status_code=303)


@router.get("/receipts/attachments/{attachment_id}")
def download(
    request: Request, attachment_id: AttachmentId, user: Staff, db: Db, settings: AppSettings
) -> FileResponse:
    attachment, path = attachments.open_for_download(
        db, actor_for(request, user), attachment_id, settings.data_dir
    )
    return FileResponse(
        path,
        media_type=attachment.content_type,
        filename=attachment.filename,
        headers={"Cache-Control": "private, no-store"},
    )


@router.get("/finance/queue")
def finance_queue(request: Request, user: Finance, db: Db) -> Response:
    def rows(status: str) -> list[tuple[Receipt, str]]:
        query = (
            select(Receipt, Campaign.code)
            .join(Campaign, Campaign.id == Receipt.campaign_id)
            .where(Receipt.status == status)
            .order_by(Receipt.expense_date, Receipt.id)
        )
        return [(r, code) for r, code in db.execute(query)]

    return render(
        request,
        "finance/queue.html",
        {
            "submitted": rows(ReceiptStatus.SUBMITTED),
            "approved": rows(ReceiptStatus.APPROVED),
        },
    )


@router.post("/finance/queue")
def finance_bulk(request: Request, user: Finance, db: Db, form: FormFields) -> Response:
    action = str(form.get("action", ""))
    reason = str(form.get("reason", "")).strip()
    ids: list[int] = []
    failed: list[str] = []
    for value in form.getlist("ids"):
        try:
            receipt_id = bounds.parse_id(value if isinstance(value, str) else "", "receipt")
        except ValidationFailed as exc:
            failed.append(exc.message)
        else:
            if receipt_id is not None:
                ids.append(receipt_id)
    if action not in ("approve", "reject", "pay") or not ids:
        flash(request, "Tick at least one receipt, then choose what to do.", "error")
        return RedirectResponse("/finance/queue", status_code=303)
    if action == "reject" and not reason:
        flash(request, "Give the reason for rejecting; it is shown to whoever filed them.", "error")
        return RedirectResponse("/finance/queue", status_code=303)
    done = 0
    actor = actor_for(request, user)
    for receipt_id in ids:  # each receipt is its own business action
        try:
            with db.begin_nested():
                receipts.transition(db, actor, receipt_id, action, reason)
            done += 1
        except RetainError as exc:
            failed.append(f"#{receipt_id}: {exc.message}")
    db.commit()
    flash(request, f"{done} receipt(s) {receipts.action_past(action)}.")
    for message in failed:
        flash(request, message, "error")
    return RedirectResponse("/finance/queue", status_code=303)
