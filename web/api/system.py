"""API routes about the caller itself."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from web.api.auth import AnyCaller

router = APIRouter(tags=["system"])


class WhoAmI(BaseModel):
    kind: str
    name: str
    scopes: list[str] = []
    roles: list[str] = []
    last_used_at: datetime | None = None


@router.get("/me", response_model=WhoAmI, summary="Who the API sees you as")
def me(caller: AnyCaller) -> WhoAmI:
    if caller.key is not None:
        key = caller.key
        return WhoAmI(
            kind="api_key", name=key.name, scopes=key.scopes, last_used_at=key.last_used_at
        )
    assert caller.user is not None
    return WhoAmI(kind="user", name=caller.user.email, roles=sorted(caller.user.roles))
