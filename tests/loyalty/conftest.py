"""A small shop around the loyalty services: members, purchases at chosen times, jobs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import Actor
from loyalty import jobs, members, purchases
from loyalty import program as program_settings
from loyalty.models import LedgerEntry, Lot, LotState, Member
from loyalty.purchases import PurchaseInput, RefundInput
from tests.campaigns.conftest import staff  # noqa: F401 - a fixture loyalty tests use too

ZONE = ZoneInfo("Asia/Shanghai")
BASE = "CNY"
ACTOR = Actor.cli("test")
T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


class Shop:
    def __init__(self, db: Session) -> None:
        self.db = db
        self._ids = itertools.count(1)

    def program(self, **changes: object) -> None:
        program_settings.update(self.db, ACTOR, **changes)

    def join(
        self,
        name: str = "Li Lei",
        *,
        at: datetime = T0,
        referral: str | None = None,
        **profile: object,
    ) -> Member:
        n = next(self._ids)
        profile.setdefault("phone", f"1380000{n:04d}")
        return members.create(
            self.db,
            ACTOR,
            members.Profile(name=name, **profile),  # type: ignore[arg-type]
            referral_code=referral,
            zone=ZONE,
            at=at,
        )

    def buy(
        self,
        member: Member | None,
        amount: str,
        *,
        at: datetime = T0,
        ext: str | None = None,
        **extra: object,
    ) -> purchases.Outcome:
        data = PurchaseInput(
            source="pos",
            external_id=ext or f"P{next(self._ids)}",
            occurred_at=at,
            amount=Decimal(amount),
            currency=str(extra.pop("currency", BASE)),
            member_id=member.id if member else None,
            **extra,  # type: ignore[arg-type]
        )
        return purchases.record(self.db, ACTOR, data, base_currency=BASE, zone=ZONE)

    def refund(
        self, purchase_ext: str, amount: str | None, *, at: datetime = T0, ext: str | None = None
    ) -> purchases.RefundOutcome:
        data = RefundInput(
            source="pos",
            external_id=ext or f"R{next(self._ids)}",
            purchase_source="pos",
            purchase_external_id=purchase_ext,
            occurred_at=at,
            amount=None if amount is None else Decimal(amount),
        )
        return purchases.refund(self.db, ACTOR, data, base_currency=BASE, zone=ZONE)

    def jobs(self, at: datetime, *names: str) -> dict[str, dict[str, int]]:
        return {n: jobs.run(self.db, n, at, ZONE) for n in (names or jobs.JOBS)}

    def fresh(self, member: Member) -> Member:
        self.db.expire_all()
        found = self.db.get(Member, member.id)
        assert found is not None
        return found

    def entries(self, member: Member) -> list[tuple[str, int, str]]:
        rows = self.db.execute(
            select(LedgerEntry.type, LedgerEntry.points, LedgerEntry.reason)
            .where(LedgerEntry.member_id == member.id)
            .order_by(LedgerEntry.id)
        )
        return [(t, p, r) for t, p, r in rows]

    def check(self, member: Member) -> Member:
        """The ledger's invariants for one member; returns the fresh row."""
        m = self.fresh(member)
        total = self.db.scalar(
            select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                LedgerEntry.member_id == m.id
            )
        )
        lots = self.db.scalars(select(Lot).where(Lot.member_id == m.id)).all()
        assert m.balance == total, "stored balance = sum of entries"
        held = sum(
            lot.remaining for lot in lots if lot.state in (LotState.PENDING, LotState.ACTIVE)
        )
        assert m.balance == held - m.debt, "balance = lots held − debt"
        assert m.pending_points == sum(
            lot.remaining for lot in lots if lot.state == LotState.PENDING
        )
        assert all(0 <= lot.remaining <= lot.points for lot in lots)
        assert m.debt >= 0
        return m


@pytest.fixture
def shop(db: Session) -> Shop:
    return Shop(db)
