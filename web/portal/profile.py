"""The member's profile: contact details, birthday (once), consent, language, password,
"download my data" and "close my account"."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from core.audit import Actor
from core.errors import RetainError, ValidationFailed
from core.exports import safe_cell
from loyalty import accounts, members
from loyalty.models import Member
from web.deps import Db, client_ip
from web.forms import optional_day
from web.i18n import LANGUAGES
from web.portal.deps import MEMBER_KEY, CurrentMember
from web.portal.messages import say
from web.portal.rendering import flash, render

router = APIRouter()


def _page(request: Request, db: Db, member: Member, **extra: Any) -> Response:
    account = accounts.account(db, member)
    context = {"account": account, "form": extra.pop("form", None), **extra}
    return render(request, "portal/profile.html", context, status_code=extra.get("status", 200))


@router.get("/my/profile")
def profile(request: Request, db: Db, member: CurrentMember) -> Response:
    return _page(request, db, member)


@router.post("/my/profile")
def save(
    request: Request,
    db: Db,
    member: CurrentMember,
    name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    birthday: Annotated[str, Form()] = "",
    marketing_consent: Annotated[bool, Form()] = False,
    language: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    changes: dict[str, Any] = {
        "name": name,
        "phone": phone or None,
        "email": email or None,
        "marketing_consent": marketing_consent,
    }
    try:
        day: date | None = optional_day(birthday)
        if birthday and day is None:
            raise ValidationFailed("member.birthday_format", "Give the birthday as a date.")
        if day is not None and day != member.birthday:
            if member.birthday is not None:
                raise ValidationFailed("member.birthday_set", "The birthday is already set.")
            changes["birthday"] = day
        before = (member.phone, member.email)
        actor = Actor.member(member.number, client_ip(request))
        members.update_profile(db, actor, member.id, **changes)
        if (member.phone, member.email) != before:
            # Whoever changes where links go must know the password; old links and other
            # browsers stop working.
            accounts.confirm_password(db, member, password)
            accounts.contact_changed(db, actor, member, keep=request.session.get(MEMBER_KEY))
        if language in LANGUAGES:
            accounts.set_language(db, actor, member, language)
            request.session["lang"] = language
    except RetainError as exc:
        db.rollback()
        return _page(
            request,
            db,
            member,
            form=changes | {"birthday": birthday},
            error=say(request.state.fmt, exc),
            status=422,
        )
    db.commit()
    flash(request, request.state.fmt.gettext("Your profile is saved."))
    return RedirectResponse("/my/profile", status_code=303)


@router.post("/my/profile/password")
def change_password(
    request: Request,
    db: Db,
    member: CurrentMember,
    current: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    try:
        if password != confirm:
            raise ValidationFailed("password.mismatch", "The two passwords do not match.")
        accounts.set_password(
            db,
            Actor.member(member.number, client_ip(request)),
            member,
            current,
            password,
            keep=request.session.get(MEMBER_KEY),
        )
    except RetainError as exc:
        db.rollback()
        return _page(request, db, member, password_error=say(request.state.fmt, exc), status=422)
    db.commit()
    flash(request, request.state.fmt.gettext("Your new password is set."))
    return RedirectResponse("/my/profile", status_code=303)


@router.get("/my/profile/data.json")
def data_json(db: Db, member: CurrentMember) -> Response:
    body = json.dumps(members.export(db, member.id), ensure_ascii=False, indent=2)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="retain-{member.number}.json"'},
    )


@router.get("/my/profile/data.zip")
def data_csv(db: Db, member: CurrentMember) -> Response:
    """The same data as CSV files (UTF-8 with BOM, so Excel reads Chinese), one per table,
    each cell through `safe_cell` so a name that looks like a formula opens as text. The JSON
    download keeps the values exactly as stored: no spreadsheet runs JSON."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for table, rows in members.export(db, member.id).items():
            text = io.StringIO()
            if rows:
                writer = csv.DictWriter(text, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows({k: safe_cell(v) for k, v in row.items()} for row in rows)
            archive.writestr(f"{table}.csv", "\ufeff" + text.getvalue())
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="retain-{member.number}-csv.zip"'},
    )


@router.post("/my/profile/close")
def close(
    request: Request,
    db: Db,
    member: CurrentMember,
    password: Annotated[str, Form()] = "",
) -> Response:
    try:
        accounts.close(db, Actor.member(member.number, client_ip(request)), member, password)
    except RetainError as exc:
        db.rollback()
        return _page(request, db, member, close_error=say(request.state.fmt, exc), status=422)
    db.commit()
    request.session.pop(MEMBER_KEY, None)
    flash(
        request, request.state.fmt.gettext("Your account is closed. Thank you for being a member.")
    )
    return RedirectResponse("/my/signin", status_code=303)
