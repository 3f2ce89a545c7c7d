"""Assembles /api/v1 from each area's router."""

from __future__ import annotations

from fastapi import APIRouter

from web.api import (
    attribution,
    audience,
    campaigns,
    liability,
    lift,
    loyalty,
    segments,
    system,
    value,
)
from web.api.responses import COMMON

router = APIRouter(prefix="/api/v1", responses=COMMON)
router.include_router(system.router)
router.include_router(campaigns.router)
router.include_router(loyalty.router)
router.include_router(attribution.router)
router.include_router(lift.router)
router.include_router(liability.router)
router.include_router(segments.router)
router.include_router(audience.router)
router.include_router(value.router)
