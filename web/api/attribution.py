"""API: touchpoints (batches, visitor links) and attribution runs.

Touchpoints are idempotent by (source, external id): a batch sent again replays, and an
item reused with other content refuses the whole batch (409). A visitor link is idempotent
by the visitor id. Attribution results are stored with their parameters: `GET /attribution`
answers the newest stored run for the parameters, computing and storing one only when none
exists; `POST /attribution/runs` always computes a fresh one (after new data came in).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from attribution import runs, touchpoints
from attribution.models import RunModel
from attribution.paths import Unit
from attribution.schemas import (
    LinkIn,
    LinkOut,
    RunIn,
    RunOut,
    TouchpointBatchIn,
    TouchpointBatchOut,
    TouchpointOut,
    run_out,
)
from campaigns.schemas import Day
from core.accounts.models import Role
from web.api.auth import Caller, require
from web.api.campaigns import known_query_only
from web.api.responses import errors
from web.deps import AppSettings, Db

router = APIRouter(tags=["attribution"], dependencies=[Depends(known_query_only)])
STAFF = (Role.MARKETER, Role.FINANCE, Role.ADMIN)
Sender = Annotated[
    Caller, Depends(require(scope="touchpoints:write", roles=(Role.MARKETER, Role.ADMIN)))
]
Analyst = Annotated[Caller, Depends(require(scope="attribution:read", roles=STAFF))]


@router.post(
    "/touchpoints",
    response_model=TouchpointBatchOut,
    summary="Record a batch of touchpoints",
    description=(
        "All or nothing: every problem of every item is answered at once (422, `details."
        "problems` lists `index`, `code` and `message`), and nothing is written unless all"
        " pass. Each item needs a `member_number` or a `visitor_id` (a visitor linked to a"
        " member later counts as the member). An item recorded before with the same content"
        " replays (`replayed`); with other content it is a 409 (`touchpoint.id_reused`) and"
        " the batch is refused."
    ),
    responses=errors(409),
)
def post_touchpoints(body: TouchpointBatchIn, caller: Sender, db: Db) -> TouchpointBatchOut:
    outcome = touchpoints.record_batch(
        db,
        caller.actor,
        [
            touchpoints.TouchInput(
                source=item.source,
                external_id=item.external_id,
                channel=item.channel,
                kind=item.kind.value,
                occurred_at=item.occurred_at,
                member_number=item.member_number,
                visitor_id=item.visitor_id,
                campaign_code=item.campaign_code,
            )
            for item in body.touchpoints
        ],
    )
    db.commit()
    return TouchpointBatchOut(
        received=len(body.touchpoints),
        created=outcome.created,
        replayed=outcome.replayed,
        touchpoints=[
            TouchpointOut(source=t.source, external_id=t.external_id, id=t.id, replayed=t.replayed)
            for t in outcome.touchpoints
        ],
    )


@router.post(
    "/touchpoints/links",
    response_model=LinkOut,
    summary="Link an anonymous visitor to a member",
    description=(
        "Once per visitor: the same link again replays; a link to another member is a 409"
        " (`visitor.linked_elsewhere`). The visitor's touchpoints, earlier and later, count"
        " as the member's."
    ),
    responses=errors(404, 409),
)
def link_visitor(body: LinkIn, caller: Sender, db: Db) -> LinkOut:
    outcome = touchpoints.link_visitor(db, caller.actor, body.visitor_id, body.member_number)
    db.commit()
    return LinkOut(
        visitor_id=outcome.link.visitor_id,
        member_number=outcome.member_number,
        linked_at=outcome.link.linked_at,
        replayed=outcome.replayed,
    )


def _answer(db: Db, caller: Caller, settings: AppSettings, params: runs.RunParams) -> Any:
    run = runs.run(db, caller.actor, params, base=settings.base_currency, zone=settings.zone)
    db.commit()
    return run_out(run, computed=True)


@router.get(
    "/attribution",
    response_model=RunOut,
    summary="Attribution credits for the given parameters",
    description=(
        "The newest stored run with exactly these parameters; when there is none, one is"
        " computed, stored and answered (`computed`). Conversions are members' purchases"
        " made in the period (`from`, `to`: local dates, inclusive; value = net base amount"
        " after refunds, as booked) and, with `signups`, sign-ups; a member's first purchase"
        " is an acquisition conversion. A journey is a member's touchpoints before a"
        " conversion within its lookback (`acquisition_lookback_days` for sign-ups and first"
        " purchases, `lookback_days` otherwise); touches leading to none are null journeys."
        " Models: first, last, linear, time-decay (`half_life_days`), position (40/20/40),"
        " markov (exact, `order` 1–3), shapley (simplified), ordered-shapley. Credits add up"
        " exactly to `total_conversions` and `total_value`."
    ),
)
def get_attribution(
    caller: Analyst,
    db: Db,
    settings: AppSettings,
    model: RunModel = RunModel.MARKOV,
    order: Annotated[int, Query(ge=1, le=3, description="Markov order")] = 1,
    unit: Unit = "channel",
    lookback_days: Annotated[
        int, Query(ge=1, le=runs.MAX_LOOKBACK_DAYS, description="Lookback of other purchases")
    ] = runs.DEFAULT_LOOKBACK_DAYS,
    acquisition_lookback_days: Annotated[
        int,
        Query(ge=1, le=runs.MAX_LOOKBACK_DAYS, description="Lookback of sign-ups, first purchases"),
    ] = runs.DEFAULT_ACQUISITION_LOOKBACK_DAYS,
    half_life_days: Annotated[
        int, Query(ge=1, le=runs.MAX_HALF_LIFE_DAYS, description="Time decay's half-life")
    ] = runs.DEFAULT_HALF_LIFE_DAYS,
    collapse_repeats: bool = False,
    signups: bool = False,
    start: Annotated[Day | None, Query(alias="from")] = None,
    end: Annotated[Day | None, Query(alias="to")] = None,
) -> Any:
    params = _params(
        model,
        order,
        unit,
        lookback_days,
        acquisition_lookback_days,
        half_life_days,
        collapse_repeats,
        signups,
        start,
        end,
    )
    stored = runs.latest_run(db, params)
    if stored is not None:
        return run_out(stored, computed=False)
    return _answer(db, caller, settings, params)


def _params(
    model: RunModel,
    order: int,
    unit: Unit,
    lookback_days: int,
    acquisition_lookback_days: int,
    half_life_days: int,
    collapse_repeats: bool,
    signups: bool,
    start: date | None,
    end: date | None,
) -> runs.RunParams:
    return runs.RunParams(
        model=model.value,
        order=order,
        unit=unit,
        lookback_days=lookback_days,
        acquisition_lookback_days=acquisition_lookback_days,
        half_life_days=half_life_days,
        collapse_repeats=collapse_repeats,
        signups=signups,
        period_from=start,
        period_to=end,
    )


@router.post(
    "/attribution/runs",
    response_model=RunOut,
    status_code=201,
    summary="Compute and store an attribution run",
    description="Always computes afresh (say, after new touchpoints or purchases came in)"
    " and stores the run, which `GET /attribution` answers from then on.",
)
def post_run(body: RunIn, caller: Analyst, db: Db, settings: AppSettings) -> Any:
    params = _params(
        body.model,
        body.order,
        body.unit,
        body.lookback_days,
        body.acquisition_lookback_days,
        body.half_life_days,
        body.collapse_repeats,
        body.signups,
        body.period_from,
        body.period_to,
    )
    return _answer(db, caller, settings, params)
