"""API: members, balances and ledgers, purchases and refunds, coupons, rewards, referrals.

Writes an integration may retry are idempotent: purchases and refunds by their
(source, external id); adjustments and redemptions by the `Idempotency-Key` header.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from sqlalchemy import select

from campaigns.models import Campaign, Channel
from core import bounds
from core.accounts.models import Role
from core.errors import NotFound, ValidationFailed
from core.timeutil import utcnow
from loyalty import coupons, ledger, members, purchases, referrals, rewards
from loyalty.models import MAX_BIG, Batch, EntryType, Member, Tier
from loyalty.schemas import (
    AdjustmentIn,
    BalanceOut,
    CouponCheckIn,
    CouponCheckOut,
    CouponOut,
    CouponUseOut,
    EarnedOut,
    EntryOut,
    LedgerPage,
    LotOut,
    MemberIn,
    MemberOut,
    MemberPatch,
    PurchaseIn,
    PurchaseOut,
    RedemptionOut,
    ReferralIn,
    ReferralOut,
    RefundIn,
    RefundOut,
    RewardRedeemedOut,
    StatusIn,
    TierChangeOut,
)
from web.api.auth import Caller, require
from web.api.responses import errors
from web.deps import AppSettings, Db

router = APIRouter(tags=["loyalty"])
STAFF = (Role.MARKETER, Role.FINANCE, Role.ADMIN)
Reader = Annotated[Caller, Depends(require(scope="members:read", roles=STAFF))]
Writer = Annotated[
    Caller, Depends(require(scope="members:write", roles=(Role.MARKETER, Role.ADMIN)))
]
Books = Annotated[Caller, Depends(require(scope="members:write", roles=(Role.FINANCE, Role.ADMIN)))]
Till = Annotated[
    Caller, Depends(require(scope="purchases:write", roles=(Role.FINANCE, Role.ADMIN)))
]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=100,
        description="A unique key per intended action; a retry with the same key is applied once",
    ),
]


# A member's number in an address; one that cannot be a member's is simply not found.
Number = Annotated[
    str,
    Path(
        max_length=bounds.length(Member.number),
        description="The member number",
        examples=["M00000042"],
    ),
]
RewardId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
BatchId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
EntryId = Annotated[int, Query(ge=1, le=MAX_BIG, description="From next_before_id")]
# Each route declares the error answers it can give beyond the router-wide ones: 400 (a body
# that is not JSON text), 404 (no member, reward, batch or purchase by that number or id),
# 409 (refused by the state of things: already used, not enough points, a key or an id
# reused, a closed member).


def member_out(db: Db, member: Member) -> MemberOut:
    tier = db.get(Tier, member.tier_id)
    return MemberOut.model_validate(
        {
            **{
                f: getattr(member, f)
                for f in MemberOut.model_fields
                if hasattr(member, f) and f not in ("tier", "tier_zh")
            },
            "tier": tier.name if tier else "",
            "tier_zh": tier.name_zh if tier else None,
        }
    )


def _member(db: Db, number: str) -> Member:
    return members.by_number(db, number)


def _optional_id(db: Db, model: type[Channel] | type[Campaign], code: str | None) -> int | None:
    if not code:
        return None
    column = model.code
    value = code.strip().lower() if model is Channel else code.strip().upper()
    found = db.scalar(select(model.id).where(column == value))
    if found is None:
        raise ValidationFailed("member.join", f"Unknown {model.__tablename__[:-1]} '{code}'.")
    return found


@router.post(
    "/members",
    response_model=MemberOut,
    status_code=201,
    summary="Sign up a member",
    responses=errors(400, 409),
)
def create_member(body: MemberIn, caller: Writer, db: Db, settings: AppSettings) -> MemberOut:
    profile = members.Profile(
        **body.model_dump(exclude={"join_channel", "join_campaign", "referral_code"}),
        join_channel_id=_optional_id(db, Channel, body.join_channel),
        join_campaign_id=_optional_id(db, Campaign, body.join_campaign),
    )
    member = members.create(
        db, caller.actor, profile, referral_code=body.referral_code, zone=settings.zone
    )
    db.commit()
    return member_out(db, member)


@router.get("/members", response_model=list[MemberOut], summary="Find members")
def search_members(
    caller: Reader,
    db: Db,
    q: Annotated[
        str,
        Query(
            max_length=bounds.MAX_SEARCH,
            description="Member number, phone, email or part of the name",
        ),
    ] = "",
) -> list[MemberOut]:
    return [member_out(db, m) for m in members.search(db, q)]


@router.get("/members/{number}", response_model=MemberOut, responses=errors(404))
def get_member(number: Number, caller: Reader, db: Db) -> MemberOut:
    return member_out(db, _member(db, number))


@router.patch(
    "/members/{number}",
    response_model=MemberOut,
    summary="Change a member's profile",
    responses=errors(400, 404, 409),
)
def update_member(number: Number, body: MemberPatch, caller: Writer, db: Db) -> MemberOut:
    member = members.update_profile(
        db, caller.actor, _member(db, number).id, **body.model_dump(exclude_unset=True)
    )
    db.commit()
    return member_out(db, member)


@router.get("/members/{number}/balance", response_model=BalanceOut, responses=errors(404))
def balance(number: Number, caller: Reader, db: Db) -> BalanceOut:
    member = _member(db, number)
    found = ledger.summary(db, member.id, utcnow())
    tier = db.get(Tier, member.tier_id)
    return BalanceOut(
        number=member.number,
        balance=member.balance,
        available=member.available,
        pending_points=member.pending_points,
        pending=[LotOut(points=p, date=when) for p, when in found.pending],
        expiring_30_days=found.expiring_30,
        expiring_90_days=found.expiring_90,
        redeem_blocked=member.available < 0,
        tier=tier.name if tier else "",
        tier_zh=tier.name_zh if tier else None,
    )


@router.get(
    "/members/{number}/ledger",
    response_model=LedgerPage,
    summary="Points history",
    responses=errors(404),
)
def ledger_page(
    number: Number,
    caller: Reader,
    db: Db,
    before_id: EntryId | None = None,
    type: Annotated[list[EntryType], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> LedgerPage:
    member = _member(db, number)
    rows = ledger.history(db, member.id, before_id=before_id, types=tuple(type), limit=limit)
    return LedgerPage(
        entries=[EntryOut.model_validate(r) for r in rows],
        next_before_id=rows[-1].id if len(rows) == limit else None,
    )


@router.post(
    "/members/{number}/adjustments",
    response_model=EntryOut,
    status_code=201,
    summary="Add or take away points by hand",
    responses=errors(400, 404, 409),
)
def adjust(
    number: Number,
    body: AdjustmentIn,
    caller: Books,
    db: Db,
    settings: AppSettings,
    key: IdempotencyKey,
) -> Any:
    entry = rewards.adjust(
        db,
        caller.actor,
        _member(db, number).id,
        body.points,
        reason=body.reason,
        key=key,
        at=utcnow(),
        zone=settings.zone,
    )
    db.commit()
    return entry


@router.get("/members/{number}/coupons", response_model=list[CouponOut], responses=errors(404))
def member_coupons(number: Number, caller: Reader, db: Db) -> list[CouponOut]:
    return [
        CouponOut(
            code=c.code,
            state=c.state,
            offer=coupons.offer(b),
            batch=b.name,
            batch_zh=b.name_zh,
            valid_from=c.valid_from,
            valid_until=c.valid_until,
            issued_reason=c.issued_reason,
        )
        for c, b in coupons.wallet(db, _member(db, number).id)
    ]


@router.post(
    "/members/{number}/rewards/{reward_id}/redeem",
    response_model=RewardRedeemedOut,
    status_code=201,
    summary="Spend points on a reward",
    responses=errors(404, 409),
)
def redeem_reward(
    number: Number, reward_id: RewardId, caller: Till, db: Db, key: IdempotencyKey
) -> RewardRedeemedOut:
    member = _member(db, number)
    done = rewards.redeem(db, caller.actor, member.id, reward_id, key=key, at=utcnow())
    db.commit()
    return RewardRedeemedOut(
        entry_id=done.entry.id,
        points=done.entry.points,
        coupon_code=done.coupon.code,
        replayed=done.replayed,
        balance=member.balance,
    )


@router.get("/members/{number}/referrals", response_model=list[ReferralOut], responses=errors(404))
def member_referrals(number: Number, caller: Reader, db: Db) -> list[ReferralOut]:
    return [
        ReferralOut(
            referee_number=m.number,
            referee_name=m.name,
            state=r.state,
            created_at=r.created_at,
            completes_at=r.completes_at,
            completed_at=r.completed_at,
            referrer_rewarded=r.referrer_rewarded,
            note=r.note,
        )
        for r, m in referrals.of_member(db, _member(db, number).id)
    ]


@router.post(
    "/referrals",
    status_code=201,
    summary="Attach a referral to a new member",
    responses=errors(400, 404, 409),
)
def attach_referral(body: ReferralIn, caller: Writer, db: Db) -> dict[str, Any]:
    referee = ledger.lock_member(db, _member(db, body.referee_number).id)
    referral = referrals.start(db, referee, body.referral_code, at=utcnow())
    db.commit()
    return {"referral_id": referral.id, "state": referral.state}


@router.post(
    "/purchases",
    response_model=PurchaseOut,
    summary="Post a purchase",
    responses=errors(400, 404, 409),
)
def post_purchase(body: PurchaseIn, caller: Till, db: Db, settings: AppSettings) -> PurchaseOut:
    member_id = _member(db, body.member_number).id if body.member_number else None
    data = purchases.PurchaseInput(
        source=body.source,
        external_id=body.external_id,
        occurred_at=body.occurred_at,
        amount=body.amount,
        currency=body.currency,
        member_id=member_id,
        discount=body.discount,
        channel=body.channel,
        store=body.store,
        campaign_code=body.campaign_code,
        coupon_codes=tuple(body.coupon_codes),
        lines=tuple(purchases.Line(**line.model_dump()) for line in body.lines),
    )
    outcome = purchases.record(
        db, caller.actor, data, base_currency=settings.base_currency, zone=settings.zone
    )
    db.commit()
    p = outcome.purchase
    move = outcome.tier_change
    return PurchaseOut(
        purchase_id=p.id,
        replayed=outcome.replayed,
        member_number=outcome.member.number if outcome.member else None,
        campaign_id=p.campaign_id,
        base_amount=p.base_amount,
        points=outcome.points,
        earned=[EarnedOut(points=e.points, reason=e.reason, rule=e.rule) for e in outcome.earned],
        pending_until=outcome.pending_until,
        coupons=[
            CouponUseOut(
                batch_id=r.batch_id,
                coupon_id=r.coupon_id,
                discount=r.discount,
                currency=r.currency,
            )
            for r in outcome.coupons
        ],
        tier_change=None
        if move is None
        else TierChangeOut(from_tier=move.from_tier, to_tier=move.to_tier, reason=move.reason),
        referral=outcome.referral,
        balance=outcome.balance,
        note=outcome.note,
    )


@router.post(
    "/refunds",
    response_model=RefundOut,
    summary="Post a refund",
    responses=errors(400, 404, 409),
)
def post_refund(body: RefundIn, caller: Till, db: Db, settings: AppSettings) -> RefundOut:
    outcome = purchases.refund(
        db,
        caller.actor,
        purchases.RefundInput(**body.model_dump()),
        base_currency=settings.base_currency,
        zone=settings.zone,
    )
    db.commit()
    return RefundOut(
        refund_id=outcome.refund.id,
        replayed=outcome.replayed,
        purchase_id=outcome.purchase.id,
        amount=outcome.refund.amount,
        purchase_state=outcome.purchase.state,
        points_reversed=outcome.points_reversed,
        coupon_restored=outcome.coupon_restored,
        referral_cancelled=outcome.referral_cancelled,
        balance=outcome.member.balance if outcome.member else None,
    )


def _check_member(db: Db, number: str | None) -> Member | None:
    return _member(db, number) if number else None


@router.post(
    "/coupons/validate",
    response_model=CouponCheckOut,
    summary="Can this code be used?",
    responses=errors(400, 404),
)
def validate_coupon(body: CouponCheckIn, caller: Till, db: Db) -> CouponCheckOut:
    check = coupons.validate(
        db,
        body.code,
        member=_check_member(db, body.member_number),
        spend=body.amount,
        currency=body.currency,
    )
    return CouponCheckOut(
        ok=check.ok,
        code=check.code,
        message=check.message,
        discount=check.discount,
        batch_id=check.batch.id if check.batch else None,
    )


@router.post(
    "/coupons/redeem",
    response_model=RedemptionOut,
    status_code=201,
    summary="Use a code once",
    responses=errors(400, 404, 409),
)
def redeem_coupon(body: CouponCheckIn, caller: Till, db: Db, key: IdempotencyKey) -> RedemptionOut:
    redemption = coupons.redeem(
        db,
        caller.actor,
        body.code,
        member=_check_member(db, body.member_number),
        key=f"api:{key}",
        spend=body.amount,
        currency=body.currency,
    )
    db.commit()
    return RedemptionOut(
        redemption_id=redemption.id,
        batch_id=redemption.batch_id,
        discount=redemption.discount,
        currency=redemption.currency,
    )


@router.get("/coupon-batches/{batch_id}", summary="A coupon batch", responses=errors(404))
def get_batch(batch_id: BatchId, caller: Reader, db: Db) -> dict[str, Any]:
    batch = db.get(Batch, batch_id)
    if batch is None:
        raise NotFound("batch.not_found", f"No coupon batch {batch_id}.")
    return {
        "id": batch.id,
        "offer": coupons.offer(batch),
        **coupons.describe(batch),
        # Kept apart: bearer codes generated, coupons issued to members, redemptions.
        **asdict(coupons.counts(db, [batch.id]).get(batch.id, coupons.BatchCounts())),
        "public_uses": batch.public_uses,
    }


@router.post(
    "/members/{number}/status",
    response_model=MemberOut,
    summary="Suspend or reinstate",
    responses=errors(400, 404, 409),
)
def member_status(number: Number, body: StatusIn, caller: Writer, db: Db) -> MemberOut:
    member = members.set_status(db, caller.actor, _member(db, number).id, body.status, body.reason)
    db.commit()
    return member_out(db, member)


@router.get("/reports/referrals", summary="Revenue from referred members, by referrer")
def referral_report(caller: Reader, db: Db) -> list[dict[str, Any]]:
    frame = referrals.revenue_by_referrer(db)
    return [
        {
            "referrer_number": number,
            "referrer_name": name,
            "referees": int(referees),
            "purchases": int(bought),
            "revenue": f"{revenue:.2f}",
        }
        for number, name, referees, bought, revenue in frame.itertuples(index=False)
    ]
