"""Small parsers for query strings and form fields shared by the pages."""

from __future__ import annotations

import secrets
from datetime import date


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
