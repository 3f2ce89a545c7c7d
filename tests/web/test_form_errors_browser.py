"""A form refused and drawn again shows its first problem: focused, and in view with its
message, even when the form sits far down a long page (the campaign page's revenue form) or
at the bottom of the window (a coupon batch's "Generate codes"), in headless Chromium under
the real CSP (`web/static/controls.js` does the scrolling; no inline script)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.test_staff_controls_browser import Watch, opened, shop, shot, sign_in

pytestmark = pytest.mark.browser
__all__ = ["shop"]  # the live demo server, a module fixture reused from the controls tests

# Where the first problem is once the page has settled: which element has the focus, and
# whether the first field marked invalid, its message and the summary are inside the window.
FIRST_PROBLEM = """() => {
  const inView = (el) => {
    if (!el) return null;
    const box = el.getBoundingClientRect();
    return box.top >= 0 && box.bottom <= window.innerHeight && box.height > 0;
  };
  const where = () => {
    const first = document.querySelector('[aria-invalid="true"]');
    const message = first && document.getElementById(first.id + "-error");
    const active = document.activeElement;
    return {
      first: first && first.id,
      focused: active && (active.id || active.tagName),
      fieldInView: inView(first),
      messageInView: inView(message),
      summaryInView: inView(document.getElementById("form-problems")),
      invalid: [...document.querySelectorAll('[aria-invalid="true"]')].map((el) => el.id),
      scrollY: window.scrollY,
    };
  };
  const settled = (then) => requestAnimationFrame(() => requestAnimationFrame(then));
  return new Promise((done) => settled(() => done(where())));
}"""


def first_problem(page: Any) -> dict[str, Any]:
    page.wait_for_load_state("load")
    state: dict[str, Any] = page.evaluate(FIRST_PROBLEM)
    return state


def refused_only(watch: Watch) -> list[str]:
    """The watch's problems but the refused submit's own 422, which the test asked for."""
    return [p for p in watch.problems if "status of 422" not in p]


def no_browser_checks(page: Any) -> None:
    """Let the server judge the values (the browser's own checks would stop the submit)."""
    page.evaluate("() => document.querySelectorAll('form').forEach((f) => (f.noValidate = true))")


def test_a_refused_revenue_record_shows_its_first_problem_far_down_the_page(
    shop: tuple[str, str],
) -> None:
    base, _ = shop
    with opened() as (page, watch):
        sign_in(page, base, "finance@demo.retain")
        page.goto(f"{base}/campaigns")
        page.click("table a[href^='/campaigns/']")
        page.click("#record-revenue summary")
        no_browser_checks(page)
        page.evaluate(
            """() => {
              const day = document.querySelector('#record-revenue input[name=received_on]');
              day.type = 'text';
              day.value = 'last Tuesday';
              const currency = document.querySelector('#record-revenue select[name=currency]');
              currency.add(new Option('XYZ', 'XYZ'));
              currency.value = 'XYZ';
            }"""
        )
        page.fill("#record-revenue input[name=amount]", "7,85")
        page.fill("#record-revenue input[name=orders]", "-3")
        with page.expect_navigation():
            page.click("#record-revenue button[type=submit]")
        state = first_problem(page)
        shot(page, "revenue-refused")
        # Every bad field at once, and the first one focused and shown with its message.
        assert set(state["invalid"]) == {
            "f-received_on",
            "f-amount",
            "f-currency",
            "f-orders",
        }, state
        assert state["first"] == "f-received_on" and state["focused"] == "f-received_on", state
        assert state["fieldInView"] and state["messageInView"], state
        assert state["summaryInView"], state  # the list of problems just above it
        assert state["scrollY"] > 900, state  # the form is far below the page's top
        assert page.input_value("#f-amount") == "7,85"  # every input kept
        assert refused_only(watch) == []


def test_a_refused_code_count_shows_its_problem_and_message_in_view(
    shop: tuple[str, str],
) -> None:
    base, _ = shop
    with opened() as (page, watch):
        sign_in(page, base, "marketer@demo.retain")
        page.goto(f"{base}/loyalty/coupons")
        page.click("#batches a:has-text('Tea gift box')")
        no_browser_checks(page)
        page.fill("#generate input[name=count]", "a few")
        with page.expect_navigation():
            page.click("#generate button[type=submit]")
        state = first_problem(page)
        shot(page, "coupon-generate-refused")
        assert state["first"] == "f-count" and state["focused"] == "f-count", state
        assert state["fieldInView"] and state["messageInView"], state
        assert state["summaryInView"], state
        assert refused_only(watch) == []


def test_a_refused_rate_focuses_the_currency_it_cannot_use(shop: tuple[str, str]) -> None:
    """The first problem is at a currency `<select>`, which has no `autofocus` of its own:
    the script focuses it, and every other problem of the form is named at once."""
    base, _ = shop
    with opened() as (page, watch):
        sign_in(page, base, "finance@demo.retain")
        page.goto(f"{base}/finance/rates")
        no_browser_checks(page)
        page.evaluate(
            """() => {
              const currency = document.querySelector('select[name=currency]');
              currency.add(new Option('XYZ', 'XYZ'));
              currency.value = 'XYZ';
              const day = document.querySelector('input[name=rate_date]');
              day.type = 'text';
              day.value = '31/03/2026';
            }"""
        )
        page.fill("input[name=rate]", "7,1")
        with page.expect_navigation():
            page.click("form[action='/finance/rates'] button[type=submit]")
        state = first_problem(page)
        assert set(state["invalid"]) == {"f-currency", "f-rate_date", "f-rate"}, state
        assert state["first"] == "f-currency" and state["focused"] == "f-currency", state
        assert state["fieldInView"] and state["messageInView"], state
        assert refused_only(watch) == []
