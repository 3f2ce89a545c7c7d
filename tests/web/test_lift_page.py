"""The lift page: each empty state says what to do; a campaign with a holdout shows both
groups, the figures, the verdict and the chart's data; the sample-size calculator answers in
place (htmx) or as a page, each bad value beside its field; the target box takes a holdout
share and refuses one after the start; the audience export leaves held-out members out."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import segments
from analytics.models import Segment
from analytics.segments import Criteria
from campaigns import planning
from campaigns.models import Campaign
from core.accounts.models import User
from core.audit import Actor
from loyalty import audiences, members, purchases
from loyalty.models import Member
from tests.campaigns.conftest import file_receipt
from tests.web.conftest import csrf_from, sign_in

ACTOR = Actor.cli("test")
ZONE = ZoneInfo("Asia/Shanghai")
WINDOW_START = date(2026, 3, 1)


def as_user(client: TestClient, make_user: Callable[..., User], role: str) -> User:
    user = make_user(f"{role}@example.com", (role,), role.title())
    sign_in(client, f"{role}@example.com")
    return user


def campaign(db: Session, owner: User, code: str, starts: date, days: int = 30) -> Campaign:
    found = planning.create(
        db,
        ACTOR,
        code=code,
        name=f"Campaign {code}",
        channel="sms",
        owner_id=owner.id,
        starts_on=starts,
        ends_on=starts + timedelta(days=days),
        budget=Decimal(5000),
        currency="CNY",
    )
    db.commit()
    return found


def east(db: Session, count: int) -> list[Member]:
    people = [
        members.create(
            db,
            ACTOR,
            members.Profile(name=f"East {n}", phone=f"1370000{n:04d}", region="East"),
            zone=ZONE,
            at=datetime(2026, 1, 5, tzinfo=UTC),
        )
        for n in range(count)
    ]
    db.commit()
    return people


def target(db: Session, found: Campaign, share: Decimal, before: date) -> segments.Target:
    segment = db.scalar(select(Segment).where(Segment.name == "East"))
    if segment is None:
        segment = segments.save(db, ACTOR, "East", "", Criteria(regions=("East",))).segment
    set_ = segments.set_campaign_target(
        db, ACTOR, found.id, segment.id, today=before, zone=ZONE, holdout_share=share
    )
    db.commit()
    assert set_ is not None
    return set_


def buy(db: Session, member: Member, day: int, amount: str, ext: str) -> None:
    purchases.record(
        db,
        ACTOR,
        purchases.PurchaseInput(
            source="pos",
            external_id=ext,
            occurred_at=datetime(2026, 3, 1, 4, tzinfo=UTC) + timedelta(days=day),
            amount=Decimal(amount),
            currency="CNY",
            member_id=member.id,
        ),
        base_currency="CNY",
        zone=ZONE,
    )


@pytest.fixture
def measured(db: Session, make_user: Callable[..., User]) -> tuple[Campaign, list[Member]]:
    owner = make_user("owner@example.com", ("marketer",), "Owner")
    people = east(db, 40)
    found = campaign(db, owner, "LIFT26", WINDOW_START)
    target(db, found, Decimal("0.5"), date(2026, 2, 20))
    held = set(db.scalars(audiences.held_out_ids(db, found.id)))
    for n, member in enumerate(people):
        if n % 3 == 0:  # a third of each group buys
            buy(db, member, n % 20, "150.00" if member.id in held else "200.00", f"P{n}")
    db.commit()
    return found, people


def chart(page: str) -> dict[str, object]:
    match = re.search(
        r'<script type="application/json" id="lift-chart-data">(.*?)</script>', page, re.S
    )
    assert match, "no chart data"
    data: dict[str, object] = json.loads(match.group(1))
    return data


def test_a_measured_campaign_shows_both_groups_figures_verdict_and_chart(
    client: TestClient,
    make_user: Callable[..., User],
    measured: tuple[Campaign, list[Member]],
    db: Session,
) -> None:
    found, people = measured
    as_user(client, make_user, "finance")  # finance reads
    page = client.get(f"/campaigns/{found.id}/lift")
    assert page.status_code == 200, page.text
    text = page.text
    arms = audiences.arms(db, found.id)
    assert arms.members == len(people)
    held = set(db.scalars(audiences.held_out_ids(db, found.id)))
    bought = [m for n, m in enumerate(people) if n % 3 == 0 and m.id not in held]
    row = text.split('id="lift-arm-treated"')[1].split("</tr>")[0]
    cells = re.findall(r'<td class="num">(.*?)</td>', row)
    assert cells[:2] == [f"{arms.treated:,}", f"{len(bought):,}"]
    assert cells[3] == f"{200 * len(bought):,}.00"
    assert 'id="lift-arm-holdout"' in text and 'id="lift-verdict"' in text
    assert "Not enough evidence yet" in text or "significant" in text
    for figure in ("lift", "incremental-revenue", "incremental-roas", "z-test", "p-value"):
        assert f'id="lift-{figure}"' in text
    # No receipt: no cost, so ROAS and ROI are blank with the reason beside them.
    assert "No cost recorded, so this ratio cannot be computed." in text
    data = chart(text)
    assert data["labels"] == ["Got the campaign", "Held out"]
    assert data["rpm"] and data["interval"] and len(data["interval"]) == 2  # type: ignore[arg-type]
    assert '<script src="/static/lift.js" defer></script>' in text
    # The calculator starts from the holdout's own conversion rate and share.
    form = text.split('id="sample-size-form"')[1].split("</form>")[0]
    assert 'name="share" id="f-share"' in form and 'value="50"' in form
    found_lift = text.split('id="f-baseline"')[1].split(">")[0]
    assert 'value="' in found_lift and 'value="10"' not in found_lift


def test_the_calculator_answers_in_place_and_names_bad_values(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    owner = as_user(client, make_user, "marketer")
    found = campaign(db, owner, "CALC26", date(2027, 6, 1))
    base = f"/campaigns/{found.id}/lift"
    asked = {"baseline": "10", "lift": "50", "power": "80", "alpha": "5", "share": "50"}
    page = client.get(base, params=asked)
    assert page.status_code == 200
    answer = page.text.split('id="sample-size-answer"')[1].split("</p>")[0]
    assert "686 held-out members and 686 who get the campaign, 1,372 in all" in answer
    fragment = client.get(
        base, params=asked, headers={"HX-Request": "true", "HX-Target": "sample-size"}
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'id="sample-size-answer"' in fragment.text
    assert 'id="lift-empty"' not in fragment.text

    bad = client.get(base, params=asked | {"baseline": "abc", "power": "40", "alpha": "5.123"})
    assert bad.status_code == 422
    errors = dict(re.findall(r'id="f-(\w+)-error">(.*?)</small>', bad.text))
    assert set(errors) == {"baseline", "power", "alpha"}
    assert "must be a number" in errors["baseline"]
    assert 'value="abc"' in bad.text  # what was typed is kept
    too_much = client.get(base, params=asked | {"baseline": "80", "lift": "50"})
    assert too_much.status_code == 422 and "more than everybody" in too_much.text


def test_each_empty_state_says_what_to_do(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    owner = as_user(client, make_user, "admin")
    east(db, 6)
    none = campaign(db, owner, "NONE26", date(2027, 1, 10))
    page = client.get(f"/campaigns/{none.id}/lift").text
    assert 'id="lift-empty"' in page and "targets no saved segment" in page

    plain = campaign(db, owner, "PLAIN26", date(2027, 1, 10))
    target(db, plain, Decimal(0), date(2026, 12, 1))
    page = client.get(f"/campaigns/{plain.id}/lift").text
    assert "holds nobody out" in page and "has not started yet" in page

    future = campaign(db, owner, "SOON26", date(2027, 1, 10))
    held = target(db, future, Decimal("0.5"), date(2026, 12, 1))
    page = client.get(f"/campaigns/{future.id}/lift").text
    assert 'id="lift-not-started"' in page and "2027-01-10" in page
    sizes = page.split('id="lift-arms-sizes"')[1].split("</dl>")[0]
    assert f">{held.treated:,}<" in sizes and f">{held.held_out:,}<" in sizes

    assert client.get("/campaigns/999999/lift").status_code == 404


def test_pages_are_for_staff_readers(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    owner = make_user("owner@example.com", ("marketer",), "Owner")
    found = campaign(db, owner, "READ26", date(2027, 1, 10))
    signed_out = client.get(f"/campaigns/{found.id}/lift")
    assert signed_out.status_code == 303 and "/signin" in signed_out.headers["location"]


def test_the_target_box_takes_a_holdout_and_refuses_it_after_the_start(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    owner = as_user(client, make_user, "marketer")
    people = east(db, 20)
    segment = segments.save(db, ACTOR, "East", "", Criteria(regions=("East",))).segment
    soon = campaign(db, owner, "SOON26", date(2027, 1, 10))
    token = csrf_from(client, f"/campaigns/{soon.id}")
    box = client.get(f"/campaigns/{soon.id}").text.split('id="target-segment"')[1]
    assert 'name="holdout_pct"' in box and f'href="/campaigns/{soon.id}/lift"' in box

    done = client.post(
        f"/segments/target/{soon.id}",
        data={"csrf_token": token, "segment_id": str(segment.id), "holdout_pct": "25"},
    )
    assert done.status_code == 303
    shown = client.get(done.headers["location"]).text
    arms = audiences.arms(db, soon.id)
    assert arms.members == len(people) and arms.held_out > 0
    assert f"{arms.held_out:,} held out (25%)" in shown
    box = shown.split('id="target-segment"')[1].split("</article>")[0]
    assert 'id="target-holdout"' in box and 'value="25"' in box

    refused = client.post(
        f"/segments/target/{soon.id}",
        data={"csrf_token": token, "segment_id": str(segment.id), "holdout_pct": "60"},
    )
    assert refused.status_code in (303, 422)
    assert audiences.arms(db, soon.id) == arms

    started = campaign(db, owner, "LIVE26", date(2026, 3, 1))
    late = client.post(
        f"/segments/target/{started.id}",
        data={"csrf_token": token, "segment_id": str(segment.id), "holdout_pct": "10"},
    )
    assert late.status_code == 303
    assert "can no longer be added" in client.get(late.headers["location"]).text
    assert audiences.arms(db, started.id).members == 0


def test_the_audience_export_leaves_held_out_members_out(
    client: TestClient,
    make_user: Callable[..., User],
    measured: tuple[Campaign, list[Member]],
    db: Session,
) -> None:
    found, people = measured
    as_user(client, make_user, "marketer")
    response = client.get(f"/campaigns/{found.id}/audience.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    held = set(db.scalars(audiences.held_out_ids(db, found.id)))
    numbers = {m.number for m in people if m.id not in held}
    assert {r["Member number"] for r in rows} == numbers
    owner = db.get(User, found.owner_id)
    assert owner is not None
    no_target = campaign(db, owner, "BARE26", date(2027, 1, 1))
    assert client.get(f"/campaigns/{no_target.id}/audience.csv").status_code == 404


def test_a_cost_that_cannot_be_booked_is_explained(
    client: TestClient,
    make_user: Callable[..., User],
    measured: tuple[Campaign, list[Member]],
    db: Session,
) -> None:
    found, _ = measured
    file_receipt(db, found.id, "100.00", currency="USD", day=date(2026, 3, 3))
    db.commit()
    as_user(client, make_user, "marketer")
    page = client.get(f"/campaigns/{found.id}/lift")
    assert page.status_code == 409
    problem = page.text.split('id="lift-problem"')[1].split("</section>")[0]
    assert "USD" in problem and 'href="/finance/rates"' in problem
    assert 'id="lift-arms-sizes"' in page.text  # the groups are still shown
