"""Staff pages for members: search, a member's page (balance, ledger, tier history,
coupons, referrals) and manual points adjustments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from core import bounds
from core.accounts.models import Role, User
from core.errors import RetainError, ValidationFailed
from core.timeutil import utcnow
from loyalty import coupons, ledger, members, program, referrals, rewards
from loyalty.models import MAX_BIG, NOTE_LENGTH, Batch, EntryType, LedgerEntry, Tier, TierChange
from web.deps import AppSettings, Db, actor_for, require_roles
from web.forms import form_key
from web.rendering import flash, render

router = APIRouter(prefix="/members")
Staff = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER, Role.FINANCE))]
Books = Annotated[User, Depends(require_roles(Role.ADMIN, Role.FINANCE))]
Planner = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER))]


@router.get("")
def members_page(request: Request, user: Staff, db: Db, q: str = "") -> Response:
    status = 200
    try:
        found = members.search(db, q, limit=100)
    except ValidationFailed as exc:
        flash(request, exc.message, "error")
        found, q, status = [], "", 422
    tiers = {t.id: t.name for t in db.scalars(select(Tier))}
    return render(
        request,
        "loyalty/members.html",
        {"members": found, "q": q, "tiers": tiers, "max_search": bounds.MAX_SEARCH},
        status_code=status,
    )


@router.get("/{number}")
def member_page(
    request: Request,
    user: Staff,
    db: Db,
    number: str,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_BIG)] = None,
    type: str = "",
) -> Response:
    member = members.by_number(db, number)
    type = type if type in set(EntryType) else ""  # an unknown type shows every type
    types = (type,) if type else ()
    entries = ledger.history(db, member.id, before_id=before_id, types=types, limit=50)
    tiers = {t.id: t for t in db.scalars(select(Tier))}
    history = db.scalars(
        select(TierChange).where(TierChange.member_id == member.id).order_by(TierChange.id.desc())
    ).all()
    # "Load more" swaps its own row (#more-row) for the next rows and the next "Load more".
    headers = request.headers
    more_rows = headers.get("HX-Request") == "true" and headers.get("HX-Target") == "more-row"
    return render(
        request,
        "loyalty/member.html",
        {
            "member": member,
            "tier": tiers[member.tier_id],
            "tiers": tiers,
            "summary": ledger.summary(db, member.id, utcnow()),
            "entries": entries,
            "more": entries[-1].id if len(entries) == 50 else None,
            "type": type,
            "types": [t.value for t in EntryType],
            "history": history,
            "wallet": [(c, b, coupons.offer(b)) for c, b in coupons.wallet(db, member.id)],
            "referrals": referrals.of_member(db, member.id),
            "can_adjust": user.has_any(Role.ADMIN, Role.FINANCE),
            "can_plan": user.has_any(Role.ADMIN, Role.MARKETER),
            "batches": db.scalars(
                select(Batch).where(Batch.active, Batch.public_code.is_(None)).order_by(Batch.name)
            ).all(),
            "adjust_key": form_key(),
            "limits": {
                "adjustment": program.get(db).max_adjustment,
                "reason": bounds.length(LedgerEntry.reason),
                "note": NOTE_LENGTH,
            },
        },
        block="ledger_rows" if more_rows else None,
    )


@router.post("/{number}/adjust")
def adjust(
    request: Request,
    user: Books,
    db: Db,
    settings: AppSettings,
    number: str,
    points: Annotated[int, Form()],
    reason: Annotated[str, Form()] = "",
    key: Annotated[str, Form(max_length=rewards.KEY_LENGTH)] = "",
) -> Response:
    member = members.by_number(db, number)
    try:
        # The form carries a one-time key, so a double-click posts one adjustment.
        rewards.adjust(
            db,
            actor_for(request, user),
            member.id,
            points,
            reason=reason,
            key=f"page:{key or form_key()}",
            at=utcnow(),
            zone=settings.zone,
        )
    except RetainError as exc:
        db.rollback()
        flash(request, exc.message, "error")
    else:
        db.commit()
        flash(request, f"{points:+,} points for {member.name}: {reason.strip()}.")
    return RedirectResponse(f"/members/{member.number}", status_code=303)


@router.post("/{number}/coupons")
def give_coupon(
    request: Request, user: Planner, db: Db, number: str, batch_id: Annotated[int, Form()]
) -> Response:
    member = members.by_number(db, number)
    try:
        coupon = coupons.issue(
            db, actor_for(request, user), batch_id, member, reason="Given by staff", at=utcnow()
        )
    except RetainError as exc:
        db.rollback()
        flash(request, exc.message, "error")
    else:
        db.commit()
        flash(request, f"Coupon {coupon.code} given to {member.name}.")
    return RedirectResponse(f"/members/{member.number}", status_code=303)


@router.post("/{number}/status")
def change_status(
    request: Request,
    user: Planner,
    db: Db,
    number: str,
    status: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
) -> Response:
    member = members.by_number(db, number)
    try:
        members.set_status(db, actor_for(request, user), member.id, status, reason)
    except RetainError as exc:
        db.rollback()
        flash(request, exc.message, "error")
    else:
        db.commit()
        flash(request, f"{member.name} is now {status}.")
    return RedirectResponse(f"/members/{member.number}", status_code=303)
