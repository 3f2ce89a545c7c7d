"""The member's pages: home, history, coupons, rewards and referrals. Every query is bound to
the signed-in member; an id that is not theirs is "not found", never "forbidden", so a
probe learns nothing about other members."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import segno
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape
from sqlalchemy import func, select

from core import bounds
from core.accounts import throttle
from core.audit import Actor
from core.errors import NotFound, RetainError
from core.timeutil import utcnow
from loyalty import coupons, ledger, referrals, rewards, tiers
from loyalty.models import (
    MAX_BIG,
    Batch,
    Coupon,
    CouponKind,
    CouponState,
    LedgerEntry,
    Member,
    Reward,
    name_in,
)
from web.deps import AppSettings, Db, client_ip
from web.forms import form_key
from web.i18n import Formatter
from web.portal.deps import CurrentMember
from web.portal.explain import TYPES, lines
from web.portal.messages import say
from web.portal.rendering import flash, render

router = APIRouter()
PAGE = 25
# Ids in the portal's addresses, bounded by their columns: a number beyond them is no id.
EntryId = Annotated[int, Query(ge=1, le=MAX_BIG, description="An entry of the member's")]
CouponId = Annotated[int, Path(ge=1, le=MAX_BIG)]
RewardId = Annotated[int, Path(ge=1, le=bounds.MAX_ID)]
REDEEM_LIMIT, REDEEM_MINUTES = 10, 10


@router.get("/my")
def home(request: Request, db: Db, settings: AppSettings, member: CurrentMember) -> Response:
    now = utcnow()
    summary = ledger.summary(db, member.id, now)
    standing = tiers.progress(db, member, now, settings.base_currency)
    share = None
    if standing.next_tier is not None and standing.next_tier.threshold > 0:
        share = min(standing.value, standing.next_tier.threshold)
    recent = ledger.history(db, member.id, limit=5)
    fmt: Formatter = request.state.fmt
    return render(
        request,
        "portal/home.html",
        {
            # The member card: the till scans the number to credit a purchase.
            "card_qr": qr_svg(
                member.number,
                fmt.gettext("QR code of member number %(number)s") % {"number": member.number},
            ),
            "summary": summary,
            "standing": standing,
            "bar": share,
            "recent": lines(db, request.state.fmt, recent),
            # Counted, not loaded: the same test as "ready to use" in the wallet.
            "active_coupons": db.scalar(
                select(func.count(Coupon.id)).where(
                    Coupon.member_id == member.id,
                    Coupon.state == CouponState.ISSUED,
                    (Coupon.valid_until.is_(None)) | (Coupon.valid_until > now),
                )
            ),
        },
    )


def _cursor(db: Db, member: Member, before: int | None) -> int | None:
    """A "load more" cursor must be one of the member's own entries."""
    if before is None:
        return None
    entry = db.get(LedgerEntry, before)
    if entry is None or entry.member_id != member.id:
        raise NotFound("entry.not_found", "No such entry.")
    return before


@router.get("/my/history")
def history(
    request: Request,
    db: Db,
    member: CurrentMember,
    type: str = "",
    before: EntryId | None = None,
) -> Response:
    types = (type,) if type in TYPES else ()
    entries = ledger.history(
        db, member.id, before_id=_cursor(db, member, before), types=types, limit=PAGE + 1
    )
    more = len(entries) > PAGE
    entries = entries[:PAGE]
    context = {
        "rows": lines(db, request.state.fmt, entries),
        "more": entries[-1].id if more and entries else None,
        "type": type if types else "",
        "types": TYPES,
        "first_page": before is None,
    }
    # "Load more" (htmx) swaps in just the next rows and the next button.
    block = "rows" if request.headers.get("HX-Request") and before is not None else None
    return render(request, "portal/history.html", context, block=block)


def offer(fmt: Formatter, batch: Batch) -> str:
    """The coupon's value and conditions, in the member's language and number format."""
    if batch.kind == CouponKind.PERCENT:
        text = fmt.gettext("%(percent)s%% off") % {"percent": f"{batch.value.normalize():f}"}
        if batch.max_discount is not None:
            text += fmt.gettext(" (up to %(amount)s)") % {
                "amount": fmt.money(batch.max_discount, batch.currency)
            }
    elif batch.kind == CouponKind.FIXED:
        text = fmt.gettext("%(amount)s off") % {"amount": fmt.money(batch.value, batch.currency)}
    else:
        text = fmt.gettext("Gift: %(gift)s") % {"gift": batch.gift}
    if batch.min_spend:
        text += fmt.gettext(", on a purchase of %(amount)s or more") % {
            "amount": fmt.money(batch.min_spend, batch.currency)
        }
    return text


def _qr_label(fmt: Formatter, code: str) -> str:
    return fmt.gettext("QR code of coupon %(code)s") % {"code": code}


def qr_svg(code: str, label: str) -> Markup:
    """`code` as a QR image for a scanner, drawn here (no external service). `label` is its
    text alternative: what the image holds, read out by a screen reader."""
    svg = segno.make(code, error="m", micro=False).svg_inline(
        dark="#111827", light="#ffffff", omitsize=True
    )
    named = f'<svg role="img" aria-label="{escape(label)}"' + svg.removeprefix("<svg")
    return Markup(named)  # noqa: S704  (segno's own markup and an escaped label)


@router.get("/my/coupons")
def wallet(request: Request, db: Db, member: CurrentMember) -> Response:
    fmt: Formatter = request.state.fmt
    now = utcnow()
    groups: dict[str, list[dict[str, object]]] = {"active": [], "used": [], "expired": []}
    for coupon, batch in coupons.wallet(db, member.id):
        usable = coupon.state == CouponState.ISSUED and (
            coupon.valid_until is None or coupon.valid_until > now
        )
        group = (
            "active" if usable else "used" if coupon.state == CouponState.REDEEMED else "expired"
        )
        groups[group].append(
            {
                "coupon": coupon,
                "offer": offer(fmt, batch),
                "name": name_in(batch, fmt.language),
                "qr": qr_svg(coupon.code, _qr_label(fmt, coupon.code)) if usable else None,
                "soon": usable
                and coupon.valid_until is not None
                and coupon.valid_until <= now + timedelta(days=7),
            }
        )
    return render(request, "portal/coupons.html", {"groups": groups})


def own_coupon(db: Db, member: Member, coupon_id: int) -> tuple[Coupon, Batch]:
    """One of the member's coupons; anyone else's is "not found"."""
    row = db.execute(
        select(Coupon, Batch)
        .join(Batch, Batch.id == Coupon.batch_id)
        .where(Coupon.id == coupon_id, Coupon.member_id == member.id)
    ).first()
    if row is None:
        raise NotFound("coupon.not_found", "No such coupon.")
    return row[0], row[1]


@router.get("/my/coupons/{coupon_id}")
def coupon_detail(request: Request, db: Db, member: CurrentMember, coupon_id: CouponId) -> Response:
    coupon, batch = own_coupon(db, member, coupon_id)
    return render(
        request,
        "portal/coupon.html",
        {
            "coupon": coupon,
            "offer": offer(request.state.fmt, batch),
            "name": name_in(batch, request.state.fmt.language),
            "qr": qr_svg(coupon.code, _qr_label(request.state.fmt, coupon.code))
            if coupon.state == CouponState.ISSUED
            else None,
        },
    )


def _reward(db: Db, member: Member, reward_id: int) -> Reward:
    for reward in rewards.catalog(db, member):
        if reward.id == reward_id:
            return reward
    raise NotFound("reward.not_found", "This reward is not in your catalog.")


@router.get("/my/rewards")
def catalog(request: Request, db: Db, member: CurrentMember) -> Response:
    items = rewards.catalog(db, member)
    batches = {
        b.id: b for b in db.scalars(select(Batch).where(Batch.id.in_({r.batch_id for r in items})))
    }
    fmt: Formatter = request.state.fmt
    return render(
        request,
        "portal/rewards.html",
        {"items": [(r, offer(fmt, batches[r.batch_id])) for r in items]},
    )


def _redeemed(db: Db, member: Member, reward: Reward, key: str) -> Coupon | None:
    """The coupon a redemption of `reward` under this form `key` gave, if it was already
    submitted (the ledger key `rewards.redeem` writes: the member's own, so another member's
    key finds nothing)."""
    done = rewards.earlier(db, member.id, key)
    if done is None or (done.entry.source_type, done.entry.source_id) != ("reward", reward.id):
        return None
    return done.coupon


@router.get("/my/rewards/{reward_id}")
def confirm(
    request: Request,
    db: Db,
    member: CurrentMember,
    reward_id: RewardId,
    key: str = "",
) -> Response:
    """The confirm step: what it costs and what is left afterwards.

    The form's one-time key goes into the page's address too (`controls.js` replaces it),
    so going Back to this page after redeeming shows the same key: the page then says it
    was redeemed, and submitting it again (from a page kept open) replays the first answer.
    A fresh visit from the catalog gets a fresh key."""
    reward = _reward(db, member, reward_id)
    batch = db.get(Batch, reward.batch_id)
    assert batch is not None
    if not key.strip() or bounds.text_problem(key, rewards.KEY_LENGTH):
        key = form_key()
    return render(
        request,
        "portal/reward_confirm.html",
        {
            "reward": reward,
            "offer": offer(request.state.fmt, batch),
            "key": key,
            "redeemed": _redeemed(db, member, reward, key),
        },
    )


@router.post("/my/rewards/{reward_id}")
def redeem(
    request: Request,
    db: Db,
    member: CurrentMember,
    reward_id: RewardId,
    key: Annotated[str, Form(max_length=rewards.KEY_LENGTH)] = "",
) -> Response:
    reward = _reward(db, member, reward_id)
    fmt: Formatter = request.state.fmt
    try:
        throttle.limit(
            db,
            f"redeem:{member.id}",
            utcnow(),
            REDEEM_LIMIT,
            REDEEM_MINUTES,
            "Too many redemptions in a short time.",
        )
        done = rewards.redeem(
            db,
            Actor.member(member.number, client_ip(request)),
            member.id,
            reward.id,
            key=key or form_key(),
            at=utcnow(),
        )
    except RetainError as exc:
        db.rollback()
        batch = db.get(Batch, reward.batch_id)
        assert batch is not None
        context = {
            "reward": reward,
            "offer": offer(fmt, batch),
            "key": form_key(),
            "error": say(fmt, exc),
        }
        return render(request, "portal/reward_confirm.html", context, status_code=409)
    db.commit()
    if not done.replayed:
        flash(request, fmt.gettext("Done! Your coupon is in your wallet."))
    return RedirectResponse(f"/my/coupons/{done.coupon.id}", status_code=303)


@router.get("/my/referrals")
def referral_page(
    request: Request, db: Db, settings: AppSettings, member: CurrentMember
) -> Response:
    link = f"{settings.link_base(str(request.base_url))}/join/{member.referral_code}"
    made = referrals.of_member(db, member.id)
    earned = list(
        db.scalars(
            select(LedgerEntry)
            .where(
                LedgerEntry.member_id == member.id,
                LedgerEntry.rule == "referral_referrer",
            )
            .order_by(LedgerEntry.id.desc())
        )
    )
    # When the program rewards referrers with coupons instead of points.
    coupons_earned = db.scalar(
        select(func.count(Coupon.id)).where(
            Coupon.member_id == member.id, Coupon.issued_reason.startswith("Referral reward")
        )
    )
    fmt: Formatter = request.state.fmt
    return render(
        request,
        "portal/referrals.html",
        {
            "link": link,
            "link_qr": qr_svg(link, fmt.gettext("QR code of your invitation link")),
            # Referees are shown by first letter only: a member's friends list is not
            # a way to read other members' names.
            "made": [(r, m.name[:1] + "…") for r, m in made],
            "earned_points": sum(e.points for e in earned),
            "earned_coupons": coupons_earned or 0,
            "share": request.state.fmt.gettext(
                "Join me at Retain and we both get a reward: %(link)s"
            )
            % {"link": link},
        },
    )
