"""Coupon batches, codes, issue, validate and redeem.

Single use holds under concurrency without any lock held across the request: redeeming is
one conditional UPDATE (`... WHERE state = 'issued'`) and only the request whose UPDATE
changed the row wins. A batch's public code counts its uses under the batch's row lock.

A batch linked to a campaign with a holdout (`loyalty.audiences`) is never given to a member
the campaign holds out: `issue` refuses, `issue_to_members` and `plan_issue` skip them and
count them (`IssuePlan.held_out`, the audit row). A reward a member buys with their own points
is their choice, not the campaign reaching them, so it is not refused.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from dataclasses import field as _field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Select, func, insert, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from campaigns.models import Campaign
from core import audit, bounds
from core.audit import Actor
from core.db import rowcount
from core.errors import Conflict, NotFound, Problems, ValidationFailed
from core.exports import safe_cell
from core.money import minor_units, normalise_currency
from core.text import N_, Phrase
from core.timeutil import utcnow
from loyalty import audiences, codes
from loyalty.models import (
    MAX_BIG,
    NOTE_LENGTH,
    Batch,
    Coupon,
    CouponKind,
    CouponState,
    LedgerEntry,
    Member,
    MemberStatus,
    Redemption,
    Tier,
    check_name_zh,
)

MAX_BATCH = 1_000_000
_CHUNK = 50_000
MAX_VALID_DAYS = 3650  # a coupon valid for N days from issue: at most ten years
# A code as a person may type it (with spaces or dashes); stored codes are shorter.
TYPED = 2 * bounds.length(Coupon.code)


def normalise_code(code: str) -> str:
    """A typed code as stored (`codes.normalise`), once it is text a code can be: anything
    else is refused here, before it reaches a query."""
    return codes.normalise(bounds.check_text(code, "coupon.code", TYPED, N_("A coupon code")))


class CouponRefused(Conflict):
    """A code that cannot be used; `code` says why (coupon.expired, coupon.used, …)."""

    default_code = "coupon.refused"


def create_batch(
    session: Session,
    actor: Actor,
    *,
    name: str,
    kind: str,
    currency: str,
    campaign_id: int | None = None,
    value: Decimal = Decimal(0),
    max_discount: Decimal | None = None,
    gift: str = "",
    min_spend: Decimal = Decimal(0),
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    valid_days: int | None = None,
    total_limit: int | None = None,
    per_member_limit: int | None = None,
    eligible_tiers: list[str] | None = None,
    public_code: str | None = None,
    name_zh: str | None = None,
) -> Batch:
    """A new batch. Every problem with the fields is named at once, under the keyword's
    name (`core.errors.Invalid`)."""
    actor.require("admin", "marketer", doing=N_("create coupon batches"))
    problems = Problems()

    def checked_name() -> str:
        text = bounds.check_text(name, "batch.name", bounds.length(Batch.name), N_("The name"))
        if not text.strip():
            raise ValidationFailed("batch.name", "Give the batch a name.")
        return text.strip()

    def checked_gift() -> str:
        text = bounds.check_text(gift, "batch.gift", bounds.length(Batch.gift), N_("The gift"))
        if kind == CouponKind.GIFT and not text.strip():
            raise ValidationFailed("batch.gift", "Describe the gift.")
        return text.strip()

    def checked_value() -> Decimal:
        amount = bounds.check_amount(value, "batch.value", label=N_("The value"))
        if kind == CouponKind.PERCENT and not Decimal(0) < amount <= Decimal(100):
            raise ValidationFailed("batch.value", "A percent discount is above 0 and at most 100.")
        if kind == CouponKind.FIXED and amount <= 0:
            raise ValidationFailed("batch.value", "A fixed discount must be above zero.")
        return amount

    batch_name = problems.check("name", checked_name)
    chinese = problems.check(
        "name_zh", lambda: check_name_zh(name_zh, bounds.length(Batch.name_zh), "batch")
    )
    if kind not in set(CouponKind):
        problems.add("kind", "Kind is percent, fixed or gift.", "batch.kind")
    gift_text = problems.check("gift", checked_gift)
    code = problems.check("currency", lambda: normalise_currency(currency))
    amount = problems.check("value", checked_value)
    spend = problems.check(
        "min_spend",
        lambda: bounds.check_amount(min_spend, "batch.min_spend", label=N_("The minimum spend")),
    )
    if max_discount is not None:
        problems.check(
            "max_discount",
            lambda: bounds.check_amount(
                max_discount, "batch.max_discount", sign="positive", label=N_("The cap")
            ),
        )
    if (valid_days is None) == (valid_until is None):
        problems.add(
            "valid_until",
            "Give either an end date or a number of days from issue.",
            "batch.validity",
        )
    if valid_days is not None and not 1 <= valid_days <= MAX_VALID_DAYS:
        problems.add(
            "valid_days",
            "Days of validity are from 1 to %(most)s.",
            "batch.valid_days",
            most=f"{MAX_VALID_DAYS:,}",
        )
    for field, label, when in (
        ("valid_from", N_("The start date"), valid_from),
        ("valid_until", N_("The end date"), valid_until),
    ):
        if when is not None:
            problems.check(
                field,
                lambda when=when, label=label: bounds.check_day(  # type: ignore[misc]
                    when.date(), "batch.validity", label
                ),
            )
    if valid_from and valid_until and valid_until <= valid_from:
        problems.add("valid_until", "The batch ends before it starts.", "batch.validity")
    for field, limit in (("total_limit", total_limit), ("per_member_limit", per_member_limit)):
        if limit is not None and not 1 <= limit <= bounds.MAX_ID:
            problems.add(
                field,
                "A limit is from 1 to %(most)s coupons.",
                f"batch.{field}",
                most=f"{bounds.MAX_ID:,}",
            )
    if campaign_id is not None and (
        not 1 <= campaign_id <= bounds.MAX_ID or session.get(Campaign, campaign_id) is None
    ):
        problems.add(
            "campaign_id", "There is no campaign %(id)s.", "batch.campaign", id=campaign_id
        )

    def checked_tiers() -> list[str]:
        for tier in eligible_tiers or []:
            bounds.check_text(tier, "batch.tiers", bounds.length(Tier.code), N_("A tier code"))
        tiers = [t.strip().lower() for t in eligible_tiers or [] if t.strip()]
        unknown = set(tiers) - set(session.scalars(select(Tier.code)))
        if unknown:
            raise ValidationFailed(
                "batch.tiers", "Unknown tier %(tiers)s.", tiers=", ".join(sorted(unknown))
            )
        return tiers

    tiers = problems.check("eligible_tiers", checked_tiers)

    def checked_public_code() -> str | None:
        if not public_code:
            return None
        bounds.check_text(public_code, "batch.public_code", TYPED, N_("The public code"))
        shared = codes.normalise(public_code)
        longest = bounds.length(Batch.public_code)
        if not 4 <= len(shared) <= longest:
            raise ValidationFailed(
                "batch.public_code",
                "A public code has from 4 to %(longest)s characters.",
                longest=longest,
            )
        return shared

    shared = problems.check("public_code", checked_public_code)
    problems.raise_any()
    assert batch_name is not None and gift_text is not None and code is not None
    assert amount is not None and spend is not None and tiers is not None
    if shared is not None and (
        session.scalar(select(Coupon.id).where(Coupon.code == shared))
        or session.scalar(select(Batch.id).where(Batch.public_code == shared))
    ):
        raise Conflict(
            "batch.public_code_taken",
            "The code %(public_code)s is already in use.",
            public_code=shared,
        )
    batch = Batch(
        name=batch_name,
        name_zh=chinese,
        kind=kind,
        currency=code,
        campaign_id=campaign_id,
        value=amount,
        max_discount=max_discount,
        gift=gift_text,
        min_spend=spend,
        valid_from=valid_from,
        valid_until=valid_until,
        valid_days=valid_days,
        total_limit=total_limit,
        per_member_limit=per_member_limit,
        eligible_tiers=tiers,
        public_code=shared,
    )
    session.add(batch)
    session.flush()
    audit.record(
        session, actor, "coupon_batch.create", "coupon_batch", batch.id, after=describe(batch)
    )
    return batch


def describe(batch: Batch) -> dict[str, Any]:
    return {
        "name": batch.name,
        "name_zh": batch.name_zh,
        "kind": batch.kind,
        "value": str(batch.value),
        "currency": batch.currency,
        "max_discount": None if batch.max_discount is None else str(batch.max_discount),
        "min_spend": str(batch.min_spend),
        "campaign_id": batch.campaign_id,
        "total_limit": batch.total_limit,
        "per_member_limit": batch.per_member_limit,
        "eligible_tiers": batch.eligible_tiers,
        "public_code": batch.public_code,
    }


# The offer in words, one whole phrase for each kind of coupon, with and without a cap and a
# least spend: templates the staff catalog translates (`offer_wording`), filled in English by
# `offer`. Amounts are written with two decimals and the batch's currency code.
OFFER_TEMPLATES: dict[tuple[str, bool, bool], str] = {
    # (kind, capped, least spend)
    (CouponKind.PERCENT, False, False): N_("%(percent)s%% off"),
    (CouponKind.PERCENT, False, True): N_("%(percent)s%% off, on %(least)s %(currency)s or more"),
    (CouponKind.PERCENT, True, False): N_("%(percent)s%% off (up to %(most)s %(currency)s)"),
    (CouponKind.PERCENT, True, True): N_(
        "%(percent)s%% off (up to %(most)s %(currency)s), on %(least)s %(currency)s or more"
    ),
    (CouponKind.FIXED, False, False): N_("%(amount)s %(currency)s off"),
    (CouponKind.FIXED, False, True): N_(
        "%(amount)s %(currency)s off, on %(least)s %(currency)s or more"
    ),
    (CouponKind.GIFT, False, False): N_("Gift: %(gift)s"),
    (CouponKind.GIFT, False, True): N_("Gift: %(gift)s, on %(least)s %(currency)s or more"),
}


def offer_wording(batch: Batch | BatchRow) -> tuple[str, dict[str, str]]:
    """The offer as a template (`OFFER_TEMPLATES`, marked for the staff catalog) and its
    params, for a page to say in its reader's language: `t(request, template, **params)`."""
    kind = batch.kind if batch.kind in (CouponKind.PERCENT, CouponKind.FIXED) else CouponKind.GIFT
    capped = kind == CouponKind.PERCENT and batch.max_discount is not None
    params = {"currency": batch.currency}
    if kind == CouponKind.PERCENT:
        params["percent"] = f"{batch.value.normalize():f}"
        if batch.max_discount is not None:
            params["most"] = f"{batch.max_discount:.2f}"
    elif kind == CouponKind.FIXED:
        params["amount"] = f"{batch.value:.2f}"
    else:
        params["gift"] = str(batch.gift)
    if batch.min_spend:
        params["least"] = f"{batch.min_spend:.2f}"
    return OFFER_TEMPLATES[(kind, capped, bool(batch.min_spend))], params


def offer(batch: Batch | BatchRow) -> str:
    """The offer in words: "20% off (up to 50.00 CNY), on 200.00 CNY or more"."""
    template, params = offer_wording(batch)
    return template % params


def _validity(batch: Batch, at: datetime) -> tuple[datetime | None, datetime | None]:
    if batch.valid_days is not None:
        return batch.valid_from, at + timedelta(days=batch.valid_days)
    return batch.valid_from, batch.valid_until


def _reason(reason: str) -> str:
    """Why a coupon was given, as kept: plain text, cut to its column ("Reward: " and a
    reward's full name may be longer)."""
    return bounds.check_text(reason, "coupon.reason", label=N_("The reason"))[
        : bounds.length(Coupon.issued_reason)
    ]


def _lock_batch(session: Session, batch_id: int) -> Batch:
    if not 1 <= batch_id <= bounds.MAX_ID:
        raise NotFound("batch.not_found", "No coupon batch %(id)s.", id=batch_id)
    batch = session.scalar(
        select(Batch)
        .where(Batch.id == batch_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if batch is None:
        raise NotFound("batch.not_found", "No coupon batch %(id)s.", id=batch_id)
    return batch


def _room(batch: Batch, wanted: int) -> None:
    if not batch.active:
        raise Conflict("batch.inactive", "The batch '%(name)s' is switched off.", name=batch.name)
    if batch.public_code:
        raise Conflict("batch.public", "A batch with a public code issues no personal codes.")
    if batch.total_limit is not None and batch.issued_count + wanted > batch.total_limit:
        left = batch.total_limit - batch.issued_count
        raise Conflict(
            "batch.limit",
            "The batch allows %(left)s more coupons, not %(wanted)s.",
            left=f"{left:,}",
            wanted=f"{wanted:,}",
        )


def generate(
    session: Session, actor: Actor, batch_id: int, count: int, *, at: datetime | None = None
) -> int:
    """Add `count` bearer codes (no member) to a batch, set-based in chunks; returns count."""
    actor.require("admin", "marketer", doing=N_("generate coupon codes"))
    if not 1 <= count <= MAX_BATCH:
        raise ValidationFailed(
            "batch.count", "Generate between 1 and %(most)s codes.", most=f"{MAX_BATCH:,}"
        )
    at = at or utcnow()
    batch = _lock_batch(session, batch_id)
    _room(batch, count)
    valid_from, valid_until = _validity(batch, at)
    made = 0
    while made < count:
        wanted = min(_CHUNK, count - made)
        made += _insert_codes(
            session, batch.id, [None] * wanted, at, valid_from, valid_until, "generated"
        )
    batch.issued_count += count
    session.flush()
    audit.record(
        session,
        actor,
        "coupon_batch.generate",
        "coupon_batch",
        batch.id,
        after={"generated": count},
    )
    return count


def _insert_codes(
    session: Session,
    batch_id: int,
    member_ids: list[int | None],
    at: datetime,
    valid_from: datetime | None,
    valid_until: datetime | None,
    reason: str,
) -> int:
    """Insert one coupon per entry of `member_ids`, drawing fresh codes until every insert
    lands (a clash with an existing code is ~1e-9 per code; it is redrawn, never reused)."""
    todo = list(member_ids)
    while todo:
        fresh = list(dict.fromkeys(codes.generate(len(todo))))[: len(todo)]
        pairs = list(zip(fresh, todo, strict=False))
        if session.get_bind().dialect.name == "postgresql":
            todo = todo[len(pairs) :] + _copy_codes(
                session, batch_id, pairs, at, valid_from, valid_until, reason
            )
            continue
        taken = set(session.scalars(select(Coupon.code).where(Coupon.code.in_(fresh))))
        rows = [
            {
                "batch_id": batch_id,
                "code": code,
                "member_id": member,
                "state": CouponState.ISSUED,
                "issued_at": at,
                "valid_from": valid_from,
                "valid_until": valid_until,
                "issued_reason": reason,
            }
            for code, member in pairs
            if code not in taken
        ]
        session.execute(insert(Coupon), rows)
        todo = todo[len(pairs) :] + [m for c, m in pairs if c in taken]
    return len(member_ids)


def _copy_codes(
    session: Session,
    batch_id: int,
    pairs: list[tuple[str, int | None]],
    at: datetime,
    valid_from: datetime | None,
    valid_until: datetime | None,
    reason: str,
) -> list[int | None]:
    """PostgreSQL: COPY the codes into a scratch table, insert those not taken; returns the
    members whose code clashed, to draw again."""
    connection = session.connection()
    connection.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS new_codes (code varchar(32), member_id integer)"
    )
    connection.exec_driver_sql("TRUNCATE new_codes")
    raw: Any = connection.connection.dbapi_connection
    body = "".join(f"{code}\t{'' if m is None else m}\n" for code, m in pairs)
    with (
        raw.cursor() as cursor,
        cursor.copy("COPY new_codes (code, member_id) FROM STDIN WITH (NULL '')") as copy,
    ):
        copy.write(body)
    params = {
        "batch": batch_id,
        "at": at,
        "start": valid_from,
        "end": valid_until,
        "reason": reason,
        "state": CouponState.ISSUED.value,
    }
    inserted = rowcount(
        session.execute(
            text(
                "INSERT INTO coupons (batch_id, code, member_id, state, issued_at, valid_from, "
                "valid_until, issued_reason) SELECT :batch, code, member_id, :state, :at, "
                ":start, :end, :reason FROM new_codes ON CONFLICT (code) DO NOTHING"
            ),
            params,
        )
    )
    if inserted == len(pairs):
        return []  # the usual case: no clash, nothing to look up
    missed = session.execute(
        text(
            "SELECT n.member_id FROM new_codes n LEFT JOIN coupons c ON c.code = n.code "
            "AND c.batch_id = :batch AND c.issued_at = :at WHERE c.id IS NULL"
        ),
        {"batch": batch_id, "at": at},
    )
    return [m for (m,) in missed]


def issue(
    session: Session,
    actor: Actor,
    batch_id: int,
    member: Member,
    *,
    reason: str,
    at: datetime | None = None,
    paid: LedgerEntry | None = None,
) -> Coupon:
    """Give one member a personal coupon of the batch (tier and per-member limits apply).

    Marketers and admins give coupons (the jobs and the command line hold every role);
    anyone allowed to spend the member's points may issue the reward those points `paid`
    for. Either way an audit row names who did it."""
    if paid is None:
        actor.require("admin", "marketer", doing=N_("give coupons"))
    elif paid.member_id != member.id:
        raise Conflict("coupon.paid", "The points that pay for this coupon are another member's.")
    reason = _reason(reason)
    at = at or utcnow()
    batch = _lock_batch(session, batch_id)
    _room(batch, 1)
    if (
        paid is None
        and batch.campaign_id is not None
        and audiences.is_held_out(session, batch.campaign_id, member.id)
    ):
        code = session.scalar(select(Campaign.code).where(Campaign.id == batch.campaign_id))
        raise Conflict(
            "coupon.held_out",
            "%(member)s is in the holdout group of campaign %(campaign)s: held-out members "
            "are not given the campaign's coupons ('%(batch)s'), so that what the campaign "
            "adds can be measured against them.",
            member=member.number,
            campaign=code,
            batch=batch.name,
        )
    if batch.eligible_tiers:
        tier_code = session.scalar(select(Tier.code).where(Tier.id == member.tier_id))
        if tier_code not in batch.eligible_tiers:
            raise Conflict(
                "coupon.tier",
                "'%(batch)s' is for %(tiers)s members.",
                batch=batch.name,
                tiers=", ".join(batch.eligible_tiers),
            )
    if batch.per_member_limit is not None:
        held = session.scalar(
            select(func.count(Coupon.id)).where(
                Coupon.batch_id == batch.id, Coupon.member_id == member.id
            )
        )
        if (held or 0) >= batch.per_member_limit:
            raise Conflict(
                "coupon.member_limit",
                "%(member)s already holds as many '%(batch)s' coupons as allowed.",
                member=member.number,
                batch=batch.name,
            )
    valid_from, valid_until = _validity(batch, at)
    code = _fresh_code(session)
    coupon = Coupon(
        batch_id=batch.id,
        code=code,
        member_id=member.id,
        issued_at=at,
        valid_from=valid_from,
        valid_until=valid_until,
        issued_reason=reason,
        reward_entry_id=paid.id if paid is not None else None,
    )
    session.add(coupon)
    batch.issued_count += 1
    session.flush()
    audit.record(
        session,
        actor,
        "coupon.issue",
        "coupon",
        coupon.code,
        after={
            "member": member.number,
            "batch_id": batch.id,
            "reason": reason,
            "paid_by_entry": coupon.reward_entry_id,
        },
    )
    return coupon


def _fresh_code(session: Session) -> str:
    while True:
        code = codes.one()
        if session.scalar(select(Coupon.id).where(Coupon.code == code)) is None:
            return code


@dataclass(frozen=True, slots=True)
class IssuePlan:
    """Who a mass issue reaches: the members (active, in the tiers and segment, under the
    per-member limit), and the batch's coupon count it was counted against. Confirming
    passes both back, so nothing is issued when the batch changed in between (a double
    submit included: the first issue changes the count)."""

    batch_id: int
    members: int
    tiers: list[str]
    region: str | None
    city: str | None
    issued_before: int
    segment: str | None = None  # the saved segment it was restricted to, named
    held_out: int = 0  # members left out: the batch's campaign holds them out


def _segment(
    session: Session,
    batch: Batch,
    tier_codes: list[str] | None,
    region: str | None,
    city: str | None,
    members_in: Select[int] | None = None,
) -> tuple[Select[int], list[str]]:
    """The query of member ids a mass issue reaches, and the tiers it means. A blank tier
    choice ("Every member", "Eligible tiers") means no choice; a chosen tier must exist and,
    when the batch is for some tiers only, be one of them. `members_in`, a query of member
    ids (a saved segment's, say), restricts it further."""
    for value, column, label in (
        (region, Member.region, N_("Region")),
        (city, Member.city, N_("City")),
    ):
        if value is not None:
            bounds.check_text(value, "batch.segment", bounds.length(column), label)
    for tier in tier_codes or []:
        bounds.check_text(tier, "batch.tiers", bounds.length(Tier.code), N_("A tier code"))
    chosen = list(dict.fromkeys(t.strip().lower() for t in tier_codes or [] if t.strip()))
    if chosen:
        unknown = set(chosen) - set(session.scalars(select(Tier.code)))
        if unknown:
            raise ValidationFailed(
                "batch.tiers", "Unknown tier %(tiers)s.", tiers=", ".join(sorted(unknown))
            )
        outside = [t for t in chosen if batch.eligible_tiers and t not in batch.eligible_tiers]
        if outside:
            raise ValidationFailed(
                "batch.tiers",
                "'%(batch)s' is for %(tiers)s members only, not %(outside)s.",
                batch=batch.name,
                tiers=", ".join(batch.eligible_tiers),
                outside=", ".join(outside),
            )
    tiers = chosen or list(batch.eligible_tiers)
    query = select(Member.id).where(Member.status == MemberStatus.ACTIVE)
    if tiers:
        query = query.join(Tier, Tier.id == Member.tier_id).where(Tier.code.in_(tiers))
    if region:
        query = query.where(Member.region == region)
    if city:
        query = query.where(Member.city == city)
    if members_in is not None:
        query = query.where(Member.id.in_(members_in))
    if batch.per_member_limit is not None:
        held = (
            select(Coupon.member_id)
            .where(Coupon.batch_id == batch.id, Coupon.member_id.is_not(None))
            .group_by(Coupon.member_id)
            .having(func.count() >= batch.per_member_limit)
        )
        query = query.where(Member.id.not_in(held))
    return query, tiers


def _without_held_out(
    session: Session, batch: Batch, query: Select[int]
) -> tuple[Select[int], Select[int] | None]:
    """`query` without the members the batch's campaign holds out, and the query of those
    it left out (None: the batch has no campaign, so nobody is held out)."""
    if batch.campaign_id is None:
        return query, None
    held = audiences.held_out_ids(session, batch.campaign_id)
    return query.where(Member.id.not_in(held)), query.where(Member.id.in_(held))


def _count(session: Session, query: Select[int] | None) -> int:
    if query is None:
        return 0
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _blank(value: str | None) -> str | None:
    return (value or "").strip() or None


def plan_issue(
    session: Session,
    actor: Actor,
    batch_id: int,
    *,
    tier_codes: list[str] | None = None,
    region: str | None = None,
    city: str | None = None,
    members_in: Select[int] | None = None,
    segment: str | None = None,
) -> IssuePlan:
    """How many members `issue_to_members` would reach now, for the confirmation step
    (nothing is written). Refuses what the issue would refuse (switched off, public code,
    over the batch's total limit). `members_in` restricts the members to a query of ids
    (a saved segment's, built by the caller), which `segment` names."""
    actor.require("admin", "marketer", doing=N_("issue coupons"))
    batch = session.get(Batch, batch_id) if 1 <= batch_id <= bounds.MAX_ID else None
    if batch is None:
        raise NotFound("batch.not_found", "No coupon batch %(id)s.", id=batch_id)
    region, city = _blank(region), _blank(city)
    query, tiers = _segment(session, batch, tier_codes, region, city, members_in)
    query, left_out = _without_held_out(session, batch, query)
    count = _count(session, query)
    _room(batch, count)
    return IssuePlan(
        batch.id,
        count,
        tiers,
        region,
        city,
        batch.issued_count,
        segment,
        held_out=_count(session, left_out),
    )


def issue_to_members(
    session: Session,
    actor: Actor,
    batch_id: int,
    *,
    tier_codes: list[str] | None = None,
    region: str | None = None,
    city: str | None = None,
    reason: str = "",
    at: datetime | None = None,
    expected: int | None = None,
    issued_before: int | None = None,
    members_in: Select[int] | None = None,
    segment: str | None = None,
) -> int:
    """Issue one coupon to every active member of a tier and/or segment (set-based).
    Members already holding their per-member limit of the batch are skipped, and so are
    members the batch's campaign holds out (counted in the audit row).

    With `expected` and `issued_before` (what `plan_issue` showed the person confirming),
    nothing is issued unless the batch still holds `issued_before` coupons and the segment
    counts at most `expected` members. `members_in` restricts the members to a query of ids
    (a saved segment's, built by the caller); `segment` names it in the audit row."""
    actor.require("admin", "marketer", doing=N_("issue coupons"))
    reason = _reason(reason)
    at = at or utcnow()
    region, city = _blank(region), _blank(city)
    batch = _lock_batch(session, batch_id)
    query, tiers = _segment(session, batch, tier_codes, region, city, members_in)
    query, left_out = _without_held_out(session, batch, query)
    if issued_before is not None and batch.issued_count != issued_before:
        raise Conflict(
            "batch.changed",
            "'%(batch)s' changed since you confirmed (%(change)s coupons were issued or "
            "generated meanwhile); nothing was issued. Check the numbers and confirm again.",
            batch=batch.name,
            change=f"{batch.issued_count - issued_before:+,}",
        )
    member_ids: list[int | None] = list(session.scalars(query.order_by(Member.id)))
    if expected is not None and len(member_ids) > expected:
        # Fewer is fine (someone left the segment); more would issue what nobody confirmed.
        raise Conflict(
            "batch.changed",
            "%(members)s members match now, more than the %(expected)s you confirmed; "
            "nothing was issued. Check the numbers and confirm again.",
            members=f"{len(member_ids):,}",
            expected=f"{expected:,}",
        )
    _room(batch, len(member_ids))
    valid_from, valid_until = _validity(batch, at)
    for start in range(0, len(member_ids), _CHUNK):
        _insert_codes(
            session,
            batch.id,
            member_ids[start : start + _CHUNK],
            at,
            valid_from,
            valid_until,
            reason or "issued",
        )
    batch.issued_count += len(member_ids)
    session.flush()
    audit.record(
        session,
        actor,
        "coupon_batch.issue",
        "coupon_batch",
        batch.id,
        after={"members": len(member_ids), "tiers": tiers, "region": region, "city": city}
        | ({"segment": segment} if segment is not None else {})
        | ({"held_out": _count(session, left_out)} if left_out is not None else {}),
    )
    return len(member_ids)


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """A batch's coupons by what happened to them: bearer codes generated, personal coupons
    issued to members, and redemptions (of either, or of the public code) not reversed."""

    generated: int = 0
    issued: int = 0
    redeemed: int = 0


def counts(session: Session, batch_ids: list[int] | None = None) -> dict[int, BatchCounts]:
    """`BatchCounts` per batch (every batch, or those given), two grouped queries."""
    held = select(
        Coupon.batch_id,
        func.count(Coupon.id).filter(Coupon.member_id.is_(None)),
        func.count(Coupon.id).filter(Coupon.member_id.is_not(None)),
    ).group_by(Coupon.batch_id)
    used = (
        select(Redemption.batch_id, func.count(Redemption.id))
        .where(Redemption.reversed_at.is_(None))
        .group_by(Redemption.batch_id)
    )
    if batch_ids is not None:
        held = held.where(Coupon.batch_id.in_(batch_ids))
        used = used.where(Redemption.batch_id.in_(batch_ids))
    found: dict[int, list[int]] = {}
    for batch_id, generated, issued in session.execute(held):
        found[batch_id] = [generated, issued, 0]
    for batch_id, redeemed in session.execute(used):
        found.setdefault(batch_id, [0, 0, 0])[2] = redeemed
    return {batch_id: BatchCounts(*values) for batch_id, values in found.items()}


def export_csv(session: Session, batch_id: int) -> Iterator[str]:
    """The batch's codes as CSV lines (streamed: a million rows never sit in memory), each
    cell through `safe_cell` so nothing in it opens as a spreadsheet formula."""
    head = io.StringIO()
    csv.writer(head).writerow(["code", "state", "member_number", "valid_from", "valid_until"])
    yield "\ufeff" + head.getvalue()
    query = (
        select(Coupon.code, Coupon.state, Member.number, Coupon.valid_from, Coupon.valid_until)
        .outerjoin(Member, Member.id == Coupon.member_id)
        .where(Coupon.batch_id == batch_id)
        .order_by(Coupon.id)
        .execution_options(yield_per=10_000)
    )
    for partition in session.execute(query).partitions():
        out = io.StringIO()
        writer = csv.writer(out)
        for code, state, number, start, end in partition:
            row = [
                code,
                state,
                number or "",
                start.isoformat() if start else "",
                end.isoformat() if end else "",
            ]
            writer.writerow([safe_cell(v) for v in row])
        yield out.getvalue()


@dataclass(frozen=True, slots=True)
class CouponRow:
    """A personal or bearer coupon as the rules see it."""

    id: int
    code: str
    state: str
    member_id: int | None
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class BatchRow:
    """A coupon batch as the rules see it."""

    id: int
    name: str
    kind: str
    value: Decimal
    currency: str
    max_discount: Decimal | None
    gift: str
    min_spend: Decimal
    valid_from: datetime | None
    valid_until: datetime | None
    total_limit: int | None
    per_member_limit: int | None
    eligible_tiers: list[str]
    public_code: str | None
    public_uses: int
    active: bool
    campaign_id: int | None


COUPON_COLUMNS = tuple(f.name for f in fields(CouponRow))
BATCH_COLUMNS = tuple(f.name for f in fields(BatchRow))


def coupon_row(coupon: Coupon) -> CouponRow:
    return CouponRow(*(getattr(coupon, name) for name in COUPON_COLUMNS))


def batch_row(batch: Batch) -> BatchRow:
    return BatchRow(*(getattr(batch, name) for name in BATCH_COLUMNS))


@dataclass(frozen=True, slots=True)
class Check:
    """What `check` found: usable or not, why, and the discount it would give. A refusal's
    `message` is the English of its `template` filled from `params` (`core.errors`), which
    `refusal()` raises so the staff pages can say it in the reader's language."""

    ok: bool
    code: str
    message: str
    discount: Decimal = Decimal(0)
    batch: BatchRow | None = None
    coupon: CouponRow | None = None
    template: str = ""
    params: Mapping[str, Any] = _field(default_factory=dict)

    def refusal(self) -> CouponRefused:
        """Why the code cannot be used, as the error to raise."""
        return CouponRefused(self.code, self.template, **self.params)


def _discount(batch: Batch | BatchRow, spend: Decimal) -> Decimal:
    if batch.kind == CouponKind.FIXED:
        value = min(batch.value, spend)
    elif batch.kind == CouponKind.PERCENT:
        value = spend * batch.value / 100
        if batch.max_discount is not None:
            value = min(value, batch.max_discount)
    else:
        value = Decimal(0)
    return value.quantize(Decimal(1).scaleb(-minor_units(batch.currency)), rounding=ROUND_HALF_UP)


def check(
    code: str,
    coupon: CouponRow | None,
    batch: BatchRow | None,
    *,
    member_id: int | None,
    tier_code: str | None,
    used: int = 0,
    spend: Decimal | None = None,
    currency: str | None = None,
    at: datetime,
) -> Check:
    """Can `code` be used at `at` by this member (of this tier; `used` times already, for a
    public code) on this spend? If not, say why. Pure: the callers load the rows."""
    if batch is None:
        unknown, params = N_("There is no coupon %(coupon)s."), {"coupon": code}
        return Check(False, "coupon.unknown", unknown % params, template=unknown, params=params)

    def no(reason: str, template: str, **params: Any) -> Check:
        message = template % params if params else template
        return Check(
            False, reason, message, batch=batch, coupon=coupon, template=template, params=params
        )

    if coupon is not None:
        if coupon.state == CouponState.REDEEMED:
            return no("coupon.used", N_("Coupon %(coupon)s was already used."), coupon=code)
        if coupon.state == CouponState.VOID:
            return no("coupon.void", N_("Coupon %(coupon)s was withdrawn."), coupon=code)
        if coupon.member_id is not None and member_id != coupon.member_id:
            return no(
                "coupon.not_yours", N_("Coupon %(coupon)s belongs to another member."), coupon=code
            )
        start, end = coupon.valid_from, coupon.valid_until
    else:
        start, end = batch.valid_from, batch.valid_until
    if not batch.active:
        return no("coupon.void", N_("The offer '%(batch)s' was withdrawn."), batch=batch.name)
    if (coupon is not None and coupon.state == CouponState.EXPIRED) or (end and at >= end):
        if end:
            return no(
                "coupon.expired",
                N_("Coupon %(coupon)s expired on %(day)s."),
                coupon=code,
                day=f"{end:%Y-%m-%d}",
            )
        return no("coupon.expired", N_("Coupon %(coupon)s expired."), coupon=code)
    if start and at < start:
        return no(
            "coupon.not_started",
            N_("Coupon %(coupon)s can be used from %(day)s."),
            coupon=code,
            day=f"{start:%Y-%m-%d}",
        )
    if batch.eligible_tiers and tier_code not in batch.eligible_tiers:
        return no(
            "coupon.tier",
            N_("'%(batch)s' is for %(tiers)s members."),
            batch=batch.name,
            tiers=", ".join(batch.eligible_tiers),
        )
    if coupon is None:
        if member_id is None and batch.per_member_limit is not None:
            return no("coupon.member_required", N_("This code needs a member."))
        if batch.total_limit is not None and batch.public_uses >= batch.total_limit:
            return no(
                "coupon.cap",
                N_("Code %(coupon)s has reached its limit of %(limit)s uses."),
                coupon=code,
                limit=f"{batch.total_limit:,}",
            )
        limit = batch.per_member_limit
        if member_id is not None and limit is not None and used >= limit:
            return no(
                "coupon.member_limit",
                N_("You have used code %(coupon)s as often as allowed."),
                coupon=code,
            )
    discount = Decimal(0)
    if spend is not None:
        if currency is not None and normalise_currency(currency) != batch.currency:
            return no(
                "coupon.currency",
                N_("Coupon %(coupon)s is for purchases in %(currency)s."),
                coupon=code,
                currency=batch.currency,
            )
        if spend < batch.min_spend:
            return no(
                "coupon.min_spend",
                N_("Coupon %(coupon)s needs a spend of %(least)s %(currency)s; this is %(spend)s."),
                coupon=code,
                least=f"{batch.min_spend:.2f}",
                currency=batch.currency,
                spend=f"{spend:.2f}",
            )
        discount = _discount(batch, spend)
    return Check(True, "ok", offer(batch), discount, batch, coupon)


def validate(
    session: Session,
    code: str,
    *,
    member: Member | None,
    spend: Decimal | None = None,
    currency: str | None = None,
    at: datetime | None = None,
) -> Check:
    """Can `code` be used now, by this member, on this spend? Loads what `check` needs."""
    at = at or utcnow()
    code = normalise_code(code)
    if spend is not None:
        bounds.check_amount(spend, "coupon.spend", label=N_("The spend"))
    coupon = session.scalar(select(Coupon).where(Coupon.code == code))
    batch = (
        session.get(Batch, coupon.batch_id)
        if coupon
        else session.scalar(select(Batch).where(Batch.public_code == code))
    )
    tier_code = None
    if member is not None and batch is not None and batch.eligible_tiers:
        tier_code = session.scalar(select(Tier.code).where(Tier.id == member.tier_id))
    used = 0
    if coupon is None and batch is not None and member is not None and batch.per_member_limit:
        used = (
            session.scalar(
                select(func.count(Redemption.id)).where(
                    Redemption.batch_id == batch.id,
                    Redemption.member_id == member.id,
                    Redemption.reversed_at.is_(None),
                )
            )
            or 0
        )
    return check(
        code,
        None if coupon is None else coupon_row(coupon),
        None if batch is None else batch_row(batch),
        member_id=member.id if member else None,
        tier_code=tier_code,
        used=used,
        spend=spend,
        currency=currency,
        at=at,
    )


def redeem(
    session: Session,
    actor: Actor,
    code: str,
    *,
    member: Member | None,
    key: str,
    spend: Decimal | None = None,
    currency: str | None = None,
    purchase_id: int | None = None,
    at: datetime | None = None,
) -> Redemption:
    """Use a code once. A retry with the same `key` returns the first redemption.

    Only the till (finance, admin) redeems. A redemption on its own (over the API, at a
    till) writes an audit row naming who; one on a purchase is the purchase's, which every
    path records the same way."""
    actor.require("admin", "finance", doing=N_("redeem coupons"))
    at = at or utcnow()
    earlier = session.scalar(select(Redemption).where(Redemption.idempotency_key == key))
    if earlier is not None:
        return earlier
    found = validate(session, code, member=member, spend=spend, currency=currency, at=at)
    if not found.ok or found.batch is None:
        raise found.refusal()
    batch_id, coupon = found.batch.id, found.coupon
    if coupon is not None:
        won = rowcount(
            session.execute(
                update(Coupon)
                .where(Coupon.id == coupon.id, Coupon.state == CouponState.ISSUED)
                .values(state=CouponState.REDEEMED, redeemed_at=at)
                .execution_options(synchronize_session=False)
            )
        )
        if won != 1:
            raise CouponRefused(
                "coupon.used", N_("Coupon %(coupon)s was already used."), coupon=coupon.code
            )
        held = session.identity_map.get(identity_key(Coupon, coupon.id))
        if held is not None:
            session.expire(held, ["state", "redeemed_at"])
    else:
        batch = _lock_batch(session, batch_id)
        if batch.total_limit is not None and batch.public_uses >= batch.total_limit:
            raise CouponRefused(
                "coupon.cap", N_("Code %(coupon)s has reached its limit."), coupon=code
            )
        batch.public_uses += 1
    redemption = Redemption(
        batch_id=batch_id,
        coupon_id=coupon.id if coupon else None,
        member_id=member.id if member else None,
        purchase_id=purchase_id,
        discount=found.discount,
        currency=found.batch.currency,
        redeemed_at=at,
        idempotency_key=key,
    )
    session.add(redemption)
    session.flush()
    if purchase_id is None:
        audit.record(
            session,
            actor,
            "coupon.redeem",
            "coupon",
            coupon.code if coupon else codes.normalise(code),
            after={
                "batch_id": batch_id,
                "member": member.number if member else None,
                "discount": str(found.discount),
                "currency": found.batch.currency,
            },
        )
    return redemption


def restore(session: Session, redemption: Redemption, *, at: datetime) -> bool:
    """Give back a coupon whose purchase was fully refunded, if it is still valid."""
    if redemption.reversed_at is not None:
        return False
    coupon = session.get(Coupon, redemption.coupon_id) if redemption.coupon_id else None
    if coupon is not None and coupon.valid_until is not None and coupon.valid_until <= at:
        return False
    redemption.reversed_at = at
    if coupon is not None:
        coupon.state = CouponState.ISSUED
        coupon.redeemed_at = None
    else:
        _lock_batch(session, redemption.batch_id).public_uses -= 1
    session.flush()
    return True


def expire_due(session: Session, at: datetime) -> int:
    """Mark coupons past their end as expired (the job); returns how many."""
    result = session.execute(
        update(Coupon)
        .where(Coupon.state == CouponState.ISSUED, Coupon.valid_until <= at)
        .values(state=CouponState.EXPIRED)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def wallet(session: Session, member_id: int) -> list[tuple[Coupon, Batch]]:
    rows = session.execute(
        select(Coupon, Batch)
        .join(Batch, Batch.id == Coupon.batch_id)
        .where(Coupon.member_id == member_id)
        .order_by(Coupon.state, Coupon.valid_until, Coupon.id)
    ).all()
    return [(c, b) for c, b in rows]


def void(session: Session, actor: Actor, coupon_id: int, reason: str) -> Coupon:
    actor.require("admin", "marketer", doing=N_("void coupons"))
    bounds.check_text(reason, "coupon.reason", NOTE_LENGTH, N_("The reason"))
    coupon = session.get(Coupon, coupon_id) if 1 <= coupon_id <= MAX_BIG else None
    if coupon is None:
        raise NotFound("coupon.not_found", "No coupon %(id)s.", id=coupon_id)
    if coupon.state != CouponState.ISSUED:
        raise Conflict(
            "coupon.state",
            "Coupon %(coupon)s is %(state)s; only issued ones can be voided.",
            coupon=coupon.code,
            state=Phrase(coupon.state),
        )
    coupon.state = CouponState.VOID
    session.flush()
    audit.record(
        session,
        actor,
        "coupon.void",
        "coupon",
        coupon.code,
        before={"state": "issued"},
        after={"state": "void", "reason": reason},
    )
    return coupon
