"""Pydantic shapes for the attribution API. Money travels as a string with two decimals,
conversions as a string with six.

Every input states its bound (text by its column's length, times from 1900 to a few minutes
ahead of the server, lookbacks and half-lives by `attribution.runs`), so the OpenAPI
documents what the services check; the services check the same again for the CSV import
and the command line.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, PlainSerializer, Strict

from attribution import runs, touchpoints
from attribution.models import RunModel, TouchKind, Touchpoint, VisitorLink
from attribution.paths import Unit
from campaigns.models import Campaign, Channel
from campaigns.schemas import Amount, Day
from core.bounds import Text
from loyalty.models import Member
from loyalty.purchases import EARLIEST, FUTURE_SKEW

if TYPE_CHECKING:  # pydantic reads the bounds; the type checker sees plain text
    Source = str
    ExternalId = str
    ChannelCode = str
    CampaignCode = str
    MemberNumber = str
    VisitorId = str
else:
    Source = Text(
        Touchpoint.source,
        min_length=1,
        description=f"The sending system; '{touchpoints.DERIVED_SOURCE}' is kept for Retain",
        examples=["web"],
    )
    ExternalId = Text(Touchpoint.external_id, min_length=1, examples=["evt-000123"])
    ChannelCode = Text(Channel.code, min_length=1, description="Channel code", examples=["email"])
    CampaignCode = Text(Campaign.code, description="Campaign code")
    MemberNumber = Text(Member.number, min_length=1, examples=["M00000042"])
    VisitorId = Text(
        VisitorLink.visitor_id,
        min_length=1,
        description="An anonymous visitor's id (a cookie, a device)",
    )

When = Annotated[
    AwareDatetime,
    Field(
        ge=EARLIEST,
        description=f"With its offset; from {EARLIEST:%Y-%m-%d} (UTC) to at most "
        f"{int(FUTURE_SKEW.total_seconds() // 60)} minutes ahead of the server's clock",
    ),
]
Conversions = Annotated[Decimal, PlainSerializer(lambda v: f"{v:.6f}", return_type=str)]


class TouchpointIn(BaseModel):
    source: Source
    external_id: ExternalId
    member_number: MemberNumber | None = Field(None, description="A member number or a visitor id")
    visitor_id: VisitorId | None = None
    channel: ChannelCode
    campaign_code: CampaignCode | None = None
    kind: TouchKind
    occurred_at: When


class TouchpointBatchIn(BaseModel):
    touchpoints: list[TouchpointIn] = Field(
        min_length=1,
        max_length=touchpoints.MAX_BATCH,
        description="Recorded all or nothing; each unique by (source, external_id)",
    )


class TouchpointOut(BaseModel):
    source: str
    external_id: str
    id: int
    replayed: bool = Field(description="Recorded before with the same content; nothing written")


class TouchpointBatchOut(BaseModel):
    received: int
    created: int
    replayed: int
    touchpoints: list[TouchpointOut]


class LinkIn(BaseModel):
    visitor_id: VisitorId
    member_number: MemberNumber


class LinkOut(BaseModel):
    visitor_id: str
    member_number: str
    linked_at: datetime
    replayed: bool


# In a body, JSON numbers and booleans as such (not "7", not 0 for false).
LookbackDays = Annotated[int, Strict(), Field(ge=1, le=runs.MAX_LOOKBACK_DAYS)]
HalfLifeDays = Annotated[int, Strict(), Field(ge=1, le=runs.MAX_HALF_LIFE_DAYS)]
Order = Annotated[int, Strict(), Field(ge=1, le=3)]
Switch = Annotated[bool, Strict()]


class RunIn(BaseModel):
    """A run's parameters (see `GET /attribution` for their meaning)."""

    model: RunModel = RunModel.MARKOV
    order: Order = Field(1, description="Markov order; only Markov runs use it")
    unit: Unit = "channel"
    lookback_days: LookbackDays = runs.DEFAULT_LOOKBACK_DAYS
    acquisition_lookback_days: LookbackDays = runs.DEFAULT_ACQUISITION_LOOKBACK_DAYS
    half_life_days: HalfLifeDays = Field(
        runs.DEFAULT_HALF_LIFE_DAYS, description="Time decay's half-life; only it uses it"
    )
    collapse_repeats: Switch = False
    signups: Switch = Field(False, description="Count sign-ups as (acquisition) conversions")
    period_from: Day | None = Field(None, alias="from")
    period_to: Day | None = Field(None, alias="to")

    model_config = {"populate_by_name": True}


class CreditOut(BaseModel):
    key: str = Field(description="The channel's or campaign's code")
    label: str
    conversions: Conversions
    value: Amount
    channel_id: int | None
    campaign_id: int | None
    removal_effect: float | None = None
    value_removal_effect: float | None = None


class PathOut(BaseModel):
    path: str
    conversions: int
    value: str
    nulls: int


class TransitionOut(BaseModel):
    source: str = Field(alias="from")
    to: str
    count: int
    probability: float

    model_config = {"populate_by_name": True}


class PositionOut(BaseModel):
    unit: str
    position: int
    conversions: str
    value: str


class RunOut(BaseModel):
    id: int
    model: RunModel
    order: int | None
    unit: Literal["channel", "campaign"]
    lookback_days: int
    acquisition_lookback_days: int
    half_life_days: int | None
    collapse_repeats: bool
    signups: bool
    period_from: date | None = Field(serialization_alias="from")
    period_to: date | None = Field(serialization_alias="to")
    status: str
    currency: str
    created_at: datetime
    created_by: str
    computed: bool = Field(description="Computed for this request (no stored run matched)")
    touchpoints: int
    journeys: int
    total_conversions: int = Field(description="Conversions with a touch: what credits add to")
    total_value: Amount
    direct_conversions: int = Field(description="Conversions with no touch in their window")
    direct_value: Amount
    null_journeys: int
    p_conversion: float | None
    expected_value: float | None
    credits: list[CreditOut]
    top_paths: list[PathOut]
    transitions: list[TransitionOut] | None
    by_position: list[PositionOut] | None


def run_out(run: runs.StoredRun, *, computed: bool) -> dict[str, Any]:
    """A stored run as `RunOut` reads it."""
    assert run.id is not None and run.created_at is not None
    params = run.params.described()
    return {
        "id": run.id,
        "model": run.model,
        "order": params["order"],
        "unit": run.params.unit,
        "lookback_days": run.params.lookback_days,
        "acquisition_lookback_days": run.params.acquisition_lookback_days,
        "half_life_days": params["half_life_days"],
        "collapse_repeats": run.params.collapse_repeats,
        "signups": run.params.signups,
        "period_from": run.params.period_from,
        "period_to": run.params.period_to,
        "status": run.status,
        "currency": run.currency or "",
        "created_at": run.created_at,
        "created_by": run.created_by or "",
        "computed": computed,
        "touchpoints": run.touchpoints,
        "journeys": run.journeys,
        "total_conversions": run.total_conversions,
        "total_value": run.total_value,
        "direct_conversions": run.direct_conversions,
        "direct_value": run.direct_value,
        "null_journeys": run.null_journeys,
        "p_conversion": run.p_conversion,
        "expected_value": run.expected_value,
        "credits": [
            {
                "key": c.key,
                "label": c.label,
                "conversions": c.conversions,
                "value": c.value,
                "channel_id": c.channel_id,
                "campaign_id": c.campaign_id,
                "removal_effect": c.removal_effect,
                "value_removal_effect": c.value_removal_effect,
            }
            for c in run.credits
        ],
        "top_paths": list(run.top_paths),
        "transitions": None if run.transitions is None else list(run.transitions),
        "by_position": None if run.by_position is None else list(run.by_position),
    }
