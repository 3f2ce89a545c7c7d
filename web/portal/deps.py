"""Who is asking, in which language: the signed-in member (never a staff user) and the
request's formatter. The language is the member's choice, else the one picked on the
sign-in page, else the browser's Accept-Language."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from core.errors import NotAuthenticated
from loyalty import accounts
from loyalty.models import Member, MemberAccount
from web.deps import Db
from web.i18n import LANGUAGES, Formatter, from_accept_language

MEMBER_KEY = "member_sid"


def language(request: Request, db: Db, member: Member | None) -> str:
    if member is not None:
        found = db.get(MemberAccount, member.id)
        if found is not None and found.language in LANGUAGES:
            return found.language
    chosen = request.session.get("lang")
    if isinstance(chosen, str) and chosen in LANGUAGES:
        return chosen
    return from_accept_language(request.headers.get("accept-language"))


def optional_member(request: Request, db: Db) -> Member | None:
    token = request.session.get(MEMBER_KEY)
    member = accounts.resolve(db, token) if isinstance(token, str) else None
    if member is None and token is not None:
        request.session.pop(MEMBER_KEY, None)
    request.state.member = member
    # Plain values for the frame of an error page, drawn after a failed request's session
    # has rolled back and closed (the ORM object can no longer load its attributes).
    request.state.member_name = member.name if member is not None else None
    request.state.fmt = Formatter(language(request, db, member), request.app.state.settings.zone)
    return member


def require_member(member: Annotated[Member | None, Depends(optional_member)]) -> Member:
    if member is None:
        raise NotAuthenticated("auth.member_required", "Sign in to continue.")
    return member


MaybeMember = Annotated[Member | None, Depends(optional_member)]
CurrentMember = Annotated[Member, Depends(require_member)]
