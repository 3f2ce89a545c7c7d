"""API: campaigns, receipts and attachments, revenue records, exchange rates, the ROI report."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select

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
from campaigns.models import Campaign, ExchangeRate, RevenueRecord
from campaigns.receipts import ReceiptInput
from campaigns.reports import GroupBy
from campaigns.schemas import (
    AttachmentOut,
    CampaignIn,
    CampaignOut,
    RateIn,
    ReceiptIn,
    ReceiptOut,
    RevenueIn,
    TransitionIn,
)
from core.accounts.models import Role
from core.errors import PermissionDenied, ValidationFailed
from loyalty import reports as loyalty_reports
from web.api.auth import Caller, require
from web.deps import AppSettings, Db

router = APIRouter(tags=["campaigns"])
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


@router.get("/campaigns", response_model=list[CampaignOut], summary="List campaigns")
def list_campaigns(
    caller: Reader, db: Db, status: str | None = None, q: str | None = None
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


@router.post("/campaigns", response_model=CampaignOut, status_code=201, summary="Plan a campaign")
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


@router.put("/campaigns/{campaign_id}", response_model=CampaignOut, summary="Edit a campaign")
def update_campaign(campaign_id: int, body: CampaignIn, caller: Planner, db: Db) -> Campaign:
    fields = body.model_dump(exclude={"owner_id"} if body.owner_id is None else set())
    campaign = planning.update(db, caller.actor, campaign_id, **fields)
    db.commit()
    return campaign


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: int, caller: Reader, db: Db) -> Campaign:
    return planning.get(db, campaign_id)


@router.post("/receipts", response_model=ReceiptOut, status_code=201, summary="Enter a receipt")
def create_receipt(body: ReceiptIn, caller: Enterer, db: Db) -> Any:
    receipt = receipts.create(db, caller.actor, ReceiptInput(**body.model_dump()))
    db.commit()
    return receipt


@router.delete(
    "/receipts/{receipt_id}", status_code=204, summary="Delete a draft or rejected receipt"
)
def delete_receipt(receipt_id: int, caller: Enterer, db: Db) -> Response:
    receipts.delete(db, caller.actor, receipt_id)
    db.commit()
    return Response(status_code=204)


@router.get("/receipts/{receipt_id}", response_model=ReceiptOut)
def get_receipt(receipt_id: int, caller: Reader, db: Db) -> Any:
    return receipts.get(db, receipt_id)


def _transition(action: str, caller: Caller, db: Db, receipt_id: int, reason: str | None) -> Any:
    receipt = receipts.transition(db, caller.actor, receipt_id, action, reason)
    db.commit()
    return receipt


@router.post("/receipts/{receipt_id}/submit", response_model=ReceiptOut)
def submit_receipt(receipt_id: int, caller: Enterer, db: Db) -> Any:
    return _transition("submit", caller, db, receipt_id, None)


@router.post("/receipts/{receipt_id}/approve", response_model=ReceiptOut)
def approve_receipt(receipt_id: int, caller: Finance, db: Db) -> Any:
    return _transition("approve", caller, db, receipt_id, None)


@router.post("/receipts/{receipt_id}/reject", response_model=ReceiptOut)
def reject_receipt(receipt_id: int, body: TransitionIn, caller: Finance, db: Db) -> Any:
    return _transition("reject", caller, db, receipt_id, body.reason)


@router.post("/receipts/{receipt_id}/pay", response_model=ReceiptOut)
def pay_receipt(receipt_id: int, caller: Finance, db: Db) -> Any:
    return _transition("pay", caller, db, receipt_id, None)


@router.post("/receipts/{receipt_id}/attachments", response_model=AttachmentOut, status_code=201)
def upload_attachment(
    receipt_id: int, file: UploadFile, caller: Enterer, db: Db, settings: AppSettings
) -> Any:
    # A spooled temporary file, read in the worker thread: never more than the limit into memory.
    data = file.file.read(MAX_UPLOAD)
    attachment = attachments.add(
        db, caller.actor, receipt_id, file.filename or "attachment", data, settings.data_dir
    )
    db.commit()
    return attachment


@router.get("/attachments/{attachment_id}", response_class=FileResponse)
def download_attachment(
    attachment_id: int, caller: Reader, db: Db, settings: AppSettings
) -> FileResponse:
    attachment, path = attachments.open_for_download(
        db, caller.actor, attachment_id, settings.data_dir
    )
    return FileResponse(
        path,
        media_type=attachment.content_type,
        filename=attachment.filename,
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.post("/revenue", status_code=201, summary="Record revenue (回款记录)")
def create_revenue(body: RevenueIn, caller: Finance, db: Db) -> dict[str, int]:
    row = revenue.record(db, caller.actor, **body.model_dump())
    db.commit()
    return {"id": row.id}


@router.get("/revenue", summary="Revenue records of a campaign")
def list_revenue(campaign_id: int, caller: Reader, db: Db) -> list[dict[str, Any]]:
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
def list_rates(caller: Reader, db: Db, currency: str | None = None) -> list[dict[str, str]]:
    query = select(ExchangeRate).order_by(ExchangeRate.rate_date.desc()).limit(1000)
    if currency:
        query = query.where(ExchangeRate.currency == currency.upper())
    return [
        {"currency": r.currency, "rate_date": str(r.rate_date), "rate": str(r.rate)}
        for r in db.scalars(query)
    ]


@router.post("/periods/{month}/close", summary="Close a month (YYYY-MM)")
def close_period(month: str, caller: Finance, db: Db) -> dict[str, str]:
    periods.close_month(db, caller.actor, _month(month))
    db.commit()
    return {"month": month, "state": "closed"}


@router.post("/periods/{month}/reopen", summary="Reopen a closed month (admin)")
def reopen_period(month: str, caller: Admin, db: Db) -> dict[str, str]:
    if caller.key is not None:  # reopening the books is a person's decision, never a key's
        raise PermissionDenied("auth.person_only", "Only a signed-in admin can reopen a month.")
    periods.reopen_month(db, caller.actor, _month(month))
    db.commit()
    return {"month": month, "state": "open"}


def _month(value: str) -> date:
    try:
        return date.fromisoformat(f"{value}-01")
    except ValueError:
        raise ValidationFailed("period.month", f"'{value}' is not a month like 2026-03.") from None


@router.put("/rates", summary="Set an exchange rate to the base currency")
def put_rate(body: RateIn, caller: Finance, db: Db, settings: AppSettings) -> dict[str, str]:
    row = rates.set_rate(
        db, caller.actor, body.currency, body.rate_date, body.rate, settings.base_currency
    )
    db.commit()
    return {"currency": row.currency, "rate_date": str(row.rate_date), "rate": str(row.rate)}


@router.get("/reports/roi", summary="The ROI (input-output ratio) report")
def roi_report(
    request: Request,
    caller: Reader,
    db: Db,
    settings: AppSettings,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    group_by: GroupBy = "campaign",
    channel: str | None = None,
    status: str | None = None,
    owner_id: int | None = None,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Response:
    report = loyalty_reports.roi(
        db,
        settings.base_currency,
        report_data.ReportFilter(
            start=start, end=end, channel=channel, status=status, owner_id=owner_id
        ),
        group_by,
        zone=settings.zone,
    )
    if format == "csv":
        return Response(
            exports.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="roi.csv"'},
        )
    if format == "xlsx":
        return Response(
            exports.to_xlsx(report),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="roi.xlsx"'},
        )
    return JSONResponse(report.as_json())
