"""Members' sign-up, sign-in, activation and reset links, sign-out, and the language switch."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from core.audit import Actor
from core.errors import NotAuthenticated, RateLimited, RetainError, ValidationFailed
from loyalty import accounts, members
from loyalty.models import TokenPurpose
from web.deps import AppSettings, Db, client_ip
from web.i18n import LANGUAGES
from web.pages.auth import safe_next
from web.portal.deps import MEMBER_KEY, MaybeMember
from web.portal.messages import say
from web.portal.rendering import flash, render

router = APIRouter()
HOME = "/my"


def _portal_next(value: str | None) -> str:
    target = safe_next(value)
    return target if target.startswith("/my") else HOME


def _status(exc: RetainError) -> int:
    if isinstance(exc, RateLimited):
        return 429
    return 401 if isinstance(exc, NotAuthenticated) else 422


def _signed_in(request: Request, token: str, target: str) -> Response:
    # A fresh CSRF token on sign-in (no fixation); a staff session in the same browser
    # is left alone, and never becomes this member.
    request.session.pop("csrf", None)
    request.session[MEMBER_KEY] = token
    return RedirectResponse(target, status_code=303)


@router.get("/my/signin")
def signin_form(request: Request, member: MaybeMember, next: str | None = None) -> Response:
    if member is not None:
        return RedirectResponse(_portal_next(next), status_code=303)
    return render(request, "portal/signin.html", {"next": _portal_next(next), "identifier": ""})


@router.post("/my/signin")
def signin(
    request: Request,
    db: Db,
    settings: AppSettings,
    member: MaybeMember,
    identifier: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = HOME,
) -> Response:
    try:
        found = accounts.authenticate(
            db,
            identifier,
            password,
            client_ip(request),
            max_failures=settings.signin_max_failures,
            lock_minutes=settings.signin_lock_minutes,
            # The reads' transaction ends before the password hash: none is open while it runs.
            before_hash=db.commit,
        )
    except RetainError as exc:
        db.commit()  # keep the failed attempt: it is what throttling counts
        context = {"error": say(request.state.fmt, exc), "identifier": identifier, "next": next}
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return render(
            request, "portal/signin.html", context, status_code=_status(exc), headers=headers
        )
    token = accounts.start(db, found, hours=settings.session_hours)
    db.commit()
    return _signed_in(request, token, _portal_next(next))


@router.post("/my/signout")
def signout(request: Request, db: Db) -> Response:
    token = request.session.pop(MEMBER_KEY, None)
    if isinstance(token, str):
        accounts.end(db, token)
        db.commit()
    flash(request, request.state.fmt.gettext("You are signed out."))
    return RedirectResponse("/my/signin", status_code=303)


@router.get("/join/{code}")
def join(code: str) -> Response:
    """A member's shared link: the sign-up form with their referral code filled in."""
    return RedirectResponse(f"/my/signup?code={quote(code[:32], safe='')}", status_code=303)


@router.get("/my/signup")
def signup_form(request: Request, member: MaybeMember, code: str = "") -> Response:
    if member is not None:
        return RedirectResponse(HOME, status_code=303)
    return render(request, "portal/signup.html", {"form": {"referral_code": code[:32]}})


@router.post("/my/signup")
def signup(
    request: Request,
    db: Db,
    settings: AppSettings,
    member: MaybeMember,
    name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    referral_code: Annotated[str, Form()] = "",
    marketing_consent: Annotated[bool, Form()] = False,
) -> Response:
    form = {"name": name, "phone": phone, "email": email, "referral_code": referral_code}
    form["marketing_consent"] = "on" if marketing_consent else ""
    try:
        profile = members.Profile(
            name=name, phone=phone or None, email=email or None, marketing_consent=marketing_consent
        )
        accounts.sign_up(
            db,
            profile,
            referral_code=referral_code,
            language=request.state.fmt.language,
            base_url=settings.link_base(str(request.base_url)),
            zone=settings.zone,
            ip=client_ip(request),
        )
    except RetainError as exc:
        db.rollback()
        context = {"form": form, "error": say(request.state.fmt, exc)}
        return render(request, "portal/signup.html", context, status_code=_status(exc))
    db.commit()
    return render(request, "portal/link_sent.html", {"signed_up": True})


@router.get("/my/password")
def link_form(request: Request) -> Response:
    return render(request, "portal/request_link.html", {"identifier": ""})


@router.post("/my/password")
def request_link(
    request: Request, db: Db, settings: AppSettings, identifier: Annotated[str, Form()] = ""
) -> Response:
    base = settings.link_base(str(request.base_url))
    try:
        accounts.request_link(db, identifier, base_url=base, ip=client_ip(request))
    except RetainError as exc:
        db.commit()  # the request still counts towards the limit
        context = {"identifier": identifier, "error": say(request.state.fmt, exc)}
        return render(request, "portal/request_link.html", context, status_code=_status(exc))
    db.commit()
    # The same answer whether or not the phone or email is a member's.
    return render(request, "portal/link_sent.html", {"signed_up": False})


def _link_open(request: Request, db: Db, kind: TokenPurpose, token: str) -> Response:
    try:
        accounts.check_link(db, token, kind)
    except RetainError as exc:
        context = {"error": say(request.state.fmt, exc)}
        return render(request, "portal/link_problem.html", context, status_code=410)
    return render(request, "portal/set_password.html", {"purpose": kind.value, "token": token})


def _link_use(
    request: Request,
    db: Db,
    settings: AppSettings,
    kind: TokenPurpose,
    token: str,
    password: str,
    confirm: str,
) -> Response:
    try:
        if password != confirm:
            raise ValidationFailed("password.mismatch", "The two passwords do not match.")
        found = accounts.use_link(db, token, kind, password, client_ip(request))
    except RetainError as exc:
        db.rollback()
        context = {"purpose": kind.value, "token": token, "error": say(request.state.fmt, exc)}
        return render(request, "portal/set_password.html", context, status_code=_status(exc))
    session_token = accounts.start(db, found, hours=settings.session_hours)
    db.commit()
    fmt = request.state.fmt
    flash(
        request,
        fmt.gettext("Your account is active. Welcome!")
        if kind is TokenPurpose.ACTIVATE
        else fmt.gettext("Your new password is set."),
    )
    return _signed_in(request, session_token, HOME)


@router.get("/my/activate/{token}")
def activate_form(request: Request, db: Db, token: str) -> Response:
    return _link_open(request, db, TokenPurpose.ACTIVATE, token)


@router.post("/my/activate/{token}")
def activate(
    request: Request,
    db: Db,
    settings: AppSettings,
    token: str,
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    return _link_use(request, db, settings, TokenPurpose.ACTIVATE, token, password, confirm)


@router.get("/my/reset/{token}")
def reset_form(request: Request, db: Db, token: str) -> Response:
    return _link_open(request, db, TokenPurpose.RESET, token)


@router.post("/my/reset/{token}")
def reset(
    request: Request,
    db: Db,
    settings: AppSettings,
    token: str,
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    return _link_use(request, db, settings, TokenPurpose.RESET, token, password, confirm)


@router.post("/my/language")
def switch_language(
    request: Request,
    db: Db,
    member: MaybeMember,
    language: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = HOME,
) -> Response:
    if language not in LANGUAGES:
        raise ValidationFailed("language", "Choose English or 中文.")
    request.session["lang"] = language
    if member is not None:
        accounts.set_language(db, Actor.member(member.number, client_ip(request)), member, language)
        db.commit()
    target = safe_next(next)
    return RedirectResponse(target if target.startswith(("/my", "/join")) else HOME, 303)
