"""The member's own data as JSON (/my/api), for the portal's scripts and a future app.
Same session and the same rule as the pages: only the signed-in member's rows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from core.timeutil import utcnow
from loyalty import coupons, ledger
from loyalty.models import Batch, Coupon, name_in
from web.deps import Db
from web.portal.deps import CurrentMember
from web.portal.explain import lines
from web.portal.pages import PAGE, CouponId, EntryId, _cursor, offer, own_coupon

router = APIRouter(prefix="/my/api")


@router.get("/summary")
def summary(db: Db, member: CurrentMember) -> dict[str, Any]:
    now = utcnow()
    soon = ledger.summary(db, member.id, now)
    return {
        "number": member.number,
        "balance": member.balance,
        "available": member.available,
        "pending": [{"points": p, "available_at": at.isoformat()} for p, at in soon.pending],
        "expiring_30_days": soon.expiring_30,
        "expiring_90_days": soon.expiring_90,
    }


@router.get("/entries")
def entries(
    request: Request, db: Db, member: CurrentMember, before: EntryId | None = None
) -> dict[str, Any]:
    found = ledger.history(db, member.id, before_id=_cursor(db, member, before), limit=PAGE + 1)
    page = found[:PAGE]
    return {
        "entries": [
            {
                "id": line.entry.id,
                "at": line.entry.occurred_at.isoformat(),
                "type": line.entry.type,
                "points": line.entry.points,
                "balance_after": line.entry.balance_after,
                "explanation": line.what,
                "about": line.about,
            }
            for line in lines(db, request.state.fmt, page)
        ],
        "next_before": page[-1].id if len(found) > PAGE and page else None,
    }


def _coupon(request: Request, coupon: Coupon, batch: Batch) -> dict[str, Any]:
    return {
        "id": coupon.id,
        "code": coupon.code,
        "name": name_in(batch, request.state.fmt.language),
        "state": coupon.state,
        "offer": offer(request.state.fmt, batch),
        "valid_until": coupon.valid_until.isoformat() if coupon.valid_until else None,
    }


@router.get("/coupons")
def wallet(request: Request, db: Db, member: CurrentMember) -> dict[str, Any]:
    return {"coupons": [_coupon(request, c, b) for c, b in coupons.wallet(db, member.id)]}


@router.get("/coupons/{coupon_id}")
def coupon(request: Request, db: Db, member: CurrentMember, coupon_id: CouponId) -> dict[str, Any]:
    return _coupon(request, *own_coupon(db, member, coupon_id))
