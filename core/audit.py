"""The audit log: who changed what, when, with before and after.

Every service that changes users, roles, keys, settings, money or points calls
`record` inside the same transaction as the change, so a change and its audit row
are committed together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base
from core.errors import PermissionDenied
from core.text import N_, Either, Phrase
from core.timeutil import UTCDateTime, utcnow

# The roles as a refusal names them, in the staff catalog ("Only finance or admin staff…").
ROLE_WORDS = {"admin": N_("admin"), "marketer": N_("marketer"), "finance": N_("finance")}
ActorKind = Literal["user", "api_key", "cli", "system", "member"]
ALL_ROLES = frozenset({"admin", "marketer", "finance"})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting. Services take one so the audit row can say who did it."""

    kind: ActorKind
    label: str
    user_id: int | None = None
    api_key_id: int | None = None
    ip: str | None = None
    # Staff roles held (admin, marketer, finance); domain services check them.
    roles: frozenset[str] = frozenset()

    @classmethod
    def cli(cls, label: str = "command line") -> Actor:
        # Whoever runs the command line operates the server: every role.
        return cls("cli", label, roles=ALL_ROLES)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls("system", label, roles=ALL_ROLES)

    @classmethod
    def member(cls, number: str, ip: str | None = None) -> Actor:
        """A member acting on their own account in the portal: no staff role."""
        return cls("member", f"member {number}", ip=ip)

    def require(self, *roles: str, doing: str) -> None:
        """Refuse unless the actor holds one of `roles`."""
        if not self.roles.intersection(roles):
            needed = Either(ROLE_WORDS.get(role, Phrase(role)) for role in roles)
            raise PermissionDenied(
                "auth.role", "Only %(roles)s staff can %(doing)s.", roles=needed, doing=doing
            )


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity_type", "entity_id"),
        Index("ix_audit_log_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_label: Mapped[str] = mapped_column(String(255))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))

    @property
    def subject(self) -> str:
        """What the row is about, as a person would name it (an email, a key's name)."""
        for snapshot in (self.after, self.before):
            for field in ("email", "name"):
                if snapshot and snapshot.get(field):
                    return str(snapshot[field])
        return f"{self.entity_type} {self.entity_id or ''}".strip()

    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for each field that changed; a creation lists every field."""
        before, after = self.before or {}, self.after or {}
        fields = list(dict.fromkeys([*before, *after]))
        return [
            (f, before.get(f), after.get(f))
            for f in fields
            if self.before is None or before.get(f) != after.get(f)
        ]


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        actor_kind=actor.kind,
        actor_label=actor.label,
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
        ip=actor.ip,
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None  # prefix, e.g. "user." or "apikey.revoke"
    actor: str | None = None  # substring of the actor label
    entity_type: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_entries(
    session: Session, filters: AuditFilter, *, before_id: int | None = None, limit: int = 50
) -> list[AuditEntry]:
    """Newest first, keyset-paginated by id so deep pages cost the same as the first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if filters.action:
        query = query.where(AuditEntry.action.startswith(filters.action, autoescape=True))
    if filters.actor:
        query = query.where(AuditEntry.actor_label.icontains(filters.actor, autoescape=True))
    if filters.entity_type:
        query = query.where(AuditEntry.entity_type == filters.entity_type)
    if filters.entity_id:
        query = query.where(AuditEntry.entity_id == filters.entity_id)
    if filters.since:
        query = query.where(AuditEntry.occurred_at >= filters.since)
    if filters.until:
        query = query.where(AuditEntry.occurred_at < filters.until)
    return list(session.scalars(query))


def distinct_actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
