"""Receipt attachments: checked by content (not by name), at most 10 MB, stored outside the
web root under their SHA-256, readable only by staff.

A file can be *kept* before its receipt is saved (`keep`): checked and stored under its hash,
nothing in the database. The receipt form does this when it is refused, so the person does
not upload again, and the saved receipt attaches it (`attach_kept`). A kept file that is never
attached is only bytes in storage under their hash: no receipt, page or download names it.

Only checked types are ever shown in a browser (`preview_type`): images as images, PDFs in
a sandboxed frame; everything else is a download."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import filetype
from sqlalchemy.orm import Session

from campaigns import periods, receipts
from campaigns.models import Attachment, Receipt
from core import audit
from core.audit import Actor
from core.errors import NotFound, ValidationFailed
from core.text import N_, Phrase

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
# What a page may show inline, by the type its content was checked as: images in <img>, PDFs
# in <iframe sandbox>. The rest is a download.
PREVIEW = {
    "application/pdf": "pdf",
    "image/jpeg": "image",
    "image/png": "image",
    "image/webp": "image",
}
# Enough of a file's start for `filetype` to know it.
SNIFF_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Kept:
    """A checked file in storage that is not on a receipt yet."""

    sha256: str
    filename: str  # safe, ending as its content says
    content_type: str
    size: int


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
            "The file is %(size)s MB; attachments can be at most 10 MB.",
            size=f"{len(data) / 1024 / 1024:.1f}",
        )
    if not data:
        raise ValidationFailed("attachment.empty", "The file is empty.")
    kind = filetype.guess(data)
    if kind is None or kind.mime not in ALLOWED:
        raise ValidationFailed(
            "attachment.type",
            N_(
                "Attach a PDF, JPEG, PNG or WebP file (it looks like %(type)s). The content is "
                "checked, not the name."
            )
            if kind
            else N_("Attach a PDF, JPEG, PNG or WebP file. The content is checked, not the name."),
            type=kind.mime if kind else "",
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


def keep(actor: Actor, filename: str, data: bytes, root: Path) -> Kept:
    """Check a file by its content and store it under its hash, before any receipt holds it
    (a refused form keeps its files this way). A file that fails the checks is not stored."""
    actor.require(*receipts.ENTERERS, doing=N_("attach files to receipts"))
    content_type = check(data)
    sha256 = hashlib.sha256(data).hexdigest()
    _store(root, sha256, data)
    return Kept(sha256, _safe_name(filename, content_type), content_type, len(data))


def add(
    session: Session, actor: Actor, receipt_id: int, filename: str, data: bytes, root: Path
) -> Attachment:
    actor.require(*receipts.ENTERERS, doing=N_("attach files to receipts"))
    receipt = _attachable(session, receipt_id)
    return _attach(session, actor, receipt, keep(actor, filename, data, root))


def attach_kept(
    session: Session, actor: Actor, receipt_id: int, kept: Kept, root: Path
) -> Attachment:
    """Attach a file `keep` stored earlier. Its bytes are read back and checked again: what
    is attached is what storage holds under that hash, of a type that passes the checks."""
    actor.require(*receipts.ENTERERS, doing=N_("attach files to receipts"))
    receipt = _attachable(session, receipt_id)
    path = storage_path(root, kept.sha256)
    data = path.read_bytes() if _is_hash(kept.sha256) and path.is_file() else b""
    if not data or hashlib.sha256(data).hexdigest() != kept.sha256:
        raise ValidationFailed(
            "attachment.missing",
            "The kept file %(file)s is gone; attach it again.",
            file=kept.filename,
        )
    content_type = check(data)
    return _attach(
        session,
        actor,
        receipt,
        Kept(kept.sha256, _safe_name(kept.filename, content_type), content_type, len(data)),
    )


def _is_hash(value: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{64}", value) is not None


def _attachable(session: Session, receipt_id: int) -> Receipt:
    receipt = receipts.get(session, receipt_id)
    if receipt.status not in receipts.EDITABLE:
        raise ValidationFailed(
            "attachment.locked",
            "Receipt #%(id)s is %(status)s; attach files before submitting it.",
            id=receipt.id,
            status=Phrase(receipt.status),
        )
    periods.ensure_open(session, receipt.expense_date, N_("attach files to its receipts"))
    return receipt


def _attach(session: Session, actor: Actor, receipt: Receipt, kept: Kept) -> Attachment:
    attachment = Attachment(
        receipt_id=receipt.id,
        sha256=kept.sha256,
        filename=kept.filename,
        content_type=kept.content_type,
        size=kept.size,
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
        after={"file": attachment.filename, "sha256": kept.sha256, "size": kept.size},
    )
    return attachment


def open_for_download(
    session: Session, actor: Actor, attachment_id: int, root: Path
) -> tuple[Attachment, Path]:
    actor.require(*READERS, doing=N_("download receipt attachments"))
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("attachment.not_found", "No attachment with id %(id)s.", id=attachment_id)
    path = storage_path(root, attachment.sha256)
    if not path.exists():
        raise NotFound("attachment.missing", "The attachment's file is missing from storage.")
    return attachment, path


def preview_type(attachment: Attachment, root: Path | None = None) -> str | None:
    """How a page may show the attachment: "image", "pdf", or None (download only). With
    the storage `root`, the stored bytes must still be of that type (`previewable`)."""
    kind = PREVIEW.get(attachment.content_type)
    if kind is None or root is None:
        return kind
    return kind if previewable(attachment, storage_path(root, attachment.sha256)) else None


def previewable(attachment: Attachment, path: Path) -> bool:
    """The stored bytes are what the row says, and of a type browsers may show inline (so a
    row written any other way cannot make the browser render something else)."""
    if attachment.content_type not in PREVIEW or not path.is_file():
        return False
    with path.open("rb") as handle:
        kind = filetype.guess(handle.read(SNIFF_BYTES))
    return kind is not None and kind.mime == attachment.content_type


def open_for_preview(
    session: Session, actor: Actor, attachment_id: int, root: Path
) -> tuple[Attachment, Path, str]:
    """An attachment to show inline, and the content type to serve it as: only a checked
    type, and only when the stored bytes still are that type (`previewable`)."""
    attachment, path = open_for_download(session, actor, attachment_id, root)
    if not previewable(attachment, path):
        raise NotFound(
            "attachment.no_preview",
            "%(file)s cannot be shown here; download it instead.",
            file=attachment.filename,
        )
    return attachment, path, attachment.content_type
