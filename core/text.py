"""A marker for words the domain defines and the staff pages show (report headers, scopes,
the reasons a figure is missing): `N_("Paid cost")` is the string itself, and `pybabel
extract -F babel_staff.cfg` finds it, so the staff catalog translates it where it is shown.
Domain code stays English: the web layer translates."""

from __future__ import annotations


def N_(message: str) -> str:
    return message
