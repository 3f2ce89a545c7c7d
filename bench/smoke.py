"""Smoke benchmark: sign-in page requests per second over loopback, and their latency."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from pydantic import SecretStr

from bench._harness import database, emit, live_server
from core.settings import Settings
from web.app import create_app

SECONDS = 3.0
MAX_REQUESTS = 3000


def main() -> None:
    with database() as url, tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            env="test", database_url=url, data_dir=Path(data_dir), secret_key=SecretStr("b" * 40)
        )
        with live_server(create_app(settings)) as base, httpx.Client(base_url=base) as client:
            for _ in range(20):  # warm up
                client.get("/signin").raise_for_status()
            latencies: list[float] = []
            started = time.perf_counter()
            while len(latencies) < MAX_REQUESTS and time.perf_counter() - started < SECONDS:
                t0 = time.perf_counter()
                client.get("/signin").raise_for_status()
                latencies.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - started
    emit("signin_page_requests_per_second", len(latencies) / elapsed, "req/s", ">= 200")
    emit("signin_page_median_latency", statistics.median(latencies) * 1000, "ms")


if __name__ == "__main__":
    main()
