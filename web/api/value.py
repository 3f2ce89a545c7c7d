"""API: customer value runs (issue 14). A run computes, as of one day, every member's pyramid
layer, RFM scores and segment, loyalty type and lifetime value in six parts, and stores them
(`analytics.runs`); the reads answer stored runs and never recompute.

- `POST /value/runs` computes and stores a run with the given parameters (`value:write`;
  marketers and admins).
- `GET /value/runs/latest`, `GET /value/runs/{id}`: a run's parameters, fitted models and
  summary: the layer table (exact sums in the run's currency), members per RFM segment and
  loyalty type.
- `GET /value/runs/{id}/members`: its members' scores, filtered by layer, segment and type,
  highest value first, paged by `limit` (1–500) and `offset`.
- `GET /value/members/{number}`: one member's scores in the latest run.

Money is a string at the currency's minor units ("1234.50"); shares are fractions (0–1,
the negative layer's value share below 0), `null` where there is none.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, Strict

from analytics import loyalty_types, pyramid, rfm, runs
from analytics.models import MemberScore, ValueRun
from campaigns.schemas import Day
from core import bounds
from core.accounts.models import Role
from core.errors import NotFound, ValidationFailed
from core.money import minor_units
from core.timeutil import to_zone, utcnow
from loyalty import members
from loyalty.models import Member
from web.api.auth import Caller, require
from web.api.campaigns import known_query_only
from web.api.responses import errors
from web.deps import AppSettings, Db
from web.pages.value import Selection, count_members, grouped, layer_table, list_members

router = APIRouter(tags=["customer value"], dependencies=[Depends(known_query_only)])
STAFF = (Role.MARKETER, Role.FINANCE, Role.ADMIN)
Reader = Annotated[Caller, Depends(require(scope="value:read", roles=STAFF))]
Runner = Annotated[Caller, Depends(require(scope="value:write", roles=(Role.MARKETER, Role.ADMIN)))]
RunId = Annotated[int, Path(ge=1, le=bounds.MAX_ID, description="A stored run's id")]
Number = Annotated[
    str,
    Path(max_length=bounds.length(Member.number), description="The member number"),
]
MAX_LIMIT = 500

# --- In ------------------------------------------------------------------------------------

Whole = Annotated[int, Strict(), Field(ge=0, le=10**9)]
Share = Annotated[Decimal, Field(ge=0, le=1, decimal_places=6)]


class ThresholdsIn(BaseModel):
    """The loyalty types' thresholds (see `/value/types`); any left out keep their default."""

    model_config = ConfigDict(extra="forbid")

    inertia_min_repeat: Whole | None = None
    inertia_max_engagement: Whole | None = None
    min_purchases: Whole | None = None
    price_min_discounted_share: Share | None = None
    incentive_min_campaign_share: Share | None = None
    incentive_max_outside_rate: (
        Annotated[Decimal, Field(ge=0, le=1000, decimal_places=6)] | None
    ) = None
    super_min_repeat: Whole | None = None
    super_min_full_price_share: Share | None = None
    super_min_referrals: Whole | None = None


Category = Annotated[str, bounds.Text(64), Field(min_length=1)]


class RunIn(BaseModel):
    """A run's parameters; every one has a default."""

    model_config = ConfigDict(extra="forbid")

    as_of: Day | None = Field(
        None, description="The last local day counted; default yesterday. Not after today."
    )
    period_days: Annotated[int, Strict(), Field(ge=28, le=runs.MAX_PERIOD_DAYS)] = Field(
        365, description="The pyramid's and the loyalty types' period, ending as_of"
    )
    margin: Share = Field(Decimal("0.3"), description="Gross margin on net purchases (0.3 = 30%)")
    category_margins: dict[Category, Share] = Field(
        default_factory=dict, max_length=200, description="Margins of categories, overriding"
    )
    point_value: Annotated[Decimal, Field(ge=0, le=1000, decimal_places=4)] | None = Field(
        None, description="What a point costs; default the program's value per point"
    )
    yearly_service_cost: Annotated[Decimal, Field(ge=0, le=10**9, decimal_places=4)] = Field(
        Decimal(0), description="Cost of serving one member for a year"
    )
    top_share: Annotated[Decimal, Field(gt=0, le=1, decimal_places=6)] = Field(
        Decimal("0.5"), description="Share of the positive value the most valuable hold"
    )
    growth_factor: Annotated[Decimal, Field(ge=1, le=100, decimal_places=6)] = Field(
        Decimal("1.5"), description="Predicted margin above this × value: most growable"
    )
    horizon_months: Annotated[int, Strict(), Field(ge=1, le=runs.MAX_HORIZON_MONTHS)] = 12
    yearly_discount_rate: Share = Field(Decimal("0.1"), description="0.1 = 10% a year")
    holdout_days: Annotated[int, Strict(), Field(ge=28, le=365)] = Field(
        91, description="Days held out to check the fitted model"
    )
    thresholds: ThresholdsIn | None = None


# --- Out -----------------------------------------------------------------------------------


class LayerOut(BaseModel):
    layer: str
    members: int
    member_share: float | None
    value: str
    value_share: float | None = Field(description="Of the total positive value")
    average_value: str | None


class RunOut(BaseModel):
    id: int
    as_of: date
    period_days: int
    currency: str
    members: int
    created_at: datetime
    created_by: str
    params: dict[str, Any]
    fit: dict[str, Any] = Field(
        description="`model`: the BG/NBD and Gamma-Gamma fits with standard errors; `holdout`:"
        " the refit with the last holdout_days held out, predicted against actual by frequency;"
        " `note`/`holdout_note` say why one is missing"
    )
    layers: list[LayerOut]
    positive_value: str
    rfm_segments: dict[str, int]
    loyalty_types: dict[str, int]
    full_price_share: str


class ScoreOut(BaseModel):
    member_number: str
    layer: str
    net_purchases: str
    cost_to_serve: str
    value: str
    predicted_value: str | None
    purchases: int
    last_purchase: date | None
    monetary: str
    r: int | None
    f: int | None
    m: int | None
    rfm_segment: str
    loyalty_type: str
    p_alive: float | None
    expected_purchases: float | None
    clv1: str
    clv2: str
    clv3: str
    clv4: str
    clv5: str
    clv6: str
    clv_total: str


class MembersPage(BaseModel):
    run_id: int
    total: int
    limit: int
    offset: int
    members: list[ScoreOut]


class MemberValueOut(BaseModel):
    run_id: int
    as_of: date
    currency: str
    score: ScoreOut


def _money(value: Decimal | None, currency: str) -> str | None:
    if value is None:
        return None
    places = Decimal(1).scaleb(-minor_units(currency))
    return str(value.quantize(places, ROUND_HALF_UP))


def _share(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(Decimal("0.000001"), ROUND_HALF_UP))


def _finite(value: Any) -> Any:
    """JSON as stored, with any NaN or infinity (a failed fit's figure) as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def run_out(db: Db, run: ValueRun) -> RunOut:
    rows, _, positive = layer_table(db, run)
    currency = run.currency
    summary = run.summary or {}
    counted = {k: n for k, (n, _) in grouped(db, run.id, MemberScore.rfm_segment, ()).items()}
    kinds = {k: n for k, (n, _) in grouped(db, run.id, MemberScore.loyalty_type, ()).items()}
    return RunOut(
        id=run.id,
        as_of=run.as_of,
        period_days=run.period_days,
        currency=currency,
        members=run.members,
        created_at=run.created_at,
        created_by=run.actor_label,
        params=run.params,
        fit=_finite(run.fit or {}),
        layers=[
            LayerOut(
                layer=r.layer,
                members=r.members,
                member_share=_share(r.member_share),
                value=_money(r.value, currency) or "0",
                value_share=_share(r.value_share),
                average_value=_money(r.average_value, currency),
            )
            for r in rows
        ],
        positive_value=_money(positive, currency) or "0",
        rfm_segments={s: int(counted.get(s, 0)) for s in rfm.SEGMENTS},
        loyalty_types={k: int(kinds.get(k, 0)) for k in loyalty_types.TYPES},
        full_price_share=str(summary.get("full_price_share", "0")),
    )


def score_out(number: str, s: MemberScore, currency: str) -> ScoreOut:
    def m(value: Decimal) -> str:
        return _money(value, currency) or "0"

    return ScoreOut(
        member_number=number,
        layer=s.layer,
        net_purchases=m(s.net_purchases),
        cost_to_serve=m(s.cost_to_serve),
        value=m(s.value),
        predicted_value=_money(s.predicted_value, currency),
        purchases=s.purchases,
        last_purchase=s.last_purchase,
        monetary=m(s.monetary),
        r=s.r,
        f=s.f,
        m=s.m,
        rfm_segment=s.rfm_segment,
        loyalty_type=s.loyalty_type,
        p_alive=s.p_alive,
        expected_purchases=s.expected_purchases,
        clv1=m(s.clv1),
        clv2=m(s.clv2),
        clv3=m(s.clv3),
        clv4=m(s.clv4),
        clv5=m(s.clv5),
        clv6=m(s.clv6),
        clv_total=m(s.clv_total),
    )


def _latest(db: Db) -> ValueRun:
    run = runs.latest_run(db)
    if run is None:
        raise NotFound(
            "value.run_not_found",
            "No customer value run has been computed yet: POST /api/v1/value/runs first.",
        )
    return run


def params_of(body: RunIn, today: date) -> runs.ValueParams:
    if body.as_of is not None and body.as_of > today:
        raise ValidationFailed("value.as_of", "The as-of day cannot be after today.")
    thresholds = loyalty_types.LoyaltyThresholds(
        **{
            k: v
            for k, v in (body.thresholds.model_dump() if body.thresholds else {}).items()
            if v is not None
        }
    )
    return runs.ValueParams(
        as_of=body.as_of,
        period_days=body.period_days,
        margin=body.margin,
        category_margins=dict(body.category_margins),
        point_value=body.point_value,
        yearly_service_cost=body.yearly_service_cost,
        top_share=body.top_share,
        growth_factor=body.growth_factor,
        horizon_months=body.horizon_months,
        yearly_discount_rate=body.yearly_discount_rate,
        holdout_days=body.holdout_days,
        thresholds=thresholds,
    )


@router.post(
    "/value/runs",
    response_model=RunOut,
    status_code=201,
    summary="Compute and store a customer value run",
    description=(
        "Reads every member's purchases, coupons and points up to `as_of` (default yesterday"
        " in the configured zone), fits BG/NBD and Gamma-Gamma, and stores each member's"
        " pyramid layer, RFM scores and segment, loyalty type and lifetime value in six parts."
        " Each call stores a new run (earlier ones are kept for comparison); computing takes"
        " a while on a large program."
    ),
)
def post_run(body: RunIn, caller: Runner, db: Db, settings: AppSettings) -> RunOut:
    today = to_zone(utcnow(), settings.zone).date()
    params = params_of(body, today)
    stored = runs.run(db, caller.actor, params, base=settings.base_currency, zone=settings.zone)
    answer = run_out(db, stored)
    db.commit()
    return answer


@router.get(
    "/value/runs/latest",
    response_model=RunOut,
    summary="The latest customer value run",
    responses=errors(404),
)
def latest(caller: Reader, db: Db) -> RunOut:
    return run_out(db, _latest(db))


@router.get(
    "/value/runs/{run_id}",
    response_model=RunOut,
    summary="A stored customer value run",
    responses=errors(404),
)
def get_run(run_id: RunId, caller: Reader, db: Db) -> RunOut:
    return run_out(db, runs.get_run(db, run_id))


@router.get(
    "/value/runs/{run_id}/members",
    response_model=MembersPage,
    summary="Members' scores in a run",
    description="Highest value first (then by member); every filter given must hold.",
    responses=errors(404),
)
def run_members(
    run_id: RunId,
    caller: Reader,
    db: Db,
    layer: Annotated[str | None, Query(description=", ".join(pyramid.LAYERS))] = None,
    segment: Annotated[str | None, Query(description=", ".join(rfm.SEGMENTS))] = None,
    type: Annotated[str | None, Query(description=", ".join(loyalty_types.TYPES))] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=bounds.MAX_ID)] = 0,
) -> MembersPage:
    for name, value, allowed in (
        ("layer", layer, pyramid.LAYERS),
        ("segment", segment, rfm.SEGMENTS),
        ("type", type, loyalty_types.TYPES),
    ):
        if value is not None and value not in allowed:
            raise ValidationFailed(
                f"value.{name}",
                f"Unknown {name} '{value[:40]}'; use one of: {', '.join(allowed)}.",
            )
    run = runs.get_run(db, run_id)
    selection = Selection(layer=layer, segment=segment, type=type)
    total = count_members(db, run.id, selection)
    found = list_members(db, run.id, selection, limit=limit, offset=offset)
    return MembersPage(
        run_id=run.id,
        total=total,
        limit=limit,
        offset=offset,
        members=[score_out(r.number, r.score, run.currency) for r in found],
    )


@router.get(
    "/value/members/{number}",
    response_model=MemberValueOut,
    summary="A member's scores in the latest run",
    responses=errors(404),
)
def member_value(number: Number, caller: Reader, db: Db) -> MemberValueOut:
    member = members.by_number(db, number)
    run = _latest(db)
    score = db.get(MemberScore, (run.id, member.id))
    if score is None:
        raise NotFound(
            "value.member_not_scored",
            f"Member {member.number} is not in the latest run {run.id} (as of"
            f" {run.as_of.isoformat()}): they joined after it.",
        )
    return MemberValueOut(
        run_id=run.id,
        as_of=run.as_of,
        currency=run.currency,
        score=score_out(member.number, score, run.currency),
    )
