"""Saved segments: every condition selects the right members on both databases (age bands at
their edges, days joined in the local zone, scores from the latest value run only), saving
and its refusals, deletion while targeted, campaign targets, exports and a coupon issue
restricted to a segment."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import segments
from analytics.age_bands import _years_before
from analytics.loyalty_types import INERTIA, NONE, PRICE, SUPER_VALUE
from analytics.models import CampaignTarget, MemberScore, Segment, ValueRun
from analytics.pyramid import LOW_CONTRIBUTION, MOST_GROWABLE, MOST_VALUABLE, NEGATIVE
from analytics.rfm import AT_RISK, CHAMPIONS, LOST, NO_PURCHASE
from analytics.segments import Criteria
from core.accounts import users
from core.audit import Actor, AuditEntry
from core.errors import Conflict, Invalid, NotFound, PermissionDenied, ValidationFailed
from loyalty import coupons, members
from loyalty.models import Coupon, Member, MemberStatus, Tier
from tests.campaigns.conftest import Staff, make_campaign

ZONE = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 12, 1)
ACTOR = Actor.cli("test")
MARKETER = Actor("user", "mia@example.com", roles=frozenset({"marketer"}))
FINANCE = Actor("user", "fin@example.com", roles=frozenset({"finance"}))


def join(db: Session, name: str, **profile: Any) -> Member:
    at = profile.pop("at", None)
    status = profile.pop("status", None)
    tier = profile.pop("tier", None)
    email = f"{name.lower().replace(' ', '.')}@example.com"
    member = members.create(
        db, ACTOR, members.Profile(name=name, email=email, **profile), zone=ZONE, at=at
    )
    if status is not None:
        member.status = status
    if tier is not None:
        tier_id = db.scalar(select(Tier.id).where(Tier.code == tier))
        assert tier_id is not None
        member.tier_id = tier_id
    db.flush()
    return member


def value_run(db: Session, scores: dict[int, dict[str, Any]]) -> ValueRun:
    run = ValueRun(
        as_of=TODAY,
        period_days=365,
        currency="CNY",
        params={},
        fit={},
        summary={},
        members=len(scores),
        actor_label="test",
    )
    db.add(run)
    db.flush()
    for member_id, given in scores.items():
        score: dict[str, Any] = {
            "net_purchases": Decimal(0),
            "cost_to_serve": Decimal(0),
            "value": Decimal(0),
            "layer": LOW_CONTRIBUTION,
            "purchases": 0,
            "monetary": Decimal(0),
            "rfm_segment": NO_PURCHASE,
            "loyalty_type": NONE,
            **{f"clv{i}": Decimal(0) for i in range(1, 7)},
            "clv_total": Decimal(0),
        }
        db.add(MemberScore(run_id=run.id, member_id=member_id, **(score | given)))
    db.flush()
    return run


def ids(db: Session, criteria: Criteria) -> set[int]:
    found = set(db.scalars(segments.member_ids(db, criteria, today=TODAY, zone=ZONE)))
    # One rule, three readings: the count and the rows agree with the ids.
    assert segments.count(db, criteria, today=TODAY, zone=ZONE) == len(found)
    listed = list(segments.rows(db, criteria, today=TODAY, zone=ZONE))
    assert {r.number for r in listed} == {
        n for (n,) in db.execute(select(Member.number).where(Member.id.in_(found or {0})))
    }
    return found


@pytest.fixture
def staff(db: Session) -> Staff:
    actors = {}
    for role in ("marketer", "finance", "admin"):
        user = users.create(
            db,
            Actor.system(),
            email=f"{role}@example.com",
            name=role.title(),
            roles=[role],
            password="long-password-1",
        )
        actors[role] = Actor("user", user.email, user_id=user.id, roles=frozenset({role}))
    return Staff(**actors)


@pytest.fixture
def people(db: Session) -> dict[str, Member]:
    return {
        "ann": join(
            db,
            "Ann",
            region="East",
            city="Shanghai",
            gender="female",
            occupation="Engineer",
            industry="Tech",
            marketing_consent=True,
        ),
        "bo": join(db, "Bo", region="East", city="Hangzhou", gender="male", tier="gold"),
        "cy": join(db, "Cy", region="North", city="Beijing", occupation="Teacher"),
        "di": join(
            db, "Di", region="North", city="Beijing", industry="Tech", status=MemberStatus.SUSPENDED
        ),
    }


def test_each_member_field_selects_its_members(db: Session, people: dict[str, Member]) -> None:
    ann, bo, cy, di = (people[k].id for k in ("ann", "bo", "cy", "di"))
    everyone = ids(db, Criteria(statuses=()))
    assert {ann, bo, cy, di} <= everyone
    mine = {ann, bo, cy, di}

    def only(**conditions: Any) -> set[int]:
        return ids(db, Criteria(**conditions)) & mine

    assert only() == {ann, bo, cy}  # active by default
    assert only(statuses=("suspended",)) == {di}
    assert only(statuses=()) == mine
    assert only(regions=("East",)) == {ann, bo}
    assert only(regions=("East", "North")) == {ann, bo, cy}
    assert only(cities=("Beijing",), statuses=()) == {cy, di}
    assert only(genders=("female",)) == {ann}
    assert only(genders=("male", "unknown")) == {bo, cy}
    assert only(occupations=("Teacher", "Engineer")) == {ann, cy}
    assert only(industries=("Tech",), statuses=("active", "suspended")) == {ann, di}
    assert only(tiers=("gold",)) == {bo}
    assert only(tiers=("member",)) == {ann, cy}
    assert only(consent="yes") == {ann}
    assert only(consent="no") == {bo, cy}
    # Conditions on different fields hold together.
    assert only(regions=("East",), genders=("male",)) == {bo}
    assert only(regions=("North",), occupations=("Engineer",)) == set()


def test_age_bands_at_their_edges(db: Session) -> None:
    def born(years: int, days_later: int = 0) -> date:
        day = _years_before(TODAY, years)
        return day.fromordinal(day.toordinal() + days_later)

    m = {
        "18 today": join(db, "Eighteen", birthday=born(18)),
        "17 until tomorrow": join(db, "Seventeen", birthday=born(18, 1)),
        "25 today": join(db, "Twentyfive", birthday=born(25)),
        "24 until tomorrow": join(db, "Twentyfour", birthday=born(25, 1)),
        "65 today": join(db, "Sixtyfive", birthday=born(65)),
        "64 until tomorrow": join(db, "Sixtyfour", birthday=born(65, 1)),
        "no birthday": join(db, "Unknown"),
    }
    mine = {member.id for member in m.values()}

    def band(*codes: str) -> set[str]:
        found = ids(db, Criteria(age_bands=codes)) & mine
        return {k for k, member in m.items() if member.id in found}

    assert band("under-18") == {"17 until tomorrow"}
    assert band("18-24") == {"18 today", "24 until tomorrow"}
    assert band("25-34") == {"25 today"}
    assert band("55-64") == {"64 until tomorrow"}
    assert band("65-plus") == {"65 today"}
    assert band("unknown") == {"no birthday"}
    assert band("under-18", "unknown") == {"17 until tomorrow", "no birthday"}
    # Rows say the same band the filter used.
    rows = {r.name: r.age_band for r in segments.rows(db, Criteria(), today=TODAY, zone=ZONE)}
    assert rows["Eighteen"] == "18-24" and rows["Seventeen"] == "under-18"
    assert rows["Unknown"] == "unknown"


def test_days_joined_are_local_days_inclusive(db: Session) -> None:
    # 2026-03-31 23:59 and 2026-04-01 00:30 in Shanghai (UTC+8).
    late = join(db, "Late", at=datetime(2026, 3, 31, 15, 59, tzinfo=UTC))
    early = join(db, "Early", at=datetime(2026, 3, 31, 16, 30, tzinfo=UTC))
    mine = {late.id, early.id}

    def joined(start: date | None, end: date | None) -> set[int]:
        return ids(db, Criteria(joined_from=start, joined_to=end)) & mine

    assert joined(date(2026, 4, 1), None) == {early.id}
    assert joined(None, date(2026, 3, 31)) == {late.id}
    assert joined(date(2026, 3, 31), date(2026, 4, 1)) == mine
    assert joined(date(2026, 4, 2), None) == set()


def test_score_conditions_read_the_latest_run_only(db: Session, people: dict[str, Member]) -> None:
    ann, bo, cy = people["ann"].id, people["bo"].id, people["cy"].id
    with pytest.raises(ValidationFailed) as refused:
        segments.member_ids(db, Criteria(layers=(MOST_VALUABLE,)), today=TODAY, zone=ZONE)
    assert refused.value.code == "segment.no_value_run"
    assert "retain value run" in refused.value.message
    # The old run says the opposite of the new one: only the new one counts.
    value_run(
        db,
        {
            ann: {"layer": NEGATIVE, "rfm_segment": LOST, "value": Decimal(-5)},
            bo: {"layer": MOST_VALUABLE, "rfm_segment": CHAMPIONS, "value": Decimal(900)},
        },
    )
    value_run(
        db,
        {
            ann: {
                "layer": MOST_VALUABLE,
                "rfm_segment": CHAMPIONS,
                "loyalty_type": SUPER_VALUE,
                "value": Decimal("1200.50"),
                "clv_total": Decimal("3000"),
                "p_alive": 0.9,
            },
            bo: {
                "layer": NEGATIVE,
                "rfm_segment": AT_RISK,
                "loyalty_type": PRICE,
                "value": Decimal("-20.25"),
                "clv_total": Decimal("-3"),
                "p_alive": 0.2,
            },
            # cy has no score in the latest run (joined since, say).
        },
    )
    mine = {ann, bo, cy}

    def only(**conditions: Any) -> set[int]:
        return ids(db, Criteria(**conditions)) & mine

    assert only() == mine  # no score condition: no run needed, nobody left out
    assert only(layers=(MOST_VALUABLE,)) == {ann}
    assert only(layers=(NEGATIVE, MOST_GROWABLE)) == {bo}
    assert only(rfm_segments=(CHAMPIONS,)) == {ann}
    assert only(rfm_segments=(LOST,)) == set()  # the old run's word
    assert only(loyalty_types=(PRICE, INERTIA)) == {bo}
    assert only(value_min=Decimal("1200.50")) == {ann}  # bounds inclusive
    assert only(value_min=Decimal("1200.51")) == set()
    assert only(value_max=Decimal("-20.25")) == {bo}
    assert only(value_min=Decimal(-100), value_max=Decimal(100)) == {bo}
    assert only(clv_min=Decimal(0)) == {ann}
    assert only(clv_max=Decimal(0)) == {bo}
    assert only(p_alive_min=Decimal("0.5")) == {ann}
    assert only(p_alive_min=Decimal("0.2")) == {ann, bo}
    assert only(p_alive_min=Decimal(0)) == {ann, bo}  # a score is needed
    assert only(layers=(MOST_VALUABLE,), regions=("North",)) == set()
    # Rows carry the latest run's scores; a member without one has none.
    shown = {r.name: r for r in segments.rows(db, Criteria(), today=TODAY, zone=ZONE)}
    assert shown["Ann"].layer == MOST_VALUABLE and shown["Ann"].value == Decimal("1200.50")
    assert shown["Cy"].layer is None and shown["Cy"].clv is None


def test_parse_names_every_problem_and_round_trips() -> None:
    with pytest.raises(Invalid) as refused:
        segments.parse(
            {
                "regions": ["x" * 65],
                "cities": [f"City {i}" for i in range(51)],
                "age_bands": ["30-40"],
                "layers": ["top"],
                "consent": "maybe",
                "joined_from": "2026-04-01",
                "joined_to": "2026-03-01",
                "value_min": "100",
                "value_max": "7,85",
                "clv_min": "10",
                "clv_max": "5",
                "p_alive_min": "1.5",
                "colour": ["red"],
            }
        )
    problems = refused.value.fields
    assert set(problems) == {
        "criteria",
        "regions",
        "cities",
        "age_bands",
        "layers",
        "consent",
        "joined_to",
        "value_max",
        "clv_max",
        "p_alive_min",
    }
    assert "at most 50 cities" in problems["cities"]
    assert "Did you mean 7.85?" in problems["value_max"]
    assert "colour" in problems["criteria"]
    criteria = segments.parse(
        {
            "regions": [" East ", "Central", "East", ""],
            "tiers": ["Gold"],
            "layers": [NEGATIVE, MOST_VALUABLE],
            "value_min": "-1,000.50",
            "p_alive_min": 0.25,
            "joined_from": "2026-01-01",
        }
    )
    assert criteria.regions == ("Central", "East") and criteria.tiers == ("gold",)
    assert criteria.layers == (MOST_VALUABLE, NEGATIVE)  # the pyramid's order
    assert criteria.statuses == ("active",)  # unless said
    form = criteria.to_json()
    assert form["value_min"] == "-1000.5" and form["p_alive_min"] == "0.25"
    assert form["joined_from"] == "2026-01-01" and form["statuses"] == ["active"]
    assert segments.parse(form) == criteria
    assert segments.parse({"statuses": []}).statuses == ()  # any status, when said


def test_save_update_unique_name_and_audit(db: Session, people: dict[str, Member]) -> None:
    saved = segments.save(db, MARKETER, "  East  coast ", "Near the sea", {"regions": ["East"]})
    segment = saved.segment
    assert saved.created and segment.name == "East coast"
    assert segment.criteria == Criteria(regions=("East",)).to_json()
    created = db.scalar(select(AuditEntry).where(AuditEntry.action == "segment.create"))
    assert created is not None and created.entity_id == str(segment.id)
    assert created.actor_label == MARKETER.label

    with pytest.raises(Conflict) as taken:
        segments.save(db, MARKETER, "EAST COAST", "", Criteria())
    assert taken.value.code == "segment.name_taken"
    with pytest.raises(Invalid) as refused:
        segments.save(db, MARKETER, " ", "x" * 501, {"tiers": ["diamond"], "genders": ["robot"]})
    assert set(refused.value.fields) == {"name", "description", "tiers", "genders"}
    with pytest.raises(PermissionDenied):
        segments.save(db, FINANCE, "Finance's", "", Criteria())
    with pytest.raises(ValidationFailed) as no_run:
        segments.save(db, MARKETER, "Champions", "", Criteria(rfm_segments=(CHAMPIONS,)))
    assert no_run.value.code == "segment.no_value_run"

    again = segments.save(
        db, MARKETER, "East coast", "", Criteria(regions=("East",), tiers=("gold",)), segment.id
    )
    assert not again.created and again.segment.id == segment.id
    assert segments.count(db, segments.stored(again.segment), today=TODAY, zone=ZONE) == 1
    updated = db.scalar(select(AuditEntry).where(AuditEntry.action == "segment.update"))
    assert updated is not None and updated.before is not None and updated.after is not None
    assert updated.before["criteria"]["tiers"] == [] and updated.after["criteria"]["tiers"] == [
        "gold"
    ]
    with pytest.raises(NotFound):
        segments.save(db, MARKETER, "Gone", "", Criteria(), 99999)


def test_an_api_key_replays_the_segment_it_created(db: Session) -> None:
    first = segments.save(db, ACTOR, "Shanghai", "", {"cities": ["Shanghai"]}, key="abc-12345")
    retry = segments.save(db, ACTOR, "Shanghai", "", {"cities": ["Shanghai"]}, key="abc-12345")
    assert retry.replayed and retry.segment.id == first.segment.id
    assert db.scalar(select(Segment.id).where(Segment.name == "Shanghai")) == first.segment.id


def test_delete_is_refused_while_a_campaign_targets_it(
    db: Session, people: dict[str, Member], staff: Staff
) -> None:
    campaign = make_campaign(db, staff)
    segment = segments.save(db, MARKETER, "East", "", Criteria(regions=("East",))).segment
    target = segments.set_campaign_target(
        db, staff.marketer, campaign.id, segment.id, today=TODAY, zone=ZONE
    )
    assert target is not None and target.audience_size == 2  # Ann and Bo
    with pytest.raises(Conflict) as refused:
        segments.delete_segment(db, MARKETER, segment.id)
    assert refused.value.code == "segment.targeted" and campaign.code in refused.value.message
    assert (
        segments.set_campaign_target(db, staff.marketer, campaign.id, None, today=TODAY, zone=ZONE)
        is None
    )
    assert segments.campaign_target(db, campaign.id) is None
    segments.delete_segment(db, MARKETER, segment.id)
    assert db.get(Segment, segment.id) is None
    actions = set(
        db.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_type.in_(("segment", "campaign")))
        )
    )
    assert {"segment.delete", "campaign.target", "campaign.target_clear"} <= actions


def test_a_campaign_target_keeps_the_audience_counted_when_set(
    db: Session, people: dict[str, Member], staff: Staff
) -> None:
    campaign = make_campaign(db, staff)
    segment = segments.save(db, MARKETER, "North", "", Criteria(regions=("North",))).segment
    with pytest.raises(PermissionDenied):
        segments.set_campaign_target(db, FINANCE, campaign.id, segment.id, today=TODAY, zone=ZONE)
    segments.set_campaign_target(
        db, staff.marketer, campaign.id, segment.id, today=TODAY, zone=ZONE
    )
    join(db, "Ed", region="North")
    target = segments.campaign_target(db, campaign.id)
    assert target is not None and target.audience_size == 1 and target.segment_name == "North"
    again = segments.set_campaign_target(
        db, staff.marketer, campaign.id, segment.id, today=TODAY, zone=ZONE
    )
    assert again is not None and again.audience_size == 2
    assert db.get(CampaignTarget, campaign.id) is not None
    with pytest.raises(NotFound):
        segments.set_campaign_target(db, staff.marketer, campaign.id, 99999, today=TODAY, zone=ZONE)
    listed = {
        item.segment.name: item for item in segments.list_segments(db, today=TODAY, zone=ZONE)
    }
    assert listed["North"].size == 2 and listed["North"].campaigns[0][1] == campaign.code


def test_a_segment_needing_a_run_lists_without_a_size(db: Session) -> None:
    db.add(Segment(name="Stored", criteria={"layers": [MOST_VALUABLE]}, actor_label="x"))
    db.flush()
    (item,) = [
        i for i in segments.list_segments(db, today=TODAY, zone=ZONE) if i.segment.name == "Stored"
    ]
    assert item.size is None and item.problem == segments.NO_RUN


def test_exports_hold_what_a_marketer_needs_and_contact_only_with_consent(
    db: Session, people: dict[str, Member]
) -> None:
    people["ann"].name = "=HYPERLINK(1)"
    people["ann"].phone = "+8613800000000"
    db.flush()
    value_run(
        db,
        {
            people["ann"].id: {
                "value": Decimal("12.5"),
                "clv_total": Decimal("99.99"),
                "layer": MOST_VALUABLE,
            }
        },
    )
    segment = segments.save(
        db, MARKETER, "East", "Both of them", Criteria(regions=("East",))
    ).segment
    text = "".join(segments.export_csv(db, segment.id, today=TODAY, zone=ZONE))
    assert text.startswith("\ufeff")
    table = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    by_number = {r["Member number"]: r for r in table}
    ann, bo = by_number[people["ann"].number], by_number[people["bo"].number]
    assert len(table) == 2
    assert ann["Name"] == "'=HYPERLINK(1)"  # opens as text
    assert ann["Email"] == "ann@example.com" and ann["Phone"] == "+8613800000000"
    assert ann["Marketing consent"] == "yes" and ann["Pyramid layer"] == MOST_VALUABLE
    assert ann["Value"] == "12.5000" and ann["Predicted lifetime value"] == "99.9900"
    assert bo["Email"] == "" and bo["Phone"] == ""  # no consent: no contact
    assert bo["Tier"] == "gold" and bo["Region"] == "East" and bo["Value"] == ""

    book = load_workbook(io.BytesIO(segments.export_xlsx(db, segment.id, today=TODAY, zone=ZONE)))
    sheet = book.active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "Segment: East"
    header_at = next(i for i, r in enumerate(values) if r[0] == "Member number")
    header = values[header_at]
    lines = {r[0]: dict(zip(header, r, strict=True)) for r in values[header_at + 1 :]}
    assert set(lines) == {people["ann"].number, people["bo"].number}
    assert lines[people["ann"].number]["Value"] == pytest.approx(12.5)
    assert lines[people["ann"].number]["Email"] == "ann@example.com"
    assert lines[people["bo"].number]["Email"] is None
    assert any("Region: East" in str(r[0]) for r in values[:header_at])
    with pytest.raises(NotFound):
        segments.export_csv(db, 99999, today=TODAY, zone=ZONE)


def test_a_coupon_batch_issues_exactly_to_a_segment(db: Session, people: dict[str, Member]) -> None:
    batch = coupons.create_batch(
        db, ACTOR, name="Ten off", kind="fixed", value=Decimal(10), currency="CNY", valid_days=30
    )
    criteria = Criteria(regions=("East",))
    wanted = ids(db, criteria)
    query = segments.member_ids(db, criteria, today=TODAY, zone=ZONE)
    plan = coupons.plan_issue(db, ACTOR, batch.id, members_in=query, segment="East (#1)")
    assert plan.members == len(wanted) == 2 and plan.segment == "East (#1)"
    issued = coupons.issue_to_members(
        db,
        ACTOR,
        batch.id,
        members_in=segments.member_ids(db, criteria, today=TODAY, zone=ZONE),
        segment="East (#1)",
        expected=plan.members,
        issued_before=plan.issued_before,
    )
    assert issued == 2
    holders = set(db.scalars(select(Coupon.member_id).where(Coupon.batch_id == batch.id)))
    assert holders == wanted
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "coupon_batch.issue"))
    assert entry is not None and entry.after is not None and entry.after["segment"] == "East (#1)"
    # Narrowed further by the issue's own filters.
    gold = coupons.plan_issue(
        db,
        ACTOR,
        batch.id,
        tier_codes=["gold"],
        members_in=segments.member_ids(db, replace(criteria), today=TODAY, zone=ZONE),
    )
    assert gold.members == 1
