"""The finance queue's and the receipt page's scripts and previews in headless Chromium under
the real CSP (each test fails on a console error, a CSP violation or a 5xx): "select all" per
section, the live total of the ticked receipts (exact, in the base currency, equal to the
section's booked total), paying in bulk with one date and reference, attachments previewed
(an image, a PDF in a frame), and the receipt form keeping its files for the retry."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session

from bench._harness import live_server
from campaigns import attachments, planning, rates, receipts
from campaigns.receipts import ReceiptInput
from core import migrations
from core.accounts import users
from core.audit import Actor
from core.db import make_engine
from core.settings import Settings
from tests.web.test_staff_controls_browser import opened, shot, sign_in
from web.app import create_app

pytestmark = pytest.mark.browser
PASSWORD = "browser-pass-1"
# A PDF a viewer can draw (one page saying "Receipt").
PDF = b"\n".join(
    [
        b"%PDF-1.4",
        b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj",
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj",
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 200]/Contents 4 0 R"
        b"/Resources<</Font<</F1 5 0 R>>>>>>endobj",
        b"4 0 obj<</Length 42>>stream",
        b"BT /F1 24 Tf 50 100 Td (Receipt) Tj ET",
        b"endstream endobj",
        b"5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj",
        b"trailer<</Root 1 0 R>>",
        b"%%EOF",
        b"",
    ]
)


def _png(width: int = 120, height: int = 80) -> bytes:
    """A small red PNG a browser can draw."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([200, 60, 60]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = _png()


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, int]]]:
    """A live server with receipts awaiting approval and payment in CNY and USD, one of them
    with a PDF and a PNG; yields (base url, ids)."""
    tmp = tmp_path_factory.mktemp("finance-queue")
    url = f"sqlite:///{tmp / 'queue.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    settings = Settings(
        env="test", data_dir=tmp, database_url=url, secret_key=SecretStr("q" * 40), demo=True
    )
    ids: dict[str, int] = {}
    with Session(engine) as session:
        people = {
            name: users.create(
                session, Actor.system(), email=f"{name}@example.com", name=name.title(),
                roles=[role], password=PASSWORD,
            )
            for name, role in (
                ("marketer", "marketer"), ("finance", "finance"), ("approver", "finance")
            )
        }  # fmt: skip
        marketer = Actor("user", "m", user_id=people["marketer"].id, roles=frozenset({"marketer"}))
        approver = Actor("user", "a", user_id=people["approver"].id, roles=frozenset({"finance"}))
        campaign = planning.create(
            session, Actor.system(), code="SPRING26", name="Spring", channel="wechat",
            owner_id=people["marketer"].id, starts_on=date(2026, 3, 1),
            ends_on=date(2026, 3, 31), budget=Decimal(100_000), currency="CNY",
        )  # fmt: skip
        rates.set_rate(session, Actor.system(), "USD", date(2026, 3, 1), Decimal("7.1234"), "CNY")
        for n, (amount, currency, steps) in enumerate(
            [
                ("1200", "CNY", ("submit",)),
                ("101.58", "USD", ("submit",)),
                ("0.01", "CNY", ("submit",)),
                ("999999.99", "CNY", ("submit", "approve")),
                ("33.33", "USD", ("submit", "approve")),
                ("0.07", "CNY", ("submit", "approve")),
            ]
        ):
            data = ReceiptInput(
                campaign.id, f"Vendor {n}", "media", Decimal(amount), currency, date(2026, 3, 5 + n)
            )
            r = receipts.create(session, marketer, data)
            if n == 0:
                attachments.add(session, marketer, r.id, "invoice.pdf", PDF, tmp)
                attachments.add(session, marketer, r.id, "photo.png", PNG, tmp)
                ids["with_files"] = r.id
            for step in steps:
                receipts.transition(session, marketer if step == "submit" else approver, r.id, step)
        ids["campaign"] = campaign.id
        session.commit()
    with live_server(create_app(settings)) as base:
        yield base, ids
    engine.dispose()


def money(text: str) -> Decimal:
    """ "1,234.56 CNY" → Decimal("1234.56")."""
    return Decimal(text.split()[0].replace(",", ""))


def check_section(page: Any, name: str) -> None:
    form = page.locator(f"#queue-{name}")
    every = form.locator("[data-select-all]")
    boxes = form.locator("input[name=ids]")
    amount = form.locator("[data-selected-amount]")
    count = form.locator("[data-selected-count]")
    total = money(form.locator("[data-section-total]").inner_text())
    booked = [money(t) for t in form.locator("tbody tr td:nth-child(8)").all_inner_texts()]
    assert sum(booked) == total  # the rows add up to the section's total
    assert every.is_visible() and amount.inner_text() == "0.00 CNY" and count.inner_text() == "0"

    every.check()
    assert all(b.is_checked() for b in boxes.all())
    assert money(amount.inner_text()) == total and count.inner_text() == str(boxes.count())
    boxes.first.uncheck()  # the total follows each tick, exactly
    assert money(amount.inner_text()) == total - booked[0]
    assert page.evaluate(
        f"() => document.querySelector('#queue-{name} [data-select-all]').indeterminate"
    )
    boxes.first.check()
    assert every.is_checked() and money(amount.inner_text()) == total
    every.uncheck()
    assert not any(b.is_checked() for b in boxes.all()) and amount.inner_text() == "0.00 CNY"


def test_select_all_and_the_live_total_then_pay_in_bulk(
    office: tuple[str, dict[str, int]],
) -> None:
    base, _ = office
    with opened() as (page, watch):
        sign_in(page, base, "finance@example.com", PASSWORD)
        page.goto(f"{base}/finance/queue")
        for name in ("submitted", "approved"):
            check_section(page, name)
        # 999,999.99 + 33.33 USD × 7.1234 (237.422922 → 237.42) + 0.07, each booked once
        # as the ROI report books it, and summed exactly.
        approved = page.locator("#queue-approved")
        assert approved.locator("[data-section-total]").inner_text() == "1,000,237.48 CNY"
        approved.locator("[data-select-all]").check()
        assert approved.locator("[data-selected-amount]").inner_text() == "1,000,237.48 CNY"
        shot(page, "finance-queue-selected")
        approved.locator("input[name=payment_reference]").fill("TT-BATCH-1")
        with page.expect_navigation():
            approved.locator("button[value=pay]").click()
        assert page.locator("#queue-approved input[name=ids]").count() == 0  # all paid
        assert "3 receipt(s) paid on" in page.locator(".toast").first.inner_text()
        assert watch.problems == []


def test_the_receipt_page_previews_its_image_and_pdf(office: tuple[str, dict[str, int]]) -> None:
    base, ids = office
    with opened() as (page, watch):
        statuses: dict[str, int] = {}
        page.on(
            "response",
            lambda r: statuses.__setitem__(r.url, r.status),
        )
        sign_in(page, base, "finance@example.com", PASSWORD)
        page.goto(f"{base}/receipts/{ids['with_files']}")
        image = page.locator("img.attachment-preview")
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "() => { const i = document.querySelector('img.attachment-preview');"
            " return i && i.complete && i.naturalWidth > 0 }"
        )
        frame = page.locator("iframe.attachment-pdf")
        frame.scroll_into_view_if_needed()
        src = f"{base}{frame.get_attribute('src')}"
        page.wait_for_function("src => performance.getEntriesByName(src).length > 0", arg=src)
        page.wait_for_timeout(500)
        assert statuses[src] == 200
        # The PDF viewer drew it inside the frame (Chromium shows an error page instead when
        # the frame itself is sandboxed or the response refuses framing).
        assert not any(f.url.startswith("chrome-error://") for f in page.frames)
        shot(page, "receipt-previews")
        assert watch.problems == []


def test_the_receipt_form_keeps_its_files_for_the_retry(
    office: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    base, ids = office
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(PDF)
    with opened() as (page, watch):
        sign_in(page, base, "marketer@example.com", PASSWORD)
        page.goto(f"{base}/receipts/new?campaign_id={ids['campaign']}")
        page.fill("input[name=vendor]", "Kept shop")
        page.fill("input[name=expense_date]", "2026-03-20")
        page.fill("input[name=amount]", "12,34")  # refused: a decimal comma
        page.set_input_files("input[name=files]", [str(scan)])
        with page.expect_navigation():
            page.click("button[value=draft]")
        assert page.locator("#f-amount-error").is_visible()
        assert page.locator("#kept-files").inner_text().count("Kept: scan.pdf") == 1
        assert page.input_value("input[name=vendor]") == "Kept shop"
        page.fill("input[name=amount]", "12.34")
        with page.expect_navigation():
            page.click("button[value=draft]")  # no file chosen this time
        assert "saved as a draft: 12.34 CNY" in page.locator(".toast").first.inner_text()
        assert page.locator("iframe.attachment-pdf").count() == 1
        assert page.locator("figcaption a", has_text="scan.pdf").count() == 1
        # The refused form answers 422, which Chromium logs as a failed load: expected once.
        refused = "Failed to load resource: the server responded with a status of 422"
        assert [p for p in watch.problems if not p.startswith(refused)] == []
        assert len(watch.problems) == 1
