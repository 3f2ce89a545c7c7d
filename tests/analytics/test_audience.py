"""Audience analysis (issue 14): members, revenue and value per group, and the response of
targeted members to campaigns, on both databases.

The period is March 2026 in Shanghai (UTC+8): 1 March starts at 28 Feb 16:00 UTC and
31 March ends at 31 March 16:00 UTC.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from analytics import audience
from analytics.age_bands import band_of
from analytics.models import MemberScore, ValueRun
from attribution.models import Touchpoint, VisitorLink
from campaigns.models import Campaign, Channel
from core.errors import NotFound, ValidationFailed
from loyalty.models import Batch, Coupon, Member
from tests.campaigns.conftest import Staff, make_campaign
from tests.campaigns.conftest import staff as staff  # a fixture
from tests.loyalty.conftest import ZONE, Shop

D = Decimal
TODAY = date(2026, 12, 1)
MARCH = {"start": date(2026, 3, 1), "end": date(2026, 3, 31)}
JOINED = datetime(2026, 1, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Audience(Shop):
    """A shop with campaigns, coupons and touchpoints written as rows."""

    def __init__(self, db: Session, team: Staff) -> None:
        super().__init__(db)
        self.staff = team
        self._refs = itertools.count(1)

    def member(self, name: str, **profile: Any) -> Member:
        return self.join(name, at=JOINED, **profile)

    def campaign(self, code: str, starts_on: date, ends_on: date) -> Campaign:
        return make_campaign(self.db, self.staff, code=code, starts_on=starts_on, ends_on=ends_on)

    def coupon(self, campaign: Campaign, member: Member, at: datetime) -> None:
        batch = Batch(
            name=f"{campaign.code} coupons",
            campaign_id=campaign.id,
            kind="fixed",
            value=D(10),
            currency="CNY",
            valid_days=30,
        )
        self.db.add(batch)
        self.db.flush()
        self.db.add(
            Coupon(
                batch_id=batch.id, code=f"CODE{next(self._refs)}", member_id=member.id, issued_at=at
            )
        )
        self.db.flush()

    def touch(
        self,
        campaign: Campaign,
        member: Member | None,
        at: datetime,
        *,
        kind: str = "click",
        source: str = "web",
        ext: str | None = None,
        visitor: str | None = None,
    ) -> None:
        channel = self.db.scalars(select(Channel.id).where(Channel.code == "email")).one()
        self.db.add(
            Touchpoint(
                source=source,
                external_id=ext or f"T{next(self._refs)}",
                member_id=member.id if member else None,
                visitor_id=visitor,
                channel_id=channel,
                campaign_id=campaign.id,
                kind=kind,
                occurred_at=at,
            )
        )
        self.db.flush()

    def profile(self, dimension: str = "region", **extra: Any) -> pd.DataFrame:
        period = {**MARCH, **extra}
        return audience.profile(self.db, dimension, zone=ZONE, today=TODAY, base="CNY", **period)

    def response(self, dimension: str = "region", **extra: Any) -> pd.DataFrame:
        period = {**MARCH, **extra}
        return audience.campaign_response(self.db, dimension, zone=ZONE, today=TODAY, **period)


@pytest.fixture
def shop(db: Session, staff: Staff) -> Audience:
    return Audience(db, staff)


def rows(frame: pd.DataFrame, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in frame[list(columns)].itertuples(index=False, name=None)]


def test_members_and_revenue_per_region_with_unknown_last(shop: Audience) -> None:
    north = shop.member("A", region="North")
    shop.member("B", region="  North ")  # the same region, typed with spaces
    south = shop.member("C", region="South")
    nowhere = shop.member("D")
    shop.member("E", region="")  # blank: unknown
    shop.join("Late", at=utc("2026-04-15 00:00"), region="South")  # joined after March

    shop.buy(north, "100.00", at=utc("2026-03-05 04:00"))
    shop.buy(north, "50.00", at=utc("2026-03-06 04:00"), ext="N2")
    shop.refund("N2", "20.00", at=utc("2026-03-07 04:00"))  # kept 30.00
    shop.buy(south, "40.00", at=utc("2026-02-28 15:59"), ext="S1")  # 28 Feb local: out
    shop.buy(south, "80.00", at=utc("2026-03-31 16:00"))  # 1 April local: out
    shop.buy(south, "25.00", at=utc("2026-03-10 04:00"), ext="S3")
    shop.refund("S3", None, at=utc("2026-03-11 04:00"))  # wholly refunded: 0, not a buyer
    shop.buy(nowhere, "10.00", at=utc("2026-02-28 16:00"))  # 1 March 00:00 local: in
    shop.buy(nowhere, "0.01", at=utc("2026-03-31 15:59"))  # 31 March 23:59 local: in
    shop.db.commit()

    frame = shop.profile()
    assert rows(frame, "group", "members", "purchasing_members", "revenue") == [
        ("North", 2, 1, D("130.00")),
        ("South", 1, 0, D("0.00")),
        ("unknown", 2, 1, D("10.01")),
    ]
    assert list(frame["member_share_pct"]) == [D("40.00"), D("20.00"), D("40.00")]
    assert list(frame["revenue_share_pct"]) == [D("92.85"), D("0.00"), D("7.15")]
    assert list(frame["revenue_per_member"]) == [D("65.00"), D("0.00"), D("5.01")]
    assert frame.attrs["run"] is None
    assert "value" not in frame.columns and not audience.layer_columns(frame)

    total = audience.totals(frame)
    assert (total["members"], total["purchasing_members"], total["revenue"]) == (5, 2, D("140.01"))
    assert total["member_share_pct"] == D("100.00") and total["revenue_per_member"] == D("28.00")

    # An open period counts every member and every purchase.
    everything = shop.profile(start=None, end=None)
    assert rows(everything, "group", "members", "revenue") == [
        ("North", 2, D("130.00")),
        ("South", 2, D("120.00")),
        ("unknown", 2, D("10.01")),
    ]


def test_age_bands_are_counted_on_today(shop: Audience) -> None:
    born = {
        "a": date(2008, 12, 2),  # 17 until tomorrow
        "b": date(2008, 12, 1),  # 18 today
        "c": date(2001, 12, 2),  # 24
        "d": date(2001, 12, 1),  # 25 today
        "e": date(1961, 12, 1),  # 65 today
        "f": date(1961, 12, 2),  # 64
    }
    people = {name: shop.member(name, birthday=day) for name, day in born.items()}
    shop.member("none")
    unborn = shop.member("unborn")
    shop.db.execute(update(Member).where(Member.id == unborn.id).values(birthday=date(2027, 1, 1)))
    shop.buy(people["b"], "18.00", at=utc("2026-03-05 04:00"))
    shop.db.commit()

    frame = shop.profile("age_band")
    assert rows(frame, "group", "members", "revenue") == [
        ("under-18", 1, D("0.00")),
        ("18-24", 2, D("18.00")),
        ("25-34", 1, D("0.00")),
        ("55-64", 1, D("0.00")),
        ("65-plus", 1, D("0.00")),
        ("unknown", 2, D("0.00")),
    ]
    # Sorting by the group keeps the bands' order (reversed here), unknown last.
    assert list(audience.sorted_frame(frame, "group", descending=True)["group"]) == [
        "65-plus",
        "55-64",
        "25-34",
        "18-24",
        "under-18",
        "unknown",
    ]
    # The SQL bands agree with the pure rule, member by member.
    expected: dict[str, int] = {}
    for day in [*born.values(), None, date(2027, 1, 1)]:
        band = band_of(day, TODAY)
        expected[band] = expected.get(band, 0) + 1
    assert dict(zip(frame["group"], frame["members"], strict=True)) == expected
    # A day later the 17-year-old is 18 and the 24-year-old 25.
    later = audience.profile(
        shop.db, "age_band", start=None, end=None, zone=ZONE, today=date(2026, 12, 2)
    )
    counts = dict(zip(later["group"], later["members"], strict=True))
    assert "under-18" not in counts and (counts["18-24"], counts["25-34"]) == (2, 2)


def test_occupation_industry_city_and_gender(shop: Audience) -> None:
    shop.member("A", occupation="Teacher", industry="Education", city="Hangzhou", gender="female")
    shop.member("B", occupation="teacher", industry="Education", gender="male")
    shop.member("C", occupation="Engineer", industry="Software", city="Hangzhou")
    shop.db.commit()
    assert rows(shop.profile("industry"), "group", "members") == [
        ("Education", 2),
        ("Software", 1),
    ]
    # Different spellings stay apart (as typed); equal counts by name, case aside.
    assert rows(shop.profile("occupation"), "group", "members") == [
        ("Engineer", 1),
        ("Teacher", 1),
        ("teacher", 1),
    ]
    assert rows(shop.profile("city"), "group", "members") == [("Hangzhou", 2), ("unknown", 1)]
    assert rows(shop.profile("gender"), "group", "members") == [
        ("female", 1),
        ("male", 1),
        ("unknown", 1),
    ]


def _run(db: Session, as_of: date) -> ValueRun:
    run = ValueRun(
        as_of=as_of,
        period_days=365,
        currency="CNY",
        params={},
        fit={},
        summary={},
        members=0,
        actor_label="test",
    )
    db.add(run)
    db.flush()
    return run


def score_member(
    db: Session, run: ValueRun, member: Member, value: str, layer: str, segment: str, kind: str
) -> None:
    zero = D(0)
    db.add(
        MemberScore(
            run_id=run.id,
            member_id=member.id,
            net_purchases=zero,
            cost_to_serve=zero,
            value=D(value),
            layer=layer,
            purchases=1,
            monetary=zero,
            rfm_segment=segment,
            loyalty_type=kind,
            clv1=zero,
            clv2=zero,
            clv3=zero,
            clv4=zero,
            clv5=zero,
            clv6=zero,
            clv_total=zero,
        )
    )


def test_the_latest_value_run_adds_value_layers_segments_and_types(shop: Audience) -> None:
    a = shop.member("A", region="North")
    b = shop.member("B", region="North")
    shop.member("C", region="North")  # not scored
    d = shop.member("D", region="South")
    old = _run(shop.db, date(2026, 10, 31))
    score_member(shop.db, old, a, "999.00", "most_valuable", "Champions", "super_value")
    latest = _run(shop.db, date(2026, 11, 30))
    score_member(shop.db, latest, a, "120.50", "most_valuable", "Champions", "super_value")
    score_member(shop.db, latest, b, "-20.25", "negative", "Lost", "price")
    score_member(shop.db, latest, d, "10.00", "low_contribution", "Champions", "odd_type")
    shop.db.commit()

    frame = shop.profile()
    assert frame.attrs["run"] == {"id": latest.id, "as_of": date(2026, 11, 30), "currency": "CNY"}
    assert rows(frame, "group", "members", "scored", "value", "average_value") == [
        ("North", 3, 2, D("100.25"), D("50.13")),
        ("South", 1, 1, D("10.00"), D("10.00")),
    ]
    assert audience.layer_columns(frame) == [
        "layer:most_valuable",
        "layer:most_growable",
        "layer:low_contribution",
        "layer:negative",
    ]
    assert rows(frame, "layer:most_valuable", "layer:negative", "layer:low_contribution") == [
        (1, 1, 0),
        (0, 0, 1),
    ]
    segments = audience.segment_columns(frame)
    assert segments[0] == "rfm:Champions" and segments[-1] == "rfm:No Purchase"
    assert rows(frame, "rfm:Champions", "rfm:Lost", "rfm:At Risk") == [(1, 1, 0), (1, 0, 0)]
    # Every known type, then any other the run holds.
    assert audience.type_columns(frame)[-1] == "type:odd_type"
    assert rows(frame, "type:super_value", "type:price", "type:odd_type") == [(1, 1, 0), (0, 0, 1)]
    total = audience.totals(frame)
    assert (total["scored"], total["value"], total["average_value"]) == (3, D("110.25"), D("36.75"))
    assert total["layer:most_valuable"] == 1

    chosen = shop.profile(run_id=old.id)
    assert rows(chosen, "group", "scored", "value") == [
        ("North", 1, D("999.00")),
        ("South", 0, D("0.00")),
    ]
    assert chosen["average_value"].iloc[1] is None
    with pytest.raises(NotFound, match="No value run"):
        shop.profile(run_id=latest.id + 100)


def test_who_is_targeted_and_who_converted(shop: Audience) -> None:
    spring = shop.campaign("SPRING", date(2026, 3, 1), date(2026, 3, 31))
    by_coupon = shop.member("coupon", region="North")
    by_touch = shop.member("touch", region="North")
    too_late = shop.member("late", region="South")
    before = shop.member("before", region="South")
    refunded = shop.member("refunded", region="South")
    visitor = shop.member("visitor", region="South")
    not_targeted = shop.member("walk-in", region="West")
    coupon_after = shop.member("coupon-after", region="West")
    derived = shop.member("derived", region="West")
    used_only = shop.member("used", region="West")

    # A coupon sent ahead of the start targets; the purchase in the window converts.
    shop.coupon(spring, by_coupon, utc("2026-02-25 02:00"))
    shop.buy(by_coupon, "60.00", at=utc("2026-03-10 04:00"))
    # A touch in the run dates targets; buying the day after converts.
    shop.touch(spring, by_touch, utc("2026-03-05 04:00"))
    shop.buy(by_touch, "30.00", at=utc("2026-03-06 04:00"))
    # Buying after the last local day is no conversion (1 April 00:30 in Shanghai).
    shop.touch(spring, too_late, utc("2026-03-05 04:00"))
    shop.buy(too_late, "30.00", at=utc("2026-03-31 16:30"))
    # Buying before being reached is no response.
    shop.buy(before, "30.00", at=utc("2026-03-03 04:00"))
    shop.touch(spring, before, utc("2026-03-05 04:00"))
    # A purchase wholly refunded is no conversion.
    shop.touch(spring, refunded, utc("2026-03-05 04:00"))
    shop.buy(refunded, "30.00", at=utc("2026-03-06 04:00"), ext="RF")
    shop.refund("RF", None, at=utc("2026-03-07 04:00"))
    # A visitor's touch counts for the member the visitor turned out to be.
    shop.db.add(VisitorLink(visitor_id="cookie-1", member_id=visitor.id))
    shop.touch(spring, None, utc("2026-03-08 04:00"), visitor="cookie-1")
    # Not targeted: a buyer never reached, a coupon after the end, touches that are responses.
    shop.buy(not_targeted, "30.00", at=utc("2026-03-10 04:00"))
    shop.coupon(spring, coupon_after, utc("2026-04-01 02:00"))
    shop.buy(derived, "30.00", at=utc("2026-03-10 04:00"))
    shop.touch(spring, derived, utc("2026-03-10 04:00"), source="retain", ext="purchase:1")
    shop.touch(spring, used_only, utc("2026-03-10 04:00"), kind="coupon_used")
    shop.buy(used_only, "30.00", at=utc("2026-03-10 04:00"))
    shop.db.commit()

    frame = shop.response(campaign_id=spring.id)
    assert rows(frame, "group", "targeted", "converted", "conversion_pct") == [
        ("South", 4, 0, D("0.00")),
        ("North", 2, 2, D("100.00")),
    ]
    assert [c["code"] for c in frame.attrs["campaigns"]] == ["SPRING"]
    total = audience.totals(frame)
    assert (total["targeted"], total["converted"], total["conversion_pct"]) == (6, 2, D("33.33"))


def test_every_campaign_of_the_period_counts_each_targeting(shop: Audience) -> None:
    spring = shop.campaign("SPRING", date(2026, 3, 1), date(2026, 3, 31))
    autumn = shop.campaign("LATEMAR", date(2026, 3, 20), date(2026, 4, 10))
    winter = shop.campaign("WINTER", date(2026, 6, 1), date(2026, 6, 30))
    a = shop.member("A", birthday=date(1990, 5, 1))  # 36: 35-44
    b = shop.member("B")
    shop.touch(spring, a, utc("2026-03-02 04:00"))
    shop.touch(spring, a, utc("2026-03-03 04:00"))  # the same campaign again: once
    shop.buy(a, "10.00", at=utc("2026-03-04 04:00"))
    shop.touch(autumn, a, utc("2026-03-21 04:00"))  # bought before this one reached them
    shop.coupon(autumn, b, utc("2026-03-20 02:00"))
    shop.buy(b, "10.00", at=utc("2026-04-02 04:00"))  # in LATEMAR's dates
    shop.touch(winter, b, utc("2026-06-02 04:00"))
    shop.buy(b, "10.00", at=utc("2026-06-03 04:00"))
    shop.db.commit()

    frame = shop.response("age_band")
    assert rows(frame, "group", "targeted", "converted") == [("35-44", 2, 1), ("unknown", 1, 1)]
    assert [c["code"] for c in frame.attrs["campaigns"]] == ["SPRING", "LATEMAR"]
    assert rows(shop.response("age_band", campaign_id=winter.id), "group", "targeted") == [
        ("unknown", 1)
    ]
    # Every campaign ever: three targetings of A and B, three conversions.
    everything = shop.response("age_band", start=None, end=None)
    assert audience.totals(everything)["targeted"] == 4
    assert audience.totals(everything)["converted"] == 3
    # No campaign in the period: no rows, a rate of nothing.
    empty = shop.response(start=date(2025, 1, 1), end=date(2025, 1, 31))
    assert empty.empty and audience.totals(empty)["conversion_pct"] is None


def test_bad_inputs_are_refused_with_a_reason(shop: Audience) -> None:
    with pytest.raises(ValidationFailed, match="not a dimension"):
        shop.profile("shoe_size")
    with pytest.raises(ValidationFailed, match="is after To"):
        shop.profile(start=date(2026, 4, 1), end=date(2026, 3, 1))
    with pytest.raises(ValidationFailed, match="From"):
        shop.response(start=date(1800, 1, 1))
    with pytest.raises(NotFound, match="No campaign #99999"):
        shop.response(campaign_id=99999)


def test_sorting_keeps_unknown_last_and_empty_figures_after(shop: Audience) -> None:
    for name, region in (("A", "b-town"), ("B", "A-town"), ("C", None), ("D", "A-town")):
        shop.member(name, region=region)
    shop.db.commit()
    frame = shop.profile()
    assert list(audience.sorted_frame(frame, "group")["group"]) == ["A-town", "b-town", "unknown"]
    assert list(audience.sorted_frame(frame, "group", descending=True)["group"]) == [
        "b-town",
        "A-town",
        "unknown",
    ]
    assert list(audience.sorted_frame(frame, "members")["group"]) == ["b-town", "A-town", "unknown"]
    with pytest.raises(ValidationFailed):
        audience.sorted_frame(frame, "nope")


def test_csv_and_xlsx_hold_the_rows_and_the_total(shop: Audience) -> None:
    shop.member("A", region="=HYPERLINK(1)")
    buyer = shop.member("B", region="North")
    shop.buy(buyer, "12.50", at=utc("2026-03-05 04:00"))
    shop.db.commit()
    frame = shop.profile()
    text = audience.to_csv(frame).decode("utf-8-sig").splitlines()
    assert text[0].startswith("Region,Members,Share of members %,Purchasing members,Revenue")
    # Equal counts go by name; a name that looks like a formula opens as text.
    assert text[1].startswith("'=HYPERLINK(1),1,50.00,0,0.00")
    assert text[2].startswith("North,1,50.00,1,12.50,100.00,12.50")
    assert text[3].startswith("Total,2,100.00,1,12.50,100.00,6.25")

    from io import BytesIO

    from openpyxl import load_workbook

    book = load_workbook(BytesIO(audience.to_xlsx(frame, ["Audience by region"])))
    sheet = book.active
    assert sheet is not None
    assert sheet["A1"].value == "Audience by region"
    assert [c.value for c in sheet[3]][:3] == ["Region", "Members", "Share of members %"]
    assert sheet["A4"].value == "'=HYPERLINK(1)"
    north = [c.value for c in sheet[5]]
    assert north[:2] == ["North", 1] and D(str(north[4])) == D("12.5")
    assert sheet.cell(5, 3).number_format == "0.00%" and sheet.cell(5, 3).value == 0.5
    assert [c.value for c in sheet[6]][:2] == ["Total", 2]
