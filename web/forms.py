"""The request's form as a dependency, and small parsers for query strings and form fields
shared by the pages."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData


async def form_data(request: Request) -> FormData:
    """The request's form, read on the event loop before the route runs.

    Routes that touch the database are plain `def` (FastAPI runs them in a worker thread) and
    take the form from here instead of awaiting `request.form()` themselves: no blocking I/O
    on the event loop. Starlette caches the parsed form, so when `verify_csrf` has already
    read it this costs nothing. Uploads in it are spooled temporary files: read them in the
    route with `upload.file.read(n)`.
    """
    return await request.form()


FormFields = Annotated[FormData, Depends(form_data)]


def optional_day(value: str | None) -> date | None:
    """A YYYY-MM-DD value, or None when it is empty or not a date (filters ignore it)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def form_key() -> str:
    """A one-time key for a form that changes points: a double submit (or a reload of
    the POST) replays the first result instead of doing it twice."""
    return secrets.token_urlsafe(12)
