"""The lift page in headless Chromium under the real CSP, on the demo's holdout campaign
(`web.demo_lift`, loaded alone): the charts draw, the sample-size calculator answers in place
through htmx (a bad value beside its field, in place too), and nothing logs an error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench._harness import live_server
from campaigns.models import Campaign
from core import migrations
from core.accounts import users
from core.audit import Actor
from core.db import make_engine
from core.settings import Settings
from loyalty import audiences
from tests.web.test_staff_controls_browser import htmx_click, opened, shot, sign_in
from web import demo_lift
from web.app import create_app
from web.demo import DEMO_PASSWORD, DEMO_STAFF

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The demo's staff and holdout campaign on a live server: (base url, campaign id)."""
    tmp: Path = tmp_path_factory.mktemp("lift-browser")
    url = f"sqlite:///{tmp / 'lift.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    settings = Settings(
        env="test", data_dir=tmp, database_url=url, secret_key=SecretStr("l" * 40), demo=True
    )
    today = datetime.now(settings.zone).date()
    with Session(engine) as session:
        for email, name, roles in DEMO_STAFF:
            users.create(
                session, Actor.cli("test"), email=email, name=name, roles=roles,
                password=DEMO_PASSWORD,
            )  # fmt: skip
        session.flush()
        assert demo_lift.load(session, today, settings.zone, settings.base_currency) == 500
        assert demo_lift.load(session, today, settings.zone, settings.base_currency) == 0
        campaign_id = session.scalars(
            select(Campaign.id).where(Campaign.code == demo_lift.CODE)
        ).one()
        arms = audiences.arms(session, campaign_id)
        assert arms.members == 500 and 60 < arms.held_out < 140  # about a fifth held out
        session.commit()
    engine.dispose()
    with live_server(create_app(settings)) as base:
        yield base, campaign_id


def test_the_lift_page_draws_and_the_calculator_answers_in_place(
    server: tuple[str, int],
) -> None:
    base, campaign_id = server
    with opened() as (page, watch):
        sign_in(page, base, "marketer@demo.retain")
        page.goto(f"{base}/campaigns/{campaign_id}")
        with page.expect_navigation():
            page.click("#target-links a:has-text('Lift against the holdout')")
        assert page.url == f"{base}/campaigns/{campaign_id}/lift"
        page.wait_for_function(
            "() => window.Chart && Chart.getChart('chart-lift-conversion')"
            " && Chart.getChart('chart-lift-revenue')"
        )
        treated = page.locator("#lift-arm-treated td").all_inner_texts()
        held = page.locator("#lift-arm-holdout td").all_inner_texts()
        # The demo's believable difference: 14% of the treated converted, 11% of the held out.
        assert treated[2].startswith("13.") or treated[2].startswith("14.")
        assert held[2].startswith("10.") or held[2].startswith("11.")
        assert "Not enough evidence yet" in page.inner_text("#lift-verdict")

        page.fill("#f-lift", "30")
        htmx_click(page, "#sample-size-form button[type=submit]")
        answer = page.inner_text("#sample-size-answer")
        assert "To detect a lift of 30%" in answer
        assert page.url == f"{base}/campaigns/{campaign_id}/lift"  # swapped, not navigated
        page.fill("#f-power", "abc")
        htmx_click(page, "#sample-size-form button[type=submit]")
        assert "Power must be a number" in page.inner_text("#f-power-error")
        assert page.locator("#lift-figures").count() == 1  # the rest of the page stayed
        assert watch.problems == [], watch.problems
        # Last: a full-page screenshot (Playwright resizes the page) draws CSP reports itself.
        shot(page, "lift")
