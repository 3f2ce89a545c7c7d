"""Member sign-in throttling through HTTP: per account (phone and email together) and per
address (whatever succeeds in between), and strangers answered like members."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from core.accounts import throttle
from core.settings import Settings
from loyalty.models import Member
from tests.web.conftest import MEMBER_PASSWORD, csrf_from, member_sign_in, sign_in

_ERROR = re.compile(r'<p class="form-error" role="alert">([^<]*)</p>')


def post(client: TestClient, identifier: str, password: str):
    token = csrf_from(client, "/my/signin")
    return client.post(
        "/my/signin", data={"identifier": identifier, "password": password, "csrf_token": token}
    )


def answer(response) -> tuple[int, str]:
    found = _ERROR.search(response.text)
    assert found, response.text
    return response.status_code, found.group(1)


def test_a_members_phone_and_email_share_one_count_and_strangers_look_the_same(
    client: TestClient, make_member: Callable[..., Member], settings: Settings
) -> None:
    make_member("mei@example.com", phone="+8613800000001")
    stranger = [
        answer(post(client, who, "wrong-password-1"))
        for who in ("nobody@example.com", "+86 139-0000-0001", "not a phone")
    ]
    spellings = ["mei@example.com", "+86 138-0000-0001", "+8613800000001", " MEI@example.COM "]
    spellings.append("+86 (138) 0000 0001")
    assert len(spellings) == settings.signin_max_failures
    wrong = [answer(post(client, written, "wrong-password-1")) for written in spellings]
    assert set(wrong) == set(stranger) and len(set(wrong)) == 1 and wrong[0][0] == 401
    for written in ("mei@example.com", "+86 138 0000 0001"):  # locked, even with the password
        locked = post(client, written, MEMBER_PASSWORD)
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    # A stranger's identifier locks the same way (one failure above), with the same answer.
    for _ in range(settings.signin_max_failures - 1):
        assert post(client, "+86 139 0000 0001", "wrong-password-1").status_code == 401
    assert answer(post(client, "+8613900000001", "wrong-password-1")) == answer(locked)


def test_signing_in_to_ones_own_account_does_not_clear_the_addresss_count(
    client: TestClient, make_member: Callable[..., Member], settings: Settings
) -> None:
    make_member("mallory@example.com", "Mallory", phone="+8613800000009")
    ip_limit = settings.signin_max_failures * throttle.IP_FACTOR
    for i in range(ip_limit):
        if i and i % 4 == 0:  # the attacker's own account, between guesses at others'
            member_sign_in(client, "+86 138 0000 0009")
            client.cookies.clear()
        guess = f"victim{i}@example.com" if i % 2 else f"+86 139 0000 {i:04d}"
        assert post(client, guess, "wrong-password-1").status_code == 401
    assert post(client, "victim99@example.com", "wrong-password-1").status_code == 429
    assert post(client, "mallory@example.com", MEMBER_PASSWORD).status_code == 429


def test_staff_sign_out_ends_the_member_session_in_the_same_cookie(
    client: TestClient, make_member: Callable[..., Member], make_user: Callable[..., object]
) -> None:
    make_user("ada@example.com", ("admin",))
    make_member("mei@example.com")
    sign_in(client, "ada@example.com")
    member_sign_in(client, "mei@example.com")
    copied = dict(client.cookies)  # what a thief or a shared machine kept
    token = csrf_from(client, "/dashboard")
    assert client.post("/signout", data={"csrf_token": token}).status_code == 303

    replay = TestClient(client.app, follow_redirects=False, cookies=copied)
    assert replay.get("/my").status_code == 303  # the portal asks to sign in again
    assert replay.get("/dashboard").status_code == 303
