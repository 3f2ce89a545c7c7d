"""Shared pieces for benchmarks: a database, a live server on loopback, and the output line."""

from __future__ import annotations

import json
import operator
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from core import migrations
from core.db import make_engine
from core.pgserver import ThrowawayPostgres

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
}


def emit(name: str, value: float, unit: str, target: str | None = None) -> None:
    """Print one result; `target` is a comparison such as '<= 1.5' or '>= 1000'."""
    line: dict[str, Any] = {"name": name, "value": round(value, 3), "unit": unit}
    if target is not None:
        op, _, bound = target.partition(" ")
        line["target"] = target
        line["met"] = _COMPARE[op](value, float(bound))
    print(json.dumps(line), flush=True)


@contextmanager
def database() -> Iterator[str]:
    """RETAIN_DATABASE_URL when given, else a throwaway PostgreSQL; migrated to head."""
    url = os.environ.get("RETAIN_DATABASE_URL")
    if url:
        engine = make_engine(url)
        migrations.upgrade(engine)
        engine.dispose()
        yield str(engine.url.render_as_string(hide_password=False))
        return
    with ThrowawayPostgres() as server:
        url = server.create_database("retain_bench")
        engine = make_engine(url)
        migrations.upgrade(engine)
        engine.dispose()
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
