"""Attachments shown in the receipt page: images as images, PDFs in a frame, served inline
only as a type their content was checked as, sandboxed, and the only response any page may
frame (same origin); everything else stays a download and every other response denies
framing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from campaigns import attachments, planning, receipts
from campaigns.models import Attachment
from campaigns.receipts import ReceiptInput
from core.accounts.models import User
from core.audit import Actor
from core.settings import Settings
from tests.campaigns.test_attachments import PDF, PNG
from tests.web.conftest import sign_in
from web.headers import CSP, FRAMEABLE

SANDBOXED = "sandbox; frame-ancestors 'self'"


@pytest.fixture
def files(db: Session, make_user: Callable[..., User], settings: Settings) -> dict[str, int]:
    """A receipt with a PDF, a PNG, and two rows no browser may render: one whose stored
    bytes are not the type it claims, one of a type never shown inline. Returns the ids."""
    owner = make_user("marketer@example.com", ("marketer",), "Mia")
    actor = Actor("user", owner.email, user_id=owner.id, roles=frozenset({"marketer"}))
    campaign = planning.create(
        db, Actor.system(), code="SPRING26", name="Spring", channel="wechat", owner_id=owner.id,
        starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31), budget=Decimal(1000),
        currency="CNY",
    )  # fmt: skip
    receipt = receipts.create(
        db,
        actor,
        ReceiptInput(campaign.id, "Print", "creative", Decimal(5), "CNY", date(2026, 3, 2)),
    )
    pdf = attachments.add(db, actor, receipt.id, "invoice.pdf", PDF, settings.data_dir)
    png = attachments.add(db, actor, receipt.id, "photo.png", PNG, settings.data_dir)
    lying = Attachment(
        receipt_id=receipt.id, sha256=png.sha256, filename="claims.pdf",
        content_type="application/pdf", size=png.size,
    )  # fmt: skip
    html = Attachment(
        receipt_id=receipt.id, sha256=pdf.sha256, filename="page.html",
        content_type="text/html", size=pdf.size,
    )  # fmt: skip
    db.add_all([lying, html])
    db.commit()
    return {"receipt": receipt.id, "pdf": pdf.id, "png": png.id, "lying": lying.id, "html": html.id}


def test_the_receipt_page_shows_images_and_pdfs_and_offers_the_rest_to_download(
    client: TestClient, files: dict[str, int]
) -> None:
    sign_in(client, "marketer@example.com")
    page = client.get(f"/receipts/{files['receipt']}").text
    assert f'<img src="/receipts/attachments/{files["png"]}/inline"' in page
    assert f'<iframe src="/receipts/attachments/{files["pdf"]}/inline"' in page
    for kind in ("lying", "html"):  # the lying one claims PDF, but its bytes are a PNG
        assert f"/receipts/attachments/{files[kind]}/inline" not in page
    for kind in ("pdf", "png", "lying", "html"):  # every file can still be downloaded
        assert f'href="/receipts/attachments/{files[kind]}"' in page
    assert page.count("download only") == 2


@pytest.mark.parametrize(
    ("kind", "content", "media"), [("pdf", PDF, "application/pdf"), ("png", PNG, "image/png")]
)
def test_a_preview_is_served_inline_sandboxed_and_frameable_by_our_pages_only(
    client: TestClient, files: dict[str, int], kind: str, content: bytes, media: str
) -> None:
    sign_in(client, "marketer@example.com")
    shown = client.get(f"/receipts/attachments/{files[kind]}/inline")
    assert shown.status_code == 200 and shown.content == content
    assert shown.headers["content-type"] == media
    assert shown.headers["content-disposition"].startswith("inline;")
    assert shown.headers["content-security-policy"] == SANDBOXED
    assert shown.headers["x-frame-options"] == "SAMEORIGIN"
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert shown.headers["cache-control"] == "private, no-store"


def test_only_checked_content_is_previewed(client: TestClient, files: dict[str, int]) -> None:
    sign_in(client, "marketer@example.com")
    for kind in ("lying", "html"):
        refused = client.get(f"/receipts/attachments/{files[kind]}/inline")
        assert refused.status_code == 404, kind
        assert "cannot be shown here; download it instead" in refused.text
        assert refused.headers["content-security-policy"] == SANDBOXED  # even the error page
        assert "application/pdf" not in refused.headers["content-type"]


def test_downloads_and_pages_are_never_framed(client: TestClient, files: dict[str, int]) -> None:
    sign_in(client, "marketer@example.com")
    download = client.get(f"/receipts/attachments/{files['pdf']}")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-frame-options"] == "DENY"
    assert download.headers["content-security-policy"] == (
        "sandbox; default-src 'none'; frame-ancestors 'none'"
    )
    api = client.get(f"/api/v1/attachments/{files['pdf']}")
    assert api.status_code == 200 and api.headers["x-frame-options"] == "DENY"
    assert "sandbox" in api.headers["content-security-policy"]
    for path in (f"/receipts/{files['receipt']}", "/receipts/mine", "/dashboard", "/nowhere"):
        page = client.get(path)
        assert page.headers["x-frame-options"] == "DENY", path
        assert page.headers["content-security-policy"] == CSP, path
        assert "frame-ancestors 'none'" in CSP


@pytest.mark.parametrize(
    ("path", "frameable"),
    [
        ("/receipts/attachments/12/inline", True),
        ("/receipts/attachments/12", False),
        ("/receipts/attachments/12/inline/", False),
        ("/receipts/attachments/x/inline", False),
        ("/api/v1/attachments/12", False),
        ("/x/receipts/attachments/12/inline", False),
    ],
)
def test_exactly_one_route_may_be_framed(path: str, frameable: bool) -> None:
    assert (FRAMEABLE.fullmatch(path) is not None) is frameable


def test_strangers_see_no_preview(client: TestClient, files: dict[str, int]) -> None:
    refused = client.get(f"/receipts/attachments/{files['png']}/inline")
    assert refused.status_code in (303, 401) and refused.content != PNG
