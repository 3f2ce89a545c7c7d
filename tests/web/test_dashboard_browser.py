"""The dashboard's charts in headless Chromium under the real CSP, on the demo data: each
role's charts are drawn from the page's JSON blocks by the static dashboard.js, with no
console error, CSP violation or failed request; each chart's data matches the figures the
page writes out for those who cannot see it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web import test_browser
from tests.web.test_staff_controls_browser import opened, shot
from web.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser
server = test_browser.server  # the fixture: the demo on a live server

CHARTS = {
    "marketer@demo.retain": ("chart-spend", "chart-campaigns", "chart-loyalty"),
    "finance@demo.retain": ("chart-ageing",),
    "admin@demo.retain": ("chart-loyalty",),
}
ALL = {"chart-spend", "chart-campaigns", "chart-loyalty", "chart-ageing"}


def browser_sign_in(page: Any, base: str, email: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/signin")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form[action='/signin'] button[type=submit]")  # not the language switch
    page.wait_for_url(f"{base}/dashboard")


def test_each_role_sees_its_charts_drawn_without_errors(server: str) -> None:
    with opened() as (page, watch):
        for email, charts in CHARTS.items():
            browser_sign_in(page, server, email)
            page.wait_for_function(
                "ids => window.Chart && ids.every(id => Chart.getChart(id) !== undefined)",
                arg=list(charts),
            )
            for absent in ALL - set(charts):
                assert page.locator(f"#{absent}").count() == 0, (email, absent)
            for chart in charts:
                canvas = page.locator(f"#{chart}")
                assert canvas.get_attribute("role") == "img"
                assert len(canvas.get_attribute("aria-label") or "") > 20
            if "chart-loyalty" in charts:
                drawn = page.evaluate(
                    "() => Chart.getChart('chart-loyalty').data.datasets.map(d => d.data)"
                )
                rows = page.locator("#dash-loyalty-months tbody tr")
                assert rows.count() == 12 == len(drawn[0])
                last = rows.nth(11).locator("td").all_inner_texts()
                issued, redeemed, expired = (int(v.replace(",", "")) for v in last[:3])
                assert [d[-1] for d in drawn] == [issued, redeemed, expired, int(last[-1])]
            if "chart-ageing" in charts:
                drawn = page.evaluate(
                    "() => Chart.getChart('chart-ageing').data.datasets.map(d => d.data)"
                )
                rows = page.locator("#dash-ageing tbody tr")
                written = [
                    [float(c.replace(",", "")) for c in rows.nth(i).locator("td").all_inner_texts()]
                    for i in range(rows.count())
                ]
                assert drawn == [[r[1] for r in written], [r[3] for r in written]]
            assert (page.locator("#system-status").count() == 1) == email.startswith("admin")
            shot(page, f"dashboard-{email.split('@')[0]}")
        assert watch.problems == []
