"""Receipt pages: enter a receipt with attachments, see one (its files previewed), move it
through the workflow, "My receipts", and the finance queue (approve, reject, pay; one by one
or in bulk, with totals in the base currency).

**Kept files.** When the receipt form is refused, the files that were uploaded with it and
pass the content checks are kept (`attachments.keep`: stored under their hash) and the form
comes back carrying each as a signed token: a hidden, ticked "kept" checkbox the person can
untick to drop it. The token names the file (hash, name, type, size), the person and the
receipt being edited (0 for a new one) and expires after `KEPT_SECONDS`; another person's
token, another receipt's, an old or altered one is refused at its field. Tokens live only in
that form, so a kept file never shows up in any other form or receipt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from campaigns import attachments, planning, rates, receipts
from campaigns.attachments import Kept
from campaigns.models import Campaign, CostCategory, PaymentMode, Receipt, ReceiptStatus
from campaigns.receipts import ReceiptInput
from core import audit, bounds
from core.accounts.models import Role, User
from core.errors import Problems, ValidationFailed
from core.money import format_amount, format_decimal, minor_units, parse_amount
from core.settings import Settings
from core.text import Phrase
from web.actions import FORM, act
from web.deps import AppSettings, Db, actor_for, require_roles
from web.forms import FormFields
from web.pages.campaigns import currency_choices
from web.rendering import N_, flash, render, say, t

router = APIRouter()
Staff = Annotated[User, Depends(require_roles(Role.MARKETER, Role.FINANCE, Role.ADMIN))]
Enterer = Annotated[User, Depends(require_roles(Role.MARKETER, Role.FINANCE))]
Finance = Annotated[User, Depends(require_roles(Role.FINANCE))]
ACTIONS = ("submit", "approve", "reject", "pay")
ReceiptId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
AttachmentId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
# A downloaded file is never rendered by the browser, and could not run anything if it were.
DOWNLOAD_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
KEPT_SECONDS = 24 * 3600
MINE_PAGE = 50

# The receipt form's fields, named as `ReceiptInput` names them.
FIELDS = (
    "campaign_id",
    "vendor",
    "invoice_number",
    "category",
    "expense_date",
    "amount",
    "tax_amount",
    "currency",
    "payment_mode",
    "reimburse_to",
    "description",
    "files",
)
# Refusals whose code does not name the field they are about.
CODES = {
    "receipt.tax": "tax_amount",
    "money.currency": "currency",
    "campaign.unknown": "campaign_id",
    "period.closed": "expense_date",
    "attachment.too_large": "files",
    "attachment.empty": "files",
    "attachment.type": "files",
    "attachment.missing": "files",
    "attachment.locked": "files",
}
PAY_FIELDS = ("paid_on", "payment_reference")


def _warn_without_rate(request: Request, db: Session, settings: Settings, r: Receipt) -> None:
    """A receipt in a currency with no rate for its date is saved, but the ROI report, the
    dashboard and the campaign's figures cannot convert it until finance enters the rate:
    say so now, with who can fix it, rather than let the person find the report refused."""
    try:
        rates.to_base(db, r.amount, r.currency, r.expense_date, settings.base_currency)
    except rates.MissingRate as exc:
        why = say(request, exc)
        flash(request, t(request, "Not in the figures yet: %(why)s", why=why), "warning")


def _today(settings: Settings) -> date:
    """Today in the configured zone: the latest day a payment can be dated."""
    return datetime.now(settings.zone).date()


def _day(value: str, label: Phrase, *, required: bool = True) -> date | None:
    """A date field (YYYY-MM-DD, as a date input sends it), refused by its label (a word the
    page translates, written as mid-sentence: "payment date")."""
    text = value.strip()
    if not text:
        if required:
            raise ValidationFailed("form.date", "Enter the %(label)s.", label=label)
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            "form.date", "Enter the %(label)s as a date like 2026-03-31.", label=label
        ) from None


def _amount(value: str, label: Phrase, *, missing: ValidationFailed | None = None) -> Decimal:
    """An amount field, "1234.56" or "1,234.56" (`money.parse_amount`), refused by its label;
    an empty one is refused with `missing` (the field is required), else zero."""
    if not value.strip():
        if missing is not None:
            raise missing
        return Decimal(0)
    return parse_amount(value, label)


def _campaign(value: str | None) -> int:
    campaign_id = bounds.parse_id(value, "campaign")
    if campaign_id is None:
        raise ValidationFailed("receipt.campaign", "Choose the campaign this receipt is for.")
    return campaign_id


def _money(value: Decimal | int | None, currency: str) -> str:
    return "—" if value is None else format_amount(Decimal(value), currency)


# --- Kept files ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeptFile:
    """A kept file as the form shows it: its signed token, name and size."""

    token: str
    kept: Kept

    @property
    def filename(self) -> str:
        return self.kept.filename

    @property
    def size_kb(self) -> str:
        return f"{self.kept.size / 1024:,.1f}"


def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.resolve_secret_key(), salt="retain.receipt.kept-file")


def _sign(settings: Settings, user_id: int, receipt_id: int | None, kept: Kept) -> KeptFile:
    payload = {
        "u": user_id,
        "r": receipt_id or 0,
        "h": kept.sha256,
        "n": kept.filename,
        "t": kept.content_type,
        "s": kept.size,
    }
    return KeptFile(str(_signer(settings).dumps(payload)), kept)


def _unsign(settings: Settings, user_id: int, receipt_id: int | None, token: str) -> Kept | None:
    """The kept file a token names, if it is this person's, for this receipt, and fresh."""
    try:
        payload = _signer(settings).loads(token, max_age=KEPT_SECONDS)
    except (BadData, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    if payload.get("u") != user_id or payload.get("r") != (receipt_id or 0):
        return None
    sha, name, kind, size = (payload.get(k) for k in ("h", "n", "t", "s"))
    if not (
        isinstance(sha, str)
        and isinstance(name, str)
        and kind in attachments.ALLOWED
        and isinstance(size, int)
    ):
        return None
    return Kept(sha, name, str(kind), size)


def _files(
    request: Request,
    user: User,
    settings: Settings,
    form: FormData,
    receipt_id: int | None,
    problems: Problems,
) -> list[Kept]:
    """The files this submit attaches: the kept ones still ticked, then the new uploads that
    pass the checks (each kept at once, so a refusal of anything else does not lose them).
    A file that fails its checks, or a kept token that is not valid here, is a problem at
    the files field; the same content twice is attached once."""
    actor = actor_for(request, user)
    found: dict[str, Kept] = {}
    refused: list[str] = []
    for token in form.getlist("kept"):
        kept = _unsign(settings, user.id, receipt_id, token) if isinstance(token, str) else None
        if kept is None:
            refused.append(t(request, "A kept file has expired or is not yours: attach it again."))
        else:
            found.setdefault(kept.sha256, kept)
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    for upload in uploads:
        # A spooled temporary file: read here, in the worker thread, never past the limit.
        data = upload.file.read(attachments.MAX_BYTES + 1)
        name = upload.filename or "attachment"
        try:
            kept = attachments.keep(actor, name, data, settings.data_dir)
        except ValidationFailed as exc:
            refused.append(
                t(request, "%(file)s: %(problem)s", file=name[:80], problem=say(request, exc))
            )
        else:
            found.setdefault(kept.sha256, kept)
    if refused:
        problems.add("files", "%(problems)s", "attachment.type", problems=" ".join(refused))
    return list(found.values())


# --- The receipt form ----------------------------------------------------------------------


def _form_choices(db: Session, settings: Settings) -> dict[str, Any]:
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


def _form_page(
    request: Request,
    db: Session,
    settings: Settings,
    form: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    editing: Receipt | None = None,
    kept: list[KeptFile] | None = None,
) -> Response:
    context = {
        "form": form,
        "errors": errors or {},
        "editing_id": editing.id if editing else None,
        "attached": list(editing.attachments) if editing else [],
        "kept": kept or [],
        **_form_choices(db, settings),
    }
    return render(request, "receipts/new.html", context)


@router.get("/receipts/new")
def new_receipt(
    request: Request,
    user: Enterer,
    db: Db,
    settings: AppSettings,
    campaign_id: Annotated[int | None, Query(ge=1, le=bounds.MAX_ID)] = None,
) -> Response:
    return _form_page(request, db, settings, {"campaign_id": str(campaign_id or "")})


def _input(
    db: Session,
    fields: dict[str, str],
    settings: Settings,
    problems: Problems,
    *,
    adjusting: bool = False,
) -> ReceiptInput:
    """The form as a `ReceiptInput`, each field's problem noted against it: first what the
    page parses (dates, amounts, the campaign), then the receipt's own rules for every other
    field (`receipts.validate`), so every problem shows at once."""
    expense_date = problems.check(
        "expense_date", lambda: _day(fields.get("expense_date", ""), N_("expense date"))
    )
    campaign_id = problems.check("campaign_id", lambda: _campaign(fields.get("campaign_id")))
    amount = problems.check(
        "amount",
        lambda: _amount(
            fields.get("amount", ""),
            N_("Amount"),
            missing=ValidationFailed("form.amount", "Enter the amount."),
        ),
    )
    tax = problems.check(
        "tax_amount", lambda: _amount(fields.get("tax_amount", ""), N_("Tax included"))
    )
    data = ReceiptInput(
        # Stand-ins where the field was refused: the rules then add nothing for it (a field's
        # first problem is the one shown).
        campaign_id=campaign_id or 0,
        vendor=fields.get("vendor", ""),
        category=fields.get("category", ""),
        amount=Decimal(1) if amount is None else amount,
        currency=fields.get("currency") or settings.base_currency,
        expense_date=expense_date or _today(settings),
        description=fields.get("description", ""),
        tax_amount=Decimal(0) if tax is None else tax,
        invoice_number=fields.get("invoice_number") or None,
        payment_mode=fields.get("payment_mode") or "company",
        reimburse_to=fields.get("reimburse_to") or None,
    )
    receipts.validate(db, data, problems, adjusting=adjusting)
    return data


def _save(
    request: Request,
    user: User,
    db: Session,
    settings: Settings,
    form: FormData,
    receipt_id: int | None,
) -> Response:
    """Create or edit a receipt, attach its files, maybe submit: all of it, or nothing (and
    the form again, every input and every good file kept)."""
    editing = receipts.get(db, receipt_id) if receipt_id is not None else None
    fields = {k: v for k, v in form.items() if isinstance(v, str) and k not in ("kept", "files")}
    problems = Problems()
    files = _files(request, user, settings, form, receipt_id, problems)
    adjusting = editing is not None and editing.adjusts_receipt_id is not None
    data = _input(db, fields, settings, problems, adjusting=adjusting)
    actor = actor_for(request, user)

    def save() -> Receipt:
        if receipt_id is None:
            receipt = receipts.create(db, actor, data)
        else:
            receipt = receipts.update(db, actor, receipt_id, data)
        for kept in files:
            attachments.attach_kept(db, actor, receipt.id, kept, settings.data_dir)
        if fields.get("then") == "submit":
            receipts.transition(db, actor, receipt.id, "submit")
        return receipt

    def done(receipt: Receipt) -> str:
        _warn_without_rate(request, db, settings, receipt)
        stored = format_amount(receipt.amount, receipt.currency)
        if receipt.tax_amount:
            stored += t(
                request,
                ", tax included %(tax)s",
                tax=format_amount(receipt.tax_amount, receipt.currency),
            )
        if receipt.status == ReceiptStatus.SUBMITTED:
            return t(
                request, "Receipt #%(id)s saved and submitted: %(stored)s.", id=receipt.id,
                stored=stored,
            )  # fmt: skip
        return t(
            request, "Receipt #%(id)s saved as a draft: %(stored)s.", id=receipt.id, stored=stored
        )

    def again(errors: dict[str, str]) -> Response:
        still = editing if editing is None else receipts.get(db, editing.id)
        kept = [
            _sign(settings, user.id, receipt_id, k)
            for k in files
            if attachments.storage_path(settings.data_dir, k.sha256).is_file()
        ]
        return _form_page(request, db, settings, fields, errors=errors, editing=still, kept=kept)

    return act(
        request,
        db,
        save,
        errors=problems,
        done=done,
        then=lambda receipt: f"/receipts/{receipt.id}",
        again=again,
        names=FIELDS,
        codes=CODES,
    )


@router.post("/receipts")
def create_receipt(
    request: Request, user: Enterer, db: Db, settings: AppSettings, form: FormFields
) -> Response:
    return _save(request, user, db, settings, form, None)


# --- My receipts ---------------------------------------------------------------------------


class StatusFilter(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAID = "paid"


@router.get("/receipts/mine")
def my_receipts(
    request: Request,
    user: Enterer,
    db: Db,
    status: Annotated[StatusFilter | None, Query()] = None,
    first: Annotated[int | None, Query(ge=1, le=bounds.MAX_ID)] = None,
    last: Annotated[int | None, Query(ge=1, le=bounds.MAX_ID)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """The receipts this person entered or submitted, newest first, by status; `first` and
    `last` narrow it to an id range (a CSV import's receipts)."""
    chosen = status.value if status else None
    rows = receipts.mine(
        db,
        user.id,
        status=chosen,
        first_id=first,
        last_id=last,
        limit=MINE_PAGE + 1,
        offset=(page - 1) * MINE_PAGE,
    )
    wanted = {r.campaign_id for r in rows}
    codes = {
        campaign_id: code
        for campaign_id, code in db.execute(
            select(Campaign.id, Campaign.code).where(Campaign.id.in_(wanted))
        )
    }
    counts = receipts.mine_counts(db, user.id, first_id=first, last_id=last)
    imported = first is not None and last is not None

    def link(status: str | None, page: int = 1) -> str:
        """This list with another status or page, the import's range kept."""
        query = {"status": status, "first": first, "last": last, "page": page if page > 1 else None}
        shown = urlencode({k: v for k, v in query.items() if v is not None})
        return f"/receipts/mine?{shown}" if shown else "/receipts/mine"

    return render(
        request,
        "receipts/mine.html",
        {
            "rows": rows[:MINE_PAGE],
            "codes": codes,
            "counts": counts,
            "total": sum(counts.values()),
            "status": chosen,
            "statuses": [s.value for s in ReceiptStatus],
            "range": {"first": first, "last": last} if imported else None,
            "page": page,
            "more": len(rows) > MINE_PAGE,
            "money": format_amount,
            "link": link,
        },
    )


# --- One receipt ---------------------------------------------------------------------------


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
    return _form_page(request, db, settings, form, editing=r)


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


def _detail(
    request: Request,
    db: Session,
    user: User,
    settings: Settings,
    receipt_id: int,
    **extra: Any,
) -> Response:
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
    approve_blocked: str | None = None
    if "approve" in allowed:
        refusal = receipts.four_eyes_error(db, actor_for(request, user), receipt)
        if refusal is not None:
            approve_blocked = say(request, refusal)
            allowed.remove("approve")
    people = {
        u.id: u.name
        for u in db.scalars(
            select(User).where(User.id.in_({receipt.paid_by_id, receipt.created_by_id} - {None}))
        )
    }
    context = {
        "r": receipt,
        "campaign": planning.get(db, receipt.campaign_id),
        "history": list(reversed(history)),
        "allowed": allowed,
        "editable": editable,
        "approve_blocked": approve_blocked,
        "previews": {
            a.id: attachments.preview_type(a, settings.data_dir) for a in receipt.attachments
        },
        "people": people,
        "today": _today(settings).isoformat(),
        "money": format_amount,
        "errors": {},
        "action_form": {},
        **extra,
    }
    return render(request, "receipts/detail.html", context)


@router.get("/receipts/{receipt_id}")
def receipt_detail(
    request: Request, receipt_id: ReceiptId, user: Staff, db: Db, settings: AppSettings
) -> Response:
    return _detail(request, db, user, settings, receipt_id)


@router.post("/receipts/{receipt_id}/delete")
def delete_receipt(request: Request, receipt_id: ReceiptId, user: Enterer, db: Db) -> Response:
    campaign_id = receipts.get(db, receipt_id).campaign_id
    return act(
        request,
        db,
        lambda: receipts.delete(db, actor_for(request, user), receipt_id),
        done=lambda _: t(request, "Receipt #%(id)s deleted.", id=receipt_id),
        then=lambda _: f"/campaigns/{campaign_id}",
        back=f"/receipts/{receipt_id}",
    )


def _local(target: str, fallback: str) -> str:
    """Where to go after an action: a path on this site, else `fallback`."""
    return target if target.startswith("/") and not target.startswith("//") else fallback


@router.post("/receipts/{receipt_id}/{action}")
def receipt_action(
    request: Request,
    receipt_id: ReceiptId,
    action: str,
    user: Staff,
    db: Db,
    settings: AppSettings,
    raw: FormFields,
) -> Response:
    if action not in ACTIONS:
        raise ValidationFailed("receipt.action", "Unknown action '%(action)s'.", action=action[:40])
    form = {k: str(raw.get(k, "")) for k in ("reason", "paid_on", "payment_reference", "next")}
    actor = actor_for(request, user)
    problems = Problems()
    paid_on: date | None = None
    if action == "pay":
        paid_on = problems.check("paid_on", lambda: _day(form["paid_on"], N_("payment date")))

    def run() -> Receipt:
        if action != "pay":
            return receipts.transition(db, actor, receipt_id, action, form["reason"])
        assert paid_on is not None  # the problems were raised first
        return receipts.pay(
            db,
            actor,
            receipt_id,
            paid_on=paid_on,
            payment_reference=form["payment_reference"],
            today=_today(settings),
        )

    def done(receipt: Receipt) -> str:
        if action == "pay" and receipt.paid_on is not None:
            if receipt.payment_reference:
                return t(
                    request,
                    "Receipt #%(id)s paid on %(day)s, reference %(ref)s.",
                    id=receipt.id,
                    day=receipt.paid_on.isoformat(),
                    ref=receipt.payment_reference,
                )
            return t(
                request,
                "Receipt #%(id)s paid on %(day)s, without a payment reference.",
                id=receipt.id,
                day=receipt.paid_on.isoformat(),
            )
        if action == "submit":
            return t(request, "Receipt #%(id)s submitted.", id=receipt.id)
        if action == "approve":
            return t(request, "Receipt #%(id)s approved.", id=receipt.id)
        return t(request, "Receipt #%(id)s rejected.", id=receipt.id)

    then = _local(form["next"], f"/receipts/{receipt_id}")
    if action in ("submit", "approve"):  # a button: no field to mark
        return act(request, db, run, done=done, then=lambda _: then, back=then)
    return act(
        request,
        db,
        run,
        errors=problems,
        done=done,
        then=lambda _: then,
        again=lambda errors: _detail(
            request, db, user, settings, receipt_id, errors=errors, action_form=form
        ),
        names=("reason", *PAY_FIELDS),
    )


# --- Attachments ---------------------------------------------------------------------------


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
        headers={"Cache-Control": "private, no-store", "Content-Security-Policy": DOWNLOAD_CSP},
    )


@router.get("/receipts/attachments/{attachment_id}/inline")
def preview(
    request: Request, attachment_id: AttachmentId, user: Staff, db: Db, settings: AppSettings
) -> FileResponse:
    """A checked image or PDF shown in the page (`<img>`, `<iframe>`): served inline as the
    type its content was checked as. `web.headers` lets only this route be framed, by our
    own pages, and sandboxes it (`Content-Security-Policy: sandbox`)."""
    attachment, path, content_type = attachments.open_for_preview(
        db, actor_for(request, user), attachment_id, settings.data_dir
    )
    return FileResponse(
        path,
        media_type=content_type,
        filename=attachment.filename,
        content_disposition_type="inline",
        headers={"Cache-Control": "private, no-store"},
    )


# --- The finance queue ---------------------------------------------------------------------


def _queue(
    request: Request,
    db: Session,
    settings: Settings,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    failed: str | None = None,
    form: dict[str, str] | None = None,
    ticked: set[int] | None = None,
) -> Response:
    base = settings.base_currency

    def section(status: str) -> dict[str, Any]:
        query = (
            select(Receipt, Campaign.code)
            .join(Campaign, Campaign.id == Receipt.campaign_id)
            .where(Receipt.status == status)
            .order_by(Receipt.expense_date, Receipt.id)
        )
        rows = [(r, code) for r, code in db.execute(query)]
        booked = receipts.booked(db, [r for r, _ in rows], base)
        scale = 10 ** minor_units(base)
        return {
            "rows": rows,
            "booked": booked.amounts,
            # Booked amounts in whole minor units, for the live total of the ticked ones.
            "minor": {
                i: (None if a is None else int(a * scale)) for i, a in booked.amounts.items()
            },
            "total": booked.total(booked.amounts),
            "problem": booked.problem,
            "problem_text": None if booked.problem is None else say(request, booked.problem),
        }

    context = {
        "submitted": section(ReceiptStatus.SUBMITTED),
        "approved": section(ReceiptStatus.APPROVED),
        "base": base,
        "base_units": minor_units(base),
        "money": _money,
        "today": _today(settings).isoformat(),
        "errors": errors or {},
        "failed": failed,
        "form": form or {},
        "ticked": ticked or set(),
        "rates_page": rates.RATES_PAGE,
    }
    return render(request, "finance/queue.html", context, status_code=status_code)


@router.get("/finance/queue")
def finance_queue(request: Request, user: Finance, db: Db, settings: AppSettings) -> Response:
    return _queue(request, db, settings)


@router.post("/finance/queue")
def finance_bulk(
    request: Request, user: Finance, db: Db, settings: AppSettings, raw: FormFields
) -> Response:
    """One action on the ticked receipts, each its own business action: one refused does
    not stop the others, and each refusal is said. What they share (the reason to reject,
    the payment's date and reference) is checked first, at its field."""
    form = {k: str(raw.get(k, "")) for k in ("action", "reason", *PAY_FIELDS)}
    action = form["action"]
    ids: list[int] = []
    bad: list[str] = []
    for value in raw.getlist("ids"):
        try:
            receipt_id = bounds.parse_id(value if isinstance(value, str) else "", "receipt")
        except ValidationFailed as exc:
            bad.append(say(request, exc))
        else:
            if receipt_id is not None:
                ids.append(receipt_id)
    problems = Problems()
    if action not in ("approve", "reject", "pay") or not ids:
        problems.add(FORM, "Tick at least one receipt, then choose what to do.")
    paid_on: date | None = None
    if action == "pay":
        paid_on = problems.check("paid_on", lambda: _day(form["paid_on"], N_("payment date")))
    today = _today(settings)
    actor = actor_for(request, user)

    def done(result: receipts.Many) -> str:
        refusals = [
            *bad,
            *(
                f"#{rid}: {say(request, error)}"
                for (rid, _), error in zip(result.refused, result.errors, strict=True)
            ),
        ]
        if len(refusals) <= 2:
            for message in refusals:
                flash(request, message, "error")
        else:
            listed = "; ".join(refusals)
            flash(request, t(request, "Not done: %(listed)s", listed=listed), "error")
        n = len(result.done)
        if action == "approve":
            return t(request, "%(n)s receipt(s) approved.", n=n)
        if action == "reject":
            return t(request, "%(n)s receipt(s) rejected.", n=n)
        day = paid_on.isoformat() if paid_on else ""
        return t(request, "%(n)s receipt(s) paid on %(day)s.", n=n, day=day)

    def again(errors: dict[str, str]) -> Response:
        return _queue(
            request,
            db,
            settings,
            errors=errors,
            failed="approved" if action == "pay" else "submitted",
            form=form,
            ticked=set(ids),
        )

    return act(
        request,
        db,
        lambda: receipts.transition_many(
            db,
            actor,
            ids,
            action,
            form["reason"],
            paid_on=paid_on,
            payment_reference=form["payment_reference"],
            today=today,
        ),
        errors=problems,
        done=done,
        then=lambda _: "/finance/queue",
        again=again,
        names=("reason", *PAY_FIELDS),
    )
