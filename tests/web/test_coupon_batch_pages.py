"""Coupon batch pages: issuing with the default choice reaches members, a confirmation that
says how many comes first and issues once, generated codes, issued coupons and redemptions
are counted apart, and the currency is a choice from ISO 4217."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.models import User
from core.audit import Actor
from loyalty import coupons, members
from loyalty.models import Batch, Coupon, Member, Tier
from tests.web.conftest import csrf_from, sign_in

ACTOR = Actor.cli("test")
ZONE = ZoneInfo("Asia/Shanghai")


def join(db: Session, n: int) -> list[Member]:
    made = [
        members.create(db, ACTOR, members.Profile(name=f"M{i}", phone=f"1390000{i:04d}"), zone=ZONE)
        for i in range(n)
    ]
    db.commit()
    return made


def marketer(client: TestClient, make_user: Callable[..., User]) -> str:
    make_user("mark@example.com", ("marketer",))
    sign_in(client, "mark@example.com")
    return csrf_from(client, "/loyalty/coupons")


def make_batch(db: Session, **extra: object) -> Batch:
    fields: dict[str, object] = {
        "name": "Ten off",
        "kind": "fixed",
        "value": Decimal(10),
        "currency": "CNY",
        "valid_days": 30,
    }
    fields.update(extra)
    batch = coupons.create_batch(db, ACTOR, **fields)  # type: ignore[arg-type]
    db.commit()
    return batch


def held(db: Session, batch_id: int) -> int:
    db.expire_all()
    return (
        db.scalar(
            select(func.count(Coupon.id)).where(
                Coupon.batch_id == batch_id, Coupon.member_id.is_not(None)
            )
        )
        or 0
    )


def hidden(page: str) -> dict[str, list[str]]:
    """The confirmation form's hidden fields."""
    form = page.split('id="issue-confirm"')[1]
    found: dict[str, list[str]] = {}
    for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form):
        found.setdefault(name, []).append(value)
    return found


def test_issue_to_every_member_asks_first_then_issues_once(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    join(db, 3)
    batch = make_batch(db)
    token = marketer(client, make_user)
    page = client.get(f"/loyalty/coupons/{batch.id}")
    assert page.status_code == 200 and '<option value="">Every member</option>' in page.text
    # The form as the page sends it by default: tiers="" ("Every member"), no segment.
    asked = client.post(
        f"/loyalty/coupons/{batch.id}/issue",
        data={"tiers": "", "region": "", "city": "", "csrf_token": token},
    )
    assert asked.status_code == 200
    assert "<strong>3 members</strong> will each receive one coupon" in asked.text
    assert "Issue 3 coupons" in asked.text
    assert held(db, batch.id) == 0  # nothing yet
    confirm = {**hidden(asked.text), "csrf_token": [token]}
    assert confirm["confirm"] == ["3"] and confirm["issued_before"] == ["0"]
    done = client.post(f"/loyalty/coupons/{batch.id}/issue", data=confirm)
    assert done.status_code == 303 and done.headers["location"] == f"/loyalty/coupons/{batch.id}"
    assert "issued to 3 members" in client.get(done.headers["location"]).text
    assert held(db, batch.id) == 3
    again = client.post(f"/loyalty/coupons/{batch.id}/issue", data=confirm)  # Back, resubmit
    assert again.status_code == 409 and "nothing was issued" in again.text
    assert "Issue 3 coupons" in again.text  # asks again, with today's numbers
    assert held(db, batch.id) == 3


def test_eligible_tiers_default_reaches_the_batchs_tiers(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    people = join(db, 3)
    people[0].tier_id = db.scalars(select(Tier.id).where(Tier.code == "silver")).one()
    db.commit()
    batch = make_batch(db, eligible_tiers=["silver"])
    token = marketer(client, make_user)
    page = client.get(f"/loyalty/coupons/{batch.id}")
    assert '<option value="">Eligible tiers (silver)</option>' in page.text
    assert page.text.count("only</option>") == 1  # only the batch's own tiers to narrow to
    asked = client.post(
        f"/loyalty/coupons/{batch.id}/issue", data={"tiers": "", "csrf_token": token}
    )
    assert "<strong>1 member</strong> will each receive" in asked.text
    client.post(
        f"/loyalty/coupons/{batch.id}/issue", data={**hidden(asked.text), "csrf_token": token}
    )
    assert held(db, batch.id) == 1


def test_nobody_to_issue_to_and_a_refused_segment(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    join(db, 2)
    batch = make_batch(db)
    token = marketer(client, make_user)
    nobody = client.post(
        f"/loyalty/coupons/{batch.id}/issue",
        data={"tiers": "", "city": "Atlantis", "csrf_token": token},
    )
    assert "No member matches: nothing to issue." in nobody.text
    assert 'name="confirm"' not in nobody.text
    unknown = client.post(
        f"/loyalty/coupons/{batch.id}/issue",
        data={"tiers": "no-such-tier", "city": "Atlantis", "csrf_token": token},
    )
    # The batch page's issue form again: the problem beside the tier, the city kept.
    assert unknown.status_code == 422
    said = '<small class="field-error" id="f-tiers-error">Unknown tier no-such-tier.'
    assert said in unknown.text
    assert 'id="f-city" placeholder="any" value="Atlantis"' in unknown.text
    for bad in ("abc", "1e3", "", "-"):
        refused = client.post(
            f"/loyalty/coupons/{batch.id}/issue",
            data={"confirm": bad, "issued_before": "0", "csrf_token": token},
        )
        # The confirmation again, saying what was wrong; nothing issued.
        assert refused.status_code == 422, bad
        assert 'id="issue-confirm"' in refused.text and 'role="alert"' in refused.text
    assert held(db, batch.id) == 0
    assert (
        client.post("/loyalty/coupons/999999/issue", data={"csrf_token": token}).status_code == 404
    )


def test_generated_issued_and_redeemed_are_shown_apart(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    owner = join(db, 1)[0]
    batch = make_batch(db)
    coupons.generate(db, ACTOR, batch.id, 5)
    mine = coupons.issue(db, ACTOR, batch.id, owner, reason="test")
    coupons.redeem(db, ACTOR, mine.code, member=owner, key="till-1")
    db.commit()
    marketer(client, make_user)
    listing = client.get("/loyalty/coupons")
    row = listing.text.split(f'href="/loyalty/coupons/{batch.id}"')[1].split("</tr>")[0]
    numbers = re.findall(r'<td class="num">([\d,]+)</td>', row)
    assert numbers == ["1", "5", "1"]  # issued to members, codes generated, redeemed
    assert "Issued to members" in listing.text and "Codes generated" in listing.text
    detail = client.get(f"/loyalty/coupons/{batch.id}")
    counts = detail.text.split('id="batch-counts"')[1].split("</dl>")[0]
    assert re.findall(r"<dd>([\d,]+)</dd>", counts) == ["1", "5", "1"]


def test_the_batch_currency_is_a_choice_of_iso_4217_codes(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    token = marketer(client, make_user)
    form = client.get("/loyalty/coupons").text.split('action="/loyalty/coupons"')[1]
    select_ = form.split('name="currency"')[1].split("</select>")[0]
    codes = re.findall(r'<option value="([A-Z]{3})"', select_)
    assert codes[0] == "CNY" and "USD" in codes and "RMB" not in codes
    assert '<input name="currency"' not in form
    base = {"kind": "fixed", "value": "1000.50", "valid_days": "30", "csrf_token": token}
    client.post("/loyalty/coupons", data={**base, "name": "Dollars", "currency": "USD"})
    made = db.scalars(select(Batch).where(Batch.name == "Dollars")).one()
    assert (made.currency, made.value) == ("USD", Decimal("1000.50"))
    refused = client.post("/loyalty/coupons", data={**base, "name": "Renminbi", "currency": "RMB"})
    assert refused.status_code == 422
    # Said beside the currency, whose stored-but-unknown value is shown as such; the rest kept.
    assert 'id="f-currency-error"' in refused.text and "RMB: not an ISO 4217 code" in refused.text
    assert 'value="Renminbi"' in refused.text and 'value="1000.50"' in refused.text
    assert db.scalar(select(Batch.id).where(Batch.name == "Renminbi")) is None
