"""`retain import purchases FILE`: a CSV of purchases, checked whole, then loaded.

Columns: source, external_id, occurred_at, amount [, currency, member_number, discount,
channel, store, campaign_code, coupon_codes]. `occurred_at` is ISO 8601; without an offset it
is local time in the configured zone. `coupon_codes` holds codes separated by ";".

Every row is checked first (vectorised), and if any is bad, nothing is imported and every
bad row is reported with its line number. Rows already imported (same source and external
id, same content) are skipped, so a file can be run again after an interruption. A row dated
in a month finance has closed is refused by the rules (`plans.check_open`) and reported in
`ImportReport.refused` with its line; the other rows load.

The rows are applied as if each had been posted through `purchases.record` one by one, in
time order (`occurred_at`, then line number), so a file gives the same points, lots, tiers
and referrals whatever order its rows are in, and the same as posting them live in that
order (`loyalty/history.py` says which recorded purchases count as before each one). Two
ways to load them, with one result:

- the bulk path (the default): each chunk's members are locked and read, with their
  recorded purchases (`history.Recorded`); every row is planned by `plans.purchase`, member
  by member in time order; then the plans are written in bulk (COPY on PostgreSQL):
  purchases, lots, entries, tier moves, the members' new totals, referrals' waits;
- the service path, one transaction per row: members with a coupon code on any row (a
  single-use code needs the row-by-row check, and their rows must stay in order) and
  guests' coupon rows, or every row with `--row-by-row`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from hashlib import sha256
from itertools import repeat
from json.encoder import encode_basestring_ascii as escape
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Table,
    Text,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from campaigns import periods, rates
from campaigns.models import Campaign, Channel
from core import bounds
from core.audit import Actor
from core.errors import RetainError, ValidationFailed
from core.money import CURRENCIES, parse_amount
from core.text import N_
from core.timeutil import utcnow
from loyalty import codes, coupons, earning, history, plans, purchases, referrals, tiers
from loyalty.models import (
    CampaignAudience,
    LedgerEntry,
    Lot,
    Member,
    MemberStatus,
    Program,
    Purchase,
    PurchaseState,
    Referral,
    ReferralState,
    TierChange,
    TierMetric,
)

REQUIRED = ["source", "external_id", "occurred_at", "amount"]
OPTIONAL = [
    "currency",
    "member_number",
    "discount",
    "channel",
    "store",
    "campaign_code",
    "coupon_codes",
]
MAX_ERRORS = 200
CHUNK = 50_000
members_table = cast(Table, Member.__table__)


class ImportFailed(ValidationFailed):
    default_code = "import.failed"


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    imported: int = 0
    skipped: int = 0  # already imported earlier
    points: int = 0
    by_service: int = 0
    # Rows the service refused when posting them (a coupon already used, say): each row is
    # its own transaction, as if posted one by one; fix the row and run the file again.
    refused: list[dict[str, Any]] = field(default_factory=list)


def _decimal(value: str) -> Decimal | None:
    """An amount column as the forms read one (`money.parse_amount`: "1234.56" or
    "1,234.56"), or None when empty or written any other way ("7,85", "¥88", "1e5")."""
    if not value:
        return None
    try:
        return parse_amount(value)
    except ValidationFailed:
        return None


def read(data: bytes, zone: ZoneInfo, session: Session, base: str) -> pd.DataFrame:
    """Parse and check the whole file; raise ImportFailed listing every bad row."""
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            skipinitialspace=True,
        )
    except UnicodeDecodeError:
        raise ImportFailed(
            "import.encoding", N_("The file is not UTF-8; save it as CSV UTF-8.")
        ) from None
    except pd.errors.EmptyDataError:
        raise ImportFailed("import.empty", N_("The file is empty.")) from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ImportFailed(
            "import.columns",
            N_("Line 1: missing column(s) %(missing)s. Expected: %(expected)s."),
            missing=", ".join(missing),
            expected=", ".join(REQUIRED + OPTIONAL),
        )
    for column in OPTIONAL:
        if column not in frame.columns:
            frame[column] = ""
    # Plain Python per column: pandas' string methods are slower on a million rows.
    frame = pd.DataFrame(
        {c: [v.strip() for v in frame[c].tolist()] for c in REQUIRED + OPTIONAL}, dtype=object
    )
    frame["line"] = np.arange(len(frame)) + 2
    errors: list[tuple[pd.Series, str]] = []

    def bad(mask: pd.Series, message: str) -> None:
        if mask.any():
            errors.append((mask, message))

    bad(
        (frame["source"] == "") | (frame["external_id"] == ""),
        "source and external_id are required",
    )
    # The same bounds as `purchases._check`: each text within its column, no control
    # characters; checked once per distinct value (codes repeat across a million rows).
    texts: dict[str, Any] = {name: column for name, (column, _) in purchases.TEXT.items()}
    for name, column in {**texts, "member_number": Member.number}.items():
        size = bounds.length(column)
        problems = {v: bounds.text_problem(v, size) for v in frame[name].unique()}
        for problem in set(problems.values()) - {None}:
            bad(frame[name].map(problems) == problem, f"{name} {problem}")
    bad(
        pd.Series(
            [
                any(bounds.text_problem(c, coupons.TYPED) for c in v.split(";")) if v else False
                for v in frame["coupon_codes"].tolist()
            ],
            index=frame.index,
        ),
        "coupon_codes holds a code that is not text a code can be",
    )
    bad(
        frame.duplicated(["source", "external_id"], keep="first"),
        "the same source and external_id appear earlier in the file",
    )
    frame["occurred_at"] = _to_utc(frame["occurred_at"], zone)
    bad(frame["occurred_at"].isna(), "occurred_at is not a time like 2026-03-01T14:30:00+08:00")
    earliest = pd.Timestamp(purchases.EARLIEST)
    bad(frame["occurred_at"] < earliest, f"occurred_at is before {bounds.FIRST_DAY.isoformat()}")
    now = pd.Timestamp(utcnow() + purchases.FUTURE_SKEW)
    bad(frame["occurred_at"] > now, "occurred_at is in the future")
    amounts = [_decimal(v) for v in frame["amount"].tolist()]
    frame["amount"] = pd.Series(amounts, index=frame.index, dtype=object)
    bad(
        pd.Series([v is None or v <= 0 for v in amounts], index=frame.index),
        "amount must be a number above zero, written like 1234.56 or 1,234.56",
    )
    _bounded(frame, "amount", amounts, bad)
    discounts = [_decimal(v) if v else Decimal(0) for v in frame["discount"].tolist()]
    frame["discount"] = pd.Series(discounts, index=frame.index, dtype=object)
    bad(
        pd.Series([v is None or v < 0 for v in discounts], index=frame.index),
        "discount must be a number ≥ 0, written like 1234.56 or 1,234.56",
    )
    _bounded(frame, "discount", discounts, bad)
    frame["currency"] = _by_value(frame["currency"], lambda v: v.upper() or base)
    known = {v for v in frame["currency"].unique() if v in CURRENCIES}
    bad(~frame["currency"].isin(known), "currency must be an ISO 4217 code like CNY")
    frame["member_id"] = _lookup(
        session, _by_value(frame["member_number"], str.upper), Member.number, Member.id
    )
    bad((frame["member_number"] != "") & frame["member_id"].isna(), "unknown member_number")
    frame["channel_id"] = _lookup(
        session, _by_value(frame["channel"], str.lower), Channel.code, Channel.id
    )
    bad((frame["channel"] != "") & frame["channel_id"].isna(), "unknown channel")
    frame["campaign_id"] = _lookup(
        session, _by_value(frame["campaign_code"], str.upper), Campaign.code, Campaign.id
    )
    bad((frame["campaign_code"] != "") & frame["campaign_id"].isna(), "unknown campaign_code")
    if errors:
        rows: list[dict[str, Any]] = []
        for mask, message in errors:
            rows += [{"line": int(n), "message": message} for n in frame.loc[mask, "line"]]
        rows.sort(key=lambda r: int(r["line"]))
        raise ImportFailed(
            "import.failed",
            N_("%(count)s problem(s); nothing was imported."),
            rows[:MAX_ERRORS],
            count=len(rows),
        )
    return pd.DataFrame(frame)


def _bounded(
    frame: pd.DataFrame,
    name: str,
    values: list[Decimal | None],
    bad: Callable[[pd.Series, str], None],
) -> None:
    """Rows whose amount (a number ≥ 0, checked before) is beyond what can be stored."""
    problems = [
        None if v is None or v < 0 else purchases.amount_problem(v, sign="any") for v in values
    ]
    for problem in set(problems) - {None}:
        bad(pd.Series([p == problem for p in problems], index=frame.index), f"{name} {problem}")


def _by_value(values: pd.Series, change: Callable[[str], str]) -> pd.Series:
    """`change` applied once per distinct value (codes repeat across a million rows)."""
    return values.map({v: change(v) for v in values.unique()})


def _to_utc(values: pd.Series, zone: ZoneInfo) -> pd.Series:
    """ISO times with an offset keep it; times without one are local to `zone`."""
    has_offset = values.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True)
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if has_offset.any():
        result[has_offset] = pd.to_datetime(
            values[has_offset], errors="coerce", utc=True, format="ISO8601"
        )
    if (~has_offset).any():
        local = pd.to_datetime(values[~has_offset], errors="coerce", format="ISO8601")
        result[~has_offset] = local.dt.tz_localize(
            zone, ambiguous="NaT", nonexistent="NaT"
        ).dt.tz_convert("UTC")
    return result


def _in(session: Session, column: Any, values: list[Any]) -> Any:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter instead of
    thousands (the driver spends seconds splitting long IN lists)."""
    if session.get_bind().dialect.name == "postgresql":
        kind = Text if values and isinstance(values[0], str) else BigInteger
        return column == any_(literal(values, ARRAY(kind)))
    return column.in_(values)


def _lookup(session: Session, keys: pd.Series, key_column: Any, id_column: Any) -> pd.Series:
    wanted = [k for k in keys.unique() if k]
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 10_000):
        chunk = wanted[start : start + 10_000]
        found.update(
            {
                k: i
                for k, i in session.execute(
                    select(key_column, id_column).where(_in(session, key_column, chunk))
                )
            }
        )
    return keys.map(found).astype("Int64")


def _fingerprints(frame: pd.DataFrame) -> pd.Series:
    """`purchases.fingerprint` for every row, as the same JSON text the service hashes,
    written row by row with the C string escaper (pandas' string ops are slower here);
    a test checks it matches the service's for awkward text."""

    def text(value: str) -> str:
        return escape(value) if value else "null"

    def amount(value: Decimal) -> str:
        return f'"{value.normalize():f}"'

    def coupon_codes(value: str) -> str:
        if not value:
            return "[]"
        return json.dumps(sorted({codes.normalise(c) for c in value.split(";") if c.strip()}))

    times = frame["occurred_at"].dt.tz_convert("UTC").dt.to_pydatetime()
    members = _ints(frame["member_id"])
    rows = zip(
        frame["amount"],
        _by_value(frame["campaign_code"], str.upper),
        _by_value(frame["channel"], str.lower),
        frame["coupon_codes"],
        frame["currency"],
        frame["discount"],
        frame["external_id"],
        members,
        times,
        frame["source"],
        frame["store"],
        strict=True,
    )
    hashes = [
        sha256(
            (
                f'{{"amount": {amount(amt)}, "campaign_code": {text(campaign)}, '
                f'"channel": {text(channel)}, "coupon_codes": {coupon_codes(coupon)}, '
                f'"currency": {text(currency)}, "discount": {amount(discount)}, '
                f'"external_id": {text(ext)}, "lines": [], '
                f'"member_id": {"null" if member is None else int(member)}, '
                f'"occurred_at": "{when.isoformat()}", "source": {text(source)}, '
                f'"store": {text(store)}}}'
            ).encode()
        ).hexdigest()
        for (
            amt,
            campaign,
            channel,
            coupon,
            currency,
            discount,
            ext,
            member,
            when,
            source,
            store,
        ) in rows
    ]
    return pd.Series(hashes, index=frame.index, dtype=object)


def import_purchases(
    factory: Callable[[], Session],
    actor: Actor,
    data: bytes,
    *,
    base: str,
    zone: ZoneInfo,
    row_by_row: bool = False,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> ImportReport:
    """Check the file, then load it in chunks (each chunk one transaction). With `workers`
    > 1 on PostgreSQL, chunks load in parallel: `factory` must then open independent
    sessions (an engine's sessionmaker, not sessions sharing one connection)."""
    actor.require(*purchases.ROLES, doing=N_("import purchases"))
    with factory() as session:
        frame = read(data, zone, session, base)
    report = ImportReport(rows=len(frame))
    frame["fingerprint"] = _fingerprints(frame)
    frame = _drop_known(factory, frame, report)
    frame = frame.sort_values(["occurred_at", "line"])
    service = _by_service(frame) if not row_by_row else pd.Series(True, frame.index)
    chunks = _by_member(frame[~service])
    with factory() as session:
        # SQLite has one writer; and a factory bound to one connection cannot be shared.
        parallel = session.get_bind().dialect.name == "postgresql" and workers > 1

    def load(chunk: pd.DataFrame) -> tuple[int, list[dict[str, Any]]]:
        with factory() as session, session.begin():
            return _bulk(session, actor, chunk, base, zone)

    # Chunks hold whole members, so two loading at once never wait on each other's locks:
    # one prepares rows in Python while the database indexes the other's COPY.
    with ThreadPoolExecutor(max_workers=workers if parallel else 1) as pool:
        for chunk, (points, refused) in zip(chunks, pool.map(load, chunks), strict=True):
            report.points += points
            report.imported += len(chunk) - len(refused)
            report.refused += refused
            if progress:
                progress(len(chunk))
    for row in frame[service].itertuples(index=False):
        try:
            with factory() as session, session.begin():
                outcome = purchases.record(
                    session, actor, _input(row), base_currency=base, zone=zone
                )
        except RetainError as refused:
            report.refused.append(
                {
                    "line": int(cast(int, row.line)),
                    "external_id": row.external_id,
                    "code": refused.code,
                    "message": refused.message,
                }
            )
        else:
            report.points += outcome.points
            report.imported += 1
            report.by_service += 1
        if progress:
            progress(1)
    report.refused.sort(key=lambda r: int(r["line"]))
    return report


def _by_service(frame: pd.DataFrame) -> pd.Series:
    """Rows for the service: those with coupon codes, and every row of their members."""
    coupon = frame["coupon_codes"] != ""
    members = set(frame.loc[coupon, "member_id"].dropna())
    return coupon | frame["member_id"].isin(members)


def _by_member(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """About CHUNK rows each, never splitting one member's purchases across chunks."""
    if frame.empty:
        return []
    ordered = frame.sort_values(["member_id", "occurred_at", "line"], na_position="last")
    member = ordered["member_id"].fillna(-1).to_numpy()
    chunks, start = [], 0
    while start < len(ordered):
        end = min(start + CHUNK, len(ordered))
        while end < len(ordered) and member[end] == member[end - 1] and member[end] != -1:
            end += 1
        chunks.append(ordered.iloc[start:end])
        start = end
    return chunks


def _input(row: Any) -> purchases.PurchaseInput:
    return purchases.PurchaseInput(
        source=row.source,
        external_id=row.external_id,
        occurred_at=row.occurred_at.to_pydatetime(),
        amount=row.amount,
        currency=row.currency,
        member_id=None if pd.isna(row.member_id) else int(row.member_id),
        discount=row.discount,
        channel=row.channel or None,
        store=row.store or None,
        campaign_code=row.campaign_code or None,
        coupon_codes=tuple(c.strip() for c in row.coupon_codes.split(";") if c.strip()),
    )


def _drop_known(
    factory: Callable[[], Session], frame: pd.DataFrame, report: ImportReport
) -> pd.DataFrame:
    """Skip rows imported before; a row whose id was used for other content is an error."""
    known: dict[tuple[str, str], str] = {}
    with factory() as session:
        for source, group in frame.groupby("source"):
            ids = group["external_id"].tolist()
            for start in range(0, len(ids), 10_000):
                found = session.execute(
                    select(Purchase.source, Purchase.external_id, Purchase.fingerprint).where(
                        Purchase.source == source,
                        _in(session, Purchase.external_id, ids[start : start + 10_000]),
                    )
                )
                known.update({(s, e): f for s, e, f in found})
    if not known:
        return frame
    keys = list(zip(frame["source"], frame["external_id"], strict=True))
    seen = pd.Series([k in known for k in keys], index=frame.index)
    clash = pd.Series(
        [known.get(k, f) != f for k, f in zip(keys, frame["fingerprint"], strict=True)],
        index=frame.index,
    )
    if clash.any():
        rows = [
            {
                "line": int(n),
                "message": "this source and external_id were imported before "
                "with different content",
            }
            for n in frame.loc[clash, "line"]
        ]
        raise ImportFailed(
            "import.failed",
            N_("%(count)s problem(s); nothing was imported."),
            rows[:MAX_ERRORS],
            count=len(rows),
        )
    report.skipped = int(seen.sum())
    return frame[~seen]


def _bulk(
    session: Session, actor: Actor, chunk: pd.DataFrame, base: str, zone: ZoneInfo
) -> tuple[int, list[dict[str, Any]]]:
    """Plan every row with `plans.purchase`, member by member in time order, as if posted one
    by one; then write the plans in bulk. Returns the points credited and the rows the rules
    refused (dated in a closed month: not written, as the service would refuse them)."""
    settings = purchases.load_settings(session)
    closed = set(periods.closed_months(session))
    program = settings.program
    frame = chunk.copy()
    frame["day"] = frame["occurred_at"].dt.tz_convert(zone).dt.date
    table = rates.rates_frame(session, set(frame["currency"]) - {base})
    frame["base_amount"] = rates.convert(frame[["amount", "currency", "day"]], table, base)
    # As on the service path (`purchases._resolve`): the converted amount must be storable.
    beyond = [
        int(line)
        for line, amount in zip(frame["line"], frame["base_amount"], strict=True)
        if purchases.amount_problem(Decimal(amount), sign="any")
    ]
    if beyond:
        rows = [{"line": n, "message": f"amount in {base} is too large"} for n in beyond]
        raise ImportFailed(
            "import.failed",
            N_("%(count)s problem(s) in this part of the file."),
            rows[:MAX_ERRORS],
            count=len(rows),
        )
    frame = frame.sort_values(["member_id", "occurred_at", "line"], na_position="last")
    member_ids = frame["member_id"].dropna().astype("int64").unique().tolist()
    state = _lock(session, member_ids)
    times = list(frame["occurred_at"].dt.to_pydatetime())
    recorded = _recorded(session, program, member_ids, min(times))
    members = _ints(frame["member_id"])
    planned: list[plans.PurchasePlan] = []
    balances: list[int | None] = []
    kept: list[bool] = []
    refused: list[dict[str, Any]] = []
    for mid, at, amount, channel, campaign, line, external_id in zip(
        members,
        times,
        frame["base_amount"].tolist(),
        _ints(frame["channel_id"]),
        _ints(frame["campaign_id"]),
        frame["line"].tolist(),
        frame["external_id"].tolist(),
        strict=True,
    ):
        member = None if mid is None else state[mid]
        sale = plans.Sale(at, amount, channel, campaign)
        facts = None
        if member is not None and member.status == MemberStatus.ACTIVE:
            facts = recorded[member.id].facts(program, at)
        try:
            plan = plans.purchase(
                settings, member, facts, sale, zone=zone, base_currency=base, closed=closed
            )
        except plans.MonthClosed as no:
            kept.append(False)
            refused.append(
                {
                    "line": int(line),
                    "external_id": external_id,
                    "code": no.code,
                    "message": no.message,
                }
            )
            continue
        kept.append(True)
        planned.append(plan)
        if member is None:
            balances.append(None)
            continue
        member = state[member.id] = plans.after(member, plan)
        balances.append(member.points.balance)
        if facts is not None:
            recorded[member.id].add(
                at,
                history.metric_of(program, plan.points, plans.stored(amount)),
                repeat_bonus=any(c.rule == earning.REPEAT_RULE for c in plan.credits),
                referral_started=plan.referral_completes_at is not None,
            )
    if refused:
        frame = frame[kept]
        times = [at for at, keep in zip(times, kept, strict=True) if keep]
    _write(session, actor, frame, times, planned, balances, state)
    return sum(plan.points for plan in planned), refused


def _lock(session: Session, member_ids: list[int]) -> dict[int, plans.MemberState]:
    """Lock the chunk's members in id order and read them as the planner sees them."""
    found: dict[int, plans.MemberState] = {}
    for start in range(0, len(member_ids), 10_000):
        rows = session.execute(
            select(
                Member.id,
                Member.number,
                Member.status,
                Member.tier_id,
                Member.tier_since,
                Member.balance,
                Member.pending_points,
                Member.debt,
            )
            .where(_in(session, Member.id, member_ids[start : start + 10_000]))
            .order_by(Member.id)
            .with_for_update()
        )
        for mid, number, status, tier_id, since, balance, pending, debt in rows:
            found[mid] = plans.MemberState(
                mid, number, status, tier_id, since, plans.Points(balance, pending, debt)
            )
    return found


def _recorded(
    session: Session,
    program: Program,
    member_ids: list[int],
    earliest: datetime,
) -> dict[int, history.Recorded]:
    """Each member's recorded purchases as `history.Recorded`: counts, the purchases from
    the earliest window any row needs, repeat bonuses, a referral waiting, and the campaigns
    holding the member out."""
    recorded = {mid: history.Recorded() for mid in member_ids}
    since = min(history.repeat_from(program, earliest), tiers.window_start(program, earliest))
    metric = (
        Purchase.net_base_amount
        if program.tier_metric == TierMetric.SPEND
        else Purchase.points_earned - Purchase.points_reversed
    )
    for start in range(0, len(member_ids), 10_000):
        chunk = member_ids[start : start + 10_000]
        for mid, count in session.execute(
            select(Purchase.member_id, func.count())
            .where(_in(session, Purchase.member_id, chunk))
            .group_by(Purchase.member_id)
        ):
            recorded[int(mid or 0)].count = int(count)
        for mid, at, purchase_state, value in session.execute(
            select(Purchase.member_id, Purchase.occurred_at, Purchase.state, metric).where(
                _in(session, Purchase.member_id, chunk), Purchase.occurred_at >= since
            )
        ):
            recorded[int(mid or 0)].load(
                at, purchase_state != PurchaseState.REFUNDED, Decimal(str(value))
            )
        for mid, at in session.execute(
            select(LedgerEntry.member_id, LedgerEntry.occurred_at).where(
                _in(session, LedgerEntry.member_id, chunk),
                LedgerEntry.rule == earning.REPEAT_RULE,
                LedgerEntry.occurred_at > history.repeat_from(program, earliest),
            )
        ):
            recorded[mid].bonuses.append(at)
        for mid in session.scalars(
            select(Referral.referee_id).where(
                Referral.state == ReferralState.PENDING, _in(session, Referral.referee_id, chunk)
            )
        ):
            recorded[mid].referral_pending = True
        held_out: dict[int, set[int]] = {}
        for mid, campaign_id in session.execute(
            select(CampaignAudience.member_id, CampaignAudience.campaign_id).where(
                _in(session, CampaignAudience.member_id, chunk),
                CampaignAudience.held_out.is_(True),
            )
        ):
            held_out.setdefault(mid, set()).add(campaign_id)
        for mid, campaigns in held_out.items():
            recorded[mid].held_out = frozenset(campaigns)
    for one in recorded.values():
        one.bonuses.sort()
    return recorded


def _ids(session: Session, table: str, count: int) -> list[int]:
    """Reserve `count` ids (PostgreSQL sequence; SQLite: after the current max, under the
    write lock this transaction already holds)."""
    if count == 0:
        return []
    # Table names here are our own constants, never user input.
    if session.get_bind().dialect.name == "postgresql":
        # One row holding an array: fetching 50,000 rows one by one costs a second.
        ids = session.scalar(
            text(
                f"SELECT array_agg(nextval(pg_get_serial_sequence('{table}', 'id'))) "  # noqa: S608
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        )
        return list(ids or [])
    top = session.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar() or 0  # noqa: S608
    return list(range(top + 1, top + 1 + count))


def _write(
    session: Session,
    actor: Actor,
    frame: pd.DataFrame,
    times: Any,
    planned: list[plans.PurchasePlan],
    balances: list[int | None],
    state: dict[int, plans.MemberState],
) -> None:
    """The plans as rows, in bulk: purchases, lots, entries, tier moves, the members' new
    totals and tiers, referrals' waits. Ids are reserved first so rows can point at each
    other."""
    purchase_ids = _ids(session, "purchases", len(frame))
    with_lot = [n for n, plan in enumerate(planned) if plan.credit and plan.credit.lot]
    lot_ids = dict(zip(with_lot, _ids(session, "point_lots", len(with_lot)), strict=True))
    members = _ints(frame["member_id"])
    now = datetime.now(UTC)
    purchase_columns = [
        "id",
        "source",
        "external_id",
        "member_id",
        "channel_id",
        "store",
        "occurred_at",
        "amount",
        "currency",
        "discount",
        "base_amount",
        "refunded_amount",
        "net_base_amount",
        "campaign_id",
        "state",
        "points_earned",
        "points_reversed",
        "fingerprint",
        "balance_after",
        "created_at",
    ]
    completed, zero = PurchaseState.COMPLETED.value, Decimal(0)
    _copy(
        session,
        Purchase.__table__,
        purchase_columns,
        zip(
            purchase_ids,
            frame["source"],
            frame["external_id"],
            members,
            _ints(frame["channel_id"]),
            [v or None for v in frame["store"]],
            times,
            frame["amount"],
            frame["currency"],
            frame["discount"],
            frame["base_amount"],
            repeat(zero),
            frame["base_amount"],
            _ints(frame["campaign_id"]),
            repeat(completed),
            [plan.points for plan in planned],
            repeat(0),
            frame["fingerprint"],
            balances,
            repeat(now),
        ),
    )
    lots: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    moves: list[tuple[Any, ...]] = []
    waits: list[dict[str, Any]] = []
    for n, plan in enumerate(planned):
        pid, mid, at = purchase_ids[n], members[n], times[n]
        credit = plan.credit
        if credit is not None and credit.lot is not None:
            lot, lot_id = credit.lot, lot_ids[n]
            lots.append(
                (
                    lot_id,
                    mid,
                    pid,
                    lot.points,
                    lot.remaining,
                    lot.state,
                    lot.earned_at,
                    lot.available_at,
                    lot.expires_at,
                )
            )
            entries += [
                (
                    mid,
                    at,
                    e.type,
                    e.points,
                    e.balance_after,
                    e.reason,
                    e.rule,
                    e.bonus_rule_id,
                    "purchase",
                    pid,
                    lot_id,
                    f"purchase:{pid}:{e.rule}",
                )
                for e in credit.entries
            ]
        move = plan.tier_move
        if move is not None:
            moves.append(
                (
                    mid,
                    pid,
                    move.from_tier.id,
                    move.to_tier.id,
                    move.reason,
                    move.metric_value,
                    move.at,
                )
            )
        if plan.referral_completes_at is not None:
            waits.append({"mid": mid, "pid": pid, "at": plan.referral_completes_at})
    lot_columns = [
        "id",
        "member_id",
        "purchase_id",
        "points",
        "remaining",
        "state",
        "earned_at",
        "available_at",
        "expires_at",
    ]
    _copy(session, Lot.__table__, lot_columns, lots)
    entry_columns = [
        "member_id",
        "occurred_at",
        "type",
        "points",
        "balance_after",
        "reason",
        "rule",
        "bonus_rule_id",
        "source_type",
        "source_id",
        "lot_id",
        "idempotency_key",
        "actor_kind",
        "actor_label",
        "actor_user_id",
    ]
    actor_columns = (actor.kind, actor.label, actor.user_id)
    _copy(session, LedgerEntry.__table__, entry_columns, (e + actor_columns for e in entries))
    move_columns = [
        "member_id",
        "purchase_id",
        "from_tier_id",
        "to_tier_id",
        "reason",
        "metric_value",
        "changed_at",
    ]
    _copy(session, TierChange.__table__, move_columns, moves)
    changed = {m for m in members if m is not None}
    if changed:
        session.execute(
            # Core, not ORM: an executemany of the members' new totals (they are locked).
            update(members_table)
            .where(members_table.c.id == bindparam("mid"))
            .values(
                balance=bindparam("balance"),
                pending_points=bindparam("pending"),
                debt=bindparam("debt"),
                tier_id=bindparam("tier_id"),
                tier_since=bindparam("tier_since"),
            ),
            [
                {
                    "mid": mid,
                    "balance": state[mid].points.balance,
                    "pending": state[mid].points.pending,
                    "debt": state[mid].points.debt,
                    "tier_id": state[mid].tier_id,
                    "tier_since": state[mid].tier_since,
                }
                for mid in sorted(changed)
            ],
        )
    for wait in waits:
        referrals.start_wait(session, wait["mid"], wait["pid"], wait["at"])
    session.expire_all()


def _ints(values: pd.Series) -> list[int | None]:
    """A nullable integer column as Python ints and None."""
    return cast(list[int | None], values.astype(object).where(values.notna(), None).tolist())


def _copy(session: Session, table: Any, columns: list[str], rows: Iterable[Sequence[Any]]) -> None:
    """Bulk insert: COPY in CSV form on PostgreSQL (the csv module writes the text: None is
    an empty field, which COPY reads as NULL), executemany elsewhere."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        body = io.StringIO()
        csv.writer(body, lineterminator="\n").writerows(rows)
        if not body.tell():
            return
        raw: Any = connection.connection.dbapi_connection  # psycopg 3: COPY support
        with (
            raw.cursor() as cursor,
            cursor.copy(
                f"COPY {table.name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
            ) as copy,
        ):
            copy.write(body.getvalue())
        return
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    if records:
        session.execute(insert(table), records)
