"""A member's walk through the portal in headless Chromium at a phone's size (375 × 812):
join with a friend's code, activate, sign in, see the balance, redeem a reward, find the
coupon and its QR code in the wallet, switch to Chinese and back, sign out. Each page is
saved to test-artifacts/screenshots/portal-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import ViewportSize
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench._harness import live_server
from core import migrations
from core.audit import Actor
from core.db import make_engine
from core.outbox import OutboxMessage
from core.settings import Settings
from loyalty import coupons, members, rewards
from tests.web.test_browser import SHOTS, chromium_page
from web.app import create_app

pytestmark = pytest.mark.browser
PHONE: ViewportSize = {"width": 375, "height": 812}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A server with one member to refer from and a 60-point reward; (url, code, db url)."""
    url = f"sqlite:///{tmp_path / 'portal.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    actor = Actor.cli("test")
    with Session(engine) as session:
        friend = members.create(
            session,
            actor,
            members.Profile(name="Li Lei", phone="13900000001"),
            zone=ZoneInfo("Asia/Shanghai"),
        )
        batch = coupons.create_batch(
            session,
            actor,
            name="Coffee",
            kind="gift",
            gift="A cup of coffee",
            currency="CNY",
            valid_days=30,
        )
        rewards.save(session, actor, name="Free coffee", points_cost=60, batch_id=batch.id)
        code = friend.referral_code
        session.commit()
    settings = Settings(
        env="test", data_dir=tmp_path, database_url=url, secret_key=SecretStr("p" * 40)
    )
    with live_server(create_app(settings)) as base:
        yield base, code, url
    engine.dispose()


@pytest.fixture
def phone(shop: tuple[str, str, str]) -> Iterator[Any]:
    with chromium_page(viewport=PHONE, locale="en-US") as page:
        yield page


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"portal-{name}.png"), full_page=True)
    # Nothing sticks out sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name


def activation_link(db_url: str, recipient: str) -> str:
    engine = make_engine(db_url)
    with Session(engine) as session:
        body = session.scalar(
            select(OutboxMessage.body).where(OutboxMessage.recipient == recipient)
        )
    engine.dispose()
    assert body is not None
    found = re.search(r"https?://\S+(/my/activate/\S+)", body)
    assert found, body
    return found.group(1)


def test_member_joins_redeems_and_switches_language_on_a_phone(
    shop: tuple[str, str, str], phone: Any
) -> None:
    base, code, db_url = shop
    page = phone
    problems: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))

    page.goto(f"{base}/join/{code}")
    assert page.input_value("#referral_code") == code
    page.fill("#name", "Han Meimei")
    page.fill("#email", "mei@example.com")
    shot(page, "1-signup")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Check your messages")
    shot(page, "2-link-sent")

    page.goto(base + activation_link(db_url, "mei@example.com"))
    page.fill("#password", "a-good-password")
    page.fill("#confirm", "a-good-password")
    shot(page, "3-choose-password")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/my")
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/my/signin$"))
    shot(page, "3b-signin")
    page.fill("#identifier", "mei@example.com")
    page.fill("#password", "a-good-password")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/my")
    assert page.text_content("[data-testid=available]") == "100"  # the welcome bonus
    shot(page, "4-home")

    page.click("nav >> text=Rewards")
    page.click("text=Redeem")
    page.wait_for_selector("text=Left afterwards")
    shot(page, "5-confirm")
    page.click("text=Yes, redeem")
    page.wait_for_selector("figure.qr svg")
    assert page.is_visible("text=Done! Your coupon is in your wallet.")
    shot(page, "6-coupon-qr")
    page.click("nav >> text=Coupons")
    assert page.is_visible("text=Gift: A cup of coffee")
    page.click("text=Home")
    assert page.text_content("[data-testid=available]") == "40"

    page.click("button:has-text('中文')")
    page.wait_for_selector("text=可用积分")
    shot(page, "7-home-zh")
    page.click("nav >> text=积分明细")
    page.wait_for_selector("text=入会礼")
    shot(page, "8-history-zh")
    page.click("button:has-text('English')")
    page.wait_for_selector("text=Welcome bonus")
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/my/signin$"))
    page.goto(f"{base}/my")
    assert "/my/signin" in page.url
    assert problems == []
    assert hosts == {base.split("/")[2]}  # every asset served locally
