"""A marker for words the domain defines and the staff pages show (report headers, scopes,
the reasons a figure is missing, a field's label inside a refusal): `N_("Paid cost")` is the
string itself, and `pybabel extract -F babel_staff.cfg` finds it, so the staff catalog
translates it where it is shown. Domain code stays English: the web layer translates."""

from __future__ import annotations


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
