"""The attribution page: every model side by side per channel or campaign, from stored runs.

A view reads the newest stored run of each model for the filters' parameters
(`attribution.runs.latest_comparison`) and never computes; when none is stored it says so and
offers "Compute now" (a POST through `web.actions.act`, which runs `runs.run_all` and comes
back to the same address). Marketers and admins compute; finance reads.

Filters (a GET form, so every view is an address to share): `from`/`to` (the period, local
dates, inclusive), `lookback` (days before a purchase; acquisitions keep their default),
`unit` (channel or campaign), `order` (Markov, 1–3) and `collapse` (consecutive repeats of a
channel counted once). A bad value is named beside its field and left out (the default
used), and the answer is a 422 with the page still drawn.

Shown: the credits of each model (conversions and revenue) as a table and a grouped bar chart
(`static/attribution.js` draws the JSON the page embeds; the CSP forbids inline scripts), the
top paths with their counts, the Markov transition matrix (order 1), each model explained in
one sentence, and the run's parameters and who computed it when.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from attribution import runs
from attribution.markov import CONVERSION_LABEL, NULL_LABEL, START_LABEL, STATE_SEPARATOR
from attribution.paths import NO_CAMPAIGN
from attribution.roi import BASIS_NAMES
from attribution.runs import MODELS, Comparison, RunParams, StoredRun
from core import bounds
from core.accounts.models import Role, User
from core.errors import Problems, ValidationFailed
from core.money import format_decimal, minor_units
from web.actions import act
from web.deps import AppSettings, Db, actor_for, require_roles
from web.forms import FormFields
from web.rendering import N_, render, say_each, t

router = APIRouter()
Reader = Annotated[User, Depends(require_roles(Role.MARKETER, Role.FINANCE, Role.ADMIN))]
Runner = Annotated[User, Depends(require_roles(Role.MARKETER, Role.ADMIN))]
RUNNERS = frozenset({Role.MARKETER.value, Role.ADMIN.value})

# The models' names and what each does, in one plain sentence (translated where shown).
MODEL_NAMES: dict[str, str] = {m: BASIS_NAMES[m] for m in MODELS}
MODEL_SENTENCES: dict[str, str] = {
    "first": N_("Gives each purchase wholly to the first touch of the journey."),
    "last": N_("Gives each purchase wholly to the last touch before it."),
    "linear": N_("Shares each purchase equally among all the touches of its journey."),
    "time-decay": N_(
        "Shares each purchase among its touches, a touch counting half as much for every"
        " %(days)s days it came before the purchase."
    ),
    "position": N_(
        "Gives two fifths of each purchase to the first touch, two fifths to the last and"
        " shares the remaining fifth among the touches between."
    ),
    "markov": N_(
        "Credits each channel or campaign by its removal effect: the share of conversions"
        " that would be lost if it vanished from every journey."
    ),
    "shapley": N_(
        "Treats the channels of a journey as a team and gives each its fair share: on"
        " average, how many more conversions teams have with it than without it."
    ),
    "ordered-shapley": N_(
        "Shapley's fair shares, also telling apart where in the journey a touch came."
    ),
}
UNIT_NAMES = {"channel": N_("Channel"), "campaign": N_("Campaign")}
FIELDS = ("from", "to", "lookback", "unit", "order", "collapse")
YES = ("1", "on", "true")
_WHOLE = re.compile(r"[0-9]{1,6}")


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "…"


@dataclass
class Filters:
    """The filters as understood: the run's parameters, each bad value's problem by field,
    and the values as typed (the form shows them again)."""

    params: RunParams
    problems: dict[str, str] = field(default_factory=dict)
    typed: dict[str, str] = field(default_factory=dict)
    refusals: Problems = field(default_factory=Problems)  # the problems as refusals

    @property
    def query(self) -> dict[str, str]:
        """The understood parameters that differ from the defaults, as query values."""
        p = self.params
        found = {
            "from": p.period_from.isoformat() if p.period_from else "",
            "to": p.period_to.isoformat() if p.period_to else "",
            "lookback": (
                str(p.lookback_days) if p.lookback_days != runs.DEFAULT_LOOKBACK_DAYS else ""
            ),
            "unit": p.unit if p.unit != "channel" else "",
            "order": str(p.order) if p.order != 1 else "",
            "collapse": "1" if p.collapse_repeats else "",
        }
        return {k: v for k, v in found.items() if v}

    def href(self, **changes: str) -> str:
        query = urlencode({**self.query, **changes})
        return "/attribution" + (f"?{query}" if query else "")


def parse(request: Request, values: Mapping[str, str]) -> Filters:
    """The filters from a query string or the compute form; a bad value is named by its field
    and the default is used instead."""
    typed = {name: str(values.get(name, "")) for name in FIELDS}
    found = Problems()

    def day(name: str) -> date | None:
        value = typed[name].strip()
        if not value:
            return None
        try:
            return bounds.check_day(date.fromisoformat(value), name, label=f"'{_shown(value)}'")
        except ValueError:
            found.add(name, "'%(value)s' is not a date like 2026-03-31.", value=_shown(value))
        except ValidationFailed as exc:
            found.refuse(name, exc)
        return None

    start, end = day("from"), day("to")
    if start and end and start > end:
        found.add("to", "The period's end is before its start.")
        end = None

    lookback = runs.DEFAULT_LOOKBACK_DAYS
    raw = typed["lookback"].strip()
    if raw:
        if _WHOLE.fullmatch(raw) and 1 <= int(raw) <= runs.MAX_LOOKBACK_DAYS:
            lookback = int(raw)
        else:
            found.add(
                "lookback",
                "The lookback must be a whole number of days from 1 to %(most)s.",
                most=runs.MAX_LOOKBACK_DAYS,
            )

    unit = typed["unit"] or "channel"
    if unit not in runs.UNITS:
        found.add("unit", "The unit must be channel or campaign.")
        unit = "channel"

    order = 1
    raw = typed["order"]
    if raw:
        if raw in ("1", "2", "3"):
            order = int(raw)
        else:
            found.add("order", "The Markov order must be 1, 2 or 3.")

    collapse = False
    raw = typed["collapse"]
    if raw:
        if raw.lower() in YES:
            collapse = True
        else:
            found.add("collapse", "Collapse repeats is a box to tick, or not.")

    params = RunParams(
        unit="campaign" if unit == "campaign" else "channel",
        order=order,
        lookback_days=lookback,
        collapse_repeats=collapse,
        period_from=start,
        period_to=end,
    )
    return Filters(params, say_each(request, found.by_field, found.errors), typed, found)


# --- What the page shows ---------------------------------------------------------------------


def _conversions(value: Decimal) -> str:
    return format_decimal(value.quantize(Decimal("0.01")), 2)


def _money(value: Decimal, currency: str) -> str:
    return format_decimal(value, minor_units(currency))


def _labels(request: Request, comparison: Comparison) -> dict[str, str]:
    """Unit key → what the page calls it."""
    found = {NO_CAMPAIGN: t(request, "(no campaign)")}
    for run in comparison.runs.values():
        found.update({c.key: c.label for c in run.credits if c.key != NO_CAMPAIGN})
    return found


def credits_table(request: Request, comparison: Comparison, currency: str) -> dict[str, Any]:
    """Rows of keys with each model's conversions and revenue (as shown and exact), the
    totals, and the chart's data."""
    models = list(comparison.runs)
    frame = comparison.frame()
    labels = _labels(request, comparison)
    rows = []
    for record in frame.to_dict("records"):
        key = str(record["key"])
        cells = []
        for model in models:
            conversions = Decimal(record[f"{model}_conversions"])
            value = Decimal(record[f"{model}_value"])
            cells.append(
                {
                    "model": model,
                    "conversions": _conversions(conversions),
                    "conversions_exact": str(conversions),
                    "value": _money(value, currency),
                    "value_exact": str(value),
                }
            )
        rows.append({"key": key, "label": labels.get(key, key), "cells": cells})
    totals = [
        {
            "model": model,
            "conversions": _conversions(Decimal(run.total_conversions)),
            "value": _money(run.total_value, currency),
        }
        for model, run in comparison.runs.items()
    ]
    chart = {
        "labels": [r["label"] for r in rows],
        "models": [
            {
                "model": model,
                "name": t(request, MODEL_NAMES[model]),
                "conversions": [float(c["conversions_exact"]) for c in _column(rows, i)],
                "value": [float(c["value_exact"]) for c in _column(rows, i)],
            }
            for i, model in enumerate(models)
        ],
        "text": {
            "conversions": t(request, "Conversions credited"),
            "value": t(request, "Revenue credited (%(currency)s)", currency=currency),
        },
    }
    return {"rows": rows, "totals": totals, "chart": chart}


def _column(rows: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    return [r["cells"][index] for r in rows]


def _state(request: Request, state: str, labels: Mapping[str, str]) -> str:
    special = {
        START_LABEL: t(request, "Start"),
        CONVERSION_LABEL: t(request, "Conversion"),
        NULL_LABEL: t(request, "No conversion (null)"),
    }
    if state in special:
        return special[state]
    return " › ".join(labels.get(part, part) for part in state.split(STATE_SEPARATOR))


def top_paths(
    request: Request, comparison: Comparison, currency: str, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    return [
        {
            "path": [labels.get(part, part) for part in str(p["path"]).split(STATE_SEPARATOR)],
            "conversions": int(p["conversions"]),
            "value": _money(Decimal(str(p["value"])), currency),
            "nulls": int(p["nulls"]),
        }
        for p in comparison.top_paths
    ]


def transition_matrix(
    request: Request, run: StoredRun, labels: Mapping[str, str]
) -> dict[str, Any] | None:
    """The order-1 chain as a table: a row per state a journey leaves (start, then each
    channel or campaign), a column per state it goes to (each channel or campaign, then the
    two absorbing states), probabilities to 3 decimals; each row's exact ones sum to 1."""
    if run.transitions is None or run.params.order != 1:
        return None
    sources: list[str] = []
    targets: list[str] = []
    cells: dict[tuple[str, str], float] = {}
    leaving: dict[str, int] = {}
    for move in run.transitions:
        a, b = str(move["from"]), str(move["to"])
        if a not in sources:
            sources.append(a)
        if b not in (CONVERSION_LABEL, NULL_LABEL) and b not in targets:
            targets.append(b)
        cells[a, b] = float(move["probability"])
        leaving[a] = leaving.get(a, 0) + int(move["count"])
    units = sorted(
        {s for s in sources + targets if s != START_LABEL},
        key=lambda s: (labels.get(s, s).casefold(), s),
    )
    order = [START_LABEL, *units] if START_LABEL in sources else units
    columns = [*units, CONVERSION_LABEL, NULL_LABEL]
    rows = []
    for source in order:
        if source not in sources:
            continue
        rows.append(
            {
                "state": _state(request, source, labels),
                "start": source == START_LABEL,
                "leaving": leaving.get(source, 0),
                "cells": [_cell(cells.get((source, target))) for target in columns],
            }
        )
    return {
        "columns": [
            {
                "state": _state(request, c, labels),
                "absorbing": c in (CONVERSION_LABEL, NULL_LABEL),
            }
            for c in columns
        ],
        "rows": rows,
    }


def _cell(probability: float | None) -> dict[str, Any]:
    """A matrix cell: to 3 decimals as shown, exact for a check; "0" where no journey went."""
    if probability is None:
        return {"shown": "0", "exact": "0.0", "zero": True}
    return {"shown": f"{probability:.3f}", "exact": repr(probability), "zero": False}


def _computed(comparison: Comparison) -> list[dict[str, Any]]:
    return [
        {
            "model": model,
            "id": run.id,
            "status": run.status,
            "created_at": run.created_at,
            "created_by": run.created_by,
        }
        for model, run in comparison.runs.items()
    ]


def context_of(
    request: Request,
    db: Db,
    settings: AppSettings,
    user: User,
    filters: Filters,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    comparison = runs.latest_comparison(db, filters.params)
    roles = {r.value for r in user.roles}
    context: dict[str, Any] = {
        "filters": filters,
        "params": filters.params,
        "typed": filters.typed,
        "errors": {**filters.problems, **(errors or {})},
        "compute_refused": errors is not None,
        "problems": filters.problems,
        "comparison": comparison,
        "can_compute": bool(roles & RUNNERS),
        "model_names": MODEL_NAMES,
        "model_sentences": MODEL_SENTENCES,
        "unit_names": UNIT_NAMES,
        "models": MODELS,
        "max_lookback": runs.MAX_LOOKBACK_DAYS,
        "default_lookback": runs.DEFAULT_LOOKBACK_DAYS,
        "acquisition_lookback": runs.DEFAULT_ACQUISITION_LOOKBACK_DAYS,
        "half_life": runs.DEFAULT_HALF_LIFE_DAYS,
        "compute_fields": {
            "from": filters.query.get("from", ""),
            "to": filters.query.get("to", ""),
            "lookback": str(filters.params.lookback_days),
            "unit": filters.params.unit,
            "order": str(filters.params.order),
            "collapse": "1" if filters.params.collapse_repeats else "",
        },
        "roi_href": "/reports/roi",
    }
    if comparison is None:
        return context
    first = next(iter(comparison.runs.values()))
    currency = first.currency or settings.base_currency
    labels = _labels(request, comparison)
    markov = comparison.runs.get("markov")
    context.update(
        currency=currency,
        first=first,
        table=credits_table(request, comparison, currency),
        paths=top_paths(request, comparison, currency, labels),
        matrix=None if markov is None else transition_matrix(request, markov, labels),
        markov=markov,
        computed=_computed(comparison),
        missing=[t(request, MODEL_NAMES[m]) for m in MODELS if m not in comparison.runs],
        direct_value=_money(first.direct_value, currency),
        total_value=_money(first.total_value, currency),
    )
    if filters.params.unit == "campaign":
        period = {
            "from": filters.query.get("from", ""),
            "to": filters.query.get("to", ""),
        }
        roi_query = urlencode({k: v for k, v in period.items() if v} | {"basis": "markov"})
        context["roi_href"] = f"/reports/roi?{roi_query}"
    return context


@router.get("/attribution")
def attribution_page(request: Request, user: Reader, db: Db, settings: AppSettings) -> Response:
    filters = parse(request, dict(request.query_params))
    context = context_of(request, db, settings, user, filters)
    return render(
        request,
        "attribution/compare.html",
        context,
        status_code=422 if filters.problems else 200,
    )


@router.post("/attribution/compute")
def compute(
    request: Request, user: Runner, db: Db, settings: AppSettings, form: FormFields
) -> Response:
    values = {name: str(form.get(name) or "") for name in FIELDS}
    filters = parse(request, values)
    problems = Problems()
    for name, error in filters.refusals.errors.items():  # each under the page's own code
        code = f"attribution.{name}"
        problems.refuse(name, ValidationFailed(code, error.template, **error.params))

    def run() -> Comparison:
        return runs.run_all(
            db,
            actor_for(request, user),
            filters.params,
            base=settings.base_currency,
            zone=settings.zone,
        )

    def again(errors: dict[str, str]) -> Response:
        return render(
            request,
            "attribution/compare.html",
            context_of(request, db, settings, user, filters, errors),
        )

    return act(
        request,
        db,
        run,
        errors=problems,
        done=lambda done: t(
            request,
            "Computed and stored %(count)s models for these parameters.",
            count=len(done.runs),
        ),
        then=lambda _: filters.href(),
        again=again,
        names=FIELDS,
    )
