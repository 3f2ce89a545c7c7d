"""Finance pages: close and reopen months, exchange rates, CSV imports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from campaigns import imports, periods, rates
from campaigns.models import ExchangeRate
from core.accounts.models import Role, User
from core.errors import RetainError, ValidationFailed
from core.money import format_decimal, parse_amount
from web.deps import AppSettings, Db, actor_for, require_roles
from web.errors import status_for
from web.pages.campaigns import currency_choices
from web.rendering import flash, render

router = APIRouter()
Finance = Annotated[User, Depends(require_roles(Role.FINANCE, Role.ADMIN))]
Enterer = Annotated[User, Depends(require_roles(Role.MARKETER, Role.FINANCE))]
MAX_CSV = 5 * 1024 * 1024


def _periods_context(db: Db, user: User, settings: AppSettings) -> dict[str, Any]:
    today = datetime.now(settings.zone).date().replace(day=1)
    closed = set(periods.closed_months(db))
    months, month = [], today
    for _ in range(18):
        months.append({"month": month, "closed": month in closed})
        month = (month.replace(day=1) - date.resolution).replace(day=1)
    return {
        "months": months,
        "is_admin": Role.ADMIN in user.roles,
        "is_finance": Role.FINANCE in user.roles,
    }


@router.get("/finance/periods")
def period_page(request: Request, user: Finance, db: Db, settings: AppSettings) -> Response:
    return render(request, "finance/periods.html", _periods_context(db, user, settings))


@router.post("/finance/periods/{action}")
def period_action(
    request: Request,
    action: str,
    user: Finance,
    db: Db,
    settings: AppSettings,
    month: Annotated[str, Form()] = "",
) -> Response:
    try:
        actor = actor_for(request, user)
        if action == "close":
            periods.close_month(db, actor, periods.parse_month(month), settings.base_currency)
        elif action == "reopen":
            periods.reopen_month(db, actor, periods.parse_month(month))
        else:
            raise ValidationFailed("period.action", "Choose close or reopen.")
    except RetainError as exc:
        db.rollback()
        if exc.code in ("period.receipts_pending", "period.rate_missing"):
            # The page itself says why, with a link to each receipt (or to the rates).
            context = _periods_context(db, user, settings)
            context["refusal"] = {
                "message": exc.message,
                "receipts": exc.details if isinstance(exc.details, list) else [],
                "fix_url": exc.details.get("fix_url") if isinstance(exc.details, dict) else None,
            }
            return render(request, "finance/periods.html", context, status_code=status_for(exc))
        flash(request, exc.message, "error")
    else:
        db.commit()
        flash(request, f"{month} {'closed' if action == 'close' else 'reopened'}.")
    return RedirectResponse("/finance/periods", status_code=303)


@router.get("/finance/rates")
def rates_page(request: Request, user: Finance, db: Db, settings: AppSettings) -> Response:
    rows = list(
        db.scalars(
            select(ExchangeRate)
            .order_by(ExchangeRate.rate_date.desc(), ExchangeRate.currency)
            .limit(60)
        )
    )
    # The base currency needs no rate: it is not offered.
    choices = currency_choices(db, settings.base_currency, include_base=False)
    return render(request, "finance/rates.html", {"rates": rows, "currencies": choices})


@router.post("/finance/rates")
def set_rate(
    request: Request,
    user: Finance,
    db: Db,
    settings: AppSettings,
    currency: Annotated[str, Form()] = "",
    rate_date: Annotated[str, Form()] = "",
    rate: Annotated[str, Form()] = "",
) -> Response:
    try:
        try:
            day = date.fromisoformat(rate_date) if rate_date else None
        except ValueError:
            raise ValidationFailed("rate.date", "Enter the date as 2026-03-31.") from None
        if day is None:
            raise ValidationFailed("rate.date", "Enter the date of the rate.")
        if not rate.strip():
            raise ValidationFailed("rate.rate", "Enter the rate.")
        row = rates.set_rate(
            db,
            actor_for(request, user),
            currency,
            day,
            parse_amount(rate, "Rate"),
            settings.base_currency,
        )
    except RetainError as exc:
        db.rollback()
        flash(request, exc.message, "error")
    else:
        db.commit()
        # The rate as stored, not as typed.
        stored = f"1 {row.currency} = {format_decimal(row.rate)} {settings.base_currency}"
        flash(request, f"Rate saved: {stored} on {row.rate_date.isoformat()}.")
    return RedirectResponse("/finance/rates", status_code=303)


@router.get("/imports")
def imports_page(request: Request, user: Enterer, db: Db) -> Response:
    return render(request, "finance/imports.html", _import_context(user))


def _import_context(user: User, **extra: Any) -> dict[str, Any]:
    return {
        "kinds": {
            "receipts": imports.RECEIPT_COLUMNS,
            **(
                {"revenue": imports.REVENUE_COLUMNS, "rates": imports.RATE_COLUMNS}
                if Role.FINANCE in user.roles
                else {}
            ),
        },
        **extra,
    }


@router.post("/imports/{kind}")
def run_import(
    request: Request, kind: str, file: UploadFile, user: Enterer, db: Db, settings: AppSettings
) -> Response:
    # A spooled temporary file: read here, in the worker thread, never past the limit.
    data = file.file.read(MAX_CSV + 1)
    actor = actor_for(request, user)
    try:
        if len(data) > MAX_CSV:
            raise ValidationFailed("import.size", "CSV files can be at most 5 MB; split it.")
        if kind == "receipts":
            result = imports.import_receipts(db, actor, data)
        elif kind == "revenue":
            result = imports.import_revenue(db, actor, data)
        elif kind == "rates":
            result = imports.import_rates(db, actor, data, settings.base_currency)
        else:
            raise ValidationFailed("import.kind", f"Unknown import '{kind}'.")
    except RetainError as exc:
        db.rollback()
        errors = exc.details if isinstance(exc.details, list) else []
        context = _import_context(
            user, failed=kind, message=exc.message, errors=errors, filename=file.filename
        )
        return render(request, "finance/imports.html", context, status_code=status_for(exc))
    db.commit()
    flash(request, f"Imported {result.rows} {kind} row(s) from {file.filename}.")
    return RedirectResponse("/imports", status_code=303)
