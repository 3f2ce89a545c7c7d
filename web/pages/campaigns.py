"""Campaign pages: list (search, filters, sort), create, detail with KPIs, receipts, revenue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import planning, report_data, revenue
from campaigns.models import (
    Campaign,
    CampaignStatus,
    Channel,
    CostCategory,
    ExchangeRate,
    Receipt,
    RevenueRecord,
)
from campaigns.reports import COLUMNS, RoiRow
from core import bounds, money
from core.accounts.models import Role, User
from core.errors import Problems, RetainError, ValidationFailed
from core.money import format_amount, format_decimal, minor_units, parse_amount
from core.text import Phrase
from loyalty import reports as loyalty_reports
from loyalty.campaign_sales import campaign_sales
from web.actions import act
from web.deps import AppSettings, Db, actor_for, require_roles
from web.forms import FormFields
from web.pages.reports import chart_data, filter_day, filter_id, filter_text, fix_of
from web.pages.segments import target_context
from web.rendering import N_, render, say, t

router = APIRouter(prefix="/campaigns")
Staff = Annotated[User, Depends(require_roles(Role.MARKETER, Role.FINANCE, Role.ADMIN))]
Planner = Annotated[User, Depends(require_roles(Role.MARKETER, Role.ADMIN))]
Finance = Annotated[User, Depends(require_roles(Role.FINANCE))]
CampaignId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
SORTS = {
    "start": (Campaign.starts_on.desc(), Campaign.code),
    "name": (Campaign.name, Campaign.code),
    "budget": (Campaign.budget_amount.desc(), Campaign.code),
    "code": (Campaign.code,),
}
# Stored words the campaign pages show through `_()` (campaign and receipt statuses, cost
# categories, who can fix a report's figures: `fix_of`): listed here so `pybabel extract` puts
# them in the staff catalog. (Report headers are marked where they are defined.)
STATUS_WORDS = (
    N_("draft"),
    N_("planned"),
    N_("active"),
    N_("ended"),
    N_("cancelled"),
    N_("submitted"),
    N_("approved"),
    N_("rejected"),
    N_("paid"),
)
CATEGORY_WORDS = (N_("media"), N_("creative"), N_("gifts"), N_("events"), N_("staff"))
FIXER_WORDS = (N_("finance"),)


def _choices(db: Session) -> dict[str, Any]:
    return {
        "channels": [(c.code, c.name) for c in planning.list_channels(db, active_only=True)],
        "owners": db.execute(select(User.id, User.name).order_by(User.name)).all(),
        "statuses": [s.value for s in CampaignStatus],
        "categories": [c.value for c in CostCategory],
    }


def currency_choices(
    db: Session, base: str, *, include_base: bool = True
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The currencies a form offers (`_currency.html`'s `currency_select`): the base
    currency, then those with exchange rates, then the rest of ISO 4217."""
    rated = db.scalars(select(ExchangeRate.currency).distinct())
    return money.currency_choices(base, rated, include_base=include_base)


def _form_choices(db: Session, settings: AppSettings) -> dict[str, Any]:
    return {**_choices(db), "currencies": currency_choices(db, settings.base_currency)}


@dataclass(frozen=True, slots=True)
class FiguresProblem:
    """Why a page's report figures could not be computed, and who can fix that, where
    (`web.pages.reports.fix_of`: a missing or wrong exchange rate, finance, the rates page)."""

    reason: str
    fix: dict[str, str] | None


def _problem(request: Request, exc: RetainError) -> FiguresProblem:
    return FiguresProblem(reason=say(request, exc), fix=fix_of(exc))


def _kpis(
    request: Request, db: Session, settings: AppSettings, f: report_data.ReportFilter
) -> tuple[dict[str, RoiRow], FiguresProblem | None]:
    """Report rows by campaign code, or none and why (e.g. a missing rate), for the page to
    say instead of showing blanks."""
    try:
        report = loyalty_reports.roi(db, settings.base_currency, f, zone=settings.zone)
    except RetainError as exc:
        return {}, _problem(request, exc)
    return {r.key["code"]: r for r in report.rows}, None


@router.get("")
def list_campaigns(
    request: Request,
    user: Staff,
    db: Db,
    settings: AppSettings,
    q: str = "",
    status: str = "",
    channel: str = "",
    owner: str = "",
    sort: str = "start",
    start: str = "",
    end: str = "",
) -> Response:
    # Bad filters are named on the page and ignored, and the answer is a 422.
    problems: list[str] = []
    search = filter_text(request, q.strip(), N_("The search"), bounds.MAX_SEARCH, problems)
    status_ = filter_text(
        request, status, N_("The status"), bounds.length(Campaign.status), problems
    )
    channel_ = filter_text(
        request, channel, N_("The channel"), bounds.length(Channel.code), problems
    )
    owner_id = filter_id(request, owner, "owner", problems)
    period_start = filter_day(request, start, problems)
    period_end = filter_day(request, end, problems)
    query = select(Campaign).join(Channel, Channel.id == Campaign.channel_id)
    if search:
        query = query.where(
            Campaign.name.icontains(search, autoescape=True)
            | Campaign.code.icontains(search, autoescape=True)
        )
    if status_:
        query = query.where(Campaign.status == status_)
    if channel_:
        query = query.where(Channel.code == channel_)
    if owner_id:
        query = query.where(Campaign.owner_id == owner_id)
    if period_start:  # campaigns running at any time in the period
        query = query.where(Campaign.ends_on >= period_start)
    if period_end:
        query = query.where(Campaign.starts_on <= period_end)
    rows = list(db.scalars(query.order_by(*SORTS.get(sort, SORTS["start"])).limit(500)))
    owners = {user_id: name for user_id, name in db.execute(select(User.id, User.name))}
    # Lifetime figures of exactly the campaigns listed.
    kpis, figures_problem = _kpis(
        request, db, settings, report_data.ReportFilter(campaign_ids=tuple(c.id for c in rows))
    )
    params = {
        "q": q,
        "status": status,
        "channel": channel,
        "owner": owner,
        "sort": sort,
        "start": start,
        "end": end,
    }
    return render(
        request,
        "campaigns/list.html",
        {
            "campaigns": rows,
            "owners_by_id": owners,
            "kpis": kpis,
            "figures_problem": figures_problem,
            "roles": user.roles,
            "params": params,
            "problems": problems,
            "can_plan": user.has_any(Role.MARKETER, Role.ADMIN),
            **_choices(db),
        },
        status_code=422 if problems else 200,
    )


@router.get("/new")
def new_campaign(request: Request, user: Planner, db: Db, settings: AppSettings) -> Response:
    return render(request, "campaigns/new.html", {"form": {}, **_form_choices(db, settings)})


def _amount(value: str, label: Phrase, missing: ValidationFailed | None = None) -> Decimal | None:
    """An amount field: "1234.56" or "1,234.56" (`money.parse_amount`); a refusal names
    the field by its `label` as the form shows it. Empty is None, or refused with `missing`
    (the field is required)."""
    if not value.strip():
        if missing is not None:
            raise missing
        return None
    return parse_amount(value, label)


def _day(value: str, refusal: ValidationFailed) -> date:
    """A date field; `refusal` says which one is not a date."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise refusal from None


def _orders(value: str) -> int | None:
    """A count of orders: empty, or a whole number the INTEGER column holds."""
    value = value.strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(revenue.MAX_ORDERS)):
        raise ValidationFailed(
            "revenue.orders",
            "Orders must be a whole number up to %(max)s.",
            max=f"{revenue.MAX_ORDERS:,}",
        )
    return int(value)


# Each budget line's name in a refusal about its amount.
BUDGET_LINES = {
    CostCategory.MEDIA: N_("Media budget line"),
    CostCategory.CREATIVE: N_("Creative budget line"),
    CostCategory.GIFTS: N_("Gifts budget line"),
    CostCategory.EVENTS: N_("Events budget line"),
    CostCategory.STAFF: N_("Staff budget line"),
}


FIELDS = (
    "name",
    "code",
    "channel",
    "owner_id",
    "status",
    "starts_on",
    "ends_on",
    "budget",
    "currency",
    "expected_revenue",
    *(f"line_{c.value}" for c in CostCategory),
    "objective",
    "target_segment",
    "target_region",
    "target_age_band",
    "target_occupation",
    "notes",
)
# Refusals of `planning` whose code does not start with the field's name.
CODES = {
    "campaign.code_taken": "code",
    "campaign.dates": "ends_on",
    "channel.unknown": "channel",
    "owner.invalid": "owner_id",
}


def _fields(
    request: Request, form: dict[str, str], user: User, settings: AppSettings, errors: Problems
) -> dict[str, Any]:
    """Campaign fields from the form, parsed; each bad value is noted against its field."""
    lines = {
        c.value: errors.check(
            f"line_{c.value}",
            lambda c=c: _amount(  # type: ignore[misc]
                form.get(f"line_{c.value}", ""), BUDGET_LINES[c]
            ),
        )
        for c in CostCategory
    }
    return {
        "code": form.get("code", ""),
        "name": form.get("name", ""),
        "channel": form.get("channel", ""),
        "owner_id": errors.check("owner_id", lambda: bounds.parse_id(form.get("owner_id"), "owner"))
        or user.id,
        "starts_on": errors.check(
            "starts_on",
            lambda: _day(
                form.get("starts_on", ""),
                ValidationFailed("form.date", "Enter the start date as a date."),
            ),
        ),
        "ends_on": errors.check(
            "ends_on",
            lambda: _day(
                form.get("ends_on", ""),
                ValidationFailed("form.date", "Enter the end date as a date."),
            ),
        ),
        "budget": errors.check(
            "budget",
            lambda: _amount(
                form.get("budget", ""),
                N_("Budget"),
                ValidationFailed("form.amount", "Enter the budget."),
            ),
        )
        or Decimal(0),
        "currency": form.get("currency") or settings.base_currency,
        "expected_revenue": errors.check(
            "expected_revenue",
            lambda: _amount(form.get("expected_revenue", ""), N_("Expected revenue")),
        ),
        "objective": form.get("objective", ""),
        "target_segment": form.get("target_segment", ""),
        "target_region": form.get("target_region") or None,
        "target_age_band": form.get("target_age_band") or None,
        "target_occupation": form.get("target_occupation") or None,
        "notes": form.get("notes", ""),
        "status": form.get("status") or "draft",
        "budget_lines": {k: v for k, v in lines.items() if v is not None},
    }


def _form_of(c: Campaign) -> dict[str, str]:
    form = {
        k: str(getattr(c, k) or "")
        for k in (
            "code",
            "name",
            "owner_id",
            "starts_on",
            "ends_on",
            "currency",
            "objective",
            "target_segment",
            "target_region",
            "target_age_band",
            "target_occupation",
            "notes",
            "status",
        )
    }
    places = minor_units(c.currency)  # and every further decimal stored: never rounded here
    form |= {
        "channel": c.channel.code,
        "budget": format_decimal(c.budget_amount, places),
        "expected_revenue": ""
        if c.expected_revenue is None
        else format_decimal(c.expected_revenue, places),
    }
    form |= {f"line_{b.category}": format_decimal(b.amount, places) for b in c.budget_lines}
    return form


def _stored(request: Request, c: Campaign) -> str:
    """The amounts as stored, for the confirmation: what was read, not what was typed."""
    budget = format_amount(c.budget_amount, c.currency)
    if c.expected_revenue is None:
        return t(request, "Budget %(budget)s.", budget=budget)
    return t(
        request,
        "Budget %(budget)s, expected revenue %(expected)s.",
        budget=budget,
        expected=format_amount(c.expected_revenue, c.currency),
    )


def _form_page(
    request: Request,
    db: Session,
    settings: AppSettings,
    form: dict[str, str],
    errors: dict[str, str],
    editing: Campaign | None = None,
) -> Response:
    context = {"form": form, "errors": errors, "editing": editing}
    return render(request, "campaigns/new.html", context | _form_choices(db, settings))


@router.post("")
def create_campaign(
    request: Request, user: Planner, db: Db, settings: AppSettings, raw: FormFields
) -> Response:
    form = {k: str(v) for k, v in raw.items()}
    problems = Problems()
    fields = _fields(request, form, user, settings, problems)
    planning.validate(db, problems, fields)  # with the form's own problems: all at once
    return act(
        request,
        db,
        lambda: planning.create(db, actor_for(request, user), **fields),
        errors=problems,
        done=lambda c: (
            t(request, "Campaign %(code)s created.", code=c.code) + " " + _stored(request, c)
        ),
        then=lambda c: f"/campaigns/{c.id}",
        again=lambda errors: _form_page(request, db, settings, form, errors),
        names=FIELDS,
        codes=CODES,
    )


@router.get("/{campaign_id}/edit")
def edit_campaign(
    request: Request, campaign_id: CampaignId, user: Planner, db: Db, settings: AppSettings
) -> Response:
    campaign = planning.get(db, campaign_id)
    return render(
        request,
        "campaigns/new.html",
        {"form": _form_of(campaign), "editing": campaign, **_form_choices(db, settings)},
    )


@router.post("/{campaign_id}")
def save_campaign(
    request: Request,
    campaign_id: CampaignId,
    user: Planner,
    db: Db,
    settings: AppSettings,
    raw: FormFields,
) -> Response:
    campaign = planning.get(db, campaign_id)
    form = {k: str(v) for k, v in raw.items()}
    problems = Problems()
    fields = _fields(request, form, user, settings, problems)
    planning.validate(db, problems, fields, campaign)  # with the form's own problems
    return act(
        request,
        db,
        lambda: planning.update(db, actor_for(request, user), campaign_id, **fields),
        errors=problems,
        done=lambda c: t(request, "Campaign saved.") + " " + _stored(request, c),
        then=lambda c: f"/campaigns/{c.id}",
        again=lambda errors: _form_page(request, db, settings, form, errors, campaign),
        names=FIELDS,
        codes=CODES,
    )


@router.get("/{campaign_id}")
def campaign_detail(
    request: Request, campaign_id: CampaignId, user: Staff, db: Db, settings: AppSettings
) -> Response:
    return render(
        request, "campaigns/detail.html", _detail(request, db, settings, user, campaign_id)
    )


def _detail(
    request: Request, db: Session, settings: AppSettings, user: User, campaign_id: int
) -> dict[str, Any]:
    """What the campaign page shows: its figures (or why they cannot be computed), receipts,
    revenue records and purchase revenue."""
    campaign = planning.get(db, campaign_id)
    only = report_data.ReportFilter(campaign_ids=(campaign.id,))
    problem: FiguresProblem | None = None
    kpi, chart, revenue_total = None, None, None
    revenue_rows: list[tuple[RevenueRecord, Decimal | None]] | None = None
    try:
        report = loyalty_reports.roi(db, settings.base_currency, only, zone=settings.zone)
        kpi = report.rows[0] if report.rows else None
        chart = chart_data(
            report,
            loyalty_reports.roi(db, settings.base_currency, only, "month", zone=settings.zone),
        )
        booked = report_data.booked_revenue_records(db, campaign.id, settings.base_currency)
        revenue_total = sum((amount for _, amount in booked), Decimal(0))
        revenue_rows = list(booked)
    except RetainError as exc:  # e.g. a missing rate: the page says which, who fixes it, where
        problem = _problem(request, exc)
    if revenue_rows is None:  # unbooked: listed in their own currencies only
        revenue_rows = [(r, None) for r in report_data.revenue_records(db, campaign.id)]
    # Booked when recorded: shown even when the report cannot be computed.
    sales = campaign_sales(db, campaign.id, settings.base_currency, settings.zone)
    receipt_rows = list(
        db.scalars(
            select(Receipt)
            .where(Receipt.campaign_id == campaign.id)
            .order_by(Receipt.expense_date.desc(), Receipt.id.desc())
        )
    )
    owner = db.get(User, campaign.owner_id)
    return {
        "c": campaign,
        "kpi": kpi,
        "chart": chart,
        "columns": COLUMNS,
        "receipts": receipt_rows,
        "revenue": revenue_rows,
        "revenue_total": revenue_total,
        "sales": sales,
        "figures_problem": problem,
        "roles": user.roles,
        "owner": owner,
        "statuses": [s.value for s in CampaignStatus],
        "can_plan": user.has_any(Role.MARKETER, Role.ADMIN),
        "is_finance": Role.FINANCE in user.roles,
        "can_enter": user.has_any(Role.MARKETER, Role.FINANCE),
        "currencies": currency_choices(db, settings.base_currency),
        **target_context(db, campaign.id),  # the "Target segment" box
    }


@router.post("/{campaign_id}/status")
def change_status(
    request: Request,
    campaign_id: CampaignId,
    user: Planner,
    db: Db,
    status: Annotated[str, Form()] = "",
) -> Response:
    return act(
        request,
        db,
        lambda: planning.set_status(db, actor_for(request, user), campaign_id, status),
        done=lambda c: t(
            request, "%(code)s is now %(status)s.", code=c.code, status=t(request, c.status)
        ),
        then=lambda c: f"/campaigns/{c.id}",
        back=f"/campaigns/{campaign_id}",
    )


REVENUE_FIELDS = ("received_on", "amount", "currency", "orders", "reference")


@router.post("/{campaign_id}/revenue")
def add_revenue(
    request: Request,
    campaign_id: CampaignId,
    user: Finance,
    db: Db,
    settings: AppSettings,
    raw: FormFields,
) -> Response:
    form = {k: str(raw.get(k, "")) for k in REVENUE_FIELDS}
    problems = Problems()
    received_on = problems.check(
        "received_on",
        lambda: _day(
            form["received_on"], ValidationFailed("form.date", "Enter the date received as a date.")
        ),
    )
    amount = problems.check(
        "amount",
        lambda: _amount(
            form["amount"], N_("Amount"), ValidationFailed("form.amount", "Enter the amount.")
        ),
    )
    orders = problems.check("orders", lambda: _orders(form["orders"]))
    currency = form["currency"] or settings.base_currency
    # The record's own rules for whatever the form could read: every problem at once.
    revenue.validate(
        db,
        problems,
        campaign_id=campaign_id,
        received_on=received_on,
        amount=amount,
        currency=currency,
        reference=form["reference"],
        orders=orders,
    )

    def record() -> RevenueRecord:
        assert received_on is not None and amount is not None  # problems.raise_any ran first
        return revenue.record(
            db,
            actor_for(request, user),
            campaign_id=campaign_id,
            received_on=received_on,
            amount=amount,
            currency=currency,
            reference=form["reference"],
            orders=orders,
        )

    def again(errors: dict[str, str]) -> Response:
        # The page again with the form open, every input kept, each problem at its field.
        context = _detail(request, db, settings, user, campaign_id)
        return render(
            request, "campaigns/detail.html", context | {"revenue_form": form, "errors": errors}
        )

    return act(
        request,
        db,
        record,
        errors=problems,
        done=lambda row: t(
            request, "Revenue recorded: %(amount)s.", amount=format_amount(row.amount, row.currency)
        ),
        then=lambda row: f"/campaigns/{campaign_id}#revenue",
        again=again,
        names=REVENUE_FIELDS,
        codes={"revenue.orders": "orders", "period.closed": "received_on"},
    )
