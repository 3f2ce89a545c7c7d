"""Every staff and portal form, sent the bad values an outside fuzz run used: no 5xx.

The forms are not listed by hand: the test walks the pages a signed-in person can reach (a
staff member holding every role; a member in the portal; nobody, for the sign-in and join
forms), reads each `<form>` and its fields, and sends each field's bad values with the other
fields as the page filled them (posted, or as the query string of a filter form). A POST page
route that no walked page offers a form for fails the test, so a new form cannot escape it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import quote_plus, urljoin, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from analytics import segments
from campaigns import planning, receipts
from campaigns.receipts import ReceiptInput
from core.accounts import api_keys, users
from core.accounts.models import User
from core.audit import Actor
from loyalty import coupons, rewards
from loyalty.models import Member
from tests.web.conftest import member_sign_in, sign_in

# Each is sent as it stands in a urlencoded body (already percent-encoded), so invalid UTF-8
# and a lone surrogate's bytes reach the server as such.
BAD_VALUES = [
    "a%00b",  # NUL
    "%ED%A0%80",  # a lone UTF-16 surrogate, encoded as UTF-8 would have it
    "%FF%FE",  # not UTF-8 at all
    "x" * 5000,  # longer than any column
    "abc",  # text where a number or date belongs
    "1e30",
    "1e15",
    "-1",
    "0.00001",
    "99999999999999999999",  # above 2^63
    "9223372036854775808",  # 2^63
    "NaN",
    "9999-12-31",
    "0001-01-01",
    "",
]
# Forms the walk finds but the fuzz must not post: they end the session it runs in.
ENDS_SESSION = {"/signout", "/my/signout", "/my/profile/close"}
# Routes not reachable through a form a walked page shows, and why.
NOT_WALKED = {
    "/invite/{token}": "needs an unused invitation link (its own tests: test_admin_users.py)",
    "/my/activate/{token}": "needs an unused activation link (test_portal_signin.py)",
    "/my/reset/{token}": "needs an unused reset link (test_portal_signin.py)",
    "/imports/{kind}": "an upload form: the uploads' own tests send bad files",
}
STAFF_START = [
    "/dashboard", "/campaigns", "/campaigns/new", "/receipts/new", "/finance/queue",
    "/finance/periods", "/finance/rates", "/imports", "/channels", "/loyalty/program",
    "/loyalty/coupons", "/loyalty/rewards", "/admin/users", "/admin/api-keys", "/members",
    "/reports/roi", "/attribution", "/value", "/value/rfm", "/value/clv", "/value/types",
    "/value/members", "/audience", "/segments", "/segments/new",
]  # fmt: skip
PORTAL_START = ["/my", "/my/rewards", "/my/profile", "/my/coupons", "/my/history"]
PUBLIC_START = ["/signin", "/my/signin", "/my/signup", "/my/password"]


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    files: bool = False
    method: str = "post"


class _Forms(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.page, self.forms, self.links = page, list[Form](), set[str]()
        self._form: Form | None = None
        self._select: str | None = None
        self._also: list[str] = []  # other actions posting this form: hx-post, formaction

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        form = self._form
        if tag == "a" and a.get("href", "").startswith("/"):
            self.links.add(a["href"].split("#")[0])
        elif tag == "form":
            self._form = Form(urljoin(self.page, a.get("action") or self.page))
            self._form.files = "multipart" in a.get("enctype", "")
            self._form.method = a.get("method", "get").lower()
            self.forms.append(self._form)
            self._also = [a["hx-post"]] if a.get("hx-post") else []
        elif form is None:
            return
        elif tag in ("button", "input") and a.get("formaction"):
            self._also.append(a["formaction"])
        elif tag == "option" and self._select is not None:
            if "selected" in a or not form.fields.get(self._select):
                form.fields[self._select] = a.get("value", "")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            form.fields.setdefault(a["name"], "")
        elif tag in ("input", "textarea") and a.get("name"):
            unchecked = a.get("type") in ("checkbox", "radio") and "checked" not in a
            if not (unchecked and a["name"] in form.fields):
                form.fields[a["name"]] = "" if unchecked else a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._form is not None:
            form = self._form
            for action in dict.fromkeys(self._also):
                self.forms.append(
                    Form(urljoin(self.page, action), dict(form.fields), form.files, "post")
                )
            self._form, self._also = None, []
        elif tag == "select":
            self._select = None


def walk(client: TestClient, start: list[str], limit: int = 80) -> list[Form]:
    """Pages reachable from `start` (same site, GET, no downloads), and their post forms.
    A page is visited with at most two different query strings: the report's sort, preset
    and drill-down links would otherwise use up the walk before it reaches other pages."""
    seen, queue, forms = set[str](), list(start), dict[tuple[str, str, tuple[str, ...]], Form]()
    variants: dict[str, int] = {}
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen or re.search(r"\.(csv|xlsx|json|zip|png|pdf)$|/signout|/static/", path):
            continue
        bare = urlsplit(path).path
        if bare != path and variants.get(bare, 0) >= 2:
            continue
        variants[bare] = variants.get(bare, 0) + 1
        seen.add(path)
        answer = client.get(path)
        assert answer.status_code < 500, (path, answer.status_code)
        if "text/html" not in answer.headers.get("content-type", ""):
            continue
        parser = _Forms(path)
        parser.feed(answer.text)
        for form in parser.forms:
            key = (form.method, urlsplit(form.action).path, tuple(sorted(form.fields)))
            forms.setdefault(key, form)
        queue += sorted(link for link in parser.links if link not in seen)
    return list(forms.values())


def _body(fields: dict[str, str], name: str, raw: str) -> str:
    pairs = [f"{quote_plus(k)}={quote_plus(v)}" for k, v in fields.items() if k != name]
    return "&".join([*pairs, f"{quote_plus(name)}={raw}"])


def fuzz(
    client: TestClient,
    forms: list[Form],
    keep: Callable[[], None],
    errors: pytest.LogCaptureFixture,
) -> list[str]:
    """Sends every bad value in every field of every form (a filter form's as a query
    string); returns the 5xx found, one line per form field with the first value that broke
    it and the error logged."""
    failures: list[str] = []
    for form in forms:
        if urlsplit(form.action).path in ENDS_SESSION:
            continue
        for name in [n for n in form.fields if n != "csrf_token"]:
            broke = []
            for raw in BAD_VALUES:
                body = _body(form.fields, name, raw)
                if form.method == "post":
                    answer = client.post(
                        form.action,
                        content=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                else:
                    answer = client.get(f"{urlsplit(form.action).path}?{body}")
                if answer.status_code >= 500:
                    last = errors.records[-1] if errors.records else None
                    cause = repr(last.exc_info[1]) if last and last.exc_info else "?"
                    broke.append((raw, cause[:140]))
            if broke:
                failures.append(
                    f"{form.method.upper()} {form.action} {name}: {len(broke)} values, "
                    f"first {broke[0][0][:20]!r} -> {broke[0][1]}"
                )
            keep()
    return failures


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(path)) + "$")


@pytest.fixture
def seeded(db: Session, make_user: Callable[..., User], make_member: Callable[..., Member]) -> None:
    """One of each thing the forms act on, so the pages that edit them show their forms."""
    boss = make_user("all@example.com", ("admin", "finance", "marketer"), "Ada All")
    other = make_user("other@example.com", ("marketer",), "Mei Other")
    users.disable(db, Actor.system("fuzz"), other.id)
    users.invite(db, Actor.system("fuzz"), email="new@example.com", name="New", roles=["marketer"])
    api_keys.create(db, Actor.system("fuzz"), name="till", scopes=["purchases:write"])
    actor = Actor.system("fuzz")
    campaign = planning.create(
        db, actor, code="FUZZ1", name="Fuzz", channel="wechat", owner_id=boss.id,
        starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31), budget=Decimal(1000),
        currency="CNY", status="active",
    )  # fmt: skip
    receipts.create(
        db, actor, ReceiptInput(campaign.id, "Vendor", "media", Decimal(10), "CNY",
                                date(2026, 3, 2)),
    )  # fmt: skip
    batch = coupons.create_batch(
        db, actor, name="Ten off", kind="fixed", value=Decimal(10), currency="CNY", valid_days=30
    )
    rewards.save(db, actor, name="Ten off", points_cost=10, batch_id=batch.id)
    make_member("mei@example.com")
    segments.save(db, actor, "Shanghai", "", {"regions": ["Shanghai"]})
    db.commit()


def test_every_form_survives_bad_values(
    app: FastAPI, seeded: None, caplog: pytest.LogCaptureFixture
) -> None:
    staff = TestClient(app, follow_redirects=False)
    sign_in(staff, "all@example.com")
    member = TestClient(app, follow_redirects=False)
    member_sign_in(member, "mei@example.com")
    public = TestClient(app, follow_redirects=False)

    found = {
        "staff": (staff, walk(staff, STAFF_START), lambda: _stay(staff, "/dashboard", "all")),
        "portal": (member, walk(member, PORTAL_START), lambda: _stay(member, "/my", "mei")),
        "public": (public, walk(public, PUBLIC_START), lambda: None),
    }
    posted = {
        urlsplit(f.action).path
        for _, forms, _ in found.values()
        for f in forms
        if f.method == "post"
    }
    routes = {
        str(r.path)
        for r in iter_route_contexts(app.routes)
        if "POST" in (getattr(r, "methods", None) or set()) and not str(r.path).startswith("/api/")
    }
    unwalked = {
        route
        for route in routes - set(NOT_WALKED)
        if not any(_template(route).match(p) for p in posted)
    }
    assert not unwalked, f"POST routes with no form on a walked page: {sorted(unwalked)}"

    failures = [
        f for client, forms, keep in found.values() for f in fuzz(client, forms, keep, caplog)
    ]
    assert not failures, "\n".join(failures)


def _stay(client: TestClient, home: str, who: str) -> None:
    """Signs in again if a fuzzed form ended the session (disabling oneself, say)."""
    if client.get(home).status_code == 200:
        return
    client.cookies.clear()
    if who == "mei":
        member_sign_in(client, "mei@example.com")
    else:
        sign_in(client, "all@example.com")
