"""`retain import purchases FILE`: a CSV of purchases, checked whole, then loaded.

Columns: source, external_id, occurred_at, amount [, currency, member_number, discount,
channel, store, campaign_code, coupon_codes]. `occurred_at` is ISO 8601; without an offset it
is local time in the configured zone. `coupon_codes` holds codes separated by ";".

Every row is checked first (vectorised), and if any is bad, nothing is imported and every
bad row is reported with its line number. Rows already imported (same source and external
id, same content) are skipped, so a file can be run again after an interruption.

Two paths load the rows:

- the set-based bulk path (the default) for rows without coupons: points are computed in
  pandas with the same rules as the service (base, tier multiplier, bonus rules, first
  purchase, repeat purchase), then purchases, lots and entries are written in bulk
  (COPY on PostgreSQL), member balances updated in one statement per chunk, referrals
  started, and tier upgrades applied set-based at the end. One difference, on purpose: the
  tier multiplier is the member's tier when the chunk starts (the service upgrades mid-stream);
- the service path, one transaction per purchase, for rows with coupon codes (single use
  needs the row-by-row check) or for everything with `--row-by-row`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from hashlib import sha256
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
from sqlalchemy.orm import Session, sessionmaker

from campaigns import rates
from campaigns.models import Campaign, Channel
from core.audit import Actor
from core.errors import ValidationFailed
from loyalty import earning, ledger, purchases, referrals, tiers
from loyalty import program as program_settings
from loyalty.models import (
    EntryType,
    ExpiryPolicy,
    LedgerEntry,
    Lot,
    LotState,
    Member,
    Program,
    Purchase,
    PurchaseState,
    Referral,
    ReferralState,
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
    errors: list[dict[str, Any]] = field(default_factory=list)


def _decimal(value: str) -> Decimal | None:
    try:
        parsed = Decimal(value.replace(",", "")) if value else None
    except InvalidOperation:
        return None
    return parsed if parsed is None or parsed.is_finite() else None


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
            "import.encoding", "The file is not UTF-8; save it as CSV UTF-8."
        ) from None
    except pd.errors.EmptyDataError:
        raise ImportFailed("import.empty", "The file is empty.") from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ImportFailed(
            "import.columns",
            f"Line 1: missing column(s) {', '.join(missing)}. Expected: "
            f"{', '.join(REQUIRED + OPTIONAL)}.",
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
    bad(
        frame.duplicated(["source", "external_id"], keep="first"),
        "the same source and external_id appear earlier in the file",
    )
    frame["occurred_at"] = _to_utc(frame["occurred_at"], zone)
    bad(frame["occurred_at"].isna(), "occurred_at is not a time like 2026-03-01T14:30:00+08:00")
    now = pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=5)
    bad(frame["occurred_at"] > now, "occurred_at is in the future")
    amounts = [_decimal(v) for v in frame["amount"].tolist()]
    frame["amount"] = pd.Series(amounts, index=frame.index, dtype=object)
    bad(
        pd.Series([v is None or v <= 0 for v in amounts], index=frame.index),
        "amount must be a number above zero",
    )
    discounts = [_decimal(v) if v else Decimal(0) for v in frame["discount"].tolist()]
    frame["discount"] = pd.Series(discounts, index=frame.index, dtype=object)
    bad(
        pd.Series([v is None or v < 0 for v in discounts], index=frame.index),
        "discount must be a number ≥ 0",
    )
    frame["currency"] = _by_value(frame["currency"], lambda v: v.upper() or base)
    known = {v for v in frame["currency"].unique() if re.fullmatch(r"[A-Z]{3}", v)}
    bad(~frame["currency"].isin(known), "currency must be a code like CNY")
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
            "import.failed", f"{len(rows)} problem(s); nothing was imported.", rows[:MAX_ERRORS]
        )
    return pd.DataFrame(frame)


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

    def codes(value: str) -> str:
        return json.dumps(sorted(c.strip() for c in value.split(";") if c.strip()))

    times = frame["occurred_at"].dt.tz_convert("UTC").dt.to_pydatetime()
    members = frame["member_id"].astype(object).where(frame["member_id"].notna(), None)
    rows = zip(
        frame["amount"],
        frame["campaign_code"],
        frame["channel"],
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
                f'"channel": {text(channel)}, "coupon_codes": {codes(coupon) if coupon else "[]"}, '
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
    factory: sessionmaker[Session],
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
    actor.require(*purchases.ROLES, doing="import purchases")
    with factory() as session:
        frame = read(data, zone, session, base)
    report = ImportReport(rows=len(frame))
    frame["fingerprint"] = _fingerprints(frame)
    frame = _drop_known(factory, frame, report)
    service = frame["coupon_codes"] != "" if not row_by_row else pd.Series(True, frame.index)
    chunks = _by_member(frame[~service])
    with factory() as session:
        # SQLite has one writer; and a factory bound to one connection cannot be shared.
        parallel = session.get_bind().dialect.name == "postgresql" and workers > 1

    def load(chunk: pd.DataFrame) -> int:
        with factory() as session, session.begin():
            return _bulk(session, actor, chunk, base, zone)

    # Chunks hold whole members, so two loading at once never wait on each other's locks:
    # one prepares rows in Python while the database indexes the other's COPY.
    with ThreadPoolExecutor(max_workers=workers if parallel else 1) as pool:
        for chunk, points in zip(chunks, pool.map(load, chunks), strict=True):
            report.points += points
            report.imported += len(chunk)
            if progress:
                progress(len(chunk))
    for row in frame[service].itertuples(index=False):
        with factory() as session, session.begin():
            outcome = purchases.record(session, actor, _input(row), base_currency=base, zone=zone)
        report.points += outcome.points
        report.imported += 1
        report.by_service += 1
        if progress:
            progress(1)
    if report.imported and not row_by_row:
        with factory() as session, session.begin():
            tiers.evaluate(session, datetime.now(UTC), upgrades_only=True)
    return report


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
    factory: sessionmaker[Session], frame: pd.DataFrame, report: ImportReport
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
            "import.failed", f"{len(rows)} problem(s); nothing was imported.", rows[:MAX_ERRORS]
        )
    report.skipped = int(seen.sum())
    return frame[~seen]


def _floor(values: pd.Series) -> pd.Series:
    return values.map(lambda v: int(v.to_integral_value(rounding=ROUND_FLOOR))).astype("int64")


def _bulk(session: Session, actor: Actor, chunk: pd.DataFrame, base: str, zone: ZoneInfo) -> int:
    program = program_settings.get(session)
    frame = chunk.copy()
    frame["day"] = frame["occurred_at"].dt.tz_convert(zone).dt.date
    table = rates.rates_frame(session, set(frame["currency"]) - {base})
    frame["base_amount"] = rates.convert(frame[["amount", "currency", "day"]], table, base)
    members = frame["member_id"].dropna().astype("int64").unique().tolist()
    state = _lock(session, members)
    frame = frame.sort_values(["member_id", "occurred_at", "line"], na_position="last")
    credits = _credits(session, program, frame, state, zone)
    _write(session, actor, program, frame, credits, state, zone)
    return int(credits["points"].sum()) if len(credits) else 0


def _lock(session: Session, member_ids: list[int]) -> pd.DataFrame:
    rows: list[Any] = []
    for start in range(0, len(member_ids), 10_000):
        rows += session.execute(
            select(Member.id, Member.tier_id, Member.balance, Member.status)
            .where(_in(session, Member.id, member_ids[start : start + 10_000]))
            .order_by(Member.id)
            .with_for_update()
        ).all()
    return pd.DataFrame(rows, columns=["member_id", "tier_id", "balance", "status"]).set_index(
        "member_id"
    )


def _credits(
    session: Session, program: Program, frame: pd.DataFrame, state: pd.DataFrame, zone: ZoneInfo
) -> pd.DataFrame:
    """One row per credit line (purchase row index, points, reason, rule, type, rule id),
    computed with the rules and order of `earning.earn`."""
    earners = frame["member_id"].notna()
    if earners.any():
        status = frame.loc[earners, "member_id"].astype("int64").map(state["status"])
        earners.loc[earners] = (status == "active").to_numpy()
    rows = frame[earners]
    if rows.empty:
        return pd.DataFrame(
            columns=["index", "points", "reason", "rule", "type", "rule_id", "order"]
        )
    member = rows["member_id"].astype("int64")
    ladder = {t.id: t for t in program_settings.ladder(session)}
    rate = program.earn_rate
    base = _floor(rows["base_amount"] * rate)
    parts = [
        pd.DataFrame(
            {
                "index": rows.index,
                "points": base,
                "reason": "Points for your purchase",
                "rule": "base",
                "type": EntryType.EARN.value,
                "rule_id": None,
                "order": 0,
            }
        )
    ]
    tier_of = member.map(state["tier_id"])
    multiplier = tier_of.map({i: t.multiplier for i, t in ladder.items()})
    extra = pd.Series(
        [
            int((b * (m - 1)).to_integral_value(rounding=ROUND_FLOOR))
            for b, m in zip(base, multiplier, strict=True)
        ],
        index=rows.index,
    )
    names = tier_of.map(
        {i: f"{t.name} member ×{t.multiplier.normalize():f}" for i, t in ladder.items()}
    )
    parts.append(
        pd.DataFrame(
            {
                "index": rows.index,
                "points": extra,
                "reason": names,
                "rule": "tier",
                "type": EntryType.EARN.value,
                "rule_id": None,
                "order": 1,
            }
        )
    )
    stopped = pd.Series(False, index=rows.index)
    campaign_names = dict(session.execute(select(Campaign.id, Campaign.name)).all())
    for n, rule in enumerate(program_settings.rules(session, active_only=True)):
        if rule.category:
            continue  # CSV rows carry no lines, so a category rule cannot match
        match = ~stopped
        if rule.starts_on:
            match &= rows["day"] >= rule.starts_on
        if rule.ends_on:
            match &= rows["day"] <= rule.ends_on
        if rule.channel_id is not None:
            match &= rows["channel_id"] == rule.channel_id
        if rule.campaign_id is not None:
            match &= rows["campaign_id"] == rule.campaign_id
        if rule.min_spend is not None:
            match &= rows["base_amount"].map(lambda v, m=rule.min_spend: v >= m)
        match = match.fillna(False).astype(bool)
        if not match.any():
            continue
        if rule.multiplier is not None:
            points = pd.Series(
                [
                    int((b * (rule.multiplier - 1)).to_integral_value(rounding=ROUND_FLOOR))
                    for b in base[match]
                ],
                index=rows.index[match],
            )
        else:
            points = pd.Series(rule.fixed_points or 0, index=rows.index[match])
        reason = rule.name
        if rule.campaign_id is not None and rule.campaign_id in campaign_names:
            reason = f"{rule.name} — {campaign_names[rule.campaign_id]}"
        parts.append(
            pd.DataFrame(
                {
                    "index": rows.index[match],
                    "points": points,
                    "reason": reason,
                    "rule": f"bonus_rule:{rule.id}",
                    "type": EntryType.EARN.value,
                    "rule_id": rule.id,
                    "order": 10 + n,
                }
            )
        )
        if rule.stop_further:
            stopped |= match
    _first_and_repeat(session, program, rows, member, parts)
    credits = pd.concat(parts, ignore_index=True)
    return credits[credits["points"] > 0]


def _first_and_repeat(
    session: Session,
    program: Program,
    rows: pd.DataFrame,
    member: pd.Series,
    parts: list[pd.DataFrame],
) -> None:
    ids = member.unique().tolist()
    bought_before: set[int] = set()
    history: dict[int, list[datetime]] = {}
    last_bonus: dict[int, datetime] = {}
    start = rows["occurred_at"].min().to_pydatetime() - timedelta(days=program.repeat_days)
    for i in range(0, len(ids), 10_000):
        chunk = ids[i : i + 10_000]
        bought_before |= set(
            session.scalars(
                select(Purchase.member_id).where(_in(session, Purchase.member_id, chunk)).distinct()
            )
        )
        for mid, when in session.execute(
            select(Purchase.member_id, Purchase.occurred_at).where(
                _in(session, Purchase.member_id, chunk),
                Purchase.occurred_at > start,
                Purchase.state != PurchaseState.REFUNDED,
            )
        ):
            history.setdefault(int(mid or 0), []).append(when)
        for mid, when in session.execute(
            select(LedgerEntry.member_id, func.max(LedgerEntry.occurred_at))
            .where(
                _in(session, LedgerEntry.member_id, chunk),
                LedgerEntry.rule == "repeat_purchase",
                LedgerEntry.occurred_at > start,
            )
            .group_by(LedgerEntry.member_id)
        ):
            last_bonus[mid] = when
    first = ~member.duplicated(keep="first") & ~member.isin(bought_before)
    if program.first_purchase_bonus and first.any():
        parts.append(
            pd.DataFrame(
                {
                    "index": rows.index[first],
                    "points": program.first_purchase_bonus,
                    "reason": "First purchase bonus",
                    "rule": "first_purchase",
                    "type": EntryType.BONUS.value,
                    "rule_id": None,
                    "order": 1000,
                }
            )
        )
    if not program.repeat_bonus:
        return
    window = timedelta(days=program.repeat_days)
    given: list[Any] = []
    times = rows["occurred_at"].dt.to_pydatetime()
    for index, mid, when in zip(rows.index, member.to_numpy(), times, strict=True):
        seen = history.setdefault(int(mid), [])
        seen.append(when)
        recent = [t for t in seen if when - window < t <= when]
        history[int(mid)] = recent
        bonus_at = last_bonus.get(int(mid))
        if len(recent) >= program.repeat_count and not (bonus_at and bonus_at > when - window):
            given.append(index)
            last_bonus[int(mid)] = when
    if given:
        parts.append(
            pd.DataFrame(
                {
                    "index": given,
                    "points": program.repeat_bonus,
                    "reason": earning.repeat_reason(program),
                    "rule": "repeat_purchase",
                    "type": EntryType.BONUS.value,
                    "rule_id": None,
                    "order": 1001,
                }
            )
        )


def _expiry(program: Program, available: pd.Series, zone: ZoneInfo) -> pd.Series:
    """`ledger.expires_at` for many lots: by vector for "N days", once per local day for the
    month and year policies (they depend on the day only), none for "never"."""
    policy = ExpiryPolicy(program.expiry_policy)
    if policy is ExpiryPolicy.NEVER:
        return pd.Series(pd.NaT, index=available.index, dtype=available.dtype)
    if policy is ExpiryPolicy.DAYS_AFTER_ACTIVE:
        return available + pd.Timedelta(days=program.expiry_n)
    days = available.dt.tz_convert(zone).dt.normalize()
    ends = {d: ledger.expires_at(program, d.to_pydatetime(), zone) for d in days.unique()}
    return pd.Series(pd.to_datetime(days.map(ends), utc=True), index=available.index)


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
    program: Program,
    frame: pd.DataFrame,
    credits: pd.DataFrame,
    state: pd.DataFrame,
    zone: ZoneInfo,
) -> None:
    purchase_ids = pd.Series(_ids(session, "purchases", len(frame)), index=frame.index)
    totals = credits.groupby("index")["points"].sum() if len(credits) else pd.Series(dtype="int64")
    earned = totals.reindex(frame.index, fill_value=0).astype("int64")
    window = timedelta(days=program.return_window_days)
    purchase_rows = pd.DataFrame(
        {
            "id": purchase_ids,
            "source": frame["source"],
            "external_id": frame["external_id"],
            "member_id": frame["member_id"],
            "channel_id": frame["channel_id"],
            "store": frame["store"].replace("", None),
            "occurred_at": frame["occurred_at"],
            "amount": frame["amount"],
            "currency": frame["currency"],
            "discount": frame["discount"],
            "base_amount": frame["base_amount"],
            "refunded_amount": Decimal(0),
            "net_base_amount": frame["base_amount"],
            "campaign_id": frame["campaign_id"],
            "state": PurchaseState.COMPLETED.value,
            "points_earned": earned,
            "points_reversed": 0,
            "fingerprint": frame["fingerprint"],
            "created_at": datetime.now(UTC),
        }
    )
    _copy(session, Purchase.__table__, purchase_rows)
    with_points = frame.index[earned > 0]
    lot_ids = pd.Series(_ids(session, "point_lots", len(with_points)), index=with_points)
    if len(with_points):
        when = frame.loc[with_points, "occurred_at"]
        available = when + window
        expiry = _expiry(program, available, zone)
        pending = available > when
        _copy(
            session,
            Lot.__table__,
            pd.DataFrame(
                {
                    "id": lot_ids,
                    "member_id": frame.loc[with_points, "member_id"],
                    "purchase_id": purchase_ids[with_points],
                    "points": earned[with_points],
                    "remaining": earned[with_points],
                    "state": np.where(pending, LotState.PENDING.value, LotState.ACTIVE.value),
                    "earned_at": when,
                    "available_at": available,
                    "expires_at": expiry,
                }
            ),
        )
        credits = credits.sort_values(["index", "order"])
        credits["member_id"] = frame.loc[credits["index"], "member_id"].astype("int64").to_numpy()
        # Entries in purchase order per member: balance_after is a running sum.
        position = pd.Series(np.arange(len(frame)), index=frame.index)
        credits["position"] = position[credits["index"]].to_numpy()
        credits = credits.sort_values(["member_id", "position", "order"])
        start = credits["member_id"].map(state["balance"]).astype("int64")
        credits["balance_after"] = start + credits.groupby("member_id")["points"].cumsum()
        _copy(
            session,
            LedgerEntry.__table__,
            pd.DataFrame(
                {
                    "member_id": credits["member_id"],
                    "occurred_at": frame.loc[credits["index"], "occurred_at"].to_numpy(),
                    "type": credits["type"],
                    "points": credits["points"],
                    "balance_after": credits["balance_after"],
                    "reason": credits["reason"],
                    "rule": credits["rule"],
                    "bonus_rule_id": credits["rule_id"],
                    "source_type": "purchase",
                    "source_id": purchase_ids[credits["index"]].to_numpy(),
                    "lot_id": lot_ids[credits["index"]].to_numpy(),
                    "actor_kind": actor.kind,
                    "actor_label": actor.label,
                    "actor_user_id": actor.user_id,
                    "idempotency_key": [
                        f"purchase:{p}:{r}"
                        for p, r in zip(
                            purchase_ids[credits["index"]], credits["rule"], strict=True
                        )
                    ],
                }
            ),
        )
        per_member = (
            pd.DataFrame(
                {
                    "mid": frame.loc[with_points, "member_id"].astype("int64"),
                    "points": earned[with_points],
                    "pending": np.where(pending, earned[with_points], 0),
                }
            )
            .groupby("mid")
            .sum()
            .reset_index()
        )
        session.execute(
            # Core, not ORM: an executemany of relative updates, one per member.
            update(members_table)
            .where(members_table.c.id == bindparam("mid"))
            .values(
                balance=members_table.c.balance + bindparam("points"),
                pending_points=members_table.c.pending_points + bindparam("pending"),
            ),
            [
                {"mid": int(mid), "points": int(points), "pending": int(pend)}
                for mid, points, pend in per_member[["mid", "points", "pending"]].to_numpy()
            ],
        )
    _start_referrals(session, program, frame, purchase_ids, window)
    session.expire_all()


def _start_referrals(
    session: Session,
    program: Program,
    frame: pd.DataFrame,
    purchase_ids: pd.Series,
    window: timedelta,
) -> None:
    buyers = frame["member_id"].dropna().astype("int64").unique().tolist()
    pending = (
        session.scalars(
            select(Referral.referee_id).where(
                Referral.state == ReferralState.PENDING, _in(session, Referral.referee_id, buyers)
            )
        ).all()
        if buyers
        else []
    )
    for referee in pending:
        theirs = frame[
            (frame["member_id"] == referee)
            & (frame["base_amount"].map(lambda v: v >= program.referral_min_amount))
        ]
        if theirs.empty:
            continue
        first = theirs.index[0]
        purchase = session.get(Purchase, int(purchase_ids[first]))
        assert purchase is not None
        referrals.on_purchase(session, program, purchase, purchase.occurred_at + window)


def _copy(session: Session, table: Any, rows: pd.DataFrame) -> None:
    """Bulk insert: COPY in CSV form on PostgreSQL (pandas writes the text), executemany
    elsewhere."""
    if rows.empty:
        return
    columns = list(rows.columns)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        rows = rows.copy()
        for name in columns:  # ISO text for times, vectorised (strftime per value is slow)
            if isinstance(rows[name].dtype, pd.DatetimeTZDtype):
                utc = rows[name].dt.tz_convert("UTC").dt.tz_localize(None)
                rows[name] = (utc.astype(str) + "+00:00").where(utc.notna(), None)
        body = rows.to_csv(index=False, header=False)
        raw: Any = connection.connection.dbapi_connection  # psycopg 3: COPY support
        with (
            raw.cursor() as cursor,
            cursor.copy(
                f"COPY {table.name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
            ) as copy,
        ):
            copy.write(body)
        return
    records = rows.astype(object).where(rows.notna(), None).itertuples(index=False, name=None)
    session.execute(
        insert(table), [dict(zip(columns, map(_plain, r), strict=True)) for r in records]
    )


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.integer):
        return int(value)
    return value
