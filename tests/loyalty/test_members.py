"""Members: contact rules, uniqueness, search, referrals' guards, and an append-only ledger."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from core.errors import Conflict, ValidationFailed
from loyalty import members
from loyalty.models import LedgerEntry
from tests.loyalty.conftest import Shop


def test_a_member_needs_a_name_and_a_contact_each_unique(shop: Shop) -> None:
    with pytest.raises(ValidationFailed, match="phone number or an email"):
        shop.join(phone=None)
    first = shop.join(phone="+86 138-0000-9999", email="Han@Example.com")
    assert (first.phone, first.email) == ("+8613800009999", "han@example.com")
    assert first.number == f"M{first.id:08d}"
    with pytest.raises(Conflict, match=first.number):
        shop.join(phone=None, email="han@example.com")
    with pytest.raises(ValidationFailed):
        shop.join(phone="12")


def test_search_by_number_phone_email_or_name(shop: Shop) -> None:
    han = shop.join("Han Meimei", email="han@example.com")
    shop.join("Li Lei")
    assert [m.id for m in members.search(shop.db, han.number.lower())] == [han.id]
    assert [m.id for m in members.search(shop.db, "HAN@example.com")] == [han.id]
    assert [m.id for m in members.search(shop.db, "meimei")] == [han.id]
    assert [m.id for m in members.search(shop.db, han.phone or "")] == [han.id]


def test_search_by_part_of_a_phone(shop: Shop) -> None:
    han = shop.join("Han Meimei", phone="13812345678")
    li = shop.join("Li Lei", phone="13987655678")
    assert [m.id for m in members.search(shop.db, "5678")] == [han.id, li.id]  # last four
    assert [m.id for m in members.search(shop.db, "138 1234")] == [han.id]  # spaced, middle
    assert [m.id for m in members.search(shop.db, "+86 139-8765")] == []  # no +86 stored
    assert members.search(shop.db, "567") == []  # fewer than four digits: no phone search
    assert members.search(shop.db, "%5678") == []  # not digits: a name search, escaped


def test_referral_guards(shop: Shop) -> None:
    referrer = shop.join("A", email="a.b+x@example.com", phone=None)
    with pytest.raises(ValidationFailed, match="themselves"):
        shop.join("A again", email="ab@example.com", phone=None, referral=referrer.referral_code)
    with pytest.raises(ValidationFailed, match="not valid"):
        shop.join("B", referral="NOSUCHCODE")


def test_the_ledger_refuses_updates_and_deletes(shop: Shop) -> None:
    member = shop.join()
    for statement in (
        update(LedgerEntry).where(LedgerEntry.member_id == member.id).values(points=1_000_000),
        delete(LedgerEntry).where(LedgerEntry.member_id == member.id),
    ):
        with pytest.raises(DBAPIError, match="append-only"), shop.db.begin_nested():
            shop.db.execute(statement)
    assert shop.check(member).balance == 100
