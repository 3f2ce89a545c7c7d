"""The previous period and the comparison (campaigns/report_periods.py, campaigns/comparison.py):
pure functions over dates and over two reports, checked against numbers worked out by hand.

Two reports built from frames (base currency CNY, all receipts approved):

  April (this period)     SPRING cost 2,500  revenue 8,000 (40 orders)   ratio 3.20  ROI 220.0%
                          LONG   cost 0      revenue   300               ratio —     ROI —
                          Total  cost 2,500  revenue 8,300               ratio 3.32  ROI 232.0%
  March (previous period) SPRING cost 2,000  revenue 5,000               ratio 2.50  ROI 150.0%
                          EXPO   cost 1,000  revenue   500               ratio 0.50  ROI −50.0%
                          Total  cost 3,000  revenue 5,500               ratio 1.83  ROI  83.3%
Changes: SPRING cost +500.00, revenue +3,000.00, ratio +0.70, ROI +70.0 pp; LONG is in April
only, EXPO in March only; Total cost −500.00, revenue +2,800.00, ratio 3.32 − 1.83 = +1.49,
ROI 232.0 − 83.3 = +148.7 pp.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from campaigns import report_periods
from campaigns.comparison import (
    NOT_IN_CURRENT,
    NOT_IN_PREVIOUS,
    Comparison,
    compare,
    display_change,
)
from campaigns.report_periods import Period, preset, presets, previous
from campaigns.reports import GroupBy, RoiReport, roi_report

D = Decimal
APRIL = Period(date(2026, 4, 1), date(2026, 4, 30))
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))

CAMPAIGNS = {
    1: ("SPRING", "Spring sale", "WeChat", "Ann", "10000"),
    2: ("EXPO", "Trade expo", "Offline event", "Bob", "5000"),
    3: ("LONG", "Long tail", "Email", "Ann", "0"),
}


def frames(
    ids: list[int],
    costs: list[tuple[int, date, str]],
    income: list[tuple[int, date, str, int | None]],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    campaigns = pd.DataFrame(
        [
            {
                "campaign_id": i,
                "code": CAMPAIGNS[i][0],
                "name": CAMPAIGNS[i][1],
                "channel": CAMPAIGNS[i][2],
                "owner": CAMPAIGNS[i][3],
                "status": "active",
                "budget": D(CAMPAIGNS[i][4]),
            }
            for i in ids
        ]
    )
    cost = pd.DataFrame(
        [
            {
                "campaign_id": i,
                "day": day,
                "status": "approved",
                "category": "media",
                "amount": D(a),
            }
            for i, day, a in costs
        ],
        columns=["campaign_id", "day", "status", "category", "amount"],
    )
    revenue = pd.DataFrame(
        [{"campaign_id": i, "day": day, "amount": D(a), "orders": o} for i, day, a, o in income],
        columns=["campaign_id", "day", "amount", "orders"],
    )
    revenue["orders"] = revenue["orders"].astype("Int64")
    return campaigns, cost, revenue


def april(group_by: GroupBy = "campaign") -> RoiReport:
    return roi_report(
        *frames(
            [1, 3],
            [(1, date(2026, 4, 3), "2500")],
            [(1, date(2026, 4, 9), "8000", 40), (3, date(2026, 4, 20), "300", None)],
        ),
        group_by=group_by,
    )


def march(group_by: GroupBy = "campaign") -> RoiReport:
    return roi_report(
        *frames(
            [1, 2],
            [(1, date(2026, 3, 3), "2000"), (2, date(2026, 3, 12), "1000")],
            [(1, date(2026, 3, 9), "5000", 20), (2, date(2026, 3, 22), "500", 3)],
        ),
        group_by=group_by,
    )


def compared(group_by: GroupBy = "campaign") -> Comparison:
    return compare(
        april(group_by),
        march(group_by),
        APRIL,
        MARCH,
        months_apart=report_periods.months_apart(APRIL, MARCH),
    )


# --- periods ----------------------------------------------------------------------------------


def test_presets_on_a_fixed_day() -> None:
    today = date(2026, 5, 14)
    assert {name: (p.start, p.end) for name, p in presets(today)} == {
        "this_month": (date(2026, 5, 1), date(2026, 5, 31)),
        "last_month": (date(2026, 4, 1), date(2026, 4, 30)),
        "this_quarter": (date(2026, 4, 1), date(2026, 6, 30)),
        "last_quarter": (date(2026, 1, 1), date(2026, 3, 31)),
        "year_to_date": (date(2026, 1, 1), date(2026, 5, 14)),
        "last_year": (date(2025, 1, 1), date(2025, 12, 31)),
    }


def test_presets_across_the_new_year_and_in_february() -> None:
    january = date(2026, 1, 15)
    assert preset("last_month", january) == Period(date(2025, 12, 1), date(2025, 12, 31))
    assert preset("this_quarter", january) == Period(date(2026, 1, 1), date(2026, 3, 31))
    assert preset("last_quarter", january) == Period(date(2025, 10, 1), date(2025, 12, 31))
    assert preset("year_to_date", january) == Period(date(2026, 1, 1), january)
    assert preset("this_month", date(2024, 2, 10)) == Period(date(2024, 2, 1), date(2024, 2, 29))
    assert preset("last_quarter", date(2026, 12, 31)) == Period(date(2026, 7, 1), date(2026, 9, 30))


@pytest.mark.parametrize(
    ("start", "end", "before"),
    [
        # whole calendar months: the same number of months before
        ("2026-03-01", "2026-03-31", ("2026-02-01", "2026-02-28")),
        ("2024-03-01", "2024-03-31", ("2024-02-01", "2024-02-29")),
        ("2026-04-01", "2026-06-30", ("2026-01-01", "2026-03-31")),
        ("2025-01-01", "2025-12-31", ("2024-01-01", "2024-12-31")),
        ("2026-02-01", "2026-03-31", ("2025-12-01", "2026-01-31")),
        # anything else: as many days, ending the day before
        ("2026-03-10", "2026-03-19", ("2026-02-28", "2026-03-09")),
        ("2026-01-01", "2026-05-14", ("2025-08-20", "2025-12-31")),  # year to date: 134 days
        ("2026-03-15", "2026-03-15", ("2026-03-14", "2026-03-14")),
    ],
)
def test_the_previous_period(start: str, end: str, before: tuple[str, str]) -> None:
    period = Period(date.fromisoformat(start), date.fromisoformat(end))
    got = previous(period)
    assert (got.start.isoformat(), got.end.isoformat()) == before
    if report_periods.whole_months(period) is None:
        assert got.days == period.days


def test_a_period_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Period(date(2026, 4, 2), date(2026, 4, 1))


def test_months() -> None:
    assert report_periods.month_period("2024-02") == Period(date(2024, 2, 1), date(2024, 2, 29))
    assert report_periods.shift_month("2026-01", -1) == "2025-12"
    assert report_periods.shift_month("2025-12", 1) == "2026-01"
    assert report_periods.months_apart(APRIL, MARCH) == 1


# --- the comparison ---------------------------------------------------------------------------


def test_rows_are_joined_and_changed_by_hand() -> None:
    comparison = compared()
    codes = [r.key["code"] for r in comparison.rows]
    assert codes == ["LONG", "SPRING", "EXPO"]  # April's order, then March's rows alone
    spring = comparison.rows[1]
    assert spring.current is not None and spring.previous is not None
    assert spring.previous_value("revenue") == D("5000.00")
    expected = {
        "approved_cost": D("500.00"),
        "revenue": D("3000.00"),
        "io_ratio": D("0.70"),  # 3.20 − 2.50
        "roi_pct": D("70.0"),  # 220.0% − 150.0%: percentage points
    }
    assert {c: spring.change(c) for c in expected} == expected
    assert spring.figure("revenue_change") == D("3000.00")
    assert spring.figure("roi_pct_previous") == D("150.0")
    assert spring.why_missing("revenue_change") is None
    assert spring.display("revenue_change") == "+3,000.00"
    assert spring.display("roi_pct_change") == "+70.0 pp"
    assert spring.display("io_ratio_previous") == "1 : 2.50"
    assert spring.campaign_id == 1


def test_a_row_in_one_period_only_says_so() -> None:
    comparison = compared()
    long_tail, expo = comparison.rows[0], comparison.rows[2]
    assert long_tail.previous is None
    assert long_tail.display("revenue") == "300.00"
    assert long_tail.display("revenue_previous") == "—"
    assert long_tail.why_missing("revenue_previous") == NOT_IN_PREVIOUS
    assert long_tail.change("revenue") is None
    assert long_tail.why_missing("revenue_change") == NOT_IN_PREVIOUS
    # LONG has no cost in April: its ratio is missing for that reason first.
    assert long_tail.why_missing("io_ratio_change") == (
        "No approved cost yet, so there is no ratio."
    )

    assert expo.current is None and expo.campaign_id == 2
    assert expo.display("revenue") == "—"
    assert expo.why_missing("revenue") == NOT_IN_CURRENT
    assert expo.display("approved_cost_previous") == "1,000.00"
    assert expo.display("roi_pct_previous") == "-50.0%"
    assert expo.why_missing("approved_cost_change") == NOT_IN_CURRENT
    assert expo.figure("approved_cost") is None


def test_a_figure_missing_in_the_previous_period_names_the_period() -> None:
    current = april()
    earlier = roi_report(
        *frames([1, 3], [], [(1, date(2026, 3, 9), "5000", 20)]), group_by="campaign"
    )  # no cost in March
    spring = compare(current, earlier, APRIL, MARCH).rows[1]
    assert spring.change("revenue") == D("3000.00")
    assert spring.change("approved_cost") == D("2500.00")
    assert spring.change("io_ratio") is None
    assert spring.why_missing("io_ratio_change") == (
        "Previous period: No approved cost yet, so there is no ratio."
    )
    assert spring.why_missing("roi_pct_previous") == (
        "Previous period: No approved cost yet, so ROI cannot be computed."
    )


def test_the_total() -> None:
    total = compared().total
    assert total.key == {"code": "Total"}
    assert total.previous_value("approved_cost") == D("3000.00")
    assert total.previous_value("io_ratio") == D("1.83")
    assert total.previous_value("roi_pct") == D("83.3")
    assert {c: total.change(c) for c in ("approved_cost", "revenue", "io_ratio", "roi_pct")} == {
        "approved_cost": D("-500.00"),
        "revenue": D("2800.00"),
        "io_ratio": D("1.49"),
        "roi_pct": D("148.7"),
    }
    assert total.display("approved_cost_change") == "−500.00"
    assert total.display("roi_pct_change") == "+148.7 pp"


def test_months_are_matched_by_their_place_in_the_period() -> None:
    comparison = compared("month")
    assert [(r.key["month"], r.previous and r.previous.key["month"]) for r in comparison.rows] == [
        ("2026-04", "2026-03")
    ]
    assert comparison.rows[0].change("revenue") == D("2800.00")


def test_channels_are_matched_by_name() -> None:
    comparison = compared("channel")
    by_channel = {r.key["channel"]: r for r in comparison.rows}
    assert set(by_channel) == {"Email", "WeChat", "Offline event"}
    assert by_channel["WeChat"].change("revenue") == D("3000.00")
    assert by_channel["Offline event"].current is None


def test_reports_grouped_differently_are_not_compared() -> None:
    with pytest.raises(ValueError, match="grouped the same way"):
        compare(april("campaign"), march("channel"), APRIL, MARCH)


def test_sorting_a_comparison_puts_rows_without_a_change_last() -> None:
    comparison = compared()
    down = comparison.sorted("revenue_change", descending=True)
    assert [r.key["code"] for r in down.rows] == ["SPRING", "LONG", "EXPO"]
    by_previous = comparison.sorted("approved_cost_previous")
    assert [r.key["code"] for r in by_previous.rows] == ["EXPO", "SPRING", "LONG"]
    assert down.total == comparison.total


@pytest.mark.parametrize(
    ("column", "change", "shown"),
    [
        ("revenue", D("1234.5"), "+1,234.50"),
        ("approved_cost", D("-20.00"), "−20.00"),
        ("roi_pct", D("-3.4"), "−3.4 pp"),
        ("roi_pct", D("0.0"), "0.0 pp"),
        ("io_ratio", D("0.07"), "+0.07"),
        ("revenue", None, "—"),
    ],
)
def test_display_change(column: str, change: Any, shown: str) -> None:
    assert display_change(column, change) == shown
