"""Who is calling the API: an integration's key (checked by scope) or a signed-in
staff member's browser session (checked by role, and by CSRF header on writes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from core.accounts import api_keys
from core.accounts.models import ApiKey, Role, User
from core.audit import Actor
from core.errors import NotAuthenticated, PermissionDenied
from web.csrf import verify_csrf
from web.deps import Db, client_ip, optional_user

bearer = HTTPBearer(auto_error=False, description="An API key created by an admin")


@dataclass(frozen=True, slots=True)
class Caller:
    actor: Actor
    key: ApiKey | None = None
    user: User | None = None


async def _caller(
    request: Request,
    db: Db,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    # The key or session lookup talks to the database: in a worker thread, never on the
    # event loop (a loop blocked waiting for a pooled connection stalls every request).
    caller = await run_in_threadpool(_identify, request, db, credentials)
    if caller.user is not None:
        await verify_csrf(request)  # a browser session: its writes need the CSRF token
    return caller


def _identify(
    request: Request, db: Session, credentials: HTTPAuthorizationCredentials | None
) -> Caller:
    if credentials is not None:
        key = api_keys.authenticate(db, credentials.credentials)
        db.commit()  # last-used time, before the business action's own transaction
        actor = Actor("api_key", f"API key {key.name}", api_key_id=key.id, ip=client_ip(request))
        return Caller(actor, key=key)
    user = optional_user(request, db)
    if user is None:
        raise NotAuthenticated(
            "auth.api_key_missing", "Send an API key in the header 'Authorization: Bearer <key>'."
        )
    roles = frozenset(r.value for r in user.roles)
    actor = Actor("user", user.email, user_id=user.id, ip=client_ip(request), roles=roles)
    return Caller(actor, user=user)


def require(*, scope: str, roles: tuple[Role, ...] = ()) -> Callable[..., object]:
    """An API key must hold `scope`; a staff session must hold one of `roles`
    (with no roles given, the route is for integrations only)."""
    if scope not in api_keys.SCOPES:
        raise ValueError(f"unknown scope {scope}")

    def dependency(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        if caller.key is not None:
            if scope not in caller.key.scopes:
                raise PermissionDenied("auth.scope", f"This API key lacks the scope '{scope}'.")
            # The admin granted this scope, so the key acts in the route's roles.
            actor = replace(caller.actor, roles=frozenset(r.value for r in roles))
            return replace(caller, actor=actor)
        if caller.user is not None and not (roles and caller.user.has_any(*roles)):
            raise PermissionDenied("auth.role", "Your role does not allow this.")
        return caller

    return dependency


AnyCaller = Annotated[Caller, Depends(_caller)]
