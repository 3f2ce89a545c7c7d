"""The staff member page's history controls work under the CSP: the type filter submits from
a static script (`data-autosubmit`), "Load more" swaps its own row for the next rows with
plain htmx; and no template anywhere relies on inline script the CSP blocks."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.accounts.models import User
from core.audit import Actor
from core.timeutil import utcnow
from loyalty import ledger, members
from loyalty import program as program_settings
from loyalty.models import EntryType, Member
from tests.web.conftest import sign_in
from web.headers import CSP
from web.rendering import TEMPLATES_DIR

ACTOR = Actor.cli("test")
ZONE = ZoneInfo("Asia/Shanghai")
STATIC = TEMPLATES_DIR.parent / "static"


def member_with_entries(db: Session, adjustments: int) -> Member:
    member = members.create(db, ACTOR, members.Profile(name="Lots", phone="13900001111"), zone=ZONE)
    for n in range(adjustments):
        locked = ledger.lock_member(db, member.id)
        ledger.credit(
            db,
            locked,
            ACTOR,
            [ledger.Credit(n + 1, f"Goodwill {n + 1}", "adjust", EntryType.ADJUST)],
            key=f"many-{n}",
            at=utcnow(),
            program=program_settings.get(db),
            zone=ZONE,
        )
    db.commit()
    return member


def rows(html: str) -> list[str]:
    """The ledger's "why" cells, in staff's words: an adjustment says staff made it."""
    return re.findall(r"<td>(?:Adjusted by staff: )?(Goodwill \d+|Welcome bonus)", html)


def test_load_more_swaps_its_row_for_the_next_rows(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    member = member_with_entries(db, 60)  # 61 entries with the welcome bonus
    make_user("fin@example.com", ("finance",))
    sign_in(client, "fin@example.com")
    page = client.get(f"/members/{member.number}")
    assert len(rows(page.text)) == 50
    more = re.search(r'<tr id="more-row">.*?</tr>', page.text, re.S)
    assert more, "a Load more row"
    link = more.group(0)
    assert 'hx-target="#more-row"' in link and 'hx-swap="outerHTML"' in link
    assert "hx-select" not in link and "hx-on" not in link
    url = re.search(r'hx-get="([^"]+)"', link)
    assert url
    # As htmx asks: the target's id in HX-Target.
    swap = client.get(
        url.group(1).replace("&amp;", "&"), headers={"HX-Request": "true", "HX-Target": "more-row"}
    )
    assert swap.status_code == 200
    assert swap.text.lstrip().startswith("<tr>")  # rows only: no page, no table around them
    assert "<html" not in swap.text and "Points history" not in swap.text
    assert rows(swap.text) == [f"Goodwill {n}" for n in range(10, 0, -1)] + ["Welcome bonus"]
    assert 'id="more-row"' not in swap.text  # the last page has no Load more
    # Without JavaScript the link opens the next page of the history.
    plain = client.get(url.group(1).replace("&amp;", "&"))
    assert "<html" in plain.text and len(rows(plain.text)) == 11


def test_the_type_filter_submits_without_inline_script(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    member = member_with_entries(db, 3)
    make_user("fin@example.com", ("finance",))
    sign_in(client, "fin@example.com")
    page = client.get(f"/members/{member.number}")
    select = re.search(r'<select name="type"[^>]*>', page.text)
    assert select and "data-autosubmit" in select.group(0) and "onchange" not in select.group(0)
    assert '<script src="/static/controls.js" defer></script>' in page.text
    assert "data-autosubmit" in (STATIC / "controls.js").read_text()
    bonus = client.get(f"/members/{member.number}", params={"type": "bonus"})
    assert rows(bonus.text) == ["Welcome bonus"]
    assert '<option value="bonus" selected>' in bonus.text
    unknown = client.get(f"/members/{member.number}", params={"type": "<b>x"})
    assert len(rows(unknown.text)) == 4 and "&lt;b&gt;x" not in unknown.text


# What the CSP (script-src 'self', no 'unsafe-inline', no 'unsafe-eval') silently ignores.
INLINE = [
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler (onclick=, onchange=, …)"),
    (re.compile(r"\shx-on[:\-]", re.I), "hx-on (htmx evaluates it: eval is off)"),
    (re.compile(r"\s(hx|data-hx)-vars\s*=", re.I), "hx-vars (evaluated as script)"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
    (re.compile(r"<script(?![^>]*\ssrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
     "an inline <script> (only <script src> and JSON data blocks run under the CSP)"),
]  # fmt: skip


def test_no_template_relies_on_script_the_csp_blocks() -> None:
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    found = [
        f"{path.relative_to(TEMPLATES_DIR)}:{n}: {why}"
        for path in sorted(Path(TEMPLATES_DIR).rglob("*.html"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for pattern, why in INLINE
        if pattern.search(line)
    ]
    assert found == []
    for script in re.findall(r'<script src="/static/([^"]+)"', _all_templates()):
        assert (STATIC / script).exists() or script.startswith("vendor/"), script


def _all_templates() -> str:
    return "".join(p.read_text() for p in Path(TEMPLATES_DIR).rglob("*.html"))
