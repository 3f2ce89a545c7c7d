"""A shop with campaigns and touchpoints: members buy (`Shop`), and see channels first."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from attribution import touchpoints
from attribution.touchpoints import TouchInput
from campaigns.models import Campaign
from core.audit import Actor
from loyalty.models import Member
from tests.campaigns.conftest import (
    Staff,
    make_campaign,
    staff,  # noqa: F401 - a fixture
)
from tests.loyalty.conftest import BASE, T0, ZONE, Shop

ACTOR = Actor.cli("test")
__all__ = ["ACTOR", "BASE", "T0", "ZONE", "World", "day"]


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class World(Shop):
    """`Shop` plus campaigns and touchpoints."""

    def __init__(self, db: Session, team: Staff) -> None:
        super().__init__(db)
        self.staff = team
        self._touch_ids = itertools.count(1)
        self.people: dict[str, Member] = {}

    def campaign(self, code: str, channel: str, **extra: object) -> Campaign:
        return make_campaign(self.db, self.staff, code=code, channel=channel, **extra)

    def touch(
        self,
        member: Member | None,
        channel: str,
        at: datetime,
        *,
        campaign: str | None = None,
        kind: str = "click",
        visitor: str | None = None,
        ext: str | None = None,
    ) -> int:
        outcome = touchpoints.record_batch(
            self.db,
            ACTOR,
            [
                TouchInput(
                    source="web",
                    external_id=ext or f"T{next(self._touch_ids)}",
                    channel=channel,
                    kind=kind,
                    occurred_at=at,
                    member_number=member.number if member else None,
                    visitor_id=visitor,
                    campaign_code=campaign,
                )
            ],
        )
        return outcome.touchpoints[0].id


@pytest.fixture
def world(db: Session, staff: Staff) -> World:  # noqa: F811 - the fixture above
    return World(db, staff)


@pytest.fixture
def zone() -> ZoneInfo:
    return ZONE
