"""Assembles the portal. CSRF and "who is this member, in which language" sit on the router,
so no portal route can miss either."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from web.csrf import verify_csrf
from web.portal import account, api, pages, profile
from web.portal.deps import optional_member

router = APIRouter(
    dependencies=[Depends(optional_member), Depends(verify_csrf)], include_in_schema=False
)
for module in (account, pages, profile, api):
    router.include_router(module.router)
