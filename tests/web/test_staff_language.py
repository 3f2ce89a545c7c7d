"""The staff side in 简体中文 and English from one Babel catalog (issue 12, "Chinese"): chosen
per person, from Accept-Language before sign-in; no staff string without Chinese, and no
English left in a staff template outside the catalog."""

from __future__ import annotations

import ast
import configparser
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from babel.util import pathmatch
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.models import User
from core.audit import AuditEntry
from tests.web.conftest import csrf_from, sign_in
from web.i18n import LOCALE_DIR

ROOT = Path(__file__).parents[2]
ERRORS = (
    "RetainError",
    "ValidationFailed",
    "NotFound",
    "PermissionDenied",
    "NotAuthenticated",
    "Conflict",
    "RateLimited",
    "ConfigError",
    # Their subclasses, which take a template the same way.
    "MissingRate",
    "ImportFailed",
    "InsufficientPoints",
    "NegativeBalance",
    "CouponRefused",
    "MonthClosed",
)
KEYWORDS: dict[str, tuple[int, ...] | None] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "N_": None,
    "t": (2,),
    "tn": (2, 3),
    # A refusal's template (core.errors): the second argument of an error or Problems.add.
    **{name: (2,) for name in ("add", *ERRORS)},
}


def staff_method_map() -> list[tuple[str, str]]:
    """The files `babel_staff.cfg` names, as `pybabel extract -F babel_staff.cfg` reads them."""
    config = configparser.ConfigParser()
    config.read(ROOT / "babel_staff.cfg")
    return [
        (section.split(":", 1)[1].strip(), section.split(":", 1)[0].strip())
        for section in config.sections()
    ]


def extracted() -> set[str]:
    return {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(str(ROOT), staff_method_map(), keywords=KEYWORDS)
    }


def shown_domain_words() -> set[str]:
    """Words the domain defines and the staff pages show through `_()` as variables: report
    headers, roles, statuses, categories, scopes. The extractor cannot see them, so they
    are listed here from the domain itself: a new one without Chinese fails the test."""
    from campaigns.models import CampaignStatus, CostCategory, ReceiptStatus
    from campaigns.reports import COLUMNS, KEY_LABELS
    from core.accounts.api_keys import SCOPES
    from core.accounts.models import Role, UserStatus

    return {
        *COLUMNS.values(),
        *KEY_LABELS.values(),
        *SCOPES.values(),
        *(r.label for r in Role),
        *(s.value for s in UserStatus),
        *(s.value for s in CampaignStatus),
        *(s.value for s in ReceiptStatus),
        *(c.value for c in CostCategory),
    }


def test_every_staff_string_has_a_chinese_translation() -> None:
    with (LOCALE_DIR / "zh" / "LC_MESSAGES" / "staff.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and (m.string if isinstance(m.string, str) else all(m.string or ()))
    }
    missing = sorted((extracted() | shown_domain_words()) - translated)
    assert missing == [], f"{len(missing)} staff strings lack Chinese, e.g. {missing[:10]}"


# Literal text a staff template may show untranslated: names, codes and symbols.
ALLOWED = re.compile(
    r"^(Retain|ROI|ROAS|CSV|XLSX|Excel|API|ISO|QR|CNY|PDF|PNG|JPEG|WeChat|Alipay|UTC|SHA-256|"
    r"rtn_|OK|ID|htmx|Pico|Chart\.js|中文|English|Bilibili|bilibili|"
    r"[A-Z0-9_\-]{3,}|"  # an example code: SPRING26
    r"[a-z0-9_.]+@[a-z0-9_.]+)$"  # an example address
)
JINJA = re.compile(
    r"\{% block main_class %\}.*?\{% endblock %\}"  # a CSS class, not text
    r"|\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}",
    re.S,
)
SHOWN_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt", "data-confirm", "label"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code"):
            self._skip += 1
        for name, value in attrs:
            if name in SHOWN_ATTRIBUTES and value:
                self.handle_data(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if self._skip or '="' in data:  # a macro's attributes, not text
            return
        for word in re.findall(r"[A-Za-z0-9][A-Za-z'’.\-_0-9@]+", data):
            if not re.search("[A-Za-z]", word):
                continue
            if len(word) > 1 and not ALLOWED.match(word):
                self.found.append(data.strip())
                return


def test_no_staff_template_shows_english_outside_the_catalog() -> None:
    """Every word a staff template shows goes through gettext: strip the Jinja, read what is
    left as a browser would (text and the attributes people see)."""
    left: dict[str, list[str]] = {}
    for pattern, method in staff_method_map():
        if method != "jinja2":
            continue
        for path in sorted(ROOT.glob(pattern.replace("**.", "**/*."))):
            parser = _Text()
            parser.feed(JINJA.sub(" ", path.read_text()))
            if parser.found:
                left[str(path.relative_to(ROOT))] = parser.found[:5]
    assert left == {}, f"English outside {{ _() }}: {left}"


def test_a_person_who_chose_chinese_sees_the_report_in_chinese(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    marketer = make_user("marketer@example.com", ("marketer",), "Mia")
    sign_in(client, marketer.email)
    token = csrf_from(client, "/dashboard")
    switched = client.post(
        "/language", data={"language": "zh", "next": "/reports/roi", "csrf_token": token}
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/reports/roi"
    page = client.get("/reports/roi")
    assert page.headers["content-language"] == "zh" and '<html lang="zh-Hans"' in page.text
    assert "投入产出比" in page.text and "ROI 报告" in page.text
    db.refresh(marketer)
    assert marketer.language == "zh"
    audit = db.scalar(select(AuditEntry).where(AuditEntry.action == "user.language"))
    assert audit is not None and audit.after == {"language": "zh"}
    # It follows the person to another browser, whatever that browser asks for.
    client.cookies.clear()
    sign_in(client, marketer.email)
    assert "投入产出比" in client.get("/reports/roi", headers={"Accept-Language": "en"}).text


def test_before_sign_in_the_browser_language_is_used_and_a_choice_is_kept(
    client: TestClient,
) -> None:
    chinese = client.get("/signin", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert chinese.headers["content-language"] == "zh" and "登录" in chinese.text
    english = client.get("/signin", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert english.headers["content-language"] == "en" and "Sign in" in english.text
    token = csrf_from(client, "/signin")
    client.post("/language", data={"language": "zh", "next": "/signin", "csrf_token": token})
    assert "登录" in client.get("/signin", headers={"Accept-Language": "en"}).text


def test_an_unknown_language_is_refused_and_nothing_changes(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    finance = make_user("finance@example.com", ("finance",), "Fei")
    sign_in(client, finance.email)
    token = csrf_from(client, "/dashboard")
    refused = client.post("/language", data={"language": "xx", "csrf_token": token})
    assert refused.status_code == 422
    db.refresh(finance)
    assert finance.language is None
    assert client.get("/dashboard").headers["content-language"] == "en"


PLACEHOLDER = re.compile(r"%\((\w+)\)")


def _templates(node: ast.expr, top: bool = True) -> list[str] | None:
    """The template(s) a refusal's message argument can be: a literal; a conditional whose
    every branch is marked `N_("…")` (pybabel would glue unmarked branches into one id); or
    an earlier error's `.template` passed on. None: not a template."""
    if top and isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "N_"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]
    if isinstance(node, ast.IfExp):
        body, orelse = _templates(node.body, False), _templates(node.orelse, False)
        return None if body is None or orelse is None else body + orelse
    if top and isinstance(node, ast.Attribute) and node.attr == "template":
        return []
    return None


def refusals_not_templates() -> list[str]:
    """Every refusal in the staff-visible code whose message is built in place (an f-string,
    a concatenation, a variable) instead of a literal template with its params apart, and
    every template naming a param the call does not pass."""
    patterns = [pattern for pattern, method in staff_method_map() if method == "python"]
    sources = [
        path
        for top in ("core", "campaigns", "loyalty", "attribution", "analytics", "web")
        for path in sorted((ROOT / top).rglob("*.py"))
        if any(pathmatch(p, path.relative_to(ROOT).as_posix()) for p in patterns)
        and path != ROOT / "core" / "errors.py"  # where templates are filled
    ]
    bad: list[str] = []
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            name = func.id if isinstance(func, ast.Name) else None
            adds = (
                isinstance(func, ast.Attribute)
                and func.attr == "add"
                and isinstance(func.value, ast.Name)
                and func.value.id in {"problems", "errors", "found"}
            )
            if name not in ERRORS and not adds:
                continue
            message = call.args[1] if len(call.args) > 1 else None
            for keyword in call.keywords:
                if keyword.arg == "message":
                    message = keyword.value
            if message is None:
                continue
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            templates = _templates(message)
            if templates is None:
                bad.append(f"{where}: the message is built in place")
                continue
            passed = {k.arg for k in call.keywords if k.arg}
            if any(k.arg is None for k in call.keywords):
                continue  # **params passed on
            for template in templates:
                missing = set(PLACEHOLDER.findall(template)) - passed
                if missing:
                    bad.append(f"{where}: {sorted(missing)} not passed")
    return bad


def test_refusals_are_templates_the_catalog_can_translate() -> None:
    """A refusal's message is a literal template with its params apart (core.errors), so
    the staff pages say it in the reader's language: `"No receipt #%(id)s."`, `id=...`."""
    bad = refusals_not_templates()
    assert bad == [], f"{len(bad)} refusals are not templates, e.g. " + "; ".join(bad[:15])
