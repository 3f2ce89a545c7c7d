"""The lift report of a campaign from the database: its frozen audience, what each member
bought in the campaign window, and what the campaign cost, handed to `attribution.lift`.

**Arms.** The campaign's frozen audience (`loyalty.audiences`, frozen when its target
segment was set with a holdout): every member in it is in the treated arm or the holdout,
whatever has happened to the segment since.

**The window** is the campaign's dates, local days in the configured zone, both inclusive:
from midnight of its first day to midnight after its last. A campaign still running is
measured so far (no purchase is recorded ahead of time).

**Revenue and converters.** A member's revenue is the net base amount (`net_base_amount`:
booked in the base currency when recorded, less what refunds took back, whenever they were
made) of their purchases made in the window, leaving out purchases refunded in full; a member
who made none has 0. A converter is a member with at least one such purchase. Every purchase
counts, not only those carrying the campaign's code or coupon: the point of a holdout is to
compare everything each arm bought.

**Cost** is the campaign's cost as the ROI report counts it, over all dates: its approved
(and paid) receipts, booked in the base currency (`campaigns.report_data`), plus its loyalty
cost, coupon discounts, bonus points and rewards (`loyalty.campaign_costs`). Incremental ROAS
and ROI divide by it.

`incremental_revenue_by_campaign` gives the incremental revenue of every campaign with a
holdout in the shape of the ROI report's revenue frame (as `attribution.runs
.revenue_by_campaign` does for an attribution model), so the report can offer "incremental"
as a revenue basis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from attribution import lift
from attribution.lift import Arm, LiftReport
from campaigns import planning, report_data
from campaigns.models import Campaign
from campaigns.report_data import ReportFilter
from core.money import minor_units
from loyalty import audiences, campaign_costs
from loyalty.models import CampaignAudience, Purchase, PurchaseState
from loyalty.reports import local_day

State = Literal["no_audience", "not_started", "measured"]
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """The campaign window: local days, inclusive, and the UTC instants that bound it."""

    starts_on: date
    ends_on: date
    start: datetime  # midnight of the first day, in the zone
    end: datetime  # midnight after the last day (exclusive)

    @classmethod
    def of(cls, campaign: Campaign, zone: ZoneInfo) -> Window:
        return cls(
            campaign.starts_on,
            campaign.ends_on,
            datetime.combine(campaign.starts_on, time(0), zone),
            datetime.combine(campaign.ends_on + _DAY, time(0), zone),
        )


@dataclass(frozen=True)
class Cost:
    """The campaign's cost in the base currency, as the ROI report counts it."""

    receipts: Decimal  # approved and paid receipts
    loyalty: Decimal  # coupons, bonus points and rewards at the value per point

    @property
    def total(self) -> Decimal:
        return self.receipts + self.loyalty


@dataclass(frozen=True)
class CampaignLift:
    """A campaign's lift report, or why there is none yet (`state`)."""

    campaign_id: int
    code: str
    name: str
    window: Window
    currency: str  # the base currency: revenue and cost
    state: State
    arms: audiences.Arms
    cost: Cost | None = None
    report: LiftReport | None = None
    # The last local day counted so far: the window's last day, or today while it runs.
    through: date | None = None


@dataclass(frozen=True)
class ArmData:
    """Each arm's members and, for those who bought in the window, their revenue."""

    treated_members: int
    holdout_members: int
    treated_revenue: list[Decimal]  # one per converter of the treated arm
    holdout_revenue: list[Decimal]  # one per converter of the holdout

    def arms(self, places: int) -> tuple[Arm, Arm]:
        return (
            _arm(self.treated_revenue, self.treated_members, places),
            _arm(self.holdout_revenue, self.holdout_members, places),
        )


def _arm(revenue: list[Decimal], members: int, places: int) -> Arm:
    if len(revenue) > members:
        raise ValueError(f"{len(revenue)} converters among {members} members")
    units = lift.to_minor_units(revenue, places)
    zeros = np.zeros(members - len(revenue), dtype=np.int64)
    return Arm(np.concatenate([units, zeros]), converters=len(revenue))


def _counted(window: Window) -> list[Any]:
    """The purchases counted: made in the window, not refunded in full."""
    return [
        Purchase.occurred_at >= window.start,
        Purchase.occurred_at < window.end,
        Purchase.state != PurchaseState.REFUNDED.value,
    ]


def arm_data(session: Session, campaign_id: int, window: Window) -> ArmData:
    """Each arm's size, and the revenue in `window` of every member of it who converted."""
    sizes = audiences.arms(session, campaign_id)
    found: dict[bool, list[Decimal]] = {True: [], False: []}
    rows = session.execute(
        select(CampaignAudience.held_out, func.sum(Purchase.net_base_amount))
        .join(Purchase, Purchase.member_id == CampaignAudience.member_id)
        .where(CampaignAudience.campaign_id == campaign_id, *_counted(window))
        .group_by(CampaignAudience.held_out, CampaignAudience.member_id)
    )
    for held_out, revenue in rows:
        found[bool(held_out)].append(Decimal(revenue))
    return ArmData(sizes.treated, sizes.held_out, found[False], found[True])


def campaign_cost(session: Session, campaign_id: int, *, zone: ZoneInfo, base: str) -> Cost:
    """The campaign's approved receipts and loyalty cost over all dates, in `base`, as the ROI
    report books them (a missing exchange rate is refused, naming currency and date)."""
    f = ReportFilter(campaign_ids=(campaign_id,))
    loyalty = campaign_costs.loyalty_costs(session, f, zone, by_day=False, base=base)
    report = report_data.build(session, base, f, loyalty_costs=loyalty)
    values = report.total.values
    unit = Decimal(1).scaleb(-minor_units(base))

    def booked(name: str) -> Decimal:
        found = values.get(name)
        return (Decimal(0) if found is None else Decimal(found)).quantize(unit)

    return Cost(booked("approved_cost"), booked("loyalty_cost"))


def campaign_lift(
    session: Session,
    campaign_id: int,
    *,
    today: date,
    zone: ZoneInfo,
    base: str,
    alpha: float = lift.DEFAULT_ALPHA,
) -> CampaignLift:
    """The lift report of campaign `campaign_id` as of local day `today` (see the module
    docstring), or, without a frozen audience or before the window opens, why not."""
    campaign = planning.get(session, campaign_id)
    window = Window.of(campaign, zone)
    arms = audiences.arms(session, campaign.id)
    found = CampaignLift(
        campaign.id, campaign.code, campaign.name, window, base, "no_audience", arms
    )
    if arms.members == 0:
        return found
    if today < campaign.starts_on:
        return CampaignLift(
            campaign.id, campaign.code, campaign.name, window, base, "not_started", arms
        )
    places = minor_units(base)
    treated, holdout = arm_data(session, campaign.id, window).arms(places)
    cost = campaign_cost(session, campaign.id, zone=zone, base=base)
    # A negative total cost (refunds took back more than was given) has no ratio either.
    report = lift.lift_report(treated, holdout, max(cost.total, Decimal(0)), places, alpha=alpha)
    return CampaignLift(
        campaign.id,
        campaign.code,
        campaign.name,
        window,
        base,
        "measured",
        arms,
        cost,
        report,
        min(campaign.ends_on, today),
    )


# --- Incremental revenue as a revenue basis ---------------------------------------------------


def campaigns_with_holdout(session: Session, campaign_ids: Sequence[int] | None) -> list[int]:
    query = select(CampaignAudience.campaign_id).where(CampaignAudience.held_out.is_(True))
    if campaign_ids is not None:
        query = query.where(CampaignAudience.campaign_id.in_(list(campaign_ids)))
    return sorted(set(session.scalars(query.distinct())))


def _daily(
    session: Session, campaign_id: int, window: Window, zone: ZoneInfo
) -> dict[date, tuple[Decimal, Decimal]]:
    """Each local day's revenue in the window: (treated arm, holdout)."""
    audience = select(CampaignAudience.member_id).where(CampaignAudience.campaign_id == campaign_id)
    counted = [Purchase.member_id.in_(audience), *_counted(window)]
    day = local_day(session, zone, Purchase.occurred_at, counted)
    where = [CampaignAudience.campaign_id == campaign_id, *_counted(window)]
    found: dict[date, list[Decimal]] = {}
    for held_out, on, amount in session.execute(
        select(CampaignAudience.held_out, day, func.sum(Purchase.net_base_amount))
        .join(Purchase, Purchase.member_id == CampaignAudience.member_id)
        .where(*where)
        .group_by(CampaignAudience.held_out, day)
    ):
        key = on if isinstance(on, date) else date.fromisoformat(str(on))
        found.setdefault(key, [Decimal(0), Decimal(0)])[1 if held_out else 0] += Decimal(amount)
    return {d: (t, h) for d, (t, h) in found.items()}


def split_by_day(total: Decimal, parts: dict[date, Fraction], places: int) -> dict[date, Decimal]:
    """`total` (already at `places`: the exact `parts` summed, rounded half up) split over the
    days by their exact `parts`, which may be negative: each day gets the floor of its part
    at `places`, and the units left over go one each to the days with the largest remainders
    (ties to the earlier day), so the days add up to `total` exactly."""
    scale = 10**places
    units = int(total.scaleb(places))
    floors = {d: math.floor(part * scale) for d, part in parts.items()}
    left = units - sum(floors.values())
    order = sorted(parts, key=lambda d: (-(parts[d] * scale - floors[d]), d))
    if not 0 <= left <= len(order):
        raise ValueError(f"{total} cannot be split over these days")
    for d in order[:left]:
        floors[d] += 1
    return {d: Decimal(floors[d]).scaleb(-places) for d in sorted(floors)}


def incremental_revenue_by_campaign(
    session: Session,
    *,
    zone: ZoneInfo,
    base: str,
    campaign_ids: Sequence[int] | None = None,
    by_day: bool = False,
) -> pd.DataFrame:
    """The incremental revenue of each campaign with a holdout (of `campaign_ids`, or all),
    shaped as the ROI report's revenue frame (`report_data.build(extra_revenue=…)`):
    `campaign_id`, `day`, `amount` (Decimal, booked in `base`), `orders` (`pd.NA`: an
    estimate of added revenue has no orders).

    - Without `by_day`, one row per campaign, `day` None: its lift report's incremental
      revenue, n_t × (RPM_t − RPM_h), over its window (so far).
    - With `by_day`, one row per local day of the window with a purchase in either arm: that
      day's part, T_d − (n_t ÷ n_h) × H_d (T_d and H_d the arms' revenue that day), split by
      `split_by_day` so the days add up exactly to the campaign's total. A report by month or
      for a period sums the days it covers.

    Campaigns without a holdout, or with nobody treated, are left out: nothing was held out to
    compare against, so there is no incremental revenue to show (the report keeps its other
    basis for them). Amounts can be negative: the campaign then cost sales."""
    places = minor_units(base)
    rows: list[tuple[int, date | None, Decimal]] = []
    for campaign_id in campaigns_with_holdout(session, campaign_ids):
        campaign = planning.get(session, campaign_id)
        window = Window.of(campaign, zone)
        data = arm_data(session, campaign_id, window)
        if data.treated_members == 0 or data.holdout_members == 0:
            continue
        treated, holdout = data.arms(places)
        # resamples=1: only the incremental revenue is read, the interval is not.
        report = lift.lift_report(treated, holdout, Decimal(0), places, resamples=1)
        total = report.incremental_revenue
        assert total is not None  # both arms have members
        if not by_day:
            rows.append((campaign_id, None, total))
            continue
        ratio = Fraction(data.treated_members, data.holdout_members)
        parts = {
            d: Fraction(t) - ratio * Fraction(h)
            for d, (t, h) in _daily(session, campaign_id, window, zone).items()
        }
        if not parts:
            continue
        for d, amount in split_by_day(total, parts, places).items():
            rows.append((campaign_id, d, amount))
    return pd.DataFrame(
        {
            "campaign_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "day": pd.Series([r[1] for r in rows], dtype=object),
            "amount": pd.Series([r[2] for r in rows], dtype=object),
            "orders": pd.Series([pd.NA] * len(rows), dtype="Int64"),
        }
    )
