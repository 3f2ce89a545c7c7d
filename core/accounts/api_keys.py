"""Integration API keys: shown once, stored hashed, scoped, revocable."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, bounds
from core.accounts.models import ApiKey
from core.accounts.tokens import token_hash
from core.audit import Actor
from core.errors import NotAuthenticated, NotFound, ValidationFailed
from core.text import N_
from core.timeutil import utcnow

KEY_PREFIX = "rtn"
# What an integration may do. Domain issues add their scopes here as their routes land.
SCOPES: dict[str, str] = {
    "purchases:write": N_("Post purchases and refunds (POS, shop)"),
    "members:read": N_("Look up members and balances"),
    "members:write": N_("Create and update members (sign-ups)"),
    "touchpoints:write": N_("Post marketing touchpoints"),
    "attribution:read": N_("Read and run attribution models"),
    "segments:read": N_("Read saved segments and their members"),
    "segments:write": N_("Save segments"),
    "value:read": N_("Read customer value runs and members' scores"),
    "value:write": N_("Compute customer value runs"),
    "campaigns:read": N_("Read campaigns and reports"),
    "liability:read": N_("Read the points liability, its roll-forward and journal"),
    "campaigns:write": N_("Create campaigns"),
    "receipts:write": N_("Enter receipts and attachments"),
    "finance:write": N_("Approve and pay receipts, revenue, exchange rates"),
}
# Writing last-used on every call would turn each read into a write; a minute is enough.
TOUCH_INTERVAL = timedelta(minutes=1)


def snapshot(key: ApiKey) -> dict[str, Any]:
    return {"name": key.name, "prefix": key.prefix, "scopes": sorted(key.scopes)}


def parse_scopes(values: Iterable[str]) -> list[str]:
    scopes = sorted({v.strip() for v in values if v.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValidationFailed(
            "apikey.scope",
            "Unknown scope %(unknown)s; use %(known)s.",
            unknown=", ".join(unknown),
            known=", ".join(SCOPES),
        )
    if not scopes:
        raise ValidationFailed("apikey.scopes_empty", "Choose at least one scope.")
    return scopes


def create(
    session: Session, actor: Actor, *, name: str, scopes: Iterable[str]
) -> tuple[ApiKey, str]:
    """The new key row and the full key, which is never stored and never shown again."""
    name = name.strip()
    if not name:
        raise ValidationFailed("apikey.name", "Name the key after the system that will use it.")
    bounds.check_text(name, "apikey.name", bounds.length(ApiKey.name), label=N_("The name"))
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=token_hash(raw),
        scopes=parse_scopes(scopes),
        created_by_id=actor.user_id,
    )
    session.add(key)
    session.flush()
    audit.record(session, actor, "apikey.create", "api_key", key.id, after=snapshot(key))
    return key, raw


def authenticate(session: Session, raw: str) -> ApiKey:
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise NotAuthenticated("auth.api_key_invalid", "The API key is not valid.")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or not hmac.compare_digest(key.key_hash, token_hash(raw.strip())):
        raise NotAuthenticated("auth.api_key_invalid", "The API key is not valid.")
    if not key.is_active:
        raise NotAuthenticated("auth.api_key_revoked", "This API key has been revoked.")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_INTERVAL:
        key.last_used_at = now
    return key


def get(session: Session, key_id: int) -> ApiKey:
    # An id out of the column's range names no key (and must not reach the database).
    key = session.get(ApiKey, key_id) if 1 <= key_id <= bounds.MAX_ID else None
    if key is None:
        raise NotFound("apikey.not_found", "No API key with id %(id)s.", id=key_id)
    return key


def list_all(session: Session) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).order_by(ApiKey.revoked_at.isnot(None), ApiKey.id.desc()))
    )


def revoke(session: Session, actor: Actor, key_id: int) -> ApiKey:
    key = get(session, key_id)
    if key.revoked_at is None:
        before = snapshot(key) | {"revoked": False}
        key.revoked_at = utcnow()
        audit.record(
            session,
            actor,
            "apikey.revoke",
            "api_key",
            key.id,
            before=before,
            after=snapshot(key) | {"revoked": True},
        )
    return key
