"""A marker for words the domain defines and the staff pages show (report headers, scopes,
the reasons a figure is missing, a field's label inside a refusal): `N_("Paid cost")` is the
string itself, and `pybabel extract -F babel_staff.cfg` finds it, so the staff catalog
translates it where it is shown. Domain code stays English: the reader's side translates, through
`said` with its catalog (a staff page, an export for a staff reader)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class Phrase(str):
    """A marked word, so the web layer knows to translate it when it fills an error's
    template (a label such as "Budget"), and not the person's own input beside it."""

    __slots__ = ()


def N_(message: str) -> Phrase:
    return Phrase(message)


class Either(tuple[Phrase, ...]):
    """Marked words offered as alternatives, for a param ("Finance or Admin"): reads as the
    English joined with "or"; the web layer translates each word and the joining word."""

    __slots__ = ()

    def __str__(self) -> str:
        return OR.join(self)


OR = N_(" or ")


def said(translate: Callable[[str], str], template: str, params: Mapping[str, Any]) -> str:
    """`template` in a reader's language (`translate`: a catalog's gettext) and filled from
    `params`, whose marked words (a `Phrase`, an `Either`) are translated too and whose other
    values (what a person typed, numbers, codes) stay as they are. The English, filled, where
    a translation lost a placeholder: a page or a file is never refused for a catalog's slip."""
    if not params:
        return translate(template)
    words = {name: _word(translate, value) for name, value in params.items()}
    try:
        return translate(template) % words
    except (KeyError, ValueError, TypeError):
        return template % params


def _word(translate: Callable[[str], str], value: Any) -> Any:
    if isinstance(value, Phrase):
        return translate(value)
    if isinstance(value, Either):
        return translate(OR).join(translate(word) for word in value)
    return value
