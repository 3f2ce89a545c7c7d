"""Sign in, sign out, and accepting an invitation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from core.accounts import sessions, users
from core.accounts.models import User
from core.errors import Problems, RateLimited, RetainError, ValidationFailed
from loyalty import accounts
from web.actions import act
from web.deps import SESSION_KEY, AppSettings, Db, actor_for, client_ip, optional_user
from web.i18n import LANGUAGES
from web.portal.deps import MEMBER_KEY
from web.rendering import flash, render, say, t

router = APIRouter()
HOME = "/dashboard"


def safe_next(value: str | None) -> str:
    """Only same-site paths, so a crafted link cannot bounce a user to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return HOME


def _sign_in(request: Request, db: Db, settings: AppSettings, user: User, target: str) -> Response:
    token = sessions.start(
        db,
        user,
        hours=settings.session_hours,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    db.commit()
    chosen = request.session.get("lang")  # the language picked on the sign-in page stays
    request.session.clear()  # a fresh CSRF token on sign-in: no session fixation
    request.session[SESSION_KEY] = token
    if chosen in LANGUAGES:
        request.session["lang"] = chosen
    return RedirectResponse(target, status_code=303)


@router.get("/signin")
def signin_form(
    request: Request,
    user: Annotated[User | None, Depends(optional_user)],
    next: str | None = None,
) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "auth/signin.html", {"next": safe_next(next), "email": ""})


@router.post("/signin")
def signin(
    request: Request,
    db: Db,
    settings: AppSettings,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = HOME,
) -> Response:
    try:
        # The reads' transaction ends before the password hash: none is open while it runs.
        user = users.authenticate(
            db, settings, email, password, client_ip(request), before_hash=db.commit
        )
    except RetainError as exc:
        db.commit()  # keep the failed attempt: it is what throttling counts
        status = 429 if isinstance(exc, RateLimited) else 401
        context = {"error": say(request, exc), "email": email, "next": safe_next(next)}
        return render(request, "auth/signin.html", context, status_code=status)
    return _sign_in(request, db, settings, user, safe_next(next))


@router.post("/signout")
def signout(request: Request, db: Db) -> Response:
    # Signing out ends every sign-in this browser's cookie carries, the portal's too: a copy
    # of the cookie taken before must not still open either.
    token, member_token = request.session.get(SESSION_KEY), request.session.get(MEMBER_KEY)
    if isinstance(token, str):
        sessions.end(db, token)
    if isinstance(member_token, str):
        accounts.end(db, member_token)
    db.commit()
    request.session.clear()
    flash(request, t(request, "You are signed out."))
    return RedirectResponse("/signin", status_code=303)


@router.get("/invite/{token}")
def invite_form(request: Request, token: str, db: Db) -> Response:
    _, user = users.invite_for_token(db, token)
    return render(request, "auth/accept_invite.html", {"invitee": user, "token": token})


@router.post("/invite/{token}")
def invite_accept(
    request: Request,
    token: str,
    db: Db,
    settings: AppSettings,
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    _, invitee = users.invite_for_token(db, token)
    problems = Problems()
    if password != confirm:
        problems.add("confirm", "The two passwords do not match.")

    def welcome(user: User) -> Response:
        response = _sign_in(request, db, settings, user, HOME)
        flash(request, t(request, "Welcome to Retain, %(name)s.", name=user.name))
        return response

    return act(
        request,
        db,
        lambda: users.accept_invite(db, token, password, client_ip(request)),
        errors=problems,
        then=welcome,
        again=lambda errors: render(
            request,
            "auth/accept_invite.html",
            {"invitee": invitee, "token": token, "errors": errors},
        ),
        names=("password", "confirm"),
        codes={"auth.weak_password": "password"},
    )


@router.post("/language")
def switch_language(
    request: Request,
    db: Db,
    user: Annotated[User | None, Depends(optional_user)],
    language: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """The staff pages' language: kept on this browser, and for a signed-in person on their
    account, so it follows them to another browser."""
    if language not in LANGUAGES:
        raise ValidationFailed("language", "Choose English or 中文.")
    request.session["lang"] = language
    if user is not None:
        users.set_language(db, actor_for(request, user), user, language)
        db.commit()
    return RedirectResponse(safe_next(next), status_code=303)
