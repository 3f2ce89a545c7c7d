"""The campaign page's purchase revenue in headless Chromium under the real CSP: no console
error, the figures add up, and the screenshot test-artifacts/screenshots/campaign-purchases.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session

from bench._harness import live_server
from campaigns import rates, revenue
from core import migrations
from core.accounts import users
from core.audit import Actor
from core.db import make_engine
from core.settings import Settings
from loyalty import members, purchases
from loyalty.purchases import RefundInput
from tests.web.conftest import PASSWORD
from tests.web.test_browser import SHOTS, chromium_page
from tests.web.test_campaign_purchases import POS, ZONE, at, buy, make
from web.app import create_app

pytestmark = pytest.mark.browser
D = Decimal


@pytest.fixture
def campaign_server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A server with one campaign: revenue records (one in GBP) and purchases, one refunded."""
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    with Session(engine) as db:
        system = Actor.system("test")
        marketer = users.create(
            db, system, email="marketer@example.com", name="Mara Marketer",
            roles=("marketer",), password=PASSWORD,
        )  # fmt: skip
        finance_user = users.create(
            db, system, email="finance@example.com", name="Fin", roles=("finance",),
            password=PASSWORD,
        )  # fmt: skip
        finance = Actor("user", "f", user_id=finance_user.id, roles=frozenset({"finance"}))
        campaign = make(db, marketer)
        rates.set_rate(db, finance, "GBP", date(2026, 2, 1), D("9.1234"), "CNY")
        revenue.record(
            db, finance, campaign_id=campaign.id, received_on=date(2026, 3, 15),
            amount=D("5000.10"), currency="CNY", reference="Tmall settlement", orders=40,
        )  # fmt: skip
        revenue.record(
            db, finance, campaign_id=campaign.id, received_on=date(2026, 3, 16),
            amount=D("101.58"), currency="GBP", reference="wire",
        )  # fmt: skip
        mei = members.create(db, POS, members.Profile(name="Han Meimei", email="m@x.cn"), zone=ZONE)
        buy(db, "POS-1001", "88.50", at(3), member=mei)
        buy(db, "POS-1002", "101.58", at(4), currency="GBP")
        buy(db, "POS-1003", "1200", at(5), member=mei)
        buy(db, "POS-1004", "349.90", at(7, 18))
        purchases.refund(
            db, POS, RefundInput("pos", "R-1", "pos", "POS-1003", at(20), amount=D("300")),
            base_currency="CNY", zone=ZONE,
        )  # fmt: skip
        db.commit()
        campaign_id = campaign.id
    engine.dispose()
    settings = Settings(
        env="test", data_dir=tmp_path, database_url=url, secret_key=SecretStr("b" * 40)
    )
    with live_server(create_app(settings)) as base:
        yield base, campaign_id


def test_the_campaign_page_shows_its_purchase_revenue(campaign_server: tuple[str, int]) -> None:
    server, campaign_id = campaign_server
    with chromium_page(viewport={"width": 1280, "height": 800}) as page:
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{server}/signin")
        page.fill("input[name=email]", "marketer@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/dashboard")
        page.goto(f"{server}/campaigns/{campaign_id}")
        page.wait_for_load_state("networkidle")
        assert page.locator("#figures-problem").count() == 0
        assert page.locator("#purchase-list tbody tr").count() == 4

        def money(text: str) -> Decimal:
            return Decimal(text.replace(",", "").strip())

        kpi = page.locator("#kpis div", has_text="Revenue").first.locator("dd").inner_text()
        net = money(page.inner_text("#purchase-revenue-net"))
        records = money(page.inner_text("#revenue-records-total"))
        assert net == D("88.50") + D("926.75") + D("1200") + D("349.90") - D("300")
        assert records == D("5000.10") + D("926.75")
        assert net + records == money(kpi)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "campaign-purchases.png"), full_page=True)
        assert problems == []
