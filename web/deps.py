"""Request-scoped dependencies: database session, settings, the signed-in staff user, roles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.accounts import sessions
from core.accounts.models import Role, User
from core.audit import Actor
from core.errors import NotAuthenticated, PermissionDenied
from core.settings import Settings
from core.text import N_, Either

SESSION_KEY = "sid"


@dataclass(frozen=True, slots=True)
class Viewer:
    """What the page frame shows of the signed-in staff member, as plain values: an error
    page can still be drawn after the failed request rolled back and closed its session."""

    id: int
    email: str
    name: str
    roles: frozenset[str]
    language: str | None = None

    @classmethod
    def of(cls, user: User) -> Viewer:
        roles = frozenset(r.value for r in user.roles)
        return cls(user.id, user.email, user.name, roles, user.language)


def get_db(request: Request) -> Iterator[Session]:
    """A session per request. Routes commit once per business action; nothing else commits.
    A request that fails rolls back at once, so a refused action holds no lock (a member's
    row, say) while its error is answered."""
    with request.app.state.session_factory() as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Db = Annotated[Session, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def optional_user(request: Request, db: Db) -> User | None:
    token = request.session.get(SESSION_KEY)
    user = sessions.resolve(db, token) if isinstance(token, str) else None
    if user is None and token is not None:
        request.session.pop(SESSION_KEY, None)  # expired or revoked: forget it
    request.state.user = Viewer.of(user) if user is not None else None
    return user


def require_roles(*roles: Role) -> Callable[[Request, User | None], User]:
    """A signed-in, active staff user holding at least one of `roles` (any role if none)."""

    def dependency(request: Request, user: Annotated[User | None, Depends(optional_user)]) -> User:
        if user is None:
            raise NotAuthenticated("auth.required", "Sign in to continue.")
        if roles and not user.has_any(*roles):
            needed = Either(N_(r.label) for r in roles)
            raise PermissionDenied("auth.role", "This page is for %(roles)s staff.", roles=needed)
        return user

    return dependency


StaffUser = Annotated[User, Depends(require_roles())]
AdminUser = Annotated[User, Depends(require_roles(Role.ADMIN))]


def actor_for(request: Request, user: User) -> Actor:
    roles = frozenset(r.value for r in user.roles)
    return Actor("user", user.email, user_id=user.id, ip=client_ip(request), roles=roles)
