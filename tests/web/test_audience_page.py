"""The audience page (issue 14, "Audience analysis"): every dimension renders, staff who read
reports can open it and members cannot, the value run's columns come and go with the run, the
response table, the empty states, bad filters, sorting and the CSV/XLSX exports.

The shop: four members in two regions, March 2026 purchases, a SPRING campaign that reached
two members (one bought), and optionally a value run.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.audience import DIMENSIONS
from analytics.models import ValueRun
from attribution.models import Touchpoint
from campaigns.models import Campaign, Channel
from core.accounts.models import User
from core.audit import Actor
from loyalty.models import Member
from tests.analytics.test_audience import score_member
from tests.campaigns.conftest import Staff, make_campaign
from tests.loyalty.conftest import Shop
from tests.web.conftest import member_sign_in, sign_in

D = Decimal
MARCH = "from=2026-03-01&to=2026-03-31"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def actor(user: User) -> Actor:
    return Actor("user", user.email, user_id=user.id, roles=frozenset(r.value for r in user.roles))


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {
        "marketer": make_user("marketer@example.com", ("marketer",), "Mia Marketer"),
        "finance": make_user("finance@example.com", ("finance",), "Fei Finance"),
        "admin": make_user("admin@example.com", ("admin",), "Ada Admin"),
    }


class World:
    def __init__(self, db: Session, team: Staff) -> None:
        self.db = db
        self.shop = Shop(db)
        joined = utc("2026-01-01 00:00")
        self.members = {
            "a": self.shop.join(
                "A",
                at=joined,
                region="North",
                birthday=date(1990, 5, 1),
                occupation="Teacher",
                industry="Education",
                city="Hangzhou",
                gender="female",
            ),
            "b": self.shop.join("B", at=joined, region="North", birthday=date(2001, 1, 1)),
            "c": self.shop.join("C", at=joined, region="South", occupation="Engineer"),
            "d": self.shop.join("D", at=joined),
        }
        self.shop.buy(self.members["a"], "120.00", at=utc("2026-03-05 04:00"))
        self.shop.buy(self.members["c"], "30.50", at=utc("2026-03-06 04:00"))
        self.spring = make_campaign(
            db, team, code="SPRING", starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31)
        )
        channel = db.scalars(select(Channel.id).where(Channel.code == "email")).one()
        for n, key in enumerate(("a", "b")):
            db.add(
                Touchpoint(
                    source="web",
                    external_id=f"T{n}",
                    member_id=self.members[key].id,
                    channel_id=channel,
                    campaign_id=self.spring.id,
                    kind="click",
                    occurred_at=utc("2026-03-02 04:00"),
                )
            )
        db.commit()

    def run(self) -> ValueRun:
        run = ValueRun(
            as_of=date(2026, 11, 30),
            period_days=365,
            currency="CNY",
            params={},
            fit={},
            summary={},
            members=3,
            actor_label="test",
        )
        self.db.add(run)
        self.db.flush()
        scores = (
            ("a", "80.00", "most_valuable", "Champions", "super_value"),
            ("b", "-5.00", "negative", "Lost", "price"),
            ("c", "12.00", "low_contribution", "Champions", "inertia"),
        )
        for key, value, layer, segment, kind in scores:
            score_member(self.db, run, self.members[key], value, layer, segment, kind)
        self.db.commit()
        return run


@pytest.fixture
def world(db: Session, people: dict[str, User]) -> World:
    team = Staff(*(actor(people[r]) for r in ("marketer", "finance", "admin")))
    return World(db, team)


class _Page(HTMLParser):
    """Tables by id (rows of cell texts), JSON blocks, elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.json: dict[str, Any] = {}
        self.ids: set[str] = set()
        self.links: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._json: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "script" and a.get("type") == "application/json":
            self._json, self._text = a["id"], []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "script" and self._json:
            self.json[self._json] = json.loads("".join(self._text))
            self._json = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._json is not None:
            self._text.append(data)


def page(client: TestClient, path: str, status: int = 200) -> _Page:
    response = client.get(path)
    assert response.status_code == status, response.text[:2000]
    parsed = _Page()
    parsed.feed(response.text)
    return parsed


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_every_dimension_renders(
    client: TestClient, world: World, people: dict[str, User], dimension: str
) -> None:
    sign_in(client, people["marketer"].email)
    found = page(client, f"/audience?dimension={dimension}&{MARCH}")
    table = found.tables["audience-table"]
    assert table[-1][:2] == ["Total", "4"]  # four members, whatever the grouping
    assert table[-2][0] == "Unknown"  # somebody always lacks a field here; last
    chart = found.json["audience-chart-data"]
    assert sum(chart["members"]) == 4 and len(chart["labels"]) == len(table) - 2
    assert any(link.startswith("/audience.csv") for link in found.links)


def test_the_region_profile_and_the_response(
    client: TestClient, world: World, people: dict[str, User]
) -> None:
    sign_in(client, people["marketer"].email)
    found = page(client, f"/audience?{MARCH}")
    table = found.tables["audience-table"]
    assert table[0][:7] == [
        "Region",
        "Members",
        "Share of members",
        "Purchasing members",
        "Revenue",
        "Share of revenue",
        "Revenue per member",
    ]
    assert table[1][:7] == ["North", "2", "50.00%", "1", "120.00", "79.73%", "60.00"]
    assert table[2][:7] == ["South", "1", "25.00%", "1", "30.50", "20.27%", "30.50"]
    assert table[3][:3] == ["Unknown", "1", "25.00%"]
    assert table[4][:5] == ["Total", "4", "100.00%", "2", "150.50"]
    # No value run yet: said, with the way to one; no value columns.
    assert "audience-no-run" in found.ids and "/value" in found.links
    assert "Value" not in table[0] and "audience-mix" not in found.tables
    # SPRING reached A (bought in its dates) and B (did not).
    response = found.tables["audience-response"]
    assert response[0] == ["Region", "Targeted", "Converted", "Conversion rate"]
    assert response[1] == ["North", "2", "1", "50.00%"]
    assert response[-1] == ["Total", "2", "1", "50.00%"]
    chart = found.json["audience-chart-data"]
    assert chart["response_labels"] == ["North"] and chart["conversion"] == [50.0]
    # One campaign chosen: the same here; the page offers it in the list.
    one = page(client, f"/audience?campaign={world.spring.id}&{MARCH}")
    assert one.tables["audience-response"][1] == ["North", "2", "1", "50.00%"]


def test_the_value_run_adds_value_layers_and_the_mix(
    client: TestClient, world: World, people: dict[str, User]
) -> None:
    run = world.run()
    sign_in(client, people["finance"].email)  # finance reads too
    found = page(client, f"/audience?{MARCH}")
    assert "audience-run" in found.ids and "audience-no-run" not in found.ids
    table = found.tables["audience-table"]
    header = table[0]
    assert header[7:10] == ["Scored members", "Value", "Average value"]
    assert header[10:] == ["Most valuable", "Most growable", "Low contribution", "Negative value"]
    assert table[1][7:] == ["2", "75.00", "37.50", "1", "0", "0", "1"]
    assert table[-1][7:10] == ["3", "87.00", "29.00"]
    mix = found.tables["audience-mix"]
    assert mix[1] == ["North", "Champions 1 · Lost 1", "Super-value loyalty 1 · Price loyalty 1"]
    assert mix[3] == ["Unknown", "—", "—"]
    assert f"#{run.id}" in client.get(f"/audience?{MARCH}").text


def test_headers_sort_and_unknown_stays_last(
    client: TestClient, world: World, people: dict[str, User]
) -> None:
    sign_in(client, people["admin"].email)
    response = client.get(f"/audience?{MARCH}&sort=revenue&dir=asc")
    assert response.status_code == 200
    parsed = _Page()
    parsed.feed(response.text)
    assert [r[0] for r in parsed.tables["audience-table"][1:-1]] == ["South", "North", "Unknown"]
    assert 'aria-sort="ascending"' in response.text
    # The header links to the other direction.
    assert "sort=revenue&amp;dir=desc" in response.text
    desc = page(client, f"/audience?{MARCH}&sort=revenue&dir=desc")
    assert [r[0] for r in desc.tables["audience-table"][1:-1]] == ["North", "South", "Unknown"]
    # A layer without a run to show it: the default order, no complaint.
    page(client, f"/audience?{MARCH}&sort=layer:negative")


def test_who_can_open_it(
    client: TestClient,
    world: World,
    people: dict[str, User],
    make_member: Callable[..., Member],
) -> None:
    anonymous = client.get("/audience")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/signin")
    make_member("mei@example.com")
    member_sign_in(client, "mei@example.com")
    for path in ("/audience", "/audience.csv"):
        refused = client.get(path)
        assert refused.status_code == 303, path  # a member session is no staff session
        assert refused.headers["location"].startswith("/signin")
    client.cookies.clear()
    for role in ("marketer", "finance", "admin"):
        client.cookies.clear()
        sign_in(client, people[role].email)
        opened = client.get("/audience")
        assert opened.status_code == 200, role
        assert 'href="/audience" aria-current="page"' in opened.text  # in the menu


def test_empty_states_say_what_to_do(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    sign_in(client, people["marketer"].email)
    found = page(client, "/audience")
    assert "audience-empty" in found.ids and "/members" in found.links
    assert "audience-table" not in found.tables
    Shop(db).join("Lone", at=utc("2026-01-01 00:00"))
    db.commit()
    found = page(client, "/audience?dimension=industry")
    assert "audience-all-unknown" in found.ids and "audience-no-revenue" in found.ids
    assert "audience-no-campaigns" in found.ids and "/campaigns" in found.links
    early = page(client, "/audience?from=2025-01-01&to=2025-01-31")
    assert "audience-empty" in early.ids  # nobody had joined by then


def test_a_campaign_that_reached_nobody_says_how_to_reach(
    client: TestClient, people: dict[str, User], db: Session
) -> None:
    Shop(db).join("Lone", at=utc("2026-01-01 00:00"), region="North")
    team = Staff(*(actor(people[r]) for r in ("marketer", "finance", "admin")))
    make_campaign(db, team, code="QUIET", starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31))
    db.commit()
    sign_in(client, people["marketer"].email)
    found = page(client, f"/audience?{MARCH}")
    assert "audience-no-targets" in found.ids and "/coupons" in found.links
    assert "QUIET" in client.get(f"/audience?{MARCH}").text


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("dimension=shoe_size", "is not a way to group members"),
        ("from=2026-13-01", "is not a date"),
        ("from=2026-04-01&to=2026-03-01", "ends before it starts"),
        ("campaign=abc", "campaign"),
        ("campaign=999999", "There is no campaign #999999"),
        ("sort=nope", "is not a column to sort by"),
        ("dir=sideways", "is not a sort direction"),
    ],
)
def test_bad_filters_are_named_and_ignored(
    client: TestClient, world: World, people: dict[str, User], query: str, words: str
) -> None:
    sign_in(client, people["marketer"].email)
    response = client.get(f"/audience?{query}")
    assert response.status_code == 422
    assert words in response.text and "it was ignored" in response.text
    assert 'id="audience-table"' in response.text  # the page is still drawn
    refused = client.get(f"/audience.csv?{query}")
    assert refused.status_code == 422


def test_csv_and_xlsx_hold_the_table_as_shown(
    client: TestClient, world: World, people: dict[str, User]
) -> None:
    world.run()
    sign_in(client, people["finance"].email)
    response = client.get(f"/audience.csv?{MARCH}&sort=revenue&dir=asc")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert re.search(
        r'filename="audience-by-region-\d{8}\.csv"', response.headers["content-disposition"]
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:7] == [
        "Region",
        "Members",
        "Share of members %",
        "Purchasing members",
        "Revenue",
        "Share of revenue %",
        "Revenue per member",
    ]
    assert "Layer: Most valuable" in rows[0] and "RFM: Champions" in rows[0]
    assert "Loyalty type: Super-value loyalty" in rows[0]
    assert [r[0] for r in rows[1:]] == ["South", "North", "unknown", "Total"]
    north = dict(zip(rows[0], rows[2], strict=True))
    assert north["Revenue"] == "120.00" and north["Value"] == "75.00"
    assert north["RFM: Champions"] == "1" and north["Layer: Negative value"] == "1"
    assert rows[-1][:5] == ["Total", "4", "100.00", "2", "150.50"]

    xlsx = client.get(f"/audience.xlsx?dimension=age_band&{MARCH}")
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = book.active
    assert sheet is not None
    assert sheet["A1"].value == "Audience by age band"
    assert "2026-03-01 to 2026-03-31" in str(sheet["A2"].value)
    assert "value run #" in str(sheet["A4"].value)
    header = [c.value for c in sheet[7]]
    assert header[:2] == ["Age band", "Members"]
    assert [sheet.cell(r, 1).value for r in range(8, 12)] == ["25-34", "35-44", "unknown", "Total"]
    assert sheet.cell(11, 2).value == 4
    assert client.get(f"/audience.pdf?{MARCH}").status_code in (400, 404, 422)


def test_the_page_uses_only_files_for_its_scripts(
    client: TestClient, world: World, people: dict[str, User]
) -> None:
    sign_in(client, people["marketer"].email)
    text = client.get(f"/audience?{MARCH}").text
    scripts = re.findall(r"<script([^>]*)>", text)
    assert all("src=" in s or 'type="application/json"' in s for s in scripts)
    assert "onchange" not in text and "hx-on" not in text
    assert '<script src="/static/audience.js" defer></script>' in text
    assert client.get("/static/audience.js").status_code == 200
    campaign = world.db.get(Campaign, world.spring.id)
    assert campaign is not None and f'<option value="{campaign.id}"' in text
