"""Robustness: the server's memory while one client streams a 200 MB body at it. Prints JSON
lines:

- the RSS increase (peak while streaming, over idle) for a 200 MB body without credentials
  to POST /api/v1/purchases, sent chunked (no Content-Length), and the status it got (401);
- the same with an API key (413: over the API body limit).

Target for both: at most 20 MB more than idle. The server is the real app under uvicorn on
127.0.0.1, in this process (a thread), so its RSS is this process's (VmRSS from /proc); the
client's part of it is one 64 KiB chunk.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from pydantic import SecretStr
from sqlalchemy.orm import Session

from bench._harness import database, emit, live_server
from core.accounts import api_keys
from core.audit import Actor
from core.db import make_engine
from core.settings import Settings
from web.app import create_app

BODY = 200 * 1024 * 1024
CHUNK = 64 * 1024
SECONDS = 60.0  # per upload, at most; loopback takes about one
MB = 1024 * 1024


def rss() -> int:
    """This process's resident set size in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Peak:
    """The highest RSS seen, sampled every few milliseconds in a thread."""

    def __init__(self) -> None:
        self.value = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.value = max(self.value, rss())

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.value = max(self.value, rss())


def idle() -> int:
    """RSS at rest: the highest of a few samples, so noise does not count as an increase."""
    gc.collect()
    samples = []
    for _ in range(20):
        time.sleep(0.01)
        samples.append(rss())
    return max(samples)


def stream(client: httpx.Client, headers: dict[str, str]) -> tuple[int, float]:
    """POST BODY bytes in chunks, without Content-Length; the status (0: connection dropped)
    and the RSS increase in MB."""
    deadline = time.monotonic() + SECONDS
    chunk = b" " * CHUNK

    def body() -> Iterator[bytes]:
        sent = 0
        while sent < BODY and time.monotonic() < deadline:
            sent += len(chunk)
            yield chunk

    before = idle()
    with Peak() as peak:
        try:
            response = client.post(
                "/api/v1/purchases",
                content=body(),
                headers={"Content-Type": "application/json", **headers},
                timeout=SECONDS,
            )
            status = response.status_code
        except httpx.TransportError:
            status = 0
    return status, (peak.value - before) / MB


def main() -> None:
    with database() as url, tempfile.TemporaryDirectory() as data_dir:
        engine = make_engine(url)
        with Session(engine) as session:
            _, key = api_keys.create(
                session, Actor.system("bench"), name="Bench POS", scopes=["purchases:write"]
            )
            session.commit()
        engine.dispose()
        settings = Settings(
            env="test", database_url=url, data_dir=Path(data_dir), secret_key=SecretStr("b" * 40)
        )
        with live_server(create_app(settings)) as base, httpx.Client(base_url=base) as client:
            for _ in range(5):  # warm up: both refusals and a route that answers
                client.post("/api/v1/purchases", json={})
                client.post(
                    "/api/v1/purchases", json={}, headers={"Authorization": f"Bearer {key}"}
                )
                client.get("/healthz")
            anonymous, anonymous_mb = stream(client, {})
            keyed, keyed_mb = stream(client, {"Authorization": f"Bearer {key}"})
    emit("anonymous_200mb_body_rss_increase", anonymous_mb, "MB", "<= 20")
    emit("anonymous_200mb_body_status", anonymous, "status", "== 401")
    emit("oversized_200mb_body_rss_increase", keyed_mb, "MB", "<= 20")
    emit("oversized_200mb_body_status", keyed, "status", "== 413")


if __name__ == "__main__":
    main()
