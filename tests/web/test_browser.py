"""Headless Chromium (Debian's, driven by Playwright) against a real server:
sign in, land on the dashboard, and see an htmx swap work with locally served assets."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session

from bench._harness import live_server
from core import migrations
from core.db import make_engine
from core.settings import Settings
from tests.conftest import unavailable
from web.app import create_app
from web.demo import load

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    settings = Settings(
        env="test", data_dir=tmp_path, database_url=url, secret_key=SecretStr("b" * 40), demo=True
    )
    with Session(engine) as session:
        load(session, settings)
        session.commit()
    engine.dispose()
    with live_server(create_app(settings)) as base:
        yield base


@contextmanager
def chromium_page(**options: Any) -> Iterator[Any]:
    """A page in Debian's Chromium (skipped on a laptop without it; CI fails instead)."""
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium not found at {CHROMIUM}; install Debian's chromium package")
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Error as exc:
            unavailable(f"Chromium did not start: {exc}")
        yield browser.new_page(**options)
        browser.close()


@pytest.fixture
def page(server: str) -> Iterator[Any]:
    with chromium_page(viewport={"width": 1280, "height": 800}) as opened:
        yield opened


def test_sign_in_dashboard_and_htmx_swap(server: str, page: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    hosts: set[str] = set()
    problems: list[str] = []
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    page.goto(f"{server}/dashboard")
    assert page.url == f"{server}/signin?next=/dashboard"
    page.screenshot(path=str(SHOTS / "signin.png"), full_page=True)
    page.fill("input[name=email]", "admin@demo.retain")
    page.fill("input[name=password]", "retain-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/dashboard")
    assert "Good to see you, Ada" in page.inner_text("h1")
    page.wait_for_function("() => window.htmx !== undefined")

    page.evaluate("() => { window.__marker = 42 }")
    stamp = "#system-status [data-checked-at]"
    before = page.get_attribute(stamp, "data-checked-at")
    with page.expect_request(lambda r: r.headers.get("hx-request") == "true") as swap:
        page.click("text=Check again")
    assert swap.value.headers.get("hx-target") == "system-status"
    page.wait_for_function(
        "old => document.querySelector('#system-status [data-checked-at]')"
        ".getAttribute('data-checked-at') !== old",
        arg=before,
    )
    assert page.evaluate("() => window.__marker") == 42  # swapped in place, no reload
    assert page.url == f"{server}/dashboard"
    assert page.locator("#system-status h2").count() == 1  # the block, not a nested page
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    assert hosts == {server.split("/")[2]}, "every asset is served locally"
    assert problems == []


def sign_in_as(page: Any, server: str, email: str) -> None:
    page.goto(f"{server}/signin")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "retain-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/dashboard")


def test_campaign_receipt_approval_and_roi(server: str, page: Any, tmp_path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n")

    sign_in_as(page, server, "marketer@demo.retain")
    page.click("text=Campaigns")
    page.click("text=New campaign")
    page.fill("input[name=name]", "Browser launch")
    page.fill("input[name=code]", "BROWSER1")
    page.select_option("select[name=channel]", "douyin")
    page.fill("input[name=starts_on]", "2026-11-01")
    page.fill("input[name=ends_on]", "2026-11-30")
    page.fill("input[name=budget]", "8000")
    page.click("text=Create campaign")
    page.wait_for_selector("text=Campaign BROWSER1 created.")
    page.click("text=Add receipt")
    page.fill("input[name=vendor]", "Ocean Engine")
    page.fill("input[name=expense_date]", "2026-11-05")
    page.fill("input[name=amount]", "2000")
    page.set_input_files("input[name=files]", str(invoice))
    page.click("text=Save and submit for approval")
    page.wait_for_selector("text=saved and submitted")
    receipt_url = page.url
    assert "invoice.pdf" in page.inner_text("main")
    page.click("text=Sign out")

    sign_in_as(page, server, "finance@demo.retain")
    page.click("nav .nav-group summary:has-text('Finance')")  # the top bar's Finance menu
    page.click("nav .nav-group a:has-text('Finance queue')")
    assert "Ocean Engine" in page.inner_text("main")
    page.goto(receipt_url)
    page.click("#receipt-actions button:has-text('Approve')")
    page.wait_for_selector("text=approved.")

    page.goto(f"{server}/reports/roi?channel=douyin")
    row = page.locator("#roi-table tbody tr", has_text="BROWSER1")
    cells = row.locator("td").all_inner_texts()
    assert cells[:4] == ["BROWSER1", "Browser launch", "8,000.00", "2,000.00"]
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-ratio') !== undefined")
    drawn = page.evaluate("() => Chart.getChart('chart-budget').data.labels")
    assert "BROWSER1" in drawn
    page.screenshot(path=str(SHOTS / "roi.png"), full_page=True)
    assert problems == []
