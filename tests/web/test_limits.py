"""Request body limits (web/limits.py): refused before the body is read, or as soon as a
streamed body passes its limit; big anonymous API bodies and strangers' page posts unread."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.types import Message

from campaigns import attachments
from campaigns.models import Attachment
from core.accounts import api_keys
from core.accounts.models import User
from core.audit import Actor
from loyalty.models import Purchase
from tests.campaigns.test_attachments import PDF
from tests.web.conftest import csrf_from
from tests.web.test_campaigns_api import CAMPAIGN, session_client
from web import limits
from web.pages.finance import MAX_CSV

SALE = {
    "source": "pos-1",
    "external_id": "T1",
    "occurred_at": "2026-03-02T12:00:00+08:00",
    "amount": "250.00",
    "currency": "CNY",
}


def padded_sale(size: int) -> bytes:
    """A valid purchase, padded with whitespace to `size` bytes: the route would take it."""
    body = json.dumps(SALE).encode()
    return body + b" " * (size - len(body))


def purchases(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Purchase)) or 0


@pytest.fixture
def pos_key(db: Session) -> str:
    _, key = api_keys.create(db, Actor.system(), name="POS", scopes=["purchases:write"])
    db.commit()
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


class Recording:
    """A request body as a generator that records how much of it was read."""

    def __init__(self, size: int, chunk: int = 16 * 1024) -> None:
        self.size, self.chunk, self.read = size, chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        while sent < self.size:
            piece = b" " * min(self.chunk, self.size - sent)
            sent += len(piece)
            self.read += len(piece)
            yield piece


def drive(app: FastAPI, path: str, headers: dict[str, str], body: Recording) -> int:
    """Call the ASGI app with `body` streamed in chunks (no Content-Length); the status."""
    chunks = iter(body)
    started: list[Message] = []

    async def receive() -> Message:
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    assert len(started) == 1
    return int(started[0]["status"])


def test_an_oversized_json_body_is_refused_before_the_route(
    client: TestClient, db: Session, pos_key: str
) -> None:
    body = padded_sale(limits.JSON_BODY + 1)
    response = client.post("/api/v1/purchases", content=body, headers=bearer(pos_key))
    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": {
            "code": "request.too_large",
            "message": "The request is larger than this address accepts. "
            "API requests can be at most 1 MB.",
            "details": {"limit": limits.JSON_BODY},
        }
    }
    assert response.headers["x-content-type-options"] == "nosniff"  # through SecurityHeaders
    assert response.headers["x-frame-options"] == "DENY"
    assert purchases(db) == 0


def test_an_oversized_chunked_body_is_refused(
    client: TestClient, db: Session, pos_key: str
) -> None:
    def body() -> Iterator[bytes]:
        yield padded_sale(limits.JSON_BODY + 1)

    response = client.post("/api/v1/purchases", content=body(), headers=bearer(pos_key))
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "request.too_large"
    assert purchases(db) == 0


def test_a_streamed_body_is_read_no_further_than_its_limit(app: FastAPI, pos_key: str) -> None:
    body = Recording(8 * limits.JSON_BODY, chunk=64 * 1024)
    status = drive(app, "/api/v1/purchases", bearer(pos_key), body)
    assert status == 413
    assert body.read <= limits.JSON_BODY + body.chunk


def test_a_big_anonymous_api_body_is_refused_unread(client: TestClient, db: Session) -> None:
    body = Recording(limits.UNAUTHENTICATED_API_BODY + 1)
    response = client.post(
        "/api/v1/purchases",
        content=iter(body),
        headers={"Content-Type": "application/json", "Content-Length": str(body.size)},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.api_key_missing"
    assert response.headers["www-authenticate"] == "Bearer"
    assert body.read == 0
    assert purchases(db) == 0


def test_a_big_anonymous_chunked_api_body_is_refused_early(app: FastAPI) -> None:
    body = Recording(8 * limits.JSON_BODY)
    status = drive(app, "/api/v1/purchases", {"Content-Type": "application/json"}, body)
    assert status == 401
    assert body.read <= limits.UNAUTHENTICATED_API_BODY + body.chunk


def test_an_oversized_attachment_is_refused_before_the_apps_own_check(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    make_user("marketer@example.com", ("marketer",))
    marketer = session_client(client, "marketer@example.com")
    campaign = marketer.post("/api/v1/campaigns", json=CAMPAIGN).json()["id"]
    receipt = marketer.post(
        "/api/v1/receipts",
        json={
            "campaign_id": campaign,
            "vendor": "Tencent Ads",
            "category": "media",
            "amount": "100",
            "expense_date": "2026-03-05",
        },
    ).json()["id"]
    url = f"/api/v1/receipts/{receipt}/attachments"

    # Just over the app's limit: the envelope margin lets the app give its own answer.
    over = PDF + b"0" * (attachments.MAX_BYTES + 1 - len(PDF))
    response = marketer.post(url, files={"file": ("scan.pdf", over, "application/pdf")})
    assert response.status_code == 422 and response.json()["error"]["code"] == (
        "attachment.too_large"
    )

    huge = PDF + b"0" * limits.ATTACHMENT_UPLOAD
    response = marketer.post(url, files={"file": ("scan.pdf", huge, "application/pdf")})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "request.too_large"
    assert error["details"] == {"limit": limits.ATTACHMENT_UPLOAD}
    assert "Attachments can be at most 10 MB." in error["message"]
    assert db.scalar(select(func.count()).select_from(Attachment)) == 0


def test_an_oversized_page_form_gets_a_short_page_with_the_security_headers(
    client: TestClient,
) -> None:
    response = client.post("/signin", data={"email": "x" * limits.FORM_BODY, "password": "p"})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "Request too large" in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_a_chunked_page_form_is_refused_while_it_is_parsed(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = csrf_from(client)  # a session with a CSRF token: verify_csrf reads the form

    def body() -> Iterator[bytes]:
        yield f"csrf_token={token}&email=".encode()
        yield b"x" * limits.FORM_BODY

    response = client.post(
        "/signin",
        content=body(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert "Forms can be at most 256 KB." in response.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_oversized_csv_import_is_refused(client: TestClient) -> None:
    csv = b"a" * (limits.CSV_UPLOAD + 1)
    response = client.post("/imports/receipts", files={"file": ("r.csv", csv, "text/csv")})
    assert response.status_code == 413
    assert "CSV files can be at most 5 MB" in response.text


def test_a_strangers_multipart_page_post_is_refused_unread(client: TestClient) -> None:
    boundary = "b0undary"
    form = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="files"; filename="scan.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
        f"{'0' * 32 * 1024}\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    read = 0

    def body() -> Iterator[bytes]:
        nonlocal read
        read += len(form)
        yield form

    response = client.post(
        "/receipts",
        content=body(),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(form)),
        },
    )
    assert response.status_code == 403
    assert read == 0


@pytest.mark.parametrize(
    ("path", "content_type", "size"),
    [
        ("/api/v1/purchases", "application/json", limits.JSON_BODY),
        ("/api/v1/receipts/7/attachments", "multipart/form-data; b=x", limits.ATTACHMENT_UPLOAD),
        ("/api/v1/receipts/7", "multipart/form-data; b=x", limits.JSON_BODY),
        ("/receipts", "multipart/form-data; b=x", limits.RECEIPT_FORM_UPLOAD),
        ("/receipts/7", "multipart/form-data; b=x", limits.RECEIPT_FORM_UPLOAD),
        ("/receipts/7/approve", "multipart/form-data; b=x", limits.FORM_BODY),
        ("/receipts", "application/x-www-form-urlencoded", limits.FORM_BODY),
        ("/imports/revenue", "multipart/form-data; b=x", limits.CSV_UPLOAD),
        ("/my/profile", "application/x-www-form-urlencoded", limits.FORM_BODY),
    ],
)
def test_limits_per_route_class(path: str, content_type: str, size: int) -> None:
    assert limits.limit_for(path, content_type).size == size


def test_upload_limits_follow_the_apps_own() -> None:
    assert limits.ATTACHMENT_UPLOAD > attachments.MAX_BYTES
    assert limits.CSV_UPLOAD > MAX_CSV
    assert limits.RECEIPT_FORM_UPLOAD > limits.RECEIPT_FORM_FILES * attachments.MAX_BYTES


def test_normal_requests_still_work(
    client: TestClient, db: Session, pos_key: str, make_user: Callable[..., User]
) -> None:
    small = client.post("/api/v1/purchases", json=SALE, headers=bearer(pos_key))
    assert small.status_code == 200, small.text
    # Over the anonymous threshold, under the limit: fine with a key ...
    big = padded_sale(limits.UNAUTHENTICATED_API_BODY * 2)
    again = client.post("/api/v1/purchases", content=big, headers=bearer(pos_key))
    assert again.status_code == 200 and again.json()["replayed"]
    # ... and with a signed-in staff session.
    make_user("finance@example.com", ("finance",))
    finance = session_client(client, "finance@example.com")
    other = padded_sale(limits.UNAUTHENTICATED_API_BODY * 2).replace(b'"T1"', b'"T2"')
    response = finance.post(
        "/api/v1/purchases", content=other, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert purchases(db) == 2


def test_a_csrf_token_that_is_not_ascii_is_refused_not_a_500(client: TestClient) -> None:
    token = csrf_from(client)
    response = client.post(
        "/signin", data={"email": "a@b.c", "password": "x", "csrf_token": token + "é"}
    )
    assert response.status_code == 403
