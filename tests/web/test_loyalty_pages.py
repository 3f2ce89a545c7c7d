"""The staff loyalty pages: members, program settings, coupon batches, rewards."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.models import User
from core.audit import Actor, AuditEntry
from loyalty import members
from loyalty import program as program_settings
from loyalty.models import Batch, Coupon, LedgerEntry
from tests.web.conftest import csrf_from, sign_in


def as_user(client: TestClient, make_user: Callable[..., User], role: str) -> str:
    make_user(f"{role}@example.com", (role,))
    sign_in(client, f"{role}@example.com")
    return csrf_from(client, "/members")


def test_finance_finds_a_member_and_adjusts_points(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    member = members.create(
        db,
        Actor.cli(),
        members.Profile(name="Han Meimei", phone="13800005555"),
        zone=ZoneInfo("Asia/Shanghai"),
    )
    db.commit()
    token = as_user(client, make_user, "finance")
    found = client.get("/members", params={"q": "13800005555"})
    assert member.number in found.text
    page = client.get(f"/members/{member.number}")
    assert page.status_code == 200 and "Adjust points" in page.text and "Welcome bonus" in page.text
    key = page.text.split('name="key" value="')[1].split('"')[0]
    for _ in range(2):  # a double submit posts one adjustment
        done = client.post(
            f"/members/{member.number}/adjust",
            data={"points": "-150", "reason": "Goodwill reversal", "key": key, "csrf_token": token},
        )
        assert done.status_code == 303
    db.expire_all()
    entries = db.scalars(select(LedgerEntry.points).where(LedgerEntry.member_id == member.id)).all()
    assert sorted(entries) == [-150, 100]
    after = client.get(f"/members/{member.number}")
    assert "redemption is blocked" in after.text  # balance −50
    assert (
        db.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "points.adjust"))
        == 1
    )


def test_marketers_cannot_adjust_points(client: TestClient, make_user: Callable[..., User]) -> None:
    token = as_user(client, make_user, "marketer")
    response = client.post(
        "/members/M00000001/adjust", data={"points": "5", "reason": "x", "csrf_token": token}
    )
    assert response.status_code == 403


def test_marketer_creates_a_batch_generates_and_exports_codes(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    token = as_user(client, make_user, "marketer")
    made = client.post(
        "/loyalty/coupons",
        data={
            "name": "Spring 20%",
            "kind": "percent",
            "value": "20",
            "max_discount": "50",
            "valid_days": "30",
            "csrf_token": token,
        },
    )
    assert made.status_code == 303
    batch = db.scalars(select(Batch).where(Batch.name == "Spring 20%")).one()
    client.post(f"/loyalty/coupons/{batch.id}/generate", data={"count": "25", "csrf_token": token})
    assert db.scalar(select(func.count(Coupon.id)).where(Coupon.batch_id == batch.id)) == 25
    listing = client.get("/loyalty/coupons")
    assert "20% off (up to 50.00 CNY)" in listing.text
    export = client.get(f"/loyalty/coupons/{batch.id}/codes.csv")
    assert export.status_code == 200 and len(export.text.strip().splitlines()) == 26
    bad = client.post(
        "/loyalty/coupons",
        data={"name": "No end", "kind": "fixed", "value": "5", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Give either an end date or a number of days" in bad.text
    reward = client.post(
        "/loyalty/rewards",
        data={
            "name": "Voucher",
            "points_cost": "300",
            "batch_id": str(batch.id),
            "csrf_token": token,
        },
        follow_redirects=True,
    )
    assert "Reward Voucher saved: 300 points." in reward.text


def test_only_admins_change_program_settings(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    token = as_user(client, make_user, "admin")
    page = client.get("/loyalty/program")
    assert page.status_code == 200 and "Save settings" in page.text
    form = {
        name: page.text.split(f'name="{name}" value="')[1].split('"')[0]
        for name in (
            "earn_rate",
            "return_window_days",
            "expiry_n",
            "tier_window_months",
            "tier_retention_days",
            "signup_bonus",
            "first_purchase_bonus",
            "birthday_points",
            "repeat_count",
            "repeat_days",
            "repeat_bonus",
            "referral_min_amount",
            "referrer_points",
            "referee_points",
            "referral_monthly_cap",
        )
    }
    form.update(
        expiry_policy="never",
        tier_metric="spend",
        return_window_days="14",
        restore_coupon_on_refund="on",
        csrf_token=token,
    )
    saved = client.post("/loyalty/program", data=form, follow_redirects=True)
    assert "Program settings saved." in saved.text
    db.expire_all()
    program = program_settings.get(db)
    assert (program.return_window_days, program.expiry_policy) == (14, "never")
    rule = client.post(
        "/loyalty/rules",
        data={"name": "Weekend treat", "fixed_points": "50", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Bonus rule Weekend treat saved." in rule.text and "+50" in rule.text


def test_marketer_gives_a_coupon_suspends_and_reads_the_referral_report(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    referrer = members.create(
        db, Actor.cli(), members.Profile(name="A", phone="13800007001"), zone=zone
    )
    referee = members.create(
        db,
        Actor.cli(),
        members.Profile(name="B", phone="13800007002"),
        referral_code=referrer.referral_code,
        zone=zone,
    )
    db.commit()
    token = as_user(client, make_user, "marketer")
    client.post(
        "/loyalty/coupons",
        data={
            "name": "Thanks",
            "kind": "fixed",
            "value": "5",
            "valid_days": "30",
            "csrf_token": token,
        },
    )
    batch = db.scalars(select(Batch).where(Batch.name == "Thanks")).one()
    given = client.post(
        f"/members/{referee.number}/coupons",
        data={"batch_id": str(batch.id), "csrf_token": token},
        follow_redirects=True,
    )
    assert "given to B" in given.text and "Thanks" in given.text
    suspended = client.post(
        f"/members/{referee.number}/status",
        data={"status": "suspended", "reason": "Checking", "csrf_token": token},
        follow_redirects=True,
    )
    assert "B is now suspended." in suspended.text
    report = client.get("/loyalty/referrals")
    assert referrer.number in report.text
