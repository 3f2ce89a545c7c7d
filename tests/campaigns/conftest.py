"""Staff actors and a campaign to hang receipts on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from campaigns import planning
from campaigns.models import Campaign
from core.accounts import users
from core.audit import Actor


@dataclass
class Staff:
    marketer: Actor
    finance: Actor
    admin: Actor


@pytest.fixture
def staff(db: Session) -> Staff:
    actors = {}
    for role in ("marketer", "finance", "admin"):
        user = users.create(
            db,
            Actor.system(),
            email=f"{role}@example.com",
            name=role.title(),
            roles=[role],
            password="long-password-1",
        )
        actors[role] = Actor("user", user.email, user_id=user.id, roles=frozenset({role}))
    return Staff(**actors)


def make_campaign(db: Session, staff: Staff, code: str = "SPRING26", **extra: object) -> Campaign:
    fields: dict[str, object] = {
        "name": "Spring sale",
        "channel": "wechat",
        "owner_id": staff.marketer.user_id,
        "starts_on": date(2026, 3, 1),
        "ends_on": date(2026, 4, 30),
        "budget": Decimal("10000"),
        "currency": "CNY",
    }
    fields.update(extra)
    return planning.create(db, staff.marketer, code=code, **fields)  # type: ignore[arg-type]


@pytest.fixture
def campaign(db: Session, staff: Staff) -> Campaign:
    return make_campaign(db, staff)
