"""Sign-in, sign-out, sessions and throttling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts import throttle, users
from core.accounts.models import SigninAttempt, User
from core.audit import Actor
from core.settings import Settings
from core.timeutil import utcnow
from loyalty import jobs
from loyalty.models import Member
from tests.web.conftest import PASSWORD, csrf_from, member_sign_in, sign_in


def post_signin(client: TestClient, email: str, password: str, **extra: str):
    token = csrf_from(client)
    return client.post(
        "/signin", data={"email": email, "password": password, "csrf_token": token, **extra}
    )


def error_text(html: str) -> str:
    start = html.index('id="signin-error">') + len('id="signin-error">')
    return html[start : html.index("</p>", start)]


def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    make_user("ada@example.com")
    disabled = make_user("dis@example.com", ("marketer",))
    users.disable(db, Actor.system(), disabled.id)
    db.commit()
    answers = [
        post_signin(client, "ada@example.com", "wrong-password-1"),
        post_signin(client, "nobody@example.com", PASSWORD),
        post_signin(client, "dis@example.com", PASSWORD),
    ]
    assert {r.status_code for r in answers} == {401}
    messages = {error_text(r.text) for r in answers}
    assert messages == {"Email or password is incorrect."}
    assert client.get("/dashboard").status_code == 303  # none of them signed in


def test_sign_in_sets_a_safe_cookie_and_lands_on_the_dashboard(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("Ada@Example.com", ("marketer",), "Ada Lovelace")
    response = post_signin(client, "  ADA@example.com ", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "Good to see you, Ada" in page.text


def test_staff_pages_redirect_to_sign_in_without_a_session(client: TestClient) -> None:
    response = client.get("/admin/users?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/admin/users%3Fx%3D1"
    htmx = client.get("/dashboard", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"].startswith("/signin?next=")


def test_next_is_followed_only_within_the_site(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("ada@example.com")
    assert (
        post_signin(client, "ada@example.com", PASSWORD, next="/admin/audit").headers["location"]
        == "/admin/audit"
    )
    client.cookies.clear()
    for evil in ("//evil.example", "https://evil.example", "/\\evil.example"):
        response = post_signin(client, "ada@example.com", PASSWORD, next=evil)
        assert response.headers["location"] == "/dashboard"
        client.cookies.clear()


def test_sign_out_ends_the_session_on_the_server(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("ada@example.com")
    sign_in(client, "ada@example.com")
    stolen = dict(client.cookies)
    token = csrf_from(client, "/dashboard")
    assert client.post("/signout", data={"csrf_token": token}).status_code == 303
    assert client.get("/dashboard").status_code == 303
    # A copy of the old cookie is worthless too: the server revoked the session.
    client.cookies.clear()
    client.cookies.update(stolen)
    assert client.get("/dashboard").status_code == 303


def test_disabling_a_user_ends_their_sessions(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    make_user("boss@example.com")
    worker = make_user("worker@example.com", ("finance",))
    sign_in(client, "worker@example.com")
    assert client.get("/dashboard").status_code == 200
    users.disable(db, Actor.system(), worker.id)
    db.commit()
    assert client.get("/dashboard").status_code == 303


def test_sign_in_is_throttled_after_repeated_failures(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    make_user("ada@example.com")
    for _ in range(5):
        assert post_signin(client, "ada@example.com", "wrong-password-1").status_code == 401
    blocked = post_signin(client, "ada@example.com", PASSWORD)
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.text
    # Another account from another address is not locked out by this one.
    make_user("bea@example.com", ("marketer",))
    assert post_signin(client, "bea@example.com", PASSWORD).status_code == 303
    attempts = db.scalars(select(SigninAttempt).where(SigninAttempt.email == "ada@example.com"))
    assert [a.succeeded for a in attempts] == [False] * 5


@pytest.mark.parametrize("path", ["/dashboard", "/admin/users", "/nowhere", "signed out:/signin"])
def test_pages_send_vary_and_security_headers(admin_client: TestClient, path: str) -> None:
    if path.startswith("signed out:"):
        admin_client.cookies.clear()
        path = path.split(":", 1)[1]
    response = admin_client.get(path)
    assert response.headers["content-type"].startswith("text/html")
    assert "HX-Request" in response.headers["vary"]
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_an_address_is_stopped_after_failures_across_accounts_whatever_succeeds_between(
    client: TestClient,
    make_user: Callable[..., User],
    make_member: Callable[..., Member],
    settings: Settings,
) -> None:
    """Signing in to one's own account (staff or member) between guesses at other
    accounts does not clear the address's count: it ages out with the window only."""
    make_user("mallory@example.com", ("marketer",))
    make_member("mallory@example.com", "Mallory")
    ip_limit = settings.signin_max_failures * throttle.IP_FACTOR
    for i in range(ip_limit):
        if i and i % 4 == 0:  # the attacker's own accounts, at both front doors
            assert post_signin(client, "mallory@example.com", PASSWORD).status_code == 303
            client.cookies.clear()
            member_sign_in(client, "mallory@example.com")
            client.cookies.clear()
        victim = f"victim{i}@example.com"
        assert post_signin(client, victim, "wrong-password-1").status_code == 401
    refused = post_signin(client, f"victim{ip_limit}@example.com", "wrong-password-1")
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts" in error_text(refused.text)
    # The attacker's own account is refused from that address too, until failures age out.
    assert post_signin(client, "mallory@example.com", PASSWORD).status_code == 429


def test_a_correct_sign_in_clears_only_that_accounts_count(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("ada@example.com")
    for _ in range(2):
        for _ in range(4):
            assert post_signin(client, "ada@example.com", "wrong-password-1").status_code == 401
        assert post_signin(client, "ada@example.com", PASSWORD).status_code == 303
        client.cookies.clear()
    # Each success gave Ada her own five tries again (the address's 13 are under its 20).
    for _ in range(5):
        assert post_signin(client, "ada@example.com", "wrong-password-1").status_code == 401
    assert post_signin(client, "ada@example.com", PASSWORD).status_code == 429


def test_unknown_emails_are_throttled_and_answered_like_known_ones(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("ada@example.com")
    answers: dict[str, list[tuple[int, str]]] = {}
    for email in ("ada@example.com", "nobody@example.com"):
        answers[email] = [
            (r.status_code, error_text(r.text))
            for r in [
                post_signin(client, f"  {email.upper()} ", "wrong-password-1") for _ in range(6)
            ]
        ]
    assert answers["ada@example.com"] == answers["nobody@example.com"]
    assert [status for status, _ in answers["nobody@example.com"]] == [401] * 5 + [429]
    # Text longer than any email is still counted (under a digest), not a database error.
    overlong = post_signin(client, "a" * 300 + "@example.com", "wrong-password-1")
    assert (overlong.status_code, error_text(overlong.text)) == answers["ada@example.com"][0]


def test_the_nightly_jobs_forget_attempts_past_their_retention(db: Session) -> None:
    now = utcnow()
    for days in (1, 89, 91, 400):
        throttle.record_attempt(db, "x@example.com", "10.0.0.1", now - timedelta(days=days), False)
    assert jobs.run(db, "prune_signin_attempts", now, ZoneInfo("Asia/Shanghai")) == {"done": 2}
    kept = db.scalars(select(SigninAttempt.attempted_at).order_by(SigninAttempt.attempted_at))
    assert [now - at > throttle.RETENTION for at in kept] == [False, False]
    assert db.scalar(select(func.count()).select_from(SigninAttempt)) == 2
