"""Touchpoints: batches all or nothing and idempotent, visitor links, derived touchpoints,
and the frame the journeys read (visitors resolved to members)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from attribution import touchpoints
from attribution.models import Touchpoint, VisitorLink
from attribution.touchpoints import TouchInput
from campaigns.models import Channel
from core import migrations
from core.audit import Actor, AuditEntry
from core.db import make_engine, make_session_factory
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from loyalty import coupons
from loyalty.models import Redemption, Referral
from tests.attribution.conftest import ACTOR, T0, ZONE, World, day
from tests.conftest import fresh_database_url


def item(ext: str, **changes: object) -> TouchInput:
    fields: dict[str, object] = {
        "source": "web",
        "external_id": ext,
        "channel": "email",
        "kind": "click",
        "occurred_at": T0,
        "visitor_id": "v-1",
    }
    fields.update(changes)
    return TouchInput(**fields)  # type: ignore[arg-type]


def count(world: World) -> int:
    return int(world.db.scalar(select(func.count(Touchpoint.id))) or 0)


def test_a_batch_is_recorded_and_replays_with_the_same_ids(world: World) -> None:
    member = world.join()
    world.campaign("SPRING26", "email")
    batch = [
        item("E1", member_number=member.number, visitor_id=None, campaign_code="spring26"),
        item("E2", channel=" Search_Ads ", kind="IMPRESSION", occurred_at=day(1)),
    ]
    first = touchpoints.record_batch(world.db, ACTOR, batch)
    assert (first.created, first.replayed) == (2, 0)
    stored = world.db.scalars(select(Touchpoint).order_by(Touchpoint.id)).all()
    assert [(t.external_id, t.member_id, t.visitor_id, t.kind) for t in stored] == [
        ("E1", member.id, None, "click"),
        ("E2", None, "v-1", "impression"),
    ]
    assert stored[0].campaign_id is not None and stored[0].occurred_at == T0

    # The same batch again, written differently ("+08:00", case, spaces): the same answer.
    again = [
        item(
            "E1",
            member_number=member.number.lower(),
            visitor_id=None,
            campaign_code="SPRING26",
            occurred_at=T0.astimezone(ZONE),
        ),
        item("E2", channel="search_ads", kind="impression", occurred_at=day(1)),
    ]
    replay = touchpoints.record_batch(world.db, ACTOR, again)
    assert [(t.id, t.replayed) for t in replay.touchpoints] == [
        (t.id, True) for t in first.touchpoints
    ]
    assert count(world) == 2
    audits = world.db.scalars(
        select(AuditEntry.after).where(AuditEntry.action == "touchpoints.record")
    ).all()
    assert audits == [{"created": 2, "replayed": 0, "sources": ["web"]}]


def test_a_reused_id_with_other_content_refuses_the_whole_batch(world: World) -> None:
    touchpoints.record_batch(world.db, ACTOR, [item("E1")])
    with pytest.raises(Conflict) as refused:
        touchpoints.record_batch(world.db, ACTOR, [item("NEW"), item("E1", kind="visit")])
    assert refused.value.code == "touchpoint.id_reused"
    assert refused.value.details == {
        "conflicts": [{"index": 1, "source": "web", "external_id": "E1"}]
    }
    assert count(world) == 1  # NEW was not written either


def test_every_problem_of_every_item_is_named_and_nothing_is_written(world: World) -> None:
    member = world.join()
    batch = [
        item("OK"),
        item("B1", channel="telegraph"),
        item("B2", occurred_at=datetime(2026, 3, 1, 12, 0)),  # noqa: DTZ001 - the point
        item("B3", visitor_id=None),
        item("B4", source="retain"),
        item("B5", kind="billboard"),
        item("B6", campaign_code="NOPE"),
        item("B7", member_number="M99999999", visitor_id=None),
        item("B8", external_id="x" * 65),
        item("B9", visitor_id="bad\x00id"),
        item("B10", occurred_at=datetime.now(UTC) + timedelta(hours=1)),
        item("OK2", member_number=member.number),
        item("", external_id=" "),
    ]
    with pytest.raises(ValidationFailed) as refused:
        touchpoints.record_batch(world.db, ACTOR, batch)
    problems = refused.value.details["problems"]
    assert [(p["index"], p["code"]) for p in problems] == [
        (1, "touchpoint.channel"),
        (2, "touchpoint.time"),
        (3, "touchpoint.person"),
        (4, "touchpoint.source"),
        (5, "touchpoint.kind"),
        (6, "touchpoint.campaign"),
        (7, "touchpoint.member"),
        (8, "touchpoint.external_id"),
        (9, "touchpoint.visitor_id"),
        (10, "touchpoint.time"),
        (12, "touchpoint.id"),
    ]
    assert refused.value.message.startswith("Nothing was recorded: 11 refused touchpoint(s).")
    assert "touchpoints[2]: The time needs its time zone" in refused.value.message
    assert count(world) == 0


def test_an_item_repeated_in_a_batch(world: World) -> None:
    same = touchpoints.record_batch(world.db, ACTOR, [item("E1"), item("E1")])
    assert [t.replayed for t in same.touchpoints] == [False, True]
    assert same.touchpoints[0].id == same.touchpoints[1].id and count(world) == 1
    with pytest.raises(ValidationFailed) as refused:
        touchpoints.record_batch(world.db, ACTOR, [item("E2"), item("E2", channel="sms")])
    assert refused.value.code == "touchpoint.id_repeated"
    assert "is also item 0" in refused.value.message


def test_batch_size_and_roles(world: World) -> None:
    with pytest.raises(ValidationFailed, match="from 1 to 1,000"):
        touchpoints.record_batch(world.db, ACTOR, [])
    with pytest.raises(ValidationFailed, match="from 1 to 1,000"):
        touchpoints.record_batch(
            world.db, ACTOR, [item(f"E{n}") for n in range(touchpoints.MAX_BATCH + 1)]
        )
    with pytest.raises(PermissionDenied):
        touchpoints.record_batch(world.db, Actor.member("M00000001"), [item("E1")])
    finance = Actor("user", "fang", roles=frozenset({"finance"}))
    with pytest.raises(PermissionDenied):
        touchpoints.record_batch(world.db, finance, [item("E1")])


def test_a_visitor_links_to_one_member_and_the_frame_counts_it_as_theirs(world: World) -> None:
    li, han = world.join("Li"), world.join("Han")
    world.touch(None, "email", day(0), visitor="cookie-1")
    world.touch(None, "sms", day(1), visitor="cookie-2")
    world.touch(li, "wechat", day(2))
    unlinked = touchpoints.frame(world.db)
    assert list(unlinked["member"]) == [-1, -2, li.id]

    linked = touchpoints.link_visitor(world.db, ACTOR, " cookie-1 ", li.number, at=day(3))
    assert not linked.replayed and linked.link.member_id == li.id
    assert touchpoints.link_visitor(world.db, ACTOR, "cookie-1", li.number).replayed
    with pytest.raises(Conflict) as refused:
        touchpoints.link_visitor(world.db, ACTOR, "cookie-1", han.number)
    assert refused.value.code == "visitor.linked_elsewhere"
    with pytest.raises(NotFound):
        touchpoints.link_visitor(world.db, ACTOR, "cookie-2", "M99999999")
    with pytest.raises(ValidationFailed):
        touchpoints.link_visitor(world.db, ACTOR, "  ", li.number)
    # A touch recorded after the link counts for the member too.
    world.touch(None, "search_ads", day(4), visitor="cookie-1", kind="impression")

    frame = touchpoints.frame(world.db)
    assert list(frame["member"]) == [li.id, -1, li.id, li.id]
    assert list(frame["channel"]) == ["email", "sms", "wechat", "search_ads"]
    assert str(frame["at"].dtype) == "datetime64[us, UTC]"
    period = touchpoints.frame(world.db, start=day(1), end=day(4))
    assert list(period["channel"]) == ["sms", "wechat"]
    assert world.db.scalar(select(func.count()).select_from(VisitorLink)) == 1


def test_derived_touchpoints_from_coupons_purchases_and_referrals(world: World) -> None:
    spring = world.campaign("SPRING26", "wechat")
    world.campaign("SEARCH26", "search_ads")
    batch = coupons.create_batch(
        world.db,
        ACTOR,
        name="20 off",
        kind="fixed",
        value=Decimal(20),
        currency="CNY",
        valid_days=60,
        campaign_id=spring.id,
    )
    li = world.join("Li", at=day(-10))
    han = world.join("Han", at=day(-9), referral=li.referral_code)
    coupon = coupons.issue(world.db, ACTOR, batch.id, li, reason="mailing", at=day(-5))
    with_coupon = world.buy(
        li, "100.00", at=day(1), discount=Decimal(20), coupon_codes=(coupon.code,)
    )
    online = world.buy(han, "80.00", at=day(2), campaign_code="SEARCH26")
    in_store = world.buy(han, "60.00", at=day(3), campaign_code="SEARCH26", store="Jing'an")
    world.buy(han, "50.00", at=day(4))  # no campaign: no touch
    world.buy(None, "70.00", at=day(4), campaign_code="SEARCH26")  # a guest: no journey

    added = touchpoints.derive(world.db, ACTOR)
    assert added == {
        "coupon_issued": 1,
        "coupon_used": 1,
        "purchase": 2,
        "referral": 1,
    }
    derived = world.db.execute(
        select(
            Touchpoint.external_id,
            Touchpoint.kind,
            Touchpoint.member_id,
            Channel.code,
            Touchpoint.campaign_id,
            Touchpoint.occurred_at,
        )
        .join(Channel, Channel.id == Touchpoint.channel_id)
        .where(Touchpoint.source == "retain")
        .order_by(Touchpoint.occurred_at)
    ).all()
    assert [tuple(r) for r in derived] == [
        (f"referral:{_referral_id(world)}", "referral", han.id, "referral", None, day(-9)),
        (f"coupon:{coupon.id}", "coupon_issued", li.id, "wechat", spring.id, day(-5)),
        (
            f"redemption:{_redemption_id(world)}",
            "coupon_used",
            li.id,
            "wechat",
            spring.id,
            day(1),
        ),
        (
            f"purchase:{online.purchase.id}",
            "click",
            han.id,
            "search_ads",
            online.purchase.campaign_id,
            day(2),
        ),
        (
            f"purchase:{in_store.purchase.id}",
            "visit",
            han.id,
            "search_ads",
            in_store.purchase.campaign_id,
            day(3),
        ),
    ]
    assert with_coupon.purchase.campaign_id == spring.id  # its touch is the coupon's
    # Idempotent: nothing is derived twice.
    assert touchpoints.derive(world.db, ACTOR) == dict.fromkeys(added, 0)
    assert count(world) == 5
    assert world.db.scalar(select(Channel.name).where(Channel.code == "referral")) == "Referral"


def _referral_id(world: World) -> int:
    return int(world.db.scalar(select(Referral.id)) or 0)


def _redemption_id(world: World) -> int:
    return int(world.db.scalar(select(Redemption.id)) or 0)


def test_the_same_batch_posted_at_once_is_written_once(request: pytest.FixtureRequest) -> None:
    """Real threads on PostgreSQL, each with its own transaction, released together: the
    unique index settles the race, and every request answers the same ids."""
    engine = make_engine(fresh_database_url(request, "postgresql"), pool_size=10)
    try:
        migrations.upgrade(engine)
        factory = make_session_factory(engine)
        batch = [item(f"E{n}", visitor_id=f"v-{n}") for n in range(50)]
        barrier = threading.Barrier(6)
        answers: list[object] = [None] * 6

        def post(i: int) -> None:
            with factory() as session:
                barrier.wait()
                try:
                    with session.begin():
                        mine = batch if i < 5 else [item("E0", visitor_id="v-0", kind="visit")]
                        answers[i] = touchpoints.record_batch(session, ACTOR, mine)
                except Conflict as exc:
                    answers[i] = exc

        threads = [threading.Thread(target=post, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes = [a for a in answers[:5] if isinstance(a, touchpoints.BatchOutcome)]
        refused = [a for a in answers if isinstance(a, Conflict)]
        with factory() as session:
            stored = session.scalar(select(func.count(Touchpoint.id)))
        if isinstance(answers[5], touchpoints.BatchOutcome):  # the other content came first
            assert stored == 1 and len(refused) == 5
        else:
            assert stored == 50 and len(outcomes) == 5 and len(refused) == 1
            assert sum(o.created for o in outcomes) == 50
            assert len({tuple(t.id for t in o.touchpoints) for o in outcomes}) == 1
    finally:
        engine.dispose()
