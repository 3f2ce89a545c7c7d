"""Finance pages: close and reopen months, exchange rates, CSV imports."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select

from campaigns import imports, periods, rates
from campaigns.models import ClosedPeriod, ExchangeRate
from core.accounts.models import Role, User
from core.errors import Conflict, Problems, ValidationFailed
from core.money import format_decimal, parse_amount
from web.actions import act
from web.deps import AppSettings, Db, actor_for, require_roles
from web.pages.campaigns import currency_choices
from web.rendering import N_, render, say, t, tn

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
    actor = actor_for(request, user)
    refused: list[Conflict] = []

    def run() -> ClosedPeriod | None:
        if action not in ("close", "reopen"):
            raise ValidationFailed("period.action", "Choose close or reopen.")
        if action == "reopen":
            periods.reopen_month(db, actor, periods.parse_month(month))
            return None
        try:
            return periods.close_month(
                db, actor, periods.parse_month(month), settings.base_currency
            )
        except Conflict as exc:  # the page lists what keeps the month open: keep the details
            refused.append(exc)
            raise

    def again(errors: dict[str, str]) -> Response:
        # The page itself says why, with a link to each receipt (or to the rates).
        details = refused[0].details if refused else None
        context = _periods_context(db, user, settings)
        context["refusal"] = {
            "message": " ".join(errors.values()),
            "receipts": details if isinstance(details, list) else [],
            "fix_url": details.get("fix_url") if isinstance(details, dict) else None,
        }
        return render(request, "finance/periods.html", context)

    return act(
        request,
        db,
        run,
        done=lambda _: (
            t(request, "%(month)s closed.", month=month)
            if action == "close"
            else t(request, "%(month)s reopened.", month=month)
        ),
        then=lambda _: "/finance/periods",
        again=again,
    )


def _rates_page(
    request: Request,
    db: Db,
    settings: AppSettings,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    rows = list(
        db.scalars(
            select(ExchangeRate)
            .order_by(ExchangeRate.rate_date.desc(), ExchangeRate.currency)
            .limit(60)
        )
    )
    # The base currency needs no rate: it is not offered.
    choices = currency_choices(db, settings.base_currency, include_base=False)
    context = {"rates": rows, "currencies": choices, "form": form or {}, "errors": errors or {}}
    return render(request, "finance/rates.html", context)


@router.get("/finance/rates")
def rates_page(request: Request, user: Finance, db: Db, settings: AppSettings) -> Response:
    return _rates_page(request, db, settings)


RATE_FIELDS = ("currency", "rate_date", "rate")


def _rate_date(value: str) -> date:
    if not value:
        raise ValidationFailed("rate.date", "Enter the date of the rate.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("rate.date", "Enter the date as 2026-03-31.") from None


def _rate(value: str) -> Decimal:
    if not value.strip():
        raise ValidationFailed("rate.rate", "Enter the rate.")
    return parse_amount(value, N_("Rate"))


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
    form = {"currency": currency, "rate_date": rate_date, "rate": rate}
    problems = Problems()
    day = problems.check("rate_date", lambda: _rate_date(rate_date))
    value = problems.check("rate", lambda: _rate(rate))
    # The rate's own rules for whatever the form could read: every problem at once.
    rates.validate(
        problems, currency=currency, rate_date=day, rate=value, base=settings.base_currency
    )

    def save() -> ExchangeRate:
        assert day is not None and value is not None  # the problems were raised first
        return rates.set_rate(
            db, actor_for(request, user), currency, day, value, settings.base_currency
        )

    def done(row: ExchangeRate) -> str:
        # The rate as stored, not as typed.
        return t(
            request,
            "Rate saved: 1 %(currency)s = %(rate)s %(base)s on %(day)s.",
            currency=row.currency,
            rate=format_decimal(row.rate),
            base=settings.base_currency,
            day=row.rate_date.isoformat(),
        )

    return act(
        request,
        db,
        save,
        errors=problems,
        done=done,
        then=lambda _: "/finance/rates",
        again=lambda errors: _rates_page(request, db, settings, form=form, errors=errors),
        names=RATE_FIELDS,
        codes={
            "rate.date": "rate_date",
            "rate.date.range": "rate_date",
            "rate.base": "currency",
            "money.currency": "currency",
            "period.closed": "rate_date",
        },
    )


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
    name = file.filename or "the file"
    failed: list[imports.ImportFailed] = []

    def run() -> imports.ImportResult:
        if len(data) > MAX_CSV:
            raise ValidationFailed("import.size", "CSV files can be at most 5 MB; split it.")
        try:
            if kind == "receipts":
                return imports.import_receipts(db, actor, data)
            if kind == "revenue":
                return imports.import_revenue(db, actor, data)
            if kind == "rates":
                return imports.import_rates(db, actor, data, settings.base_currency)
        except imports.ImportFailed as exc:  # the page lists every bad line: keep them
            failed.append(exc)
            raise
        raise ValidationFailed("import.kind", "Unknown import '%(kind)s'.", kind=kind[:40])

    def done(result: imports.ImportResult) -> str:
        if result.kind == "receipts":
            return tn(
                request,
                "Imported %(num)s receipt from %(file)s as a draft: it is not submitted yet."
                " Check it and submit it for approval.",
                "Imported %(num)s receipts from %(file)s as drafts: they are not submitted yet."
                " Check each and submit it for approval.",
                result.rows,
                file=name,
            )
        return tn(
            request,
            "Imported %(num)s %(kind)s row from %(file)s.",
            "Imported %(num)s %(kind)s rows from %(file)s.",
            result.rows,
            kind=t(request, result.kind),
            file=name,
        )

    def then(result: imports.ImportResult) -> str:
        if result.kind == "receipts" and result.ids:
            # The imported receipts, among the person's drafts: each to check and submit.
            return f"/receipts/mine?status=draft&first={min(result.ids)}&last={max(result.ids)}"
        return "/imports"

    def again(errors: dict[str, str]) -> Response:
        rows = failed[0].row_errors if failed else ()
        details = failed[0].details if failed and rows else None
        lines = [
            {"line": row["line"], "message": say(request, error)}
            for row, error in zip(details if isinstance(details, list) else [], rows, strict=True)
        ]
        message = (
            tn(
                request,
                "%(num)s bad row; it is listed below with its line number.",
                "%(num)s bad rows; each is listed below with its line number.",
                len(lines),
            )
            if lines
            else " ".join(errors.values())
        )
        context = _import_context(
            user, failed=kind, message=message, errors=lines, filename=file.filename
        )
        return render(request, "finance/imports.html", context)

    return act(request, db, run, done=done, then=then, again=again)
