"""Attribution runs: the models applied to the database's touchpoints and conversions,
stored with their parameters so that a page view reads and never recomputes.

Public API (what the pages, the API, the CLI and the ROI report call):

- `RunParams`: a run's parameters, each held to its bound when made (`ValidationFailed`
  otherwise): `model` (one of `MODELS`), Markov `order` (1–3), `unit` (channel or
  campaign), `lookback_days` (90) and `acquisition_lookback_days` (30), time decay's
  `half_life_days` (7), `collapse_repeats`, `signups` (sign-ups count as conversions), and
  the period `period_from`/`period_to` (local dates in the configured zone, inclusive;
  either may be open).
- `run(session, actor, params, *, base, zone) -> StoredRun`: load, compute one model, store.
- `run_all(session, actor, params, *, base, zone) -> Comparison`: every model on the same
  statistics (loaded and counted once), each stored as its own run.
- `compare(session, params, *, base, zone) -> Comparison`: the same without storing.
- `latest_run(session, params) -> StoredRun | None`: the newest stored run with exactly
  these parameters (`params.model` included).
- `latest_comparison(session, params) -> Comparison | None`: the newest stored run of each
  model for these parameters (the models never run are absent), None when none is stored.
- `get_run(session, run_id) -> StoredRun` (404 `attribution.run_not_found`).
- `revenue_by_campaign(session, run) -> DataFrame`: a campaign-unit run's value credits as
  the ROI report's revenue frame (see there).
- `from_paths(text, params, models) -> Comparison`: an aggregated paths file
  (ChannelAttribution's format), in memory, nothing stored (the CLI's `--paths`).

What they answer: a `StoredRun` holds its (canonical) `params`, `status` ("completed", or
"empty" when no converting journey had a touch), `currency`, the totals (`total_conversions`
and `total_value`, what the credits add up to; `direct_conversions`/`direct_value`, the
conversions with no touch in their window, which nobody can be credited with;
`null_journeys`, `journeys`, `touchpoints` read), its `credits` (one `Credit` per channel or
campaign code: `key`, `label`, `conversions`, `value`, `channel_id`, `campaign_id`, Markov's
removal effects), `top_paths` (the `TOP_PATHS` most converting), and for Markov
`transitions` (from, to, count, probability) and `p_conversion`, for ordered Shapley
`by_position`; `frame()` gives the credits as a DataFrame. A `Comparison` maps each model
to its `StoredRun` (in `MODELS` order); `frame()` puts them side by side (`key`, `label`,
`<model>_conversions`, `<model>_value`), `top_paths` and `transitions` come from its runs.

A page shows `latest_comparison(...)` (no computing on a view) and offers `run_all(...)` as
its "recompute" action; the demo stores every model for `RunParams(unit="channel")` and
`RunParams(unit="campaign")` (no period, default lookbacks).

**The period.** Conversions are those made in the period. Touchpoints are read from the
period's start less the longer lookback, so a conversion early in the period sees its whole
window; conversions in that lead-in are read too, so each touch there is split off at the
conversion it really preceded (`attribution.paths`), and then the journeys that end before
the period are dropped. A journey counts when its conversion, or for a null journey its last
touch, lies in the period. Nothing after the period is read: touches near its end whose
conversion comes later are null journeys of this period (the caller chooses the end of the
data). Without a period every touchpoint and conversion counts.

**Rules are the pure core's.** The journeys (split at conversions, lookback by kind, the
collapse switch) come from `attribution.paths.journey_table`; the counts are summed with
`attribution.stats.PathStats`; the models are `heuristic`, `markov` and `shapley`; every
credit is rounded once by `attribution.credits` (largest remainder), conversions at 6
places and value at the base currency's minor unit, so each run's credits add up exactly to
its totals. Conversions are purchases (value = net base amount after refunds, as booked) and
optionally sign-ups (`attribution.conversions`); touchpoints as `attribution.touchpoints`
reads them (visitors resolved to their members).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, cast, get_args
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from attribution import conversions as conversion_records
from attribution import heuristic, markov, shapley
from attribution import touchpoints as touch_records
from attribution.credits import Attribution, at_places
from attribution.models import AttributionCredit, AttributionRun, RunModel, RunStatus
from attribution.paths import NO_CAMPAIGN, Journey, JourneyTable, Lookback, Unit, journey_table
from attribution.stats import PathCounts, PathStats, read_paths_csv
from campaigns.models import Campaign, Channel
from core import audit, bounds
from core.audit import Actor
from core.errors import NotFound, ValidationFailed
from core.money import minor_units
from core.text import N_

MODELS: tuple[str, ...] = tuple(m.value for m in RunModel)
UNITS: tuple[Unit, ...] = get_args(Unit)
DEFAULT_LOOKBACK_DAYS = 90
DEFAULT_ACQUISITION_LOOKBACK_DAYS = 30
DEFAULT_HALF_LIFE_DAYS = 7
MAX_LOOKBACK_DAYS = 730
MAX_HALF_LIFE_DAYS = 365
TOP_PATHS = 20  # paths stored with a run, most converting first
READERS = ("marketer", "finance", "admin")
_DAY = timedelta(days=1)


def _range(value: int, low: int, high: int, field: str, label: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(
            f"attribution.{field}",
            "%(label)s must be from %(low)s to %(high)s.",
            label=label,
            low=low,
            high=high,
        )


@dataclass(frozen=True, slots=True)
class RunParams:
    """What a run computes; see the module docstring. Equal parameters name one stored run."""

    model: str = RunModel.MARKOV.value
    order: int = 1
    unit: Unit = "channel"
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    acquisition_lookback_days: int = DEFAULT_ACQUISITION_LOOKBACK_DAYS
    half_life_days: int = DEFAULT_HALF_LIFE_DAYS
    collapse_repeats: bool = False
    signups: bool = False
    period_from: date | None = None
    period_to: date | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValidationFailed(
                "attribution.model",
                "The model must be one of %(models)s.",
                models=", ".join(MODELS),
            )
        _range(self.order, 1, markov.MAX_ORDER, "order", N_("The Markov order"))
        if self.unit not in UNITS:
            raise ValidationFailed("attribution.unit", "The unit must be channel or campaign.")
        _range(self.lookback_days, 1, MAX_LOOKBACK_DAYS, "lookback", N_("The lookback (days)"))
        _range(
            self.acquisition_lookback_days,
            1,
            MAX_LOOKBACK_DAYS,
            "lookback",
            N_("The acquisition lookback (days)"),
        )
        _range(self.half_life_days, 1, MAX_HALF_LIFE_DAYS, "half_life", N_("The half-life (days)"))
        for day, name, label in (
            (self.period_from, "from", N_("The start of the period")),
            (self.period_to, "to", N_("The end of the period")),
        ):
            if day is not None:
                bounds.check_day(day, name, label=label)
        if self.period_from and self.period_to and self.period_from > self.period_to:
            raise ValidationFailed(
                "attribution.period", "The period's start must not be after its end."
            )

    @property
    def markov_order(self) -> int | None:
        """The order as stored: only a Markov run has one."""
        return self.order if self.model == RunModel.MARKOV else None

    @property
    def stored_half_life(self) -> int | None:
        """The half-life as stored: only a time-decay run has one."""
        return self.half_life_days if self.model == RunModel.TIME_DECAY else None

    @property
    def lookback(self) -> Lookback:
        return Lookback(
            acquisition=timedelta(days=self.acquisition_lookback_days),
            other=timedelta(days=self.lookback_days),
        )

    def with_model(self, model: str) -> RunParams:
        return replace(self, model=model)

    def canonical(self) -> RunParams:
        """The same run with the parameters its model does not use at their defaults (the
        order but for Markov, the half-life but for time decay): as a run is stored."""
        return replace(
            self,
            order=self.order if self.model == RunModel.MARKOV else 1,
            half_life_days=(
                self.half_life_days if self.model == RunModel.TIME_DECAY else DEFAULT_HALF_LIFE_DAYS
            ),
        )

    def described(self) -> dict[str, Any]:
        """The parameters as stored and shown (the audit row, the API)."""
        return {
            "model": self.model,
            "order": self.markov_order,
            "unit": self.unit,
            "lookback_days": self.lookback_days,
            "acquisition_lookback_days": self.acquisition_lookback_days,
            "half_life_days": self.stored_half_life,
            "collapse_repeats": self.collapse_repeats,
            "signups": self.signups,
            "period_from": None if self.period_from is None else self.period_from.isoformat(),
            "period_to": None if self.period_to is None else self.period_to.isoformat(),
        }


# --- Loading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The period as instants: conversions in [start, end) count; data is read from `read_from`."""

    start: datetime | None
    end: datetime | None
    read_from: datetime | None

    @classmethod
    def of(cls, params: RunParams, zone: ZoneInfo) -> Window:
        start = end = None
        if params.period_from is not None:
            start = datetime.combine(params.period_from, time(0), zone).astimezone(UTC)
        if params.period_to is not None:
            end = datetime.combine(params.period_to + _DAY, time(0), zone).astimezone(UTC)
        lead = timedelta(days=max(params.lookback_days, params.acquisition_lookback_days))
        return cls(start, end, None if start is None else start - lead)


@dataclass(frozen=True)
class Frames:
    """A period's touchpoints and conversions as `attribution.paths` reads them."""

    touchpoints: pd.DataFrame  # member, channel, campaign, at
    conversions: pd.DataFrame  # member, at, value, kind
    window: Window


def load_frames(session: Session, params: RunParams, *, zone: ZoneInfo) -> Frames:
    """One query for the touchpoints, one for the conversions (two with sign-ups), each
    filtered by time in SQL (see the module docstring for the lead-in)."""
    window = Window.of(params, zone)
    return Frames(
        touchpoints=touch_records.frame(session, start=window.read_from, end=window.end),
        conversions=conversion_records.frame(
            session, start=window.read_from, end=window.end, include_signups=params.signups
        ),
        window=window,
    )


# --- Facts: what the models run on --------------------------------------------------------------


def _ns(at: datetime | None, default: int) -> int:
    if at is None:
        return default
    return int(pd.Timestamp(at).as_unit("ns").value)


class Facts:
    """The statistics of the journeys a run counts, and those journeys with their times
    (time decay needs them; an aggregated paths file has none)."""

    def __init__(
        self,
        stats: PathStats,
        *,
        journeys: Callable[[], list[Journey]] | None = None,
        touchpoints: int = 0,
        journey_count: int | None = None,
    ) -> None:
        self.stats = stats
        self._journeys = journeys
        self.touchpoints = touchpoints
        self.journey_count = (
            journey_count
            if journey_count is not None
            else stats.total_conversions + stats.total_nulls + stats.direct.conversions
        )

    @property
    def has_times(self) -> bool:
        return self._journeys is not None

    @cached_property
    def journeys(self) -> list[Journey]:
        if self._journeys is None:
            raise ValidationFailed(
                "attribution.time_decay_needs_times",
                "Time decay needs the touches' times; aggregated paths have none.",
            )
        return self._journeys()

    @classmethod
    def from_frames(cls, frames: Frames, params: RunParams) -> Facts:
        """Journeys by the core's rules, those of the period kept, counted into statistics."""
        table = journey_table(
            frames.touchpoints,
            frames.conversions,
            unit=params.unit,
            lookback=params.lookback,
            collapse_repeats=params.collapse_repeats,
        )
        kept = _in_window(table, frames.window)
        stats = PathStats.from_counts(_counts(table, kept))

        def journeys() -> list[Journey]:
            every = table.journeys()
            return [every[j] for j in kept]

        return cls(
            stats,
            journeys=journeys,
            touchpoints=len(frames.touchpoints),
            journey_count=len(kept),
        )

    @classmethod
    def from_paths(cls, text: str | bytes, *, collapse_repeats: bool = False) -> Facts:
        return cls(read_paths_csv(text, collapse_repeats=collapse_repeats))


def _in_window(table: JourneyTable, window: Window) -> list[int]:
    """The journeys whose conversion (a null journey: its last touch) lies in the window."""
    n = len(table)
    if window.start is None and window.end is None:
        return list(range(n))
    conversion = np.asarray(table.conversion, dtype=np.int64)
    at = np.zeros(n, dtype=np.int64)
    converted = conversion >= 0
    if converted.any():
        at[converted] = np.asarray(table.conv_ns, dtype=np.int64)[conversion[converted]]
    if (~converted).any():  # a null journey has at least one touch
        last = np.asarray(table.ends, dtype=np.int64)[~converted] - 1
        at[~converted] = np.asarray(table.touch_ns, dtype=np.int64)[last]
    start = _ns(window.start, int(np.iinfo(np.int64).min))
    end = _ns(window.end, int(np.iinfo(np.int64).max))
    return [int(j) for j in np.flatnonzero((at >= start) & (at < end))]


def _counts(
    table: JourneyTable, kept: Iterable[int]
) -> Iterable[tuple[tuple[str, ...], PathCounts]]:
    """(path, counts) of each kept journey, for `PathStats.from_counts` to sum."""
    units, names = table.touch_unit, table.units
    none = Decimal(0)
    for j in kept:
        path = tuple(names[c] for c in units[table.starts[j] : table.ends[j]])
        k = table.conversion[j]
        yield path, (PathCounts(1, table.conv_value[k], 0) if k >= 0 else PathCounts(0, none, 1))


# --- One model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One model's credits on a set of facts, and what the page shows beside them."""

    model: str
    attribution: Attribution
    removal_effects: Mapping[str, float] | None = None
    value_removal_effects: Mapping[str, float] | None = None
    p_conversion: float | None = None
    expected_value: float | None = None
    transitions: list[dict[str, Any]] | None = None
    by_position: list[dict[str, Any]] | None = None


def attribute(
    model: str, facts: Facts, params: RunParams, *, value_places: int | None = None
) -> Outcome:
    """Apply `model` to `facts` with the core's functions (no database)."""
    stats = facts.stats
    places: dict[str, Any] = {"value_places": value_places}
    if model == RunModel.FIRST:
        return Outcome(model, heuristic.first_touch(stats, **places))
    if model == RunModel.LAST:
        return Outcome(model, heuristic.last_touch(stats, **places))
    if model == RunModel.LINEAR:
        return Outcome(model, heuristic.linear(stats, **places))
    if model == RunModel.POSITION:
        return Outcome(model, heuristic.position_based(stats, **places))
    if model == RunModel.TIME_DECAY:
        half_life = timedelta(days=params.half_life_days)
        return Outcome(model, heuristic.time_decay(facts.journeys, half_life=half_life, **places))
    if model == RunModel.MARKOV:
        result = markov.markov(stats, params.order, **places)
        return Outcome(
            model,
            result.attribution,
            removal_effects=result.removal_effects,
            value_removal_effects=result.value_removal_effects,
            p_conversion=result.p_conversion,
            expected_value=result.expected_value,
            transitions=[
                {
                    "from": str(r["from"]),
                    "to": str(r["to"]),
                    "count": int(r["count"]),
                    "probability": float(r["probability"]),
                }
                for r in result.transitions.to_dict("records")
            ],
        )
    if model == RunModel.SHAPLEY:
        return Outcome(model, shapley.simplified_shapley(stats, **places))
    if model == RunModel.ORDERED_SHAPLEY:
        ordered = shapley.ordered_shapley(stats, **places)
        return Outcome(
            model,
            ordered.attribution,
            by_position=[
                {
                    "unit": str(r["unit"]),
                    "position": int(r["position"]),
                    "conversions": str(r["conversions"]),
                    "value": str(r["value"]),
                }
                for r in ordered.by_position.to_dict("records")
            ],
        )
    raise ValidationFailed(
        "attribution.model", "The model must be one of %(models)s.", models=", ".join(MODELS)
    )


# --- Results ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credit:
    """What a run credits to one channel or campaign."""

    key: str  # the channel's or campaign's code, or `paths.NO_CAMPAIGN`
    label: str  # its name (the key when it has none)
    conversions: Decimal
    value: Decimal
    channel_id: int | None = None  # the channel; a campaign's channel in campaign runs
    campaign_id: int | None = None
    removal_effect: float | None = None  # Markov only
    value_removal_effect: float | None = None


@dataclass(frozen=True)
class StoredRun:
    """A run's parameters, totals and credits. `id` is None for a result computed and not
    stored (`compare`, `from_paths`)."""

    params: RunParams
    status: str
    currency: str | None  # of every value; None for a paths file (no currency)
    touchpoints: int
    journeys: int
    total_conversions: int  # converting journeys with a touch: what the credits add up to
    total_value: Decimal
    direct_conversions: int  # conversions with no touch in their window: nobody to credit
    direct_value: Decimal
    null_journeys: int
    credits: tuple[Credit, ...]
    top_paths: tuple[dict[str, Any], ...] = ()  # path ("a > b"), conversions, value, nulls
    transitions: tuple[dict[str, Any], ...] | None = None  # Markov: from, to, count, probability
    by_position: tuple[dict[str, Any], ...] | None = None  # ordered Shapley
    p_conversion: float | None = None
    expected_value: float | None = None
    id: int | None = None
    created_at: datetime | None = None
    created_by: str | None = None

    @property
    def model(self) -> str:
        return self.params.model

    def frame(self) -> pd.DataFrame:
        """One row per key: key, label, conversions, value (Decimals), removal effects."""
        return pd.DataFrame(
            {
                "key": pd.Series([c.key for c in self.credits], dtype=object),
                "label": pd.Series([c.label for c in self.credits], dtype=object),
                "conversions": pd.Series([c.conversions for c in self.credits], dtype=object),
                "value": pd.Series([c.value for c in self.credits], dtype=object),
                "removal_effect": pd.Series(
                    [c.removal_effect for c in self.credits], dtype="Float64"
                ),
                "value_removal_effect": pd.Series(
                    [c.value_removal_effect for c in self.credits], dtype="Float64"
                ),
            }
        )


@dataclass(frozen=True)
class Comparison:
    """Several models on the same parameters (all but the model), side by side."""

    params: RunParams
    runs: Mapping[str, StoredRun] = field(default_factory=dict)  # by model, in MODELS order

    @property
    def keys(self) -> list[str]:
        return sorted({c.key for run in self.runs.values() for c in run.credits})

    @property
    def top_paths(self) -> tuple[dict[str, Any], ...]:
        first = next(iter(self.runs.values()), None)
        return first.top_paths if first else ()

    @property
    def transitions(self) -> tuple[dict[str, Any], ...] | None:
        found = self.runs.get(RunModel.MARKOV.value)
        return found.transitions if found else None

    def frame(self) -> pd.DataFrame:
        """One row per key, with `label` and, per model, `<model>_conversions` and
        `<model>_value` (Decimals; 0 where a model credited the key nothing)."""
        keys = self.keys
        labels: dict[str, str] = {}
        for run in self.runs.values():
            labels.update({c.key: c.label for c in run.credits})
        data: dict[str, pd.Series] = {
            "key": pd.Series(keys, dtype=object),
            "label": pd.Series([labels[k] for k in keys], dtype=object),
        }
        for model, run in self.runs.items():
            by_key = {c.key: c for c in run.credits}
            zero = Decimal(0)
            data[f"{model}_conversions"] = pd.Series(
                [by_key[k].conversions if k in by_key else zero for k in keys], dtype=object
            )
            data[f"{model}_value"] = pd.Series(
                [by_key[k].value if k in by_key else zero for k in keys], dtype=object
            )
        return pd.DataFrame(data)


def _top_paths(stats: PathStats) -> tuple[dict[str, Any], ...]:
    frame = stats.to_frame().head(TOP_PATHS)
    return tuple(
        {
            "path": str(r["path"]),
            "conversions": int(r["total_conversions"]),
            "value": str(r["total_conversion_value"]),
            "nulls": int(r["total_null"]),
        }
        for r in frame.to_dict("records")
    )


@dataclass(frozen=True)
class _Names:
    """Codes → (label, channel id, campaign id) for the unit's keys."""

    known: Mapping[str, tuple[str, int | None, int | None]]

    def of(self, key: str) -> tuple[str, int | None, int | None]:
        return self.known.get(key, (key, None, None))

    @classmethod
    def load(cls, session: Session | None, unit: Unit, keys: Iterable[str]) -> _Names:
        wanted = sorted(set(keys) - {NO_CAMPAIGN})
        if session is None or not wanted:
            return cls({})
        if unit == "channel":
            found = session.execute(
                select(Channel.code, Channel.name, Channel.id).where(Channel.code.in_(wanted))
            )
            return cls({code: (name, cid, None) for code, name, cid in found})
        rows = session.execute(
            select(Campaign.code, Campaign.name, Campaign.channel_id, Campaign.id).where(
                Campaign.code.in_(wanted)
            )
        )
        return cls({code: (name, channel, cid) for code, name, channel, cid in rows})


def _result(
    params: RunParams,
    facts: Facts,
    outcome: Outcome,
    names: _Names,
    currency: str | None,
) -> StoredRun:
    stats = facts.stats
    attribution = outcome.attribution
    credits = []
    for key in attribution.conversions:
        label, channel_id, campaign_id = names.of(key)
        credits.append(
            Credit(
                key=key,
                label=label,
                conversions=attribution.conversions[key],
                value=attribution.value[key],
                channel_id=channel_id,
                campaign_id=campaign_id,
                removal_effect=(outcome.removal_effects or {}).get(key),
                value_removal_effect=(outcome.value_removal_effects or {}).get(key),
            )
        )
    return StoredRun(
        params=params.canonical(),
        status=(RunStatus.COMPLETED if stats.total_conversions else RunStatus.EMPTY).value,
        currency=currency,
        touchpoints=facts.touchpoints,
        journeys=facts.journey_count,
        total_conversions=stats.total_conversions,
        total_value=attribution.total_value,
        direct_conversions=stats.direct.conversions,
        direct_value=_money(stats.direct.value, currency or ""),
        null_journeys=stats.total_nulls,
        credits=tuple(credits),
        top_paths=_top_paths(stats),
        transitions=None if outcome.transitions is None else tuple(outcome.transitions),
        by_position=None if outcome.by_position is None else tuple(outcome.by_position),
        p_conversion=outcome.p_conversion,
        expected_value=outcome.expected_value,
    )


def _models(models: Iterable[str], facts: Facts) -> list[str]:
    wanted = list(dict.fromkeys(models))
    for model in wanted:
        if model not in MODELS:
            raise ValidationFailed(
                "attribution.model",
                "The model must be one of %(models)s.",
                models=", ".join(MODELS),
            )
    # In MODELS order; time decay only where the touches' times are known.
    return [m for m in MODELS if m in wanted and (facts.has_times or m != RunModel.TIME_DECAY)]


def _computed(
    session: Session | None,
    facts: Facts,
    params: RunParams,
    models: Iterable[str],
    currency: str | None,
) -> Comparison:
    chosen = _models(models, facts)
    places = None if currency is None else minor_units(currency)
    names = _Names.load(session, params.unit, facts.stats.channels)
    runs = {
        model: _result(
            params.with_model(model),
            facts,
            attribute(model, facts, params.with_model(model), value_places=places),
            names,
            currency,
        )
        for model in chosen
    }
    return Comparison(params, runs)


def from_paths(
    text: str | bytes,
    params: RunParams,
    models: Iterable[str] = MODELS,
) -> Comparison:
    """Models over an aggregated paths file (ChannelAttribution's `path`,
    `total_conversions`, `total_conversion_value`, `total_null`), in memory. Time decay
    needs times, which such a file lacks: asked for alone it is refused, and among all
    models it is left out. Values are reported at the places the file's total has."""
    facts = Facts.from_paths(text, collapse_repeats=params.collapse_repeats)
    wanted = list(models)
    if wanted == [RunModel.TIME_DECAY.value]:
        facts.journeys  # noqa: B018 - raises the reason time decay cannot run
    return _computed(None, facts, params, wanted, None)


# --- Running and storing ------------------------------------------------------------------------


def _store(session: Session, actor: Actor, result: StoredRun) -> StoredRun:
    params = result.params
    row = AttributionRun(
        model=params.model,
        markov_order=params.markov_order,
        unit=params.unit,
        lookback_days=params.lookback_days,
        acquisition_lookback_days=params.acquisition_lookback_days,
        half_life_days=params.stored_half_life,
        collapse_repeats=params.collapse_repeats,
        signups=params.signups,
        period_from=params.period_from,
        period_to=params.period_to,
        status=result.status,
        currency=result.currency or "",
        touchpoints=result.touchpoints,
        journeys=result.journeys,
        total_conversions=result.total_conversions,
        total_value=result.total_value,
        direct_conversions=result.direct_conversions,
        direct_value=result.direct_value,
        null_journeys=result.null_journeys,
        p_conversion=result.p_conversion,
        expected_value=result.expected_value,
        top_paths=list(result.top_paths),
        transitions=None if result.transitions is None else list(result.transitions),
        by_position=None if result.by_position is None else list(result.by_position),
        created_by_id=actor.user_id,
        created_by=actor.label[: bounds.length(AttributionRun.created_by)],
    )
    session.add(row)
    session.flush()
    if result.credits:
        session.execute(
            insert(AttributionCredit),
            [
                {
                    "run_id": row.id,
                    "unit_key": c.key,
                    "channel_id": c.channel_id,
                    "campaign_id": c.campaign_id,
                    "conversions": c.conversions,
                    "value": c.value,
                    "removal_effect": c.removal_effect,
                    "value_removal_effect": c.value_removal_effect,
                }
                for c in result.credits
            ],
        )
    audit.record(
        session,
        actor,
        "attribution.run",
        "attribution_run",
        row.id,
        after=params.described()
        | {
            "status": result.status,
            "total_conversions": result.total_conversions,
            "total_value": str(result.total_value),
        },
    )
    return replace(result, id=row.id, created_at=row.created_at, created_by=row.created_by)


def _facts(session: Session, params: RunParams, zone: ZoneInfo) -> Facts:
    return Facts.from_frames(load_frames(session, params, zone=zone), params)


def compare(
    session: Session,
    params: RunParams,
    *,
    base: str,
    zone: ZoneInfo,
    models: Iterable[str] = MODELS,
) -> Comparison:
    """Every model (or those named) on the same statistics, loaded and counted once; nothing
    stored. `params.model` is ignored."""
    return _computed(session, _facts(session, params, zone), params, models, base)


def run_all(
    session: Session,
    actor: Actor,
    params: RunParams,
    *,
    base: str,
    zone: ZoneInfo,
    models: Iterable[str] = MODELS,
) -> Comparison:
    """`compare`, each model's result stored as its own run (one audit row each)."""
    actor.require(*READERS, doing=N_("run attribution models"))
    computed = compare(session, params, base=base, zone=zone, models=models)
    stored = {model: _store(session, actor, run) for model, run in computed.runs.items()}
    return Comparison(params, stored)


def run(
    session: Session, actor: Actor, params: RunParams, *, base: str, zone: ZoneInfo
) -> StoredRun:
    """Load the period's data, apply `params.model`, store the run and its credits."""
    actor.require(*READERS, doing=N_("run attribution models"))
    facts = _facts(session, params, zone)
    computed = _computed(session, facts, params, [params.model], base)
    return _store(session, actor, computed.runs[params.model])


# --- Reading stored runs --------------------------------------------------------------------------


def _matching(params: RunParams) -> list[Any]:
    def equal(column: Any, value: Any) -> Any:
        return column.is_(None) if value is None else column == value

    return [
        AttributionRun.model == params.model,
        equal(AttributionRun.markov_order, params.markov_order),
        AttributionRun.unit == params.unit,
        AttributionRun.lookback_days == params.lookback_days,
        AttributionRun.acquisition_lookback_days == params.acquisition_lookback_days,
        equal(AttributionRun.half_life_days, params.stored_half_life),
        AttributionRun.collapse_repeats == params.collapse_repeats,
        AttributionRun.signups == params.signups,
        equal(AttributionRun.period_from, params.period_from),
        equal(AttributionRun.period_to, params.period_to),
    ]


def _params(row: AttributionRun) -> RunParams:
    return RunParams(
        model=row.model,
        order=row.markov_order or 1,
        unit=cast(Unit, row.unit),
        lookback_days=row.lookback_days,
        acquisition_lookback_days=row.acquisition_lookback_days,
        half_life_days=row.half_life_days or DEFAULT_HALF_LIFE_DAYS,
        collapse_repeats=row.collapse_repeats,
        signups=row.signups,
        period_from=row.period_from,
        period_to=row.period_to,
    )


def _money(amount: Decimal, currency: str) -> Decimal:
    """A stored amount at its currency's minor unit, as it was computed (the column keeps
    four places; every amount on a run is booked at the minor unit, so nothing rounds)."""
    return at_places(amount, minor_units(currency)) if currency else amount


def _stored(session: Session, rows: Sequence[AttributionRun]) -> list[StoredRun]:
    """Stored runs with their credits (one query for all their credits), labels joined."""
    if not rows:
        return []
    by_run: dict[int, list[Credit]] = {row.id: [] for row in rows}
    credits = session.execute(
        select(AttributionCredit, Channel.name, Campaign.name)
        .outerjoin(Channel, Channel.id == AttributionCredit.channel_id)
        .outerjoin(Campaign, Campaign.id == AttributionCredit.campaign_id)
        .where(AttributionCredit.run_id.in_(list(by_run)))
        .order_by(AttributionCredit.run_id, AttributionCredit.unit_key)
    )
    units = {row.id: row.unit for row in rows}
    currencies = {row.id: row.currency for row in rows}
    for credit, channel_name, campaign_name in credits:
        name = campaign_name if units[credit.run_id] == "campaign" else channel_name
        by_run[credit.run_id].append(
            Credit(
                key=credit.unit_key,
                label=name or credit.unit_key,
                conversions=credit.conversions,
                value=_money(credit.value, currencies[credit.run_id]),
                channel_id=credit.channel_id,
                campaign_id=credit.campaign_id,
                removal_effect=credit.removal_effect,
                value_removal_effect=credit.value_removal_effect,
            )
        )
    return [
        StoredRun(
            params=_params(row),
            status=row.status,
            currency=row.currency or None,
            touchpoints=row.touchpoints,
            journeys=row.journeys,
            total_conversions=row.total_conversions,
            total_value=_money(row.total_value, row.currency),
            direct_conversions=row.direct_conversions,
            direct_value=_money(row.direct_value, row.currency),
            null_journeys=row.null_journeys,
            credits=tuple(by_run[row.id]),
            top_paths=tuple(row.top_paths or ()),
            transitions=None if row.transitions is None else tuple(row.transitions),
            by_position=None if row.by_position is None else tuple(row.by_position),
            p_conversion=row.p_conversion,
            expected_value=row.expected_value,
            id=row.id,
            created_at=row.created_at,
            created_by=row.created_by,
        )
        for row in rows
    ]


def latest_run(session: Session, params: RunParams) -> StoredRun | None:
    """The newest stored run with exactly these parameters, or None."""
    row = session.scalar(
        select(AttributionRun).where(*_matching(params)).order_by(AttributionRun.id.desc()).limit(1)
    )
    return None if row is None else _stored(session, [row])[0]


def latest_comparison(
    session: Session, params: RunParams, models: Iterable[str] = MODELS
) -> Comparison | None:
    """The newest stored run of each model for these parameters (`params.model` aside);
    None when no model has one."""
    rows = []
    for model in [m for m in MODELS if m in set(models)]:
        row = session.scalar(
            select(AttributionRun)
            .where(*_matching(params.with_model(model)))
            .order_by(AttributionRun.id.desc())
            .limit(1)
        )
        if row is not None:
            rows.append(row)
    if not rows:
        return None
    return Comparison(params, {run.model: run for run in _stored(session, rows)})


def get_run(session: Session, run_id: int) -> StoredRun:
    row = session.get(AttributionRun, run_id) if 1 <= run_id <= bounds.MAX_ID else None
    if row is None:
        raise NotFound("attribution.run_not_found", "No attribution run %(run_id)s.", run_id=run_id)
    return _stored(session, [row])[0]


def revenue_by_campaign(session: Session, run: StoredRun) -> pd.DataFrame:
    """A campaign-unit run's value credits shaped as the ROI report's revenue frame
    (`campaigns.reports`, `report_data.build(extra_revenue=...)`): `campaign_id`, `day`,
    `amount` (Decimal, booked in the run's currency, the base currency: already at its minor
    unit), `orders`, plus `conversions` (the credited conversions, fractional; the report
    ignores extra columns).

    - `day` is None: a run's credits are for its whole period, not per day. A monthly ROI
      report takes one run per month (period = that month) and sets `day` to the month.
    - `orders` is missing (`pd.NA`): credited conversions are fractions, not orders, so the
      report shows no cost per order for them rather than a rounded guess.
    - The `(no campaign)` share (touches without a campaign) has no campaign to go to and is
      left out, as are conversions without any touch (`run.direct_value`); the frame's
      amounts therefore add up to `run.total_value` less the no-campaign share.

    `session` is for symmetry with the other frame builders (the run carries its credits).
    """
    del session
    if run.params.unit != "campaign":
        raise ValidationFailed(
            "attribution.unit",
            "Revenue by campaign needs a run whose unit is the campaign, not the channel.",
        )
    credited = [c for c in run.credits if c.campaign_id is not None]
    return pd.DataFrame(
        {
            "campaign_id": pd.Series([c.campaign_id for c in credited], dtype="int64"),
            "day": pd.Series([None] * len(credited), dtype=object),
            "amount": pd.Series([c.value for c in credited], dtype=object),
            "orders": pd.Series([pd.NA] * len(credited), dtype="Int64"),
            "conversions": pd.Series([c.conversions for c in credited], dtype=object),
        }
    )
