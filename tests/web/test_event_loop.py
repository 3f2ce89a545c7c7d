"""No blocking I/O on the event loop: database work runs in FastAPI's worker threads.

A route or dependency that is `async def` runs on the event loop. If it uses the database
session (sync SQLAlchemy), a request waiting for a pooled connection blocks the loop, and under
a burst larger than the pool every request stalls for the pool timeout. So anything that needs
`get_db` must be a plain `def` (FastAPI runs those in a thread); the only async work allowed is
reading the request (the form, an upload) in a dependency that needs no database.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts
from sqlalchemy.orm import sessionmaker

from core.settings import Settings
from web.app import create_app
from web.deps import get_db

# Async dependencies allowed to need the session because they hand every database call to
# `run_in_threadpool` themselves (checked by reading them, not by this test).
DB_IN_THREADPOOL = {
    "web.api.auth._caller",  # the key or session lookup runs in run_in_threadpool(_identify…)
}


@pytest.fixture
def routes(settings: Settings) -> list[RouteContext]:
    """Every API, page and portal route as the app serves it (FastAPI keeps included routers
    nested; their contexts carry the router-level dependencies). No database is needed:
    nothing is called."""
    app: FastAPI = create_app(settings, session_factory=sessionmaker())
    return [
        r
        for r in iter_route_contexts(app.routes)
        if isinstance(getattr(r, "dependant", None), Dependant)
    ]


def _runs_on_loop(call: Callable[..., Any] | None) -> bool:
    """Whether FastAPI awaits `call` on the event loop (coroutine or async generator), as a
    function or as an instance with an async `__call__`."""
    if call is None:
        return False
    candidates = [inspect.unwrap(call)]
    if not inspect.isroutine(candidates[0]) and not inspect.isclass(candidates[0]):
        dunder = getattr(candidates[0], "__call__", None)  # noqa: B004
        if dunder is not None:
            candidates.append(inspect.unwrap(dunder))
    return any(inspect.iscoroutinefunction(c) or inspect.isasyncgenfunction(c) for c in candidates)


def _name(call: Callable[..., Any] | None) -> str:
    return f"{getattr(call, '__module__', '?')}.{getattr(call, '__qualname__', repr(call))}"


def _needs_db(dependant: Dependant) -> bool:
    return any(d.call is get_db or _needs_db(d) for d in dependant.dependencies)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def _describe(route: RouteContext) -> str:
    return f"{','.join(sorted(route.methods or ()))} {route.path} ({_name(route.endpoint)})"


def test_no_async_route_uses_the_database(routes: list[RouteContext]) -> None:
    with_db = [r for r in routes if _needs_db(r.dependant)]
    assert len(with_db) > 50, "the walk found too few routes using the database"
    offenders = [_describe(r) for r in with_db if _runs_on_loop(r.endpoint)]
    print("\n".join(offenders))
    assert offenders == [], (
        "async routes that take the database session (make them plain `def`, read the form "
        "through web.forms.FormFields):\n" + "\n".join(offenders)
    )


def test_no_async_dependency_uses_the_database(routes: list[RouteContext]) -> None:
    offenders: dict[str, str] = {}  # dependency → one route using it
    for route in routes:
        for dependant in _dependants(route.dependant):
            name = _name(dependant.call)
            if (
                _runs_on_loop(dependant.call)
                and _needs_db(dependant)
                and name not in DB_IN_THREADPOOL
            ):
                offenders.setdefault(name, _describe(route))
    lines = [f"{name} (used by {route}, …)" for name, route in sorted(offenders.items())]
    print("\n".join(lines))
    assert lines == [], "async dependencies that take the database session:\n" + "\n".join(lines)


def test_the_allow_list_names_real_async_dependencies(routes: list[RouteContext]) -> None:
    """An allow-listed name that no longer exists (renamed, made sync) must be removed."""
    seen = {
        _name(d.call)
        for route in routes
        for d in _dependants(route.dependant)
        if _runs_on_loop(d.call) and _needs_db(d)
    }
    assert seen >= DB_IN_THREADPOOL, f"stale allow-list entries: {DB_IN_THREADPOOL - seen}"
