"""My receipts: whoever enters receipts (marketers and finance) sees the ones they entered
or submitted, with status, amounts and dates, filtered by status; a CSV import lands there,
its receipts shown as the drafts they are."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import planning, receipts
from campaigns.models import Campaign, Receipt
from campaigns.receipts import ReceiptInput
from core.accounts.models import User
from core.audit import Actor
from tests.web.conftest import csrf_from, sign_in

ROW = re.compile(r'<td><a href="/receipts/(\d+)">#\1</a></td>')


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {
        "marketer": make_user("marketer@example.com", ("marketer",), "Mia"),
        "finance": make_user("finance@example.com", ("finance",), "Fei"),
        "admin": make_user("admin@example.com", ("admin",), "Ada"),
    }


@pytest.fixture
def campaign(db: Session, people: dict[str, User]) -> Campaign:
    made = planning.create(
        db, Actor.system(), code="SPRING26", name="Spring", channel="wechat",
        owner_id=people["marketer"].id, starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31),
        budget=Decimal(1000), currency="CNY",
    )  # fmt: skip
    db.commit()
    return made


def actor(user: User) -> Actor:
    return Actor("user", user.email, user_id=user.id, roles=frozenset(r.value for r in user.roles))


def enter(
    db: Session, user: User, campaign: Campaign, vendor: str, amount: str, **kw: object
) -> int:
    data = ReceiptInput(
        campaign.id, vendor, "media", Decimal(amount), str(kw.get("currency", "CNY")),
        date(2026, 3, 5),
    )  # fmt: skip
    return receipts.create(db, actor(user), data).id


def as_user(client: TestClient, email: str) -> str:
    client.cookies.clear()
    sign_in(client, email)
    return csrf_from(client, "/dashboard")


def listed(page: str) -> list[int]:
    return [int(i) for i in ROW.findall(page)]


def test_the_list_shows_what_i_entered_or_submitted_with_its_status(
    client: TestClient, people: dict[str, User], campaign: Campaign, db: Session
) -> None:
    mia, fei = people["marketer"], people["finance"]
    draft = enter(db, mia, campaign, "Draft shop", "1234.5")
    paid = enter(db, mia, campaign, "Paid shop", "99", currency="USD")
    receipts.transition(db, actor(mia), paid, "submit")
    receipts.transition(db, actor(fei), paid, "approve")
    receipts.pay(
        db, actor(fei), paid, paid_on=date(2026, 3, 20), payment_reference="TT-1",
        today=date(2026, 3, 21),
    )  # fmt: skip
    for_mia = enter(db, fei, campaign, "Entered by Fei", "10")  # Mia submits it
    receipts.transition(db, actor(mia), for_mia, "submit")
    feis = enter(db, fei, campaign, "Fei alone", "20")
    db.commit()

    as_user(client, "marketer@example.com")
    page = client.get("/receipts/mine")
    assert page.status_code == 200
    assert sorted(listed(page.text)) == sorted([draft, paid, for_mia])
    text = html.unescape(page.text)
    assert "1,234.50 CNY" in text and "99.00 USD" in text and "2026-03-20" in text
    assert '<span class="status status-paid">Paid</span>' in text
    assert "All (3)" in text and "Draft (1)" in text and "Submitted (1)" in text
    assert "Paid (1)" in text and "Rejected (0)" in text
    assert 'href="/receipts/mine" aria-current="page">My receipts</a>' in text  # in the nav

    only = client.get("/receipts/mine", params={"status": "submitted"}).text
    assert listed(only) == [for_mia]
    assert 'href="/receipts/mine?status=submitted" aria-current="page"' in only
    assert listed(client.get("/receipts/mine", params={"status": "rejected"}).text) == []
    assert client.get("/receipts/mine", params={"status": "lost"}).status_code == 422

    as_user(client, "finance@example.com")
    assert sorted(listed(client.get("/receipts/mine").text)) == sorted([for_mia, feis])


def test_only_people_who_enter_receipts_have_the_page(
    client: TestClient, people: dict[str, User]
) -> None:
    as_user(client, "admin@example.com")
    assert client.get("/receipts/mine").status_code == 403
    assert 'href="/receipts/mine"' not in client.get("/dashboard").text
    as_user(client, "finance@example.com")
    assert 'href="/receipts/mine"' in client.get("/dashboard").text


def test_the_list_pages_fifty_at_a_time_newest_first(
    client: TestClient, people: dict[str, User], campaign: Campaign, db: Session
) -> None:
    ids = [enter(db, people["marketer"], campaign, f"V{n}", str(n + 1)) for n in range(52)]
    db.commit()
    as_user(client, "marketer@example.com")
    first = client.get("/receipts/mine").text
    assert listed(first) == ids[::-1][:50] and 'href="/receipts/mine?page=2"' in first
    second = client.get("/receipts/mine", params={"page": 2}).text
    assert listed(second) == ids[::-1][50:] and "page=3" not in second


def test_an_import_says_its_receipts_are_drafts_and_links_to_them(
    client: TestClient, people: dict[str, User], campaign: Campaign, db: Session
) -> None:
    earlier = enter(db, people["marketer"], campaign, "Earlier draft", "5")
    db.commit()
    token = as_user(client, "marketer@example.com")
    assert "Imported receipts are drafts" in client.get("/imports").text
    csv = (
        "campaign_code,vendor,category,amount,currency,expense_date\n"
        "SPRING26,Ads one,media,100,CNY,2026-03-02\n"
        "SPRING26,Ads two,media,200,CNY,2026-03-03\n"
    )
    done = client.post(
        "/imports/receipts",
        data={"csrf_token": token},
        files={"file": ("march.csv", csv.encode(), "text/csv")},
    )
    assert done.status_code == 303
    imported = list(
        db.scalars(select(Receipt.id).where(Receipt.vendor.in_(["Ads one", "Ads two"])))
    )
    assert len(imported) == 2
    first, last = min(imported), max(imported)
    assert done.headers["location"] == f"/receipts/mine?status=draft&first={first}&last={last}"
    page = client.get(done.headers["location"]).text
    text = html.unescape(page)
    assert (
        "Imported 2 receipts from march.csv as drafts: they are not submitted yet. Check each "
        "and submit it for approval." in text
    )
    assert sorted(listed(page)) == sorted(imported) and earlier not in listed(page)
    assert f"Showing the 2 receipts of your import (receipts #{first} to #{last})." in text
    assert "2 of them are drafts: they are not submitted yet." in text
    assert {receipts.get(db, i).status for i in imported} == {"draft"}
    # The other statuses keep the import's range.
    assert f'href="/receipts/mine?status=submitted&amp;first={first}&amp;last={last}"' in page
