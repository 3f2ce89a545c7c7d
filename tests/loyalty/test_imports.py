"""CSV import of purchases: every bad row reported by line, nothing half-imported, reruns
skip what is there, and the bulk path credits what the service would."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import rates
from loyalty import coupons, imports
from loyalty import program as program_settings
from loyalty.models import LedgerEntry, Lot, Member, Purchase
from tests.campaigns.conftest import Staff, make_campaign
from tests.loyalty.conftest import ACTOR, BASE, T0, ZONE, Shop


def factory(db: Session) -> Any:
    connection = db.connection()
    return lambda: Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


def lots(shop: Shop, member: Member) -> list[tuple[Any, ...]]:
    rows = shop.db.execute(
        select(Lot.points, Lot.state, Lot.available_at, Lot.expires_at)
        .where(Lot.member_id == member.id)
        .order_by(Lot.available_at, Lot.points)
    )
    return [tuple(r) for r in rows]


def csv_for(prefix: str, numbers: list[str]) -> bytes:
    a, b = numbers
    rows = [
        "source,external_id,occurred_at,amount,currency,member_number,campaign_code,channel",
        f"pos,{prefix}1,2026-03-02T10:00:00+08:00,120.50,CNY,{a},SPRING26,",
        f"pos,{prefix}2,2026-03-05 18:30,80,CNY,{a},,",  # local time, no campaign
        f"pos,{prefix}3,2026-03-20T09:00:00Z,10,USD,{a},,wechat",  # 3rd in 30 days: repeat
        f"pos,{prefix}4,2026-03-03T10:00:00+08:00,99.99,CNY,{b},SPRING26,",
        f"pos,{prefix}5,2026-03-04T10:00:00+08:00,45,CNY,,SPRING26,",  # a guest
    ]
    return ("\n".join(rows) + "\n").encode()


@pytest.mark.parametrize("policy", ["end_of_next_year", "end_of_month", "days_after_active"])
def test_bulk_path_credits_what_the_service_does(shop: Shop, staff: Staff, policy: str) -> None:
    shop.program(expiry_policy=policy, expiry_n=2)
    campaign = make_campaign(shop.db, staff)
    rates.set_rate(shop.db, staff.finance, "USD", campaign.starts_on, Decimal("7.1"), BASE)
    program_settings.save_rule(
        shop.db, ACTOR, name="Double points", campaign_id=campaign.id, multiplier=Decimal(2)
    )
    bulk = [shop.join(f"Bulk {n}") for n in range(2)]
    served = [shop.join(f"Row {n}") for n in range(2)]
    shop.db.flush()
    first = imports.import_purchases(
        factory(shop.db), ACTOR, csv_for("B", [m.number for m in bulk]), base=BASE, zone=ZONE
    )
    second = imports.import_purchases(
        factory(shop.db),
        ACTOR,
        csv_for("S", [m.number for m in served]),
        base=BASE,
        zone=ZONE,
        row_by_row=True,
    )
    assert (first.imported, second.imported, second.by_service) == (5, 5, 5)
    assert first.points == second.points > 0
    for a, b in zip(bulk, served, strict=True):
        assert shop.entries(a) == shop.entries(b)
        assert shop.check(a).balance == shop.check(b).balance
        assert shop.fresh(a).pending_points == shop.fresh(b).pending_points
        assert lots(shop, a) == lots(shop, b)
    rules = [e[2] for e in shop.entries(bulk[0])]
    assert "Double points — Spring sale" in rules and any("Repeat bonus" in r for r in rules)
    # 10 USD at 7.1 = 71.00 CNY: 71 points.
    usd = shop.db.scalar(select(Purchase).where(Purchase.external_id == "B3"))
    assert usd is not None and usd.base_amount == Decimal("71.0000")


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(shop: Shop) -> None:
    member = shop.join()
    data = (
        "source,external_id,occurred_at,amount,member_number\n"
        f"pos,A1,2026-03-02T10:00:00+08:00,10,{member.number}\n"
        "pos,A2,yesterday,10,\n"
        "pos,A3,2026-03-02T10:00:00+08:00,-5,\n"
        "pos,A1,2026-03-02T10:00:00+08:00,10,\n"
        "pos,A5,2026-03-02T10:00:00+08:00,10,M99999999\n"
    ).encode()
    with pytest.raises(imports.ImportFailed) as failed:
        imports.import_purchases(factory(shop.db), ACTOR, data, base=BASE, zone=ZONE)
    assert [(e["line"], e["message"].split(" ")[0]) for e in failed.value.details] == [
        (3, "occurred_at"),
        (4, "amount"),
        (5, "the"),
        (6, "unknown"),
    ]
    assert shop.db.scalar(select(func.count(Purchase.id))) == 0


def test_a_rerun_skips_what_was_imported(shop: Shop) -> None:
    member = shop.join()
    data = (
        "source,external_id,occurred_at,amount,member_number\n"
        f"pos,A1,2026-03-02T10:00:00+08:00,10,{member.number}\n"
        f"pos,A2,2026-03-03T10:00:00+08:00,20,{member.number}\n"
    ).encode()
    progress: list[int] = []

    def run(d: bytes, row_by_row: bool = False) -> imports.ImportReport:
        return imports.import_purchases(
            factory(shop.db),
            ACTOR,
            d,
            base=BASE,
            zone=ZONE,
            row_by_row=row_by_row,
            progress=progress.append,
        )

    # Through the service first: the bulk path's fingerprints must match the service's.
    assert run(data, row_by_row=True).imported == 2 and progress == [1, 1]
    again = run(data)
    assert (again.imported, again.skipped) == (0, 2)
    changed = data.replace(b",20,", b",25,")
    with pytest.raises(imports.ImportFailed, match="problem"):
        run(changed)
    assert shop.check(shop.fresh(member)).balance == 100 + 10 + 20 + 200
    assert isinstance(shop.db.get(Member, member.id), Member)


def test_bulk_fingerprints_match_the_service_for_awkward_text(shop: Shop) -> None:
    """Quotes, Chinese and microseconds: the bulk path's fingerprint is the service's."""
    member = shop.join()
    data = (
        "source,external_id,occurred_at,amount,member_number,store\n"
        f'pos,"Q""1",2026-03-02T10:00:00.123456+08:00,10.50,{member.number},静安店\n'
    ).encode()
    frame = imports.read(data, ZONE, shop.db, BASE)
    row = next(frame.itertuples(index=False))
    assert imports._fingerprints(frame).iloc[0] == imports._input(row).fingerprint()


def test_a_file_applies_in_time_order_whatever_its_row_order(shop: Shop) -> None:
    """Three purchases, newest first in the file, all inside the repeat window: the file is
    applied in time order, so the oldest earns the first-purchase bonus and the newest the
    repeat bonus, through the bulk path and row by row alike."""
    members = [shop.join(f"Order {n}") for n in range(2)]
    shop.db.flush()

    def file(member: Member, tag: str) -> bytes:
        rows = ["source,external_id,occurred_at,amount,member_number"] + [
            f"pos,{tag}{day},2026-03-0{day}T10:00:00+08:00,150.00,{member.number}"
            for day in (3, 2, 1)
        ]
        return ("\n".join(rows) + "\n").encode()

    for member, tag, row_by_row in ((members[0], "B", False), (members[1], "S", True)):
        report = imports.import_purchases(
            factory(shop.db),
            ACTOR,
            file(member, tag),
            base=BASE,
            zone=ZONE,
            row_by_row=row_by_row,
        )
        assert report.points == 3 * 150 + 200 + 300
    bulk, served = (shop.entries(m) for m in members)
    assert bulk == served
    rules = shop.db.execute(
        select(Purchase.external_id, LedgerEntry.rule)
        .join(Purchase, Purchase.id == LedgerEntry.source_id)
        .where(LedgerEntry.member_id == members[0].id, LedgerEntry.source_type == "purchase")
        .order_by(Purchase.occurred_at, LedgerEntry.id)
    ).all()
    assert [tuple(r) for r in rules] == [
        ("B1", "base"),
        ("B1", "first_purchase"),
        ("B2", "base"),
        ("B3", "base"),
        ("B3", "repeat_purchase"),
    ]


def test_a_row_the_service_refuses_is_reported_and_the_rest_imported(shop: Shop) -> None:
    """Two rows use one single-use coupon: the earlier (in time) is imported with it, the
    later refused by line and reason; rows after it still go in, as if posted one by one."""
    member = shop.join("Coupon holder")
    batch = coupons.create_batch(
        shop.db,
        ACTOR,
        name="Five off",
        kind="fixed",
        currency=BASE,
        value=Decimal(5),
        valid_days=400,
    )
    code = coupons.issue(shop.db, ACTOR, batch.id, member, reason="Test", at=T0).code
    shop.db.flush()
    data = (
        "source,external_id,occurred_at,amount,member_number,coupon_codes\n"
        f"pos,C2,2026-03-04T10:00:00+08:00,50,{member.number},{code}\n"
        f"pos,C1,2026-03-03T10:00:00+08:00,40,{member.number},{code}\n"
        f"pos,C3,2026-03-05T10:00:00+08:00,30,{member.number},\n"
    ).encode()
    report = imports.import_purchases(factory(shop.db), ACTOR, data, base=BASE, zone=ZONE)
    assert report.imported == 2
    assert [(r["line"], r["external_id"], r["code"]) for r in report.refused] == [
        (2, "C2", "coupon.used")
    ]
    stored = shop.db.scalars(select(Purchase.external_id).order_by(Purchase.occurred_at))
    assert list(stored) == ["C1", "C3"]
