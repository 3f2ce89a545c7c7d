"""Admins read the outbox (where member links wait when no sender is configured)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core import outbox


def test_admins_read_the_outbox(admin_client: TestClient, db: Session) -> None:
    outbox.queue(db, to="mei@example.com", subject="Activate", body="Open https://x/my/activate/T")
    db.commit()
    page = admin_client.get("/admin/outbox")
    assert page.status_code == 200
    assert "mei@example.com" in page.text and "/my/activate/T" in page.text
