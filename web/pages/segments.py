"""Saved segments: the list with each audience counted now, the builder (every condition a
form control, a live count and a preview of the first members as the form changes), CSV and
XLSX exports, and a campaign's target segment.

The builder's form posts to `/segments/match` through htmx on every change (`hx-trigger`,
no script of our own), which answers the `segment_match` block: how many members match and
the first of them. Without JavaScript the "Count" button posts the same form to the same
address and gets the whole page back, the form kept. Saving goes through `web.actions.act`:
every problem beside its field, every input kept.

Marketers and admins save, delete and set campaign targets; finance reads, counts and
exports.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session
from starlette.datastructures import FormData

from analytics import age_bands, loyalty_types, pyramid, rfm, segments
from analytics.models import Segment
from analytics.segments import Criteria
from campaigns.models import Campaign
from core import bounds
from core.accounts.models import Role, User
from core.errors import Invalid, Problems, ValidationFailed
from core.settings import Settings
from loyalty import program
from loyalty.models import Member
from web.actions import FORM, act
from web.deps import AppSettings, Db, actor_for, require_roles
from web.forms import FormFields
from web.pages.program import amount_field, day_field, together
from web.rendering import N_, render, say, say_each, t

router = APIRouter(prefix="/segments")
Reader = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER, Role.FINANCE))]
Planner = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER))]
SegmentId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
CampaignId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
MAX_OPTIONS = 500  # distinct values a multi-select offers
MAX_HOLDOUT_PCT = 50  # a campaign holds out at most half its segment (`attribution.holdout`)

# The form's fields in the order it shows them (the first with a problem takes the focus).
LISTS = (
    "regions",
    "cities",
    "genders",
    "age_bands",
    "occupations",
    "industries",
    "tiers",
    "statuses",
    "layers",
    "rfm_segments",
    "loyalty_types",
)
AMOUNTS = ("value_min", "value_max", "clv_min", "clv_max")
DAYS = ("joined_from", "joined_to")
FIELDS = (
    "name",
    "description",
    "regions",
    "cities",
    "genders",
    "age_bands",
    "occupations",
    "industries",
    "tiers",
    "statuses",
    "consent",
    "joined_from",
    "joined_to",
    "layers",
    "rfm_segments",
    "loyalty_types",
    "value_min",
    "value_max",
    "clv_min",
    "clv_max",
    "p_alive_min",
)
CODES = {
    "segment.name_taken": "name",
    "segment.no_value_run": FORM,
    "segment.tiers": "tiers",
}
LABELS = {
    "value_min": N_("Value from"),
    "value_max": N_("Value up to"),
    "clv_min": N_("Lifetime value from"),
    "clv_max": N_("Lifetime value up to"),
    "joined_from": N_("Joined from"),
    "joined_to": N_("Joined until"),
}
GENDER_NAMES = {
    "female": N_("Female"),
    "male": N_("Male"),
    "other": N_("Other"),
    "unknown": N_("Not given"),
}
AGE_NAMES = {
    "under-18": N_("Under 18"),
    "18-24": "18–24",
    "25-34": "25–34",
    "35-44": "35–44",
    "45-54": "45–54",
    "55-64": "55–64",
    "65-plus": N_("65 and over"),
    "unknown": N_("Unknown"),
}
STATUS_NAMES = {
    "active": N_("Active"),
    "suspended": N_("Suspended"),
    "closed": N_("Closed"),
}
CONSENT_NAMES = {
    "any": N_("Either"),
    "yes": N_("Agreed to marketing"),
    "no": N_("Did not agree"),
}
LAYER_NAMES = {
    pyramid.MOST_VALUABLE: N_("Most valuable"),
    pyramid.MOST_GROWABLE: N_("Most growable"),
    pyramid.LOW_CONTRIBUTION: N_("Low contribution"),
    pyramid.NEGATIVE: N_("Negative value"),
}
RFM_NAMES = {
    rfm.CHAMPIONS: N_("Champions"),
    rfm.LOYAL: N_("Loyal Customers"),
    rfm.POTENTIAL_LOYALIST: N_("Potential Loyalist"),
    rfm.NEW_CUSTOMERS: N_("New Customers"),
    rfm.PROMISING: N_("Promising"),
    rfm.NEED_ATTENTION: N_("Need Attention"),
    rfm.ABOUT_TO_SLEEP: N_("About To Sleep"),
    rfm.AT_RISK: N_("At Risk"),
    rfm.CANT_LOSE: N_("Can't Lose Them"),
    rfm.HIBERNATING: N_("Hibernating"),
    rfm.LOST: N_("Lost"),
    rfm.NO_PURCHASE: N_("No Purchase"),
}
TYPE_NAMES = {
    loyalty_types.SUPER_VALUE: N_("Super-value loyalty"),
    loyalty_types.INCENTIVE: N_("Incentive loyalty"),
    loyalty_types.PRICE: N_("Price loyalty"),
    loyalty_types.INERTIA: N_("Inertia loyalty"),
    loyalty_types.NONE: N_("None / new"),
}

# What the preview's cells are called.
NAMES = {"age": AGE_NAMES, "layer": LAYER_NAMES, "rfm": RFM_NAMES, "type": TYPE_NAMES}


def today(settings: Settings) -> date:
    return datetime.now(settings.zone).date()


# --- The form ---------------------------------------------------------------------------------


def form_of(raw: FormData) -> dict[str, Any]:
    """The builder's fields as typed: text as text, each multiple choice as a list."""
    form: dict[str, Any] = {name: str(raw.get(name, "")) for name in FIELDS if name not in LISTS}
    form["segment_id"] = str(raw.get("segment_id", ""))
    for name in LISTS:
        form[name] = [str(v) for v in raw.getlist(name)]
    return form


def form_from(criteria: Criteria, segment: Segment | None = None) -> dict[str, Any]:
    """A saved segment's (or the default) conditions as the form shows them."""
    stored = criteria.to_json()
    form: dict[str, Any] = {
        "name": segment.name if segment else "",
        "description": segment.description if segment else "",
        "segment_id": str(segment.id) if segment else "",
    }
    for name in FIELDS[2:]:
        value = stored.get(name)
        form[name] = value if isinstance(value, list) else ("" if value is None else str(value))
    form["consent"] = form["consent"] or "any"
    return form


def criteria_of(request: Request, form: dict[str, Any]) -> tuple[dict[str, Any], Problems]:
    """The conditions the form holds, read strictly: the values for `segments.parse` (an
    amount or a day that could not be read is left out, its problem noted) and the form's
    own problems."""
    problems = Problems()
    values: dict[str, Any] = {name: form[name] for name in LISTS}
    values["consent"] = form["consent"] or "any"
    values["p_alive_min"] = form["p_alive_min"]
    for name in AMOUNTS:
        values[name] = problems.check(
            name, partial(amount_field, request, form[name], LABELS[name])
        )
    for name in DAYS:
        values[name] = problems.check(name, partial(day_field, request, form[name], LABELS[name]))
    return values, problems


def _parsed(request: Request, form: dict[str, Any]) -> tuple[Criteria | None, Problems]:
    values, problems = criteria_of(request, form)
    try:
        criteria = segments.parse(values)
    except Invalid as exc:
        for name, error in exc.errors.items():  # each field's refusal, kept whole
            problems.refuse(name, error)
        return None, problems
    return (None if problems else criteria), problems


def _distinct(
    db: Session, column: InstrumentedAttribute[str | None], chosen: list[str]
) -> list[str]:
    """A multi-select's options: the distinct values members hold (the first
    `MAX_OPTIONS`), and whatever the form holds besides."""
    found = list(
        db.scalars(
            select(column)
            .distinct()
            .where(column.is_not(None), column != "")
            .order_by(column)
            .limit(MAX_OPTIONS)
        )
    )
    extra = [c for c in chosen if c.strip() and c not in found]
    return [str(v) for v in found] + extra


def _match(
    request: Request, db: Session, settings: Settings, criteria: Criteria | None, problems: Problems
) -> dict[str, Any]:
    """What the live count shows: how many members match and the first of them, or why
    they cannot be counted."""
    if criteria is None:
        said = say_each(request, problems.by_field, problems.errors)
        return {"count": None, "rows": [], "problems": list(said.values())}
    try:
        size = segments.count(db, criteria, today=today(settings), zone=settings.zone)
        first = segments.preview(db, criteria, today=today(settings), zone=settings.zone)
    except ValidationFailed as exc:
        return {"count": None, "rows": [], "problems": [say(request, exc)]}
    return {"count": size, "rows": first, "problems": []}


def _builder(
    request: Request,
    db: Session,
    settings: Settings,
    user: User,
    form: dict[str, Any],
    *,
    segment: Segment | None = None,
    errors: dict[str, str] | None = None,
    match: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    if match is None:
        criteria, problems = _parsed(request, form)
        match = _match(request, db, settings, criteria, problems)
    run = segments.latest_run(db)
    return render(
        request,
        "analytics/segment_form.html",
        {
            "form": form,
            "errors": errors or {},
            "segment": segment,
            "targets": segments.targets_of(db, segment.id) if segment else [],
            "match": match,
            "run": run,
            "can_edit": user.has_any(Role.ADMIN, Role.MARKETER),
            "options": {
                "regions": _distinct(db, Member.region, form["regions"]),
                "cities": _distinct(db, Member.city, form["cities"]),
                "occupations": _distinct(db, Member.occupation, form["occupations"]),
                "industries": _distinct(db, Member.industry, form["industries"]),
            },
            "tiers": program.ladder(db),
            "genders": GENDER_NAMES,
            "age_bands": {code: AGE_NAMES[code] for code in age_bands.CODES},
            "statuses": STATUS_NAMES,
            "consents": CONSENT_NAMES,
            "layers": LAYER_NAMES,
            "rfm_segments": RFM_NAMES,
            "loyalty_types": TYPE_NAMES,
            "names": NAMES,
            "limits": {
                "name": bounds.length(Segment.name),
                "description": bounds.length(Segment.description),
            },
            "preview_size": segments.PREVIEW,
        },
        status_code=status_code,
    )


# --- Pages ------------------------------------------------------------------------------------


@router.get("")
def list_page(request: Request, user: Reader, db: Db, settings: AppSettings) -> Response:
    listed = segments.list_segments(db, today=today(settings), zone=settings.zone)
    return render(
        request,
        "analytics/segments.html",
        {
            "listed": listed,
            "can_edit": user.has_any(Role.ADMIN, Role.MARKETER),
            "run": segments.latest_run(db),
        },
    )


@router.get("/new")
def new_page(request: Request, user: Planner, db: Db, settings: AppSettings) -> Response:
    return _builder(request, db, settings, user, form_from(Criteria()))


@router.post("/match")
def match(
    request: Request, user: Reader, db: Db, settings: AppSettings, raw: FormFields
) -> Response:
    """The live count: the `segment_match` block for htmx; without it, the whole builder with
    the form kept and each problem beside its field."""
    form = form_of(raw)
    segment = _segment_of(db, form["segment_id"])
    criteria, problems = _parsed(request, form)
    found = _match(request, db, settings, criteria, problems)
    if request.headers.get("HX-Request") == "true":
        return render(
            request,
            "analytics/segment_form.html",
            {"match": found, "names": NAMES},
            block="segment_match",
        )
    errors = say_each(request, problems.by_field, problems.errors)
    return _builder(
        request,
        db,
        settings,
        user,
        form,
        segment=segment,
        errors=errors,
        match=found,
        status_code=422 if errors else 200,
    )


def _segment_of(db: Session, raw: str) -> Segment | None:
    try:
        segment_id = bounds.parse_id(raw, "segment")
    except ValidationFailed:
        return None
    return db.get(Segment, segment_id) if segment_id is not None else None


def _save(
    request: Request,
    db: Session,
    settings: Settings,
    user: User,
    raw: FormData,
    segment: Segment | None,
) -> Response:
    form = form_of(raw)
    values, problems = criteria_of(request, form)

    def save() -> segments.Saved:
        return segments.save(
            db,
            actor_for(request, user),
            form["name"],
            form["description"],
            values,
            segment.id if segment else None,
        )

    def done(saved: segments.Saved) -> str:
        size = segments.count(
            db, segments.stored(saved.segment), today=today(settings), zone=settings.zone
        )
        return t(
            request,
            "Segment %(name)s saved: %(count)s members match now.",
            name=saved.segment.name,
            count=f"{size:,}",
        )

    return act(
        request,
        db,
        lambda: together(problems, save),
        done=done,
        then=lambda saved: f"/segments/{saved.segment.id}",
        again=lambda errors: _builder(
            request, db, settings, user, form, segment=segment, errors=errors
        ),
        names=FIELDS,
        codes=CODES,
    )


@router.post("")
def create(
    request: Request, user: Planner, db: Db, settings: AppSettings, raw: FormFields
) -> Response:
    return _save(request, db, settings, user, raw, None)


def _export_name(segment: Segment, settings: Settings, suffix: str) -> str:
    return f"segment-{segment.id}-{today(settings):%Y%m%d}.{suffix}"


@router.get("/{segment_id}.csv")
def export_csv(user: Reader, db: Db, settings: AppSettings, segment_id: SegmentId) -> Response:
    segment = segments.get(db, segment_id)
    lines = segments.export_csv(db, segment.id, today=today(settings), zone=settings.zone)
    name = _export_name(segment, settings, "csv")
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{segment_id}.xlsx")
def export_xlsx(user: Reader, db: Db, settings: AppSettings, segment_id: SegmentId) -> Response:
    segment = segments.get(db, segment_id)
    body = segments.export_xlsx(db, segment.id, today=today(settings), zone=settings.zone)
    name = _export_name(segment, settings, "xlsx")
    return Response(
        body,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{segment_id}")
def segment_page(
    request: Request, user: Reader, db: Db, settings: AppSettings, segment_id: SegmentId
) -> Response:
    segment = segments.get(db, segment_id)
    return _builder(
        request, db, settings, user, form_from(segments.stored(segment), segment), segment=segment
    )


@router.post("/{segment_id}")
def update(
    request: Request,
    user: Planner,
    db: Db,
    settings: AppSettings,
    segment_id: SegmentId,
    raw: FormFields,
) -> Response:
    return _save(request, db, settings, user, raw, segments.get(db, segment_id))


@router.post("/{segment_id}/delete")
def delete(request: Request, user: Planner, db: Db, segment_id: SegmentId) -> Response:
    return act(
        request,
        db,
        lambda: segments.delete_segment(db, actor_for(request, user), segment_id),
        done=lambda gone: t(request, "Segment %(name)s deleted.", name=gone.name),
        then=lambda gone: "/segments",
        back=f"/segments/{segment_id}",
    )


# --- A campaign's target ----------------------------------------------------------------------


def target_context(db: Session, campaign_id: int, today: date | None = None) -> dict[str, Any]:
    """What the campaign page's "Target segment" box shows: the target, the segments to
    choose from, the largest holdout, and whether the target is fixed (a campaign with a
    holdout that has started; the service refuses a change then, the box says so up front).
    `today` is the local day; without it the UTC day, close enough for what the box shows."""
    campaign = db.get(Campaign, campaign_id)
    target = segments.campaign_target(db, campaign_id)
    day = today or datetime.now(UTC).date()
    return {
        "target": target,
        "segment_choices": segments.names(db),
        "max_holdout_pct": MAX_HOLDOUT_PCT,
        "target_fixed": campaign is not None
        and target is not None
        and target.holdout_share > 0
        and segments.has_started(campaign, day),
    }


@router.post("/target/{campaign_id}")
def set_target(
    request: Request,
    user: Planner,
    db: Db,
    settings: AppSettings,
    campaign_id: CampaignId,
    raw: FormFields,
) -> Response:
    back = f"/campaigns/{campaign_id}#target-segment"
    problems = Problems()
    segment_id = problems.check(
        "segment_id", lambda: bounds.parse_id(str(raw.get("segment_id", "")), "segment")
    )
    holdout_pct = problems.check(
        "holdout_pct",
        lambda: bounds.parse_whole(
            str(raw.get("holdout_pct", "")),
            N_("Hold out %"),
            "holdout_pct",
            low=0,
            high=MAX_HOLDOUT_PCT,
        ),
    )

    def run() -> segments.Target | None:
        return segments.set_campaign_target(
            db,
            actor_for(request, user),
            campaign_id,
            segment_id,
            today=today(settings),
            zone=settings.zone,
            holdout_share=Decimal(holdout_pct or 0) / 100,
        )

    def done(target: segments.Target | None) -> str:
        if target is None:
            return t(request, "The campaign no longer targets a saved segment.")
        if target.holdout_share > 0:
            return t(
                request,
                "Target segment set: %(name)s, %(count)s members, frozen as the campaign's "
                "audience: %(held)s held out (%(pct)s%%), %(treated)s get the campaign.",
                name=target.segment_name,
                count=f"{target.audience_size:,}",
                held=f"{target.held_out:,}",
                pct=target.holdout_pct,
                treated=f"{target.treated:,}",
            )
        return t(
            request,
            "Target segment set: %(name)s, %(count)s members.",
            name=target.segment_name,
            count=f"{target.audience_size:,}",
        )

    return act(request, db, run, errors=problems, done=done, then=lambda _: back, back=back)


# --- A coupon batch issued to a segment -------------------------------------------------------


def restriction(
    request: Request, db: Session, raw_segment_id: str
) -> tuple[dict[str, Any], Segment | None]:
    """The keywords that restrict a coupon issue to saved segment `raw_segment_id` (as the
    issue form sent it; blank: none): the query of its members now and its name for the
    audit row. A refusal names the field `segment_id`."""
    segment_id = bounds.parse_id(raw_segment_id, "segment_id")
    if segment_id is None:
        return {}, None
    segment = db.get(Segment, segment_id)
    if segment is None:  # a bad field of the form, not a missing page
        raise ValidationFailed(
            "segment_id.not_found", "There is no saved segment %(id)s.", id=segment_id
        )
    settings: Settings = request.app.state.settings
    try:
        query = segments.member_ids(
            db, segments.stored(segment), today=today(settings), zone=settings.zone
        )
    except ValidationFailed as exc:
        raise ValidationFailed("segment_id.no_value_run", exc.template, **exc.params) from None
    return {"members_in": query, "segment": f"{segment.name} (#{segment.id})"}, segment
