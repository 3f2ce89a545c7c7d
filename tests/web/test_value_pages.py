"""The customer value pages (issue 14, "Where people see it"): the pyramid with its movement
matrix and "Compute now", RFM with its grid, segments, migration and member lists and
exports, lifetime value in six parts with the fitted models and the holdout check, loyalty
types, one member's page; who may read and who may compute; bad input answered beside its
field.

Most tests store runs as rows (known layers, segments and amounts), so every figure on the
page can be checked by hand; the compute form runs the real `analytics.runs.run` over members
and purchases made through the loyalty services.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import runs
from analytics.models import MemberScore, ValueRun
from core.accounts.models import User
from core.audit import AuditEntry
from loyalty.models import Member
from tests.loyalty.conftest import Shop
from tests.web.conftest import csrf_from, sign_in

D = Decimal
JOINED = datetime(2025, 1, 5, 4, tzinfo=UTC)
PAGES = ("/value", "/value/rfm", "/value/clv", "/value/types", "/value/members")


# --- Making runs as rows -----------------------------------------------------------------------


def stored_run(
    db: Session,
    as_of: date,
    scores: Iterable[tuple[Member, dict[str, Any]]],
    *,
    fit: dict[str, Any] | None = None,
    **params: Any,
) -> ValueRun:
    """A run with the given members' scores (anything not given: zero, low contribution,
    No Purchase, type none) and canonical parameters."""
    canonical = runs.ValueParams(**params).canonical(as_of, D("0.01"))
    rows = list(scores)
    run = ValueRun(
        as_of=as_of,
        period_days=canonical["period_days"],
        currency="CNY",
        params=canonical,
        fit=fit if fit is not None else {"unit": "W", "note": "Nothing to fit in this test."},
        summary={"full_price_share": "0.800000", "rfm_segments": {}, "loyalty_types": {}},
        members=len(rows),
        actor_label="test",
    )
    db.add(run)
    db.flush()
    zero = D(0)
    for member, given in rows:
        values: dict[str, Any] = {
            "net_purchases": zero,
            "cost_to_serve": zero,
            "value": zero,
            "predicted_value": None,
            "layer": "low_contribution",
            "purchases": 0,
            "last_purchase": None,
            "monetary": zero,
            "r": None,
            "f": None,
            "m": None,
            "rfm_segment": "No Purchase",
            "loyalty_type": "none",
            "p_alive": None,
            "expected_purchases": None,
            **{p: zero for p in ("clv1", "clv2", "clv3", "clv4", "clv5", "clv6", "clv_total")},
        }
        texts = ("layer", "rfm_segment", "loyalty_type")
        values.update(
            {k: D(v) if isinstance(v, str) and k not in texts else v for k, v in given.items()}
        )
        db.add(MemberScore(run_id=run.id, member_id=member.id, **values))
    db.commit()
    return run


class Page(HTMLParser):
    """Tables by id (rows of cells: text and attributes), JSON blocks, forms' fields,
    elements with ids, and which fields are marked invalid."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[dict[str, str]]]] = {}
        self.json: dict[str, Any] = {}
        self.ids: set[str] = set()
        self.invalid: set[str] = set()
        self.fields: dict[str, str] = {}
        self.scripts: list[str] = []
        self.links: list[str] = []
        self._table: str | None = None
        self._cell: dict[str, str] | None = None
        self._json: str | None = None
        self._text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if a.get("id"):
            self.ids.add(a["id"])
        if a.get("aria-invalid") == "true" and a.get("name"):
            self.invalid.add(a["name"])
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = {"text": "", **a}
        elif tag == "script" and a.get("type") == "application/json":
            self._json, self._text = a["id"], []
        elif tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])

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
        if self._json is not None:
            self._text.append(data)

    def texts(self, table: str) -> list[list[str]]:
        return [[c["text"] for c in row] for row in self.tables[table]]


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {
        "marketer": make_user("marketer@example.com", ("marketer",), "Mia Marketer"),
        "finance": make_user("finance@example.com", ("finance",), "Fei Finance"),
        "admin": make_user("admin@example.com", ("admin",), "Ada Admin"),
    }


@pytest.fixture
def shop(db: Session) -> Shop:
    return Shop(db)


def as_(client: TestClient, who: str) -> TestClient:
    sign_in(client, f"{who}@example.com")
    return client


def members_of(shop: Shop, n: int, prefix: str = "M") -> list[Member]:
    found = [shop.join(f"{prefix}{i}", at=JOINED) for i in range(n)]
    shop.db.commit()
    return found


# --- No run yet ----------------------------------------------------------------------------------


def test_every_page_says_what_to_do_when_nothing_is_computed(
    client: TestClient, people: dict[str, User]
) -> None:
    marketer = as_(client, "marketer")
    for path in PAGES:
        answer = marketer.get(path)
        assert answer.status_code == 200, (path, answer.text)
        page = Page(answer.text)
        assert "value-empty" in page.ids, path
        assert "No customer value has been computed yet." in answer.text
    pyramid = Page(marketer.get("/value").text)
    assert "value-compute-form" in pyramid.ids
    assert pyramid.fields["period_days"] == "365" and pyramid.fields["margin"] == "30"
    assert pyramid.fields["top_share"] == "50" and pyramid.fields["yearly_discount_rate"] == "10"
    assert pyramid.fields["as_of"] == "" and pyramid.fields["point_value"] == ""
    assert "/static/value.js" not in pyramid.scripts  # no chart without a run


def test_the_nav_links_to_the_pages_for_readers_only(
    client: TestClient, people: dict[str, User], make_user: Callable[..., User]
) -> None:
    finance = as_(client, "finance")
    assert 'href="/value"' in finance.get("/dashboard").text
    assert finance.get("/value/rfm").status_code == 200


# --- Compute now ---------------------------------------------------------------------------------


def _shop_with_purchases(shop: Shop) -> list[Member]:
    people = members_of(shop, 8)
    for i, member in enumerate(people):
        for k in range(i % 4):
            shop.buy(member, f"{(i + 1) * 40}.00", at=JOINED + timedelta(days=30 * k + i))
    shop.db.commit()
    return people


FORM = {
    "as_of": "2025-12-31",
    "period_days": "365",
    "margin": "25",
    "point_value": "0.02",
    "yearly_service_cost": "1.50",
    "top_share": "50",
    "growth_factor": "1.5",
    "horizon_months": "12",
    "yearly_discount_rate": "10",
}


def test_compute_now_stores_a_run_and_every_page_shows_it(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    everyone = _shop_with_purchases(shop)
    marketer = as_(client, "marketer")
    token = csrf_from(marketer, "/value")
    answer = marketer.post("/value/compute", data={**FORM, "csrf_token": token})
    assert answer.status_code == 303, answer.text
    run = db.scalars(select(ValueRun)).one()
    assert answer.headers["location"] == f"/value?run={run.id}"
    assert run.as_of == date(2025, 12, 31) and run.members == len(everyone)
    assert run.params["margin"] == "0.25" and run.params["point_value"] == "0.02"
    assert run.params["yearly_service_cost"] == "1.50" and run.params["top_share"] == "0.5"
    assert run.params["yearly_discount_rate"] == "0.1" and run.actor_label == "marketer@example.com"
    audit = db.scalars(select(AuditEntry).where(AuditEntry.action == "value_run.create")).one()
    assert audit.entity_id == str(run.id)

    shown = marketer.get(answer.headers["location"])
    assert "Computed and stored the customer value of 8 members as of 2025-12-31." in shown.text
    page = Page(shown.text)
    layers = page.tables["value-layers"]
    assert [r[0]["text"] for r in layers[1:5]] == [
        "Most valuable",
        "Most growable",
        "Low contribution",
        "Negative value",
    ]
    assert sum(int(r[2]["text"].replace(",", "")) for r in layers[1:5]) == 8
    assert layers[-1][2]["text"] == "8" and layers[-1][3]["text"] == "100.0%"
    # The layers' values are the stored members' values, summed exactly.
    stored = db.scalars(select(MemberScore.value).where(MemberScore.run_id == run.id)).all()
    assert sum(D(r[4]["data-value"]) for r in layers[1:5]) == sum(stored)
    chart = page.json["value-chart-data"]
    assert chart["kind"] == "pyramid" and sum(chart["members"]) == 8
    assert "/static/value.js" in page.scripts and "/static/vendor/chart.umd.min.js" in page.scripts
    assert "25% on net purchases" in shown.text
    assert "A point costs 0.02 CNY" in shown.text
    assert "1.50 CNY a member a year" in shown.text
    assert "value-movement-note" in page.ids  # one run: nothing to compare with
    assert "Only one run is stored" in shown.text
    # The form offers the run's parameters again.
    assert page.fields["margin"] == "25" and page.fields["yearly_service_cost"] == "1.5"

    for path in PAGES[1:]:
        other = marketer.get(path)
        assert other.status_code == 200, (path, other.text)
        assert "value-empty" not in Page(other.text).ids
    clv = Page(marketer.get("/value/clv").text)
    assert "value-bgnbd" in clv.ids or "value-fit-note" in clv.ids
    member = everyone[3]
    mine = marketer.get(f"/value/members/{member.number}")
    assert mine.status_code == 200
    parts = Page(mine.text).texts("value-member-clv")
    score = db.get(MemberScore, (run.id, member.id))
    assert score is not None
    assert parts[-1][-1] == f"{score.clv_total:,.2f}"
    assert sum(D(r[-1].replace(",", "")) for r in parts[1:7]) == score.clv_total


def test_problems_are_named_beside_their_fields_and_nothing_is_stored(
    client: TestClient, db: Session, people: dict[str, User]
) -> None:
    marketer = as_(client, "marketer")
    token = csrf_from(marketer, "/value")
    bad = {
        **FORM,
        "as_of": "2999-01-01",
        "period_days": "7",
        "margin": "abc",
        "point_value": "-1",
        "top_share": "0",
        "growth_factor": "0.5",
        "horizon_months": "121",
        "yearly_discount_rate": "1e3",
        "csrf_token": token,
    }
    answer = marketer.post("/value/compute", data=bad)
    assert answer.status_code == 422
    page = Page(answer.text)
    assert page.invalid == {
        "as_of",
        "period_days",
        "margin",
        "point_value",
        "top_share",
        "growth_factor",
        "horizon_months",
        "yearly_discount_rate",
    }
    for name in page.invalid:
        assert f"f-{name}-error" in page.ids
    assert "The period is a whole number of days from 28 to 1095." in answer.text
    assert "The margin is a percentage from 0 to 100, such as 30." in answer.text
    assert "The as-of day must be between 1900-01-01 and today." in answer.text
    assert "Nothing was computed." in answer.text
    # Every input is kept as typed.
    assert page.fields["margin"] == "abc" and page.fields["period_days"] == "7"
    assert page.fields["yearly_service_cost"] == "1.50"
    assert db.scalar(select(func.count(ValueRun.id))) == 0

    one = marketer.post("/value/compute", data={**FORM, "margin": "30.12345", "csrf_token": token})
    assert one.status_code == 422 and Page(one.text).invalid == {"margin"}


def test_finance_reads_every_page_but_cannot_compute(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    (member,) = members_of(shop, 1)
    run = stored_run(db, date(2025, 12, 31), [(member, {"value": "10.00"})])
    finance = as_(client, "finance")
    for path in (*PAGES, f"/value/members/{member.number}"):
        answer = finance.get(path)
        assert answer.status_code == 200, path
    page = Page(finance.get("/value").text)
    assert "value-compute-form" not in page.ids
    assert "Marketers and admins compute customer value" in finance.get("/value").text
    token = csrf_from(finance, "/value")
    refused = finance.post("/value/compute", data={**FORM, "csrf_token": token})
    assert refused.status_code == 403
    assert db.scalar(select(func.count(ValueRun.id))) == 1
    assert db.scalar(select(func.max(ValueRun.id))) == run.id


def test_strangers_are_sent_to_sign_in(client: TestClient) -> None:
    for path in (*PAGES, "/value/members.csv"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")


# --- The pyramid's figures and movement ----------------------------------------------------------


def test_the_layer_table_reads_as_people_judge_numbers(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    a, b, c, d = members_of(shop, 4)
    stored_run(
        db,
        date(2025, 12, 31),
        [
            (a, {"value": "1200.00", "layer": "most_valuable"}),
            (b, {"value": "300.50", "layer": "low_contribution"}),
            (c, {"value": "0.00", "layer": "low_contribution"}),
            (d, {"value": "-100.25", "layer": "negative"}),
        ],
        margin=D("0.3"),
        yearly_service_cost=D("12"),
    )
    page = Page(as_(client, "admin").get("/value").text)
    rows = page.texts("value-layers")
    assert rows[1][2:] == ["1", "25.0%", "1,200.00", "80.0%", "1,200.00"]
    assert rows[2][2:] == ["0", "0.0%", "0.00", "0.0%", "—"]  # no members: no average
    assert page.tables["value-layers"][2][6]["title"] == "No members in this layer."
    assert rows[3][2:] == ["2", "50.0%", "300.50", "20.0%", "150.25"]
    assert rows[4][2:] == ["1", "25.0%", "-100.25", "-6.7%", "-100.25"]
    assert rows[5][0] == "All members"
    assert rows[5][2:] == ["4", "100.0%", "1,400.25", "—", "350.06"]
    text = " ".join(" ".join(r) for r in rows)
    assert "0.300000" not in text and "1200.0000" not in text


def _layers(db: Session, before: dict[Member, str], after: dict[Member, str]) -> tuple[int, int]:
    first = stored_run(db, date(2025, 6, 30), [(m, {"layer": v}) for m, v in before.items()])
    second = stored_run(db, date(2025, 12, 31), [(m, {"layer": v}) for m, v in after.items()])
    return first.id, second.id


def _matrix(page: Page, table: str) -> dict[tuple[str, str], int]:
    cells: dict[tuple[str, str], int] = {}
    for row in page.tables[table][1:-1]:
        for cell in row:
            if "data-count" in cell:
                cells[row[0]["text"], cell["data-key"]] = int(cell["data-count"])
    return cells


def test_movement_between_two_runs_counts_each_member_once(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    a, b, c, d, e, gone, new = members_of(shop, 7)
    first, second = _layers(
        db,
        {
            a: "most_valuable",
            b: "most_valuable",
            c: "low_contribution",
            d: "negative",
            e: "most_growable",
            gone: "low_contribution",
        },
        {
            a: "most_valuable",  # stayed
            b: "low_contribution",  # down
            c: "most_growable",  # up
            d: "negative",  # stayed
            e: "most_valuable",  # up
            new: "low_contribution",  # joined since
        },
    )
    marketer = as_(client, "marketer")
    page = Page(marketer.get("/value").text)
    cells = _matrix(page, "value-movement-matrix")
    assert sum(cells.values()) == 7
    assert cells["Most valuable", "most_valuable"] == 1
    assert cells["Most valuable", "low_contribution"] == 1
    assert cells["Low contribution", "most_growable"] == 1
    assert cells["Negative value", "negative"] == 1
    assert cells["Most growable", "most_valuable"] == 1
    assert cells["Low contribution", "gone"] == 1
    assert cells["Not in the earlier run", "low_contribution"] == 1
    summary = marketer.get("/value").text
    assert "2 members moved up the pyramid, 1 moved down and 2 stayed in their layer." in summary
    # Row totals are the earlier run's counts, column totals the later's.
    rows = page.texts("value-movement-matrix")
    assert rows[1][-1] == "2" and rows[-1][-1] == "7"
    # The select offers the earlier run; choosing the later one as the base is refused.
    assert Page(marketer.get(f"/value?run={first}").text).ids >= {"value-movement-note"}
    refused = marketer.get(f"/value?run={first}&compare={second}")
    assert refused.status_code == 422 and "Choose a run computed before this one" in refused.text
    chosen = marketer.get(f"/value?run={second}&compare={first}")
    assert chosen.status_code == 200


def test_rfm_migration_and_type_movement(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    a, b, c = members_of(shop, 3)
    stored_run(
        db,
        date(2025, 6, 30),
        [
            (a, {"rfm_segment": "Champions", "loyalty_type": "price", "r": 5, "f": 5, "m": 5}),
            (b, {"rfm_segment": "Lost", "loyalty_type": "none", "r": 1, "f": 1, "m": 1}),
        ],
    )
    stored_run(
        db,
        date(2025, 12, 31),
        [
            (a, {"rfm_segment": "At Risk", "loyalty_type": "price", "r": 2, "f": 5, "m": 5}),
            (b, {"rfm_segment": "Lost", "loyalty_type": "inertia", "r": 1, "f": 1, "m": 1}),
            (c, {"rfm_segment": "No Purchase"}),
        ],
    )
    reader = as_(client, "finance")
    rfm = Page(reader.get("/value/rfm").text)
    moved = _matrix(rfm, "value-migration-matrix")
    assert moved["Champions", "At Risk"] == 1 and moved["Lost", "Lost"] == 1
    assert moved["Not in the earlier run", "No Purchase"] == 1 and sum(moved.values()) == 3
    types = Page(reader.get("/value/types").text)
    kinds = _matrix(types, "value-type-movement-matrix")
    assert kinds["Price loyalty", "price"] == 1 and kinds["None / new", "inertia"] == 1
    assert kinds["Not in that run", "none"] == 1 and sum(kinds.values()) == 3
    rules = types.texts("value-types")
    assert rules[1][0] == "Super-value loyalty"
    assert "at least 80% of purchases at full price" in rules[1][1]
    assert rules[3][0] == "Price loyalty" and rules[3][2:4] == ["1", "33.3%"]


# --- RFM: the grid, segments, member lists and exports -------------------------------------------


def test_rfm_grid_segments_and_a_cell_listed_and_exported(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    crowd = members_of(shop, 55, "C")
    other = members_of(shop, 2, "O")
    scores = [
        (
            m,
            {
                "r": 5,
                "f": 4,
                "m": 3,
                "rfm_segment": "Loyal Customers" if i % 2 else "Champions",
                "value": f"{100 + i}.00",
                "monetary": "80.00",
                "purchases": 4,
                "last_purchase": date(2025, 12, 30),
                "p_alive": 0.875,
                "clv1": "10.00",
                "clv2": "20.50",
                "clv_total": "30.50",
            },
        )
        for i, m in enumerate(crowd)
    ]
    scores += [(m, {"r": 1, "f": 1, "m": 1, "rfm_segment": "Lost"}) for m in other]
    run = stored_run(db, date(2025, 12, 31), scores)
    reader = as_(client, "marketer")
    page = Page(reader.get("/value/rfm").text)
    grid = page.tables["value-rfm-cells"]
    r5 = next(row for row in grid if row[0]["text"] == "R 5")
    assert r5[4]["text"] == "55"
    assert r5[4]["data-heat"] == "1.000" and r5[1]["data-heat"] == "0.000"
    segments = {row[0]["text"]: row for row in page.tables["value-segments"][1:-1]}
    assert segments["Champions"][3]["text"] == "28" and segments["Lost"][3]["text"] == "2"
    assert segments["Champions"][2]["text"].startswith("555 554")
    assert segments["Lost"][4]["text"] == "3.5%"
    assert page.json["value-chart-data"]["members"][0] == 28

    listed = reader.get("/value/members?r=5&f=4")
    assert listed.status_code == 200
    first = Page(listed.text)
    rows = first.tables["value-member-rows"][1:]
    assert len(rows) == 50
    assert rows[0][0]["text"] == crowd[54].number  # highest value first
    assert "Members 1–50 of 55." in listed.text
    second = Page(reader.get("/value/members?r=5&f=4&page=2").text)
    assert len(second.tables["value-member-rows"][1:]) == 5
    assert "/value/members?r=5&f=4&page=2" in first.links

    exported = reader.get("/value/members.csv?r=5&f=4")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(table) == 55
    top = table[0]
    assert top["Member number"] == crowd[54].number and top["Value (CNY)"] == "154.00"
    assert top["RFM segment"] == "Champions" and (top["R"], top["F"], top["M"]) == ("5", "4", "3")
    assert top["P(alive)"] == "0.875000" and top["Last purchase"] == "2025-12-30"
    assert top["First purchase (CNY)"] == "10.00" and top["Lifetime value (CNY)"] == "30.50"
    assert top["Predicted value (CNY)"] == ""  # none: an empty cell, never 0

    segment = reader.get("/value/members.xlsx?segment=Lost")
    assert segment.status_code == 200
    book = load_workbook(io.BytesIO(segment.content))
    sheet = book.active
    assert sheet is not None
    assert sheet["A1"].value == "Customer value: members"
    assert sheet["A3"].value == "Selection: RFM segment: Lost"
    assert sheet.freeze_panes == "A8"
    header = [c.value for c in sheet[7]]
    assert header[0] == "Member number" and "Value (CNY)" in header
    numbers = sorted(str(sheet.cell(row, 1).value) for row in (8, 9))
    assert numbers == sorted(m.number for m in other)
    value_column = header.index("Value (CNY)") + 1
    assert sheet.cell(8, value_column).number_format == "#,##0.00"
    assert sheet.auto_filter.ref is not None and sheet.auto_filter.ref.startswith("A7:")
    del run


def test_bad_choices_are_named_and_the_defaults_used(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    (member,) = members_of(shop, 1)
    stored_run(db, date(2025, 12, 31), [(member, {"value": "5.00"})])
    reader = as_(client, "marketer")
    for path, message in (
        ("/value?run=99999", "There is no stored run '99999'; the latest one is shown."),
        ("/value/rfm?run=abc", "There is no stored run 'abc'"),
        ("/value/clv?show=median", "Show sums or averages; sums are shown."),
        ("/value/members?layer=top", "Choose a layer of the pyramid; 'top' is not one."),
        ("/value/members?r=6", "An RFM score is a whole number from 1 to 5"),
        ("/value/members?page=0", "is not a page number"),
        ("/value/types?compare=x", "Choose a run computed before this one"),
    ):
        answer = reader.get(path)
        assert answer.status_code == 422, path
        assert message in html.unescape(answer.text), path
        assert "value-problems" in Page(answer.text).ids
    refused = reader.get("/value/members.csv?segment=Nobody")
    assert refused.status_code == 422 and "Choose an RFM segment" in refused.text
    assert reader.get("/value/members.pdf").status_code == 422
    assert reader.get("/value/members/M99999999").status_code == 404


# --- Lifetime value ---------------------------------------------------------------------------


FIT = {
    "unit": "W",
    "model": {
        "unit": "W",
        "calibration_end": "2025-12-31",
        "holdout_end": None,
        "customers": 2357,
        "repeat_buyers": 946,
        "repeat_purchases": 2589,
        "bgnbd": {
            "params": {
                "r": {"value": 0.2425937, "se": 0.0125},
                "alpha": {"value": 4.41359, "se": 0.378},
                "a": {"value": 0.7929, "se": 0.1857},
                "b": {"value": 2.4259, "se": 0.7048},
            },
            "log_likelihood": -9582.4292,
            "converged": True,
            "message": "converged",
        },
        "gamma_gamma": {
            "params": {
                "p": {"value": 6.2488, "se": 0.5},
                "q": {"value": 3.7440, "se": 0.3},
                "gamma": {"value": 15.4439, "se": 2.1},
            },
            "log_likelihood": -4000.5,
            "customers": 946,
            "converged": True,
            "message": "converged",
        },
        "gamma_gamma_note": "",
        "spend_frequency_correlation": 0.1136,
        "holdout": None,
    },
    "holdout": {
        "calibration_end": "2025-10-01",
        "holdout_end": "2025-12-31",
        "holdout": {
            "duration": 13.0,
            "customers": 3,
            "actual_total": 2,
            "predicted_total": 1.5,
            "by_frequency": [
                {
                    "frequency": "0",
                    "customers": 2,
                    "actual": 0.5,
                    "predicted": 0.25,
                    "actual_total": 1,
                    "predicted_total": 0.5,
                },
                {
                    "frequency": "1",
                    "customers": 0,
                    "actual": None,
                    "predicted": None,
                    "actual_total": 0,
                    "predicted_total": 0.0,
                },
                {
                    "frequency": "7+",
                    "customers": 1,
                    "actual": 1.0,
                    "predicted": 1.0,
                    "actual_total": 1,
                    "predicted_total": 1.0,
                },
            ],
        },
    },
}


def test_lifetime_value_in_six_parts_the_fit_and_the_holdout(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    a, b, c = members_of(shop, 3)
    parts = {"clv1": "10.00", "clv2": "20.01", "clv3": "5.00", "clv4": "-1.00", "clv5": "0.00"}
    stored_run(
        db,
        date(2025, 12, 31),
        [
            (a, {**parts, "clv6": "0.33", "clv_total": "34.34", "layer": "most_valuable"}),
            (b, {**parts, "clv6": "-0.33", "clv_total": "33.68", "layer": "most_valuable"}),
            (c, {"clv1": "7.00", "clv_total": "7.00", "rfm_segment": "Lost"}),
        ],
        fit=FIT,
    )
    reader = as_(client, "finance")
    page = Page(reader.get("/value/clv").text)
    layers = page.texts("value-clv-layers")
    assert layers[0][2:] == ["CLV1", "CLV2", "CLV3", "CLV4", "CLV5", "CLV6", "Total"]
    header = page.tables["value-clv-layers"][0]
    assert [c["title"] for c in header[2:8]] == [
        "First purchase",
        "Repeat purchases and growing spend",
        "Cross-selling",
        "Lower cost to serve",
        "Referrals",
        "Lower price sensitivity",
    ]
    assert layers[1][:2] == ["Most valuable", "2"]
    assert layers[1][2:] == ["20.00", "40.02", "10.00", "-2.00", "0.00", "0.00", "68.02"]
    assert layers[-1][1:] == ["3", "27.00", "40.02", "10.00", "-2.00", "0.00", "0.00", "75.02"]
    # Every row's parts add up to its total, exactly.
    for row in page.tables["value-clv-layers"][1:]:
        sums = [D(c["data-sum"]) for c in row if "data-sum" in c]
        assert sum(sums[:-1]) == sums[-1]
    segments = page.texts("value-clv-segments")
    assert [r[0] for r in segments[1:]] == ["Lost", "No Purchase", "All members"]
    averages = Page(reader.get("/value/clv?show=average").text).texts("value-clv-layers")
    assert averages[1][2:] == ["10.00", "20.01", "5.00", "-1.00", "0.00", "0.00", "34.01"]

    bgnbd = page.texts("value-bgnbd")
    assert bgnbd[1] == ["r", "0.2426", "0.0125"] and bgnbd[2] == ["α", "4.4136", "0.3780"]
    assert bgnbd[-1] == ["Log-likelihood", "-9,582.43", ""]
    assert page.texts("value-gamma-gamma")[3] == ["γ", "15.4439", "2.1000"]
    holdout = page.texts("value-holdout-table")
    assert holdout[1] == ["0", "2", "0.500", "0.250", "1", "0.5"]
    assert holdout[2][2:4] == ["—", "—"]
    assert holdout[-1] == ["All members", "3", "", "", "2", "1.5"]
    chart = page.json["value-holdout-data"]
    assert chart["labels"] == ["0", "1", "7+"] and chart["actual"] == [0.5, None, 1.0]
    assert "The model refitted to the purchases up to 2025-10-01" in reader.get("/value/clv").text


def test_a_member_page_shows_their_scores_parts_and_history(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    member, late = members_of(shop, 2)
    stored_run(db, date(2025, 6, 30), [(member, {"layer": "low_contribution", "value": "3.00"})])
    scores = {
        "layer": "most_valuable",
        "value": "1234.50",
        "predicted_value": "99.99",
        "r": 5,
        "f": 4,
        "m": 5,
        "rfm_segment": "Champions",
        "loyalty_type": "super_value",
        "p_alive": 0.9321,
        "expected_purchases": 2.456,
        "clv1": "100.00",
        "clv2": "200.00",
        "clv3": "30.00",
        "clv4": "4.00",
        "clv5": "50.00",
        "clv6": "-6.00",
        "clv_total": "378.00",
    }
    second = stored_run(db, date(2025, 12, 31), [(member, scores)])
    reader = as_(client, "marketer")
    answer = reader.get(f"/value/members/{member.number.lower()}")
    assert answer.status_code == 200
    page = Page(answer.text)
    parts = page.texts("value-member-clv")
    assert [r[-1] for r in parts[1:]] == [
        "100.00",
        "200.00",
        "30.00",
        "4.00",
        "50.00",
        "-6.00",
        "378.00",
    ]
    assert "93.2%" in answer.text and "2.46" in answer.text and "Champions (5-4-5)" in answer.text
    assert f'href="/members/{member.number}"' in answer.text
    history = page.texts("value-member-runs")
    assert [r[0] for r in history[1:]] == [str(second.id), str(second.id - 1)]
    earlier = reader.get(f"/value/members/{member.number}?run={second.id - 1}")
    assert "3.00" in Page(earlier.text).texts("value-member-runs")[2][-2]
    unscored = reader.get(f"/value/members/{late.number}")
    assert unscored.status_code == 200 and "value-member-unscored" in Page(unscored.text).ids


def test_no_page_shows_float_noise(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    a, b, c = members_of(shop, 3)
    third = "33.33"
    stored_run(
        db,
        date(2025, 12, 31),
        [
            (m, {"value": third, "layer": layer, "clv_total": third})
            for m, layer in ((a, "most_valuable"), (b, "low_contribution"), (c, "negative"))
        ],
        margin=D("0.1"),
    )
    reader = as_(client, "admin")
    for path in ("/value", "/value/clv", "/value/types", "/value/rfm", "/value/members"):
        text = reader.get(path).text
        assert not re.search(r"\d\.\d{7,}", text), path
        assert "33.3%" in text or path != "/value"


def test_every_value_form_and_filter_survives_bad_values(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    """The outside review's bad values (as `test_form_fuzz` sends them, already encoded) in
    every field of the compute form and every filter of the pages: never a 5xx."""
    from tests.web.test_form_fuzz import BAD_VALUES

    a, b = members_of(shop, 2)
    stored_run(db, date(2025, 6, 30), [(a, {"layer": "most_valuable"})])
    stored_run(db, date(2025, 12, 31), [(a, {"layer": "negative"}), (b, {})])
    marketer = as_(client, "marketer")
    token = csrf_from(marketer, "/value")
    fields = {**FORM, "as_of": "2025-12-31"}
    for name in fields:
        for raw in BAD_VALUES:
            pairs = [f"{k}={v}" for k, v in fields.items() if k != name]
            body = "&".join([*pairs, f"csrf_token={token}", f"{name}={raw}"])
            answer = marketer.post(
                "/value/compute",
                content=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert answer.status_code < 500, (name, raw)
    filters = {
        "/value": ("run", "compare"),
        "/value/rfm": ("run", "compare"),
        "/value/clv": ("run", "show"),
        "/value/types": ("run", "compare"),
        "/value/members": ("run", "layer", "segment", "type", "r", "f", "m", "page"),
        "/value/members.csv": ("run", "layer", "r"),
        f"/value/members/{a.number}": ("run",),
    }
    for path, names in filters.items():
        for name in names:
            for raw in BAD_VALUES:
                answer = marketer.get(f"{path}?{name}={raw}")
                assert answer.status_code < 500, (path, name, raw)
    for raw in BAD_VALUES:
        assert marketer.get(f"/value/members/{raw}").status_code < 500, raw


def test_a_run_stored_without_parameters_still_shows(
    client: TestClient, db: Session, people: dict[str, User], shop: Shop
) -> None:
    (member,) = members_of(shop, 1)
    run = stored_run(db, date(2025, 12, 31), [(member, {"value": "1.00"})])
    run.params, run.fit, run.summary = {}, {}, {}
    db.commit()
    reader = as_(client, "finance")
    for path in (*PAGES, f"/value/members/{member.number}"):
        assert reader.get(path).status_code == 200, path
