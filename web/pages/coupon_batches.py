"""Staff pages for coupon batches (create, generate, issue, export codes), the reward
catalog and the referral report."""

from __future__ import annotations

import re
from datetime import datetime, time
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy import select

from campaigns.models import Campaign
from core import bounds
from core.accounts.models import Role, User
from core.errors import NotFound, RetainError, ValidationFailed
from core.money import parse_amount
from loyalty import coupons, program, referrals, rewards
from loyalty.models import Batch, CouponKind, Reward, Tier
from web.deps import AppSettings, Db, actor_for, require_roles
from web.forms import FormFields, optional_day
from web.pages.campaigns import currency_choices
from web.rendering import flash, render

router = APIRouter(prefix="/loyalty")
Staff = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER, Role.FINANCE))]
Planner = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER))]
BatchId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]


def _number(value: str, label: str, kind: type[int] | type[Decimal] = Decimal) -> Any:
    """A form's number, or None when left empty; a count is ASCII digits."""
    value = value.strip()
    if not value:
        return None
    if kind is Decimal:
        return parse_amount(value, label=label)  # "1,234.56" yes, "7,85" or "1e5" no
    if not re.fullmatch(r"-?[0-9]+", value, re.ASCII):
        raise ValidationFailed("form.number", f"{label}: '{value[:24]}' is not a whole number.")
    return int(value)


def _after(request: Request, db: Db, path: str, message: str, action: Any) -> Response:
    try:
        result = action()
    except RetainError as exc:
        db.rollback()
        flash(request, exc.message, "error")
    else:
        db.commit()
        flash(request, message.format(result=result))
    return RedirectResponse(path, status_code=303)


def _batch(db: Db, batch_id: int) -> Batch:
    batch = db.get(Batch, batch_id)
    if batch is None:
        raise NotFound("batch.not_found", f"No coupon batch {batch_id}.")
    return batch


@router.get("/coupons")
def batches_page(request: Request, user: Staff, db: Db, settings: AppSettings) -> Response:
    batches = db.scalars(select(Batch).order_by(Batch.id.desc())).all()
    campaigns = dict(db.execute(select(Campaign.id, Campaign.name).order_by(Campaign.name)).all())
    return render(
        request,
        "loyalty/coupons.html",
        {
            "batches": [(b, coupons.offer(b)) for b in batches],
            "counts": coupons.counts(db),
            "zero": coupons.BatchCounts(),
            "campaigns": campaigns,
            "kinds": [k.value for k in CouponKind],
            "tiers": program.ladder(db),
            "currencies": currency_choices(db, settings.base_currency),
            "can_plan": user.has_any(Role.ADMIN, Role.MARKETER),
        },
    )


def _issue_tiers(db: Db, batch: Batch) -> list[Tier]:
    """The tiers a mass issue of `batch` may be narrowed to: the batch's own, if it has any."""
    ladder = program.ladder(db)
    return [t for t in ladder if not batch.eligible_tiers or t.code in batch.eligible_tiers]


@router.get("/coupons/{batch_id}")
def batch_page(request: Request, user: Staff, db: Db, batch_id: BatchId) -> Response:
    batch = _batch(db, batch_id)
    campaign = db.get(Campaign, batch.campaign_id) if batch.campaign_id else None
    return render(
        request,
        "loyalty/coupon_batch.html",
        {
            "batch": batch,
            "offer": coupons.offer(batch),
            "campaign": campaign,
            "count": coupons.counts(db, [batch.id]).get(batch.id, coupons.BatchCounts()),
            "tiers": _issue_tiers(db, batch),
            "can_plan": user.has_any(Role.ADMIN, Role.MARKETER),
        },
    )


@router.post("/coupons")
def create_batch(
    request: Request, user: Planner, db: Db, settings: AppSettings, raw: FormFields
) -> Response:
    form = {k: str(v) for k, v in raw.items()}
    tiers = [str(v) for v in raw.getlist("tiers")]
    zone = settings.zone

    def create() -> str:
        until = optional_day(form.get("valid_until"))
        start = optional_day(form.get("valid_from"))
        batch = coupons.create_batch(
            db,
            actor_for(request, user),
            name=form.get("name", ""),
            kind=form.get("kind", ""),
            currency=form.get("currency") or settings.base_currency,
            campaign_id=_number(form.get("campaign_id", ""), "Campaign", int),
            value=_number(form.get("value", ""), "Value") or Decimal(0),
            max_discount=_number(form.get("max_discount", ""), "Cap"),
            gift=form.get("gift", ""),
            min_spend=_number(form.get("min_spend", ""), "Minimum spend") or Decimal(0),
            valid_from=datetime.combine(start, time(0), zone) if start else None,
            # Valid through the last day: the end is the next local midnight.
            valid_until=datetime.combine(until, time(23, 59, 59), zone) if until else None,
            valid_days=_number(form.get("valid_days", ""), "Days", int),
            total_limit=_number(form.get("total_limit", ""), "Total limit", int),
            per_member_limit=_number(form.get("per_member_limit", ""), "Per member", int),
            eligible_tiers=tiers,
            public_code=form.get("public_code") or None,
        )
        return batch.name

    return _after(request, db, "/loyalty/coupons", "Batch {result} created.", create)


@router.post("/coupons/{batch_id}/generate")
def generate(
    request: Request, user: Planner, db: Db, batch_id: BatchId, form: FormFields
) -> Response:

    def run() -> int:
        count = _number(str(form.get("count", "")), "Count", int)
        if count is None:
            raise ValidationFailed("batch.count", "How many codes?")
        return coupons.generate(db, actor_for(request, user), batch_id, count)

    return _after(request, db, f"/loyalty/coupons/{batch_id}", "{result:,} codes generated.", run)


@router.post("/coupons/{batch_id}/issue")
def issue(request: Request, user: Planner, db: Db, batch_id: BatchId, form: FormFields) -> Response:
    """Two steps: the batch page's form asks who should receive a coupon, and this answers
    with how many members that is, asking to confirm; the confirmation (carrying the count
    and the batch's coupon count it was made against) issues, once."""
    batch = _batch(db, batch_id)
    actor = actor_for(request, user)
    back = f"/loyalty/coupons/{batch.id}"
    segment: dict[str, Any] = {
        "tier_codes": [str(t) for t in form.getlist("tiers")],
        "region": str(form.get("region", "")),
        "city": str(form.get("city", "")),
    }
    problem = None
    if "confirm" in form:
        try:
            expected = _number(str(form.get("confirm", "")), "Members", int)
            before = _number(str(form.get("issued_before", "")), "Coupons", int)
            if expected is None or before is None:
                raise ValidationFailed("batch.confirm", "Confirm how many members first.")
            issued = coupons.issue_to_members(
                db,
                actor,
                batch.id,
                **segment,
                reason="Issued by staff",
                expected=expected,
                issued_before=before,
            )
        except RetainError as exc:
            db.rollback()
            problem = exc.message
        else:
            db.commit()
            flash(request, f"'{batch.name}' issued to {issued:,} members.")
            return RedirectResponse(back, status_code=303)
    try:
        plan = coupons.plan_issue(db, actor, batch.id, **segment)
    except RetainError as exc:
        db.rollback()
        flash(request, exc.message, "error")
        return RedirectResponse(back, status_code=303)
    tiers = {t.code: t.name for t in program.ladder(db)}
    return render(
        request,
        "loyalty/coupon_issue_confirm.html",
        {
            "batch": batch,
            "offer": coupons.offer(batch),
            "plan": plan,
            "tier_names": [tiers.get(code, code) for code in plan.tiers],
            "chosen": [t for t in segment["tier_codes"] if t.strip()],
            "problem": problem,
        },
        status_code=409 if problem else 200,
    )


@router.get("/coupons/{batch_id}/codes.csv")
def export_codes(user: Planner, db: Db, batch_id: BatchId) -> Response:
    _batch(db, batch_id)
    return StreamingResponse(
        coupons.export_csv(db, batch_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="coupons-{batch_id}.csv"'},
    )


@router.get("/rewards")
def rewards_page(request: Request, user: Staff, db: Db) -> Response:
    batches = db.scalars(select(Batch).where(Batch.active, Batch.public_code.is_(None))).all()
    return render(
        request,
        "loyalty/rewards.html",
        {
            "rewards": db.scalars(select(Reward).order_by(Reward.points_cost)).all(),
            "batches": {b.id: f"{b.name} ({coupons.offer(b)})" for b in batches},
            "tiers": program.ladder(db),
            "can_plan": user.has_any(Role.ADMIN, Role.MARKETER),
        },
    )


@router.post("/rewards")
def save_reward(request: Request, user: Planner, db: Db, raw: FormFields) -> Response:
    form = {k: str(v) for k, v in raw.items()}

    def save() -> str:
        reward = rewards.save(
            db,
            actor_for(request, user),
            reward_id=_number(form.get("reward_id", ""), "Reward", int),
            name=form.get("name", ""),
            points_cost=_number(form.get("points_cost", ""), "Cost", int) or 0,
            batch_id=_number(form.get("batch_id", ""), "Batch", int) or 0,
            description=form.get("description", ""),
            eligible_tiers=[str(t) for t in raw.getlist("tiers")],
            active=form.get("active", "on") == "on",
        )
        return reward.name

    return _after(request, db, "/loyalty/rewards", "Reward {result} saved.", save)


@router.get("/referrals")
def referral_report(request: Request, user: Staff, db: Db) -> Response:
    frame = referrals.revenue_by_referrer(db)
    return render(request, "loyalty/referrals.html", {"rows": frame.to_dict("records")})
