"""API: saved segments (conditions over member fields and the latest value run's scores),
each with its audience counted now, and their members page by page.

Creating a segment may be retried with an `Idempotency-Key` header: a retry with the same key
within a day answers the segment the first call created (`replayed`), whatever the body.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from sqlalchemy.orm import Session

from analytics import age_bands, loyalty_types, pyramid, rfm, segments
from analytics.models import Segment
from campaigns.schemas import Day, SignedMoney
from core import bounds
from core.accounts.models import Role
from core.bounds import Text
from core.settings import Settings
from loyalty.models import Member, Tier
from web.api.auth import Caller, require
from web.api.campaigns import known_query_only
from web.api.responses import errors
from web.deps import AppSettings, Db

router = APIRouter(tags=["segments"], dependencies=[Depends(known_query_only)])
STAFF = (Role.MARKETER, Role.FINANCE, Role.ADMIN)
Reader = Annotated[Caller, Depends(require(scope="segments:read", roles=STAFF))]
Writer = Annotated[
    Caller, Depends(require(scope="segments:write", roles=(Role.MARKETER, Role.ADMIN)))
]
SegmentId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=segments.KEY_LENGTH,
        description="A unique key per segment to create; a retry with the same key within a"
        " day answers the segment the first call created",
    ),
]
# An amount out of the API: the exact stored decimal, as a string.
Exact = Annotated[Decimal, PlainSerializer(lambda v: f"{v:f}", return_type=str)]

if TYPE_CHECKING:  # pydantic reads the bounds and choices; the type checker sees plain text
    Region = str
    City = str
    Occupation = str
    Industry = str
    TierCode = str
    SegmentName = str
    Description = str
    Gender = str
    AgeBand = str
    Status = str
    Layer = str
    RfmSegment = str
    LoyaltyType = str
else:
    Region = Text(Member.region)
    City = Text(Member.city)
    Occupation = Text(Member.occupation)
    Industry = Text(Member.industry)
    TierCode = Text(Tier.code, examples=["gold"])
    SegmentName = Text(Segment.name, min_length=1, examples=["Shanghai champions"])
    Description = Text(Segment.description)
    Gender = Literal[segments.GENDERS]
    AgeBand = Literal[age_bands.CODES]
    Status = Literal[segments.STATUSES]
    Layer = Literal[pyramid.LAYERS]
    RfmSegment = Literal[rfm.SEGMENTS]
    LoyaltyType = Literal[loyalty_types.TYPES]


def _values() -> Any:
    """A list of up to `segments.MAX_VALUES` values, empty by default."""
    return Field(default_factory=list, max_length=segments.MAX_VALUES)


class CriteriaIn(BaseModel):
    """A segment's conditions. Conditions on different fields all hold; the values listed for
    one field are alternatives; an empty list means any. Pyramid layer, RFM segment, loyalty
    type, value, lifetime value and P(alive) come from the latest value run (a member without
    a score in it matches none of them; with no run computed they are refused)."""

    model_config = ConfigDict(extra="forbid")

    regions: list[Region] = _values()
    cities: list[City] = _values()
    genders: list[Gender] = Field(
        default_factory=list, max_length=len(segments.GENDERS), description="unknown: not given"
    )
    age_bands: list[AgeBand] = Field(
        default_factory=list,
        max_length=len(age_bands.CODES),
        description="Age on the day asked; unknown: no birthday on record",
    )
    occupations: list[Occupation] = _values()
    industries: list[Industry] = _values()
    tiers: list[TierCode] = _values()
    statuses: list[Status] = Field(
        default_factory=lambda: ["active"],
        max_length=len(segments.STATUSES),
        description="Member statuses; an empty list means any",
    )
    consent: Literal["any", "yes", "no"] = Field("any", description="Marketing consent")
    joined_from: Day | None = Field(None, description="Local day joined, inclusive")
    joined_to: Day | None = Field(None, description="Local day joined, inclusive")
    layers: list[Layer] = Field(default_factory=list, max_length=len(pyramid.LAYERS))
    rfm_segments: list[RfmSegment] = Field(default_factory=list, max_length=len(rfm.SEGMENTS))
    loyalty_types: list[LoyaltyType] = Field(
        default_factory=list, max_length=len(loyalty_types.TYPES)
    )
    value_min: SignedMoney | None = Field(None, description="Contributed value, at least")
    value_max: SignedMoney | None = Field(None, description="Contributed value, at most")
    clv_min: SignedMoney | None = Field(None, description="Predicted lifetime value, at least")
    clv_max: SignedMoney | None = Field(None, description="Predicted lifetime value, at most")
    p_alive_min: (
        Annotated[Decimal, Field(ge=0, le=1, decimal_places=segments.P_ALIVE_PLACES)] | None
    ) = Field(None, description="P(alive), at least")


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SegmentName
    description: Description = ""
    criteria: CriteriaIn = Field(default_factory=CriteriaIn)


class CampaignRef(BaseModel):
    id: int
    code: str
    name: str


class SegmentOut(BaseModel):
    id: int
    name: str
    description: str
    criteria: CriteriaIn
    audience_size: int | None = Field(
        description="Members matching now; null when it cannot be counted"
    )
    audience_problem: str | None = Field(None, description="Why it cannot be counted")
    value_run_as_of: date | None = Field(description="The day of the value run scores come from")
    target_of: list[CampaignRef] = Field(description="Campaigns targeting this segment")
    created_at: datetime
    updated_at: datetime
    replayed: bool = False


class SegmentMemberOut(BaseModel):
    number: str
    name: str
    gender: str | None
    region: str | None
    city: str | None
    age_band: str
    occupation: str | None
    industry: str | None
    tier: str
    status: str
    marketing_consent: bool
    layer: str | None
    rfm_segment: str | None
    loyalty_type: str | None
    value: Exact | None
    clv: Exact | None
    p_alive: float | None
    phone: str | None = Field(description="Only with marketing consent")
    email: str | None = Field(description="Only with marketing consent")


class SegmentMembersOut(BaseModel):
    segment_id: int
    total: int
    limit: int
    offset: int
    members: list[SegmentMemberOut]


def _today(settings: Settings) -> date:
    return datetime.now(settings.zone).date()


def _out(
    db: Session, settings: Settings, listed: segments.Listed, replayed: bool = False
) -> SegmentOut:
    run = segments.latest_run(db)
    segment = listed.segment
    return SegmentOut(
        id=segment.id,
        name=segment.name,
        description=segment.description,
        criteria=CriteriaIn.model_validate(listed.criteria.to_json()),
        audience_size=listed.size,
        audience_problem=listed.problem,
        value_run_as_of=run.as_of if run is not None else None,
        target_of=[CampaignRef(id=i, code=c, name=n) for i, c, n in listed.campaigns],
        created_at=segment.created_at,
        updated_at=segment.updated_at,
        replayed=replayed,
    )


@router.get(
    "/segments",
    response_model=list[SegmentOut],
    summary="Saved segments, each with its audience counted now",
)
def list_segments(caller: Reader, db: Db, settings: AppSettings) -> list[SegmentOut]:
    found = segments.list_segments(db, today=_today(settings), zone=settings.zone)
    return [_out(db, settings, item) for item in found]


@router.get(
    "/segments/{segment_id}",
    response_model=SegmentOut,
    summary="A saved segment: its conditions and audience now",
    responses=errors(404),
)
def get_segment(segment_id: SegmentId, caller: Reader, db: Db, settings: AppSettings) -> SegmentOut:
    segment = segments.get(db, segment_id)
    listed = segments.with_audience(db, segment, today=_today(settings), zone=settings.zone)
    return _out(db, settings, listed)


@router.get(
    "/segments/{segment_id}/members",
    response_model=SegmentMembersOut,
    summary="A saved segment's members now, by member number",
    description="With the latest value run's scores; phone and email only for members who"
    " agreed to marketing. Page with `limit` and `offset`.",
    responses=errors(404),
)
def segment_members(
    segment_id: SegmentId,
    caller: Reader,
    db: Db,
    settings: AppSettings,
    limit: Annotated[int, Query(ge=1, le=segments.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=bounds.MAX_ID)] = 0,
) -> SegmentMembersOut:
    criteria = segments.stored(segments.get(db, segment_id))
    today, zone = _today(settings), settings.zone
    total = segments.count(db, criteria, today=today, zone=zone)
    rows = segments.rows(db, criteria, today=today, zone=zone, limit=limit, offset=offset)
    return SegmentMembersOut(
        segment_id=segment_id,
        total=total,
        limit=limit,
        offset=offset,
        members=[SegmentMemberOut.model_validate(row, from_attributes=True) for row in rows],
    )


@router.post(
    "/segments",
    response_model=SegmentOut,
    status_code=201,
    summary="Save a segment",
    description="Every problem with the fields is answered at once (422, `details.fields`);"
    " a name another segment has (in any case) is a 409 (`segment.name_taken`); conditions on"
    " scores need a value run (422 `segment.no_value_run` says how to compute one).",
    responses=errors(409),
)
def create_segment(
    body: SegmentIn,
    caller: Writer,
    db: Db,
    settings: AppSettings,
    key: IdempotencyKey = None,
) -> SegmentOut:
    saved = segments.save(
        db,
        caller.actor,
        body.name,
        body.description,
        body.criteria.model_dump(),
        key=key,
    )
    db.commit()
    listed = segments.with_audience(db, saved.segment, today=_today(settings), zone=settings.zone)
    return _out(db, settings, listed, replayed=saved.replayed)
