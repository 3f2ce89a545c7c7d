"""The lift page of a campaign: what it added, measured against its holdout
(`attribution.lift_data`, whose docstring defines the window, revenue, converters and cost;
`attribution.lift` every figure).

`/campaigns/{id}/lift` shows the two arms side by side (members, converters, conversion rate,
revenue per member), the lift, incremental conversions and revenue, incremental ROAS and ROI,
the pooled z-test, the bootstrap interval on the difference in revenue per member and the
verdict in words, with a chart of conversion rate and revenue per member (the interval drawn
beside them; `static/lift.js` draws the JSON the page embeds, the CSP forbids inline
scripts). A figure that cannot be computed is "—" with its reason.

Empty states, each saying what to do: the campaign targets no saved segment; it targets one
without a holdout; its segment had nobody when the holdout was set; it has not started.

The sample-size calculator is a GET form on the same address (`baseline`, `lift`, `power`,
`alpha`, `share`: percentages), answered in place by htmx (the `sample_size` block, always a
200, as htmx swaps only a success) or, without JavaScript, by the whole page; a bad value is
named beside its field (422). The baseline
starts at the holdout's conversion rate, the share at the campaign's.

`/campaigns/{id}/audience.csv` is the campaign's audience to send its messages to: with a
holdout, the treated members of the frozen audience only (`segments.campaign_export_csv`).

Marketers, finance and admins read; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse

from analytics import segments
from attribution import lift, lift_data
from attribution.lift import LiftReport, SampleSize
from attribution.lift_data import CampaignLift
from campaigns import planning
from core import bounds
from core.accounts.models import Role, User
from core.errors import Problems, RetainError, ValidationFailed
from core.money import format_decimal, minor_units
from core.settings import Settings
from core.text import Phrase
from loyalty import audiences
from web.deps import AppSettings, Db, require_roles
from web.rendering import N_, render, say, say_each, t

router = APIRouter()
Reader = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER, Role.FINANCE))]
CampaignId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]

ARM_NAMES = {"treated": N_("Got the campaign"), "holdout": N_("Held out")}
FIGURE_LABELS = {
    "lift": N_("Lift in conversion"),
    "incremental_conversions": N_("Incremental conversions"),
    "incremental_revenue": N_("Incremental revenue"),
    "incremental_roas": N_("Incremental ROAS"),
    "incremental_roi_pct": N_("Incremental ROI"),
    "z_test": N_("z (pooled two-proportion test)"),
    "p_value": N_("p-value"),
    "revenue_interval": N_("Interval on revenue per member"),
}
# The calculator's fields: label, default, and the bounds (in %) with whether each end is
# allowed (`lift.sample_size`'s own bounds; the lift's upper end is ours).
CALCULATOR: dict[str, tuple[Phrase, Decimal, Decimal, bool, Decimal, bool]] = {
    "baseline": (
        N_("Baseline conversion rate"),
        Decimal(10),
        Decimal(0),
        False,
        Decimal(100),
        False,
    ),
    "lift": (N_("Minimum detectable lift"), Decimal(20), Decimal(0), False, Decimal(1000), True),
    "power": (N_("Power"), Decimal(80), Decimal(50), True, Decimal(100), False),
    "alpha": (N_("Significance level (α)"), Decimal(5), Decimal(0), False, Decimal(50), True),
    "share": (N_("Holdout share"), Decimal(20), Decimal(0), False, Decimal(50), True),
}
PERCENT_PLACES = 2


def today(settings: Settings) -> date:
    return datetime.now(settings.zone).date()


def percent(value: float | None, places: int = 1, sign: bool = False) -> str:
    """A fraction as a percentage (0.1234 → "12.3%"); "—" for nothing."""
    if value is None:
        return "—"
    return f"{value * 100:{'+' if sign else ''},.{places}f}%"


def money(value: Decimal | None, currency: str) -> str:
    return "—" if value is None else format_decimal(value, minor_units(currency))


def p_text(value: float) -> str:
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


# --- The calculator ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Calculator:
    """The sample-size form as typed, what it read (fractions), and its answer."""

    form: dict[str, str]
    errors: dict[str, str]
    answer: SampleSize | None = None
    asked: bool = False  # a value was given: answer it (or say why not)
    values: dict[str, Decimal] | None = None  # as fractions of 1


def _percent_field(raw: str, name: str) -> Decimal:
    """A percentage as typed ("12.5" or "12.5%"), held to the field's bounds; as a fraction.
    A refusal names the field by its label (a `Phrase`: the page translates it)."""
    label, _, low, low_in, high, high_in = CALCULATOR[name]
    text = raw.strip().removesuffix("%").strip()
    try:
        value = Decimal(text) if len(text) <= 20 else Decimal("NaN")
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise ValidationFailed(
            f"lift.{name}", "%(label)s must be a number such as 12.5.", label=label
        )
    above = value >= low if low_in else value > low
    below = value <= high if high_in else value < high
    if not (above and below):
        raise ValidationFailed(
            f"lift.{name}",
            "%(label)s must be between %(low)s%% and %(high)s%%.",
            label=label,
            low=low,
            high=high,
        )
    if value != value.quantize(Decimal(1).scaleb(-PERCENT_PLACES)):
        raise ValidationFailed(
            f"lift.{name}",
            "%(label)s has at most %(places)s decimal places.",
            label=label,
            places=PERCENT_PLACES,
        )
    return value / 100


def calculator(request: Request, defaults: dict[str, Decimal], query: dict[str, str]) -> Calculator:
    """The calculator from the query (`defaults`, in %, for what is not given)."""
    asked = any(name in query for name in CALCULATOR)
    form = {
        name: query.get(name, f"{defaults.get(name, CALCULATOR[name][1]).normalize():f}")
        for name in CALCULATOR
    }
    problems = Problems()
    values: dict[str, Decimal] = {}
    for name in CALCULATOR:
        found = problems.check(name, partial(_percent_field, form[name], name))
        if found is not None:
            values[name] = found
    if not problems and values["baseline"] * (1 + values["lift"]) > 1:
        problems.add(
            "lift",
            "A lift of %(lift)s%% over a baseline of %(baseline)s%% would convert more than "
            "everybody; choose a smaller lift.",
            lift=form["lift"],
            baseline=form["baseline"],
        )
    if problems:
        return Calculator(form, say_each(request, problems.by_field, problems.errors), asked=asked)
    try:
        answer = lift.sample_size(
            float(values["baseline"]),
            float(values["lift"]),
            alpha=float(values["alpha"]),
            power=float(values["power"]),
            holdout_share=values["share"],
        )
    except ValidationFailed as exc:  # a rate above 100% once lifted
        field = exc.code.removeprefix("lift.").replace("minimum_detectable_lift", "lift")
        field = field if field in CALCULATOR else "lift"
        return Calculator(form, {field: say(request, exc)}, asked=asked)
    return Calculator(form, {}, answer, asked, values)


def _defaults(target: segments.Target | None, found: CampaignLift | None) -> dict[str, Decimal]:
    defaults: dict[str, Decimal] = {}
    report = found.report if found is not None else None
    rate = report.holdout.conversion_rate if report is not None else None
    if rate is not None and 0 < rate < 1:
        defaults["baseline"] = Decimal(f"{rate * 100:.2f}")
    if target is not None and target.holdout_share > 0:
        defaults["share"] = target.holdout_share * 100
    return defaults


# --- The page ---------------------------------------------------------------------------------


def _arm_rows(request: Request, report: LiftReport, currency: str) -> list[dict[str, Any]]:
    rows = []
    for key, arm in (("treated", report.treated), ("holdout", report.holdout)):
        rows.append(
            {
                "key": key,
                "name": t(request, ARM_NAMES[key]),
                "members": f"{arm.members:,}",
                "converters": f"{arm.converters:,}",
                "conversion_rate": percent(arm.conversion_rate, 2),
                "revenue": money(arm.revenue, currency),
                "revenue_per_member": money(arm.revenue_per_member, currency),
            }
        )
    return rows


def _figures(request: Request, report: LiftReport, currency: str) -> list[dict[str, Any]]:
    """The report's figures as shown, each with why it is missing (translated)."""
    test, interval = report.z_test, report.revenue_interval

    def why(name: str) -> str | None:
        reason = report.reasons.get(name)
        return t(request, reason) if reason else None

    shown: list[tuple[str, str, str | None]] = [
        ("lift", percent(report.lift, 1, sign=True), why("lift")),
        (
            "incremental_conversions",
            "—"
            if report.incremental_conversions is None
            else f"{report.incremental_conversions:+,.1f}",
            why("incremental_conversions"),
        ),
        (
            "incremental_revenue",
            money(report.incremental_revenue, currency),
            why("incremental_revenue"),
        ),
        (
            "incremental_roas",
            "—" if report.incremental_roas is None else f"{report.incremental_roas}",
            why("incremental_roas"),
        ),
        (
            "incremental_roi_pct",
            "—" if report.incremental_roi_pct is None else f"{report.incremental_roi_pct}%",
            why("incremental_roi_pct"),
        ),
        ("z_test", "—" if test is None else f"{test.z:+.4f}", why("z_test")),
        ("p_value", "—" if test is None else p_text(test.p_value), why("z_test")),
        (
            "revenue_interval",
            "—"
            if interval is None
            else f"{money(interval.low, currency)} … {money(interval.high, currency)}",
            why("revenue_interval"),
        ),
    ]
    return [
        {"id": name, "label": t(request, FIGURE_LABELS[name]), "value": value, "why": reason}
        for name, value, reason in shown
    ]


def verdict_text(request: Request, report: LiftReport) -> str:
    """The verdict in the reader's language (`lift.VERDICTS`, `{level}` filled in)."""
    return t(request, lift.VERDICTS[report.verdict.code]).format(level=f"{report.alpha * 100:g}%")


def chart_data(request: Request, report: LiftReport) -> dict[str, Any]:
    """What `static/lift.js` draws: conversion rate and revenue per member per arm, and the
    difference in revenue per member with its interval."""
    interval = report.revenue_interval
    difference = report.revenue_per_member_difference

    def number(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    return {
        "labels": [t(request, ARM_NAMES["treated"]), t(request, ARM_NAMES["holdout"])],
        "conversion": [
            None if r is None else round(r * 100, 4)
            for r in (report.treated.conversion_rate, report.holdout.conversion_rate)
        ],
        "rpm": [
            number(report.treated.revenue_per_member),
            number(report.holdout.revenue_per_member),
        ],
        "difference": number(difference),
        "interval": None if interval is None else [float(interval.low), float(interval.high)],
        "text": {
            "conversion": t(request, "Conversion rate (%)"),
            "rpm": t(request, "Revenue per member"),
            "difference": t(request, "Difference"),
            "interval": t(
                request,
                "%(confidence)s%% interval of the difference",
                confidence=f"{(interval.confidence if interval else 0.95) * 100:g}",
            ),
        },
    }


def _state(target: segments.Target | None, found: CampaignLift | None, arms: audiences.Arms) -> str:
    if target is None:
        return "no_target"
    if target.holdout_share == 0:
        return "no_holdout"
    if arms.members == 0:
        return "empty_audience"
    if found is None:
        return "problem"  # the report could not be computed: the page says why
    return found.state  # not_started or measured


@router.get("/campaigns/{campaign_id}/lift")
def lift_page(
    request: Request, user: Reader, db: Db, settings: AppSettings, campaign_id: CampaignId
) -> Response:
    campaign = planning.get(db, campaign_id)
    target = segments.campaign_target(db, campaign.id)
    base = settings.base_currency
    found: CampaignLift | None = None
    problem: RetainError | None = None
    if target is not None and target.holdout_share > 0:
        try:
            found = lift_data.campaign_lift(
                db, campaign.id, today=today(settings), zone=settings.zone, base=base
            )
        except RetainError as exc:  # a missing exchange rate for a receipt, say
            problem = exc
    query = {k: v for k, v in request.query_params.items() if k in CALCULATOR}
    calc = calculator(request, _defaults(target, found), query)
    report = found.report if found is not None else None
    arms = found.arms if found is not None else audiences.arms(db, campaign.id)
    context: dict[str, Any] = {
        "c": campaign,
        "target": target,
        "state": _state(target, found, arms),
        "arms": arms,
        "found": found,
        "report": report,
        "problem": problem,
        "problem_text": None if problem is None else say(request, problem),
        "currency": base,
        "started": segments.has_started(campaign, today(settings)),
        "calc": calc,
        "fields": {name: t(request, spec[0]) for name, spec in CALCULATOR.items()},
        "audience": arms.members or None,
    }
    if report is not None and found is not None:
        cost = found.cost
        context |= {
            "arm_rows": _arm_rows(request, report, base),
            "figures": _figures(request, report, base),
            "verdict": verdict_text(request, report),
            "chart": chart_data(request, report),
            "cost": None
            if cost is None
            else {
                "receipts": money(cost.receipts, base),
                "loyalty": money(cost.loyalty, base),
                "total": money(cost.total, base),
            },
        }
    status = 422 if calc.errors else 409 if problem is not None else 200
    if request.headers.get("HX-Request") == "true":
        status = 200  # htmx swaps only a success: the calculator's block shows its problems
    return render(request, "attribution/lift.html", context, status_code=status)


@router.get("/campaigns/{campaign_id}/audience.csv")
def audience_csv(user: Reader, db: Db, settings: AppSettings, campaign_id: CampaignId) -> Response:
    """The campaign's audience to message: the treated members of a frozen audience (never a
    held-out member), or the target segment now without a holdout."""
    campaign = planning.get(db, campaign_id)
    lines = segments.campaign_export_csv(db, campaign.id, today=today(settings), zone=settings.zone)
    name = f"campaign-{campaign.code.lower()}-audience-{today(settings):%Y%m%d}.csv"
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
