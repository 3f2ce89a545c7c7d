"""The reward confirmation carries a one-time key that survives going Back: the page's address
holds it, so the page shown again says the reward was redeemed, and the same form posted again
replays the first answer instead of spending the points twice."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.models import Coupon, EntryType, LedgerEntry, Member
from tests.web.conftest import member_sign_in
from tests.web.test_portal import give, voucher


def spent(db: Session, member: Member) -> int:
    db.expire_all()
    return (
        db.scalar(
            select(func.count(LedgerEntry.id)).where(
                LedgerEntry.member_id == member.id, LedgerEntry.type == EntryType.REDEEM
            )
        )
        or 0
    )


def test_back_and_submit_again_replays_the_first_redemption(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    give(db, member, 1900, key="r1")  # 2,000 with the welcome bonus: enough for four
    reward = voucher(db)
    token = member_sign_in(client, "mei@example.com")
    confirm = client.get(f"/my/rewards/{reward.id}")
    found = re.search(r'name="key" value="([^"]+)"', confirm.text)
    assert found
    key = found.group(1)
    # The page's address takes the key (controls.js), so Back comes to this same form.
    assert f'data-replace-url="/my/rewards/{reward.id}?key={key}"' in confirm.text
    assert '<script src="/static/controls.js" defer></script>' in confirm.text
    form = {"key": key, "csrf_token": token}

    first = client.post(f"/my/rewards/{reward.id}", data=form)
    assert first.status_code == 303 and first.headers["location"].startswith("/my/coupons/")
    coupon = db.scalars(select(Coupon).where(Coupon.member_id == member.id)).one()

    back = client.get(f"/my/rewards/{reward.id}", params={"key": key})  # Back
    assert back.status_code == 200
    assert "Redeemed" in back.text and f'href="/my/coupons/{coupon.id}"' in back.text
    assert coupon.code in back.text
    assert 'name="key"' not in back.text  # nothing to submit again

    again = client.post(f"/my/rewards/{reward.id}", data=form)  # the same form, posted again
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    assert spent(db, member) == 1
    assert db.scalar(select(func.count(Coupon.id)).where(Coupon.member_id == member.id)) == 1

    fresh = client.get(f"/my/rewards/{reward.id}")  # from the catalog: a new redemption
    new_key = re.search(r'name="key" value="([^"]+)"', fresh.text)
    assert new_key and new_key.group(1) != key
    second = client.post(
        f"/my/rewards/{reward.id}", data={"key": new_key.group(1), "csrf_token": token}
    )
    assert second.status_code == 303 and second.headers["location"] != first.headers["location"]
    assert spent(db, member) == 2


def test_an_unused_or_odd_key_in_the_address_shows_the_form(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    give(db, member, 900, key="r1")
    reward = voucher(db)
    member_sign_in(client, "mei@example.com")
    kept = client.get(f"/my/rewards/{reward.id}", params={"key": "abc123"})
    assert 'name="key" value="abc123"' in kept.text and "Yes, redeem" in kept.text
    for odd in ("", " ", "x" * 500, "a\x00b"):
        page = client.get(f"/my/rewards/{reward.id}", params={"key": odd})
        assert page.status_code == 200 and "Yes, redeem" in page.text
        assert re.search(r'name="key" value="[A-Za-z0-9_-]{16}"', page.text), odd
    assert spent(db, member) == 0


def test_another_members_key_shows_nothing_of_theirs(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    ada = make_member("ada@example.com", "Ada")
    bo = make_member("bo@example.com", "Bo")
    give(db, ada, 900, key="a1")
    give(db, bo, 900, key="b1")
    reward = voucher(db)
    token = member_sign_in(client, "bo@example.com")
    client.post(f"/my/rewards/{reward.id}", data={"key": "shared-key", "csrf_token": token})
    client.cookies.clear()
    member_sign_in(client, "ada@example.com")
    page = client.get(f"/my/rewards/{reward.id}", params={"key": "shared-key"})
    assert "Yes, redeem" in page.text and "Redeemed" not in page.text
    bo_code = db.scalars(select(Coupon.code).where(Coupon.member_id == bo.id)).one()
    assert bo_code not in page.text
