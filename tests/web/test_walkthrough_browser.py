"""Issue 12's "Done when": a walk through the product as each person who uses it, in English
and in Chinese, on a laptop (1366 px) and a phone (375 px), in headless Chromium under the
real CSP, saving a screenshot of every page (test-artifacts/screenshots/walk-*.png).

Each page must load without a console error, CSP violation, uncaught exception or 5xx, must
not scroll sideways on the phone (wide tables scroll inside their own frame), and must speak
the chosen language (`<html lang>` and a word only that language has).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.web.test_staff_controls_browser import opened, shop, shot, sign_in
from web.demo_loyalty import DEMO_MEMBER_EMAIL, DEMO_MEMBER_PASSWORD

pytestmark = pytest.mark.browser
__all__ = ["shop"]  # the module's live demo server, shared with the controls test

SIZES = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 375, "height": 812}}
# A word each language shows on every staff page (the navigation), and on the portal.
STAFF_WORD = {"en": "Dashboard", "zh": "仪表板"}
PORTAL_WORD = {"en": "Rewards", "zh": "积分兑换"}


def choose_language(page: Any, language: str) -> None:
    """Use the switcher in the page frame, as a person would."""
    if page.get_attribute("html", "lang").startswith(language):
        return
    with page.expect_navigation():
        page.click(f".language-switch button[value={language}]")
    assert page.get_attribute("html", "lang").startswith(language)


def check(page: Any, name: str, word: str, width: int) -> None:
    """The page as it stands: in its language, fitting the screen, saved as a picture."""
    page.wait_for_load_state("load")
    assert word in page.inner_text("body"), f"{name}: '{word}' not shown"
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at {width}px"
    shot(page, f"walk-{name}")


Step = Callable[[Any, str], str]  # does something on the page, returns the shot's name


PHONE: set[Step] = set()  # the steps also walked at phone size (the rest at laptop size only)


def on_phone(step: Step) -> Step:
    PHONE.add(step)
    return step


def visit(path: str, *, phone: bool = False) -> Step:
    def step(page: Any, base: str) -> str:
        page.goto(f"{base}{path}")
        return path.strip("/").replace("/", "-").split("?")[0] or "home"

    return on_phone(step) if phone else step


@on_phone
def refused_campaign_form(page: Any, base: str) -> str:
    """A bad campaign form: every problem beside its field, every input kept."""
    page.goto(f"{base}/campaigns/new")
    page.fill("#f-name", "Walk test")
    page.fill("#f-code", "WALK1")
    page.fill("#f-starts_on", "2026-05-01")
    page.fill("#f-ends_on", "2026-04-01")
    page.fill("#f-budget", "7,85")
    with page.expect_navigation():
        page.click("main form[action='/campaigns'] button[type=submit]")
    assert page.locator(".field-error").count() >= 1
    assert page.input_value("#f-budget") == "7,85" and page.input_value("#f-name") == "Walk test"
    return "campaign-form-refused"


def roi_drill_down(page: Any, base: str) -> str:
    page.goto(f"{base}/reports/roi?group_by=channel")
    with page.expect_navigation():
        page.locator("#roi-table tbody a").first.click()
    assert "channel=" in page.url
    return "roi-drill-down"


def segment_builder(page: Any, base: str) -> str:
    """Tick an age band: the live count (htmx on change, no inline script) answers."""
    page.goto(f"{base}/segments/new")
    before = page.get_attribute("#match-count", "data-count")
    with page.expect_response(lambda r: r.url.endswith("/segments/match")):
        page.locator("input[name='age_bands']").first.check()
    page.wait_for_function(
        "before => document.querySelector('#match-count')?.dataset.count !== before", arg=before
    )
    return "segment-builder-count"


def incremental_roi_and_lift(page: Any, base: str) -> str:
    """The ROI report on the incremental basis names the campaign with a holdout; its lift
    page opens from there."""
    page.goto(f"{base}/reports/roi?basis=incremental")
    with page.expect_navigation():
        page.locator("#basis-incremental a[href$='/lift']").first.click()
    assert "/lift" in page.url
    return "campaign-lift"


def liability_method(page: Any, base: str) -> str:
    """Choosing the chain ladder reloads the liability with it (a script, not inline)."""
    page.goto(f"{base}/finance/liability")
    with page.expect_navigation():
        page.select_option("#liability-filters select[name='method']", "chain_ladder")
    assert "method=chain_ladder" in page.url
    return "liability-chain-ladder"


@on_phone
def member_page(page: Any, base: str) -> str:
    """Find the demo member and open their page."""
    page.goto(f"{base}/members?q={DEMO_MEMBER_EMAIL}")
    with page.expect_navigation():
        page.locator("table a[href^='/members/M']").first.click()
    assert page.locator("#ledger-rows").count() == 1
    return "member-page"


WALKS: dict[str, tuple[str, list[Step]]] = {
    "marketer": (
        "marketer@demo.retain",
        [
            visit("/dashboard", phone=True),
            visit("/campaigns"),
            visit("/campaigns/1", phone=True),
            refused_campaign_form,
            visit("/reports/roi", phone=True),
            visit("/reports/roi?group_by=channel&compare=1&from=2026-10-01&to=2026-12-31"),
            roi_drill_down,
            incremental_roi_and_lift,
            visit("/attribution"),
            visit("/value", phone=True),
            visit("/value/rfm"),
            visit("/value/clv"),
            visit("/value/types"),
            visit("/audience", phone=True),
            visit("/segments"),
            visit("/segments/new", phone=True),
            segment_builder,
            visit("/members"),
            member_page,
            visit("/members/new", phone=True),
            visit("/loyalty/program"),
            visit("/loyalty/coupons"),
            visit("/receipts/mine"),
        ],
    ),
    "finance": (
        "finance@demo.retain",
        [
            visit("/dashboard", phone=True),
            visit("/finance/queue", phone=True),
            visit("/receipts/1", phone=True),
            visit("/receipts/mine"),
            visit("/finance/periods"),
            visit("/finance/rates"),
            visit("/imports"),
            visit("/finance/liability", phone=True),
            liability_method,
        ],
    ),
    "admin": (
        "admin@demo.retain",
        [
            visit("/dashboard", phone=True),
            visit("/admin/users", phone=True),
            visit("/admin/api-keys"),
            visit("/admin/audit"),
            visit("/channels"),
        ],
    ),
}


@pytest.fixture(
    params=[(lang, size) for lang in ("en", "zh") for size in SIZES],
    ids=[f"{lang}-{size}" for lang in ("en", "zh") for size in SIZES],
)
def setting(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    yield request.param


@pytest.mark.parametrize("role", list(WALKS))
def test_staff_walk(shop: tuple[str, str], role: str, setting: tuple[str, str]) -> None:
    base, _ = shop
    language, size = setting
    email, steps = WALKS[role]
    with opened(viewport=SIZES[size]) as (page, watch):
        sign_in(page, base, email)
        choose_language(page, language)
        for step in steps:
            if size == "phone" and step not in PHONE:
                continue
            name = step(page, base)
            if step is refused_campaign_form:  # the refusal's 422, logged by the browser
                watch.problems = [p for p in watch.problems if "status of 422" not in p]
            check(
                page, f"{language}-{size}-{role}-{name}", STAFF_WORD[language], SIZES[size]["width"]
            )
        assert watch.problems == []


def test_member_walk(shop: tuple[str, str], setting: tuple[str, str]) -> None:
    base, _ = shop
    language, size = setting
    with opened(viewport=SIZES[size]) as (page, watch):
        page.goto(f"{base}/my/signin")
        page.fill("#identifier", DEMO_MEMBER_EMAIL)
        page.fill("#password", DEMO_MEMBER_PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/my")
        if not page.get_attribute("html", "lang").startswith(language):
            with page.expect_navigation():
                page.click(f"form[action='/my/language'] button[value={language}]")
        for path in ("/my", "/my/history", "/my/coupons", "/my/rewards", "/my/referrals"):
            page.goto(f"{base}{path}")
            name = path.strip("/").replace("/", "-")
            check(
                page,
                f"{language}-{size}-member-{name}",
                PORTAL_WORD[language],
                SIZES[size]["width"],
            )
        page.goto(f"{base}/my")
        assert page.locator(".member-card svg[role=img][aria-label]").count() == 1  # the card QR
        assert watch.problems == []
