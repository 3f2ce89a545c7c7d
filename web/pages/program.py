"""Staff pages for the loyalty program: settings, the tier ladder and bonus rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import planning
from campaigns.models import Campaign
from core import bounds
from core.accounts.models import Role, User
from core.errors import (
    Invalid,
    NotAuthenticated,
    PermissionDenied,
    Problems,
    RetainError,
    ValidationFailed,
)
from core.money import parse_amount
from core.text import Phrase
from loyalty import program
from loyalty.models import BonusRule, ExpiryPolicy, Tier, TierMetric
from web.actions import act
from web.deps import Db, actor_for, require_roles
from web.forms import FormFields
from web.rendering import N_, render, t

T = TypeVar("T")
router = APIRouter(prefix="/loyalty")
Staff = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER, Role.FINANCE))]
Planner = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER))]
Admin = Annotated[User, Depends(require_roles(Role.ADMIN))]


FIELDS = {  # form name → (label, kind)
    "earn_rate": (N_("Points per unit of base currency"), "decimal"),
    "point_value": (N_("What one point costs the program (base currency)"), "decimal"),
    "return_window_days": (N_("Return window (days pending)"), "int"),
    "expiry_policy": (N_("Points expire"), "choice"),
    "expiry_n": (N_("N (days or months for the expiry policy)"), "int"),
    "tier_metric": (N_("Tiers qualify on"), "choice"),
    "tier_window_months": (N_("Qualifying window (months)"), "int"),
    "tier_retention_days": (N_("Days a tier is kept before a downgrade"), "int"),
    "signup_bonus": (N_("Sign-up bonus (points)"), "int"),
    "first_purchase_bonus": (N_("First-purchase bonus (points)"), "int"),
    "birthday_points": (N_("Birthday reward (points)"), "int"),
    "repeat_count": (N_("Repeat bonus: the Nth purchase…"), "int"),
    "repeat_days": (N_("…within D days"), "int"),
    "repeat_bonus": (N_("Repeat bonus (points)"), "int"),
    "referral_min_amount": (N_("Referral: qualifying purchase at least"), "decimal"),
    "referrer_points": (N_("Referrer reward (points)"), "int"),
    "referee_points": (N_("New member's referral reward (points)"), "int"),
    "referral_monthly_cap": (N_("Rewarded referrals per referrer per month"), "int"),
    "restore_coupon_on_refund": (N_("Give coupons back on a full refund"), "bool"),
    "max_adjustment": (N_("Largest manual adjustment (points, each way)"), "int"),
    "max_multiplier": (N_("Highest multiplier a tier or bonus rule may have"), "decimal"),
}
POLICIES = {
    ExpiryPolicy.DAYS_AFTER_ACTIVE: N_("N days after they become available"),
    ExpiryPolicy.END_OF_MONTH: N_("At the end of the month, N months after they become available"),
    ExpiryPolicy.END_OF_NEXT_YEAR: N_("At the end of the next calendar year"),
    ExpiryPolicy.NEVER: N_("Never"),
}
TIER_FIELDS = ("code", "name", "name_zh", "rank", "threshold", "multiplier", "benefits")
RULE_FIELDS = (
    "name",
    "name_zh",
    "priority",
    "campaign_id",
    "channel_id",
    "category",
    "min_spend",
    "starts_on",
    "ends_on",
    "multiplier",
    "fixed_points",
    "stop_further",
)


def _program_page(
    request: Request,
    db: Session,
    user: User,
    *,
    failed: str = "",
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    """The program page; after a refusal, the `failed` form ("settings", "tier:<code>",
    "rule") shows each problem beside its field and keeps what was typed."""
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
            "failed": failed,
            "form": form or {},
            "errors": errors or {},
            "limits": {
                "tier_name": bounds.length(Tier.name),
                "tier_name_zh": bounds.length(Tier.name_zh),
                "rule_name": bounds.length(BonusRule.name),
                "rule_name_zh": bounds.length(BonusRule.name_zh),
                "category": bounds.length(BonusRule.category),
            },
        },
    )


@router.get("/program")
def program_page(request: Request, user: Staff, db: Db) -> Response:
    return _program_page(request, db, user)


def together(problems: Problems, run: Callable[[], T]) -> T:
    """`run()` (the service) with the form's own `problems`: the service checks whatever
    the form could read, so every problem shows at once, the form's own first. When there is
    any, the refusal is raised and `act` rolls back whatever `run` wrote."""
    try:
        result = run()
    except Invalid as exc:
        for field, error in exc.errors.items():  # each field's refusal, kept whole
            problems.refuse(field, error)
        problems.raise_any()
        raise
    except (NotAuthenticated, PermissionDenied):
        raise
    except RetainError:
        # A refusal of the stand-ins for what the form could not read, or a later one: the
        # form's own problems come first.
        if not problems:
            raise
    problems.raise_any()
    return result


def also_chinese(request: Request, name_zh: str | None) -> str:
    """The confirmation's mention of a Chinese name, when one was stored."""
    return " " + t(request, "Chinese name: %(name)s.", name=name_zh) if name_zh else ""


# The form fields' parsers, shared by the loyalty pages: strict (`core.bounds.parse_whole`,
# `core.money.parse_amount`), each refusal naming the field by its label as the form shows
# it (a `Phrase`, which the page translates).  Mid-sentence the label is written in lower
# case ("Enter the rank."): a lower-cased word the catalog does not hold, so it is put in the
# page's language here.


def whole_field(
    request: Request, value: str, label: Phrase, field: str, *, required: bool = False
) -> int | None:
    """A whole number typed in a form; None when left empty, unless it is `required`."""
    number = bounds.parse_whole(value, label, field)
    if number is None and required:
        raise ValidationFailed(
            f"{field}.missing", "Enter %(label)s.", label=t(request, label).lower()
        )
    return number


def amount_field(
    request: Request, value: str, label: Phrase, *, required: bool = False
) -> Decimal | None:
    """An amount or other decimal typed in a form, read strictly ("1e5" and "7,85" are
    refused); None when left empty, unless it is `required`."""
    if not value.strip() and not required:
        return None
    return parse_amount(value, label=label)


def day_field(request: Request, value: str, label: Phrase) -> date | None:
    """A date field (year-month-day); None when left empty."""
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(
            "form.date", "Enter %(label)s as a date.", label=t(request, label).lower()
        ) from None


@router.post("/program")
def save_program(request: Request, user: Admin, db: Db, raw: FormFields) -> Response:
    form = {k: str(v) for k, v in raw.items()}
    problems = Problems()
    changes: dict[str, Any] = {}
    for name, (label, kind) in FIELDS.items():
        if kind != "bool" and name not in form:
            continue  # not on this form: unchanged (an unticked box is not sent at all)
        value = form.get(name, "")
        if kind == "bool":
            changes[name] = value == "on"
        elif kind == "int":
            changes[name] = problems.check(
                name,
                lambda value=value, label=label, name=name: whole_field(  # type: ignore[misc]
                    request, value, label, name, required=True
                ),
            )
        elif kind == "decimal":
            changes[name] = problems.check(
                name,
                lambda value=value, label=label: amount_field(request, value, label, required=True),  # type: ignore[misc]
            )
        else:
            changes[name] = value
    readable = {k: v for k, v in changes.items() if k not in problems}
    return act(
        request,
        db,
        lambda: together(
            problems, lambda: program.update(db, actor_for(request, user), **readable)
        ),
        done=lambda _: t(request, "Program settings saved."),
        then=lambda _: "/loyalty/program",
        again=lambda errors: _program_page(
            request, db, user, failed="settings", form=form, errors=errors
        ),
        names=tuple(FIELDS),
    )


@router.post("/tiers")
def save_tier(request: Request, user: Planner, db: Db, raw: FormFields) -> Response:
    form = {k: str(raw.get(k, "")) for k in TIER_FIELDS}
    problems = Problems()
    rank = problems.check(
        "rank", lambda: whole_field(request, form["rank"], N_("The rank"), "rank", required=True)
    )
    threshold = problems.check(
        "threshold",
        lambda: whole_field(
            request, form["threshold"], N_("The threshold"), "threshold", required=True
        ),
    )
    multiplier = problems.check(
        "multiplier",
        lambda: amount_field(request, form["multiplier"], N_("The multiplier"), required=True),
    )

    def save() -> Tier:
        # A number the form could not read stands in as a harmless one: its problem is
        # already noted, and `together` refuses the whole save.
        return program.save_tier(
            db,
            actor_for(request, user),
            code=form["code"],
            name=form["name"],
            name_zh=form["name_zh"],
            rank=0 if rank is None else rank,
            threshold=0 if threshold is None else threshold,
            multiplier=Decimal(1) if multiplier is None else multiplier,
            benefits=form["benefits"],
        )

    return act(
        request,
        db,
        lambda: together(problems, save),
        done=lambda tier: (
            t(request, "Tier %(name)s saved.", name=tier.name) + also_chinese(request, tier.name_zh)
        ),
        then=lambda tier: "/loyalty/program#tiers",
        again=lambda errors: _program_page(
            request, db, user, failed=f"tier:{form['code']}", form=form, errors=errors
        ),
        names=TIER_FIELDS,
        codes={"tier.entry": "threshold", "tier.order": "threshold"},
    )


@router.post("/rules")
def save_rule(request: Request, user: Planner, db: Db, raw: FormFields) -> Response:
    form = {k: str(raw.get(k, "")) for k in (*RULE_FIELDS, "rule_id", "active")}
    problems = Problems()

    def whole(name: str, label: Phrase) -> int | None:
        return problems.check(name, lambda: whole_field(request, form[name], label, name))

    def amount(name: str, label: Phrase) -> Decimal | None:
        return problems.check(name, lambda: amount_field(request, form[name], label))

    def day(name: str, label: Phrase) -> date | None:
        return problems.check(name, lambda: day_field(request, form[name], label))

    rule_id = problems.check("rule_id", lambda: bounds.parse_id(form["rule_id"], "rule"))
    priority = whole("priority", N_("Priority"))
    channel_id = problems.check(
        "channel_id", lambda: bounds.parse_id(form["channel_id"], "channel")
    )
    campaign_id = problems.check(
        "campaign_id", lambda: bounds.parse_id(form["campaign_id"], "campaign")
    )
    starts_on, ends_on = day("starts_on", N_("The start")), day("ends_on", N_("The end"))
    min_spend = amount("min_spend", N_("Minimum spend"))
    multiplier = amount("multiplier", N_("Multiplier"))
    fixed_points = whole("fixed_points", N_("Fixed bonus points"))

    def save() -> BonusRule:
        return program.save_rule(
            db,
            actor_for(request, user),
            rule_id=rule_id,
            name=form["name"],
            name_zh=form["name_zh"],
            priority=100 if priority is None else priority,
            active=form["active"] == "on",
            channel_id=channel_id,
            campaign_id=campaign_id,
            category=form["category"] or None,
            stop_further=form["stop_further"] == "on",
            starts_on=starts_on,
            ends_on=ends_on,
            min_spend=min_spend,
            multiplier=multiplier,
            fixed_points=fixed_points,
        )

    return act(
        request,
        db,
        lambda: together(problems, save),
        done=lambda rule: (
            t(request, "Bonus rule %(name)s saved.", name=rule.name)
            + also_chinese(request, rule.name_zh)
        ),
        then=lambda rule: "/loyalty/program#rules",
        again=lambda errors: _program_page(
            request, db, user, failed="rule", form=form, errors=errors
        ),
        names=RULE_FIELDS,
        codes={"rule.effect": "multiplier", "rule.dates": "ends_on"},
    )
