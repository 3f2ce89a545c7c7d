"""The receipt form, refused, comes back with every problem beside its field, every input
kept, and the files that passed their checks kept too: signed for the person and the
receipt, so nobody attaches someone else's file, and never leaking into another receipt."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import attachments, planning, receipts
from campaigns.models import Attachment, Campaign, Receipt
from campaigns.receipts import ReceiptInput
from core.accounts.models import User
from core.audit import Actor, AuditEntry
from core.settings import Settings
from tests.campaigns.test_attachments import EXE, PDF, PNG
from tests.web.conftest import csrf_from, sign_in
from web.pages import receipts as receipt_pages

KEPT = re.compile(r'name="kept" value="([^"]+)" checked> Kept: ([^<]+?) <')


@pytest.fixture
def campaign(db: Session, make_user: Callable[..., User]) -> Campaign:
    owner = make_user("marketer@example.com", ("marketer",), "Mia Marketer")
    make_user("finance@example.com", ("finance",), "Fei Finance")
    made = planning.create(
        db, Actor.system(), code="SPRING26", name="Spring", channel="wechat", owner_id=owner.id,
        starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31), budget=Decimal(1000),
        currency="CNY",
    )  # fmt: skip
    db.commit()
    return made


def as_user(client: TestClient, email: str) -> str:
    client.cookies.clear()
    sign_in(client, email)
    return csrf_from(client, "/receipts/new")


def fields(campaign: Campaign, token: str, **changes: str) -> dict[str, str]:
    good = {
        "campaign_id": str(campaign.id),
        "vendor": "Print shop",
        "category": "creative",
        "amount": "1,234.56",
        "tax_amount": "",
        "currency": "CNY",
        "expense_date": "2026-03-05",
        "invoice_number": "INV-9",
        "then": "draft",
        "csrf_token": token,
    }
    return good | changes


def kept(page: str) -> dict[str, str]:
    """The kept files the form carries: file name → token."""
    return {name: token for token, name in KEPT.findall(page)}


def count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def refused_with_files(client: TestClient, campaign: Campaign, token: str) -> str:
    response = client.post(
        "/receipts",
        data=fields(campaign, token, vendor=" ", amount="12,34", tax_amount="-1"),
        files=[
            ("files", ("scan.pdf", PDF, "application/pdf")),
            ("files", ("photo.png", PNG, "image/png")),
            ("files", ("evil.pdf", EXE, "application/pdf")),
        ],
    )
    assert response.status_code == 422
    return response.text


def test_every_problem_shows_beside_its_field_and_every_input_is_kept(
    client: TestClient, campaign: Campaign, db: Session, settings: Settings
) -> None:
    token = as_user(client, "marketer@example.com")
    page = refused_with_files(client, campaign, token)
    text = html.unescape(page)
    assert "Nothing was saved: fix the 4 problems below." in text
    assert 'id="f-vendor-error">Enter the vendor\'s name.' in text
    assert "id=\"f-amount-error\">Amount: '12,34' is not an amount" in text
    assert 'id="f-tax_amount-error">The tax must not be negative.' in text
    assert 'id="f-files-error">evil.pdf: Attach a PDF, JPEG, PNG or WebP file' in text
    assert 'name="vendor" id="f-vendor" aria-invalid="true"' in page
    for value in ("12,34", "-1", "INV-9", "2026-03-05"):
        assert f'value="{value}"' in page
    assert f'<option value="{campaign.id}" selected>' in page
    # The two good files are kept (stored under their hash), the bad one is not.
    assert sorted(kept(page)) == ["photo.png", "scan.pdf"]
    for content in (PDF, PNG):
        digest = hashlib.sha256(content).hexdigest()
        assert attachments.storage_path(settings.data_dir, digest).read_bytes() == content
    bad = hashlib.sha256(EXE).hexdigest()
    assert not attachments.storage_path(settings.data_dir, bad).exists()
    assert count(db, Receipt) == 0 and count(db, Attachment) == 0


def test_the_retry_attaches_the_kept_files_without_uploading_them_again(
    client: TestClient, campaign: Campaign, db: Session
) -> None:
    token = as_user(client, "marketer@example.com")
    tokens = kept(refused_with_files(client, campaign, token))
    saved = client.post(
        "/receipts", data={**fields(campaign, token), "kept": list(tokens.values())}
    )
    assert saved.status_code == 303, saved.text
    receipt = db.scalars(select(Receipt)).one()
    assert saved.headers["location"] == f"/receipts/{receipt.id}"
    assert sorted((a.filename, a.sha256, a.size) for a in receipt.attachments) == sorted(
        [
            ("scan.pdf", hashlib.sha256(PDF).hexdigest(), len(PDF)),
            ("photo.png", hashlib.sha256(PNG).hexdigest(), len(PNG)),
        ]
    )
    attached = db.scalars(
        select(AuditEntry.after).where(AuditEntry.action == "receipt.attach")
    ).all()
    assert sorted(a["file"] for a in attached if a) == ["photo.png", "scan.pdf"]
    detail = client.get(saved.headers["location"]).text
    assert "scan.pdf" in detail and "photo.png" in detail


def test_unticking_a_kept_file_leaves_it_out_and_the_same_file_counts_once(
    client: TestClient, campaign: Campaign, db: Session
) -> None:
    token = as_user(client, "marketer@example.com")
    tokens = kept(refused_with_files(client, campaign, token))
    saved = client.post(
        "/receipts",
        data={**fields(campaign, token), "kept": [tokens["scan.pdf"]]},
        files=[("files", ("again.pdf", PDF, "application/pdf"))],  # uploaded again anyway
    )
    assert saved.status_code == 303
    assert [a.filename for a in db.scalars(select(Receipt)).one().attachments] == ["scan.pdf"]


def test_another_persons_kept_file_cannot_be_attached(
    client: TestClient, campaign: Campaign, db: Session
) -> None:
    token = as_user(client, "marketer@example.com")
    theirs = kept(refused_with_files(client, campaign, token))["scan.pdf"]
    token = as_user(client, "finance@example.com")  # may enter receipts too
    refused = client.post("/receipts", data={**fields(campaign, token), "kept": [theirs]})
    assert refused.status_code == 422
    assert "A kept file has expired or is not yours: attach it again." in refused.text
    assert 'id="f-files-error"' in refused.text and kept(refused.text) == {}
    assert count(db, Receipt) == 0 and count(db, Attachment) == 0


def test_a_kept_file_belongs_to_the_receipt_it_was_kept_for(
    client: TestClient, campaign: Campaign, db: Session
) -> None:
    marketer = db.scalars(select(User).where(User.email == "marketer@example.com")).one()
    actor = Actor("user", marketer.email, user_id=marketer.id, roles=frozenset({"marketer"}))
    one, two = (
        receipts.create(
            db, actor, ReceiptInput(campaign.id, v, "media", Decimal(5), "CNY", date(2026, 3, 2))
        ).id
        for v in ("One", "Two")
    )
    db.commit()
    token = as_user(client, "marketer@example.com")
    editing = client.post(
        f"/receipts/{one}",
        data=fields(campaign, token, amount="abc"),
        files=[("files", ("scan.pdf", PDF, "application/pdf"))],
    )
    assert editing.status_code == 422
    for_one = kept(editing.text)["scan.pdf"]
    # Not on the other receipt, nor on a new one.
    for path in (f"/receipts/{two}", "/receipts"):
        refused = client.post(path, data={**fields(campaign, token), "kept": [for_one]})
        assert refused.status_code == 422, path
        assert "A kept file has expired or is not yours" in refused.text
    assert count(db, Attachment) == 0
    saved = client.post(f"/receipts/{one}", data={**fields(campaign, token), "kept": [for_one]})
    assert saved.status_code == 303
    db.expire_all()
    assert [a.filename for a in receipts.get(db, one).attachments] == ["scan.pdf"]


def test_an_altered_or_expired_token_is_refused(
    client: TestClient, campaign: Campaign, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = as_user(client, "marketer@example.com")
    good = kept(refused_with_files(client, campaign, token))["scan.pdf"]
    altered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    for bad in (altered, "not-a-token", "x" * 5000):
        refused = client.post("/receipts", data={**fields(campaign, token), "kept": [bad]})
        assert refused.status_code == 422 and "A kept file has expired" in refused.text
    monkeypatch.setattr(receipt_pages, "KEPT_SECONDS", -1)  # every token is too old now
    refused = client.post("/receipts", data={**fields(campaign, token), "kept": [good]})
    assert refused.status_code == 422 and "A kept file has expired" in refused.text
    assert count(db, Receipt) == 0


def test_kept_files_never_show_up_in_another_form_or_receipt(
    client: TestClient, campaign: Campaign, db: Session
) -> None:
    token = as_user(client, "marketer@example.com")
    assert kept(refused_with_files(client, campaign, token))
    fresh = client.get("/receipts/new").text
    assert 'name="kept"' not in fresh and "Kept:" not in fresh
    other = client.post("/receipts", data=fields(campaign, token, vendor="Other shop"))
    assert other.status_code == 303
    assert db.scalars(select(Receipt)).one().attachments == []


def test_a_kept_file_gone_from_storage_is_said_and_not_offered_again(
    client: TestClient, campaign: Campaign, db: Session, settings: Settings
) -> None:
    token = as_user(client, "marketer@example.com")
    tokens = kept(refused_with_files(client, campaign, token))
    digest = hashlib.sha256(PDF).hexdigest()
    Path(attachments.storage_path(settings.data_dir, digest)).unlink()
    refused = client.post(
        "/receipts", data={**fields(campaign, token), "kept": list(tokens.values())}
    )
    assert refused.status_code == 422
    assert 'id="f-files-error">The kept file scan.pdf is gone; attach it again.' in refused.text
    assert list(kept(refused.text)) == ["photo.png"]
    assert count(db, Receipt) == 0


def test_a_receipt_no_rate_converts_is_saved_with_a_warning(
    client: TestClient, campaign: Campaign, db: Session
) -> None:
    """Saved, and the person is told at once that the figures cannot count it until finance
    enters the rate (the ROI report would otherwise be the first to say so); none for a
    currency that converts."""
    token = as_user(client, "marketer@example.com")
    saved = client.post("/receipts", data=fields(campaign, token, currency="JPY"))
    assert saved.status_code == 303
    page = client.get(saved.headers["location"]).text
    assert "toast-warning" in page and "Not in the figures yet" in page
    assert "No exchange rate for JPY on or before 2026-03-05" in html.unescape(page)
    plain = client.post("/receipts", data=fields(campaign, token, invoice_number="INV-10"))
    assert "toast-warning" not in client.get(plain.headers["location"]).text
    assert count(db, Receipt) == 2
