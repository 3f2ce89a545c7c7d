"""Demo customer value: two stored value runs, a quarter apart, so the pyramid, RFM and
loyalty-type pages show a movement between them."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import runs
from analytics.models import ValueRun
from core.audit import Actor

SERVICE_COST = Decimal(12)  # a year's statements, card and service desk per member


def load(session: Session, today: date, zone: ZoneInfo, base: str) -> int:
    """Store the runs unless some run exists; the number of runs stored."""
    if session.scalar(select(ValueRun.id).limit(1)) is not None:
        return 0
    actor = Actor.cli("retain demo")
    for as_of in (today - timedelta(days=92), today - timedelta(days=1)):
        params = runs.ValueParams(as_of=as_of, yearly_service_cost=SERVICE_COST)
        runs.run(session, actor, params, base=base, zone=zone)
    return 2
