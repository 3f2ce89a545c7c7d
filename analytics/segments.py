"""Saved segments: conditions over member fields and the latest value run's scores.

A segment is a `Criteria`, stored in its canonical JSON form (`Criteria.to_json`) and
evaluated when used, so its members are always current:

- member fields: region, city, gender, age band (on a given day, `analytics.age_bands`),
  occupation, industry, tier, status (active unless chosen otherwise), marketing consent and
  the day joined (local days, inclusive);
- the **latest value run** (the `ValueRun` with the highest id): pyramid layer, RFM segment,
  loyalty type, contributed value, predicted lifetime value (`clv_total`) and P(alive). A
  member without a score in that run (joined since) matches no score condition. With no run
  stored, a score condition is refused with what to do (`segment.no_value_run`).

Conditions on different fields all hold together (AND); the values chosen for one field are
alternatives (OR). `member_ids` is one set-based SELECT of member ids, usable as a subquery
(`loyalty.coupons.issue_to_members(members_in=…)` issues a batch to a segment that way).

A campaign's target is a saved segment (`set_campaign_target`), with the audience counted
when it was set. A segment targeted by a campaign cannot be deleted.

**A holdout.** The target can hold out a share of the segment (0 to 50 %), to measure what
the campaign adds (`attribution.lift`). The segment's members at that moment are then frozen
as the campaign's audience (`loyalty.audiences`), each treated or held out by
`attribution.holdout.assign` (a hash of campaign and member, so the same member of the same
campaign always lands in the same arm). Frozen, so the experiment's arms never change while
the segment's members do: who joins the segment later is in neither arm. Before the campaign
starts (its first day, in the configured zone, has not come and it is not marked active or
ended) the target and the share may change, and each change freezes the audience again. Once
it has started, changing the segment or the share of a campaign with a holdout, clearing its
target, or adding a holdout to a campaign without one is refused (`campaign.holdout_started`):
members who have already received the campaign cannot be held out, nor held-out members
reached after the fact. A share of 0 freezes nothing, and such a target changes freely, as
before.

Exports (`export_csv`, `export_xlsx`) hold what a marketer needs to reach the members; a
phone number or an email address is included only for a member who agreed to marketing.
A campaign's own audience export (`campaign_export_csv`) is how its messages reach people
(Retain sends none itself): with a holdout it holds the treated arm of the frozen audience
(members still active), never a held-out member; without one, the target segment now.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from analytics import age_bands, loyalty_types, pyramid, rfm
from analytics.models import CampaignTarget, MemberScore, Segment, ValueRun
from attribution import holdout
from campaigns import planning
from campaigns.models import Campaign, CampaignStatus
from core import audit, bounds
from core.audit import Actor, AuditEntry
from core.errors import Conflict, Invalid, NotFound, Problems, ValidationFailed
from core.exports import safe_cell
from core.money import minor_units, parse_amount
from core.text import N_, Phrase
from core.timeutil import utcnow
from loyalty import audiences
from loyalty.members import GENDERS as MEMBER_GENDERS
from loyalty.models import Member, MemberStatus, Tier

MAX_VALUES = 50  # values chosen for one field
UNKNOWN = "unknown"  # a gender or an age band not on record
GENDERS: tuple[str, ...] = (*MEMBER_GENDERS, UNKNOWN)
STATUSES: tuple[str, ...] = tuple(s.value for s in MemberStatus)
CONSENTS: tuple[str, ...] = ("any", "yes", "no")
P_ALIVE_PLACES = 6
PREVIEW = 20  # members a builder shows
MAX_PAGE = 500  # members one API page holds
XLSX_ROWS = 1_048_576  # a worksheet's rows
KEY_LENGTH = 100  # an API Idempotency-Key
KEY_DAYS = 1  # a key replays its segment for a day


def _no_value_run() -> ValidationFailed:
    return ValidationFailed(
        "segment.no_value_run",
        "Pyramid layer, RFM segment, loyalty type, value, lifetime value and P(alive) come from "
        "a value run, and none has been computed yet. Compute one first on the Customer value "
        "page (/value) or with `retain value run`, or leave these conditions out.",
    )


NO_RUN = _no_value_run().message
# Fields whose values come from a fixed list: (allowed, what one is called, plural).
CODED: dict[str, tuple[tuple[str, ...], Phrase, Phrase]] = {
    "genders": (GENDERS, N_("gender"), N_("genders")),
    "age_bands": (age_bands.CODES, N_("age band"), N_("age bands")),
    "statuses": (STATUSES, N_("member status"), N_("member statuses")),
    "layers": (pyramid.LAYERS, N_("pyramid layer"), N_("pyramid layers")),
    "rfm_segments": (rfm.SEGMENTS, N_("RFM segment"), N_("RFM segments")),
    "loyalty_types": (loyalty_types.TYPES, N_("loyalty type"), N_("loyalty types")),
}
# Free-text fields: (column, the label of one value, plural).
TEXTS: dict[str, tuple[Any, Phrase, Phrase]] = {
    "regions": (Member.region, N_("A region"), N_("regions")),
    "cities": (Member.city, N_("A city"), N_("cities")),
    "occupations": (Member.occupation, N_("An occupation"), N_("occupations")),
    "industries": (Member.industry, N_("An industry"), N_("industries")),
    "tiers": (Tier.code, N_("A tier"), N_("tiers")),
}
AMOUNTS: dict[str, Phrase] = {
    "value_min": N_("The lowest value"),
    "value_max": N_("The highest value"),
    "clv_min": N_("The lowest lifetime value"),
    "clv_max": N_("The highest lifetime value"),
}
SCORE_FIELDS = (
    "layers",
    "rfm_segments",
    "loyalty_types",
    "value_min",
    "value_max",
    "clv_min",
    "clv_max",
    "p_alive_min",
)


@dataclass(frozen=True, slots=True)
class Criteria:
    """The conditions of a segment. Build one with `parse` (which checks every field);
    the defaults match every active member."""

    regions: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    genders: tuple[str, ...] = ()
    age_bands: tuple[str, ...] = ()
    occupations: tuple[str, ...] = ()
    industries: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    statuses: tuple[str, ...] = (MemberStatus.ACTIVE.value,)  # empty: any status
    consent: str = "any"
    joined_from: date | None = None
    joined_to: date | None = None
    layers: tuple[str, ...] = ()
    rfm_segments: tuple[str, ...] = ()
    loyalty_types: tuple[str, ...] = ()
    value_min: Decimal | None = None
    value_max: Decimal | None = None
    clv_min: Decimal | None = None
    clv_max: Decimal | None = None
    p_alive_min: Decimal | None = None

    @property
    def uses_scores(self) -> bool:
        """Whether a condition reads the latest value run."""
        return any(getattr(self, name) not in (None, ()) for name in SCORE_FIELDS)

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (`Segment.criteria`): every field, lists without repeats
        in a fixed order, amounts as plain decimal strings, days as ISO dates."""
        found: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                found[f.name] = list(value)
            elif isinstance(value, Decimal):
                found[f.name] = _plain(value)
            elif isinstance(value, date):
                found[f.name] = value.isoformat()
            else:
                found[f.name] = value
        return found


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Criteria))


def _plain(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


def _values(raw: Any, name: str, plural: str) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise ValidationFailed(f"segment.{name}", "Give the %(plural)s as a list.", plural=plural)
    if any(not isinstance(v, str) for v in raw):
        raise ValidationFailed(f"segment.{name}", "Each of the %(plural)s is text.", plural=plural)
    return list(raw)


def _texts(raw: Any, name: str) -> tuple[str, ...]:
    column, label, plural = TEXTS[name]
    longest = bounds.length(column)
    found: list[str] = []
    for value in _values(raw, name, plural):
        bounds.check_text(value, f"segment.{name}", longest, label)
        text = value.strip().lower() if name == "tiers" else value.strip()
        if text and text not in found:
            found.append(text)
    if len(found) > MAX_VALUES:
        raise ValidationFailed(
            f"segment.{name}",
            "Choose at most %(most)s %(plural)s, not %(count)s.",
            most=MAX_VALUES,
            plural=plural,
            count=len(found),
        )
    return tuple(sorted(found))


def _codes(raw: Any, name: str) -> tuple[str, ...]:
    allowed, one, plural = CODED[name]
    chosen: set[str] = set()
    for value in _values(raw, name, plural):
        text = value.strip()
        if not text:
            continue
        if text not in allowed:
            shown = text if len(text) <= 40 else text[:39] + "…"
            shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")
            raise ValidationFailed(
                f"segment.{name}",
                "There is no %(one)s '%(value)s'; choose from %(allowed)s.",
                one=one,
                value=shown,
                allowed=", ".join(allowed),
            )
        chosen.add(text)
    return tuple(code for code in allowed if code in chosen)


def _day(raw: Any, label: Phrase) -> date | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        raise ValidationFailed("segment.date", "%(label)s is a day, without a time.", label=label)
    if isinstance(raw, str):
        try:
            raw = date.fromisoformat(raw.strip())
        except ValueError:
            raise ValidationFailed(
                "segment.date", "%(label)s must be a date like 2026-03-31.", label=label
            ) from None
    if not isinstance(raw, date):
        raise ValidationFailed(
            "segment.date", "%(label)s must be a date like 2026-03-31.", label=label
        )
    return bounds.check_day(raw, "segment.date", label)


def _amount(raw: Any, label: Phrase) -> Decimal | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise ValidationFailed(
            "segment.amount", "%(label)s must be an amount such as 1234.56.", label=label
        )
    amount = parse_amount(raw, label)
    return bounds.check_amount(amount, "segment.amount", sign="any", label=label)


def _probability(raw: Any) -> Decimal | None:
    label = N_("The lowest P(alive)")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, float):
        raw = repr(raw)
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise ValidationFailed("segment.p_alive", "%(label)s is a number from 0 to 1.", label=label)
    try:
        value = Decimal(raw.strip() if isinstance(raw, str) else raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(1):
        raise ValidationFailed(
            "segment.p_alive", "%(label)s is a number from 0 to 1, like 0.5.", label=label
        )
    if value != value.quantize(Decimal(1).scaleb(-P_ALIVE_PLACES)):
        raise ValidationFailed(
            "segment.p_alive",
            "%(label)s has at most %(places)s decimal places.",
            label=label,
            places=P_ALIVE_PLACES,
        )
    return value


def parse(values: Mapping[str, Any]) -> Criteria:
    """A `Criteria` from its JSON form, a form's fields or an API body (every key optional;
    lists of text, amounts as decimal strings or numbers, days as ISO dates). Every problem
    is named at once, under the field's name (`core.errors.Invalid`)."""
    problems = Problems()
    unknown = sorted(str(k) for k in values if k not in FIELDS)
    if unknown:
        shown = ", ".join(u[:40] for u in unknown[:5])
        problems.add(
            "criteria",
            "Unknown condition %(unknown)s; use %(fields)s.",
            unknown=shown,
            fields=", ".join(FIELDS),
        )
    found: dict[str, Any] = {}
    for name in TEXTS:
        if name in values:
            found[name] = problems.check(name, partial(_texts, values[name], name))
    for name in CODED:
        if name in values:
            found[name] = problems.check(name, partial(_codes, values[name], name))
    if "consent" in values:
        consent = values["consent"] if values["consent"] not in (None, "") else "any"
        if consent not in CONSENTS:
            problems.add("consent", "Marketing consent is any, yes or no.", "segment.consent")
        else:
            found["consent"] = consent
    for name, label in (("joined_from", N_("Joined from")), ("joined_to", N_("Joined until"))):
        found[name] = problems.check(name, partial(_day, values.get(name), label))
    for name, label in AMOUNTS.items():
        found[name] = problems.check(name, partial(_amount, values.get(name), label))
    found["p_alive_min"] = problems.check(
        "p_alive_min", partial(_probability, values.get("p_alive_min"))
    )
    start, end = found.get("joined_from"), found.get("joined_to")
    if start and end and end < start:
        problems.add("joined_to", "The last day joined is before the first.", "segment.joined")
    for low, high, what in (
        ("value_min", "value_max", N_("value")),
        ("clv_min", "clv_max", N_("lifetime value")),
    ):
        bottom, top = found.get(low), found.get(high)
        if bottom is not None and top is not None and top < bottom:
            problems.add(
                high, "The highest %(what)s is below the lowest.", "segment.range", what=what
            )
    problems.raise_any()
    return Criteria(**{k: v for k, v in found.items() if k in FIELDS and v is not None})


def stored(segment: Segment) -> Criteria:
    """A saved segment's criteria (stored in canonical form, so they parse as saved)."""
    return parse(segment.criteria)


# --- The query --------------------------------------------------------------------------------


def latest_run(session: Session) -> ValueRun | None:
    """The value run segments read: the one with the highest id."""
    return session.scalar(select(ValueRun).order_by(ValueRun.id.desc()).limit(1))


def _latest_run_id(session: Session) -> int | None:
    return session.scalar(select(func.max(ValueRun.id)))


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone)


def _member_conditions(
    criteria: Criteria, today: date, zone: ZoneInfo
) -> list[ColumnElement[bool]]:
    c = criteria
    found: list[ColumnElement[bool]] = []
    for name, column in (
        ("regions", Member.region),
        ("cities", Member.city),
        ("occupations", Member.occupation),
        ("industries", Member.industry),
    ):
        chosen = getattr(c, name)
        if chosen:
            found.append(column.in_(chosen))
    if c.genders:
        known = [g for g in c.genders if g != UNKNOWN]
        either = [Member.gender.in_(known)] if known else []
        if UNKNOWN in c.genders:
            either.append(Member.gender.is_(None))
        found.append(or_(*either))
    if c.age_bands:
        bands: list[ColumnElement[bool]] = []
        for code in c.age_bands:
            if code == age_bands.UNKNOWN:
                bands.append(Member.birthday.is_(None))
                continue
            after, by = age_bands.birthdays(code, today)
            parts = [Member.birthday <= by] if by is not None else []
            if after is not None:
                parts.append(Member.birthday > after)
            bands.append(and_(*parts))
        found.append(or_(*bands))
    if c.tiers:
        found.append(Member.tier_id.in_(select(Tier.id).where(Tier.code.in_(c.tiers))))
    if c.statuses:
        found.append(Member.status.in_(c.statuses))
    if c.consent != "any":
        found.append(Member.marketing_consent.is_(c.consent == "yes"))
    if c.joined_from is not None:
        found.append(Member.joined_at >= _local_midnight(c.joined_from, zone))
    if c.joined_to is not None:
        found.append(Member.joined_at < _local_midnight(c.joined_to + timedelta(days=1), zone))
    return found


def _score_conditions(criteria: Criteria) -> list[ColumnElement[bool]]:
    c = criteria
    found: list[ColumnElement[bool]] = []
    for chosen, column in (
        (c.layers, MemberScore.layer),
        (c.rfm_segments, MemberScore.rfm_segment),
        (c.loyalty_types, MemberScore.loyalty_type),
    ):
        if chosen:
            found.append(column.in_(chosen))
    if c.value_min is not None:
        found.append(MemberScore.value >= c.value_min)
    if c.value_max is not None:
        found.append(MemberScore.value <= c.value_max)
    if c.clv_min is not None:
        found.append(MemberScore.clv_total >= c.clv_min)
    if c.clv_max is not None:
        found.append(MemberScore.clv_total <= c.clv_max)
    if c.p_alive_min is not None:
        found.append(MemberScore.p_alive >= float(c.p_alive_min))
    return found


def member_ids(session: Session, criteria: Criteria, *, today: date, zone: ZoneInfo) -> Select[int]:
    """The ids of the members `criteria` select on `today` (ages; `zone` places the days
    joined), as one SELECT usable as a subquery (unordered). Score conditions read the latest
    value run; with none stored they are refused (`segment.no_value_run`)."""
    query = select(Member.id).where(*_member_conditions(criteria, today, zone))
    if criteria.uses_scores:
        run_id = _latest_run_id(session)
        if run_id is None:
            raise _no_value_run()
        query = query.join(
            MemberScore, and_(MemberScore.member_id == Member.id, MemberScore.run_id == run_id)
        ).where(*_score_conditions(criteria))
    return query


def count(session: Session, criteria: Criteria, *, today: date, zone: ZoneInfo) -> int:
    query = member_ids(session, criteria, today=today, zone=zone)
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


# --- Members as a marketer reads them ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberRow:
    """A member of a segment, with the latest value run's scores (None where the member has
    none, or no run exists) and contact details only with marketing consent."""

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
    value: Decimal | None
    clv: Decimal | None
    p_alive: float | None
    phone: str | None
    email: str | None


def rows(
    session: Session,
    criteria: Criteria,
    *,
    today: date,
    zone: ZoneInfo,
    limit: int | None = None,
    offset: int = 0,
) -> Iterator[MemberRow]:
    """The members `criteria` select, by member id (streamed: a large segment never sits in
    memory). The query is built, and a refusal raised, before the first row is asked for."""
    ids = member_ids(session, criteria, today=today, zone=zone)
    return _rows_of(session, ids, today=today, limit=limit, offset=offset)


def _rows_of(
    session: Session,
    ids: Select[int],
    *,
    today: date,
    limit: int | None = None,
    offset: int = 0,
) -> Iterator[MemberRow]:
    """The members whose ids `ids` selects, as `rows` gives them."""
    run_id = _latest_run_id(session)
    query = (
        select(
            Member.number,
            Member.name,
            Member.gender,
            Member.region,
            Member.city,
            Member.birthday,
            Member.occupation,
            Member.industry,
            Tier.code,
            Member.status,
            Member.marketing_consent,
            MemberScore.layer,
            MemberScore.rfm_segment,
            MemberScore.loyalty_type,
            MemberScore.value,
            MemberScore.clv_total,
            MemberScore.p_alive,
            Member.phone,
            Member.email,
        )
        .join(Tier, Tier.id == Member.tier_id)
        .outerjoin(
            MemberScore,
            and_(MemberScore.member_id == Member.id, MemberScore.run_id == (run_id or 0)),
        )
        .where(Member.id.in_(ids))
        .order_by(Member.id)
        .offset(offset)
        .execution_options(yield_per=5_000)
    )
    if limit is not None:
        query = query.limit(limit)
    return _stream(session, query, today)


def _stream(session: Session, query: Executable, today: date) -> Iterator[MemberRow]:
    for partition in session.execute(query).partitions():
        for r in partition:
            consent = bool(r.marketing_consent)
            yield MemberRow(
                number=r.number,
                name=r.name,
                gender=r.gender,
                region=r.region,
                city=r.city,
                age_band=age_bands.band_of(r.birthday, today),
                occupation=r.occupation,
                industry=r.industry,
                tier=r.code,
                status=r.status,
                marketing_consent=consent,
                layer=r.layer,
                rfm_segment=r.rfm_segment,
                loyalty_type=r.loyalty_type,
                value=r.value,
                clv=r.clv_total,
                p_alive=r.p_alive,
                phone=r.phone if consent else None,
                email=r.email if consent else None,
            )


def preview(
    session: Session, criteria: Criteria, *, today: date, zone: ZoneInfo, limit: int = PREVIEW
) -> list[MemberRow]:
    return list(rows(session, criteria, today=today, zone=zone, limit=limit))


def export_rows(
    session: Session, segment_id: int, *, today: date, zone: ZoneInfo
) -> Iterator[MemberRow]:
    """Every member of a saved segment now, for an export."""
    return rows(session, stored(get(session, segment_id)), today=today, zone=zone)


# --- Saved segments ---------------------------------------------------------------------------


def get(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id) if 1 <= segment_id <= bounds.MAX_ID else None
    if segment is None:
        raise NotFound("segment.not_found", "There is no saved segment %(id)s.", id=segment_id)
    return segment


def names(session: Session) -> list[tuple[int, str]]:
    """(id, name) of every saved segment, by name: for a select."""
    return [
        (i, n) for i, n in session.execute(select(Segment.id, Segment.name).order_by(Segment.name))
    ]


@dataclass(frozen=True, slots=True)
class Listed:
    """A saved segment with its audience now (None and why, when it cannot be counted) and
    the campaigns that target it."""

    segment: Segment
    criteria: Criteria
    size: int | None
    problem: str | None
    campaigns: list[tuple[int, str, str]]  # (id, code, name)


def _sized(
    session: Session, segment: Segment, today: date, zone: ZoneInfo
) -> tuple[Criteria, int | None, str | None]:
    criteria = stored(segment)
    try:
        return criteria, count(session, criteria, today=today, zone=zone), None
    except ValidationFailed as exc:
        return criteria, None, exc.message


def targets_of(session: Session, segment_id: int) -> list[tuple[int, str, str]]:
    """The campaigns targeting a segment: (id, code, name), by code."""
    found = session.execute(
        select(Campaign.id, Campaign.code, Campaign.name)
        .join(CampaignTarget, CampaignTarget.campaign_id == Campaign.id)
        .where(CampaignTarget.segment_id == segment_id)
        .order_by(Campaign.code)
    )
    return [(i, c, n) for i, c, n in found]


def with_audience(session: Session, segment: Segment, *, today: date, zone: ZoneInfo) -> Listed:
    criteria, size, problem = _sized(session, segment, today, zone)
    return Listed(segment, criteria, size, problem, targets_of(session, segment.id))


def list_segments(session: Session, *, today: date, zone: ZoneInfo) -> list[Listed]:
    """Every saved segment by name, each with its audience counted now."""
    segments = session.scalars(select(Segment).order_by(Segment.name)).all()
    targets: dict[int, list[tuple[int, str, str]]] = {}
    for segment_id, campaign_id, code, name in session.execute(
        select(CampaignTarget.segment_id, Campaign.id, Campaign.code, Campaign.name)
        .join(Campaign, Campaign.id == CampaignTarget.campaign_id)
        .order_by(Campaign.code)
    ):
        targets.setdefault(segment_id, []).append((campaign_id, code, name))
    found = []
    for segment in segments:
        criteria, size, problem = _sized(session, segment, today, zone)
        found.append(Listed(segment, criteria, size, problem, targets.get(segment.id, [])))
    return found


def snapshot(segment: Segment) -> dict[str, Any]:
    return {
        "name": segment.name,
        "description": segment.description,
        "criteria": segment.criteria,
    }


def _keyed(session: Session, key: str) -> Segment | None:
    """The segment an API call with this Idempotency-Key created (kept on the creation's
    audit row), within a day."""
    since = utcnow() - timedelta(days=KEY_DAYS)
    segment_id = session.scalar(
        select(AuditEntry.entity_id)
        .where(
            AuditEntry.action == "segment.create",
            AuditEntry.occurred_at >= since,
            AuditEntry.after["key"].as_string() == key,
        )
        .order_by(AuditEntry.id)
        .limit(1)
    )
    if segment_id is None or not segment_id.isdigit():
        return None
    return session.get(Segment, int(segment_id))


def _tiers_anyway(criteria: Criteria | Mapping[str, Any]) -> tuple[str, ...]:
    """The tiers of criteria refused for other fields, so an unknown tier is named too."""
    if isinstance(criteria, Criteria):
        return criteria.tiers
    try:
        return _texts(criteria.get("tiers"), "tiers")
    except ValidationFailed:
        return ()


@dataclass(frozen=True, slots=True)
class Saved:
    segment: Segment
    created: bool
    replayed: bool = False


def save(
    session: Session,
    actor: Actor,
    name: str,
    description: str,
    criteria: Criteria | Mapping[str, Any],
    segment_id: int | None = None,
    *,
    key: str | None = None,
) -> Saved:
    """Create a segment, or change saved segment `segment_id`. Every problem with the
    fields is named at once (`core.errors.Invalid`: name, description, each condition); a
    name another segment has is a conflict (`segment.name_taken`); score conditions need a
    value run. Given an API's Idempotency-Key, a retry answers the segment the first call
    created."""
    actor.require("admin", "marketer", doing=N_("save segments"))
    if key is not None and (not key.strip() or bounds.text_problem(key, KEY_LENGTH)):
        raise ValidationFailed(
            "segment.key",
            "An Idempotency-Key is 1 to %(most)s characters.",
            most=KEY_LENGTH,
        )
    if key is not None and segment_id is None:
        earlier = _keyed(session, key)
        if earlier is not None:
            return Saved(earlier, created=False, replayed=True)
    segment = get(session, segment_id) if segment_id is not None else None
    problems = Problems()

    def checked_name() -> str:
        if not isinstance(name, str):
            raise ValidationFailed("segment.name", "Give the segment a name.")
        text = bounds.check_text(name, "segment.name", bounds.length(Segment.name), N_("The name"))
        if not text.strip():
            raise ValidationFailed("segment.name", "Give the segment a name.")
        return " ".join(text.split())

    def checked_description() -> str:
        if not isinstance(description, str):
            raise ValidationFailed("segment.description", "The description is text.")
        return bounds.check_text(
            description,
            "segment.description",
            bounds.length(Segment.description),
            N_("The description"),
        ).strip()

    clean_name = problems.check("name", checked_name)
    clean_description = problems.check("description", checked_description)
    chosen: Criteria | None = None
    if isinstance(criteria, Criteria):
        chosen = criteria
    else:
        try:
            chosen = parse(criteria)
        except Invalid as exc:
            for field, error in exc.errors.items():
                problems.refuse(field, error)
    tiers = chosen.tiers if chosen is not None else _tiers_anyway(criteria)
    if tiers and "tiers" not in problems:
        known = set(session.scalars(select(Tier.code).where(Tier.code.in_(tiers))))
        unknown = [t for t in tiers if t not in known]
        if unknown:
            problems.add(
                "tiers",
                "There is no tier %(tiers)s.",
                "segment.tiers",
                tiers=", ".join(unknown),
            )
    problems.raise_any()
    assert clean_name is not None and clean_description is not None and chosen is not None
    if chosen.uses_scores and _latest_run_id(session) is None:
        raise _no_value_run()
    clash = session.scalar(
        select(Segment.name).where(
            func.lower(Segment.name) == clean_name.lower(), Segment.id != (segment_id or 0)
        )
    )
    if clash is not None:
        raise Conflict(
            "segment.name_taken",
            "A segment is already named '%(name)s'; choose another name.",
            name=clash,
        )
    before = snapshot(segment) if segment is not None else None
    created = segment is None
    if segment is None:
        segment = Segment(name=clean_name, actor_label=actor.label[:255])
    segment.name = clean_name
    segment.description = clean_description
    segment.criteria = chosen.to_json()
    segment.actor_label = actor.label[:255]
    try:
        with session.begin_nested():
            session.add(segment)
            session.flush()
    except IntegrityError:
        raise Conflict(
            "segment.name_taken",
            "A segment is already named '%(name)s'; choose another name.",
            name=clean_name,
        ) from None
    after = snapshot(segment)
    if created:
        audit.record(
            session,
            actor,
            "segment.create",
            "segment",
            segment.id,
            after=after | ({"key": key} if key is not None else {}),
        )
    else:
        audit.record(
            session, actor, "segment.update", "segment", segment.id, before=before, after=after
        )
    return Saved(segment, created=created)


def delete_segment(session: Session, actor: Actor, segment_id: int) -> Segment:
    """Delete a saved segment; refused while a campaign targets it."""
    actor.require("admin", "marketer", doing=N_("delete segments"))
    segment = get(session, segment_id)
    campaigns = targets_of(session, segment.id)
    if campaigns:
        listed = ", ".join(f"{code} ({name})" for _, code, name in campaigns[:5])
        raise Conflict(
            "segment.targeted",
            N_(
                "'%(name)s' is the target segment of campaign %(campaigns)s and %(more)s more; "
                "choose another target there (or none) before deleting it."
            )
            if len(campaigns) > 5
            else N_(
                "'%(name)s' is the target segment of campaign %(campaigns)s; choose another "
                "target there (or none) before deleting it."
            ),
            name=segment.name,
            campaigns=listed,
            more=len(campaigns) - 5,
        )
    before = snapshot(segment)
    session.delete(segment)
    session.flush()
    audit.record(session, actor, "segment.delete", "segment", segment_id, before=before)
    return segment


# --- Campaign targets ---------------------------------------------------------------------------

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Target:
    """The saved segment a campaign targets, with the audience counted when it was set, the
    share held out and, with a holdout, the members frozen in each arm."""

    campaign_id: int
    segment_id: int
    segment_name: str
    audience_size: int
    set_at: datetime
    holdout_share: Decimal = Decimal(0)
    treated: int = 0  # frozen in the treated arm (0 without a holdout)
    held_out: int = 0  # frozen in the holdout

    @property
    def holdout_pct(self) -> int:
        """The share held out as a whole percentage (20 for 0.2), as the form takes it."""
        return int(self.holdout_share * HUNDRED)


def campaign_target(session: Session, campaign_id: int) -> Target | None:
    found = session.execute(
        select(CampaignTarget, Segment.name)
        .join(Segment, Segment.id == CampaignTarget.segment_id)
        .where(CampaignTarget.campaign_id == campaign_id)
    ).first()
    if found is None:
        return None
    target, name = found
    return _target(session, target, name)


def _target(session: Session, target: CampaignTarget, name: str) -> Target:
    share = Decimal(target.holdout_share or 0)
    arms = audiences.arms(session, target.campaign_id) if share > 0 else audiences.Arms()
    return Target(
        target.campaign_id,
        target.segment_id,
        name,
        target.audience_size,
        target.set_at,
        share,
        arms.treated,
        arms.held_out,
    )


def has_started(campaign: Campaign, today: date) -> bool:
    """Whether the campaign has started: its first day (a local date) has come, or it is
    marked active or ended. From then on its holdout is fixed."""
    return campaign.starts_on <= today or campaign.status in (
        CampaignStatus.ACTIVE.value,
        CampaignStatus.ENDED.value,
    )


def _refuse_after_start(campaign: Campaign, asked: Literal["clear", "change", "add"]) -> None:
    raise Conflict(
        "campaign.holdout_started",
        N_(
            "Campaign %(campaign)s has started (its first day was %(day)s), so its target and "
            "holdout can no longer be cleared: members who have already received the campaign "
            "cannot be held out, nor held-out members reached after the fact, and the comparison "
            "would mean nothing. The target and its holdout are kept as they were."
        )
        if asked == "clear"
        else N_(
            "Campaign %(campaign)s has started (its first day was %(day)s), so its target "
            "segment and holdout share can no longer change: members who have already received "
            "the campaign cannot be held out, nor held-out members reached after the fact, and "
            "the comparison would mean nothing. The target and its holdout are kept as they were."
        )
        if asked == "change"
        else N_(
            "Campaign %(campaign)s has started (its first day was %(day)s), so a holdout can "
            "no longer be added: members who have already received the campaign cannot be held "
            "out, nor held-out members reached after the fact, and the comparison would mean "
            "nothing. The target and its holdout are kept as they were."
        ),
        campaign=campaign.code,
        day=campaign.starts_on.isoformat(),
    )


def set_campaign_target(
    session: Session,
    actor: Actor,
    campaign_id: int,
    segment_id: int | None,
    *,
    today: date,
    zone: ZoneInfo,
    holdout_share: Decimal = Decimal(0),
) -> Target | None:
    """Make saved segment `segment_id` the campaign's target, its audience counted now; None
    clears the target. The campaign's free-text target stays as a note.

    With `holdout_share` above 0 (at most 0.5) the segment's members now are frozen as the
    campaign's audience, each treated or held out (`attribution.holdout.assign`); see the
    module docstring for when that may change. `today` is the local day the marketer acts on,
    which decides whether the campaign has started."""
    actor.require("admin", "marketer", doing=N_("set campaign targets"))
    campaign = planning.get(session, campaign_id)
    share = holdout.check_share(holdout_share)
    if share != share.quantize(Decimal("0.01")):
        raise ValidationFailed(
            "holdout.share_places", "Hold out a whole percentage of the segment, such as 10%."
        )
    share = share.quantize(Decimal("0.01"))
    held = session.get(CampaignTarget, campaign.id)
    before: dict[str, Any] | None = (
        {
            "segment_id": held.segment_id,
            "audience_size": held.audience_size,
            "holdout_share": str(held.holdout_share),
        }
        if held is not None
        else None
    )
    experiment = held is not None and Decimal(held.holdout_share or 0) > 0
    if has_started(campaign, today):
        if held is not None and experiment:
            if segment_id == held.segment_id and share == held.holdout_share:
                return _target(session, held, get(session, held.segment_id).name)  # unchanged
            if segment_id is None:
                _refuse_after_start(campaign, "clear")
            _refuse_after_start(campaign, "change")
        if share > 0:
            _refuse_after_start(campaign, "add")
    if segment_id is None:
        if held is None:
            return None
        session.delete(held)
        if experiment:
            audiences.clear(session, campaign.id)
        session.flush()
        audit.record(
            session, actor, "campaign.target_clear", "campaign", campaign.id, before=before
        )
        return None
    segment = get(session, segment_id)
    criteria = stored(segment)
    arms = audiences.Arms()
    if share > 0:
        ids = list(session.scalars(member_ids(session, criteria, today=today, zone=zone)))
        ids.sort()
        flags = holdout.assign(campaign.id, ids, share)
        arms = audiences.freeze(session, campaign.id, ids, flags.tolist())
        size = len(ids)
    else:
        if experiment:
            audiences.clear(session, campaign.id)
        size = count(session, criteria, today=today, zone=zone)
    if held is None:
        held = CampaignTarget(campaign_id=campaign.id, segment_id=segment.id, audience_size=size)
        session.add(held)
    held.segment_id = segment.id
    held.audience_size = size
    held.holdout_share = share
    held.set_at = utcnow()
    session.flush()
    after: dict[str, Any] = {
        "segment_id": segment.id,
        "segment": segment.name,
        "audience_size": size,
        "holdout_share": str(share),
    }
    if share > 0:
        after |= {"treated": arms.treated, "held_out": arms.held_out}
    audit.record(
        session, actor, "campaign.target", "campaign", campaign.id, before=before, after=after
    )
    return Target(
        campaign.id,
        segment.id,
        segment.name,
        size,
        held.set_at,
        share,
        arms.treated,
        arms.held_out,
    )


def campaign_rows(
    session: Session, campaign_id: int, *, today: date, zone: ZoneInfo
) -> Iterator[MemberRow]:
    """The members a campaign's messages go to: with a holdout, the treated arm of its frozen
    audience (members still active; never a held-out member); without one, its target
    segment's members now. Refused when the campaign targets no saved segment."""
    campaign = planning.get(session, campaign_id)
    target = session.get(CampaignTarget, campaign.id)
    if target is None:
        raise NotFound(
            "campaign.no_target",
            (
                "Campaign %(campaign)s targets no saved segment, so it has no audience "
                "to export; set its target segment first."
            ),
            campaign=campaign.code,
        )
    if Decimal(target.holdout_share or 0) > 0:
        ids = select(Member.id).where(
            Member.status == MemberStatus.ACTIVE.value,
            Member.id.in_(audiences.treated_ids(session, campaign.id)),
        )
        return _rows_of(session, ids, today=today)
    return rows(session, stored(get(session, target.segment_id)), today=today, zone=zone)


def campaign_export_csv(
    session: Session, campaign_id: int, *, today: date, zone: ZoneInfo
) -> Iterator[str]:
    """`campaign_rows` as CSV lines, as `export_csv` writes a segment."""
    return _csv_lines(campaign_rows(session, campaign_id, today=today, zone=zone))


# --- Exports ----------------------------------------------------------------------------------

COLUMNS: tuple[tuple[str, str], ...] = (
    ("number", "Member number"),
    ("name", "Name"),
    ("gender", "Gender"),
    ("region", "Region"),
    ("city", "City"),
    ("age_band", "Age band"),
    ("occupation", "Occupation"),
    ("industry", "Industry"),
    ("tier", "Tier"),
    ("layer", "Pyramid layer"),
    ("rfm_segment", "RFM segment"),
    ("loyalty_type", "Loyalty type"),
    ("value", "Value"),
    ("clv", "Predicted lifetime value"),
    ("marketing_consent", "Marketing consent"),
    ("phone", "Phone"),
    ("email", "Email"),
)
MONEY_COLUMNS = ("value", "clv")


def _cells(row: MemberRow) -> list[Any]:
    found: list[Any] = []
    for name, _ in COLUMNS:
        value = getattr(row, name)
        if name == "marketing_consent":
            value = "yes" if value else "no"
        found.append(safe_cell(value))
    return found


def describe(criteria: Criteria) -> list[str]:
    """The conditions in words (English, for an export's title block)."""
    c = criteria
    words = []
    for name, label in (
        ("regions", "Region"),
        ("cities", "City"),
        ("genders", "Gender"),
        ("age_bands", "Age band"),
        ("occupations", "Occupation"),
        ("industries", "Industry"),
        ("tiers", "Tier"),
        ("layers", "Pyramid layer"),
        ("rfm_segments", "RFM segment"),
        ("loyalty_types", "Loyalty type"),
    ):
        chosen = getattr(c, name)
        if chosen:
            words.append(f"{label}: {', '.join(chosen)}")
    words.append("Member status: " + (", ".join(c.statuses) if c.statuses else "any"))
    if c.consent != "any":
        words.append(f"Marketing consent: {c.consent}")
    if c.joined_from or c.joined_to:
        words.append(
            f"Joined: {c.joined_from.isoformat() if c.joined_from else '…'} – "
            f"{c.joined_to.isoformat() if c.joined_to else '…'}"
        )
    for low, high, label in (
        (c.value_min, c.value_max, "Value"),
        (c.clv_min, c.clv_max, "Predicted lifetime value"),
    ):
        if low is not None or high is not None:
            words.append(
                f"{label}: {'…' if low is None else _plain(low)} – "
                f"{'…' if high is None else _plain(high)}"
            )
    if c.p_alive_min is not None:
        words.append(f"P(alive) at least {_plain(c.p_alive_min)}")
    return words


def export_csv(session: Session, segment_id: int, *, today: date, zone: ZoneInfo) -> Iterator[str]:
    """A saved segment's members as CSV lines (UTF-8 with a byte-order mark, so Excel keeps
    Chinese intact), streamed; every cell through `safe_cell`."""
    members = export_rows(session, segment_id, today=today, zone=zone)  # checks first
    return _csv_lines(members)


def _csv_lines(members: Iterator[MemberRow]) -> Iterator[str]:
    head = io.StringIO()
    csv.writer(head).writerow([label for _, label in COLUMNS])

    def lines() -> Iterator[str]:
        yield "\ufeff" + head.getvalue()
        out = io.StringIO()
        writer = csv.writer(out)
        for number, row in enumerate(members, start=1):
            writer.writerow(["" if v is None else v for v in _cells(row)])
            if number % 1_000 == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return lines()


def export_xlsx(
    session: Session,
    segment_id: int,
    *,
    today: date,
    zone: ZoneInfo,
    generated_at: datetime | None = None,
) -> bytes:
    """A saved segment's members as an XLSX: a title block (segment, conditions, value run,
    when generated), the header frozen, an autofilter, value and CLV as numbers in the run's
    currency. Refused past what one sheet holds (the CSV has no limit)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    segment = get(session, segment_id)
    criteria = stored(segment)
    size = count(session, criteria, today=today, zone=zone)
    run = latest_run(session)
    at = (generated_at or utcnow()).astimezone(zone)
    title = [
        f"Segment: {segment.name}",
        *([segment.description] if segment.description else []),
        "Conditions: " + "; ".join(describe(criteria)),
        f"Members: {size:,}",
        (
            f"Scores from the value run of {run.as_of.isoformat()} ({run.currency})"
            if run is not None
            else "No value run computed yet: no scores"
        ),
        f"Generated at {at:%Y-%m-%d %H:%M} ({zone.key})",
    ]
    header_row = len(title) + 2
    if header_row + size > XLSX_ROWS:
        raise ValidationFailed(
            "segment.too_large",
            (
                "'%(name)s' has %(size)s members, more than one XLSX sheet holds; "
                "export it as CSV instead."
            ),
            name=segment.name,
            size=f"{size:,}",
        )
    places = minor_units(run.currency) if run is not None else 2
    money_format = "#,##0" + ("." + "0" * places if places else "")
    book = Workbook(write_only=True)
    sheet = book.create_sheet(f"Segment {segment.id}")
    widths = [max(len(label), 8) + 2 for _, label in COLUMNS]
    widths[1] = 24
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(width, 40)
    sheet.freeze_panes = f"A{header_row + 1}"
    last_column = get_column_letter(len(COLUMNS))
    sheet.auto_filter.ref = f"A{header_row}:{last_column}{header_row + max(size, 1)}"
    for number, line in enumerate(title):
        cell = WriteOnlyCell(sheet, value=safe_cell(line))
        if number == 0:
            cell.font = Font(bold=True, size=14)
        sheet.append([cell])
    sheet.append([])
    header = []
    for _, label in COLUMNS:
        cell = WriteOnlyCell(sheet, value=label)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    money_at = {i for i, (name, _) in enumerate(COLUMNS) if name in MONEY_COLUMNS}
    for row in rows(session, criteria, today=today, zone=zone):
        cells = []
        for index, value in enumerate(_cells(row)):
            cell = WriteOnlyCell(sheet, value=value)
            if index in money_at and value is not None:
                cell.number_format = money_format
            cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
