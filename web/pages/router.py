"""Assembles the HTML pages; the CSRF check sits on the router so no page can miss it."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from web.csrf import verify_csrf
from web.pages import (
    admin_audit,
    admin_keys,
    admin_outbox,
    admin_users,
    attribution,
    audience,
    auth,
    campaigns,
    channels,
    coupon_batches,
    dashboard,
    finance,
    liability,
    lift,
    members,
    program,
    receipts,
    reports,
    segments,
    value,
)

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)
for module in (
    auth,
    dashboard,
    campaigns,
    channels,
    receipts,
    finance,
    liability,
    reports,
    attribution,
    lift,
    value,
    audience,
    segments,
    members,
    program,
    coupon_batches,
    admin_users,
    admin_keys,
    admin_audit,
    admin_outbox,
):
    router.include_router(module.router)
