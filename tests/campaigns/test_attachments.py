"""Upload checks: content not name, 10 MB at most, stored by SHA-256, duplicates flagged."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from campaigns import attachments, receipts
from campaigns.models import Campaign
from campaigns.receipts import ReceiptInput
from core.audit import Actor
from core.errors import PermissionDenied, ValidationFailed
from tests.campaigns.conftest import Staff

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\x00" * 64
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200  # a Windows .exe


def new_receipt(
    db: Session, staff: Staff, campaign: Campaign, invoice: str = "I-1", amount: str = "88"
) -> int:
    data = ReceiptInput(
        campaign_id=campaign.id,
        vendor="Print shop",
        category="creative",
        amount=Decimal(amount),
        currency="CNY",
        expense_date=date(2026, 3, 3),
        invoice_number=invoice,
    )
    return receipts.create(db, staff.marketer, data).id


def test_a_pdf_is_stored_under_its_hash(
    db: Session, staff: Staff, campaign: Campaign, tmp_path: Path
) -> None:
    rid = new_receipt(db, staff, campaign)
    a = attachments.add(db, staff.marketer, rid, "../../etc/收据 March.pdf", PDF, tmp_path)
    digest = hashlib.sha256(PDF).hexdigest()
    assert a.sha256 == digest and a.content_type == "application/pdf" and a.size == len(PDF)
    assert a.filename == "收据 March.pdf"  # no path parts survive
    assert attachments.storage_path(tmp_path, digest).read_bytes() == PDF
    found, path = attachments.open_for_download(db, staff.finance, a.id, tmp_path)
    assert found.id == a.id and path.read_bytes() == PDF


def test_a_renamed_executable_is_refused(
    db: Session, staff: Staff, campaign: Campaign, tmp_path: Path
) -> None:
    rid = new_receipt(db, staff, campaign)
    with pytest.raises(ValidationFailed, match="Attach a PDF, JPEG, PNG or WebP"):
        attachments.add(db, staff.marketer, rid, "invoice.pdf", EXE, tmp_path)
    assert not (tmp_path / "attachments").exists()


def test_an_11_mb_file_is_refused(
    db: Session, staff: Staff, campaign: Campaign, tmp_path: Path
) -> None:
    rid = new_receipt(db, staff, campaign)
    big = PNG + b"\x00" * (11 * 1024 * 1024)
    with pytest.raises(ValidationFailed, match="at most 10 MB"):
        attachments.add(db, staff.marketer, rid, "scan.png", big, tmp_path)


def test_the_same_file_on_two_receipts_is_flagged(
    db: Session, staff: Staff, campaign: Campaign, tmp_path: Path
) -> None:
    first = new_receipt(db, staff, campaign, "A-1")
    second = new_receipt(db, staff, campaign, "B-2", amount="99")
    attachments.add(db, staff.marketer, first, "a.png", PNG, tmp_path)
    attachments.add(db, staff.marketer, second, "b.png", PNG, tmp_path)
    flags = receipts.get(db, second).duplicate_flags
    assert [(f["kind"], f["receipt_id"]) for f in flags] == [("attachment", first)]


def test_only_staff_download_and_only_open_receipts_take_files(
    db: Session, staff: Staff, campaign: Campaign, tmp_path: Path
) -> None:
    rid = new_receipt(db, staff, campaign)
    a = attachments.add(db, staff.marketer, rid, "a.pdf", PDF, tmp_path)
    outsider = Actor("api_key", "POS", roles=frozenset())
    with pytest.raises(PermissionDenied):
        attachments.open_for_download(db, outsider, a.id, tmp_path)
    receipts.transition(db, staff.marketer, rid, "submit")
    with pytest.raises(ValidationFailed, match="attach files before submitting"):
        attachments.add(db, staff.marketer, rid, "late.pdf", PDF, tmp_path)


@pytest.mark.parametrize(
    ("uploaded", "content", "kept"),
    [
        ("evil.html", PNG, "evil.png"),  # the name's extension is the content's, not the upload's
        ("scan.JPG.exe", PNG, "scan.JPG.png"),
        ("invoice", PDF, "invoice.pdf"),
        ("Invoice.PDF", PDF, "Invoice.pdf"),
        (".png", PNG, "attachment.png"),
    ],
    ids=["html", "double", "none", "upper", "only-extension"],
)
def test_a_file_is_named_by_its_detected_type(
    db: Session,
    staff: Staff,
    campaign: Campaign,
    tmp_path: Path,
    uploaded: str,
    content: bytes,
    kept: str,
) -> None:
    rid = new_receipt(db, staff, campaign)
    assert attachments.add(db, staff.marketer, rid, uploaded, content, tmp_path).filename == kept
