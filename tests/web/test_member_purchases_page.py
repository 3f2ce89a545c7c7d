"""The staff member page reads as staff looking at a member: the balance and "Li Lei's points
expiring", the ledger explained in the third person (the portal's rules, staff's words), and
the member's purchases with their amounts, refunds and points, and lifetime spend: net of
refunds, in the base currency, as booked (the expected figures are booked here by hand)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from campaigns import planning, rates
from core.accounts.models import User
from core.audit import Actor
from loyalty import members, purchases, rewards
from loyalty.models import Member
from loyalty.purchases import PurchaseInput, RefundInput
from tests.web.conftest import MEMBER_PASSWORD, member_sign_in, sign_in

ACTOR = Actor.cli("test")
ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
RATE = Decimal("7.1234")
CENT = Decimal("0.01")


def buy(db: Session, member: Member | None, ext: str, amount: str, **extra: object) -> None:
    data = PurchaseInput(
        source="pos",
        external_id=ext,
        occurred_at=T0 + timedelta(minutes=len(ext)),
        amount=Decimal(amount),
        currency=str(extra.pop("currency", "CNY")),
        member_id=member.id if member else None,
        **extra,  # type: ignore[arg-type]
    )
    purchases.record(db, ACTOR, data, base_currency="CNY", zone=ZONE)


def give_back(db: Session, ext: str, amount: str, n: int) -> None:
    data = RefundInput(
        source="pos",
        external_id=f"R-{ext}-{n}",
        purchase_source="pos",
        purchase_external_id=ext,
        occurred_at=T0 + timedelta(days=1, minutes=n),
        amount=Decimal(amount),
    )
    purchases.refund(db, ACTOR, data, base_currency="CNY", zone=ZONE)


def shopper(db: Session, make_member: Callable[..., Member], owner: User) -> Member:
    rates.set_rate(db, ACTOR, "USD", date(2026, 3, 1), RATE, "CNY")
    planning.create(
        db,
        ACTOR,
        code="SPRING26",
        name="Spring sale",
        channel="wechat",
        owner_id=owner.id,
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 3, 31),
        budget=Decimal(1000),
        currency="CNY",
    )
    member = make_member("li.lei@example.com", "Li Lei", phone="13800001234")
    buy(db, member, "C1", "100.00", campaign_code="SPRING26")
    buy(db, member, "U1-", "10.50", currency="USD")
    buy(
        db,
        members.create(
            db, ACTOR, members.Profile(name="Someone else", phone="13800009999"), zone=ZONE
        ),
        "X1",
        "999.00",
    )
    buy(db, None, "G1", "50.00")
    give_back(db, "C1", "30.00", 1)
    give_back(db, "U1-", "5.25", 1)
    rewards.adjust(db, ACTOR, member.id, 50, reason="Late delivery", key="adj-1", at=T0, zone=ZONE)
    db.commit()
    return member


def finance(make_user: Callable[..., User]) -> User:
    return make_user("fin@example.com", ("finance",))


def staff_page(client: TestClient, number: str) -> str:
    sign_in(client, "fin@example.com")
    page = client.get(f"/members/{number}")
    assert page.status_code == 200
    return page.text.split("<main", 1)[1].split("</main>")[0]


def row(page: str, ext: str) -> str:
    table = page.split('id="member-purchases"')[1].split("</table>")[0]
    return table.split(f"<code>{ext}</code>")[1].split("</tr>")[0]


def cells(html: str) -> list[str]:
    """The row's figures as read: tags dropped, spaces collapsed."""
    found = re.findall(r'<td class="num">(.*?)</td>', html, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in found]


def test_purchases_are_listed_with_their_amounts_and_lifetime_spend_as_booked(
    client: TestClient,
    db: Session,
    make_user: Callable[..., User],
    make_member: Callable[..., Member],
) -> None:
    member = shopper(db, make_member, finance(make_user))
    page = staff_page(client, member.number)
    u1 = (Decimal("10.50") * RATE).quantize(CENT, ROUND_HALF_UP)  # 74.7957 → 74.80
    u1_back = (u1 * Decimal("5.25") / Decimal("10.50")).quantize(CENT, ROUND_HALF_UP)
    lifetime = Decimal("100.00") - Decimal("30.00") + u1 - u1_back
    assert (u1, u1_back, lifetime) == (Decimal("74.80"), Decimal("37.40"), Decimal("107.40"))
    assert f'<dd id="lifetime-spend">{lifetime:,.2f} CNY</dd>' in page
    assert "2 purchases, net of refunds, as booked" in page
    # amount, booked, refunded (in its currency and as booked), net, points earned
    assert cells(row(page, "U1-"))[:4] == [
        "10.50 USD", "74.80 CNY", f"5.25 USD {u1_back} CNY 1 refund", f"{u1 - u1_back} CNY",
    ]  # fmt: skip
    assert cells(row(page, "C1"))[:4] == [
        "100.00 CNY",
        "100.00 CNY",
        "30.00 CNY 1 refund",
        "70.00 CNY",
    ]
    # 100 points for 100 CNY and the first-purchase bonus; 30% of them back on the refund.
    assert cells(row(page, "C1"))[4] == "300 90 taken back"
    # A point per whole CNY booked (74.80), half of them back with half the amount.
    assert cells(row(page, "U1-"))[4] == "74 37 taken back"
    assert "Partly refunded" in row(page, "C1")
    assert "<code>SPRING26</code>" in row(page, "C1") and "—" in row(page, "U1-")
    assert "X1" not in page and "G1" not in page  # other people's purchases


def test_the_page_speaks_of_the_member_in_the_third_person(
    client: TestClient,
    db: Session,
    make_user: Callable[..., User],
    make_member: Callable[..., Member],
) -> None:
    member = shopper(db, make_member, finance(make_user))
    page = staff_page(client, member.number)
    assert not re.search(r"\byour?\b", page, re.I), re.findall(r".{40}\byour?\b.{40}", page, re.I)
    assert "<dt>Balance</dt>" in page
    assert "<dt>Li Lei&#39;s points expiring in 30 days</dt>" in page
    assert "Reason (Li Lei sees it)" in page
    ledger = page.split('id="ledger-rows"')[1]
    for said in (
        "Points for a purchase",
        "First-purchase bonus",
        "Points taken back for a refund",
        "Welcome bonus",
        "Adjusted by staff: Late delivery",
        "Purchase C1 of CN¥100.00 on Mar 2, 2026",
    ):
        assert said in ledger, said
    assert "<td>Earned</td>" in ledger and "<td>Reversed</td>" in ledger
    assert "<td>Adjusted</td>" in ledger


def test_the_member_still_reads_their_own_words_in_the_portal(
    client: TestClient,
    db: Session,
    make_user: Callable[..., User],
    make_member: Callable[..., Member],
) -> None:
    member = shopper(db, make_member, make_user("fin@example.com", ("finance",)))
    member_sign_in(client, member.email or "", MEMBER_PASSWORD)
    history = client.get("/my/history").text
    assert "Points for your purchase" in history and "Adjustment: Late delivery" in history
