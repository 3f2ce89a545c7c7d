"""API: campaigns, receipts and attachments, revenue records, exchange rates, the ROI report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select

from attribution import roi as basis_roi
from campaigns import (
    attachments,
    exports,
    periods,
    planning,
    rates,
    receipts,
    report_data,
    revenue,
)
from campaigns.models import Campaign, CampaignStatus, ExchangeRate, RevenueRecord
from campaigns.receipts import ReceiptInput
from campaigns.reports import GroupBy
from campaigns.schemas import (
    AttachmentOut,
    CampaignIn,
    CampaignOut,
    ChannelCode,
    Currency,
    Day,
    PayIn,
    RateIn,
    ReceiptIn,
    ReceiptOut,
    RevenueIn,
    Search,
    TransitionIn,
)
from core import bounds
from core.accounts.models import Role
from core.errors import PermissionDenied, ValidationFailed
from loyalty import campaign_costs
from web.api.auth import Caller, require
from web.api.responses import errors
from web.deps import AppSettings, Db


def known_query_only(request: Request) -> None:
    """Refuse query parameters the operation does not take: a typo such as `?stauts=paid`
    would otherwise be ignored and answer with everything."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    known = {param.alias for param in dependant.query_params}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise ValidationFailed(
            "query.unknown",
            f"Unknown query parameter '{unknown[0][:40]}'; this operation takes: {takes}.",
            [{"field": name[:40], "message": "unknown query parameter"} for name in unknown[:10]],
        )


router = APIRouter(tags=["campaigns"], dependencies=[Depends(known_query_only)])
STAFF = (Role.MARKETER, Role.FINANCE, Role.ADMIN)
Reader = Annotated[Caller, Depends(require(scope="campaigns:read", roles=STAFF))]
Planner = Annotated[
    Caller, Depends(require(scope="campaigns:write", roles=(Role.MARKETER, Role.ADMIN)))
]
Enterer = Annotated[
    Caller, Depends(require(scope="receipts:write", roles=(Role.MARKETER, Role.FINANCE)))
]
Finance = Annotated[Caller, Depends(require(scope="finance:write", roles=(Role.FINANCE,)))]
Admin = Annotated[Caller, Depends(require(scope="finance:write", roles=(Role.ADMIN,)))]
MAX_UPLOAD = attachments.MAX_BYTES + 1


def _record_id(what: str) -> Any:
    return Path(ge=1, le=bounds.MAX_ID, description=f"The {what}'s id")


CampaignId = Annotated[int, _record_id("campaign")]
ReceiptId = Annotated[int, _record_id("receipt")]
AttachmentId = Annotated[int, _record_id("attachment")]
Month = Annotated[
    str, Path(pattern=r"^[0-9]{4}-[0-9]{2}$", examples=["2026-03"], description="YYYY-MM")
]
# Who may approve and pay, said once for the OpenAPI.
PERSON_ONLY = (
    " Only a finance person signed in to Retain can do this: an API key is refused (403,"
    " receipt.person_only)."
)
FOUR_EYES = (
    " Four eyes: whoever entered, edited or submitted the receipt, or is the employee it"
    " reimburses, cannot approve it (403, receipt.four_eyes)."
)


@router.get("/campaigns", response_model=list[CampaignOut], summary="List campaigns")
def list_campaigns(
    caller: Reader,
    db: Db,
    status: CampaignStatus | None = None,
    q: Annotated[Search | None, Query()] = None,
) -> list[Campaign]:
    query = select(Campaign).order_by(Campaign.starts_on.desc(), Campaign.code)
    if status:
        query = query.where(Campaign.status == status)
    if q:
        query = query.where(
            Campaign.name.icontains(q, autoescape=True)
            | Campaign.code.icontains(q, autoescape=True)
        )
    return list(db.scalars(query.limit(500)))


@router.post(
    "/campaigns",
    response_model=CampaignOut,
    status_code=201,
    summary="Plan a campaign",
    responses=errors(400, 409),
)
def create_campaign(body: CampaignIn, caller: Planner, db: Db) -> Campaign:
    owner_id = body.owner_id or caller.actor.user_id
    if owner_id is None:
        raise ValidationFailed("campaign.owner", "Give owner_id: an API key has no user.")
    campaign = planning.create(
        db,
        caller.actor,
        owner_id=owner_id,
        **body.model_dump(exclude={"owner_id"}),
    )
    db.commit()
    return campaign


@router.put(
    "/campaigns/{campaign_id}",
    response_model=CampaignOut,
    summary="Edit a campaign",
    responses=errors(400, 404, 409),
)
def update_campaign(campaign_id: CampaignId, body: CampaignIn, caller: Planner, db: Db) -> Campaign:
    fields = body.model_dump(exclude={"owner_id"} if body.owner_id is None else set())
    campaign = planning.update(db, caller.actor, campaign_id, **fields)
    db.commit()
    return campaign


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, responses=errors(404))
def get_campaign(campaign_id: CampaignId, caller: Reader, db: Db) -> Campaign:
    return planning.get(db, campaign_id)


@router.post(
    "/receipts",
    response_model=ReceiptOut,
    status_code=201,
    summary="Enter a receipt",
    responses=errors(400, 409),
)
def create_receipt(body: ReceiptIn, caller: Enterer, db: Db) -> Any:
    receipt = receipts.create(db, caller.actor, ReceiptInput(**body.model_dump()))
    db.commit()
    return receipt


@router.delete(
    "/receipts/{receipt_id}",
    status_code=204,
    summary="Delete a draft or rejected receipt",
    responses=errors(404, 409),
)
def delete_receipt(receipt_id: ReceiptId, caller: Enterer, db: Db) -> Response:
    receipts.delete(db, caller.actor, receipt_id)
    db.commit()
    return Response(status_code=204)


@router.get("/receipts/{receipt_id}", response_model=ReceiptOut, responses=errors(404))
def get_receipt(receipt_id: ReceiptId, caller: Reader, db: Db) -> Any:
    return receipts.get(db, receipt_id)


def _transition(action: str, caller: Caller, db: Db, receipt_id: int, reason: str | None) -> Any:
    receipt = receipts.transition(db, caller.actor, receipt_id, action, reason)
    db.commit()
    return receipt


@router.post(
    "/receipts/{receipt_id}/submit",
    response_model=ReceiptOut,
    summary="Submit a receipt for approval",
    responses=errors(404, 409),
)
def submit_receipt(receipt_id: ReceiptId, caller: Enterer, db: Db) -> Any:
    return _transition("submit", caller, db, receipt_id, None)


@router.post(
    "/receipts/{receipt_id}/approve",
    response_model=ReceiptOut,
    summary="Approve a submitted receipt",
    description="Approve a submitted receipt." + PERSON_ONLY + FOUR_EYES,
    responses=errors(404, 409),
)
def approve_receipt(receipt_id: ReceiptId, caller: Finance, db: Db) -> Any:
    return _transition("approve", caller, db, receipt_id, None)


@router.post(
    "/receipts/{receipt_id}/reject",
    response_model=ReceiptOut,
    summary="Reject a submitted receipt, with the reason",
    responses=errors(400, 404, 409),
)
def reject_receipt(receipt_id: ReceiptId, body: TransitionIn, caller: Finance, db: Db) -> Any:
    return _transition("reject", caller, db, receipt_id, body.reason)


@router.post(
    "/receipts/{receipt_id}/pay",
    response_model=ReceiptOut,
    summary="Mark an approved receipt paid, with the day and the payment's reference",
    description="Mark an approved receipt paid on `paid_on` with `payment_reference` (both"
    " optional in the body, and the body itself may be left out, as older clients do:"
    " `paid_on` is then today in the configured time zone, and no reference is recorded)."
    " `paid_on` cannot be after today there (422, receipt.paid_on)." + PERSON_ONLY,
    responses=errors(404, 409),
)
def pay_receipt(
    receipt_id: ReceiptId,
    caller: Finance,
    db: Db,
    settings: AppSettings,
    body: Annotated[PayIn | None, Body()] = None,
) -> Any:
    today = datetime.now(settings.zone).date()
    receipt = receipts.pay(
        db,
        caller.actor,
        receipt_id,
        paid_on=(body.paid_on if body and body.paid_on else today),
        payment_reference=body.payment_reference if body else None,
        today=today,
    )
    db.commit()
    return receipt


@router.post(
    "/receipts/{receipt_id}/attachments",
    response_model=AttachmentOut,
    status_code=201,
    summary="Attach a file (PDF, JPEG, PNG or WebP, at most 10 MB) to a draft receipt",
    responses=errors(400, 404, 409),
)
def upload_attachment(
    receipt_id: ReceiptId, file: UploadFile, caller: Enterer, db: Db, settings: AppSettings
) -> Any:
    # A spooled temporary file, read in the worker thread: never more than the limit into memory.
    data = file.file.read(MAX_UPLOAD)
    attachment = attachments.add(
        db, caller.actor, receipt_id, file.filename or "attachment", data, settings.data_dir
    )
    db.commit()
    return attachment


@router.get("/attachments/{attachment_id}", response_class=FileResponse, responses=errors(404))
def download_attachment(
    attachment_id: AttachmentId, caller: Reader, db: Db, settings: AppSettings
) -> FileResponse:
    attachment, path = attachments.open_for_download(
        db, caller.actor, attachment_id, settings.data_dir
    )
    return FileResponse(
        path,
        media_type=attachment.content_type,
        filename=attachment.filename,
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            # Never rendered by a browser, and could run nothing if it were.
            "Content-Security-Policy": "sandbox; default-src 'none'; frame-ancestors 'none'",
        },
    )


@router.post(
    "/revenue", status_code=201, summary="Record revenue (回款记录)", responses=errors(400)
)
def create_revenue(body: RevenueIn, caller: Finance, db: Db) -> dict[str, int]:
    row = revenue.record(db, caller.actor, **body.model_dump())
    db.commit()
    return {"id": row.id}


@router.get("/revenue", summary="Revenue records of a campaign", responses=errors(404))
def list_revenue(
    campaign_id: Annotated[int, Query(ge=1, le=bounds.MAX_ID)], caller: Reader, db: Db
) -> list[dict[str, Any]]:
    planning.get(db, campaign_id)
    rows = db.scalars(
        select(RevenueRecord)
        .where(RevenueRecord.campaign_id == campaign_id)
        .order_by(RevenueRecord.received_on)
    )
    return [
        {
            "id": r.id,
            "received_on": str(r.received_on),
            "amount": f"{r.amount:.2f}",
            "currency": r.currency,
            "reference": r.reference,
            "orders": r.orders,
        }
        for r in rows
    ]


@router.get("/rates", summary="Exchange rates, newest first")
def list_rates(
    caller: Reader, db: Db, currency: Annotated[Currency | None, Query()] = None
) -> list[dict[str, str]]:
    query = select(ExchangeRate).order_by(ExchangeRate.rate_date.desc()).limit(1000)
    if currency:
        query = query.where(ExchangeRate.currency == currency.upper())
    return [
        {"currency": r.currency, "rate_date": str(r.rate_date), "rate": str(r.rate)}
        for r in db.scalars(query)
    ]


@router.post(
    "/periods/{month}/close",
    summary="Close a month (YYYY-MM)",
    description=(
        "Freezes the month: afterwards no receipt, revenue record or exchange rate dated in it"
        " (or converting anything dated in it) can be added or changed. Refused (409) while"
        " receipts dated in it await approval (`period.receipts_pending`; `details` lists"
        " each: id, vendor, amount, currency, expense_date, url) or while a document dated in"
        " it has no exchange rate (`period.rate_missing`)."
    ),
    responses=errors(409),
)
def close_period(month: Month, caller: Finance, db: Db, settings: AppSettings) -> dict[str, str]:
    periods.close_month(db, caller.actor, periods.parse_month(month), settings.base_currency)
    db.commit()
    return {"month": month, "state": "closed"}


@router.post(
    "/periods/{month}/reopen", summary="Reopen a closed month (admin)", responses=errors(409)
)
def reopen_period(month: Month, caller: Admin, db: Db) -> dict[str, str]:
    if caller.key is not None:  # reopening the books is a person's decision, never a key's
        raise PermissionDenied("auth.person_only", "Only a signed-in admin can reopen a month.")
    periods.reopen_month(db, caller.actor, periods.parse_month(month))
    db.commit()
    return {"month": month, "state": "open"}


@router.put("/rates", summary="Set an exchange rate to the base currency", responses=errors(400))
def put_rate(body: RateIn, caller: Finance, db: Db, settings: AppSettings) -> dict[str, str]:
    row = rates.set_rate(
        db, caller.actor, body.currency, body.rate_date, body.rate, settings.base_currency
    )
    db.commit()
    return {"currency": row.currency, "rate_date": str(row.rate_date), "rate": str(row.rate)}


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REPORT_FORMATS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report: JSON, or a CSV or XLSX file as `format` asks",
        "content": {
            "application/json": {},
            "text/csv": {"schema": {"type": "string"}},
            XLSX: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.get(
    "/reports/roi",
    summary="The ROI (input-output ratio) report",
    description=(
        "`from` and `to` select documents by their own dates (receipts by expense date,"
        " revenue records by the date received, purchases and refunds by when they happened),"
        " so one month alone equals its row in the monthly report; a refund counts in the"
        " month it is made. `running_from` and `running_to` select campaigns that ran on some"
        " day between them. Amounts are booked once per document (exact amount × rate,"
        " rounded half-up to the base currency's minor unit), so rows add up to the total."
        " A missing exchange rate is a 422 (`rate.missing`) naming the currency and the date,"
        " saying that finance can enter it under Finance → Exchange rates (/finance/rates);"
        " `details` carries currency, date, fixed_by and fix_url."
        "\n\n`revenue_basis` chooses the revenue. `direct` (the default): revenue records and"
        " purchases that carried the campaign's code or coupon. `incremental`: for campaigns with"
        " a holdout group, the revenue the campaign added over its window (its members'"
        " purchases beyond the holdout's rate; days within the period), the others directly"
        " linked. An attribution model (`first`,"
        " `last`, `linear`, `time-decay`, `position`, `markov`, `shapley`,"
        " `ordered-shapley`): revenue records as they are, and instead of the linked purchases"
        " the purchase revenue that model credited to each campaign in the newest stored run"
        " with unit `campaign`, default settings and this period (`from`/`to`; by month, one"
        " run per month of a period with both ends). Orders then count only revenue records'."
        " Runs are never computed here: without one the answer is a 409"
        " (`report.basis_not_computed`, `details.missing` lists the periods); compute it with"
        " `POST /api/v1/attribution/runs` and ask again. Any other value is a 422"
        " (`report.revenue_basis`). The JSON answer says `revenue_basis` and, for a model,"
        " `attribution_runs` (the stored runs' ids); the CSV and XLSX name the basis in the"
        " revenue column's header."
        "\n\n`loyalty_cost` (default `true`) counts what the loyalty program gave away for each"
        " campaign in the period, each on its own date: its coupons' discounts, its bonus rules'"
        " points and the points spent on its rewards, at the value per point, less what refunds"
        " took back. Each row then has `loyalty_cost`, `total_cost` (approved receipts + loyalty"
        " cost) and `loyalty_cost_parts` (`coupons`, `bonus_points`, `rewards`), and the"
        " input-output ratio, ROI, profit, budget used and cost per order use the total cost;"
        " ROAS stays on media receipts. `loyalty_cost=false` answers the report on approved"
        " receipts only, as before. The JSON says `loyalty_cost`; the CSV and XLSX carry the"
        " same columns, and the XLSX title block says whether loyalty cost is included."
    ),
    responses={**REPORT_FORMATS, **errors(409)},
)
def roi_report(
    request: Request,
    caller: Reader,
    db: Db,
    settings: AppSettings,
    start: Annotated[Day | None, Query(alias="from")] = None,
    end: Annotated[Day | None, Query(alias="to")] = None,
    group_by: GroupBy = "campaign",
    channel: Annotated[ChannelCode | None, Query()] = None,
    status: CampaignStatus | None = None,
    owner_id: Annotated[int | None, Query(ge=1, le=bounds.MAX_ID)] = None,
    format: Literal["json", "csv", "xlsx"] = "json",
    running_from: Annotated[
        Day | None, Query(description="Only campaigns still running on or after this day")
    ] = None,
    running_to: Annotated[
        Day | None, Query(description="Only campaigns started on or before this day")
    ] = None,
    revenue_basis: Annotated[
        str,
        Query(
            max_length=40,
            description="Where the revenue comes from: `direct` (revenue records and purchases"
            " linked by code or coupon) or an attribution model's stored run by campaign.",
            json_schema_extra={"enum": list(basis_roi.BASES)},
        ),
    ] = basis_roi.DIRECT,
    loyalty_cost: Annotated[
        bool,
        Query(
            description="Count the loyalty cost (coupon discounts, bonus points and rewards at"
            " the value per point) in the total cost; false: approved receipts only."
        ),
    ] = True,
) -> Response:
    basis = basis_roi.check_basis(revenue_basis)
    f = report_data.ReportFilter(
        start=start,
        end=end,
        channel=channel,
        status=status,
        owner_id=owner_id,
        running_from=running_from,
        running_to=running_to,
    )
    report, attributed = basis_roi.roi(
        db, settings.base_currency, f, group_by, zone=settings.zone, basis=basis
    )
    if loyalty_cost:
        report = campaign_costs.include(db, report, f, settings.zone, base=settings.base_currency)
    header = None if attributed is None else f"{basis_roi.BASIS_NAMES[basis]} attribution"
    if format == "csv":
        return Response(
            exports.to_csv(report, revenue_basis=header),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="roi.csv"'},
        )
    if format == "xlsx":
        return Response(
            exports.to_xlsx(report, revenue_basis=header),
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="roi.xlsx"'},
        )
    body: dict[str, Any] = {
        **report.as_json(),
        "revenue_basis": basis,
        "loyalty_cost": report.loyalty_cost,
    }
    if attributed is not None:
        body["attribution_runs"] = [run.id for run in attributed.runs]
    return JSONResponse(body)
