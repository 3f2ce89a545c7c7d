"""The attribution page's controls in headless Chromium under the real CSP (issue 13): both
charts drawn from the embedded JSON, the filter form, "Compute now" and its way back, and the
ROI report's revenue basis select. Fails on any console error, CSP violation or 5xx."""

from __future__ import annotations

import pytest

from tests.web.test_staff_controls_browser import opened, shop, shot, sign_in

pytestmark = pytest.mark.browser
__all__ = ["shop"]  # the module's live demo server

CHARTS = (
    "() => window.Chart && Chart.getChart('chart-attribution-conversions') !== undefined"
    " && Chart.getChart('chart-attribution-value') !== undefined"
)


def test_compare_filter_compute_and_use_as_revenue_basis(shop: tuple[str, str]) -> None:
    base, _ = shop
    with opened() as (page, watch):
        sign_in(page, base, "marketer@demo.retain")
        page.goto(f"{base}/attribution")
        page.wait_for_function(CHARTS)  # the demo stores every model by channel
        datasets = page.evaluate(
            "() => Chart.getChart('chart-attribution-value').data.datasets.length"
        )
        assert datasets == 8
        assert page.locator("#transition-matrix tbody tr").count() >= 2

        # The filter form: by campaign (stored by the demo too).
        page.select_option("select[name=unit]", "campaign")
        with page.expect_navigation():
            page.click("#attribution-filters button[type=submit]")
        assert "unit=campaign" in page.url
        page.wait_for_function(CHARTS)

        # Other parameters: nothing stored, so compute now and come back to the same address.
        page.fill("input[name=lookback]", "45")
        page.check("input[name=collapse]")
        with page.expect_navigation():
            page.click("#attribution-filters button[type=submit]")
        assert "lookback=45" in page.url and "collapse=1" in page.url
        assert page.locator("#attribution-not-computed").is_visible()
        with page.expect_navigation():
            page.click("#attribution-not-computed button[type=submit]")
        assert page.url == f"{base}/attribution?lookback=45&unit=campaign&collapse=1"
        assert "Computed and stored 8 models" in page.inner_text("#toasts")
        page.wait_for_function(CHARTS)
        shot(page, "attribution-computed")

        # The ROI report on an attribution model's revenue basis.
        page.goto(f"{base}/reports/roi")
        page.select_option("select[name=basis]", "markov")
        with page.expect_navigation():
            page.click("form.filters button[type=submit]")
        assert "basis=markov" in page.url
        assert page.locator("#basis-used").is_visible()
        page.wait_for_function("() => window.Chart && Chart.getChart('chart-ratio') !== undefined")
        assert watch.problems == []
