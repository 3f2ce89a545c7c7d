"""The customer value pages (issue 14): the customer pyramid, RFM, lifetime value in six parts
and loyalty types, read from stored value runs (`analytics.runs`), never recomputed on a view.

Pages (readers: admin, marketer, finance; computing: admin, marketer):

- ``/value``: the pyramid of the run (its four layers: members, share of members, value,
  share of value, average value; a chart and a table), the run's parameters in words, the
  movement between layers since an earlier run (a matrix), and "Compute now" (a POST to
  ``/value/compute`` through `web.actions.act`, which runs `analytics.runs.run`).
- ``/value/rfm``: the R × F grid, the named segments with their published codes, the
  migration between two runs.
- ``/value/clv``: the six parts of lifetime value per layer and per RFM segment (sums or
  averages per member; the parts add up to the total exactly), the fitted BG/NBD and
  Gamma-Gamma with standard errors, and the calibration/holdout check (chart and table).
- ``/value/types``: members per loyalty type with the thresholds in words, and movement.
- ``/value/members``: the members of a layer, a segment, an R/F/M cell or a type (50 a
  page), exported by ``/value/members.csv`` and ``/value/members.xlsx``.
- ``/value/members/{number}``: one member's scores and six parts, and their history.

Every page takes ``run`` (a stored run's id; default the latest) and the movement sections
``compare`` (an earlier run; default the one before). A bad value is named on the page and
the default used, with a 422. Sums are SQL sums of the stored per-member amounts (exact, in
the run's currency), so rows add up to their totals; shares and averages are derived from
them the way `analytics.pyramid.layer_summary` defines them. Movement matrices come from the
pure `analytics.pyramid.movement`, `analytics.rfm.migration` and
`analytics.loyalty_types.movement` over the two runs' stored labels.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from analytics import clv_parts, loyalty_types, pyramid, rfm, runs
from analytics.models import MemberScore, ValueRun
from core import bounds
from core.accounts.models import Role, User
from core.errors import Problems, ValidationFailed
from core.exports import safe_cell
from core.money import format_decimal, minor_units, parse_amount
from core.settings import Settings
from core.timeutil import to_zone, utcnow
from loyalty import members as loyalty_members
from loyalty import program
from loyalty.models import Member
from web.actions import act
from web.deps import AppSettings, Db, actor_for, require_roles
from web.forms import FormFields
from web.rendering import N_, render, t, tn

router = APIRouter()
Reader = Annotated[User, Depends(require_roles(Role.MARKETER, Role.FINANCE, Role.ADMIN))]
Runner = Annotated[User, Depends(require_roles(Role.MARKETER, Role.ADMIN))]
RUNNERS = frozenset({Role.MARKETER.value, Role.ADMIN.value})
PAGE_SIZE = 50
MAX_PAGE = 1_000_000
RUN_CHOICES = 200  # stored runs a select offers, newest first
HISTORY_RUNS = 20  # runs a member's history shows
XLSX_ROWS = 1_048_576 - 10  # a worksheet's rows, less the title block

# --- Labels (the English names; the catalog gives the Chinese) -------------------------------

LAYER_NAMES: dict[str, str] = {
    pyramid.MOST_VALUABLE: N_("Most valuable"),
    pyramid.MOST_GROWABLE: N_("Most growable"),
    pyramid.LOW_CONTRIBUTION: N_("Low contribution"),
    pyramid.NEGATIVE: N_("Negative value"),
}
LAYER_SENTENCES: dict[str, str] = {
    pyramid.MOST_VALUABLE: N_(
        "The fewest members who together hold %(share)s of the positive value."
    ),
    pyramid.MOST_GROWABLE: N_(
        "The others whose predicted margin is more than %(factor)s times their value in the period."
    ),
    pyramid.LOW_CONTRIBUTION: N_("Everyone else whose value is zero or more."),
    pyramid.NEGATIVE: N_("Members who cost more to serve than their purchases earned."),
}
SEGMENT_NAMES: dict[str, str] = {
    rfm.CHAMPIONS: N_("Champions"),
    rfm.LOYAL: N_("Loyal Customers"),
    rfm.POTENTIAL_LOYALIST: N_("Potential Loyalist"),
    rfm.NEW_CUSTOMERS: N_("New Customers"),
    rfm.PROMISING: N_("Promising"),
    rfm.NEED_ATTENTION: N_("Need Attention"),
    rfm.ABOUT_TO_SLEEP: N_("About To Sleep"),
    rfm.AT_RISK: N_("At Risk"),
    rfm.CANT_LOSE: N_("Can't Lose Them"),
    rfm.HIBERNATING: N_("Hibernating"),
    rfm.LOST: N_("Lost"),
    rfm.NO_PURCHASE: N_("No Purchase"),
}
SEGMENT_SENTENCES: dict[str, str] = {
    rfm.CHAMPIONS: N_("Bought recently, buy often and spend the most."),
    rfm.LOYAL: N_("Buy often and spend well."),
    rfm.POTENTIAL_LOYALIST: N_("Recent buyers with average frequency who could become loyal."),
    rfm.NEW_CUSTOMERS: N_("Bought recently, but seldom so far."),
    rfm.PROMISING: N_("Recent buyers who have not bought often yet, some spending well."),
    rfm.NEED_ATTENTION: N_("Above average frequency and spend, but not very recent."),
    rfm.ABOUT_TO_SLEEP: N_("Below average recency and frequency: lost without a reason to return."),
    rfm.AT_RISK: N_("Bought often and spent well, but long ago."),
    rfm.CANT_LOSE: N_("Among the most frequent and biggest buyers, gone for a long time."),
    rfm.HIBERNATING: N_("Last bought long ago, seldom and for little."),
    rfm.LOST: N_("The lowest recency and frequency."),
    rfm.NO_PURCHASE: N_("Has not bought anything yet, so not scored."),
}
TYPE_NAMES: dict[str, str] = {
    loyalty_types.SUPER_VALUE: N_("Super-value loyalty"),
    loyalty_types.INCENTIVE: N_("Incentive loyalty"),
    loyalty_types.PRICE: N_("Price loyalty"),
    loyalty_types.INERTIA: N_("Inertia loyalty"),
    loyalty_types.NONE: N_("None / new"),
}
PART_NAMES: dict[str, str] = {
    "clv1": N_("First purchase"),
    "clv2": N_("Repeat purchases and growing spend"),
    "clv3": N_("Cross-selling"),
    "clv4": N_("Lower cost to serve"),
    "clv5": N_("Referrals"),
    "clv6": N_("Lower price sensitivity"),
}
PART_SENTENCES: dict[str, str] = {
    "clv1": N_("The net spend of the member's first purchase day."),
    "clv2": N_(
        "Repeat spend so far in the categories they started in, plus the predicted spend over"
        " the next %(months)s months, discounted."
    ),
    "clv3": N_("Spend so far in categories beyond those of the first purchase."),
    "clv4": N_(
        "The cost to serve in the first membership year less that of the latest full year;"
        " negative when it rose."
    ),
    "clv5": N_("The net purchases of the friends they referred."),
    "clv6": N_(
        "Full-price spend beyond the program's average full-price share (%(share)s); negative"
        " for members buying more at a discount than average."
    ),
}
# The two edges of a movement matrix.
NEW_ROW = N_("Not in the earlier run")
GONE_COLUMN = N_("Not in the later run")
ABSENT = N_("Not in that run")
SHOWS = {"sum": N_("Sums"), "average": N_("Averages per member")}
FORM_FIELDS = (
    "as_of",
    "period_days",
    "margin",
    "point_value",
    "yearly_service_cost",
    "top_share",
    "growth_factor",
    "horizon_months",
    "yearly_discount_rate",
)
_WHOLE = re.compile(r"[0-9]{1,10}")
_SHARE_PLACES = Decimal("0.1")


# --- Numbers as people read them ------------------------------------------------------------


def money(value: Decimal | None, currency: str) -> str:
    """An amount in the currency's minor units, thousands grouped; "—" for none."""
    if value is None:
        return "—"
    places = minor_units(currency)
    return format_decimal(value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP), places)


def percent(value: Decimal | float | None, places: Decimal = _SHARE_PLACES) -> str:
    """A fraction as a percentage: 0.125 → "12.5%"; "—" for none."""
    if value is None:
        return "—"
    number = Decimal(str(value)) if isinstance(value, float) else value
    return f"{(number * 100).quantize(places, ROUND_HALF_UP):,}%"


def exact_percent(value: Decimal | str) -> str:
    """A parameter's share exactly as given: "0.3" → "30%", "0.125" → "12.5%"."""
    number = (Decimal(str(value)) * 100).normalize()
    return f"{number:f}%"


def plain_number(value: Decimal | str) -> str:
    return f"{Decimal(str(value)).normalize():f}"


def count(value: int) -> str:
    return f"{value:,}"


def ratio(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    return None if not whole else Decimal(part) / Decimal(whole)


def average(total: Decimal, members: int, currency: str) -> Decimal | None:
    if not members:
        return None
    places = Decimal(1).scaleb(-minor_units(currency))
    return (total / members).quantize(places, ROUND_HALF_UP)


def fitted(value: float | None, places: int = 4) -> str:
    """A fitted figure at `places` decimals, thousands grouped; a parameter or standard error
    (4 places) of 1,000 or more as a whole number (its decimals say nothing)."""
    if value is None or not math.isfinite(value):
        return "—"
    if places == 4 and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{places}f}"


# --- Which runs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunChoice:
    id: int
    as_of: date
    members: int
    created_at: datetime


def stored_runs(db: Session, limit: int = RUN_CHOICES) -> list[RunChoice]:
    rows = db.execute(
        select(ValueRun.id, ValueRun.as_of, ValueRun.members, ValueRun.created_at)
        .order_by(ValueRun.id.desc())
        .limit(limit)
    ).all()
    return [RunChoice(*row) for row in rows]


def previous_run(db: Session, run: ValueRun) -> ValueRun | None:
    found = db.scalar(select(func.max(ValueRun.id)).where(ValueRun.id < run.id))
    return None if found is None else db.get(ValueRun, found)


def _shown(value: str) -> str:
    return value if len(value) <= 24 else value[:23] + "…"


def _run_id(raw: str) -> int | None:
    raw = raw.strip()
    if _WHOLE.fullmatch(raw) and 1 <= int(raw) <= bounds.MAX_ID:
        return int(raw)
    return None


@dataclass
class View:
    """The runs a page shows: the chosen one (default the latest), the earlier one its
    movement compares with (default the one before), each bad choice's problem."""

    run: ValueRun | None
    compare: ValueRun | None
    choices: list[RunChoice]
    problems: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)  # the understood choices

    @property
    def earlier(self) -> list[RunChoice]:
        return [c for c in self.choices if self.run is not None and c.id < self.run.id]

    def href(self, path: str, **changes: str | int | None) -> str:
        values = {**self.query, **{k: "" if v is None else str(v) for k, v in changes.items()}}
        query = urlencode({k: v for k, v in values.items() if v})
        return path + (f"?{query}" if query else "")


def choose_runs(request: Request, db: Session, values: Mapping[str, str]) -> View:
    problems: dict[str, str] = {}
    query: dict[str, str] = {}
    run: ValueRun | None = None
    raw = str(values.get("run", "")).strip()
    if raw:
        wanted = _run_id(raw)
        run = None if wanted is None else db.get(ValueRun, wanted)
        if run is None:
            problems["run"] = t(
                request,
                "There is no stored run '%(value)s'; the latest one is shown.",
                value=_shown(raw),
            )
        else:
            query["run"] = str(run.id)
    if run is None:
        run = runs.latest_run(db)
    compare: ValueRun | None = None
    raw = str(values.get("compare", "")).strip()
    if run is not None and raw:
        wanted = _run_id(raw)
        found = None if wanted is None else db.get(ValueRun, wanted)
        if found is None or found.id >= run.id:
            problems["compare"] = t(
                request,
                "Choose a run computed before this one to compare with; the previous run is used.",
            )
        else:
            compare = found
            query["compare"] = str(found.id)
    if run is not None and compare is None:
        compare = previous_run(db, run)
    return View(run, compare, stored_runs(db), problems, query)


def params_of(run: ValueRun) -> dict[str, Any]:
    """The run's parameters; one missing (a run not stored by `runs.run`) at its default."""
    defaults = runs.ValueParams().canonical(run.as_of, Decimal(0))
    return {**defaults, **(run.params or {})}


def run_words(request: Request, run: ValueRun) -> dict[str, Any]:
    """The run's parameters in words, for the page."""
    p = params_of(run)
    currency = run.currency
    start = run.as_of - timedelta(days=run.period_days - 1)
    margins = p.get("category_margins") or {}
    margin = t(request, "%(share)s on net purchases", share=exact_percent(p["margin"]))
    if margins:
        margin += " (" + ", ".join(f"{k} {exact_percent(v)}" for k, v in margins.items()) + ")"
    return {
        "period": t(
            request,
            "The %(days)s days %(start)s – %(end)s",
            days=count(run.period_days),
            start=start.isoformat(),
            end=run.as_of.isoformat(),
        ),
        "margin": margin,
        "point": t(
            request,
            "A point costs %(value)s %(currency)s (points redeemed and bonus points)",
            value=plain_number(p["point_value"]),
            currency=currency,
        ),
        "service": t(
            request,
            "%(value)s %(currency)s a member a year, for the days they belonged",
            value=money(Decimal(p["yearly_service_cost"]), currency),
            currency=currency,
        ),
        "top": t(
            request,
            "The fewest members holding %(share)s of the positive value",
            share=exact_percent(p["top_share"]),
        ),
        "growth": t(
            request,
            "Predicted margin over %(months)s months above %(factor)s × the period's value",
            months=p["horizon_months"],
            factor=plain_number(p["growth_factor"]),
        ),
        "lifetime": t(
            request,
            "Over %(months)s months, discounted at %(rate)s a year; checked on the last"
            " %(days)s days held out",
            months=p["horizon_months"],
            rate=exact_percent(p["yearly_discount_rate"]),
            days=p["holdout_days"],
        ),
    }


def _base(
    request: Request, user: User, view: View, page: str, settings: Settings
) -> dict[str, Any]:
    roles = {r.value for r in user.roles}
    run = view.run
    context: dict[str, Any] = {
        "view": view,
        "run": run,
        "page": page,
        "problems": view.problems,
        "can_compute": bool(roles & RUNNERS),
        "currency": run.currency if run is not None else settings.base_currency,
        "layer_names": LAYER_NAMES,
        "segment_names": SEGMENT_NAMES,
        "type_names": TYPE_NAMES,
        "part_names": PART_NAMES,
        "count": count,
        "keep": {},
    }
    if run is not None:
        context["words"] = run_words(request, run)
        context["params"] = params_of(run)
    return context


# --- Sums per group, exact, from the stored scores --------------------------------------------


def _dec(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)


def grouped(
    db: Session, run_id: int, by: Any, columns: Sequence[str]
) -> dict[str, tuple[int, dict[str, Decimal]]]:
    """Per value of `by`: (members, {column: exact sum})."""
    rows = db.execute(
        select(by, func.count(), *(func.sum(getattr(MemberScore, c)) for c in columns))
        .where(MemberScore.run_id == run_id)
        .group_by(by)
    ).all()
    return {
        str(row[0]): (int(row[1]), {c: _dec(v) for c, v in zip(columns, row[2:], strict=True)})
        for row in rows
    }


def positive_value(db: Session, run_id: int) -> Decimal:
    found = db.scalar(
        select(func.sum(MemberScore.value)).where(
            MemberScore.run_id == run_id, MemberScore.value > 0
        )
    )
    return _dec(found)


@dataclass(frozen=True)
class LayerRow:
    layer: str
    members: int
    member_share: Decimal | None
    value: Decimal
    value_share: Decimal | None
    average_value: Decimal | None


def layer_table(db: Session, run: ValueRun) -> tuple[list[LayerRow], LayerRow, Decimal]:
    """The four layers (top first) and the total, as `pyramid.layer_summary` defines them:
    shares of value are of the total positive value; the positive value itself."""
    found = grouped(db, run.id, MemberScore.layer, ("value",))
    total = sum(n for n, _ in found.values())
    positive = positive_value(db, run.id)
    rows = []
    for layer in pyramid.LAYERS:
        members, sums = found.get(layer, (0, {"value": Decimal(0)}))
        rows.append(
            LayerRow(
                layer,
                members,
                ratio(members, total),
                sums["value"],
                ratio(sums["value"], positive) if positive > 0 else None,
                average(sums["value"], members, run.currency),
            )
        )
    value = sum((r.value for r in rows), Decimal(0))
    totals = LayerRow(
        "",
        total,
        Decimal(1) if total else None,
        value,
        None,
        average(value, total, run.currency),
    )
    return rows, totals, positive


# --- Movement ---------------------------------------------------------------------------------


def labels_of(db: Session, run_id: int, column: str) -> pd.Series:
    """One stored label per member of a run (layer, segment or type), indexed by member."""
    attribute = getattr(MemberScore, column)
    rows = db.execute(
        select(MemberScore.member_id, attribute).where(MemberScore.run_id == run_id)
    ).all()
    return pd.Series(
        [r[1] for r in rows],
        index=pd.Index([int(r[0]) for r in rows], name="member_id", dtype="int64"),
        dtype=object,
    )


def movement(db: Session, kind: str, before: ValueRun, after: ValueRun) -> pd.DataFrame:
    """The matrix between two runs: rows the earlier run's label, columns the later's."""
    if kind == "layer":
        first, second = labels_of(db, before.id, "layer"), labels_of(db, after.id, "layer")
        return pyramid.movement(first.to_frame("layer"), second.to_frame("layer"))
    if kind == "segment":
        first = labels_of(db, before.id, "rfm_segment")
        second = labels_of(db, after.id, "rfm_segment")
        return rfm.migration(first.to_frame("segment"), second.to_frame("segment"))
    first = labels_of(db, before.id, "loyalty_type")
    second = labels_of(db, after.id, "loyalty_type")
    return loyalty_types.movement(first, second)


def matrix_view(request: Request, matrix: pd.DataFrame, names: Mapping[str, str]) -> dict[str, Any]:
    """A movement matrix for a template: labels translated, each row's and column's total,
    the diagonal (members who kept their label) marked."""
    special = {
        rfm.NEW: t(request, NEW_ROW),
        rfm.GONE: t(request, GONE_COLUMN),
        loyalty_types.ABSENT: t(request, ABSENT),
    }

    def label(key: str) -> str:
        return t(request, names[key]) if key in names else special.get(key, key)

    columns = [str(c) for c in matrix.columns]
    rows = []
    stayed = 0
    for key, line in matrix.iterrows():
        values = [int(v) for v in line.tolist()]
        cells = []
        for column, value in zip(columns, values, strict=True):
            same = column == key and key in names
            stayed += value if same else 0
            cells.append({"count": value, "shown": count(value), "same": same, "key": column})
        rows.append(
            {"key": str(key), "label": label(str(key)), "cells": cells, "total": sum(values)}
        )
    totals = [int(v) for v in matrix.sum(axis=0).tolist()]
    grand = int(matrix.to_numpy().sum())
    return {
        "columns": [{"key": c, "label": label(c), "edge": c not in names} for c in columns],
        "rows": rows,
        "totals": [count(v) for v in totals],
        "grand": count(grand),
        "stayed": stayed,
    }


def layer_moves(matrix: pd.DataFrame) -> dict[str, int]:
    """Members who moved up or down the pyramid, or stayed."""
    order = {layer: i for i, layer in enumerate(pyramid.LAYERS)}
    up = down = same = 0
    for before, line in matrix.iterrows():
        for after, value in line.items():
            if before in order and after in order:
                if order[str(after)] < order[str(before)]:
                    up += int(value)
                elif order[str(after)] > order[str(before)]:
                    down += int(value)
                else:
                    same += int(value)
    return {"up": up, "down": down, "same": same}


def movement_context(
    request: Request, db: Session, view: View, kind: str, names: Mapping[str, str]
) -> dict[str, Any] | None:
    if view.run is None or view.compare is None:
        return None
    matrix = movement(db, kind, view.compare, view.run)
    shown = matrix_view(request, matrix, names)
    if kind == "layer":
        shown["moves"] = layer_moves(matrix)
    return shown


# --- The pyramid page and the compute form ---------------------------------------------------


def form_defaults(run: ValueRun | None) -> dict[str, str]:
    """The compute form's values: the last run's parameters, else the defaults (the as-of
    day and the point value left blank: yesterday and the program's value)."""
    d = runs.ValueParams()
    p: Mapping[str, Any] = params_of(run) if run is not None else {}

    def pct(name: str, default: Decimal) -> str:
        return plain_number(Decimal(str(p.get(name, default))) * 100)

    return {
        "as_of": "",
        "period_days": str(p.get("period_days", d.period_days)),
        "margin": pct("margin", d.margin),
        "point_value": "",
        "yearly_service_cost": plain_number(p.get("yearly_service_cost", d.yearly_service_cost)),
        "top_share": pct("top_share", d.top_share),
        "growth_factor": plain_number(p.get("growth_factor", d.growth_factor)),
        "horizon_months": str(p.get("horizon_months", d.horizon_months)),
        "yearly_discount_rate": pct("yearly_discount_rate", d.yearly_discount_rate),
    }


def pyramid_context(
    request: Request,
    db: Session,
    settings: Settings,
    user: User,
    view: View,
    *,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    context = _base(request, user, view, "pyramid", settings)
    context.update(
        typed=typed or form_defaults(view.run),
        errors=errors or {},
        compute_refused=errors is not None,
        program_point_value=plain_number(program.get(db).point_value),
        max_period_days=runs.MAX_PERIOD_DAYS,
        max_horizon_months=runs.MAX_HORIZON_MONTHS,
        today=to_zone(utcnow(), settings.zone).date().isoformat(),
    )
    run = view.run
    if run is None:
        return context
    rows, totals, positive = layer_table(db, run)
    currency = run.currency
    reasons = {
        "no_members": t(request, "No members in this layer."),
        "no_positive": t(request, "No member has a positive value, so there is no share."),
        "total_share": t(
            request,
            "Shares of value are of the positive value: the three layers at or above zero add"
            " up to 100%, the negative layer takes its share back.",
        ),
    }
    shown = []
    for row in rows:
        shown.append(
            {
                "layer": row.layer,
                "name": t(request, LAYER_NAMES[row.layer]),
                "sentence": t(
                    request,
                    LAYER_SENTENCES[row.layer],
                    share=exact_percent(params_of(run)["top_share"]),
                    factor=plain_number(params_of(run)["growth_factor"]),
                ),
                "members": count(row.members),
                "member_share": percent(row.member_share),
                "value": money(row.value, currency),
                "value_exact": str(row.value),
                "value_share": percent(row.value_share),
                "value_share_why": None if row.value_share is not None else reasons["no_positive"],
                "average": money(row.average_value, currency),
                "average_why": None if row.average_value is not None else reasons["no_members"],
                "href": view.href("/value/members", layer=row.layer, compare=None),
            }
        )
    context.update(
        layers=shown,
        totals={
            "members": count(totals.members),
            "member_share": percent(totals.member_share),
            "value": money(totals.value, currency),
            "value_share_why": reasons["total_share"],
            "average": money(totals.average_value, currency),
        },
        positive=money(positive, currency),
        chart={
            "kind": "pyramid",
            "labels": [t(request, LAYER_NAMES[r.layer]) for r in rows],
            "members": [r.members for r in rows],
            "member_share": [_pct_float(r.member_share) for r in rows],
            "value_share": [_pct_float(r.value_share) for r in rows],
            "text": {
                "members": t(request, "Members"),
                "member_share": t(request, "Share of members"),
                "value_share": t(request, "Share of value"),
            },
        },
        movement=movement_context(request, db, view, "layer", LAYER_NAMES),
    )
    return context


def _pct_float(value: Decimal | None) -> float | None:
    return None if value is None else float((value * 100).quantize(Decimal("0.01")))


def _run_page(
    request: Request,
    db: Db,
    settings: AppSettings,
    user: User,
    template: str,
    context_of: Callable[[Request, Db, AppSettings, User, Any], dict[str, Any]],
) -> Response:
    """A page of one run (chosen by `run`, compared with `compare`); 422 when a query value
    was refused (the page still shows, with the default)."""
    view = choose_runs(request, db, dict(request.query_params))
    return render(
        request,
        f"analytics/{template}.html",
        context_of(request, db, settings, user, view),
        status_code=422 if view.problems else 200,
    )


@router.get("/value")
def pyramid_page(request: Request, user: Reader, db: Db, settings: AppSettings) -> Response:
    return _run_page(request, db, settings, user, "value_pyramid", pyramid_context)


@dataclass
class Parsed:
    values: dict[str, Any] = field(default_factory=dict)
    problems: Problems = field(default_factory=Problems)


def _number(text: str) -> Decimal | None:
    try:
        value = parse_amount(text)
    except (ValidationFailed, InvalidOperation):
        return None
    return value if value.is_finite() else None


def parse_compute(request: Request, form: Mapping[str, str], today: date) -> Parsed:
    """The compute form's fields: every problem found at once, each beside its field."""
    parsed = Parsed()
    problems = parsed.problems

    def whole(name: str, low: int, high: int, refusal: ValidationFailed) -> None:
        raw = form.get(name, "").strip()
        if _WHOLE.fullmatch(raw.replace(",", "")) and low <= int(raw.replace(",", "")) <= high:
            parsed.values[name] = int(raw.replace(",", ""))
        else:
            problems.refuse(name, refusal)

    def decimal(
        name: str,
        check: Callable[[Decimal], bool],
        refusal: ValidationFailed,
        *,
        scale: int = 1,
        places: int = 4,
        optional: bool = False,
    ) -> None:
        raw = form.get(name, "").strip()
        if not raw and optional:
            parsed.values[name] = None
            return
        number = _number(raw) if raw else None
        exponent = number.as_tuple().exponent if number is not None else 0
        if (
            number is None
            or not isinstance(exponent, int)
            or -exponent > places
            or not check(number)
        ):
            problems.refuse(name, refusal)
            return
        parsed.values[name] = number / scale

    raw_day = form.get("as_of", "").strip()
    parsed.values["as_of"] = None
    if raw_day:
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            problems.add(
                "as_of",
                "'%(value)s' is not a date like 2026-03-31.",
                "value.as_of",
                value=_shown(raw_day),
            )
        else:
            if not bounds.FIRST_DAY <= day <= today:
                problems.add(
                    "as_of",
                    "The as-of day must be between %(first)s and today.",
                    "value.as_of",
                    first=bounds.FIRST_DAY.isoformat(),
                )
            else:
                parsed.values["as_of"] = day
    whole(
        "period_days",
        28,
        runs.MAX_PERIOD_DAYS,
        ValidationFailed(
            "value.period_days",
            "The period is a whole number of days from 28 to %(most)s.",
            most=runs.MAX_PERIOD_DAYS,
        ),
    )
    decimal(
        "margin",
        lambda v: 0 <= v <= 100,
        ValidationFailed("value.margin", "The margin is a percentage from 0 to 100, such as 30."),
        scale=100,
    )
    decimal(
        "point_value",
        lambda v: 0 <= v <= 1000,
        ValidationFailed(
            "value.point_value",
            "The value of a point is an amount from 0 to 1,000 with at most 4 decimals; leave"
            " it blank for the program's.",
        ),
        optional=True,
    )
    decimal(
        "yearly_service_cost",
        lambda v: 0 <= v <= 10**9,
        ValidationFailed(
            "value.yearly_service_cost",
            "The yearly service cost is an amount from 0 to 1,000,000,000 with at most 4 decimals.",
        ),
    )
    decimal(
        "top_share",
        lambda v: 0 < v <= 100,
        ValidationFailed(
            "value.top_share",
            "The top share is a percentage above 0 and at most 100, such as 50.",
        ),
        scale=100,
    )
    decimal(
        "growth_factor",
        lambda v: 1 <= v <= 100,
        ValidationFailed(
            "value.growth_factor", "The growth factor is a number from 1 to 100, such as 1.5."
        ),
    )
    whole(
        "horizon_months",
        1,
        runs.MAX_HORIZON_MONTHS,
        ValidationFailed(
            "value.horizon_months",
            "The horizon is a whole number of months from 1 to %(most)s.",
            most=runs.MAX_HORIZON_MONTHS,
        ),
    )
    decimal(
        "yearly_discount_rate",
        lambda v: 0 <= v <= 100,
        ValidationFailed(
            "value.yearly_discount_rate",
            "The discount rate is a percentage from 0 to 100, such as 10.",
        ),
        scale=100,
    )
    return parsed


@router.post("/value/compute")
def compute(
    request: Request, user: Runner, db: Db, settings: AppSettings, form: FormFields
) -> Response:
    typed = {name: str(form.get(name) or "")[:100] for name in FORM_FIELDS}
    today = to_zone(utcnow(), settings.zone).date()
    parsed = parse_compute(request, typed, today)

    def run() -> ValueRun:
        params = runs.ValueParams(**parsed.values)
        return runs.run(
            db, actor_for(request, user), params, base=settings.base_currency, zone=settings.zone
        )

    def again(errors: dict[str, str]) -> Response:
        view = choose_runs(request, db, {})
        return render(
            request,
            "analytics/value_pyramid.html",
            pyramid_context(request, db, settings, user, view, typed=typed, errors=errors),
        )

    return act(
        request,
        db,
        run,
        errors=parsed.problems,
        done=lambda stored: tn(
            request,
            "Computed and stored the customer value of %(members)s member as of %(day)s.",
            "Computed and stored the customer value of %(members)s members as of %(day)s.",
            stored.members,
            members=count(stored.members),
            day=stored.as_of.isoformat(),
        ),
        then=lambda stored: f"/value?run={stored.id}",
        again=again,
        names=FORM_FIELDS,
    )


# --- RFM -------------------------------------------------------------------------------------


def rfm_context(
    request: Request, db: Session, settings: Settings, user: User, view: View
) -> dict[str, Any]:
    context = _base(request, user, view, "rfm", settings)
    run = view.run
    if run is None:
        return context
    cells = {
        (int(r or 0), int(f or 0)): int(n)
        for r, f, n in db.execute(
            select(MemberScore.r, MemberScore.f, func.count())
            .where(MemberScore.run_id == run.id, MemberScore.r.isnot(None))
            .group_by(MemberScore.r, MemberScore.f)
        ).all()
    }
    scored = sum(cells.values())
    peak = max(cells.values(), default=0)
    grid = [
        {
            "r": r,
            "cells": [
                {
                    "f": f,
                    "count": count(cells.get((r, f), 0)),
                    "share": percent(ratio(cells.get((r, f), 0), scored)),
                    "heat": f"{cells.get((r, f), 0) / peak:.3f}" if peak else "0",
                    "href": view.href("/value/members", r=r, f=f, compare=None),
                }
                for f in range(1, 6)
            ],
        }
        for r in range(5, 0, -1)
    ]
    found = grouped(db, run.id, MemberScore.rfm_segment, ("monetary",))
    total = sum(n for n, _ in found.values())
    segments = []
    for segment in rfm.SEGMENTS:
        members, sums = found.get(segment, (0, {"monetary": Decimal(0)}))
        segments.append(
            {
                "key": segment,
                "name": t(request, SEGMENT_NAMES[segment]),
                "sentence": t(request, SEGMENT_SENTENCES[segment]),
                "codes": " ".join(rfm.SEGMENT_CODES.get(segment, ())) or "—",
                "members": count(members),
                "members_n": members,
                "share": percent(ratio(members, total)),
                "spend": money(sums["monetary"], run.currency),
                "href": view.href("/value/members", segment=segment, compare=None),
            }
        )
    context.update(
        grid=grid,
        scored=count(scored),
        unscored=count(found.get(rfm.NO_PURCHASE, (0, {}))[0]),
        segments=segments,
        segment_totals={
            "members": count(total),
            "share": percent(Decimal(1)) if total else "—",
            "spend": money(
                sum((s[1]["monetary"] for s in found.values()), Decimal(0)), run.currency
            ),
        },
        chart={
            "kind": "rfm",
            "labels": [s["name"] for s in segments],
            "members": [s["members_n"] for s in segments],
            "text": {"members": t(request, "Members")},
        },
        movement=movement_context(request, db, view, "segment", SEGMENT_NAMES),
    )
    return context


@router.get("/value/rfm")
def rfm_page(request: Request, user: Reader, db: Db, settings: AppSettings) -> Response:
    return _run_page(request, db, settings, user, "value_rfm", rfm_context)


# --- Lifetime value ----------------------------------------------------------------------------

PART_COLUMNS = (*clv_parts.PARTS, "clv_total")


def parts_table(
    request: Request,
    found: Mapping[str, tuple[int, dict[str, Decimal]]],
    keys: Sequence[str],
    names: Mapping[str, str],
    currency: str,
    show: str,
    href: Callable[[str], str],
) -> dict[str, Any]:
    """Rows of the six parts and the total per group (sums, or averages per member), and
    the total row; groups without members are left out."""
    rows = []
    for key in keys:
        if key not in found:
            continue
        members, sums = found[key]
        rows.append(
            {
                "key": key,
                "name": t(request, names[key]) if key in names else key,
                "members": count(members),
                "cells": [
                    money(
                        sums[c] if show == "sum" else average(sums[c], members, currency), currency
                    )
                    for c in PART_COLUMNS
                ],
                "exact": [str(sums[c]) for c in PART_COLUMNS],
                "href": href(key),
            }
        )
    everyone = sum(n for n, _ in found.values())
    totals = {c: sum((s[c] for _, s in found.values()), Decimal(0)) for c in PART_COLUMNS}
    return {
        "rows": rows,
        "members": count(everyone),
        "totals": [
            money(totals[c] if show == "sum" else average(totals[c], everyone, currency), currency)
            for c in PART_COLUMNS
        ],
        "exact_totals": [str(totals[c]) for c in PART_COLUMNS],
    }


def _params_table(
    fitted_params: Mapping[str, Any] | None, names: Mapping[str, str]
) -> list[dict[str, str]]:
    if not fitted_params:
        return []
    return [
        {
            "name": shown,
            "value": fitted((fitted_params.get(key) or {}).get("value")),
            "se": fitted((fitted_params.get(key) or {}).get("se")),
        }
        for key, shown in names.items()
    ]


def fit_context(request: Request, fit: Mapping[str, Any]) -> dict[str, Any]:
    """The fitted models and the holdout check, from the run's stored fit."""
    model = fit.get("model")
    out: dict[str, Any] = {"note": fit.get("note"), "model": None, "holdout": None}
    if model:
        bg = model.get("bgnbd") or {}
        gg = model.get("gamma_gamma")
        out["model"] = {
            "calibration_end": model.get("calibration_end"),
            "customers": count(int(model.get("customers") or 0)),
            "repeat_buyers": count(int(model.get("repeat_buyers") or 0)),
            "repeat_purchases": count(int(model.get("repeat_purchases") or 0)),
            "bgnbd": _params_table(bg.get("params"), {"r": "r", "alpha": "α", "a": "a", "b": "b"}),
            "bgnbd_ll": fitted(bg.get("log_likelihood"), 2),
            "bgnbd_converged": bool(bg.get("converged")),
            "bgnbd_message": bg.get("message") or "",
            "gamma_gamma": None,
            "gamma_gamma_note": model.get("gamma_gamma_note") or "",
            "correlation": fitted(model.get("spend_frequency_correlation"), 3),
        }
        if gg:
            out["model"]["gamma_gamma"] = {
                "params": _params_table(gg.get("params"), {"p": "p", "q": "q", "gamma": "γ"}),
                "ll": fitted(gg.get("log_likelihood"), 2),
                "customers": count(int(gg.get("customers") or 0)),
                "converged": bool(gg.get("converged")),
                "message": gg.get("message") or "",
            }
    check = fit.get("holdout") or {}
    table = check.get("holdout") if check else None
    out["holdout_note"] = fit.get("holdout_note")
    if table:
        rows = []
        for row in table.get("by_frequency") or []:
            empty = not row.get("customers")
            rows.append(
                {
                    "frequency": str(row.get("frequency")),
                    "customers": count(int(row.get("customers") or 0)),
                    "actual": "—" if empty else fitted(row.get("actual"), 3),
                    "predicted": "—" if empty else fitted(row.get("predicted"), 3),
                    "actual_total": count(int(row.get("actual_total") or 0)),
                    "predicted_total": fitted(row.get("predicted_total"), 1),
                    "empty": empty,
                }
            )
        by = table.get("by_frequency") or []
        out["holdout"] = {
            "calibration_end": check.get("calibration_end"),
            "holdout_end": check.get("holdout_end"),
            "weeks": fitted(table.get("duration"), 1),
            "customers": count(int(table.get("customers") or 0)),
            "actual_total": count(int(table.get("actual_total") or 0)),
            "predicted_total": fitted(table.get("predicted_total"), 1),
            "rows": rows,
            "chart": {
                "kind": "holdout",
                "labels": [str(r.get("frequency")) for r in by],
                "actual": [r.get("actual") for r in by],
                "predicted": [r.get("predicted") for r in by],
                "text": {
                    "actual": t(request, "Actual"),
                    "predicted": t(request, "Predicted"),
                    "x": t(request, "Repeat purchases in the calibration period"),
                    "y": t(request, "Purchases per member in the holdout period"),
                },
            },
        }
    return out


def clv_context(
    request: Request, db: Session, settings: Settings, user: User, view: View, show: str
) -> dict[str, Any]:
    context = _base(request, user, view, "clv", settings)
    context.update(
        keep={"show": show} if show != "sum" else {},
        show=show,
        shows=SHOWS,
        part_columns=clv_parts.PARTS,
        show_href={s: view.href("/value/clv", show=s if s != "sum" else None) for s in SHOWS},
    )
    run = view.run
    if run is None:
        return context
    currency = run.currency
    by_layer = grouped(db, run.id, MemberScore.layer, PART_COLUMNS)
    by_segment = grouped(db, run.id, MemberScore.rfm_segment, PART_COLUMNS)
    share = Decimal(str(run.summary.get("full_price_share", "0")))
    layers = parts_table(
        request,
        by_layer,
        pyramid.LAYERS,
        LAYER_NAMES,
        currency,
        show,
        lambda k: view.href("/value/members", layer=k, compare=None, show=None),
    )
    context.update(
        layers=layers,
        segments=parts_table(
            request,
            by_segment,
            rfm.SEGMENTS,
            SEGMENT_NAMES,
            currency,
            show,
            lambda k: view.href("/value/members", segment=k, compare=None, show=None),
        ),
        part_sentences=[
            {
                "name": t(request, PART_NAMES[p]),
                "key": p.upper(),
                "sentence": t(
                    request,
                    PART_SENTENCES[p],
                    months=params_of(run)["horizon_months"],
                    share=percent(share),
                ),
            }
            for p in clv_parts.PARTS
        ],
        fit=fit_context(request, run.fit),
        chart={
            "kind": "clv",
            "labels": [t(request, LAYER_NAMES[k]) for k in pyramid.LAYERS if k in by_layer],
            "parts": [
                {
                    "name": t(request, PART_NAMES[p]),
                    "values": [
                        float(average(by_layer[k][1][p], by_layer[k][0], currency) or 0)
                        for k in pyramid.LAYERS
                        if k in by_layer
                    ],
                }
                for p in clv_parts.PARTS
            ],
            "text": {"y": t(request, "Average per member (%(currency)s)", currency=currency)},
        },
    )
    return context


@router.get("/value/clv")
def clv_page(request: Request, user: Reader, db: Db, settings: AppSettings) -> Response:
    params = dict(request.query_params)
    view = choose_runs(request, db, params)
    show = params.get("show", "") or "sum"
    if show not in SHOWS:
        view.problems["show"] = t(request, "Show sums or averages; sums are shown.")
        show = "sum"
    elif show != "sum":
        view.query["show"] = show
    return render(
        request,
        "analytics/value_clv.html",
        clv_context(request, db, settings, user, view, show),
        status_code=422 if view.problems else 200,
    )


# --- Loyalty types -----------------------------------------------------------------------------


def threshold_words(request: Request, thresholds: Mapping[str, Any]) -> dict[str, str]:
    """Each type's rule in words, with the run's thresholds."""
    th = {**_default_thresholds(), **thresholds}
    return {
        loyalty_types.SUPER_VALUE: tn(
            request,
            "At least %(repeat)s repeat purchases, at least %(share)s of purchases at full price,"
            " and at least %(num)s referred friend who qualified.",
            "At least %(repeat)s repeat purchases, at least %(share)s of purchases at full price,"
            " and at least %(num)s referred friends who qualified.",
            int(th["super_min_referrals"]),
            repeat=th["super_min_repeat"],
            share=exact_percent(th["super_min_full_price_share"]),
        ),
        loyalty_types.INCENTIVE: t(
            request,
            "At least %(least)s purchases, at least %(share)s of them in a campaign or with a"
            " coupon, and at most %(rate)s purchases per 30 days outside campaigns.",
            least=th["min_purchases"],
            share=exact_percent(th["incentive_min_campaign_share"]),
            rate=plain_number(th["incentive_max_outside_rate"]),
        ),
        loyalty_types.PRICE: t(
            request,
            "At least %(least)s purchases, at least %(share)s of them discounted.",
            least=th["min_purchases"],
            share=exact_percent(th["price_min_discounted_share"]),
        ),
        loyalty_types.INERTIA: t(
            request,
            "At least %(repeat)s repeat purchases with at most %(engagement)s engagement actions"
            " (portal sign-ins, reward redemptions, referrals).",
            repeat=th["inertia_min_repeat"],
            engagement=th["inertia_max_engagement"],
        ),
        loyalty_types.NONE: t(
            request,
            "None of the above: new members, occasional buyers, engaged repeaters who are"
            " neither price- nor campaign-driven.",
        ),
    }


def _default_thresholds() -> dict[str, Any]:
    defaults = loyalty_types.LoyaltyThresholds()
    return {name: getattr(defaults, name) for name in defaults.__dataclass_fields__}


def types_context(
    request: Request, db: Session, settings: Settings, user: User, view: View
) -> dict[str, Any]:
    context = _base(request, user, view, "types", settings)
    run = view.run
    if run is None:
        return context
    found = grouped(db, run.id, MemberScore.loyalty_type, ("value",))
    total = sum(n for n, _ in found.values())
    words = threshold_words(request, params_of(run)["thresholds"] or {})
    rows = []
    for kind in loyalty_types.TYPES:
        members, sums = found.get(kind, (0, {"value": Decimal(0)}))
        rows.append(
            {
                "key": kind,
                "name": t(request, TYPE_NAMES[kind]),
                "rule": words[kind],
                "members": count(members),
                "members_n": members,
                "share": percent(ratio(members, total)),
                "value": money(sums["value"], run.currency),
                "average": money(average(sums["value"], members, run.currency), run.currency),
                "href": view.href("/value/members", type=kind, compare=None),
            }
        )
    context.update(
        types=rows,
        type_totals={
            "members": count(total),
            "share": percent(Decimal(1)) if total else "—",
            "value": money(sum((s["value"] for _, s in found.values()), Decimal(0)), run.currency),
        },
        chart={
            "kind": "types",
            "labels": [r["name"] for r in rows],
            "members": [r["members_n"] for r in rows],
            "text": {"members": t(request, "Members")},
        },
        movement=movement_context(request, db, view, "type", TYPE_NAMES),
    )
    return context


@router.get("/value/types")
def types_page(request: Request, user: Reader, db: Db, settings: AppSettings) -> Response:
    return _run_page(request, db, settings, user, "value_types", types_context)


# --- Members of a layer, segment, cell or type ---------------------------------------------------


@dataclass
class Selection:
    """Which members of a run: any of layer, segment, type, R, F, M; all must hold."""

    layer: str | None = None
    segment: str | None = None
    type: str | None = None
    r: int | None = None
    f: int | None = None
    m: int | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.layer:
            found.append(MemberScore.layer == self.layer)
        if self.segment:
            found.append(MemberScore.rfm_segment == self.segment)
        if self.type:
            found.append(MemberScore.loyalty_type == self.type)
        for name in ("r", "f", "m"):
            wanted = getattr(self, name)
            if wanted is not None:
                found.append(getattr(MemberScore, name) == wanted)
        return found

    @property
    def query(self) -> dict[str, str]:
        return {
            k: str(v)
            for k, v in (
                ("layer", self.layer),
                ("segment", self.segment),
                ("type", self.type),
                ("r", self.r),
                ("f", self.f),
                ("m", self.m),
            )
            if v is not None
        }

    def words(self, request: Request) -> list[str]:
        said = []
        if self.layer:
            said.append(t(request, "Layer: %(name)s", name=t(request, LAYER_NAMES[self.layer])))
        if self.segment:
            said.append(
                t(request, "RFM segment: %(name)s", name=t(request, SEGMENT_NAMES[self.segment]))
            )
        if self.type:
            said.append(
                t(request, "Loyalty type: %(name)s", name=t(request, TYPE_NAMES[self.type]))
            )
        for name, label in (("r", "R"), ("f", "F"), ("m", "M")):
            if getattr(self, name) is not None:
                said.append(f"{label} = {getattr(self, name)}")
        return said


def parse_selection(
    request: Request, values: Mapping[str, str], problems: dict[str, str]
) -> Selection:
    chosen = Selection()
    for name, allowed, message in (
        ("layer", pyramid.LAYERS, N_("Choose a layer of the pyramid; '%(value)s' is not one.")),
        ("segment", rfm.SEGMENTS, N_("Choose an RFM segment; '%(value)s' is not one.")),
        ("type", loyalty_types.TYPES, N_("Choose a loyalty type; '%(value)s' is not one.")),
    ):
        raw = str(values.get(name, ""))
        if not raw:
            continue
        if raw in allowed:
            setattr(chosen, name, raw)
        else:
            problems[name] = t(request, message, value=_shown(raw))
    for name in ("r", "f", "m"):
        raw = str(values.get(name, "")).strip()
        if not raw:
            continue
        if raw in ("1", "2", "3", "4", "5"):
            setattr(chosen, name, int(raw))
        else:
            problems[name] = t(
                request,
                "An RFM score is a whole number from 1 to 5; '%(value)s' is not one.",
                value=_shown(raw),
            )
    return chosen


@dataclass(frozen=True)
class ScoreRow:
    number: str
    name: str
    score: MemberScore


def _members_query(run_id: int, selection: Selection) -> Select[MemberScore, str, str]:
    return (
        select(MemberScore, Member.number, Member.name)
        .join(Member, Member.id == MemberScore.member_id)
        .where(MemberScore.run_id == run_id, *selection.conditions())
    )


def count_members(db: Session, run_id: int, selection: Selection) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(MemberScore)
            .where(MemberScore.run_id == run_id, *selection.conditions())
        )
        or 0
    )


def list_members(
    db: Session, run_id: int, selection: Selection, *, limit: int, offset: int
) -> list[ScoreRow]:
    """The selection's members, highest value first (then by member id)."""
    rows = db.execute(
        _members_query(run_id, selection)
        .order_by(MemberScore.value.desc(), MemberScore.member_id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [ScoreRow(number, name, score) for score, number, name in rows]


def score_cells(request: Request, row: ScoreRow, currency: str) -> dict[str, Any]:
    s = row.score
    return {
        "number": row.number,
        "name": row.name,
        "layer": t(request, LAYER_NAMES.get(s.layer, s.layer)),
        "segment": t(request, SEGMENT_NAMES.get(s.rfm_segment, s.rfm_segment)),
        "rfm": "—" if s.r is None else f"{s.r}{s.f}{s.m}",
        "type": t(request, TYPE_NAMES.get(s.loyalty_type, s.loyalty_type)),
        "purchases": count(s.purchases),
        "last_purchase": s.last_purchase.isoformat() if s.last_purchase else "—",
        "value": money(s.value, currency),
        "predicted": money(s.predicted_value, currency),
        "clv_total": money(s.clv_total, currency),
        "p_alive": percent(s.p_alive),
    }


def _page_number(request: Request, raw: str, problems: dict[str, str]) -> int:
    raw = raw.strip()
    if not raw:
        return 1
    if _WHOLE.fullmatch(raw) and 1 <= int(raw) <= MAX_PAGE:
        return int(raw)
    problems["page"] = t(
        request, "'%(value)s' is not a page number; the first page is shown.", value=_shown(raw)
    )
    return 1


@router.get("/value/members")
def members_page(request: Request, user: Reader, db: Db, settings: AppSettings) -> Response:
    values = dict(request.query_params)
    view = choose_runs(request, db, {"run": values.get("run", "")})
    selection = parse_selection(request, values, view.problems)
    page = _page_number(request, values.get("page", ""), view.problems)
    context = _base(request, user, view, "members", settings)
    context["said"] = selection.words(request)
    context["keep"] = selection.query
    run = view.run
    if run is not None:
        total = count_members(db, run.id, selection)
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(page, pages)
        found = list_members(db, run.id, selection, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        base = {**selection.query, **({"run": str(run.id)} if "run" in view.query else {})}

        def link(path: str, **more: str) -> str:
            query = urlencode({**base, **more})
            return path + (f"?{query}" if query else "")

        context.update(
            rows=[score_cells(request, r, run.currency) for r in found],
            total=total,
            first=(page - 1) * PAGE_SIZE + 1 if total else 0,
            last=(page - 1) * PAGE_SIZE + len(found),
            page_number=page,
            pages=pages,
            previous_href=link("/value/members", page=str(page - 1)) if page > 1 else None,
            next_href=link("/value/members", page=str(page + 1)) if page < pages else None,
            csv_href=link("/value/members.csv"),
            xlsx_href=link("/value/members.xlsx"),
            too_many=total > XLSX_ROWS,
        )
    return render(
        request,
        "analytics/value_members.html",
        context,
        status_code=422 if view.problems else 200,
    )


# Exported columns: key, header, kind (text, count, money, share, number, date).
EXPORT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("number", N_("Member number"), "text"),
    ("name", N_("Name"), "text"),
    ("layer", N_("Pyramid layer"), "text"),
    ("segment", N_("RFM segment"), "text"),
    ("r", "R", "count"),
    ("f", "F", "count"),
    ("m", "M", "count"),
    ("type", N_("Loyalty type"), "text"),
    ("purchases", N_("Purchase days"), "count"),
    ("last_purchase", N_("Last purchase"), "date"),
    ("monetary", N_("Net spend ever"), "money"),
    ("net_purchases", N_("Net purchases in the period"), "money"),
    ("cost_to_serve", N_("Cost to serve"), "money"),
    ("value", N_("Value"), "money"),
    ("predicted_value", N_("Predicted value"), "money"),
    ("p_alive", N_("P(alive)"), "share"),
    ("expected_purchases", N_("Expected purchases"), "number"),
    *((part, label, "money") for part, label in PART_NAMES.items()),
    ("clv_total", N_("Lifetime value"), "money"),
)


def export_record(request: Request, row: ScoreRow) -> list[Any]:
    s = row.score
    values: dict[str, Any] = {
        "number": row.number,
        "name": row.name,
        "layer": t(request, LAYER_NAMES.get(s.layer, s.layer)),
        "segment": t(request, SEGMENT_NAMES.get(s.rfm_segment, s.rfm_segment)),
        "type": t(request, TYPE_NAMES.get(s.loyalty_type, s.loyalty_type)),
    }
    for key, _, _ in EXPORT_COLUMNS:
        if key not in values:
            values[key] = getattr(s, key)
    return [values[key] for key, _, _ in EXPORT_COLUMNS]


def _export_headers(request: Request, currency: str) -> list[str]:
    headers = []
    for _, header, kind in EXPORT_COLUMNS:
        text = t(request, header) if header not in ("R", "F", "M") else header
        if kind == "money":
            text = f"{text} ({currency})"
        headers.append(text)
    return headers


def _csv_cell(value: Any, kind: str, places: int) -> str:
    if value is None:
        return ""
    if kind == "money":
        return f"{Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)}"
    if kind == "share":
        return f"{float(value):.6f}"
    if kind == "number":
        return f"{float(value):.4f}"
    if kind == "date":
        return str(value.isoformat())
    if kind == "count":
        return str(int(value))
    return str(safe_cell(str(value)))


def export_csv(request: Request, run: ValueRun, rows: Sequence[ScoreRow]) -> bytes:
    """UTF-8 with a byte-order mark (Excel keeps the Chinese), one row per member."""
    places = minor_units(run.currency)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in _export_headers(request, run.currency)])
    for row in rows:
        writer.writerow(
            [
                _csv_cell(v, kind, places)
                for v, (_, _, kind) in zip(export_record(request, row), EXPORT_COLUMNS, strict=True)
            ]
        )
    return out.getvalue().encode("utf-8-sig")


def export_xlsx(
    request: Request,
    run: ValueRun,
    rows: Sequence[ScoreRow],
    said: Sequence[str],
    at: datetime,
) -> bytes:
    """For people: a title block, the header frozen, a filter, numbers as numbers."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    places = minor_units(run.currency)
    formats = {
        "money": "#,##0" + ("." + "0" * places if places else ""),
        "count": "#,##0",
        "share": "0.0%",
        "number": "0.00",
        "date": "yyyy-mm-dd",
        "text": "General",
    }
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = t(request, "Members")[:31]
    zone = getattr(at.tzinfo, "key", None) or str(at.tzinfo)
    lines = [
        t(request, "Customer value: members"),
        t(
            request,
            "Run %(id)s as of %(day)s (%(days)s days)",
            id=run.id,
            day=run.as_of.isoformat(),
            days=run.period_days,
        ),
        t(request, "Selection: %(what)s", what="; ".join(said) or t(request, "all members")),
        t(request, "Base currency: %(currency)s", currency=run.currency),
        t(request, "Generated at %(at)s (%(zone)s)", at=f"{at:%Y-%m-%d %H:%M}", zone=zone),
    ]
    for number, line in enumerate(lines, start=1):
        sheet.cell(number, 1, safe_cell(line))
    sheet["A1"].font = Font(bold=True, size=14)
    header_row = len(lines) + 2
    headers = _export_headers(request, run.currency)
    for index, header in enumerate(headers, start=1):
        sheet.cell(header_row, index, safe_cell(header)).font = Font(bold=True)
    widths = [len(h) for h in headers]
    for row_index, row in enumerate(rows, start=header_row + 1):
        for index, (value, (_, _, kind)) in enumerate(
            zip(export_record(request, row), EXPORT_COLUMNS, strict=True), start=1
        ):
            if value is None:
                continue
            if kind == "money":
                value = Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
            elif kind in ("share", "number"):
                value = float(value)
            elif kind == "count":
                value = int(value)
            elif kind == "text":
                value = safe_cell(str(value))
            cell = sheet.cell(row_index, index, value)
            cell.number_format = formats[kind]
            widths[index - 1] = max(widths[index - 1], len(str(value)))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(40, max(8, width + 2))
    sheet.freeze_panes = f"A{header_row + 1}"
    last = header_row + max(len(rows), 1)
    sheet.auto_filter.ref = f"A{header_row}:{get_column_letter(len(headers))}{last}"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@router.get("/value/members.{fmt}")
def members_export(
    request: Request, fmt: str, user: Reader, db: Db, settings: AppSettings
) -> Response:
    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed("value.format", "Export as .csv or .xlsx.")
    values = dict(request.query_params)
    problems: dict[str, str] = {}
    view = choose_runs(request, db, {"run": values.get("run", "")})
    problems.update(view.problems)
    selection = parse_selection(request, values, problems)
    if problems:  # a file is no place to say a choice was ignored: refuse it instead
        raise ValidationFailed(
            "value.selection", "%(problems)s", problems=" ".join(problems.values())
        )
    run = view.run
    if run is None:
        raise ValidationFailed(
            "value.no_run", "No customer value has been computed yet: compute it first."
        )
    total = count_members(db, run.id, selection)
    if fmt == "xlsx" and total > XLSX_ROWS:
        raise ValidationFailed(
            "value.too_many",
            "%(count)s members do not fit in one worksheet; export them as CSV.",
            count=count(total),
        )
    rows = list_members(db, run.id, selection, limit=max(total, 1), offset=0)
    now = to_zone(utcnow(), settings.zone)
    name = "-".join(["customer-value", f"run{run.id}", *selection.query.values()])
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
    if fmt == "csv":
        return Response(
            export_csv(request, run, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        export_xlsx(request, run, rows, selection.words(request), now),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


# --- One member ---------------------------------------------------------------------------------


@router.get("/value/members/{number}")
def member_page(
    request: Request, number: str, user: Reader, db: Db, settings: AppSettings
) -> Response:
    member = loyalty_members.by_number(db, number[:64])
    view = choose_runs(request, db, {"run": request.query_params.get("run", "")})
    context = _base(request, user, view, "member", settings)
    context["member"] = member
    run = view.run
    if run is not None:
        score = db.get(MemberScore, (run.id, member.id))
        context["score"] = score
        if score is not None:
            currency = run.currency
            context["cells"] = score_cells(
                request, ScoreRow(member.number, member.name, score), currency
            )
            context["figures"] = {
                "net_purchases": money(score.net_purchases, currency),
                "cost_to_serve": money(score.cost_to_serve, currency),
                "monetary": money(score.monetary, currency),
                "expected": fitted(score.expected_purchases, 2),
                "r": score.r,
                "f": score.f,
                "m": score.m,
            }
            share = Decimal(str(run.summary.get("full_price_share", "0")))
            context["parts"] = [
                {
                    "key": p.upper(),
                    "name": t(request, PART_NAMES[p]),
                    "sentence": t(
                        request,
                        PART_SENTENCES[p],
                        months=params_of(run)["horizon_months"],
                        share=percent(share),
                    ),
                    "value": money(getattr(score, p), currency),
                }
                for p in clv_parts.PARTS
            ]
            context["parts_total"] = money(score.clv_total, currency)
    history = db.execute(
        select(MemberScore, ValueRun.as_of, ValueRun.currency)
        .join(ValueRun, ValueRun.id == MemberScore.run_id)
        .where(MemberScore.member_id == member.id)
        .order_by(MemberScore.run_id.desc())
        .limit(HISTORY_RUNS)
    ).all()
    context["history"] = [
        {
            "run": s.run_id,
            "as_of": as_of.isoformat(),
            "href": f"/value/members/{member.number}?run={s.run_id}",
            **score_cells(request, ScoreRow(member.number, member.name, s), currency),
        }
        for s, as_of, currency in history
    ]
    return render(
        request,
        "analytics/value_member.html",
        context,
        status_code=422 if view.problems else 200,
    )
