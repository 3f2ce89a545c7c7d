"""Touchpoints: recorded in batches, linked from visitors to members, derived from what the
product knows, and read as a frame for the journeys.

**Recording** (`record_batch`, the API and the CSV import). A batch is all or nothing: every
item is held to its bounds (`core.bounds`: text by its column, a time with its offset from
1900 to a few minutes ahead of the server), names a known channel, campaign and member, and
a member or a visitor; every problem of every item is reported at once, and nothing is
written unless all pass. A touchpoint is unique by (source, external id): an item sent
again with the same content replays (the same id comes back, `replayed` set); with other
content it is refused (409 `touchpoint.id_reused`), the whole batch with it. The source
`retain` is kept for derived touchpoints.

**Links** (`link_visitor`). An anonymous visitor id that later turns out to be a member: one
member per visitor, for good; the same link again replays, another member is a 409. The
visitor's touchpoints count as the member's from then on (resolved when journeys are read,
so touches recorded before or after the link both count).

**Derived** (`derive`), source `retain`, idempotent (the external id names the row it came
from, and a row already derived is skipped):

- a coupon issued to a member from a batch that belongs to a campaign → `coupon_issued`
  (`coupon:<id>`), at the issue time, on the campaign's channel;
- a coupon (or public code) of such a batch used by a member → `coupon_used`
  (`redemption:<id>`), at the purchase's time when it was used on a purchase (so it counts
  for that purchase: a touch at a conversion's instant belongs to it), else when redeemed;
- a member's purchase that counts for a campaign and used none of its coupons, i.e. carried
  its code → `visit` when it was made in a store (a store is named, or the purchase channel
  is `in_store`), else `click` (an order through the campaign's link) (`purchase:<id>`), at
  the purchase's time, on the campaign's channel;
- a referral → `referral` (`referral:<id>`), the referee's touch when they signed up with the
  code, on the `referral` channel (created, audited, the first time one is derived).

**Reading** (`frame`): one query for a period, the person resolved in SQL (the member, else
the member the visitor is linked to); visitors never linked keep their own journeys, as
negative ids, so their touches are the null journeys they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    Integer,
    String,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from attribution.models import TouchKind, Touchpoint, VisitorLink
from campaigns import planning
from campaigns.models import Campaign, Channel
from core import audit, bounds
from core.audit import Actor
from core.errors import Conflict, ValidationFailed
from core.text import N_
from core.timeutil import utcnow
from loyalty import members
from loyalty.models import Batch, Coupon, Member, Purchase, Redemption, Referral
from loyalty.purchases import EARLIEST, time_problem

DERIVED_SOURCE = "retain"
REFERRAL_CHANNEL = ("referral", "Referral")  # code, name: created when first derived
MAX_BATCH = 1000  # items in one API batch
CHUNK = 1000  # rows per statement when reading or writing many
MAX_REPORTED = 20  # problems spelled out in an error's message (all are in `details`)
WRITERS = ("marketer", "admin")
KINDS = frozenset(k.value for k in TouchKind)

# Text fields and the column each is held to.
TEXT: dict[str, tuple[Any, str]] = {
    "source": (Touchpoint.source, N_("The source")),
    "external_id": (Touchpoint.external_id, N_("The external id")),
    "channel": (Channel.code, N_("The channel code")),
    "member_number": (Member.number, N_("The member number")),
    "visitor_id": (Touchpoint.visitor_id, N_("The visitor id")),
    "campaign_code": (Campaign.code, N_("The campaign code")),
}


@dataclass(frozen=True, slots=True)
class TouchInput:
    """One touchpoint as an integration (or a CSV row) states it."""

    source: str
    external_id: str
    channel: str  # channel code
    kind: str
    occurred_at: datetime
    member_number: str | None = None
    visitor_id: str | None = None
    campaign_code: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    source: str
    external_id: str
    id: int
    replayed: bool


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    touchpoints: list[Recorded]

    @property
    def created(self) -> int:
        return sum(1 for t in self.touchpoints if not t.replayed)

    @property
    def replayed(self) -> int:
        return sum(1 for t in self.touchpoints if t.replayed)


@dataclass(frozen=True, slots=True)
class Problem:
    index: int  # the item's position in the batch (0-based)
    code: str
    message: str


@dataclass
class Prepared:
    """A checked batch: the rows to store (None where the item has a problem), by index."""

    rows: list[dict[str, Any] | None] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _optional(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


def _normalised(item: TouchInput) -> TouchInput:
    return TouchInput(
        source=item.source.strip(),
        external_id=item.external_id.strip(),
        channel=item.channel.strip().lower(),
        kind=item.kind.strip().lower(),
        occurred_at=item.occurred_at,
        member_number=(_optional(item.member_number) or "").upper() or None,
        visitor_id=_optional(item.visitor_id),
        campaign_code=(_optional(item.campaign_code) or "").upper() or None,
    )


def _own_problem(item: TouchInput, now: datetime) -> tuple[str, str] | None:
    """The first thing wrong with the item on its own (code, message), or None."""
    for name, (column, label) in TEXT.items():
        value = getattr(item, name)
        if value is not None:
            problem = bounds.text_problem(value, bounds.length(column))
            if problem:
                return f"touchpoint.{name}", f"{label} {problem}."
    if not item.source or not item.external_id:
        return "touchpoint.id", "Give the touchpoint's source and external id."
    if item.source == DERIVED_SOURCE:
        return (
            "touchpoint.source",
            f"The source '{DERIVED_SOURCE}' is kept for touchpoints Retain derives itself.",
        )
    if not item.channel:
        return "touchpoint.channel", "Give the channel's code."
    if item.kind not in KINDS:
        return (
            "touchpoint.kind",
            f"The kind must be one of {', '.join(k.value for k in TouchKind)}.",
        )
    if item.member_number is None and item.visitor_id is None:
        return "touchpoint.person", "Give a member number or a visitor id (or both)."
    problem = time_problem(item.occurred_at, now)
    if problem:
        return "touchpoint.time", f"The time {problem}."
    return None


def _ids(session: Session, column: Any, key: Any, values: Iterable[str]) -> dict[str, int]:
    """value → id for the values that exist, in chunks (one query per CHUNK values)."""
    wanted = sorted(set(values))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start : start + CHUNK]
        found.update({k: i for k, i in session.execute(select(key, column).where(key.in_(part)))})
    return found


def prepare(
    session: Session, items: Sequence[TouchInput], *, now: datetime | None = None
) -> Prepared:
    """Check every item (alone, then against the channels, campaigns and members, and
    against the other items), resolving codes in a few queries. Nothing is written."""
    now = now or utcnow()
    items = [_normalised(i) for i in items]
    prepared = Prepared(rows=[None] * len(items))
    ok: list[int] = []
    for index, item in enumerate(items):
        problem = _own_problem(item, now)
        if problem:
            prepared.problems.append(Problem(index, *problem))
        else:
            ok.append(index)
    good = [items[i] for i in ok]
    channels = _ids(session, Channel.id, Channel.code, (i.channel for i in good))
    campaigns = _ids(
        session, Campaign.id, Campaign.code, (i.campaign_code for i in good if i.campaign_code)
    )
    members = _ids(
        session, Member.id, Member.number, (i.member_number for i in good if i.member_number)
    )
    first: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    for index in ok:
        item = items[index]
        if item.channel not in channels:
            prepared.problems.append(
                Problem(index, "touchpoint.channel", f"Unknown channel '{item.channel}'.")
            )
            continue
        if item.campaign_code and item.campaign_code not in campaigns:
            prepared.problems.append(
                Problem(
                    index, "touchpoint.campaign", f"No campaign with code {item.campaign_code}."
                )
            )
            continue
        if item.member_number and item.member_number not in members:
            prepared.problems.append(
                Problem(index, "touchpoint.member", f"No member numbered {item.member_number!r}.")
            )
            continue
        row = {
            "source": item.source,
            "external_id": item.external_id,
            "member_id": members.get(item.member_number or ""),
            "visitor_id": item.visitor_id,
            "channel_id": channels[item.channel],
            "campaign_id": campaigns.get(item.campaign_code or ""),
            "kind": item.kind,
            "occurred_at": item.occurred_at,
        }
        key = (item.source, item.external_id)
        if key in first and not _same(first[key][1], row):
            prepared.problems.append(
                Problem(
                    index,
                    "touchpoint.id_repeated",
                    f"{item.source}/{item.external_id} is also item {first[key][0]}, with "
                    "different content.",
                )
            )
            continue
        first.setdefault(key, (index, row))
        prepared.rows[index] = row
    prepared.problems.sort(key=lambda p: p.index)
    return prepared


_COMPARED = ("member_id", "visitor_id", "channel_id", "campaign_id", "kind", "occurred_at")


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in _COMPARED)


def _existing(
    session: Session, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Stored touchpoints by (source, external id), as rows, for the given keys."""
    wanted = sorted(set(keys))
    by_id: dict[str, set[str]] = {}
    for source, external_id in wanted:
        by_id.setdefault(external_id, set()).add(source)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    ids = sorted(by_id)
    columns = [Touchpoint.id, Touchpoint.source, Touchpoint.external_id] + [
        getattr(Touchpoint, c) for c in _COMPARED
    ]
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        for row in session.execute(select(*columns).where(Touchpoint.external_id.in_(part))):
            if row.source in by_id[row.external_id]:
                found[(row.source, row.external_id)] = dict(row._mapping)
    return found


_table = Touchpoint.__table__
# Rows another request stored first are skipped, not an error: they are compared below.
_INSERT = {
    name: module.insert(_table)
    .on_conflict_do_nothing(index_elements=["source", "external_id"])
    .returning(_table.c.id, _table.c.source, _table.c.external_id)
    for name, module in (("postgresql", postgresql), ("sqlite", sqlite))
}


def store(session: Session, rows: Sequence[dict[str, Any]]) -> tuple[list[Recorded], list[int]]:
    """Write the rows not stored yet; (what each row became, in order; the indexes of rows
    whose (source, external id) is stored with other content — nothing is written then).

    A row stored meanwhile by a concurrent request (the unique index settles the race, `ON
    CONFLICT DO NOTHING`) is compared like any stored row: the same content replays."""
    keys = [(r["source"], r["external_id"]) for r in rows]
    existing = _existing(session, keys)
    conflicts = _conflicts(rows, keys, existing)
    if conflicts:
        return [], conflicts
    new: dict[tuple[str, str], dict[str, Any]] = {}
    for row, key in zip(rows, keys, strict=True):
        if key not in existing:
            new.setdefault(key, row)
    created: dict[tuple[str, str], int] = {}
    if new:
        statement = _INSERT[session.get_bind().dialect.name]
        created_at = utcnow()
        values = [{**row, "created_at": created_at} for row in new.values()]
        savepoint = session.begin_nested()
        try:
            for start in range(0, len(values), CHUNK):
                result = session.connection().execute(statement, values[start : start + CHUNK])
                created.update({(r.source, r.external_id): int(r.id) for r in result})
            raced = _existing(session, [k for k in new if k not in created])
            conflicts = _conflicts(rows, keys, raced)
        except BaseException:
            savepoint.rollback()
            raise
        if conflicts:
            savepoint.rollback()
            return [], conflicts
        savepoint.commit()
        existing.update(raced)
    ids = {key: int(row["id"]) for key, row in existing.items()} | created
    out: list[Recorded] = []
    seen: set[tuple[str, str]] = set()
    for key in keys:
        # An item repeated in the batch is written once: its later copies are replays.
        out.append(Recorded(key[0], key[1], ids[key], key not in created or key in seen))
        seen.add(key)
    return out, []


def _conflicts(
    rows: Sequence[dict[str, Any]],
    keys: Sequence[tuple[str, str]],
    stored: dict[tuple[str, str], dict[str, Any]],
) -> list[int]:
    return [
        i
        for i, (row, key) in enumerate(zip(rows, keys, strict=True))
        if key in stored and not _same(stored[key], row)
    ]


def listed(problems: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The params of a batch's refusal: how many (`count`), 'where: message; …' with at most
    MAX_REPORTED spelled out (`list`), and how many more there are (`more`, 0 for none)."""
    return {
        "count": len(problems),
        "list": "; ".join(f"{where}: {message}" for where, message in problems[:MAX_REPORTED]),
        "more": max(0, len(problems) - MAX_REPORTED),
    }


def record_batch(
    session: Session,
    actor: Actor,
    items: Sequence[TouchInput],
    *,
    now: datetime | None = None,
) -> BatchOutcome:
    """Record a batch of touchpoints, all or nothing (see the module docstring)."""
    actor.require(*WRITERS, doing=N_("record touchpoints"))
    if not 1 <= len(items) <= MAX_BATCH:
        raise ValidationFailed(
            "touchpoint.batch",
            "Send from 1 to %(max_batch)s touchpoints in one batch.",
            max_batch=f"{MAX_BATCH:,}",
        )
    prepared = prepare(session, items, now=now)
    if prepared.problems:
        refused = listed(
            [(f"touchpoints[{p.index}]", p.message.rstrip(".")) for p in prepared.problems]
        )
        raise ValidationFailed(
            prepared.problems[0].code,
            N_(
                "Nothing was recorded: %(count)s refused touchpoint(s). %(list)s;"
                " and %(more)s more."
            )
            if refused["more"]
            else N_("Nothing was recorded: %(count)s refused touchpoint(s). %(list)s."),
            {
                "problems": [
                    {"index": p.index, "code": p.code, "message": p.message}
                    for p in prepared.problems
                ]
            },
            **refused,
        )
    rows = [r for r in prepared.rows if r is not None]
    recorded, conflicts = store(session, rows)
    if conflicts:
        reused = listed(
            [
                (f"touchpoints[{i}]", f"{rows[i]['source']}/{rows[i]['external_id']}")
                for i in conflicts
            ]
        )
        raise Conflict(
            "touchpoint.id_reused",
            N_(
                "Nothing was recorded: %(count)s touchpoint(s) already recorded with different "
                "content. %(list)s; and %(more)s more."
            )
            if reused["more"]
            else N_(
                "Nothing was recorded: %(count)s touchpoint(s) already recorded with different "
                "content. %(list)s."
            ),
            {
                "conflicts": [
                    {"index": i, "source": rows[i]["source"], "external_id": rows[i]["external_id"]}
                    for i in conflicts
                ]
            },
            **reused,
        )
    outcome = BatchOutcome(recorded)
    if outcome.created:
        audit.record(
            session,
            actor,
            "touchpoints.record",
            "touchpoint_batch",
            None,
            after={
                "created": outcome.created,
                "replayed": outcome.replayed,
                "sources": sorted({r["source"] for r in rows}),
            },
        )
    return outcome


# --- Visitors ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    link: VisitorLink
    member_number: str
    replayed: bool


def link_visitor(
    session: Session,
    actor: Actor,
    visitor_id: str,
    member_number: str,
    *,
    at: datetime | None = None,
) -> LinkOutcome:
    """Tie an anonymous visitor id to a member, once (see the module docstring)."""
    actor.require(*WRITERS, doing=N_("link visitors to members"))
    visitor = visitor_id.strip()
    if not visitor:
        raise ValidationFailed("visitor.id", "Give the visitor id.")
    bounds.check_text(
        visitor, "visitor.id", bounds.length(VisitorLink.visitor_id), N_("The visitor id")
    )
    member = members.by_number(session, member_number)
    at = at or utcnow()
    if time_problem(at, utcnow()):
        if at.tzinfo is None:
            raise ValidationFailed(
                "visitor.time", "The link's time needs its time zone (an offset like +08:00)."
            )
        if at < EARLIEST:
            raise ValidationFailed(
                "visitor.time",
                "The link's time is before %(day)s.",
                day=EARLIEST.date().isoformat(),
            )
        raise ValidationFailed("visitor.time", "The link's time is in the future.")
    earlier = session.get(VisitorLink, visitor)
    if earlier is None:
        link = VisitorLink(visitor_id=visitor, member_id=member.id, linked_at=at)
        try:
            with session.begin_nested():
                session.add(link)
                session.flush()
        except IntegrityError:
            earlier = session.get(VisitorLink, visitor)
            if earlier is None:
                raise
        else:
            audit.record(
                session,
                actor,
                "visitor.link",
                "visitor",
                visitor,
                after={"member": member.number, "linked_at": at.isoformat()},
            )
            return LinkOutcome(link, member.number, replayed=False)
    if earlier.member_id != member.id:
        other = session.scalar(select(Member.number).where(Member.id == earlier.member_id))
        raise Conflict(
            "visitor.linked_elsewhere",
            "Visitor %(visitor)s is already linked to member %(other)s; a visitor is one person.",
            visitor=visitor,
            other=other,
        )
    return LinkOutcome(earlier, member.number, replayed=True)


# --- Derived touchpoints -----------------------------------------------------------------------


def _referral_channel(session: Session, actor: Actor) -> int:
    code, name = REFERRAL_CHANNEL
    found = session.scalar(select(Channel.id).where(Channel.code == code))
    if found is not None:
        return found
    return planning.save_channel(session, actor, code=code, name=name).id


def _external(prefix: str, column: Any) -> Any:
    return literal(f"{prefix}:", String) + cast(column, String(24))


def _not_derived(external_id: Any) -> Any:
    stored = aliased(Touchpoint)
    return ~exists().where(stored.source == DERIVED_SOURCE, stored.external_id == external_id)


_COLUMNS = (
    "source",
    "external_id",
    "member_id",
    "channel_id",
    "campaign_id",
    "kind",
    "occurred_at",
    "created_at",
)


def derive(session: Session, actor: Actor) -> dict[str, int]:
    """Write the touchpoints the product's own records imply (module docstring), skipping
    those derived before; returns how many of each kind were added."""
    actor.require(*WRITERS, doing=N_("derive touchpoints"))
    now = literal(utcnow(), Touchpoint.occurred_at.type)
    source = literal(DERIVED_SOURCE, String)
    added: dict[str, int] = {}

    def insert_from(kind: str, query: Any) -> None:
        # Counted by RETURNING: not every driver reports an INSERT … SELECT's row count.
        statement = insert(Touchpoint).from_select(list(_COLUMNS), query)
        added[kind] = len(session.execute(statement.returning(Touchpoint.id)).all())

    issued_id = _external("coupon", Coupon.id)
    insert_from(
        TouchKind.COUPON_ISSUED,
        select(
            source,
            issued_id,
            Coupon.member_id,
            Campaign.channel_id,
            Campaign.id,
            literal(TouchKind.COUPON_ISSUED.value, String),
            Coupon.issued_at,
            now,
        )
        .join(Batch, Batch.id == Coupon.batch_id)
        .join(Campaign, Campaign.id == Batch.campaign_id)
        .where(Coupon.member_id.is_not(None), _not_derived(issued_id)),
    )
    used_id = _external("redemption", Redemption.id)
    insert_from(
        TouchKind.COUPON_USED,
        select(
            source,
            used_id,
            Redemption.member_id,
            Campaign.channel_id,
            Campaign.id,
            literal(TouchKind.COUPON_USED.value, String),
            func.coalesce(Purchase.occurred_at, Redemption.redeemed_at),
            now,
        )
        .join(Batch, Batch.id == Redemption.batch_id)
        .join(Campaign, Campaign.id == Batch.campaign_id)
        .outerjoin(Purchase, Purchase.id == Redemption.purchase_id)
        .where(Redemption.member_id.is_not(None), _not_derived(used_id)),
    )
    # A purchase that counts for a campaign by one of its coupons is the coupon's touch.
    by_coupon = (
        exists()
        .where(Redemption.purchase_id == Purchase.id)
        .where(Batch.id == Redemption.batch_id, Batch.campaign_id == Purchase.campaign_id)
    )
    sold_in = aliased(Channel)
    in_store = or_(Purchase.store.is_not(None), sold_in.code == "in_store")
    kind = case((in_store, TouchKind.VISIT.value), else_=TouchKind.CLICK.value)
    bought_id = _external("purchase", Purchase.id)
    insert_from(
        "purchase",
        select(
            source,
            bought_id,
            Purchase.member_id,
            Campaign.channel_id,
            Campaign.id,
            kind,
            Purchase.occurred_at,
            now,
        )
        .join(Campaign, Campaign.id == Purchase.campaign_id)
        .outerjoin(sold_in, sold_in.id == Purchase.channel_id)
        .where(Purchase.member_id.is_not(None), ~by_coupon, _not_derived(bought_id)),
    )
    referral_id = _external("referral", Referral.id)
    pending = session.scalar(select(func.count(Referral.id)).where(_not_derived(referral_id)))
    if pending:
        channel = _referral_channel(session, actor)
        insert_from(
            TouchKind.REFERRAL,
            select(
                source,
                referral_id,
                Referral.referee_id,
                literal(channel, Integer),
                cast(null(), Integer),
                literal(TouchKind.REFERRAL.value, String),
                Referral.created_at,
                now,
            ).where(_not_derived(referral_id)),
        )
    else:
        added[TouchKind.REFERRAL] = 0
    counts = {str(k): v for k, v in added.items()}
    if any(counts.values()):
        audit.record(session, actor, "touchpoints.derive", "touchpoint_batch", None, after=counts)
    return counts


# --- Reading ----------------------------------------------------------------------------------

FRAME_COLUMNS = ("member", "channel", "campaign", "at")


def frame(
    session: Session, *, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """The touchpoints in [start, end) as the journeys read them: `member` (int64: the
    member, else the member the visitor is linked to, else a negative id per unlinked
    visitor), `channel` (code), `campaign` (code or None), `at` (UTC), in time order (ties
    by id, so the same data gives the same frame)."""
    person = func.coalesce(Touchpoint.member_id, VisitorLink.member_id)
    query = (
        select(person, Touchpoint.visitor_id, Channel.code, Campaign.code, Touchpoint.occurred_at)
        .select_from(Touchpoint)
        .join(Channel, Channel.id == Touchpoint.channel_id)
        .outerjoin(Campaign, Campaign.id == Touchpoint.campaign_id)
        .outerjoin(VisitorLink, VisitorLink.visitor_id == Touchpoint.visitor_id)
        .order_by(Touchpoint.occurred_at, Touchpoint.id)
    )
    if start is not None:
        query = query.where(Touchpoint.occurred_at >= start)
    if end is not None:
        query = query.where(Touchpoint.occurred_at < end)
    rows = session.execute(query).all()
    # Every touchpoint has a member or a visitor (a check constraint).
    visitors = sorted({str(r[1]) for r in rows if r[0] is None})
    anonymous = {v: -(n + 1) for n, v in enumerate(visitors)}
    return pd.DataFrame(
        {
            "member": pd.Series(
                [r[0] if r[0] is not None else anonymous[str(r[1])] for r in rows], dtype="int64"
            ),
            "channel": pd.Series([r[2] for r in rows], dtype=object),
            "campaign": pd.Series([r[3] for r in rows], dtype=object),
            "at": pd.Series([r[4] for r in rows], dtype="datetime64[us, UTC]"),
        }
    )
