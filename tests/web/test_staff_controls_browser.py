"""Every htmx and script interaction on the staff pages, in headless Chromium under the real
CSP: each test fails on any console error, uncaught exception, CSP violation, htmx error
(a target that matches nothing, a failed request) or a 5xx answer.

The CSP forbids inline script and eval, so an `onchange=` or `hx-on` does nothing without a
word on the page; only the browser shows it (as a `securitypolicyviolation` event and a
console error), which is why these run in a browser and not in the test client.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench._harness import live_server
from core import migrations
from core.audit import Actor
from core.db import make_engine
from core.settings import Settings
from core.timeutil import utcnow
from loyalty import ledger
from loyalty import program as program_settings
from loyalty.models import Coupon, EntryType, LedgerEntry, Member
from tests.web.test_browser import SHOTS, chromium_page
from web.app import create_app
from web.demo import DEMO_PASSWORD, load
from web.demo_loyalty import DEMO_MEMBER_EMAIL, DEMO_MEMBER_PASSWORD

pytestmark = pytest.mark.browser

# Runs in every document before the page's own scripts: CSP violations and htmx's error
# events become console errors, which `watch` collects with everything else.
WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
    + ` at ${e.sourceFile || location.pathname}:${e.lineNumber} ${e.sample || ""}`);
});
for (const name of ["htmx:responseError", "htmx:sendError", "htmx:swapError",
                    "htmx:targetError", "htmx:evalDisallowedError", "htmx:onLoadError"]) {
  document.addEventListener(name, (e) => {
    console.error(`${name} on ${e.target && e.target.outerHTML.slice(0, 120)}`);
  });
}
window.__settled = 0;
document.addEventListener("htmx:afterSettle", () => { window.__settled += 1; });
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The demo on a live server, with a member whose history runs past one page; yields
    (base url, database url)."""
    tmp = tmp_path_factory.mktemp("staff-controls")
    url = f"sqlite:///{tmp / 'controls.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    settings = Settings(
        env="test", data_dir=tmp, database_url=url, secret_key=SecretStr("c" * 40), demo=True
    )
    with Session(engine) as session:
        load(session, settings)
        member = session.scalars(select(Member).where(Member.email == DEMO_MEMBER_EMAIL)).one()
        program = program_settings.get(session)
        for n in range(60):  # goodwill credits: past one page of history, enough to redeem
            locked = ledger.lock_member(session, member.id)
            ledger.credit(
                session,
                locked,
                Actor.cli("test"),
                [ledger.Credit(100, f"Goodwill {n + 1}", "adjust", EntryType.ADJUST)],
                key=f"browser-goodwill-{n}",
                at=utcnow() - timedelta(minutes=60 - n),
                program=program,
                zone=settings.zone,
            )
        session.commit()
    with live_server(create_app(settings)) as base:
        yield base, url
    engine.dispose()


@dataclass
class Watch:
    """What a page did wrong (`problems`), and the answers for the dialogs a test expects
    (`answers`: "accept" or "dismiss", in order; `asked` keeps their messages)."""

    problems: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def dialog(self, dialog: Any) -> None:
        self.asked.append(dialog.message)
        if not self.answers:
            self.problems.append(f"unexpected dialog: {dialog.message}")
            dialog.dismiss()
        elif self.answers.pop(0) == "accept":
            dialog.accept()
        else:
            dialog.dismiss()


@contextmanager
def opened(**options: Any) -> Iterator[tuple[Any, Watch]]:
    """A Chromium page watched for problems; the test asserts there are none at the end."""
    options.setdefault("viewport", {"width": 1366, "height": 900})
    with chromium_page(**options) as page:
        watch = Watch()
        page.add_init_script(WATCH)
        page.on("console", lambda m: watch.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: watch.problems.append(f"uncaught: {exc}"))
        page.on(
            "response",
            lambda r: watch.problems.append(f"{r.status} {r.url}") if r.status >= 500 else None,
        )
        page.on("dialog", watch.dialog)
        yield page, watch


def sign_in(page: Any, base: str, email: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(f"{base}/signin")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard")
    page.wait_for_function("() => window.htmx !== undefined")


def htmx_click(page: Any, selector: str) -> None:
    """Click an htmx control and wait until its swap has settled, without a page load."""
    before = page.evaluate("() => { window.__same = true; return window.__settled }")
    page.click(selector)
    page.wait_for_function("n => window.__settled > n", arg=before)
    assert page.evaluate("() => window.__same === true"), "the page reloaded: not an htmx swap"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def history_rows(page: Any) -> list[str]:
    return list(page.locator("#ledger-rows tr:not(#more-row) td:nth-child(2)").all_inner_texts())


def test_member_history_type_filter_and_load_more(shop: tuple[str, str]) -> None:
    base, db_url = shop
    with opened() as (page, watch):
        sign_in(page, base, "finance@demo.retain")
        page.goto(f"{base}/members?q={DEMO_MEMBER_EMAIL}")
        page.click("table a[href^='/members/M']")
        page.wait_for_selector("#ledger-rows")
        member_url = page.url.split("?")[0]
        assert len(history_rows(page)) == 50
        assert page.locator("#more-row a").inner_text() == "Load more"

        htmx_click(page, "#more-row a")
        shown = history_rows(page)
        assert (
            len(shown) > 50 and page.locator("#ledger-rows thead, #ledger-rows tbody").count() == 0
        )
        ids = page.locator("#ledger-rows > tr").count()
        assert ids == len(shown) + page.locator("#more-row").count()  # rows, not a nested page
        assert page.url == member_url  # swapped in place
        while page.locator("#more-row").count():
            htmx_click(page, "#more-row a")
        with Session(make_engine(db_url)) as session:
            member = session.scalars(select(Member).where(Member.email == DEMO_MEMBER_EMAIL)).one()
            total = session.scalar(
                select(func.count(LedgerEntry.id)).where(LedgerEntry.member_id == member.id)
            )
        assert len(history_rows(page)) == total  # every entry, each once
        shot(page, "member-history-all")

        # The type filter submits on change (a static script; the CSP ignores onchange=).
        with page.expect_navigation():
            page.select_option("select[name=type]", "adjust")
        assert "type=adjust" in page.url
        assert set(history_rows(page)) == {"Adjusted"} and len(history_rows(page)) == 50
        htmx_click(page, "#more-row a")  # load more keeps the filter
        assert set(history_rows(page)) == {"Adjusted"} and len(history_rows(page)) == 60
        with page.expect_navigation():
            page.select_option("select[name=type]", "")
        assert len(history_rows(page)) == 50
        page.locator("#ledger").scroll_into_view_if_needed()
        shot(page, "member-page")
        assert watch.problems == []


def test_dashboard_campaign_filters_and_roi_controls(shop: tuple[str, str]) -> None:
    base, _ = shop
    with opened() as (page, watch):
        # The dashboard's htmx control ("Check again" on the database status) is an admin's.
        sign_in(page, base, "admin@demo.retain")
        # Every htmx control on the dashboard swaps its block in place.
        controls = page.locator("[hx-get]")
        clicked = 0
        for n in range(controls.count()):
            control = controls.nth(n)
            trigger = control.get_attribute("hx-trigger") or "click"
            if "click" not in trigger or not control.is_visible():
                continue
            target = control.get_attribute("hx-target") or ""
            htmx_click(page, f":nth-match([hx-get], {n + 1})")
            clicked += 1
            if target.startswith("#"):
                assert page.locator(f"{target} {target}").count() == 0  # no page in a page
        assert clicked >= 1
        assert page.url == f"{base}/dashboard"
        page.context.clear_cookies()
        sign_in(page, base, "marketer@demo.retain")

        page.goto(f"{base}/campaigns")
        page.select_option("select[name=status]", "active")
        with page.expect_navigation():
            page.click("form.filters button[type=submit]")
        assert "status=active" in page.url
        states = page.locator("table.report tbody .status").all_inner_texts()
        assert states and set(states) == {"Active"}
        with page.expect_navigation():
            page.locator("table.report tbody a[href^='/campaigns/']").first.click()
        if page.locator("canvas").count():  # the campaign's charts (charts.js)
            page.wait_for_function(
                "() => window.Chart && [...document.querySelectorAll('canvas')]"
                ".some(c => Chart.getChart(c) !== undefined)"
            )

        page.goto(f"{base}/reports/roi")
        page.wait_for_function("() => window.Chart && Chart.getChart('chart-ratio') !== undefined")
        page.select_option("select[name=group_by]", "channel")
        with page.expect_navigation():
            page.click("form.filters button[type=submit]")
        assert "group_by=channel" in page.url
        page.wait_for_function("() => window.Chart && Chart.getChart('chart-budget') !== undefined")
        assert page.locator("#roi-table thead th").first.inner_text().lower() == "channel"
        # Whatever else the report offers (sorting, drill-down, presets): each link works.
        for link in page.locator("#roi-table thead a, #roi-table tbody a, .presets a").all()[:6]:
            href = link.get_attribute("href")
            if href and not href.startswith("#"):
                page.goto(f"{base}{href}" if href.startswith("/") else href)
                page.go_back()
        assert watch.problems == []


def test_finance_queue_selects_and_approves_in_bulk(shop: tuple[str, str]) -> None:
    base, _ = shop
    with opened() as (page, watch):
        sign_in(page, base, "finance@demo.retain")
        page.goto(f"{base}/finance/queue")
        boxes = page.locator("input[type=checkbox][name=ids]")
        assert boxes.count() > 0
        waiting = page.locator("form").filter(has=page.locator("button[value=approve]"))
        # A "select all" control, when the queue has one, selects every receipt in its table.
        select_all = waiting.locator("thead input[type=checkbox], [data-select-all]")
        if select_all.count():
            select_all.first.check()
            assert all(b.is_checked() for b in waiting.locator("input[name=ids]").all())
            select_all.first.uncheck()
            assert not any(b.is_checked() for b in waiting.locator("input[name=ids]").all())
        first = waiting.locator("input[name=ids]").first
        receipt = first.get_attribute("value")
        first.check()
        with page.expect_navigation():
            waiting.locator("button[value=approve]").click()
        assert page.locator(".toast").count() >= 1
        assert page.locator(f"input[name=ids][value='{receipt}']").count() <= 1  # moved on
        # Month close asks first (app.js's data-confirm): dismissed, nothing is posted.
        page.goto(f"{base}/finance/periods")
        closing = page.locator("form[data-confirm]")
        if closing.count():
            posted: list[str] = []
            page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
            watch.answers.append("dismiss")
            closing.first.locator("button").click()
            page.wait_for_timeout(300)
            assert watch.asked[-1].startswith("Close ") and posted == []
        assert watch.problems == []


def test_audit_log_filters_and_paging(shop: tuple[str, str]) -> None:
    base, _ = shop
    with opened() as (page, watch):
        sign_in(page, base, "admin@demo.retain")
        page.goto(f"{base}/admin/audit")
        first_page = page.locator("#audit-rows tr").count()
        assert first_page == 50
        htmx_click(page, "#audit-more button")
        assert page.locator("#audit-rows tr").count() > first_page
        assert page.url == f"{base}/admin/audit"
        page.select_option("select[name=action]", "coupon.issue")
        with page.expect_navigation():
            page.click("form.filters button[type=submit]")
        assert "action=coupon.issue" in page.url
        actions = page.locator("#audit-rows td:nth-child(3)").all_inner_texts()
        assert actions and set(actions) == {"coupon.issue"}
        if page.locator("#audit-more button").count():
            htmx_click(page, "#audit-more button")  # paging keeps the filter
            more = page.locator("#audit-rows td:nth-child(3)").all_inner_texts()
            assert len(more) > len(actions) and set(more) == {"coupon.issue"}
        assert watch.problems == []


def test_api_key_copy_and_revoke_confirmation(shop: tuple[str, str]) -> None:
    base, _ = shop
    with opened(permissions=["clipboard-read", "clipboard-write"]) as (page, watch):
        sign_in(page, base, "admin@demo.retain")
        page.goto(f"{base}/admin/api-keys")
        page.fill("input[name=name]", "Browser till")
        page.locator("input[name=scopes]").first.check()
        with page.expect_navigation():
            page.click("text=Create key")
        page.click("#new-key [data-copy]")
        page.wait_for_function("() => document.querySelector('#new-key [data-copy]')"
                               ".textContent === 'Copied'")  # fmt: skip
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert copied == page.input_value("#new-key-value")
        row = page.locator("tr", has_text="Browser till")
        watch.answers.append("dismiss")
        row.locator("button:has-text('Revoke')").click()
        page.wait_for_timeout(300)
        assert watch.asked[-1].startswith("Revoke “Browser till”?")
        assert row.locator("text=Revoked").count() == 0
        watch.answers.append("accept")
        with page.expect_navigation():
            row.locator("button:has-text('Revoke')").click()
        assert page.locator("tr", has_text="Browser till").locator("text=Revoked").count() == 1
        assert watch.problems == []


def test_coupon_batch_issue_asks_how_many_first(shop: tuple[str, str]) -> None:
    base, db_url = shop
    engine = make_engine(db_url)
    with opened() as (page, watch):
        sign_in(page, base, "marketer@demo.retain")
        page.goto(f"{base}/loyalty/coupons")
        page.click("#batches a:has-text('Tea gift box')")
        batch_url = page.url
        before = int(page.locator("#batch-counts dd").first.inner_text().replace(",", ""))
        assert page.locator("select[name=tiers]").input_value() == ""  # "Every member"
        with page.expect_navigation():
            page.click("text=Review and issue…")
        count = page.locator("#issue-count strong").inner_text()
        members = int(re.sub(r"\D", "", count))
        assert members > 100
        shot(page, "coupon-batch-confirm")
        with Session(engine) as session:  # nothing issued yet
            assert session.scalar(select(func.count(Coupon.id))) is not None
            issued_now = session.scalar(
                select(func.count(Coupon.id)).where(Coupon.issued_reason == "Issued by staff")
            )
            assert issued_now == 0
        with page.expect_navigation():
            page.click(f"button:has-text('Issue {members:,} coupons')")
        assert page.url == batch_url
        assert f"issued to {members:,} members" in page.locator(".toast").inner_text()
        after = int(page.locator("#batch-counts dd").first.inner_text().replace(",", ""))
        assert after == before + members
        shot(page, "coupon-batch-issued")
        assert watch.problems == []
    engine.dispose()


def test_portal_back_then_submit_again_redeems_once(shop: tuple[str, str]) -> None:
    base, db_url = shop
    engine = make_engine(db_url)

    def redeemed() -> int:
        with Session(engine) as session:
            member = session.scalars(select(Member).where(Member.email == DEMO_MEMBER_EMAIL)).one()
            return (
                session.scalar(
                    select(func.count(LedgerEntry.id)).where(
                        LedgerEntry.member_id == member.id, LedgerEntry.type == EntryType.REDEEM
                    )
                )
                or 0
            )

    with opened(viewport={"width": 375, "height": 812}) as (page, watch):
        page.goto(f"{base}/my/signin")
        page.fill("input[name=identifier]", DEMO_MEMBER_EMAIL)
        page.fill("input[name=password]", DEMO_MEMBER_PASSWORD)
        page.click("form[action='/my/signin'] button[type=submit]")
        page.wait_for_url(f"{base}/my")
        page.goto(f"{base}/my/rewards")
        page.locator("a[href^='/my/rewards/']").first.click()
        page.wait_for_selector("#reward-confirm form")
        page.wait_for_url(re.compile(r"/my/rewards/\d+\?key="))  # Back will come here
        # The same confirmation, kept open in a second window of the same session.
        other = page.context.browser.new_context(viewport={"width": 375, "height": 812})
        other.add_cookies(page.context.cookies())
        kept = other.new_page()
        kept.on("console", lambda m: watch.problems.append(m.text) if m.type == "error" else None)
        kept.goto(page.url)
        start = redeemed()
        with page.expect_navigation():
            page.click("text=Yes, redeem")
        coupon_url = page.url
        assert "/my/coupons/" in coupon_url and redeemed() == start + 1
        page.go_back()
        page.wait_for_selector("#reward-confirm")
        assert page.locator("#reward-confirm form").count() == 0
        assert page.locator("#reward-confirm .status-redeemed").count() == 1
        shot(page, "portal-reward-back")
        # The copy kept open posts the same key: the first answer again, no second spend.
        with kept.expect_navigation():
            kept.click("text=Yes, redeem")
        assert kept.url == coupon_url and redeemed() == start + 1
        other.close()
        assert watch.problems == []
    engine.dispose()


def test_staff_pages_load_without_errors(shop: tuple[str, str]) -> None:
    """Every page in each role's navigation loads its scripts and styles without a problem."""
    base, _ = shop
    for email in ("admin@demo.retain", "marketer@demo.retain", "finance@demo.retain"):
        with opened() as (page, watch):
            sign_in(page, base, email)
            links = page.locator("nav .nav-links a").evaluate_all(
                "links => links.map(a => a.getAttribute('href'))"
            )
            for href in [*links, "/loyalty/coupons", "/loyalty/rewards", "/loyalty/program"]:
                page.goto(f"{base}{href}")
                page.wait_for_load_state("load")
            assert watch.problems == [], email


def test_top_bar_menus_open_lead_and_close(shop: tuple[str, str]) -> None:
    """The top bar fits one line at laptop width, in English and Chinese: its groups
    (Finance, Analysis, Admin) open on a click, lead to their pages with the group marked
    current, and close on a click elsewhere or on Escape."""
    base, _ = shop
    for language in ("en", "zh"):
        with opened() as (page, watch):
            sign_in(page, base, "admin@demo.retain")
            if language == "zh":
                page.click("footer .language-switch button[value=zh]")
                page.wait_for_load_state("load")
            boxes = page.locator("nav .nav-links > li").evaluate_all(
                "items => items.map(li => [li.getBoundingClientRect().top,"
                " li.getBoundingClientRect().bottom])"
            )
            assert max(top for top, _ in boxes) < min(bottom for _, bottom in boxes), (
                f"the top bar wraps ({language}): {boxes}"
            )
            finance = page.locator("details.nav-group").nth(0)
            finance.locator("summary").click()
            assert finance.get_attribute("open") is not None
            page.locator("body").click(position={"x": 5, "y": 600})
            assert finance.get_attribute("open") is None
            finance.locator("summary").click()
            page.keyboard.press("Escape")
            assert finance.get_attribute("open") is None
            finance.locator("summary").click()
            finance.locator("a[href='/finance/periods']").click()
            page.wait_for_url(f"{base}/finance/periods")
            assert "current" in (
                page.locator("details.nav-group summary").nth(0).get_attribute("class") or ""
            )
            current = page.locator("nav .nav-links a[aria-current=page]")
            assert current.evaluate_all("links => links.map(a => a.getAttribute('href'))") == [
                "/finance/periods"
            ]
            assert watch.problems == []
