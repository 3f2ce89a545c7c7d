"""Staff pages for coupon batches (create, generate, issue, export codes), the reward
catalog and the referral report."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import segments
from campaigns.models import Campaign
from core import bounds
from core.accounts.models import Role, User
from core.errors import (
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    Problems,
    RetainError,
    ValidationFailed,
)
from core.settings import Settings
from core.text import Phrase
from loyalty import coupons, program, referrals, rewards
from loyalty.models import Batch, CouponKind, Reward, Tier
from web.actions import FORM, act, problems_of
from web.deps import AppSettings, Db, actor_for, require_roles
from web.forms import FormFields
from web.pages.campaigns import currency_choices
from web.pages.program import also_chinese, amount_field, day_field, together, whole_field
from web.pages.segments import restriction
from web.rendering import N_, render, say, t

router = APIRouter(prefix="/loyalty")
Staff = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER, Role.FINANCE))]
Planner = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER))]
BatchId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]


def offer(request: Request, batch: Batch | coupons.BatchRow) -> str:
    """The offer in words in the reader's language (`coupons.offer_wording`); the English
    where a translation lost a placeholder."""
    template, params = coupons.offer_wording(batch)
    try:
        return t(request, template, **params)
    except (KeyError, ValueError, TypeError):
        return template % params


def _batch(db: Session, batch_id: int) -> Batch:
    batch = db.get(Batch, batch_id)
    if batch is None:
        raise NotFound("batch.not_found", "No coupon batch %(id)s.", id=batch_id)
    return batch


BATCH_FIELDS = (
    "name",
    "name_zh",
    "campaign_id",
    "kind",
    "value",
    "max_discount",
    "gift",
    "min_spend",
    "currency",
    "valid_from",
    "valid_until",
    "valid_days",
    "total_limit",
    "per_member_limit",
    "public_code",
)


def _batches_page(
    request: Request,
    db: Session,
    settings: Settings,
    user: User,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    batches = db.scalars(select(Batch).order_by(Batch.id.desc())).all()
    campaigns = dict(db.execute(select(Campaign.id, Campaign.name).order_by(Campaign.name)).all())
    return render(
        request,
        "loyalty/coupons.html",
        {
            "batches": [(b, offer(request, b)) for b in batches],
            "counts": coupons.counts(db),
            "zero": coupons.BatchCounts(),
            "campaigns": campaigns,
            "kinds": [k.value for k in CouponKind],
            "tiers": program.ladder(db),
            "currencies": currency_choices(db, settings.base_currency),
            "can_plan": user.has_any(Role.ADMIN, Role.MARKETER),
            "form": form or {},
            "errors": errors or {},
            "limits": {
                "name": bounds.length(Batch.name),
                "name_zh": bounds.length(Batch.name_zh),
                "gift": bounds.length(Batch.gift),
                "public_code": coupons.TYPED,
            },
        },
    )


@router.get("/coupons")
def batches_page(request: Request, user: Staff, db: Db, settings: AppSettings) -> Response:
    return _batches_page(request, db, settings, user)


def _issue_tiers(db: Session, batch: Batch) -> list[Tier]:
    """The tiers a mass issue of `batch` may be narrowed to: the batch's own, if it has any."""
    ladder = program.ladder(db)
    return [t for t in ladder if not batch.eligible_tiers or t.code in batch.eligible_tiers]


def _batch_page(
    request: Request,
    db: Session,
    user: User,
    batch_id: int,
    *,
    failed: str = "",
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """A batch's page; after a refusal, the `failed` form ("issue", "generate") shows each
    problem beside its field and keeps what was typed."""
    batch = _batch(db, batch_id)
    campaign = db.get(Campaign, batch.campaign_id) if batch.campaign_id else None
    return render(
        request,
        "loyalty/coupon_batch.html",
        {
            "batch": batch,
            "offer": offer(request, batch),
            "campaign": campaign,
            "count": coupons.counts(db, [batch.id]).get(batch.id, coupons.BatchCounts()),
            "tiers": _issue_tiers(db, batch),
            "saved_segments": segments.names(db),
            "can_plan": user.has_any(Role.ADMIN, Role.MARKETER),
            "failed": failed,
            "form": form or {},
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/coupons/{batch_id}")
def batch_page(request: Request, user: Staff, db: Db, batch_id: BatchId) -> Response:
    return _batch_page(request, db, user, batch_id)


@router.post("/coupons")
def create_batch(
    request: Request, user: Planner, db: Db, settings: AppSettings, raw: FormFields
) -> Response:
    form: dict[str, Any] = {k: str(raw.get(k, "")) for k in BATCH_FIELDS}
    form["eligible_tiers"] = [str(v) for v in raw.getlist("eligible_tiers")]
    zone = settings.zone
    problems = Problems()

    def amount(name: str, label: Phrase) -> Decimal | None:
        return problems.check(name, lambda: amount_field(request, form[name], label))

    def whole(name: str, label: Phrase) -> int | None:
        return problems.check(name, lambda: whole_field(request, form[name], label, name))

    def day(name: str, label: Phrase) -> date | None:
        return problems.check(name, lambda: day_field(request, form[name], label))

    campaign_id = problems.check(
        "campaign_id", lambda: bounds.parse_id(form["campaign_id"], "campaign")
    )
    value, cap = amount("value", N_("Value")), amount("max_discount", N_("Cap"))
    min_spend = amount("min_spend", N_("Minimum spend"))
    start, until = day("valid_from", N_("Valid from")), day("valid_until", N_("Valid until"))
    valid_days = whole("valid_days", N_("Days from issue"))
    total_limit = whole("total_limit", N_("Total limit"))
    per_member_limit = whole("per_member_limit", N_("Per member"))

    def create() -> Batch:
        return coupons.create_batch(
            db,
            actor_for(request, user),
            name=form["name"],
            name_zh=form["name_zh"],
            kind=form["kind"],
            currency=form["currency"] or settings.base_currency,
            campaign_id=campaign_id,
            value=value or Decimal(0),
            max_discount=cap,
            gift=form["gift"],
            min_spend=min_spend or Decimal(0),
            valid_from=datetime.combine(start, time(0), zone) if start else None,
            # Valid through the last day: the end is the next local midnight.
            valid_until=datetime.combine(until, time(23, 59, 59), zone) if until else None,
            valid_days=valid_days,
            total_limit=total_limit,
            per_member_limit=per_member_limit,
            eligible_tiers=form["eligible_tiers"],
            public_code=form["public_code"] or None,
        )

    return act(
        request,
        db,
        lambda: together(problems, create),
        done=lambda b: (
            t(request, "Batch %(name)s created: %(offer)s.", name=b.name, offer=offer(request, b))
            + also_chinese(request, b.name_zh)
        ),
        then=lambda b: f"/loyalty/coupons/{b.id}",
        again=lambda errors: _batches_page(request, db, settings, user, form, errors),
        names=(*BATCH_FIELDS, "eligible_tiers"),
        codes={"batch.public_code_taken": "public_code", "batch.campaign": "campaign_id"},
    )


@router.post("/coupons/{batch_id}/generate")
def generate(
    request: Request, user: Planner, db: Db, batch_id: BatchId, raw: FormFields
) -> Response:
    form = {"count": str(raw.get("count", ""))}
    problems = Problems()
    count = problems.check(
        "count", lambda: whole_field(request, form["count"], N_("How many"), "count")
    )
    if "count" not in problems and count is None:
        problems.add("count", "How many codes?")

    def run() -> int:
        assert count is not None  # problems.raise_any ran first
        return coupons.generate(db, actor_for(request, user), batch_id, count)

    return act(
        request,
        db,
        run,
        errors=problems,
        done=lambda made: t(request, "%(count)s codes generated.", count=f"{made:,}"),
        then=lambda made: f"/loyalty/coupons/{batch_id}",
        again=lambda errors: _batch_page(
            request, db, user, batch_id, failed="generate", form=form, errors=errors
        ),
        names=("count",),
        codes={"batch.count": "count", "batch.room": "count"},
    )


ISSUE_CODES = {"batch.tiers": "tiers", "batch.segment": FORM}
ISSUE_FIELDS = ("tiers", "region", "city", "segment_id")


@router.post("/coupons/{batch_id}/issue")
def issue(request: Request, user: Planner, db: Db, batch_id: BatchId, raw: FormFields) -> Response:
    """Two steps: the batch page's form asks who should receive a coupon, and this answers
    with how many members that is, asking to confirm; the confirmation (carrying the count
    and the batch's coupon count it was made against) issues, once."""
    batch = _batch(db, batch_id)
    actor = actor_for(request, user)
    segment: dict[str, Any] = {
        "tier_codes": [str(t) for t in raw.getlist("tiers")],
        "region": str(raw.get("region", "")),
        "city": str(raw.get("city", "")),
    }
    saved = str(raw.get("segment_id", ""))  # a saved segment, restricting the issue
    if "confirm" in raw:
        problems = Problems()
        expected = problems.check(
            "confirm",
            lambda: bounds.parse_whole(str(raw.get("confirm", "")), N_("Members"), low=0),
        )
        before = problems.check(
            "issued_before",
            lambda: bounds.parse_whole(str(raw.get("issued_before", "")), N_("Coupons"), low=0),
        )
        if not problems and (expected is None or before is None):
            problems.add(FORM, "Confirm how many members first.")

        def run() -> int:
            return coupons.issue_to_members(
                db,
                actor,
                batch.id,
                **segment,
                **restriction(request, db, saved)[0],
                reason="Issued by staff",
                expected=expected,
                issued_before=before,
            )

        return act(
            request,
            db,
            run,
            errors=problems,
            done=lambda issued: t(
                request,
                "'%(name)s' issued to %(count)s members.",
                name=batch.name,
                count=f"{issued:,}",
            ),
            then=lambda issued: f"/loyalty/coupons/{batch.id}",
            again=lambda errors: _confirm_page(
                request, db, user, batch.id, segment, errors, saved=saved
            ),
        )
    return _confirm_page(request, db, user, batch.id, segment, saved=saved)


def _confirm_page(
    request: Request,
    db: Session,
    user: User,
    batch_id: int,
    segment: dict[str, Any],
    errors: dict[str, str] | None = None,
    *,
    saved: str = "",
) -> Response:
    """How many members the segment reaches, asking to confirm (with why the last
    confirmation was refused); a segment that cannot be planned goes back to the batch page
    with each problem beside its field."""
    batch = _batch(db, batch_id)
    form = {
        "tiers": segment["tier_codes"],
        "region": segment["region"],
        "city": segment["city"],
        "segment_id": saved,
    }
    # Planning writes nothing: a refusal is the batch page's issue form again.
    try:
        restricted, saved_segment = restriction(request, db, saved)
        plan = coupons.plan_issue(db, actor_for(request, user), batch.id, **segment, **restricted)
    except (NotAuthenticated, PermissionDenied):
        raise
    except ValidationFailed as exc:
        return _batch_page(
            request,
            db,
            user,
            batch_id,
            failed="issue",
            form=form,
            errors=problems_of(request, exc, ISSUE_FIELDS, ISSUE_CODES),
            status_code=422,
        )
    except RetainError as exc:  # the batch's state refuses an issue (switched off, full)
        return _batch_page(
            request,
            db,
            user,
            batch_id,
            failed="issue",
            form=form,
            errors={FORM: say(request, exc)},
            status_code=409,
        )
    tiers = {tier.code: tier.name for tier in program.ladder(db)}
    problem = " ".join(errors.values()) if errors else None
    return render(
        request,
        "loyalty/coupon_issue_confirm.html",
        {
            "batch": batch,
            "offer": offer(request, batch),
            "plan": plan,
            "tier_names": [tiers.get(code, code) for code in plan.tiers],
            "chosen": [t for t in segment["tier_codes"] if t.strip()],
            "saved_segment": saved_segment,
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


REWARD_FIELDS = ("name", "name_zh", "points_cost", "batch_id", "description", "active")


def _rewards_page(
    request: Request,
    db: Session,
    user: User,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    batches = db.scalars(select(Batch).where(Batch.active, Batch.public_code.is_(None))).all()
    return render(
        request,
        "loyalty/rewards.html",
        {
            "rewards": db.scalars(select(Reward).order_by(Reward.points_cost)).all(),
            "batches": {b.id: f"{b.name} ({offer(request, b)})" for b in batches},
            "tiers": program.ladder(db),
            "can_plan": user.has_any(Role.ADMIN, Role.MARKETER),
            "form": form or {},
            "errors": errors or {},
            "limits": {
                "name": bounds.length(Reward.name),
                "name_zh": bounds.length(Reward.name_zh),
            },
        },
    )


@router.get("/rewards")
def rewards_page(request: Request, user: Staff, db: Db) -> Response:
    return _rewards_page(request, db, user)


@router.post("/rewards")
def save_reward(request: Request, user: Planner, db: Db, raw: FormFields) -> Response:
    form: dict[str, Any] = {k: str(raw.get(k, "")) for k in (*REWARD_FIELDS, "reward_id")}
    form["eligible_tiers"] = [str(v) for v in raw.getlist("eligible_tiers")]
    problems = Problems()
    reward_id = problems.check("reward_id", lambda: bounds.parse_id(form["reward_id"], "reward"))
    cost = problems.check(
        "points_cost",
        lambda: whole_field(request, form["points_cost"], N_("Points"), "points_cost"),
    )
    batch_id = problems.check("batch_id", lambda: bounds.parse_id(form["batch_id"], "batch"))

    def save() -> Reward:
        return rewards.save(
            db,
            actor_for(request, user),
            reward_id=reward_id,
            name=form["name"],
            name_zh=form["name_zh"],
            points_cost=cost or 0,
            batch_id=batch_id or 0,
            description=form["description"],
            eligible_tiers=form["eligible_tiers"],
            active=(form["active"] or "on") == "on",
        )

    return act(
        request,
        db,
        lambda: together(problems, save),
        done=lambda r: (
            t(
                request,
                "Reward %(name)s saved: %(points)s points.",
                name=r.name,
                points=f"{r.points_cost:,}",
            )
            + also_chinese(request, r.name_zh)
        ),
        then=lambda r: "/loyalty/rewards",
        again=lambda errors: _rewards_page(request, db, user, form, errors),
        names=(*REWARD_FIELDS, "eligible_tiers"),
        codes={"reward.cost": "points_cost", "reward.batch": "batch_id"},
    )


@router.get("/referrals")
def referral_report(request: Request, user: Staff, db: Db) -> Response:
    frame = referrals.revenue_by_referrer(db)
    return render(request, "loyalty/referrals.html", {"rows": frame.to_dict("records")})
