"""Staff actors and a campaign to hang receipts on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from campaigns import planning, receipts
from campaigns.models import Campaign
from campaigns.receipts import ReceiptInput
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


# Every role, for tests that only need a receipt in some state, not a role check.
ANYONE = Actor("user", "tester", roles=frozenset({"marketer", "finance", "admin"}))


def file_receipt(
    db: Session,
    campaign_id: int,
    amount: str,
    *,
    currency: str = "CNY",
    day: date = date(2026, 3, 5),
    steps: tuple[str, ...] = ("submit", "approve"),
    vendor: str = "Ads",
    category: str = "media",
) -> int:
    """A receipt moved through `steps` (default: submitted and approved); returns its id."""
    receipt = receipts.create(
        db,
        ANYONE,
        ReceiptInput(
            campaign_id=campaign_id,
            vendor=vendor,
            category=category,
            amount=Decimal(amount),
            currency=currency,
            expense_date=day,
        ),
    )
    for step in steps:
        receipts.transition(db, ANYONE, receipt.id, step, reason="test")
    return receipt.id
