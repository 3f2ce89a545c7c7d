"""Staff pages for the loyalty program: settings, the tier ladder and bonus rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from campaigns import planning
from campaigns.models import Campaign
from core.accounts.models import Role, User
from core.errors import RetainError, ValidationFailed
from core.money import parse_amount
from loyalty import program
from loyalty.models import ExpiryPolicy, TierMetric
from web.deps import Db, actor_for, require_roles
from web.forms import FormFields, optional_day
from web.rendering import flash, render

router = APIRouter(prefix="/loyalty")
Staff = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER, Role.FINANCE))]
Planner = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER))]
Admin = Annotated[User, Depends(require_roles(Role.ADMIN))]

FIELDS = {  # form name → (label, kind)
    "earn_rate": ("Points per unit of base currency", "decimal"),
    "return_window_days": ("Return window (days pending)", "int"),
    "expiry_policy": ("Points expire", "choice"),
    "expiry_n": ("N (days or months for the expiry policy)", "int"),
    "tier_metric": ("Tiers qualify on", "choice"),
    "tier_window_months": ("Qualifying window (months)", "int"),
    "tier_retention_days": ("Days a tier is kept before a downgrade", "int"),
    "signup_bonus": ("Sign-up bonus (points)", "int"),
    "first_purchase_bonus": ("First-purchase bonus (points)", "int"),
    "birthday_points": ("Birthday reward (points)", "int"),
    "repeat_count": ("Repeat bonus: the Nth purchase…", "int"),
    "repeat_days": ("…within D days", "int"),
    "repeat_bonus": ("Repeat bonus (points)", "int"),
    "referral_min_amount": ("Referral: qualifying purchase at least", "decimal"),
    "referrer_points": ("Referrer reward (points)", "int"),
    "referee_points": ("New member's referral reward (points)", "int"),
    "referral_monthly_cap": ("Rewarded referrals per referrer per month", "int"),
    "restore_coupon_on_refund": ("Give coupons back on a full refund", "bool"),
    "max_adjustment": ("Largest manual adjustment (points, each way)", "int"),
    "max_multiplier": ("Highest multiplier a tier or bonus rule may have", "decimal"),
}
POLICIES = {
    ExpiryPolicy.DAYS_AFTER_ACTIVE: "N days after they become available",
    ExpiryPolicy.END_OF_MONTH: "At the end of the month, N months after they become available",
    ExpiryPolicy.END_OF_NEXT_YEAR: "At the end of the next calendar year",
    ExpiryPolicy.NEVER: "Never",
}


def _decimal(value: str, label: str) -> Decimal:
    """A decimal typed by a person, read as strictly as an amount ("1e5" and "1,5" refused)."""
    return parse_amount(value, label=label)


def _int(value: str, label: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValidationFailed(
            "form.number", f"{label}: '{value}' is not a whole number."
        ) from None


@router.get("/program")
def program_page(request: Request, user: Staff, db: Db) -> Response:
    campaigns = db.execute(select(Campaign.id, Campaign.name).order_by(Campaign.name)).all()
    return render(
        request,
        "loyalty/program.html",
        {
            "program": program.get(db),
            "fields": FIELDS,
            "policies": POLICIES,
            "metrics": [m.value for m in TierMetric],
            "ladder": program.ladder(db),
            "rules": program.rules(db),
            "channels": planning.list_channels(db),
            "campaigns": {cid: name for cid, name in campaigns},
            "can_edit": user.has_any(Role.ADMIN),
            "can_plan": user.has_any(Role.ADMIN, Role.MARKETER),
        },
    )


def _done(request: Request, db: Db, message: str, action: Any) -> Response:
    try:
        action()
    except RetainError as exc:
        db.rollback()
        flash(request, exc.message, "error")
    else:
        db.commit()
        flash(request, message)
    return RedirectResponse("/loyalty/program", status_code=303)


@router.post("/program")
def save_program(request: Request, user: Admin, db: Db, form: FormFields) -> Response:

    def save() -> None:
        changes: dict[str, Any] = {}
        for name, (label, kind) in FIELDS.items():
            if kind != "bool" and name not in form:
                continue  # not on this form: unchanged (an unticked box is not sent at all)
            raw = str(form.get(name, ""))
            if kind == "bool":
                changes[name] = raw == "on"
            elif kind == "int":
                changes[name] = _int(raw, label)
            elif kind == "decimal":
                changes[name] = _decimal(raw, label)
            else:
                changes[name] = raw
        program.update(db, actor_for(request, user), **changes)

    return _done(request, db, "Program settings saved.", save)


@router.post("/tiers")
def save_tier(request: Request, user: Planner, db: Db, raw: FormFields) -> Response:
    form = {k: str(v) for k, v in raw.items()}

    def save() -> None:
        program.save_tier(
            db,
            actor_for(request, user),
            code=form.get("code", ""),
            name=form.get("name", ""),
            rank=_int(form.get("rank", ""), "Rank"),
            threshold=_int(form.get("threshold", ""), "Threshold"),
            multiplier=_decimal(form.get("multiplier", ""), "Multiplier"),
            benefits=form.get("benefits", ""),
        )

    return _done(request, db, f"Tier {form.get('name', '')} saved.", save)


@router.post("/rules")
def save_rule(request: Request, user: Planner, db: Db, raw: FormFields) -> Response:
    form = {k: str(v) for k, v in raw.items()}

    def optional(name: str, parse: Any, label: str) -> Any:
        value = form.get(name, "").strip()
        return parse(value, label) if value else None

    def save() -> None:
        program.save_rule(
            db,
            actor_for(request, user),
            rule_id=optional("rule_id", _int, "Rule"),
            name=form.get("name", ""),
            priority=optional("priority", _int, "Priority") or 100,
            active=form.get("active") == "on",
            starts_on=optional_day(form.get("starts_on")),
            ends_on=optional_day(form.get("ends_on")),
            channel_id=optional("channel_id", _int, "Channel"),
            campaign_id=optional("campaign_id", _int, "Campaign"),
            category=form.get("category") or None,
            min_spend=optional("min_spend", _decimal, "Minimum spend"),
            multiplier=optional("multiplier", _decimal, "Multiplier"),
            fixed_points=optional("fixed_points", _int, "Fixed bonus"),
            stop_further=form.get("stop_further") == "on",
        )

    return _done(request, db, f"Bonus rule {form.get('name', '')} saved.", save)
