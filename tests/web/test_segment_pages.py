"""Segment pages: the builder saves, counts live as the form changes (an htmx fragment), keeps
every input with each problem beside its field; CSV and XLSX downloads; finance reads but
does not save; a campaign's target segment shows its audience; a coupon batch issued to a
segment reaches exactly its members."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import segments
from analytics.models import CampaignTarget, Segment
from analytics.pyramid import MOST_VALUABLE, NEGATIVE
from analytics.segments import Criteria
from campaigns.models import Campaign
from core.accounts.models import User
from core.audit import Actor, AuditEntry
from loyalty import coupons, members
from loyalty.models import Coupon, Member, Tier
from tests.analytics.test_segments import value_run
from tests.web.conftest import csrf_from, sign_in
from tests.web.test_campaign_pages import make as make_campaign
from tests.web.test_coupon_batch_pages import hidden

ACTOR = Actor.cli("test")
ZONE = ZoneInfo("Asia/Shanghai")


def join(db: Session, name: str, **profile: object) -> Member:
    tier = profile.pop("tier", None)
    member = members.create(
        db,
        ACTOR,
        members.Profile(name=name, email=f"{name.lower()}@example.com", **profile),  # type: ignore[arg-type]
        zone=ZONE,
    )
    if tier is not None:
        tier_id = db.scalar(select(Tier.id).where(Tier.code == tier))
        assert tier_id is not None
        member.tier_id = tier_id
    db.commit()
    return member


@pytest.fixture
def people(db: Session) -> dict[str, Member]:
    return {
        "ann": join(db, "Ann", region="East", city="Shanghai", marketing_consent=True),
        "bo": join(db, "Bo", region="East", city="Hangzhou", tier="gold"),
        "cy": join(db, "Cy", region="North", city="Beijing", occupation="Teacher"),
    }


def as_user(client: TestClient, make_user: Callable[..., User], role: str) -> str:
    make_user(f"{role}@example.com", (role,), role.title())
    sign_in(client, f"{role}@example.com")
    return csrf_from(client, "/segments")


def field_errors(page: str) -> dict[str, str]:
    return dict(re.findall(r'<small class="field-error" id="f-([\w]+)-error">(.*?)</small>', page))


def saved(db: Session, name: str) -> Segment:
    db.expire_all()
    segment = db.scalar(select(Segment).where(Segment.name == name))
    assert segment is not None
    return segment


def test_the_builder_saves_a_segment_listed_with_its_audience(
    client: TestClient, make_user: Callable[..., User], db: Session, people: dict[str, Member]
) -> None:
    token = as_user(client, make_user, "marketer")
    builder = client.get("/segments/new")
    assert builder.status_code == 200
    page = builder.text
    # Multi-selects offer the members' own values; checkboxes the fixed lists.
    regions = page.split('name="regions"')[1].split("</select>")[0]
    assert '<option value="East"' in regions and '<option value="North"' in regions
    assert 'name="age_bands" value="25-34"' in page and 'name="layers" value="negative"' in page
    assert 'name="tiers" value="gold"' in page
    assert 'name="statuses" value="active" checked' in page  # active members by default
    assert 'hx-post="/segments/match"' in page and 'hx-trigger="change"' in page
    assert 'data-count="3"' in page  # everyone active, counted at once

    done = client.post(
        "/segments",
        data={
            "csrf_token": token,
            "name": "East coast",
            "description": "Near the sea",
            "regions": "East",
            "statuses": "active",
            "consent": "any",
        },
    )
    assert done.status_code == 303, done.text
    segment = saved(db, "East coast")
    assert done.headers["location"] == f"/segments/{segment.id}"
    assert segment.criteria["regions"] == ["East"]
    shown = client.get(done.headers["location"])
    assert "2 members match now" in shown.text  # the flash
    assert 'data-count="2"' in shown.text and '<option value="East" selected' in shown.text
    listed = client.get("/segments").text
    row = listed.split(f'data-segment="{segment.id}"')[1].split("</tr>")[0]
    assert 'data-size="2"' in row and "East coast" in row

    # Changed and saved again: the same segment, counted anew.
    again = client.post(
        f"/segments/{segment.id}",
        data={
            "csrf_token": token,
            "name": "East coast",
            "regions": ["East", "North"],
            "tiers": "gold",
            "statuses": "active",
        },
    )
    assert again.status_code == 303
    assert saved(db, "East coast").criteria["tiers"] == ["gold"]
    assert db.scalar(select(func.count()).select_from(Segment)) == 1
    assert db.scalar(select(AuditEntry.id).where(AuditEntry.action == "segment.update"))


def test_the_live_count_is_a_fragment_that_follows_the_form(
    client: TestClient, make_user: Callable[..., User], db: Session, people: dict[str, Member]
) -> None:
    token = as_user(client, make_user, "marketer")
    htmx = {"HX-Request": "true", "HX-Target": "segment-match", "X-CSRF-Token": token}
    east = client.post(
        "/segments/match", data={"regions": "East", "statuses": "active"}, headers=htmx
    )
    assert east.status_code == 200
    assert "<html" not in east.text and "<form" not in east.text
    assert 'data-count="2"' in east.text
    assert people["ann"].number in east.text and people["cy"].number not in east.text
    north = client.post(
        "/segments/match", data={"cities": "Beijing", "statuses": "active"}, headers=htmx
    )
    assert 'data-count="1"' in north.text and people["cy"].number in north.text
    # A value that cannot be read: the fragment says why (htmx swaps only a 200).
    bad = client.post(
        "/segments/match", data={"value_min": "lots", "statuses": "active"}, headers=htmx
    )
    assert bad.status_code == 200 and 'id="match-problems"' in bad.text and "lots" in bad.text
    # Without htmx (the Count button): the whole builder, the form kept, the problem beside
    # its field.
    full = client.post(
        "/segments/match",
        data={"csrf_token": token, "value_min": "lots", "regions": "East", "name": "Draft"},
    )
    assert full.status_code == 422 and "value_min" in field_errors(full.text)
    assert 'value="lots"' in full.text and 'value="Draft"' in full.text
    assert '<option value="East" selected' in full.text


def test_every_problem_is_beside_its_field_and_every_input_kept(
    client: TestClient, make_user: Callable[..., User], db: Session, people: dict[str, Member]
) -> None:
    token = as_user(client, make_user, "marketer")
    bad = client.post(
        "/segments",
        data={
            "csrf_token": token,
            "name": " ",
            "description": "Kept",
            "regions": "East",
            "age_bands": "18-24",
            "value_min": "7,85",
            "clv_min": "10",
            "clv_max": "5",
            "joined_from": "2026-13-01",
            "p_alive_min": "2",
            "statuses": "active",
        },
    )
    assert bad.status_code == 422
    errors = field_errors(bad.text)
    assert set(errors) == {"name", "value_min", "clv_max", "joined_from", "p_alive_min"}, errors
    assert "Did you mean 7.85?" in errors["value_min"]
    assert 'value="7,85"' in bad.text and 'value="Kept"' in bad.text and 'value="2"' in bad.text
    assert 'name="age_bands" value="18-24" checked' in bad.text
    assert '<option value="East" selected' in bad.text
    assert bad.text.count(" autofocus") == 1
    assert db.scalar(select(func.count()).select_from(Segment)) == 0

    segments.save(db, ACTOR, "Taken", "", Criteria())
    db.commit()
    taken = client.post(
        "/segments", data={"csrf_token": token, "name": "taken", "statuses": "active"}
    )
    assert taken.status_code == 409
    assert "already named" in field_errors(taken.text)["name"]

    # Score conditions before any value run: what to do, at the top of the form.
    no_run = client.post(
        "/segments",
        data={"csrf_token": token, "name": "Best", "layers": MOST_VALUABLE, "statuses": "active"},
    )
    assert no_run.status_code == 422 and "retain value run" in no_run.text
    assert 'name="layers" value="most_valuable" checked' in no_run.text


def test_csv_and_xlsx_downloads(
    client: TestClient, make_user: Callable[..., User], db: Session, people: dict[str, Member]
) -> None:
    value_run(db, {people["ann"].id: {"layer": MOST_VALUABLE, "value": Decimal("88.8")}})
    segment = segments.save(db, ACTOR, "East", "", Criteria(regions=("East",))).segment
    db.commit()
    as_user(client, make_user, "finance")
    got = client.get(f"/segments/{segment.id}.csv")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert {r["Member number"] for r in table} == {people["ann"].number, people["bo"].number}
    ann = next(r for r in table if r["Name"] == "Ann")
    bo = next(r for r in table if r["Name"] == "Bo")
    assert ann["Email"] == "ann@example.com" and bo["Email"] == ""  # consent only
    assert ann["Pyramid layer"] == MOST_VALUABLE and ann["Value"] == "88.8000"

    book = client.get(f"/segments/{segment.id}.xlsx")
    assert book.status_code == 200 and "spreadsheetml" in book.headers["content-type"]
    sheet = load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    values = [r for r in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "Segment: East"
    numbers = {r[0] for r in values if r[0] in (people["ann"].number, people["bo"].number)}
    assert numbers == {people["ann"].number, people["bo"].number}
    assert client.get("/segments/99999.csv").status_code == 404


def test_finance_reads_and_counts_but_does_not_save(
    client: TestClient, make_user: Callable[..., User], db: Session, people: dict[str, Member]
) -> None:
    segment = segments.save(db, ACTOR, "North", "", Criteria(regions=("North",))).segment
    db.commit()
    token = as_user(client, make_user, "finance")
    listed = client.get("/segments")
    assert listed.status_code == 200 and "North" in listed.text
    assert 'href="/segments/new"' not in listed.text
    page = client.get(f"/segments/{segment.id}")
    assert page.status_code == 200 and 'data-count="1"' in page.text
    assert "Save segment" not in page.text and "Delete segment" not in page.text
    assert client.get("/segments/new").status_code == 403
    refused = client.post(
        f"/segments/{segment.id}", data={"csrf_token": token, "name": "Mine", "statuses": "active"}
    )
    assert refused.status_code == 403
    assert client.post("/segments", data={"csrf_token": token, "name": "X"}).status_code == 403
    assert (
        client.post(f"/segments/{segment.id}/delete", data={"csrf_token": token}).status_code == 403
    )
    counted = client.post(
        "/segments/match",
        data={"regions": "East", "statuses": "active"},
        headers={"HX-Request": "true", "HX-Target": "segment-match", "X-CSRF-Token": token},
    )
    assert counted.status_code == 200 and 'data-count="2"' in counted.text
    assert saved(db, "North").criteria["regions"] == ["North"]


def test_a_campaign_targets_a_saved_segment_with_its_audience(
    client: TestClient, make_user: Callable[..., User], db: Session, people: dict[str, Member]
) -> None:
    token = as_user(client, make_user, "marketer")
    owner = db.scalar(select(User).where(User.email == "marketer@example.com"))
    assert owner is not None
    campaign = make_campaign(db, owner)
    segment = segments.save(db, ACTOR, "East", "", Criteria(regions=("East",))).segment
    db.commit()
    page = client.get(f"/campaigns/{campaign.id}").text
    box = page.split('id="target-segment"')[1].split("</article>")[0]
    assert f'<option value="{segment.id}"' in box and "No saved segment is targeted yet" in box

    done = client.post(
        f"/segments/target/{campaign.id}", data={"csrf_token": token, "segment_id": str(segment.id)}
    )
    assert done.status_code == 303 and done.headers["location"].startswith(
        f"/campaigns/{campaign.id}"
    )
    page = client.get(f"/campaigns/{campaign.id}").text
    box = page.split('id="target-segment"')[1].split("</article>")[0]
    assert "2 members" in box and f'href="/segments/{segment.id}"' in box
    assert f'<option value="{segment.id}" selected' in box
    db.expire_all()
    target = db.get(CampaignTarget, campaign.id)
    assert target is not None and target.audience_size == 2

    # While targeted, the segment cannot be deleted; the page says by whom.
    refused = client.post(f"/segments/{segment.id}/delete", data={"csrf_token": token})
    assert refused.status_code == 303
    shown = client.get(refused.headers["location"]).text
    assert campaign.code in shown and "choose another target" in shown
    assert db.get(Segment, segment.id) is not None

    cleared = client.post(
        f"/segments/target/{campaign.id}", data={"csrf_token": token, "segment_id": ""}
    )
    assert cleared.status_code == 303
    db.expire_all()
    assert db.get(CampaignTarget, campaign.id) is None
    gone = client.post(f"/segments/{segment.id}/delete", data={"csrf_token": token})
    assert gone.status_code == 303 and gone.headers["location"] == "/segments"
    db.expire_all()
    assert db.get(Segment, segment.id) is None
    assert db.get(Campaign, campaign.id) is not None


def test_a_coupon_batch_issued_to_a_segment_reaches_exactly_its_members(
    client: TestClient, make_user: Callable[..., User], db: Session, people: dict[str, Member]
) -> None:
    token = as_user(client, make_user, "marketer")
    value_run(
        db,
        {
            people["ann"].id: {"layer": NEGATIVE},
            people["bo"].id: {"layer": MOST_VALUABLE},
            people["cy"].id: {"layer": MOST_VALUABLE},
        },
    )
    segment = segments.save(db, ACTOR, "Best", "", Criteria(layers=(MOST_VALUABLE,))).segment
    batch = coupons.create_batch(
        db, ACTOR, name="Ten off", kind="fixed", value=Decimal(10), currency="CNY", valid_days=30
    )
    db.commit()
    page = client.get(f"/loyalty/coupons/{batch.id}").text
    assert f'<option value="{segment.id}">Best</option>' in page

    asked = client.post(
        f"/loyalty/coupons/{batch.id}/issue",
        data={"csrf_token": token, "tiers": "", "segment_id": str(segment.id)},
    )
    assert asked.status_code == 200
    assert 'id="issue-segment"' in asked.text and "Best" in asked.text
    confirm = hidden(asked.text)
    assert confirm["confirm"] == ["2"] and confirm["segment_id"] == [str(segment.id)]
    done = client.post(f"/loyalty/coupons/{batch.id}/issue", data=confirm)
    assert done.status_code == 303
    db.expire_all()
    holders = set(db.scalars(select(Coupon.member_id).where(Coupon.batch_id == batch.id)))
    assert holders == {people["bo"].id, people["cy"].id}
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "coupon_batch.issue"))
    assert entry is not None and entry.after is not None
    assert entry.after["segment"] == f"Best (#{segment.id})"

    # A segment and the issue's own filters together; an unknown segment beside its field.
    north = client.post(
        f"/loyalty/coupons/{batch.id}/issue",
        data={"csrf_token": token, "region": "North", "segment_id": str(segment.id)},
    )
    assert hidden(north.text)["confirm"] == ["1"]
    unknown = client.post(
        f"/loyalty/coupons/{batch.id}/issue", data={"csrf_token": token, "segment_id": "99999"}
    )
    assert unknown.status_code == 422 and "segment_id" in field_errors(unknown.text)
