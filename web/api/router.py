"""Assembles /api/v1 from each area's router."""

from __future__ import annotations

from fastapi import APIRouter

from web.api import attribution, campaigns, loyalty, system
from web.api.responses import COMMON

router = APIRouter(prefix="/api/v1", responses=COMMON)
router.include_router(system.router)
router.include_router(campaigns.router)
router.include_router(loyalty.router)
router.include_router(attribution.router)
