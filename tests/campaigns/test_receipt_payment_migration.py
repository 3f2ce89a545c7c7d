"""Migration 0011: receipts paid before it get their payment day from when the payment was
recorded, in the configured zone (and no reference), on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns import planning, receipts
from campaigns.models import Receipt
from campaigns.receipts import ReceiptInput
from core import migrations
from core.accounts import users
from core.audit import Actor
from core.db import make_engine
from core.settings import get_settings
from tests.conftest import BACKENDS, fresh_database_url


@pytest.mark.parametrize("backend", BACKENDS)
def test_receipts_paid_before_get_their_day_in_the_configured_zone(
    request: pytest.FixtureRequest, backend: str
) -> None:
    recorded = datetime(2026, 3, 20, 17, 30, tzinfo=UTC)
    day = recorded.astimezone(get_settings().zone).date()
    if get_settings().timezone == "Asia/Shanghai":  # the default: UTC+8, no summer time
        assert day == date(2026, 3, 21)  # 01:30 on the 21st, not the 20th of UTC
    engine = make_engine(fresh_database_url(request, backend))
    try:
        migrations.upgrade(engine)
        anyone = Actor("user", "t", roles=frozenset({"marketer", "finance"}))
        with Session(engine) as session:
            owner = users.create(
                session, Actor.system(), email="o@example.com", name="O", roles=["marketer"],
                password="long-password-1",
            )  # fmt: skip
            campaign = planning.create(
                session, Actor.system(), code="M11", name="M", channel="wechat",
                owner_id=owner.id, starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31),
                budget=Decimal(100), currency="CNY",
            )  # fmt: skip
            ids = []
            for n in range(2):
                r = receipts.create(
                    session,
                    anyone,
                    ReceiptInput(
                        campaign.id, f"V{n}", "media", Decimal(5), "CNY", date(2026, 3, 2)
                    ),
                )
                ids.append(r.id)
            paid, unpaid = ids
            for step in ("submit", "approve", "pay"):
                receipts.transition(session, anyone, paid, step, today=date(2026, 3, 25))
            session.execute(update(Receipt).where(Receipt.id == paid).values(paid_at=recorded))
            session.commit()
        migrations.downgrade(engine, "20261201_0010")
        migrations.upgrade(engine)
        with Session(engine) as session:
            rows = session.execute(
                select(Receipt.id, Receipt.paid_on, Receipt.payment_reference).order_by(Receipt.id)
            ).all()
        assert [tuple(row) for row in rows] == [
            (paid, day, None),
            (unpaid, None, None),
        ]
    finally:
        engine.dispose()
