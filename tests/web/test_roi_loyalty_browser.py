"""The ROI report's "Include loyalty cost" switch in headless Chromium under the real CSP
(issue 15): unticked and shown, the report leaves the loyalty cost out; ticked again, it is
back; the link beside the state does the same. No script is involved, and the page raises
no console error, CSP violation or 5xx. The data: GIVE of tests/web/test_roi_loyalty_cost.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session

from bench._harness import live_server
from core import migrations
from core.accounts import users
from core.audit import Actor
from core.db import make_engine
from core.settings import Settings
from tests.web.test_roi_loyalty_cost import give_away
from tests.web.test_staff_controls_browser import opened, sign_in
from web.app import create_app

pytestmark = pytest.mark.browser
PASSWORD = "long-password-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("roi-loyalty")
    url = f"sqlite:///{tmp / 'roi.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    settings = Settings(env="test", data_dir=tmp, database_url=url, secret_key=SecretStr("l" * 40))
    with Session(engine) as session:
        owner = users.create(
            session,
            Actor.system(),
            email="marketer@example.com",
            name="Marketer",
            roles=["marketer"],
            password=PASSWORD,
        )
        give_away(session, owner.id)
        session.commit()
    with live_server(create_app(settings)) as base:
        yield base
    engine.dispose()


def headers(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#roi-table thead th").all_inner_texts()]


def test_the_switch_works_without_script(server: str) -> None:
    with opened() as (page, watch):
        sign_in(page, server, "marketer@example.com", PASSWORD)
        page.goto(f"{server}/reports/roi")
        assert "Loyalty cost" in headers(page) and page.is_checked("#loyalty-cost-switch")
        page.uncheck("#loyalty-cost-switch")
        with page.expect_navigation():
            page.click("form.filters button[type=submit]")
        assert "loyalty_cost=0" in page.url and "loyalty_cost=1" not in page.url
        assert "Loyalty cost" not in headers(page)
        assert not page.is_checked("#loyalty-cost-switch")
        page.check("#loyalty-cost-switch")
        with page.expect_navigation():
            page.click("form.filters button[type=submit]")
        assert "Loyalty cost" in headers(page)
        with page.expect_navigation():
            page.click("#loyalty-state a")
        assert page.url.endswith("/reports/roi?loyalty_cost=0")
        assert "Total cost" not in headers(page)
        with page.expect_navigation():
            page.click("#loyalty-state a")
        assert "Total cost" in headers(page)
        assert watch.problems == []
