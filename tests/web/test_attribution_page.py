"""The attribution page (issue 13, "Where people see it"): every model side by side from the
stored runs, the chart's data, the top paths, the transition matrix, the filters, "Compute
now", who may do what, and bad filters answered with a message.

The journeys are Bryl's classic three (as in tests/attribution/test_runs.py), with campaigns:

  A: email (MAIL) > search_ads > wechat (SPRING), then buys 100.00
  B: email (MAIL), buys nothing
  C: search_ads > wechat (SPRING), buys nothing

Order-1 Markov credits email 0.2, search_ads 0.4, wechat 0.4 of the one conversion.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from attribution import runs
from attribution.models import AttributionRun
from attribution.runs import MODELS, RunParams
from core.accounts.models import User
from core.audit import Actor, AuditEntry
from tests.attribution.conftest import ZONE, World, day
from tests.campaigns.conftest import Staff
from tests.web.conftest import csrf_from, sign_in

D = Decimal
BASE = "CNY"


def actor(user: User) -> Actor:
    roles = frozenset(r.value for r in user.roles)
    return Actor("user", user.email, user_id=user.id, roles=roles)


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {
        "marketer": make_user("marketer@example.com", ("marketer",), "Mia Marketer"),
        "finance": make_user("finance@example.com", ("finance",), "Fei Finance"),
        "admin": make_user("admin@example.com", ("admin",), "Ada Admin"),
    }


@pytest.fixture
def bryl(db: Session, people: dict[str, User]) -> World:
    team = Staff(*(actor(people[r]) for r in ("marketer", "finance", "admin")))
    world = World(db, team)
    world.campaign("MAIL", "email", name="Mail drop")
    world.campaign("SPRING", "wechat", name="Spring sale")
    a, b, c = world.join("A", at=day(-40)), world.join("B", at=day(-40)), world.join("C")
    world.touch(a, "email", day(0), campaign="MAIL")
    world.touch(a, "search_ads", day(1))
    world.touch(a, "wechat", day(2), campaign="SPRING")
    world.buy(a, "100.00", at=day(3))
    world.touch(b, "email", day(0), campaign="MAIL")
    world.touch(c, "search_ads", day(0))
    world.touch(c, "wechat", day(1), campaign="SPRING")
    db.commit()
    return world


class _Page(HTMLParser):
    """Tables by id (rows of cells: text and attributes), JSON blocks, canvases, forms."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[dict[str, Any]]]] = {}
        self.json: dict[str, Any] = {}
        self.canvases: list[dict[str, str]] = []
        self.forms: list[dict[str, Any]] = []
        self._table: str | None = None
        self._cell: dict[str, Any] | None = None
        self._json: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = {"text": "", **a}
        elif tag == "script" and a.get("type") == "application/json":
            self._json, self._text = a["id"], []
        elif tag == "canvas":
            self.canvases.append(a)
        elif tag == "form":
            self.forms.append({**a, "fields": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self._cell["text"] = " ".join(self._cell["text"].split())
            self.tables[self._table][-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "script" and self._json:
            self.json[self._json] = json.loads("".join(self._text))
            self._json = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data
        if self._json:
            self._text.append(data)


def parsed(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def signed_in(client: TestClient, who: str) -> TestClient:
    sign_in(client, f"{who}@example.com")
    return client


def compute(db: Session, who: User, **params: Any) -> runs.Comparison:
    found = runs.run_all(db, actor(who), RunParams(**params), base=BASE, zone=ZONE)
    db.commit()
    return found


def test_every_model_side_by_side_as_stored_with_chart_paths_and_matrix(
    client: TestClient, db: Session, bryl: World, people: dict[str, User]
) -> None:
    stored = compute(db, people["marketer"])
    answer = signed_in(client, "marketer").get("/attribution")
    assert answer.status_code == 200, answer.text
    page = parsed(answer.text)
    # Every model's credits, exactly as stored, in both tables.
    for kind in ("conversions", "value"):
        rows = page.tables[f"credits-{kind}"]
        header = [c.get("data-model") for c in rows[0][1:]]
        assert header == list(MODELS)
        body = {r[0]["text"]: r[1:] for r in rows[1:-1]}
        assert set(body) == {"Email", "Search ads", "WeChat"}
        for model, run in stored.runs.items():
            for credit in run.credits:
                cell = body[credit.label][list(MODELS).index(model)]
                assert cell["data-model"] == model
                assert D(cell["data-value"]) == getattr(credit, kind)
        totals = rows[-1]
        assert totals[0]["text"] == "Total"
        assert {c["text"] for c in totals[1:]} == (
            {"1.00"} if kind == "conversions" else {"100.00"}
        )
    markov = {c.label: c.conversions for c in stored.runs["markov"].credits}
    assert markov == {"Email": D("0.2"), "Search ads": D("0.4"), "WeChat": D("0.4")}
    shown = {r[0]["text"]: r[1 + list(MODELS).index("markov")]["text"] for r in
             page.tables["credits-conversions"][1:-1]}  # fmt: skip
    assert shown == {"Email": "0.20", "Search ads": "0.40", "WeChat": "0.40"}

    # The chart: the same figures, one dataset per model; the canvases are described images.
    chart = page.json["attribution-chart-data"]
    assert chart["labels"] == ["Email", "Search ads", "WeChat"]
    assert [m["model"] for m in chart["models"]] == list(MODELS)
    by_model = {m["model"]: m for m in chart["models"]}
    assert by_model["markov"]["conversions"] == [0.2, 0.4, 0.4]
    assert by_model["markov"]["value"] == [20.0, 40.0, 40.0]
    assert by_model["first"]["value"] == [100.0, 0.0, 0.0]
    assert by_model["last"]["value"] == [0.0, 0.0, 100.0]
    canvases = {c["id"]: c for c in page.canvases}
    for name in ("chart-attribution-conversions", "chart-attribution-value"):
        assert canvases[name]["role"] == "img" and canvases[name]["aria-label"]
    assert '<script src="/static/attribution.js" defer></script>' in answer.text
    assert not re.search(r"<script>(?!\s*</script>)", answer.text)  # no inline script

    # Top paths with their counts.
    paths = {r[0]["text"]: [c["text"] for c in r[1:]] for r in page.tables["top-paths"][1:]}
    assert paths == {
        "Email › Search ads › WeChat": ["1", "100.00", "0"],
        "Email": ["0", "0.00", "1"],
        "Search ads › WeChat": ["0", "0.00", "1"],
    }

    # The transition matrix: rows labelled, absorbing states named, each row sums to 1.
    matrix = page.tables["transition-matrix"]
    columns = [c["text"] for c in matrix[0][2:]]
    assert columns == ["Email", "Search ads", "WeChat", "Conversion", "No conversion (null)"]
    states = {r[0]["text"]: r for r in matrix[1:]}
    assert list(states) == ["Start", "Email", "Search ads", "WeChat"]
    for label, row in states.items():
        cells = row[2:]
        assert sum(float(c["data-p"]) for c in cells) == pytest.approx(1, abs=1e-12), label
        shown_sum = sum((D(c["text"]) for c in cells), D(0))
        assert abs(shown_sum - 1) <= D("0.0005") * len(cells), label
        assert all(re.fullmatch(r"0|[01]\.\d{3}", c["text"]) for c in cells)
    start = dict(zip(columns, [c["text"] for c in states["Start"][2:]], strict=True))
    assert start == {
        "Email": "0.667",
        "Search ads": "0.333",
        "WeChat": "0",
        "Conversion": "0",
        "No conversion (null)": "0",
    }
    assert states["Start"][1]["text"] == "3"  # three journeys leave the start
    wechat = dict(zip(columns, [c["text"] for c in states["WeChat"][2:]], strict=True))
    assert (wechat["Conversion"], wechat["No conversion (null)"]) == ("0.500", "0.500")

    # What each model does, and the run: its parameters, who computed it and when.
    text = answer.text
    for sentence in ("removal effect", "fair share", "first touch", "last touch"):
        assert sentence in text
    assert "marketer@example.com" in text and "All dates" in text
    assert "90 days (first purchases 30 days)" in text and "Kept" in text
    run = stored.runs["markov"]
    assert run.created_at is not None
    assert run.created_at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M") in text


def test_in_chinese(client: TestClient, db: Session, bryl: World, people: dict[str, User]) -> None:
    compute(db, people["marketer"])
    signed_in(client, "marketer")
    page = client.get("/attribution", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200
    for word in ("归因", "马尔可夫", "沙普利", "转移矩阵", "首次触点", "末次触点", "路径"):
        assert word in page.text, word


def test_nothing_stored_offers_compute_now_which_stores_every_model(
    client: TestClient, db: Session, bryl: World
) -> None:
    signed_in(client, "marketer")
    address = "/attribution?from=2026-03-01&to=2026-03-31&unit=campaign&lookback=30&collapse=1"
    first = client.get(address)
    assert first.status_code == 200
    assert "No comparison is stored for these parameters yet." in first.text
    page = parsed(first.text)
    (form,) = [f for f in page.forms if f.get("action") == "/attribution/compute"]
    assert form["method"] == "post" and form["fields"]["csrf_token"]
    assert form["fields"] | {"csrf_token": ""} == {
        "csrf_token": "",
        "from": "2026-03-01",
        "to": "2026-03-31",
        "lookback": "30",
        "unit": "campaign",
        "order": "1",
        "collapse": "1",
    }
    without_token = client.post("/attribution/compute", data=form["fields"] | {"csrf_token": "x"})
    assert without_token.status_code == 403
    assert db.scalar(select(func.count()).select_from(AttributionRun)) == 0

    done = client.post("/attribution/compute", data=form["fields"])
    assert done.status_code == 303, done.text
    back = urlsplit(done.headers["location"])
    assert back.path == "/attribution"
    assert parse_qs(back.query) == {
        "from": ["2026-03-01"],
        "to": ["2026-03-31"],
        "unit": ["campaign"],
        "lookback": ["30"],
        "collapse": ["1"],
    }
    params = RunParams(
        unit="campaign",
        lookback_days=30,
        collapse_repeats=True,
        period_from=date(2026, 3, 1),
        period_to=date(2026, 3, 31),
    )
    stored = runs.latest_comparison(db, params)
    assert stored is not None and list(stored.runs) == list(MODELS)
    assert all(r.created_by == "marketer@example.com" for r in stored.runs.values())
    assert db.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "attribution.run")
    ) == len(MODELS)

    shown = client.get(done.headers["location"])
    assert shown.status_code == 200
    assert "Computed and stored 8 models for these parameters." in shown.text
    rows = parsed(shown.text).tables["credits-value"]
    labels = {r[0]["text"] for r in rows[1:-1]}
    assert labels == {"Mail drop", "Spring sale", "(no campaign)"}
    assert "Collapsed" in shown.text and "30 days" in shown.text
    assert "2026-03-01 – 2026-03-31" in shown.text
    assert 'href="/reports/roi?from=2026-03-01&amp;to=2026-03-31&amp;basis=markov"' in shown.text


def test_filters_choose_the_stored_runs(
    client: TestClient, db: Session, bryl: World, people: dict[str, User]
) -> None:
    compute(db, people["admin"], order=2)
    signed_in(client, "finance")
    # Only Markov has an order: the other models' runs serve order 1 too; Markov's does not.
    default = client.get("/attribution")
    assert default.status_code == 200
    header = parsed(default.text).tables["credits-conversions"][0]
    assert [c.get("data-model") for c in header[1:]] == [m for m in MODELS if m != "markov"]
    assert "Not computed for these parameters: Markov chain." in default.text
    assert "No Markov run is stored for these parameters." in default.text
    assert "/attribution/compute" not in default.text  # finance reads, does not compute
    unstored = client.get("/attribution?lookback=60")
    assert "No comparison is stored for these parameters yet." in unstored.text
    assert "Ask a marketer or an admin to compute it." in unstored.text
    assert "/attribution/compute" not in unstored.text
    second = client.get("/attribution?order=2")
    assert second.status_code == 200
    page = parsed(second.text)
    assert "transition-matrix" not in page.tables
    assert "The matrix is shown for order 1" in second.text
    assert "credits-conversions" in page.tables
    assert 'option value="2" selected' in second.text
    assert "/attribution/compute" not in second.text


def test_roles(client: TestClient, db: Session, bryl: World, people: dict[str, User]) -> None:
    assert client.get("/attribution").status_code in (303, 401)
    for who in ("marketer", "finance", "admin"):
        client.cookies.clear()
        signed_in(client, who)
        assert client.get("/attribution").status_code == 200
        assert 'href="/attribution"' in client.get("/dashboard").text  # in the navigation
    client.cookies.clear()
    signed_in(client, "finance")
    token = csrf_from(client, "/attribution")
    refused = client.post("/attribution/compute", data={"csrf_token": token})
    assert refused.status_code == 403
    assert db.scalar(select(func.count()).select_from(AttributionRun)) == 0
    client.cookies.clear()
    signed_in(client, "admin")
    token = csrf_from(client, "/attribution")
    assert client.post("/attribution/compute", data={"csrf_token": token}).status_code == 303
    assert db.scalar(select(func.count()).select_from(AttributionRun)) == len(MODELS)


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("from=yesterday", "'yesterday' is not a date like 2026-03-31."),
        ("to=9999-12-31", "'9999-12-31' must be between 1900-01-01 and 2199-12-31."),
        ("from=2026-04-01&to=2026-03-01", "The period's end is before its start."),
        ("lookback=0", "The lookback must be a whole number of days from 1 to 730."),
        ("lookback=1e3", "The lookback must be a whole number of days from 1 to 730."),
        ("unit=member", "The unit must be channel or campaign."),
        ("order=4", "The Markov order must be 1, 2 or 3."),
        ("collapse=maybe", "Collapse repeats is a box to tick, or not."),
    ],
)
def test_bad_filters_are_named_not_500(
    client: TestClient, db: Session, bryl: World, query: str, said: str
) -> None:
    signed_in(client, "marketer")
    answer = client.get(f"/attribution?{query}")
    assert answer.status_code == 422
    assert said.replace("'", "&#39;") in answer.text
    assert 'aria-invalid="true"' in answer.text
    token = csrf_from(client, "/attribution")
    fields = dict(part.split("=", 1) for part in query.split("&"))
    refused = client.post("/attribution/compute", data={"csrf_token": token, **fields})
    assert refused.status_code == 422
    assert "Nothing was computed." in refused.text and said.replace("'", "&#39;") in refused.text
    assert db.scalar(select(func.count()).select_from(AttributionRun)) == 0


def test_a_period_without_journeys_is_stored_as_empty_and_says_so(
    client: TestClient, db: Session, bryl: World, people: dict[str, User]
) -> None:
    compute(db, people["marketer"], period_from=date(2025, 1, 1), period_to=date(2025, 1, 31))
    signed_in(client, "marketer")
    answer = client.get("/attribution?from=2025-01-01&to=2025-01-31")
    assert answer.status_code == 200
    assert "No purchase in this period had a touch before it" in answer.text
    assert "Nothing was credited." in answer.text
    assert "attribution-chart-data" not in answer.text
    assert 'id="matrix-note">No journeys in this period.' in answer.text
