"""Real threads against PostgreSQL: double spending, double redemption, double posting.

Each thread has its own connection and transaction, like concurrent API requests; a
barrier releases them together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core import migrations
from core.db import make_engine, make_session_factory
from core.errors import RetainError
from core.outbox import OutboxMessage
from loyalty import accounts, coupons, imports, jobs, members, purchases, rewards
from loyalty.models import Coupon, LedgerEntry, Member, Purchase, Refund, TokenPurpose
from tests.conftest import fresh_database_url
from tests.loyalty.conftest import ACTOR, BASE, T0, ZONE, Shop
from tests.loyalty.test_rewards import make_reward


@pytest.fixture(scope="module")
def factory(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fresh_database_url(request, "postgresql"), pool_size=60, max_overflow=0)
    migrations.upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def together(count: int, work: Callable[[Session, int], Any]) -> list[Any]:
    """Run `work` in `count` threads released at once; each commits or rolls back."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int, factory: sessionmaker[Session]) -> None:
        with factory() as session:
            barrier.wait()
            try:
                with session.begin():
                    results[i] = work(session, i)
            except RetainError as exc:
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i, _factory)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


_factory: sessionmaker[Session]


@pytest.fixture(autouse=True)
def _bind(factory: sessionmaker[Session]) -> None:
    global _factory
    _factory = factory


def setup(factory: sessionmaker[Session], make: Callable[[Shop], Any]) -> Any:
    with factory() as session, session.begin():
        return make(Shop(session))


def test_fifty_redemptions_against_a_balance_for_ten(factory: sessionmaker[Session]) -> None:
    def make(shop: Shop) -> tuple[int, int]:
        member = shop.join(phone="13911110001")  # 100 sign-up points
        rewards.adjust(
            shop.db, ACTOR, member.id, 900, reason="seed", key="seed-50", at=T0, zone=ZONE
        )
        return member.id, make_reward(shop, cost=100).id

    member_id, reward_id = setup(factory, make)
    results = together(
        50,
        lambda s, i: rewards.redeem(s, ACTOR, member_id, reward_id, key=f"r{i}", at=T0),
    )
    assert sum(isinstance(r, rewards.Redeemed) for r in results) == 10
    assert all(isinstance(r, rewards.Redeemed) or r.code == "points.insufficient" for r in results)
    with factory() as session:
        member = session.get(Member, member_id)
        assert member is not None and member.balance == 0
        lowest = session.scalar(
            select(func.min(LedgerEntry.balance_after)).where(LedgerEntry.member_id == member_id)
        )
        assert lowest == 0
        issued = session.scalar(select(func.count(Coupon.id)).where(Coupon.member_id == member_id))
        assert issued == 10


def test_twenty_redemptions_of_one_single_use_code(factory: sessionmaker[Session]) -> None:
    def make(shop: Shop) -> str:
        batch = coupons.create_batch(
            shop.db,
            ACTOR,
            name="Once",
            kind="fixed",
            value=Decimal(5),
            currency="CNY",
            valid_days=10,
        )
        coupons.generate(shop.db, ACTOR, batch.id, 1)
        code = shop.db.scalar(select(Coupon.code).where(Coupon.batch_id == batch.id))
        assert code is not None
        return code

    code = setup(factory, make)
    results = together(
        20,
        lambda s, i: coupons.redeem(s, ACTOR, code, member=None, key=f"once-{code}-{i}", at=T0),
    )
    assert sum(not isinstance(r, RetainError) for r in results) == 1
    assert {r.code for r in results if isinstance(r, RetainError)} == {"coupon.used"}


@pytest.mark.parametrize("guest", [False, True], ids=["member", "guest"])
def test_one_purchase_posted_twenty_times_at_once(
    factory: sessionmaker[Session], guest: bool
) -> None:
    phone = "13911110003" if guest else "13911110002"
    member_id = None if guest else setup(factory, lambda shop: shop.join(phone=phone).id)
    ext = f"SAME-{phone}"
    data = purchases.PurchaseInput(
        source="pos",
        external_id=ext,
        occurred_at=T0,
        amount=Decimal("88.00"),
        currency="CNY",
        member_id=member_id,
    )
    results = together(
        20, lambda s, i: purchases.record(s, ACTOR, data, base_currency=BASE, zone=ZONE)
    )
    assert all(isinstance(r, purchases.Outcome) for r in results), results
    assert sum(not r.replayed for r in results) == 1
    with factory() as session:
        ids = session.scalars(select(Purchase.id).where(Purchase.external_id == ext)).all()
        assert len(ids) == 1
        entries = session.scalars(
            select(LedgerEntry.points).where(
                LedgerEntry.source_type == "purchase", LedgerEntry.source_id == ids[0]
            )
        ).all()
        # 88 base + 200 first purchase, once; a guest earns nothing.
        assert sorted(entries) == ([] if guest else [88, 200])
        if not guest:
            assert all(r.points == 288 for r in results)


def test_the_same_refund_twice_is_applied_once(factory: sessionmaker[Session]) -> None:
    def make(shop: Shop) -> int:
        member = shop.join(phone="13911110004")
        shop.buy(member, "100.00", ext="REFUND-ME")
        return member.id

    member_id = setup(factory, make)
    data = purchases.RefundInput(
        source="pos",
        external_id="RF-1",
        purchase_source="pos",
        purchase_external_id="REFUND-ME",
        occurred_at=T0 + timedelta(days=1),
        amount=Decimal("40.00"),
    )
    results = together(
        2, lambda s, i: purchases.refund(s, ACTOR, data, base_currency=BASE, zone=ZONE)
    )
    assert sorted(r.replayed for r in results) == [False, True]
    with factory() as session:
        assert (
            session.scalar(select(func.count(Refund.id)).where(Refund.external_id == "RF-1")) == 1
        )
        purchase = purchases.find(session, "pos", "REFUND-ME")
        assert purchase is not None and purchase.refunded_amount == Decimal("40.00")
        # 300 earned (100 + 200 first purchase) × 40% = 120 reversed, once.
        member = session.get(Member, member_id)
        assert member is not None and member.balance == 100 + 300 - 120


def test_the_nightly_jobs_run_twice_at_once_do_the_work_once(
    factory: sessionmaker[Session],
) -> None:
    def make(shop: Shop) -> list[int]:
        people = [shop.join(phone=f"1391111{n:04d}") for n in range(5, 25)]
        for n, member in enumerate(people):
            shop.buy(member, f"{50 + n}.00", ext=f"NIGHT-{n}")
        return [m.id for m in people]

    ids = setup(factory, make)
    # Far enough ahead that every lot has unlocked and expired (end of the next year).
    later = T0 + timedelta(days=800)
    results = together(2, lambda s, i: jobs.run_due(_factory, later, ZONE))
    assert all(isinstance(r, dict) for r in results), results
    with factory() as session:
        expired = session.scalars(
            select(LedgerEntry.points).where(
                LedgerEntry.member_id.in_(ids), LedgerEntry.type == "expire"
            )
        ).all()
        # One expire entry per lot (sign-up and purchase), never two.
        assert len(expired) == 2 * len(ids)
        for member_id in ids:
            member = session.get(Member, member_id)
            assert member is not None and (member.balance, member.pending_points) == (0, 0)


def test_a_bulk_import_loads_chunks_in_parallel(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two groups of members with the same purchases: one loaded two chunks at a time,
    the other one chunk at a time. Their ledgers must come out the same."""
    groups = setup(
        factory,
        lambda shop: [
            [shop.join(phone=f"139222{g}{n:04d}").number for n in range(12)] for g in (1, 2)
        ],
    )
    monkeypatch.setattr(imports, "CHUNK", 5)  # many small chunks

    def load(numbers: list[str], tag: str, workers: int) -> None:
        rows = ["source,external_id,occurred_at,amount,member_number"] + [
            f"par,{tag}{i},2026-03-{1 + i % 20:02d}T10:00:00+08:00,{10 + i}.00,{numbers[i % 12]}"
            for i in range(60)
        ]
        data = ("\n".join(rows) + "\n").encode()
        report = imports.import_purchases(
            factory, ACTOR, data, base=BASE, zone=ZONE, workers=workers
        )
        assert report.imported == 60

    load(groups[0], "P", workers=2)
    load(groups[1], "Q", workers=1)
    with factory() as session:
        for a, b in zip(*groups, strict=True):
            ledgers = []
            for number in (a, b):
                member = session.scalars(select(Member).where(Member.number == number)).one()
                entries = session.execute(
                    select(LedgerEntry.points, LedgerEntry.rule)
                    .where(LedgerEntry.member_id == member.id)
                    .order_by(LedgerEntry.occurred_at, LedgerEntry.rule)
                ).all()
                assert member.balance == sum(p for p, _ in entries)
                ledgers.append([tuple(e) for e in entries])
            assert ledgers[0] == ledgers[1]


def test_one_activation_link_clicked_twice_at_once_sets_one_password(
    factory: sessionmaker[Session],
) -> None:
    def make(shop: Shop) -> str:
        accounts.sign_up(
            shop.db,
            members.Profile(name="Race Twice", email="race-twice@example.com"),
            referral_code=None,
            language=None,
            base_url="https://shop.example",
            zone=ZONE,
        )
        body = shop.db.scalar(
            select(OutboxMessage.body).where(OutboxMessage.recipient == "race-twice@example.com")
        )
        assert body is not None
        return body.split("/my/activate/")[1].split()[0]

    token = setup(factory, make)
    results = together(
        2,
        lambda s, i: accounts.use_link(
            s, token, TokenPurpose.ACTIVATE, f"password-number-{i}", None
        ),
    )
    assert sum(isinstance(r, RetainError) for r in results) == 1
