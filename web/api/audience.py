"""API: audience analysis, members per group of one dimension (region, city, age band,
gender, occupation, industry) with revenue and value, and their response to campaigns
(`analytics.audience`, whose docstring defines every figure). Read only, for staff sessions
(marketer, finance, admin) and API keys with `campaigns:read` (campaigns and reports).

Money travels as strings in the base currency (value in the value run's), shares and rates as
percentages with two decimals (strings), null where there is nothing to divide by. Groups
come largest first (age bands youngest first), ``unknown`` last.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, PlainSerializer

from analytics import audience
from analytics.audience import LAYER_PREFIX, RFM_PREFIX, TYPE_PREFIX, Dimension
from campaigns.schemas import Day
from core import bounds
from core.accounts.models import Role
from web.api.auth import Caller, require
from web.api.campaigns import known_query_only
from web.api.responses import errors
from web.deps import AppSettings, Db

router = APIRouter(tags=["audience"], dependencies=[Depends(known_query_only)])
STAFF = (Role.MARKETER, Role.FINANCE, Role.ADMIN)
Reader = Annotated[Caller, Depends(require(scope="campaigns:read", roles=STAFF))]

Money = Annotated[Decimal, PlainSerializer(lambda v: str(v), return_type=str)]
Percent = Annotated[Decimal, PlainSerializer(lambda v: str(v), return_type=str)]
DimensionQuery = Annotated[
    Dimension, Query(description="What to group members by; blank or missing is `unknown`")
]
From = Annotated[
    Day | None, Query(alias="from", description="First local day of the period (inclusive)")
]
To = Annotated[
    Day | None, Query(alias="to", description="Last local day of the period (inclusive)")
]


class RunOut(BaseModel):
    id: int
    as_of: date
    currency: str


class GroupOut(BaseModel):
    group: str | None = Field(description="The group's value; null on the total")
    members: int
    member_share_pct: Percent | None
    purchasing_members: int
    revenue: Money
    revenue_share_pct: Percent | None
    revenue_per_member: Money | None
    scored: int | None = Field(None, description="Members with a score in the value run")
    value: Money | None = None
    average_value: Money | None = None
    layers: dict[str, int] | None = Field(None, description="Members per pyramid layer")
    rfm_segments: dict[str, int] | None = Field(None, description="Members per RFM segment")
    loyalty_types: dict[str, int] | None = Field(None, description="Members per loyalty type")


class ProfileOut(BaseModel):
    dimension: str
    period_from: date | None = Field(serialization_alias="from")
    period_to: date | None = Field(serialization_alias="to")
    currency: str
    run: RunOut | None = Field(description="The value run read; null before the first")
    groups: list[GroupOut]
    total: GroupOut


class CampaignOut(BaseModel):
    id: int
    code: str
    name: str
    starts_on: date
    ends_on: date


class ResponseGroupOut(BaseModel):
    group: str | None = Field(description="The group's value; null on the total")
    targeted: int = Field(description="Targetings: a member counts once per campaign")
    converted: int
    conversion_pct: Percent | None


class ResponseOut(BaseModel):
    dimension: str
    period_from: date | None = Field(serialization_alias="from")
    period_to: date | None = Field(serialization_alias="to")
    campaigns: list[CampaignOut] = Field(description="The campaigns counted")
    groups: list[ResponseGroupOut]
    total: ResponseGroupOut


def _plain(value: Any) -> Any:
    """numpy's integers as Python's."""
    if hasattr(value, "item") and not isinstance(value, Decimal):
        return value.item()
    return value


def _counts(row: dict[str, Any], prefix: str) -> dict[str, int]:
    return {
        str(k).removeprefix(prefix): int(v) for k, v in row.items() if str(k).startswith(prefix)
    }


def _group(row: dict[str, Any], has_run: bool) -> GroupOut:
    fields = {k: _plain(v) for k, v in row.items() if ":" not in str(k)}
    if has_run:
        fields.update(
            layers=_counts(row, LAYER_PREFIX),
            rfm_segments=_counts(row, RFM_PREFIX),
            loyalty_types=_counts(row, TYPE_PREFIX),
        )
    return GroupOut.model_validate(fields)


def _today(settings: AppSettings) -> date:
    return datetime.now(settings.zone).date()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


@router.get(
    "/audience",
    response_model=ProfileOut,
    summary="Members, revenue and value per group",
    description=(
        "One row per group of `dimension`: members who had joined by the end of the period"
        " (`from`/`to`: local dates, inclusive; open when left out), their share, members who"
        " bought in the period, revenue (net base amount of their purchases in the period,"
        " after refunds), its share and revenue per member; and from the latest value run"
        " (`run`; the fields are null before the first): scored members, total and average"
        " value, and members per pyramid layer, RFM segment and loyalty type. Age bands are"
        " ages today in the configured zone."
    ),
)
def get_audience(
    caller: Reader,
    db: Db,
    settings: AppSettings,
    dimension: DimensionQuery = "region",
    start: From = None,
    end: To = None,
) -> Any:
    frame = audience.profile(
        db,
        dimension,
        start=start,
        end=end,
        zone=settings.zone,
        today=_today(settings),
        base=settings.base_currency,
    )
    run = frame.attrs.get("run")
    return ProfileOut(
        dimension=dimension,
        period_from=start,
        period_to=end,
        currency=settings.base_currency,
        run=None if run is None else RunOut(**run),
        groups=[_group(r, run is not None) for r in _records(frame)],
        total=_group(audience.totals(frame), run is not None),
    )


@router.get(
    "/audience/response",
    response_model=ResponseOut,
    summary="Response of targeted members to campaigns, per group",
    description=(
        "Per group of `dimension`: targeted members, those who converted, and the conversion"
        " rate. A member is targeted by a campaign when, on or before its last day, they were"
        " issued one of its coupons or had one of its touchpoints (coupon use and purchases"
        " carrying its code are responses, not reach); they converted when they then made a"
        " purchase (not wholly refunded) within the campaign's dates. With `campaign_id`,"
        " that campaign; otherwise every campaign overlapping the period (`from`/`to`), a"
        " member counting once per campaign."
    ),
    responses=errors(404),
)
def get_audience_response(
    caller: Reader,
    db: Db,
    settings: AppSettings,
    dimension: DimensionQuery = "region",
    campaign_id: Annotated[
        bounds.RecordId | None, Query(description="One campaign; all in the period if left out")
    ] = None,
    start: From = None,
    end: To = None,
) -> Any:
    frame = audience.campaign_response(
        db,
        dimension,
        campaign_id=campaign_id,
        start=start,
        end=end,
        zone=settings.zone,
        today=_today(settings),
    )
    return ResponseOut(
        dimension=dimension,
        period_from=start,
        period_to=end,
        campaigns=[CampaignOut(**c) for c in frame.attrs["campaigns"]],
        groups=[
            ResponseGroupOut.model_validate({k: _plain(v) for k, v in r.items()})
            for r in _records(frame)
        ],
        total=ResponseGroupOut.model_validate(audience.totals(frame)),
    )
