"""Receipt attachments: checked by content (not by name), at most 10 MB, stored outside the
web root under their SHA-256, readable only by staff."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import filetype
from sqlalchemy.orm import Session

from campaigns import periods, receipts
from campaigns.models import Attachment
from core import audit
from core.audit import Actor
from core.errors import NotFound, ValidationFailed

MAX_BYTES = 10 * 1024 * 1024
ALLOWED = {
    "application/pdf": "PDF",
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WebP",
}
# The name a file is kept and downloaded under ends as its content says, never as uploaded:
# PNG content sent as "evil.html" becomes "evil.png".
EXTENSIONS = {
    "application/pdf": (".pdf",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/webp": (".webp",),
}
READERS = ("finance", "marketer", "admin")


def storage_path(root: Path, sha256: str) -> Path:
    return root / "attachments" / sha256[:2] / sha256


def _safe_name(filename: str, content_type: str) -> str:
    """The uploaded name without any path or odd character, ending in the extension of the
    detected type (the uploaded one is kept only when it already is one)."""
    name = Path(filename.replace("\\", "/")).name  # never a path
    name = re.sub(r"[^\w.\- ()\u4e00-\u9fff]", "_", name)
    stem, dot, ext = name.rpartition(".")
    allowed = EXTENSIONS[content_type]
    if not dot:
        stem = name
    suffix = f".{ext.lower()}" if dot and f".{ext.lower()}" in allowed else allowed[0]
    return (stem.strip(" .")[:200] or "attachment") + suffix


def check(data: bytes) -> str:
    """The content type of an acceptable file, or a ValidationFailed saying why not."""
    if len(data) > MAX_BYTES:
        raise ValidationFailed(
            "attachment.too_large",
            f"The file is {len(data) / 1024 / 1024:.1f} MB; attachments can be at most 10 MB.",
        )
    if not data:
        raise ValidationFailed("attachment.empty", "The file is empty.")
    kind = filetype.guess(data)
    if kind is None or kind.mime not in ALLOWED:
        found = f" (it looks like {kind.mime})" if kind else ""
        raise ValidationFailed(
            "attachment.type",
            f"Attach a PDF, JPEG, PNG or WebP file{found}. The content is checked, not the name.",
        )
    return str(kind.mime)


def _store(root: Path, sha256: str, data: bytes) -> None:
    target = storage_path(root, sha256)
    if target.exists():
        return  # same content, same file
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temp, target)  # atomic: a reader never sees half a file


def add(
    session: Session, actor: Actor, receipt_id: int, filename: str, data: bytes, root: Path
) -> Attachment:
    actor.require(*receipts.ENTERERS, doing="attach files to receipts")
    receipt = receipts.get(session, receipt_id)
    if receipt.status not in receipts.EDITABLE:
        raise ValidationFailed(
            "attachment.locked",
            f"Receipt #{receipt.id} is {receipt.status}; attach files before submitting it.",
        )
    periods.ensure_open(session, receipt.expense_date, "attach files to its receipts")
    content_type = check(data)
    sha256 = hashlib.sha256(data).hexdigest()
    _store(root, sha256, data)
    attachment = Attachment(
        receipt_id=receipt.id,
        sha256=sha256,
        filename=_safe_name(filename, content_type),
        content_type=content_type,
        size=len(data),
        uploaded_by_id=actor.user_id,
    )
    receipt.attachments.append(attachment)
    session.flush()
    receipts.refresh_duplicates(session, receipt)
    audit.record(
        session,
        actor,
        "receipt.attach",
        "receipt",
        receipt.id,
        after={"file": attachment.filename, "sha256": sha256, "size": len(data)},
    )
    return attachment


def open_for_download(
    session: Session, actor: Actor, attachment_id: int, root: Path
) -> tuple[Attachment, Path]:
    actor.require(*READERS, doing="download receipt attachments")
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("attachment.not_found", f"No attachment with id {attachment_id}.")
    path = storage_path(root, attachment.sha256)
    if not path.exists():
        raise NotFound("attachment.missing", "The attachment's file is missing from storage.")
    return attachment, path
