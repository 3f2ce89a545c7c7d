"""One page action, one way: run the service, commit and say what was stored, or roll back and
answer the form again with every problem beside its field and every input kept.

A page route parses its form with a `core.errors.Problems` (each field's problem collected,
not the first one raised), calls the service, and hands both to `act`:

    errors = Problems()
    amount = errors.check("amount", lambda: parse_amount(form["amount"], "Amount"))
    ...
    return act(
        request, db,
        lambda: revenue.record(db, actor, amount=amount, ...),
        errors=errors,
        done=lambda row: t(request, "Revenue recorded: %(amount)s.", amount=...),
        then=lambda row: f"/campaigns/{row.campaign_id}#revenue",
        again=lambda problems: render(request, "campaigns/detail.html", {..., "errors": problems}),
    )

`again` redraws the form (status 422/409/404 by the error); without it the refusal is
flashed and the browser goes back to `back` (a button with no fields to mark).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from core.errors import Invalid, NotAuthenticated, PermissionDenied, Problems, RetainError
from web.errors import status_for
from web.rendering import flash, say, say_each

T = TypeVar("T")
FORM = ""  # the key of a problem with the form as a whole, shown above it


def problems_of(
    request: Request,
    exc: RetainError,
    names: Iterable[str] = (),
    codes: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Which field a refusal is about, so the form can show it there, in the reader's
    language: an `Invalid`'s own map; else the route's `codes` (an error code → a field);
    else a part of the code that is one of the form's field `names` ("amount.range",
    "revenue.amount" → amount); else the form as a whole. `names` are the form's fields in
    the order it shows them."""
    names = tuple(names)
    if isinstance(exc, Invalid):  # in the form's order, so the first one takes the focus
        order = {name: i for i, name in enumerate(names)}
        fields = say_each(request, exc.fields, exc.errors)
        return dict(sorted(fields.items(), key=lambda item: order.get(item[0], len(order))))
    message = say(request, exc)
    if codes and exc.code in codes:
        return {codes[exc.code]: message}
    for part in exc.code.split("."):
        if part in names:
            return {part: message}
    return {FORM: message}


def act(
    request: Request,
    db: Session,
    action: Callable[[], T],
    *,
    then: Callable[[T], str | Response],
    done: Callable[[T], str] | None = None,
    errors: Problems | None = None,
    again: Callable[[dict[str, str]], Response] | None = None,
    back: str | None = None,
    names: Iterable[str] = (),
    codes: Mapping[str, str] | None = None,
) -> Response:
    """The business action as one transaction. Success: commit, flash `done(result)`, and
    303 to `then(result)`, or answer its response (a secret shown once is drawn, not
    redirected to). Refusal: roll back; `again(problems)` redraws the form with the
    refusal's status, or the message is flashed and the browser sent to `back`. Not being
    signed in or allowed is not a form problem: it goes on to the error pages."""
    if again is None and back is None:
        raise TypeError("act() needs `again` (redraw the form) or `back` (where to go)")
    try:
        if errors is not None:
            errors.raise_any()
        result = action()
    except (NotAuthenticated, PermissionDenied):
        db.rollback()
        raise
    except RetainError as exc:
        db.rollback()
        if again is not None:
            response = again(problems_of(request, exc, names, codes))
            response.status_code = status_for(exc)
            return response
        flash(request, say(request, exc), "error")
        return RedirectResponse(str(back), status_code=303)
    db.commit()
    if done is not None:
        flash(request, done(result))
    target = then(result)
    if isinstance(target, Response):
        return target
    return RedirectResponse(target, status_code=303)
