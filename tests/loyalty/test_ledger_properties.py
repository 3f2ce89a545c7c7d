"""Random sequences of earn, redeem, refund, expire, adjust and job runs (hypothesis), with
the ledger's invariants checked after every step:

- the stored balance equals the sum of the member's entries (and the lots held less debt);
- no lot is below zero or above what it was earned with;
- pending points are never spent: every redeem draws only lots active at that moment.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty import ledger, purchases, rewards
from loyalty.models import EntryType, LedgerEntry, Lot, LotDraw
from tests.loyalty.conftest import ACTOR, T0, ZONE, Shop


def test_ledger_invariants_hold_for_random_sequences(engine: Engine) -> None:
    class Ledger(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.connection = engine.connect()
            self.outer = self.connection.begin()
            self.db = Session(bind=self.connection, join_transaction_mode="create_savepoint")
            self.shop = Shop(self.db)
            self.shop.program(expiry_policy="days_after_active", expiry_n=20)
            self.member = self.shop.join()
            self.now = T0
            self.sales: list[str] = []
            self.keys = 0

        def teardown(self) -> None:
            self.db.close()
            self.outer.rollback()
            self.connection.close()

        def _key(self) -> str:
            self.keys += 1
            return f"k{self.keys}"

        @rule(amount=st.integers(1, 600))
        def earn(self, amount: int) -> None:
            ext = self._key()
            self.shop.buy(self.member, f"{amount}.00", at=self.now, ext=ext)
            self.sales.append(ext)

        @rule(days=st.integers(0, 25))
        def time_passes(self, days: int) -> None:
            self.now += timedelta(days=days, hours=1)

        @rule()
        def jobs_run(self) -> None:
            self.shop.jobs(self.now, "unlock_pending", "expire_lots")

        @rule(points=st.integers(1, 400))
        def redeem(self, points: int) -> None:
            member = ledger.lock_member(self.db, self.member.id)
            try:
                with self.db.begin_nested():
                    ledger.debit(
                        self.db,
                        member,
                        ACTOR,
                        points,
                        type=EntryType.REDEEM,
                        reason="test",
                        rule="test",
                        key=self._key(),
                        at=self.now,
                    )
            except (ledger.InsufficientPoints, ledger.NegativeBalance):
                pass

        @rule(which=st.integers(0, 50), share=st.sampled_from(["0.25", "0.5", "1"]))
        def refund(self, which: int, share: str) -> None:
            if not self.sales:
                return
            ext = self.sales[which % len(self.sales)]
            sale = purchases.find(self.db, "pos", ext)
            assert sale is not None
            left = sale.amount - sale.refunded_amount
            if left <= 0:
                return
            amount = (left * Decimal(share)).quantize(Decimal("0.01"))
            if amount > 0:
                self.shop.refund(ext, str(amount), at=self.now)

        @rule(points=st.integers(-300, 300).filter(bool))
        def adjust(self, points: int) -> None:
            rewards.adjust(
                self.db,
                ACTOR,
                self.member.id,
                points,
                reason="correction",
                key=self._key(),
                at=self.now,
                zone=ZONE,
            )

        @invariant()
        def ledger_is_consistent(self) -> None:
            self.shop.check(self.member)
            # Pending points are never spent: no redeem drew a lot before it became active.
            spent_early = self.db.execute(
                select(LotDraw.id)
                .join(LedgerEntry, LedgerEntry.id == LotDraw.entry_id)
                .join(Lot, Lot.id == LotDraw.lot_id)
                .where(
                    LedgerEntry.type == EntryType.REDEEM, Lot.available_at > LedgerEntry.occurred_at
                )
            ).first()
            assert spent_early is None

    run_state_machine_as_test(
        Ledger,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
