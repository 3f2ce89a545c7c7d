"""API: a campaign's incremental lift against its holdout (`attribution.lift_data`, whose
docstring defines the window, revenue, converters and cost; `attribution.lift` every figure),
and the sample size a holdout needs. Read only, for staff sessions (marketer, finance, admin)
and API keys with `campaigns:read`.

Money travels as strings in the base currency; rates, the lift and p-values as numbers
(statistics, floats); a figure that cannot be computed is null, with its reason in `reasons`.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field, PlainSerializer

from analytics import segments
from attribution import lift, lift_data
from attribution.lift import ArmSummary, LiftReport
from campaigns import planning
from core import bounds
from core.accounts.models import Role
from core.errors import ValidationFailed
from web.api.auth import Caller, require
from web.api.campaigns import known_query_only
from web.api.responses import errors
from web.deps import AppSettings, Db

router = APIRouter(tags=["lift"], dependencies=[Depends(known_query_only)])
STAFF = (Role.MARKETER, Role.FINANCE, Role.ADMIN)
Reader = Annotated[Caller, Depends(require(scope="campaigns:read", roles=STAFF))]

Money = Annotated[Decimal, PlainSerializer(lambda v: str(v), return_type=str)]
Ratio = Annotated[Decimal, PlainSerializer(lambda v: str(v), return_type=str)]
CampaignId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]


class CampaignOut(BaseModel):
    id: int
    code: str
    name: str
    starts_on: date
    ends_on: date


class ArmOut(BaseModel):
    members: int
    converters: int | None = Field(description="Null until the campaign has started")
    conversion_rate: float | None
    revenue: Money | None
    revenue_per_member: Money | None


class ZTestOut(BaseModel):
    z: float
    p_value: float


class IntervalOut(BaseModel):
    low: Money
    high: Money
    confidence: float
    resamples: int
    seed: int


class VerdictOut(BaseModel):
    code: str
    message: str = Field(description="In English; `code` names it")


class CostOut(BaseModel):
    receipts: Money = Field(description="Approved and paid receipts")
    loyalty: Money = Field(description="Coupons, bonus points and rewards")
    total: Money


class LiftOut(BaseModel):
    campaign: CampaignOut
    currency: str
    state: Literal["no_target", "no_holdout", "no_audience", "not_started", "measured"] = Field(
        description=(
            "`measured` carries the report; the others say why there is none yet: no saved"
            " target segment, a target without a holdout, nobody in the frozen audience, or"
            " the campaign window not yet open"
        )
    )
    segment_id: int | None
    holdout_share: Ratio | None = Field(description="The share of the segment held out")
    treated: ArmOut
    holdout: ArmOut
    through: date | None = Field(description="The last local day counted")
    lift: float | None = None
    incremental_conversions: float | None = None
    revenue_per_member_difference: Money | None = None
    incremental_revenue: Money | None = None
    incremental_roas: Ratio | None = None
    incremental_roi_pct: Ratio | None = None
    z_test: ZTestOut | None = None
    revenue_interval: IntervalOut | None = None
    verdict: VerdictOut | None = None
    alpha: float | None = None
    cost: CostOut | None = None
    reasons: dict[str, str] = Field(default_factory=dict)


class SampleSizeOut(BaseModel):
    baseline: float
    lift: float
    power: float
    alpha: float
    holdout_share: float
    holdout: int = Field(description="Held-out members needed")
    treated: int = Field(description="Members who get the campaign needed")
    total: int


def _arm(arm: ArmSummary) -> ArmOut:
    return ArmOut(
        members=arm.members,
        converters=arm.converters,
        conversion_rate=arm.conversion_rate,
        revenue=arm.revenue,
        revenue_per_member=arm.revenue_per_member,
    )


def _empty(members: int) -> ArmOut:
    return ArmOut(
        members=members,
        converters=None,
        conversion_rate=None,
        revenue=None,
        revenue_per_member=None,
    )


def _report_fields(report: LiftReport) -> dict[str, Any]:
    test, interval = report.z_test, report.revenue_interval
    return {
        "treated": _arm(report.treated),
        "holdout": _arm(report.holdout),
        "lift": report.lift,
        "incremental_conversions": report.incremental_conversions,
        "revenue_per_member_difference": report.revenue_per_member_difference,
        "incremental_revenue": report.incremental_revenue,
        "incremental_roas": report.incremental_roas,
        "incremental_roi_pct": report.incremental_roi_pct,
        "z_test": None if test is None else ZTestOut(z=test.z, p_value=test.p_value),
        "revenue_interval": None
        if interval is None
        else IntervalOut(
            low=interval.low,
            high=interval.high,
            confidence=interval.confidence,
            resamples=interval.resamples,
            seed=interval.seed,
        ),
        "verdict": VerdictOut(code=report.verdict.code, message=report.verdict.message),
        "alpha": report.alpha,
        "reasons": dict(report.reasons),
    }


def lift_out(db: Db, settings: AppSettings, campaign_id: int) -> LiftOut:
    """The lift of a campaign as the API answers it (the CLI prints the same)."""
    campaign = planning.get(db, campaign_id)
    base = settings.base_currency
    today = datetime.now(settings.zone).date()
    target = segments.campaign_target(db, campaign.id)
    out: dict[str, Any] = {
        "campaign": CampaignOut(
            id=campaign.id,
            code=campaign.code,
            name=campaign.name,
            starts_on=campaign.starts_on,
            ends_on=campaign.ends_on,
        ),
        "currency": base,
        "segment_id": None if target is None else target.segment_id,
        "holdout_share": None if target is None else target.holdout_share,
        "treated": _empty(0),
        "holdout": _empty(0),
        "through": None,
    }
    if target is None:
        return LiftOut(state="no_target", **out)
    if target.holdout_share == 0:
        return LiftOut(state="no_holdout", **out)
    found = lift_data.campaign_lift(db, campaign.id, today=today, zone=settings.zone, base=base)
    out["treated"], out["holdout"] = _empty(found.arms.treated), _empty(found.arms.held_out)
    if found.report is None:
        return LiftOut(state=found.state, **out)
    cost = found.cost
    assert cost is not None
    return LiftOut(
        **(
            out
            | _report_fields(found.report)
            | {
                "through": found.through,
                "cost": CostOut(receipts=cost.receipts, loyalty=cost.loyalty, total=cost.total),
            }
        ),
        state="measured",
    )


@router.get(
    "/campaigns/{campaign_id}/lift",
    response_model=LiftOut,
    summary="What a campaign added, measured against its holdout",
    description=(
        "The campaign's frozen audience in two groups, the members who got the campaign and"
        " those held out, over the campaign's dates (local days, inclusive; so far while it"
        " runs): members, converters (at least one purchase not refunded in full),"
        " conversion rate, revenue (net base amount) and revenue per member; lift in"
        " conversion; incremental conversions and revenue; incremental ROAS and ROI on the"
        " campaign's cost (approved receipts plus loyalty cost); the pooled two-proportion"
        " z-test; a seeded bootstrap interval on the difference in revenue per member; and"
        " the verdict. `state` says why there is no report yet."
    ),
    responses=errors(404, 409),
)
def get_lift(caller: Reader, db: Db, settings: AppSettings, campaign_id: CampaignId) -> Any:
    return lift_out(db, settings, campaign_id)


# The calculator's bounds (a rate or share of 0.01 % is the finest that means anything; below
# it the arithmetic itself breaks down). The CLI holds its options to the same.
LOWEST = 0.0001
MAX_LIFT = 10.0


def sample_size_checked(
    baseline: float, lift_: float, power: float, alpha: float, holdout_share: float
) -> lift.SampleSize:
    """`lift.sample_size` with every input held to the API's bounds first."""
    checks = (
        ("baseline", baseline, LOWEST <= baseline < 1, "from 0.0001 to below 1"),
        ("lift", lift_, LOWEST <= lift_ <= MAX_LIFT, f"from 0.0001 to {MAX_LIFT:g}"),
        ("power", power, 0.5 <= power < 1, "from 0.5 to below 1"),
        ("alpha", alpha, LOWEST <= alpha <= 0.5, "from 0.0001 to 0.5"),
        ("holdout_share", holdout_share, LOWEST <= holdout_share <= 0.5, "from 0.0001 to 0.5"),
    )
    for name, value, ok, bounds_text in checks:
        if not (math.isfinite(value) and ok):
            raise ValidationFailed(f"lift.{name}", f"{name} must be {bounds_text}, not {value:g}.")
    share = Decimal(repr(holdout_share))
    return lift.sample_size(baseline, lift_, alpha=alpha, power=power, holdout_share=share)


@router.get(
    "/lift/sample-size",
    response_model=SampleSizeOut,
    summary="Members a holdout test needs",
    description=(
        "Members needed in each group to detect a relative lift of `lift` (0.1 = 10 %) over"
        " the `baseline` conversion rate (the holdout's expected rate) with a two-sided pooled"
        " two-proportion test at level `alpha` with `power`, when `holdout_share` of the"
        " segment is held out (Fleiss, Tytun & Ury 1980). Fractions, not percentages."
    ),
)
def get_sample_size(
    caller: Reader,
    baseline: Annotated[
        float, Query(ge=LOWEST, lt=1, description="Baseline conversion rate (0.1 = 10 %)")
    ],
    lift_: Annotated[
        float,
        Query(alias="lift", ge=LOWEST, le=MAX_LIFT, description="Minimum detectable lift"),
    ],
    power: Annotated[float, Query(ge=0.5, lt=1)] = 0.8,
    alpha: Annotated[float, Query(ge=LOWEST, le=0.5)] = lift.DEFAULT_ALPHA,
    holdout_share: Annotated[float, Query(ge=LOWEST, le=0.5)] = 0.5,
) -> Any:
    found = sample_size_checked(baseline, lift_, power, alpha, holdout_share)
    return SampleSizeOut(
        baseline=baseline,
        lift=lift_,
        power=power,
        alpha=alpha,
        holdout_share=holdout_share,
        holdout=found.holdout,
        treated=found.treated,
        total=found.total,
    )
