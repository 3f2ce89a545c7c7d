"""The ROI report on a revenue basis: directly linked, or an attribution model's credits.

The report function is the same either way (`campaigns.report_data.build`); only the
revenue frame handed to it as `extra_revenue` changes:

- **directly linked** (`direct`, the default): revenue records (回款记录) plus the net
  revenue of purchases that carried the campaign's code or coupon (`loyalty.reports.roi`);
- **incremental** (`incremental`): for each campaign with a holdout group, revenue records
  plus the revenue the campaign *added*: its treated members' purchases over the window
  against what the same number of members bought in the holdout
  (`attribution.lift_data.incremental_revenue_by_campaign`, by day, so a period or a month
  sums the days it covers); campaigns without a holdout keep the directly linked purchase
  revenue (there is nothing to compare them with), and the page lists which campaigns are
  measured against a holdout;
- **an attribution model** (`first`, `last`, `linear`, `time-decay`, `position`, `markov`,
  `shapley`, `ordered-shapley`): revenue records plus the value that model's stored
  campaign-unit run credited to each campaign (`attribution.runs.revenue_by_campaign`).

The attributed value **replaces** the directly linked purchase revenue: a model's value
credits are the purchases' net value already (every purchase of a member with a touch in its
window is shared out among the campaigns touched), so adding the linked purchases again would
count them twice. Revenue records, entered by finance, are money that no purchase in Retain
shows, so they stay as they are on every basis. Credited conversions are fractions, not
orders: on an attributed basis a campaign's orders are only those its revenue records state.
What a run credits to no campaign (touches without a campaign, and purchases with no touch in
their window) has no row to go to and is left out; `Attributed` says how much that is.

**Which run.** Runs are stored, never computed on a report's view: the basis reads the newest
stored run of the model with unit = campaign, the default settings (`RunParams`: lookback 90
days, 30 for acquisitions, Markov order 1, repeats kept, half-life 7 days, purchases only) and
the report's period (`from`/`to`; none for all dates). A report by month takes one run per
month of its period (that month within the period), so it needs both ends of the period and
at most `MAX_MONTHS` months. A run that is not stored is refused (`NotComputed`, 409
`report.basis_not_computed`) naming each missing period: compute it (the attribution page's
"Compute now", `POST /api/v1/attribution/runs`, `retain attribution run`) and ask again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy.orm import Session

from attribution import lift_data, runs
from attribution.runs import MODELS, RunParams, StoredRun
from campaigns import report_data
from campaigns.report_data import ReportFilter
from campaigns.reports import GroupBy, RoiReport
from core.errors import Conflict, ValidationFailed
from core.text import N_
from loyalty import reports as loyalty_reports

DIRECT = "direct"
INCREMENTAL = "incremental"
BASES: tuple[str, ...] = (DIRECT, INCREMENTAL, *MODELS)
MAX_MONTHS = 60
# Each basis's name as people read it (the staff pages translate it; exports say it in English).
BASIS_NAMES: dict[str, str] = {
    DIRECT: N_("Directly linked"),
    INCREMENTAL: N_("Incremental (against the holdout)"),
    "first": N_("First touch"),
    "last": N_("Last touch"),
    "linear": N_("Linear"),
    "time-decay": N_("Time decay"),
    "position": N_("Position-based"),
    "markov": N_("Markov chain"),
    "shapley": N_("Shapley value"),
    "ordered-shapley": N_("Ordered Shapley"),
}
assert tuple(BASIS_NAMES) == BASES
_DAY = timedelta(days=1)


def check_basis(value: str) -> str:
    """`value` when it names a basis, else a refusal that lists them."""
    if value not in BASES:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise ValidationFailed(
            "report.revenue_basis",
            "'%(shown)s' is not a revenue basis; choose one of: %(bases)s.",
            shown=shown,
            bases=", ".join(BASES),
        )
    return value


def run_params(model: str, start: date | None, end: date | None) -> RunParams:
    """The run a basis reads for one period: unit campaign, every other setting its default."""
    return RunParams(model=model, unit="campaign", period_from=start, period_to=end)


@dataclass(frozen=True)
class Needed:
    """One run a basis needs, and the month its credits count in (a monthly report)."""

    params: RunParams
    month: date | None = None  # the first day of the month; None: the whole period


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def needed(f: ReportFilter, group_by: GroupBy, model: str) -> list[Needed]:
    """The runs a report on `model`'s basis reads: one for its period, or one per month."""
    if model not in MODELS:
        check_basis(model)
        raise ValidationFailed("report.revenue_basis", "The directly linked basis needs no run.")
    if group_by != "month":
        return [Needed(run_params(model, f.start, f.end))]
    if f.start is None or f.end is None:
        raise ValidationFailed(
            "report.basis_month_period",
            "A report by month on an attributed revenue basis needs a period (From and To):"
            " each month takes its own stored run.",
        )
    if f.start > f.end:
        raise ValidationFailed("report.period", "The period's start must not be after its end.")
    found: list[Needed] = []
    month = f.start.replace(day=1)
    while month <= f.end:
        if len(found) == MAX_MONTHS:
            raise ValidationFailed(
                "report.basis_month_period",
                (
                    "A report by month on an attributed revenue basis covers at most "
                    "%(max_months)s months; choose a shorter period."
                ),
                max_months=MAX_MONTHS,
            )
        following = _next_month(month)
        start, end = max(month, f.start), min(following - _DAY, f.end)
        found.append(Needed(run_params(model, start, end), month))
        month = following
    return found


def _period(params: RunParams) -> str:
    start, end = params.period_from, params.period_to
    if start and end:
        return f"the period {start.isoformat()} – {end.isoformat()}"
    if start:
        return f"the period from {start.isoformat()}"
    if end:
        return f"the period until {end.isoformat()}"
    return "all dates"


class NotComputed(Conflict):
    """No stored run for a period the basis needs. `missing` lists their parameters."""

    def __init__(self, model: str, missing: list[RunParams]) -> None:
        self.model = model
        self.missing = missing
        periods = "; ".join(_period(p) for p in missing[:5])
        super().__init__(
            "report.basis_not_computed",
            N_(
                "No stored %(model)s attribution run by campaign (default settings) for"
                " %(periods)s and %(more)s more. Compute it (the attribution page's Compute now,"
                " or POST /api/v1/attribution/runs with model=%(model)s, unit=campaign and that"
                " period) and ask again."
            )
            if len(missing) > 5
            else N_(
                "No stored %(model)s attribution run by campaign (default settings) for"
                " %(periods)s. Compute it (the attribution page's Compute now, or POST"
                " /api/v1/attribution/runs with model=%(model)s, unit=campaign and that period)"
                " and ask again."
            ),
            {
                "model": model,
                "unit": "campaign",
                "missing": [
                    {
                        "from": None if p.period_from is None else p.period_from.isoformat(),
                        "to": None if p.period_to is None else p.period_to.isoformat(),
                    }
                    for p in missing
                ],
            },
            model=model,
            periods=periods,
            more=len(missing) - 5,
        )


@dataclass(frozen=True)
class Attributed:
    """The runs an attributed basis read and the revenue frame made of them."""

    model: str
    runs: tuple[StoredRun, ...]
    revenue: pd.DataFrame  # campaign_id, day, amount, orders (NA), conversions

    @property
    def credited(self) -> Decimal:
        """The value the runs credited to campaigns (what the report can show)."""
        return sum((Decimal(a) for a in self.revenue["amount"]), Decimal(0))

    @property
    def total_value(self) -> Decimal:
        """The value of the runs' converting journeys with a touch."""
        return sum((r.total_value for r in self.runs), Decimal(0))

    @property
    def no_campaign(self) -> Decimal:
        """The value credited to touches without a campaign: no campaign's row gets it."""
        return self.total_value - self.credited

    @property
    def direct_value(self) -> Decimal:
        """Purchases with no touch in their window: nobody is credited with them."""
        return sum((r.direct_value for r in self.runs), Decimal(0))


def attributed_revenue(
    session: Session, f: ReportFilter, group_by: GroupBy, model: str, *, base: str
) -> Attributed:
    """The stored runs `needed` for the report, as one revenue frame; `NotComputed` names
    every period without one."""
    wanted = needed(f, group_by, model)
    found: list[tuple[StoredRun, date | None]] = []
    missing: list[RunParams] = []
    for need in wanted:
        run = runs.latest_run(session, need.params)
        if run is None:
            missing.append(need.params)
        else:
            found.append((run, need.month))
    if missing:
        raise NotComputed(model, missing)
    frames = []
    for run, month in found:
        if run.currency and run.currency != base:
            raise Conflict(
                "report.basis_currency",
                (
                    "The stored %(model)s run #%(id)s is in %(currency)s, not the base "
                    "currency %(base)s; compute it again."
                ),
                model=model,
                id=run.id,
                currency=run.currency,
                base=base,
            )
        frame = runs.revenue_by_campaign(session, run)
        if month is not None:
            frame["day"] = pd.Series([month] * len(frame), dtype=object)
        frames.append(frame)
    revenue = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return Attributed(model, tuple(run for run, _ in found), revenue)


def incremental_revenue(
    session: Session, base: str, f: ReportFilter, group_by: GroupBy, *, zone: ZoneInfo
) -> pd.DataFrame:
    """The revenue frame of the incremental basis: directly linked purchase revenue for the
    campaigns without a holdout, the incremental revenue by day (within the period) for
    those with one."""
    held = set(lift_data.campaigns_with_holdout(session, None))
    linked = loyalty_reports.purchase_revenue(
        session, f, zone, by_day=group_by == "month", base=base
    )
    linked = linked[~linked["campaign_id"].isin(held)]
    added = lift_data.incremental_revenue_by_campaign(
        session, zone=zone, base=base, campaign_ids=sorted(held), by_day=True
    )
    days = added["day"]
    keep = pd.Series(True, index=added.index)
    if f.start is not None:
        keep &= days.map(lambda d: d >= f.start)
    if f.end is not None:
        keep &= days.map(lambda d: d <= f.end)
    frames = [frame for frame in (linked, added[keep]) if not frame.empty]
    if not frames:
        return linked
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def roi(
    session: Session,
    base: str,
    f: ReportFilter,
    group_by: GroupBy = "campaign",
    *,
    zone: ZoneInfo,
    basis: str = DIRECT,
) -> tuple[RoiReport, Attributed | None]:
    """The ROI report on `basis` (see the module docstring), and for an attributed basis
    the runs it read."""
    check_basis(basis)
    if basis == DIRECT:
        return loyalty_reports.roi(session, base, f, group_by, zone=zone), None
    if basis == INCREMENTAL:
        revenue = incremental_revenue(session, base, f, group_by, zone=zone)
        return report_data.build(session, base, f, group_by, extra_revenue=revenue), None
    attributed = attributed_revenue(session, f, group_by, basis, base=base)
    report = report_data.build(session, base, f, group_by, extra_revenue=attributed.revenue)
    return report, attributed
