"""Enrolling a member from a staff page (/members/new, linked from the members list): the
domain's member fields bounded like their columns, every problem beside its field at once
with every input kept, a one-time key so a double submit enrols one member, and a
confirmation on the new member's page that echoes what was stored."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import planning
from campaigns.models import Campaign, Channel
from core.accounts.models import User
from core.audit import Actor, AuditEntry
from loyalty import members
from loyalty.models import LedgerEntry, Member, Referral
from tests.web.conftest import csrf_from, sign_in

ZONE = ZoneInfo("Asia/Shanghai")


def signed_in(client: TestClient, make_user: Callable[..., User], role: str) -> str:
    make_user(f"{role}@example.com", (role,))
    sign_in(client, f"{role}@example.com")
    return csrf_from(client, "/members")


def enrol_form(client: TestClient) -> dict[str, str]:
    """The form as the page hands it out: its one-time key and the CSRF token."""
    page = client.get("/members/new")
    assert page.status_code == 200
    key = re.search(r'name="key" value="([^"]+)"', page.text)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert key and token
    return {"key": key.group(1), "csrf_token": token.group(1)}


def count(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count(Member.id))) or 0)


def a_campaign(db: Session, owner: User) -> Campaign:
    made = planning.create(
        db,
        Actor.system(),
        code="SPRING26",
        name="Spring sale",
        channel="wechat",
        owner_id=owner.id,
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 3, 31),
        budget=Decimal("10000"),
        currency="CNY",
    )
    db.commit()
    return made


def test_the_members_list_links_to_enrolment_for_those_who_may_enrol(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    token = signed_in(client, make_user, "finance")
    listing = client.get("/members")
    assert 'href="/members/new"' not in listing.text
    assert client.get("/members/new").status_code == 403
    assert client.post("/members", data={"name": "X", "csrf_token": token}).status_code == 403
    client.post("/signout", data={"csrf_token": token})
    signed_in(client, make_user, "marketer")
    listing = client.get("/members")
    assert '<a href="/members/new" role="button" id="enrol-link">Enrol a member</a>' in listing.text


def test_the_form_is_bounded_like_the_columns(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    signed_in(client, make_user, "marketer")
    page = client.get("/members/new").text
    for field, column in (
        ("name", Member.name),
        ("phone", Member.phone),
        ("email", Member.email),
        ("referral_code", Member.referral_code),
        ("region", Member.region),
        ("city", Member.city),
        ("occupation", Member.occupation),
        ("industry", Member.industry),
    ):
        size = column.property.columns[0].type.length
        tag = re.search(rf'<input name="{field}" id="f-{field}"[^>]*>', page)
        assert tag and f'maxlength="{size}"' in tag.group(0), field
    genders = re.findall(
        r'<option value="(\w+)"', page.split('name="gender"')[1].split("</select>")[0]
    )
    assert genders == list(members.GENDERS)


def test_enrolling_lands_on_the_member_with_what_was_stored(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    signed_in(client, make_user, "marketer")
    owner = db.scalars(select(User)).one()
    campaign = a_campaign(db, owner)
    channel = db.scalars(select(Channel).where(Channel.code == "wechat")).one()
    form = enrol_form(client)
    done = client.post(
        "/members",
        data={
            **form,
            "name": "  Li Lei ",
            "phone": "138 0000-1234",
            "email": "Li.Lei@Example.COM",
            "birthday": "1990-02-03",
            "gender": "male",
            "region": "East",
            "city": "Shanghai",
            "occupation": "Teacher",
            "industry": "Education",
            "marketing_consent": "on",
            "join_channel_id": str(channel.id),
            "join_campaign_id": str(campaign.id),
        },
    )
    assert done.status_code == 303
    member = db.scalars(select(Member)).one()
    assert done.headers["location"] == f"/members/{member.number}"
    # Stored as the rules store it, not as typed.
    assert (member.name, member.phone, member.email) == (
        "Li Lei",
        "13800001234",
        "li.lei@example.com",
    )
    assert (member.birthday, member.birth_month, member.birth_day) == (date(1990, 2, 3), 2, 3)
    assert (member.gender, member.region, member.city) == ("male", "East", "Shanghai")
    assert (member.occupation, member.industry) == ("Teacher", "Education")
    assert member.marketing_consent and member.consent_at is not None
    assert (member.join_channel_id, member.join_campaign_id) == (channel.id, campaign.id)
    page = client.get(done.headers["location"])
    assert page.status_code == 200
    # The confirmation echoes the stored values.
    assert (
        f"Li Lei is now member {member.number}. phone 13800001234; "
        "email li.lei@example.com; birthday 1990-02-03"
    ) in page.text
    assert "Welcome bonus" in page.text  # the program's sign-up bonus, on the ledger
    welcome = db.scalar(select(LedgerEntry.points).where(LedgerEntry.member_id == member.id))
    assert welcome == 100
    audit = db.scalars(select(AuditEntry).where(AuditEntry.action == "member.create")).one()
    assert audit.actor_label == "marketer@example.com" and audit.entity_id == member.number


def test_every_problem_shows_beside_its_field_and_every_input_is_kept(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    signed_in(client, make_user, "marketer")
    form = enrol_form(client)
    typed = {
        "name": "Han Meimei",
        "phone": "12",
        "email": "not-an-email",
        "birthday": "1990-13-40",
        "gender": "robot",
        "region": "r" * 65,
        "city": "Shang\x00hai",
        "occupation": "Nurse",
        "referral_code": "NOSUCHCODE",
        "join_channel_id": "999999",
        "join_campaign_id": "abc",
    }
    refused = client.post("/members", data={**form, **typed})
    assert refused.status_code == 422
    page = refused.text
    problems = {
        "phone": "is not a phone number.",
        "email": "is not an email address.",
        "birthday": "Give the birthday as a date (year-month-day).",
        "gender": "Gender is one of female, male, other.",
        "region": "Region is longer than 64 characters.",
        "city": "City must not contain control characters.",
        "referral_code": "The referral code &#39;NOSUCHCODE&#39; is not valid.",
        "join_channel_id": "There is no channel 999999.",
        "join_campaign_id": "Choose a valid campaign.",
    }
    for field, says in problems.items():
        error = re.search(rf'<small class="field-error" id="f-{field}-error">([^<]*)</small>', page)
        assert error and says in error.group(1), field
        assert f'name="{field}" id="f-{field}" aria-invalid="true"' in page, field
    assert f"fix the {len(problems)} problems below" in page
    # What was typed is still there, the one-time key too; the first problem has the focus.
    for field in ("name", "phone", "email", "birthday", "occupation", "referral_code"):
        assert f'value="{typed[field]}"' in page, field
    assert f'value="{"r" * 65}"' in page
    assert f'name="key" value="{form["key"]}"' in page
    assert 'id="f-phone" aria-invalid="true" aria-describedby="f-phone-error" autofocus' in page
    assert count(db) == 0


def test_a_phone_or_an_email_is_needed(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    signed_in(client, make_user, "marketer")
    refused = client.post("/members", data={**enrol_form(client), "name": ""})
    assert refused.status_code == 422
    assert (
        '<small class="field-error" id="f-name-error">Give the member&#39;s name.' in refused.text
    )
    assert (
        '<small class="field-error" id="f-phone-error">Give a phone number or an email address.'
        in refused.text
    )
    assert count(db) == 0


def test_a_double_submit_enrols_one_member(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    signed_in(client, make_user, "marketer")
    form = {**enrol_form(client), "name": "Twice", "email": "twice@example.com"}
    first = client.post("/members", data=form)
    again = client.post("/members", data=form)  # a double click, or a reload of the POST
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert count(db) == 1
    assert db.scalar(select(func.count(LedgerEntry.id))) == 1  # one welcome bonus
    # A fresh form for the same person is a clash, said beside the email.
    other = client.post("/members", data={**form, "key": enrol_form(client)["key"]})
    assert other.status_code == 409
    number = db.scalars(select(Member.number)).one()
    assert (
        f'id="f-email-error">The email twice@example.com belongs to member {number}.' in other.text
    )
    assert count(db) == 1


def test_enrolling_with_a_referral_code_starts_a_referral(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    referrer = members.create(
        db, Actor.cli(), members.Profile(name="Old friend", phone="13900000001"), zone=ZONE
    )
    db.commit()
    signed_in(client, make_user, "admin")
    done = client.post(
        "/members",
        data={
            **enrol_form(client),
            "name": "New friend",
            "phone": "13900000002",
            "referral_code": referrer.referral_code.lower(),
        },
    )
    assert done.status_code == 303
    referral = db.scalars(select(Referral)).one()
    assert referral.referrer_id == referrer.id and referral.state == "pending"
    mine = client.get(f"/members/{referrer.number}")
    assert "New friend</a>: Pending" in mine.text
