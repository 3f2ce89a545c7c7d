"""Runs from the database: the pure core's rules on stored touchpoints and purchases, the
issue's edge cases at the database level, stored runs and their look-up, the comparison of
every model, and revenue by campaign for the ROI report."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from attribution import runs
from attribution.models import AttributionCredit, AttributionRun
from attribution.paths import NO_CAMPAIGN
from attribution.runs import MODELS, RunParams
from attribution.stats import PathCounts, PathStats, path_stats
from campaigns import report_data
from core.audit import Actor, AuditEntry
from core.errors import NotFound, PermissionDenied, ValidationFailed
from tests.attribution.conftest import ACTOR, BASE, ZONE, World, day

DATA = Path(__file__).parent / "data"
D = Decimal


def run(world: World, **params: object) -> runs.StoredRun:
    return runs.run(world.db, ACTOR, RunParams(**params), base=BASE, zone=ZONE)  # type: ignore[arg-type]


def credits(result: runs.StoredRun) -> dict[str, tuple[Decimal, Decimal]]:
    return {c.key: (c.conversions, c.value) for c in result.credits}


def local(n: float) -> date:
    return day(n).astimezone(ZONE).date()


@pytest.fixture
def bryl(world: World) -> World:
    """Bryl's three journeys (C1 > C2 > C3 converts; C1 null; C2 > C3 null) as stored
    touchpoints: email, search_ads and wechat stand for C1, C2 and C3."""
    converts, drops, lapses = world.join("A"), world.join("B"), world.join("C")
    world.touch(converts, "email", day(0))
    world.touch(converts, "search_ads", day(1))
    world.touch(converts, "wechat", day(2))
    world.buy(converts, "100.00", at=day(3))
    world.touch(drops, "email", day(0))
    world.touch(lapses, "search_ads", day(0))
    world.touch(lapses, "wechat", day(1))
    world.people = {"A": converts, "B": drops, "C": lapses}
    return world


def test_the_classic_three_journeys_from_the_database_credit_02_04_04(bryl: World) -> None:
    result = run(bryl, model="markov")
    assert credits(result) == {
        "email": (D("0.200000"), D("20.00")),
        "search_ads": (D("0.400000"), D("40.00")),
        "wechat": (D("0.400000"), D("40.00")),
    }
    assert result.p_conversion == pytest.approx(1 / 3, rel=1e-15)
    assert [c.label for c in result.credits] == ["Email", "Search ads", "WeChat"]
    assert {c.key: c.removal_effect for c in result.credits} == pytest.approx(
        {"email": 0.5, "search_ads": 1.0, "wechat": 1.0}, rel=1e-15
    )
    assert (result.total_conversions, result.total_value) == (1, D("100.00"))
    assert (result.null_journeys, result.journeys, result.touchpoints) == (2, 3, 6)
    assert result.transitions is not None
    assert {(t["from"], t["to"]) for t in result.transitions} >= {("(start)", "email")}
    assert result.top_paths[0] == {
        "path": "email > search_ads > wechat",
        "conversions": 1,
        "value": "100.0000",
        "nulls": 0,
    }


def test_the_same_paths_from_a_file_give_the_same_credits() -> None:
    text = (DATA / "bryl_2016_three_journeys.csv").read_text()
    comparison = runs.from_paths(text, RunParams(), ["markov"])
    found = comparison.runs["markov"]
    assert {c.key: c.conversions for c in found.credits} == {
        "C1": D("0.200000"),
        "C2": D("0.400000"),
        "C3": D("0.400000"),
    }
    assert found.id is None and found.currency is None
    every = runs.from_paths(text, RunParams())
    assert list(every.runs) == [m for m in MODELS if m != "time-decay"]  # a file has no times
    with pytest.raises(ValidationFailed) as refused:
        runs.from_paths(text, RunParams(), ["time-decay"])
    assert refused.value.code == "attribution.time_decay_needs_times"


def test_edge_cases_of_the_issue_at_the_database_level(world: World) -> None:
    """A touch exactly at the window's edge counts and one a second earlier is a null
    journey; two conversions in a row leave the second with no touch (direct); a touch after
    the last conversion is a null journey; a refund lowers the conversion's value."""
    member = world.join(at=day(-5))
    world.buy(member, "30.00", at=day(0), ext="P1")  # first purchase: no touch before it
    world.touch(member, "email", day(10) - timedelta(seconds=1))  # just outside P2's window
    world.touch(member, "sms", day(10))  # exactly 90 days before P2
    world.buy(member, "200.00", at=day(100), ext="P2")
    world.buy(member, "45.00", at=day(101), ext="P3")  # right after: nothing between
    world.touch(member, "wechat", day(102))  # after the last conversion
    world.refund("P2", "50.00", at=day(105))

    result = run(world, model="linear")
    assert credits(result) == {
        "email": (D("0.000000"), D("0.00")),
        "sms": (D("1.000000"), D("150.00")),
        "wechat": (D("0.000000"), D("0.00")),
    }
    assert (result.total_conversions, result.total_value) == (1, D("150.00"))
    assert (result.direct_conversions, result.direct_value) == (2, D("75.0000"))
    assert (result.null_journeys, result.journeys) == (2, 5)
    assert [(p["path"], p["conversions"], p["nulls"]) for p in result.top_paths] == [
        ("sms", 1, 0),
        ("email", 0, 1),
        ("wechat", 0, 1),
    ]


def test_without_a_period_the_statistics_are_the_cores_path_stats(world: World) -> None:
    a, b = world.join("A", at=day(-60)), world.join("B", at=day(-60))
    for n, channel in enumerate(["email", "email", "sms", "wechat"]):
        world.touch(a, channel, day(n))
    world.buy(a, "10.00", at=day(5))
    world.touch(a, "douyin", day(6))
    world.buy(a, "20.00", at=day(7))
    world.touch(b, "sms", day(1), visitor=None)
    world.touch(None, "email", day(2), visitor="v-9")
    for collapse in (False, True):
        params = RunParams(collapse_repeats=collapse)
        frames = runs.load_frames(world.db, params, zone=ZONE)
        facts = runs.Facts.from_frames(frames, params)
        assert facts.stats == path_stats(
            frames.touchpoints,
            frames.conversions,
            lookback=params.lookback,
            collapse_repeats=collapse,
        )
    assert runs.Facts.from_frames(frames, params).stats.paths[("email", "sms", "wechat")] == (
        PathCounts(1, D("10.0000"), 0)
    )


def test_the_period_reads_a_lead_in_and_splits_touches_at_their_own_conversion(
    world: World,
) -> None:
    member = world.join(at=day(-60))
    world.touch(member, "email", day(0))  # leads to P1, before the period
    world.buy(member, "10.00", at=day(1), ext="P1")
    world.touch(member, "sms", day(20))
    world.buy(member, "20.00", at=day(40), ext="P2")  # in the period
    world.touch(member, "wechat", day(45))  # its conversion comes after the period
    world.buy(member, "30.00", at=day(60), ext="P3")
    params = {"model": "first", "period_from": local(30), "period_to": local(50)}
    result = run(world, **params)
    # Without P1 read, email (40 days before P2) would have joined P2's journey.
    assert credits(result) == {
        "sms": (D("1.000000"), D("20.00")),
        "wechat": (D("0.000000"), D("0.00")),
    }
    assert (result.total_conversions, result.null_journeys, result.direct_conversions) == (
        1,
        1,
        0,
    )
    assert result.touchpoints == 3  # read from the period's start less the lookback
    everything = run(world, model="first")
    assert everything.total_conversions == 3


def test_collapse_switch_and_sign_ups(world: World) -> None:
    member = world.join(at=day(5))
    world.touch(member, "email", day(0))
    world.touch(member, "email", day(1))
    world.touch(member, "sms", day(2))
    world.buy(member, "90.00", at=day(10))
    kept = run(world, model="linear")
    collapsed = run(world, model="linear", collapse_repeats=True)
    assert credits(kept)["email"] == (D("0.666667"), D("60.00"))
    assert credits(collapsed)["email"] == (D("0.500000"), D("45.00"))
    # With sign-ups, the touches before joining lead to the sign-up, the purchase has none.
    joined = run(world, model="linear", signups=True)
    assert (joined.total_conversions, joined.total_value) == (1, D("0.00"))
    assert (joined.direct_conversions, joined.direct_value) == (1, D("90.0000"))


def test_runs_are_stored_and_the_latest_for_the_parameters_is_read(bryl: World) -> None:
    assert runs.latest_run(bryl.db, RunParams()) is None
    first = run(bryl)
    again = runs.latest_run(bryl.db, RunParams())
    assert again is not None and again.id == first.id
    assert again.credits == first.credits and again.top_paths == first.top_paths
    assert again.transitions == first.transitions and again.created_by == "test"
    newer = run(bryl)
    found = runs.latest_run(bryl.db, RunParams())
    assert found is not None and found.id == newer.id != first.id
    # Other parameters name other runs; the order and half-life count only where used.
    assert runs.latest_run(bryl.db, RunParams(order=2)) is None
    assert runs.latest_run(bryl.db, RunParams(unit="campaign")) is None
    assert runs.latest_run(bryl.db, RunParams(period_from=local(0))) is None
    linear = run(bryl, model="linear", order=3, half_life_days=3)
    assert runs.latest_run(bryl.db, RunParams(model="linear")) == linear
    decay = run(bryl, model="time-decay", half_life_days=3)
    assert runs.latest_run(bryl.db, RunParams(model="time-decay")) is None
    assert runs.latest_run(bryl.db, RunParams(model="time-decay", half_life_days=3)) == decay
    assert runs.get_run(bryl.db, first.id or 0).id == first.id
    with pytest.raises(NotFound):
        runs.get_run(bryl.db, 999_999)
    audited = bryl.db.scalars(
        select(AuditEntry.after).where(AuditEntry.action == "attribution.run")
    ).all()
    assert len(audited) == 4 and audited[0]["model"] == "markov"
    with pytest.raises(PermissionDenied):
        runs.run(bryl.db, Actor.member("M1"), RunParams(), base=BASE, zone=ZONE)


def test_every_model_side_by_side_each_adding_up(bryl: World) -> None:
    bryl.buy(bryl.people["B"], "55.55", at=day(2))
    before = bryl.db.scalar(select(func.count(AttributionRun.id)))
    compared = runs.compare(bryl.db, RunParams(), base=BASE, zone=ZONE)
    assert bryl.db.scalar(select(func.count(AttributionRun.id))) == before
    assert list(compared.runs) == list(MODELS)
    for model, result in compared.runs.items():
        assert result.id is None and result.model == model
        assert sum(c.conversions for c in result.credits) == result.total_conversions == 2
        assert sum(c.value for c in result.credits) == result.total_value == D("155.55")
    assert compared.runs["ordered-shapley"].by_position
    frame = compared.frame()
    assert list(frame["key"]) == ["email", "search_ads", "wechat"]
    assert "markov_conversions" in frame.columns and "time-decay_value" in frame.columns

    stored = runs.run_all(bryl.db, ACTOR, RunParams(), base=BASE, zone=ZONE)
    assert all(r.id is not None for r in stored.runs.values())
    read = runs.latest_comparison(bryl.db, RunParams(model="linear"))
    assert read is not None and list(read.runs) == list(MODELS)
    assert {m: r.credits for m, r in read.runs.items()} == {
        m: r.credits for m, r in compared.runs.items()
    }
    assert read.transitions == compared.transitions and read.top_paths == compared.top_paths
    assert runs.latest_comparison(bryl.db, RunParams(unit="campaign")) is None
    stored_credits = bryl.db.scalar(select(func.count(AttributionCredit.id)))
    assert stored_credits == len(MODELS) * 3


def test_campaign_unit_and_revenue_by_campaign_for_the_roi_report(world: World) -> None:
    spring = world.campaign("SPRING26", "wechat")
    world.campaign("SEARCH26", "search_ads")
    member = world.join(at=day(-60))
    world.touch(member, "wechat", day(0), campaign="SPRING26")
    world.touch(member, "search_ads", day(1), campaign="SEARCH26")
    world.touch(member, "email", day(2))
    world.buy(member, "300.00", at=day(3))
    result = run(world, model="linear", unit="campaign")
    assert credits(result) == {
        NO_CAMPAIGN: (D("0.333334"), D("100.00")),  # a tie's unit: the first key
        "SEARCH26": (D("0.333333"), D("100.00")),
        "SPRING26": (D("0.333333"), D("100.00")),
    }
    by_key = {c.key: c for c in result.credits}
    assert by_key["SPRING26"].campaign_id == spring.id and by_key["SPRING26"].label == (
        "Spring sale"
    )
    assert by_key[NO_CAMPAIGN].campaign_id is None

    frame = runs.revenue_by_campaign(world.db, result)
    assert list(frame.columns) == ["campaign_id", "day", "amount", "orders", "conversions"]
    assert sorted(zip(frame["campaign_id"], frame["amount"], strict=True)) == [
        (spring.id, D("100.00")),
        (by_key["SEARCH26"].campaign_id, D("100.00")),
    ]
    assert frame["orders"].isna().all()
    report = report_data.build(world.db, BASE, report_data.ReportFilter(), extra_revenue=frame)
    revenue = {row.key["code"]: row.values["revenue"] for row in report.rows}
    assert revenue == {"SEARCH26": D("100.00"), "SPRING26": D("100.00")}
    with pytest.raises(ValidationFailed):
        runs.revenue_by_campaign(world.db, run(world, model="linear"))


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"model": "magic"}, "attribution.model"),
        ({"order": 4}, "attribution.order"),
        ({"order": True}, "attribution.order"),
        ({"unit": "store"}, "attribution.unit"),
        ({"lookback_days": 0}, "attribution.lookback"),
        ({"acquisition_lookback_days": 731}, "attribution.lookback"),
        ({"half_life_days": 0}, "attribution.half_life"),
        ({"period_from": day(5).date(), "period_to": day(1).date()}, "attribution.period"),
    ],
)
def test_parameters_are_held_to_their_bounds(changes: dict[str, object], code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        RunParams(**changes)  # type: ignore[arg-type]
    assert refused.value.code == code


def test_an_empty_database_gives_an_empty_run(world: World) -> None:
    for model in MODELS:
        result = run(world, model=model)
        assert result.status == "empty" and result.credits == ()
        assert result.total_value == D("0.00")
    assert PathStats().total_conversions == 0
