"""Demo data: deterministic and idempotent, refused outside demo mode.

Each domain issue extends `load` with its own data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from core.accounts import users
from core.audit import Actor
from core.errors import PermissionDenied
from core.settings import Settings
from web import (
    demo_attribution,
    demo_campaigns,
    demo_liability,
    demo_lift,
    demo_loyalty,
    demo_value,
)

DEMO_PASSWORD = "retain-demo"  # noqa: S105 - a published demo password, demo mode only
DEMO_STAFF = (
    ("admin@demo.retain", "Ada Admin", ("admin",)),
    ("marketer@demo.retain", "Mei Marketer", ("marketer",)),
    ("finance@demo.retain", "Fang Finance", ("finance",)),
)


@dataclass
class DemoResult:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    campaigns: int = 0
    members: int = 0


def load(session: Session, settings: Settings, today: date | None = None) -> DemoResult:
    if not settings.demo_mode:
        raise PermissionDenied(
            "demo.disabled", "Demo data is only for demo mode (RETAIN_DEMO=true, not production)."
        )
    actor = Actor.cli("retain demo")
    result = DemoResult()
    for email, name, roles in DEMO_STAFF:
        if users.find_by_email(session, email) is not None:
            result.existing.append(email)
            continue
        users.create(session, actor, email=email, name=name, roles=roles, password=DEMO_PASSWORD)
        result.created.append(email)
    session.flush()
    today = today or datetime.now(settings.zone).date()
    result.campaigns = demo_campaigns.load(session, today)
    result.members = demo_loyalty.load(session, today, settings.zone, settings.base_currency)
    demo_liability.load(session, today, settings.zone, settings.base_currency)
    demo_lift.load(session, today, settings.zone, settings.base_currency)
    demo_value.load(session, today, settings.zone, settings.base_currency)
    # Last: the touchpoints are derived from every coupon and purchase the others made, so
    # the stored attribution runs cover all of the demo's data.
    demo_attribution.load(session, today, settings.zone, settings.base_currency)
    if result.campaigns:
        demo_campaigns.close_old_months(session, today)
    return result
