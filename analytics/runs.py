"""Value runs: every member's customer value computed from the database as of one day, and
stored, so pages, segments and exports read and never recompute.

Public API:

- `ValueParams`: the run's parameters, each held to its bound (`ValidationFailed`).
- `compute(session, params, *, base, zone) -> Computed`: load the facts (`analytics.facts`)
  and apply the pure rules; nothing is written.
- `run(session, actor, params, *, base, zone) -> ValueRun`: compute and store (one run row,
  one `MemberScore` per member), with an audit row.
- `latest_run(session)`, `get_run(session, run_id)`, `scores(session, run_id) -> DataFrame`.

**What a run computes** (all money in the base currency):

- *Predictions.* Per-member summaries of the purchase days up to ``as_of``
  (`analytics.summaries`, weeks), the BG/NBD and Gamma-Gamma fitted to them
  (`analytics.fit.fit_transactions`, the same code as ``retain value fit``), and per member:
  P(alive), expected purchases over the horizon and the **predicted value**: the discounted
  expected revenue over ``horizon_months`` months at ``yearly_discount_rate``
  (`gammagamma.customer_lifetime_value`). A member with no purchase has no prediction (0 in
  CLV2). The fit is also checked: refitted with the last ``holdout_days`` held out, predicted
  against actual purchases by frequency (the chart of the CLV page).
- *The pyramid* (`analytics.pyramid`) over the period (the ``period_days`` ending ``as_of``):
  margin on net purchases before coupon discounts (``margin``, or ``category_margins`` by
  category) less cost to serve (coupon discounts, points redeemed and bonus points at
  ``point_value``, ``yearly_service_cost`` pro rata). Layers compare the period's value with
  ``margin`` × predicted value: with a 12-month horizon and a 365-day period both are a
  year's margin.
- *RFM* (`analytics.rfm`) as of ``as_of``: last purchase day, purchase days and net spend
  ever.
- *Loyalty types* (`analytics.loyalty_types`) over the period, with ``thresholds``.
- *CLV in six parts* (`analytics.clv_parts`): CLV1 the first purchase day's spend; CLV2 repeat
  spend so far (all spend less the first day's and the cross-selling) plus the predicted
  value; CLV3 spend in categories beyond the first day's (spend of no known category, from
  a purchase without lines, is never cross-selling); CLV4 the cost to serve in the
  first membership year less the latest full one; CLV5 the net purchases of referred
  friends; CLV6 the full-price premium against the program's average share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from analytics import clv_parts, facts, gammagamma, loyalty_types, pyramid, rfm
from analytics.bgnbd import conditional_expected_purchases, probability_alive
from analytics.fit import FitReport, fit_transactions
from analytics.models import MemberScore, ValueRun
from analytics.summaries import summarise
from core import audit
from core.audit import Actor
from core.errors import NotFound, ValidationFailed
from core.money import minor_units
from core.text import N_
from core.timeutil import to_zone, utcnow
from loyalty import program

MONTH_WEEKS = gammagamma.period_length("month", "W")
MAX_PERIOD_DAYS = 3 * 365
MAX_HORIZON_MONTHS = 120
_CHUNK = 5_000


def _share(value: Decimal, label: str, code: str) -> None:
    if not (value.is_finite() and 0 <= value <= 1):
        raise ValidationFailed(
            f"value.{code}",
            "%(label)s must be between 0 and 1 (for example 0.3 for 30%%).",
            label=label,
        )


def _category_share(value: Decimal, category: str) -> None:
    if not (value.is_finite() and 0 <= value <= 1):
        raise ValidationFailed(
            "value.category_margins",
            "The margin of %(category)s must be between 0 and 1 (for example 0.3 for 30%%).",
            category=repr(category),
        )


@dataclass(frozen=True)
class ValueParams:
    """A run's parameters. ``as_of`` None means yesterday in the configured zone (the last
    whole day); ``point_value`` None means the program's value per point."""

    as_of: date | None = None
    period_days: int = 365
    margin: Decimal = Decimal("0.3")
    category_margins: Mapping[str, Decimal] = field(default_factory=dict)
    point_value: Decimal | None = None
    yearly_service_cost: Decimal = Decimal(0)
    top_share: Decimal = Decimal("0.5")
    growth_factor: Decimal = Decimal("1.5")
    horizon_months: int = 12
    yearly_discount_rate: Decimal = Decimal("0.1")
    holdout_days: int = 91
    thresholds: loyalty_types.LoyaltyThresholds = field(
        default_factory=loyalty_types.LoyaltyThresholds
    )

    def __post_init__(self) -> None:
        if not 28 <= self.period_days <= MAX_PERIOD_DAYS:
            raise ValidationFailed(
                "value.period_days",
                "The period must be 28–%(max_period_days)s days.",
                max_period_days=MAX_PERIOD_DAYS,
            )
        _share(self.margin, N_("The gross margin"), "margin")
        if len(self.category_margins) > 200:
            raise ValidationFailed("value.category_margins", "At most 200 category margins.")
        for category, rate in self.category_margins.items():
            if not 1 <= len(category) <= 64:
                raise ValidationFailed(
                    "value.category_margins", "A category name is 1–64 characters."
                )
            _category_share(rate, category)
        if self.point_value is not None and not (
            self.point_value.is_finite() and 0 <= self.point_value <= 1000
        ):
            raise ValidationFailed("value.point_value", "The value per point must be 0–1,000.")
        if not (self.yearly_service_cost.is_finite() and 0 <= self.yearly_service_cost <= 10**9):
            raise ValidationFailed(
                "value.yearly_service_cost", "The yearly service cost must be 0 or more."
            )
        if not (self.top_share.is_finite() and 0 < self.top_share <= 1):
            raise ValidationFailed(
                "value.top_share", "The top share must be above 0 and at most 1."
            )
        if not (self.growth_factor.is_finite() and 1 <= self.growth_factor <= 100):
            raise ValidationFailed("value.growth_factor", "The growth factor must be 1–100.")
        if not 1 <= self.horizon_months <= MAX_HORIZON_MONTHS:
            raise ValidationFailed(
                "value.horizon_months",
                "The horizon is 1–%(max_horizon_months)s months.",
                max_horizon_months=MAX_HORIZON_MONTHS,
            )
        if not (self.yearly_discount_rate.is_finite() and 0 <= self.yearly_discount_rate <= 1):
            raise ValidationFailed(
                "value.yearly_discount_rate", "The discount rate must be 0–1 (0.1 = 10%)."
            )
        if not 28 <= self.holdout_days <= 365:
            raise ValidationFailed("value.holdout_days", "The holdout is 28–365 days.")

    def canonical(self, as_of: date, point_value: Decimal) -> dict[str, Any]:
        """JSON form with the defaults resolved (stored on the run)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "thresholds":
                value = {
                    k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(value).items()
                }
            elif f.name == "category_margins":
                value = {k: str(v) for k, v in sorted(value.items())}
            elif isinstance(value, Decimal):
                value = str(value)
            out[f.name] = value
        out["as_of"] = as_of.isoformat()
        out["point_value"] = str(point_value)
        return out


@dataclass
class Computed:
    as_of: date
    period_days: int
    currency: str
    params: dict[str, Any]
    fit: dict[str, Any]
    summary: dict[str, Any]
    scores: pd.DataFrame  # indexed by member id: the `MemberScore` columns


def _money(values: Any, places: int) -> list[Decimal]:
    """Floats to Decimal at the currency's places, half up from their shortest repr."""
    quantum = Decimal(1).scaleb(-places)
    return [
        Decimal(repr(float(v))).quantize(quantum, rounding=ROUND_HALF_UP)
        if math.isfinite(float(v))
        else Decimal(0)
        for v in values
    ]


def _from_ticks(values: Any) -> list[Decimal]:
    return [Decimal(int(v)).scaleb(-4) for v in values]


def _as_of(params: ValueParams, zone: ZoneInfo) -> date:
    return params.as_of or (to_zone(utcnow(), zone).date() - timedelta(days=1))


def _predictions(
    daily: pd.DataFrame, as_of: date, params: ValueParams
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per purchasing member: p_alive, expected_purchases, predicted_value (NaN without a
    fit); and the fit's JSON (with the holdout check)."""
    log = pd.DataFrame(
        {
            "customer_id": daily["customer_id"],
            "date": daily["date"],
            "amount": daily["ticks"] / facts.TICKS,
        }
    )
    out: dict[str, Any] = {"unit": "W"}
    predicted = pd.DataFrame(
        columns=["p_alive", "expected_purchases", "predicted_value"], dtype=np.float64
    )
    if log.empty:
        out["note"] = "No member has bought anything yet: nothing to fit."
        return predicted, out
    report: FitReport | None = None
    try:
        report = fit_transactions(log, as_of)
    except ValidationFailed as exc:
        out["note"] = exc.message
    holdout_end = as_of
    calibration_end = as_of - timedelta(days=params.holdout_days)
    try:
        check = fit_transactions(log, calibration_end, holdout_end)
        out["holdout"] = check.as_dict()
    except ValidationFailed as exc:
        out["holdout_note"] = exc.message
    if report is None:
        return predicted, out
    out["model"] = report.as_dict()
    s = summarise(log, as_of)
    x = s["frequency"].to_numpy(dtype=np.float64)
    tx = s["recency"].to_numpy(dtype=np.float64)
    age = s["T"].to_numpy(dtype=np.float64)
    horizon = params.horizon_months * MONTH_WEEKS
    alive = probability_alive(report.bgnbd.params, x, tx, age)
    expected = conditional_expected_purchases(report.bgnbd.params, horizon, x, tx, age)
    value = np.full(len(s), np.nan)
    if report.gamma_gamma is not None:
        monthly = float((1 + params.yearly_discount_rate) ** (Decimal(1) / 12) - 1)
        monetary = s["monetary_value"].to_numpy(dtype=np.float64)
        free = (x > 0) & ~(monetary > 0)
        value = gammagamma.customer_lifetime_value(
            report.bgnbd.params,
            report.gamma_gamma.params,
            np.where(free, 0.0, x),
            np.where(free, 0.0, tx),
            age,
            np.where(free, np.nan, monetary),
            periods=params.horizon_months,
            discount_rate=monthly,
            period_length=MONTH_WEEKS,
        )
    predicted = pd.DataFrame(
        {"p_alive": alive, "expected_purchases": expected, "predicted_value": value},
        index=s.index.rename("member_id"),
    )
    return predicted, out


def pyramid_inputs(
    ids: pd.Index,
    joined: Any,
    period: pd.DataFrame,
    costs: pd.DataFrame,
    window: facts.Window,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`pyramid.member_value`'s two frames for the period: each member's costs and days in the
    program (from joining, within the period), and their sales before coupon discounts (the
    coupon counts once, as a cost). `period`: the daily facts of the period; `costs`:
    `facts.period_costs` indexed like `ids`; `joined`: each member's local joining day."""
    starts = (pd.to_datetime(joined) - pd.Timestamp(window.period_start)).days.to_numpy()
    days = (window.period_days - np.maximum(starts, 0)).clip(0, window.period_days)
    members = pd.DataFrame(
        {
            "member_id": ids,
            "coupon_discounts": costs["coupon_ticks"].to_numpy() / facts.TICKS,
            "points_redeemed": costs["points_redeemed"].to_numpy(),
            "bonus_points": costs["bonus_points"].to_numpy(),
            "days": days.astype(np.float64),
        }
    )
    spend = period.groupby("customer_id")["ticks"].sum().reindex(ids, fill_value=0)
    sales = pd.DataFrame(
        {
            "member_id": ids,
            "net_purchases": (spend + costs["coupon_ticks"]).to_numpy() / facts.TICKS,
        }
    )
    return members, sales


def compute(session: Session, params: ValueParams, *, base: str, zone: ZoneInfo) -> Computed:
    as_of = _as_of(params, zone)
    point_value = (
        params.point_value if params.point_value is not None else program.get(session).point_value
    )
    places = minor_units(base)
    window = facts.Window(as_of, params.period_days, zone)
    people = facts.members(session, window)
    ids = pd.Index(people["member_id"].to_numpy(dtype=np.int64), name="member_id")
    daily = facts.daily(session, window)
    costs = facts.period_costs(session, window).reindex(ids, fill_value=0)

    # Per member, all history and the period.
    in_period = (daily["date"] >= pd.Timestamp(window.period_start)).to_numpy()
    grouped = daily.groupby("customer_id", sort=True)
    spend_all = grouped["ticks"].sum().reindex(ids, fill_value=0)
    full_price = daily[daily["discounted"] == 0].groupby("customer_id")["ticks"].sum()
    full_price = full_price.reindex(ids, fill_value=0)
    first_day = grouped["date"].min()
    last_day = grouped["date"].max().reindex(ids)
    days_ever = grouped.size().reindex(ids, fill_value=0)
    first_amount = grouped["ticks"].first().reindex(ids, fill_value=0)  # sorted by day

    period = daily[in_period]

    # The pyramid.
    joined = pd.to_datetime(people["joined"]).dt.date.to_numpy()
    pyramid_members, sales = pyramid_inputs(ids, joined, period, costs, window)
    if params.category_margins:
        sales = facts.category_spend(session, window, period_only=True).rename(
            columns={"ticks": "net_purchases"}
        )
        sales["net_purchases"] = sales["net_purchases"] / facts.TICKS
        coupons = pd.DataFrame(
            {"member_id": ids, "category": "", "net_purchases": costs["coupon_ticks"] / facts.TICKS}
        )
        sales = pd.concat([sales, coupons[coupons["net_purchases"] != 0]])
        sales = sales[sales["member_id"].isin(ids)]
    rules = pyramid.ValueRules(
        margin=float(params.margin),
        period_days=params.period_days,
        category_margins={k: float(v) for k, v in params.category_margins.items()},
        value_per_point=float(point_value),
        yearly_service_cost=float(params.yearly_service_cost),
    )
    values = pyramid.member_value(pyramid_members, sales, rules)

    predicted, fit = _predictions(daily, as_of, params)
    predicted = predicted.reindex(ids)
    values["predicted_value"] = float(params.margin) * predicted["predicted_value"].to_numpy()
    layered = pyramid.assign_layers(
        values,
        pyramid.LayerRules(float(params.top_share), float(params.growth_factor)),
    )
    layer_table = pyramid.layer_summary(values.assign(layer=layered["layer"]))

    # RFM.
    scored = rfm.score(
        pd.DataFrame(
            {
                "member_id": ids,
                "last_purchase": last_day.to_numpy(),
                "purchases": days_ever.to_numpy(),
                "monetary": spend_all.to_numpy() / facts.TICKS,
            }
        ),
        as_of,
    )

    # Loyalty types over the period.
    covered = facts.campaign_days(session, window)
    offsets = (period["date"] - pd.Timestamp(window.period_start)).dt.days.to_numpy(np.int64)
    in_campaign = covered[offsets]
    first_of = first_day.reindex(period["customer_id"].to_numpy()).to_numpy()
    is_first = period["date"].to_numpy() == first_of
    per = (
        pd.DataFrame(
            {
                "customer_id": period["customer_id"].to_numpy(),
                "purchases": 1,
                "repeat_purchases": (~is_first).astype(np.int64),
                "discounted_purchases": period["discounted"].to_numpy(),
                "campaign_purchases": ((period["tagged"].to_numpy() == 1) | in_campaign).astype(
                    np.int64
                ),
            }
        )
        .groupby("customer_id")
        .sum()
    )
    per = per.reindex(ids, fill_value=0)
    outside_suffix = np.concatenate([np.cumsum((~covered)[::-1])[::-1], [0]])
    starts = np.array(
        [min(max(0, (j - window.period_start).days), params.period_days) for j in joined],
        dtype=np.int64,
    )
    kinds = loyalty_types.classify(
        pd.DataFrame(
            {
                "purchases": per["purchases"].to_numpy(),
                "repeat_purchases": per["repeat_purchases"].to_numpy(),
                "discounted_purchases": per["discounted_purchases"].to_numpy(),
                "campaign_purchases": per["campaign_purchases"].to_numpy(),
                "days_outside_campaigns": outside_suffix[starts],
                "engagement": costs["engagement"].to_numpy(),
                "referrals": costs["referrals"].to_numpy(),
            },
            index=ids,
        ),
        params.thresholds,
    )

    # CLV in six parts.
    categories = facts.category_spend(session, window)
    # Spend of unknown category (a purchase without lines) is never cross-selling: add ""
    # to every member's first categories.
    firsts = pd.concat(
        [facts.first_categories(session, window), pd.DataFrame({"member_id": ids, "category": ""})]
    )
    split = clv_parts.split_category_spend(
        categories.assign(
            amount=pd.Series(_from_ticks(categories["ticks"]), dtype=object, index=categories.index)
        ),
        firsts,
    ).reindex(ids)
    cross = split["cross_sell_spend"].map(lambda v: v if isinstance(v, Decimal) else Decimal(0))
    yearly = facts.yearly_costs(session, window, int(point_value * facts.TICKS))
    full_years = np.array(
        [max(0, ((as_of - j).days + 1) // facts.YEAR_DAYS) for j in joined], dtype=np.int64
    )
    latest_year = pd.Series(np.where(full_years >= 2, full_years - 1, 0), index=ids)
    cost_by = yearly.set_index(["member_id", "year"])["cost_ticks"]
    first_cost = [int(cost_by.get((m, 0), 0)) for m in ids]
    latest_cost = [int(cost_by.get((m, int(latest_year[m])), 0)) for m in ids]
    referred = facts.referred_spend(session, window)["ticks"].reindex(ids, fill_value=0)
    spend_decimal = _from_ticks(spend_all.to_numpy())
    first_decimal = _from_ticks(first_amount.to_numpy())
    parts = clv_parts.clv_parts(
        pd.DataFrame(
            {
                "first_amount": first_decimal,
                "repeat_spend": [
                    s - f - c for s, f, c in zip(spend_decimal, first_decimal, cross, strict=True)
                ],
                "predicted_value": predicted["predicted_value"].fillna(0.0).to_numpy(),
                "cross_sell_spend": cross.to_numpy(),
                "first_year_cost": _from_ticks(first_cost),
                "latest_year_cost": _from_ticks(latest_cost),
                "referred_spend": _from_ticks(referred.to_numpy()),
                "spend": spend_decimal,
                "full_price_spend": _from_ticks(full_price.to_numpy()),
            },
            index=ids,
        ),
        places=places,
    )

    scores = pd.DataFrame(
        {
            "net_purchases": _money(values["net_purchases"], places),
            "cost_to_serve": _money(values["cost_to_serve"], places),
            "value": _money(values["value"], places),
            "predicted_value": [
                None if math.isnan(v) else d
                for v, d in zip(
                    predicted["predicted_value"],
                    _money(predicted["predicted_value"].fillna(0.0), places),
                    strict=True,
                )
            ],
            "layer": layered["layer"].to_numpy(),
            "purchases": days_ever.to_numpy(),
            "last_purchase": [None if pd.isna(d) else d.date() for d in last_day],
            "monetary": _money(spend_all.to_numpy() / facts.TICKS, places),
            "r": scored["r"].where(scored["r"] > 0).to_numpy(),
            "f": scored["f"].where(scored["f"] > 0).to_numpy(),
            "m": scored["m"].where(scored["m"] > 0).to_numpy(),
            "rfm_segment": scored["segment"].to_numpy(),
            "loyalty_type": kinds.to_numpy(),
            "p_alive": predicted["p_alive"].to_numpy(),
            "expected_purchases": predicted["expected_purchases"].to_numpy(),
            **{p: parts[p].to_numpy() for p in clv_parts.PARTS},
            "clv_total": parts[clv_parts.TOTAL].to_numpy(),
        },
        index=ids,
    )
    summary = {
        "layers": {
            layer: {k: _json_number(v) for k, v in row.items()}
            for layer, row in layer_table.to_dict(orient="index").items()
        },
        "rfm_segments": {k: int(v) for k, v in scored["segment"].value_counts().items()},
        "loyalty_types": {k: int(v) for k, v in loyalty_types.counts(kinds).items()},
        "full_price_share": _fraction_text(
            clv_parts.average_full_price_share(
                pd.DataFrame(
                    {"spend": spend_decimal, "full_price_spend": _from_ticks(full_price)},
                    dtype=object,
                )
            )
        ),
    }
    return Computed(
        as_of=as_of,
        period_days=params.period_days,
        currency=base,
        params=params.canonical(as_of, point_value),
        fit=fit,
        summary=summary,
        scores=scores,
    )


def _fraction_text(value: Fraction) -> str:
    return str(
        (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.000001"))
    )


def _json_number(value: Any) -> float | int | None:
    if isinstance(value, int | np.integer):
        return int(value)
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def run(
    session: Session, actor: Actor, params: ValueParams, *, base: str, zone: ZoneInfo
) -> ValueRun:
    """Compute and store a run (see the module docstring); one transaction is the caller's."""
    actor.require("admin", "marketer", doing=N_("compute customer value"))
    computed = compute(session, params, base=base, zone=zone)
    stored = ValueRun(
        as_of=computed.as_of,
        period_days=computed.period_days,
        currency=computed.currency,
        params=computed.params,
        fit=computed.fit,
        summary=computed.summary,
        members=len(computed.scores),
        actor_label=actor.label,
    )
    session.add(stored)
    session.flush()
    rows: list[dict[str, Any]] = [
        {
            "run_id": stored.id,
            "member_id": int(member_id),
            **{str(k): _plain(v) for k, v in row.items()},
        }
        for member_id, row in zip(
            computed.scores.index, computed.scores.to_dict(orient="records"), strict=True
        )
    ]
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(MemberScore), rows[start : start + _CHUNK])
    audit.record(
        session,
        actor,
        "value_run.create",
        "value_run",
        stored.id,
        after={"as_of": computed.as_of.isoformat(), "members": len(rows)},
    )
    return stored


def _plain(value: Any) -> Any:
    """numpy scalars and NaN as what the columns take."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def latest_run(session: Session) -> ValueRun | None:
    newest = session.scalar(select(func.max(ValueRun.id)))
    return None if newest is None else session.get(ValueRun, newest)


def get_run(session: Session, run_id: int) -> ValueRun:
    stored = session.get(ValueRun, run_id) if 1 <= run_id <= 2**31 - 1 else None
    if stored is None:
        raise NotFound("value.run_not_found", "No customer value run %(run_id)s.", run_id=run_id)
    return stored


SCORE_COLUMNS = tuple(c.name for c in MemberScore.__table__.columns if c.name != "run_id")


def scores(session: Session, run_id: int) -> pd.DataFrame:
    """A run's member scores, indexed by member id."""
    columns = [getattr(MemberScore, c) for c in SCORE_COLUMNS]
    rows = session.execute(
        select(*columns).where(MemberScore.run_id == run_id).order_by(MemberScore.member_id)
    ).all()
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS)).set_index("member_id")
