"""The member portal through HTTP: joining, signing in, pages, rewards, language, profile."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import Actor
from core.outbox import OutboxMessage
from core.timeutil import utcnow
from loyalty import coupons, ledger, purchases, rewards
from loyalty import program as program_settings
from loyalty.models import Coupon, EntryType, LedgerEntry, Member, Referral, Reward
from loyalty.purchases import PurchaseInput
from tests.web.conftest import MEMBER_PASSWORD, csrf_from, member_sign_in, sign_in
from web.i18n import LOCALE_DIR

ROOT = Path(__file__).resolve().parents[2]
ACTOR = Actor.cli("test")
ZONE = ZoneInfo("Asia/Shanghai")


def give(db: Session, member: Member, points: int, key: str) -> None:
    locked = ledger.lock_member(db, member.id)
    ledger.credit(
        db,
        locked,
        ACTOR,
        [ledger.Credit(points, "Goodwill", "adjust", EntryType.ADJUST)],
        key=key,
        at=utcnow(),
        program=program_settings.get(db),
        zone=ZONE,
    )
    db.commit()


def voucher(db: Session, cost: int = 500, tiers: list[str] | None = None) -> Reward:
    batch = coupons.create_batch(
        db,
        ACTOR,
        name="¥20 voucher",
        kind="fixed",
        value=Decimal(20),
        currency="CNY",
        min_spend=Decimal(200),
        valid_days=30,
    )
    reward = rewards.save(
        db, ACTOR, name="¥20 voucher", points_cost=cost, batch_id=batch.id, eligible_tiers=tiers
    )
    db.commit()
    return reward


def test_join_link_sign_up_activate_and_land_on_home(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    friend = make_member("friend@example.com", "Li Lei")
    joined = client.get(f"/join/{friend.referral_code}")
    assert joined.status_code == 303
    form = client.get(joined.headers["location"])
    assert f'value="{friend.referral_code}"' in form.text
    token = csrf_from(client, "/my/signup")
    sent = client.post(
        "/my/signup",
        data={
            "name": "Han Meimei",
            "phone": "13812345678",
            "referral_code": friend.referral_code,
            "marketing_consent": "true",
            "csrf_token": token,
        },
    )
    assert sent.status_code == 200 and "Check your messages" in sent.text
    body = db.scalar(select(OutboxMessage.body).where(OutboxMessage.recipient == "+8613812345678"))
    assert body is None  # phones are stored without the + unless given
    body = db.scalar(select(OutboxMessage.body).where(OutboxMessage.recipient == "13812345678"))
    assert body is not None
    link = re.search(r"http://testserver(/my/activate/\S+)", body)
    assert link
    page = client.get(link.group(1))
    assert "Activate your account" in page.text
    token = csrf_from(client, link.group(1))
    mismatch = client.post(
        link.group(1), data={"password": "a-good-password", "confirm": "other", "csrf_token": token}
    )
    assert mismatch.status_code == 422 and "do not match" in mismatch.text
    done = client.post(
        link.group(1),
        data={"password": "a-good-password", "confirm": "a-good-password", "csrf_token": token},
    )
    assert done.status_code == 303 and done.headers["location"] == "/my"
    home = client.get("/my")
    assert home.status_code == 200
    assert "Your account is active" in home.text
    assert 'data-testid="available">100<' in home.text  # the welcome bonus
    member = db.scalar(select(Member).where(Member.phone == "13812345678"))
    assert member is not None
    referral = db.scalar(select(Referral).where(Referral.referee_id == member.id))
    assert referral is not None and referral.referrer_id == friend.id


def test_sign_in_failures_are_explained_and_the_page_is_in_the_browsers_language(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    make_member()
    token = csrf_from(client, "/my/signin")
    wrong = client.post(
        "/my/signin",
        data={"identifier": "mei@example.com", "password": "nope-nope-nope", "csrf_token": token},
        headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"},
    )
    assert wrong.status_code == 401
    assert "手机号/邮箱与密码不匹配" in wrong.text and 'lang="zh-Hans"' in wrong.text
    english = client.get("/my/signin", headers={"Accept-Language": "en-GB"})
    assert "Phone or email" in english.text


def test_member_and_staff_sessions_never_open_each_others_pages(
    client: TestClient, make_member: Callable[..., Member], make_user: Callable[..., object]
) -> None:
    make_member()
    member_sign_in(client, "mei@example.com")
    staff_page = client.get("/dashboard")
    assert staff_page.status_code == 303 and staff_page.headers["location"].startswith("/signin")
    assert client.get("/api/v1/members/M00000001").status_code == 401
    make_user("ada@example.com", ("admin",))
    sign_in(client, "ada@example.com")  # a staff sign-in in the same browser
    assert client.get("/dashboard").status_code == 200


def test_staff_session_is_not_a_member(
    client: TestClient, make_user: Callable[..., object]
) -> None:
    make_user("ada@example.com", ("admin",))
    sign_in(client, "ada@example.com")
    for path in ("/my", "/my/history", "/my/api/summary"):
        response = client.get(path)
        assert response.status_code in (303, 401), path
    assert client.get("/my").headers["location"].startswith("/my/signin")


def test_history_is_keyset_paginated_with_htmx_load_more(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    for n in range(60):
        give(db, member, n + 1, key=f"h{n}")
    member_sign_in(client, "mei@example.com")
    first = client.get("/my/history")
    seen = re.findall(r'class="points ?">\+(\d+)<', first.text)
    assert len(seen) == 25
    cursor = re.search(r'hx-get="/my/history\?before=(\d+)"', first.text)
    pages = 1
    while cursor:
        more = client.get(
            f"/my/history?before={cursor.group(1)}",
            headers={"HX-Request": "true", "HX-Target": "more"},
        )
        assert "<html" not in more.text  # only the rows and the next button
        seen += re.findall(r'class="points ?">\+(\d+)<', more.text)
        cursor = re.search(r'hx-get="/my/history\?before=(\d+)"', more.text)
        pages += 1
    # 60 adjustments and the welcome bonus, newest first, each once
    assert pages == 3
    assert [int(p) for p in seen] == [*range(60, 0, -1), 100]
    only_bonus = client.get("/my/history?type=bonus")
    assert re.findall(r'class="points ?">\+(\d+)<', only_bonus.text) == ["100"]


def test_redeem_with_confirm_puts_the_coupon_in_the_wallet_once(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    give(db, member, 900, key="r1")  # 1,000 with the welcome bonus
    reward = voucher(db)
    token = member_sign_in(client, "mei@example.com")
    confirm = client.get(f"/my/rewards/{reward.id}")
    assert "Left afterwards" in confirm.text and ">500 points<" in confirm.text
    key = re.search(r'name="key" value="([^"]+)"', confirm.text)
    assert key
    for _ in range(2):  # a double click redeems once
        done = client.post(
            f"/my/rewards/{reward.id}", data={"key": key.group(1), "csrf_token": token}
        )
        assert done.status_code == 303
    assert done.headers["location"].startswith("/my/coupons/")
    wallet = client.get(done.headers["location"])
    assert "<svg" in wallet.text and "CN¥20.00 off" in wallet.text
    code = db.scalar(select(Coupon.code).where(Coupon.member_id == member.id))
    assert code and code in wallet.text
    redeemed = db.scalar(
        select(func.count(LedgerEntry.id)).where(
            LedgerEntry.member_id == member.id, LedgerEntry.type == EntryType.REDEEM
        )
    )
    assert redeemed == 1
    assert 'Ready to use <span class="muted small">(1)</span>' in client.get("/my/coupons").text


def test_short_and_negative_balances_are_explained_and_nothing_is_spent(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    reward = voucher(db, cost=500)
    token = member_sign_in(client, "mei@example.com")
    short = client.post(f"/my/rewards/{reward.id}", data={"key": "k1", "csrf_token": token})
    assert short.status_code == 409
    assert "do not have enough points" in short.text
    rewards.adjust(
        db, ACTOR, member.id, -300, reason="Correction", key="neg", at=utcnow(), zone=ZONE
    )
    db.commit()
    negative = client.get(f"/my/rewards/{reward.id}")
    assert "balance is negative" in negative.text
    home = client.get("/my")
    assert "balance is negative" in home.text
    assert db.scalar(select(func.count(Coupon.id)).where(Coupon.member_id == member.id)) == 0


def test_portal_writes_need_the_csrf_token(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    make_member()
    reward = voucher(db, cost=50)
    member_sign_in(client, "mei@example.com")
    for path in (f"/my/rewards/{reward.id}", "/my/profile", "/my/signout", "/my/language"):
        assert client.post(path, data={"key": "x"}).status_code == 403, path


def test_language_switch_is_remembered_for_the_member(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    make_member()
    token = member_sign_in(client, "mei@example.com")
    switched = client.post(
        "/my/language", data={"language": "zh", "next": "/my/history", "csrf_token": token}
    )
    assert switched.headers["location"] == "/my/history"
    page = client.get("/my/history")
    assert "积分明细" in page.text and "入会礼" in page.text
    assert page.headers["content-language"] == "zh"
    client.cookies.clear()  # a new browser, signed in again: still Chinese
    member_sign_in(client, "mei@example.com")
    assert "可用积分" in client.get("/my", headers={"Accept-Language": "en"}).text
    back = client.post(
        "/my/language", data={"language": "en", "csrf_token": csrf_from(client, "/my")}
    )
    assert back.status_code == 303
    assert "Points you can use" in client.get("/my").text


def test_profile_birthday_is_set_once_and_data_can_be_downloaded(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    token = member_sign_in(client, "mei@example.com")
    form = {"name": "Han Meimei", "email": "mei@example.com", "csrf_token": token}
    saved = client.post("/my/profile", data={**form, "birthday": "1990-05-04"})
    assert saved.status_code == 303
    again = client.post("/my/profile", data={**form, "birthday": "1991-01-01"})
    assert again.status_code == 422 and "already set" in again.text
    db.refresh(member)
    assert str(member.birthday) == "1990-05-04"
    # a new email needs the password, and ends every other signed-in browser
    other = TestClient(client.app, follow_redirects=False)
    member_sign_in(other, "mei@example.com")
    moved = {**form, "email": "mei.new@example.com"}
    refused = client.post("/my/profile", data={**moved, "password": "wrong-password"})
    assert refused.status_code == 422 and "password is not right" in refused.text
    assert (
        client.post("/my/profile", data={**moved, "password": MEMBER_PASSWORD}).status_code == 303
    )
    db.refresh(member)
    assert member.email == "mei.new@example.com"
    assert other.get("/my").status_code == 303  # signed out
    assert client.get("/my").status_code == 200  # this browser stays in
    data = client.get("/my/profile/data.json")
    assert json.loads(data.text)["profile"][0]["birthday"] == "1990-05-04"
    archive = zipfile.ZipFile(io.BytesIO(client.get("/my/profile/data.zip").content))
    assert {"profile.csv", "points.csv", "purchases.csv", "coupons.csv"} <= set(archive.namelist())
    assert "Welcome bonus" in archive.read("points.csv").decode("utf-8-sig")


def test_downloaded_csv_files_never_open_as_spreadsheet_formulas(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    hyperlink = '=HYPERLINK("http://x","y")'
    member = make_member(name=hyperlink)
    member.city = "\tShanghai"  # the service strips; an import or an old row may not
    purchases.record(
        db,
        ACTOR,
        PurchaseInput(
            source="pos",
            external_id="-2+3",
            occurred_at=utcnow(),
            amount=Decimal("88.50"),
            currency="CNY",
            member_id=member.id,
            store="+1+1",
        ),
        base_currency="CNY",
        zone=ZONE,
    )
    batch = coupons.create_batch(
        db, ACTOR, name="@SUM(A1)", kind="fixed", value=Decimal(5), currency="CNY", valid_days=9
    )
    coupons.issue(db, ACTOR, batch.id, member, reason="test")
    rewards.adjust(db, ACTOR, member.id, -500, reason="-2+3", key="neg", at=utcnow(), zone=ZONE)
    db.commit()
    member_sign_in(client, "mei@example.com")
    archive = zipfile.ZipFile(io.BytesIO(client.get("/my/profile/data.zip").content))

    def rows(table: str) -> list[dict[str, str]]:
        text = archive.read(f"{table}.csv").decode("utf-8")
        assert text.startswith("\ufeff")
        return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))

    [profile] = rows("profile")
    assert profile["name"] == "'" + hyperlink and profile["city"] == "'\tShanghai"
    [bought] = rows("purchases")
    assert bought["store"] == "'+1+1" and bought["reference"] == "'-2+3"
    assert Decimal(bought["amount"]) == Decimal("88.50")
    assert int(bought["points_earned"]) > 0
    [held] = rows("coupons")
    assert held["offer"] == "'@SUM(A1)"
    adjusted = [r for r in rows("points") if r["type"] == EntryType.ADJUST]
    # negative numbers stay plain numbers: 100 welcome + 88 earned + 200 first purchase - 500
    assert [(r["reason"], r["points"], r["balance_after"]) for r in adjusted] == [
        ("'-2+3", "-500", "-112")
    ]
    # the JSON download is data, not a spreadsheet: values exactly as stored
    data = json.loads(client.get("/my/profile/data.json").text)
    assert data["profile"][0]["name"] == hyperlink


def test_closing_the_account_signs_out_and_anonymises(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    token = member_sign_in(client, "mei@example.com")
    closed = client.post(
        "/my/profile/close", data={"password": MEMBER_PASSWORD, "csrf_token": token}
    )
    assert closed.status_code == 303 and closed.headers["location"] == "/my/signin"
    assert client.get("/my").status_code == 303
    db.refresh(member)
    assert member.email is None and member.status == "closed"


def test_every_portal_string_has_a_chinese_translation_and_the_catalog_is_current() -> None:
    """Re-extract the portal's strings as `pybabel extract -F babel.cfg` does and compare."""
    method_map = [("web/portal/**.py", "python"), ("web/templates/portal/**.html", "jinja2")]
    found = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(
            str(ROOT),
            method_map,
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
        )
    }
    with (LOCALE_DIR / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and (m.string if isinstance(m.string, str) else all(m.string or ()))
    }
    assert found - translated == set()


def test_referrals_page_shows_the_code_link_and_what_referring_earned(
    client: TestClient, db: Session, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    friend = make_member("friend@example.com", "Zhou Xun")
    db.add(Referral(referrer_id=member.id, referee_id=friend.id, created_at=utcnow()))
    batch = coupons.create_batch(
        db, ACTOR, name="Thanks", kind="fixed", value=Decimal(10), currency="CNY", valid_days=9
    )
    coupons.issue(
        db, ACTOR, batch.id, member, reason="Referral reward: member M1 joined", at=utcnow()
    )
    db.commit()
    member_sign_in(client, "mei@example.com")
    page = client.get("/my/referrals")
    assert member.referral_code in page.text
    assert f"http://testserver/join/{member.referral_code}" in page.text
    assert "Z…" in page.text and "Zhou Xun" not in page.text  # friends by initial only
    assert "Waiting for a first purchase" in page.text
    assert "1 coupon earned from referrals" in page.text
