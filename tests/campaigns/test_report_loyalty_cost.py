"""The ROI report with loyalty cost (issue 15): pure, over frames, checked by hand.

April, base currency CNY:

  SPRING  budget 10,000; receipts media 2,000 approved, creative 500 paid: approved 2,500,
          media 2,000; revenue 8,000 (40 orders); loyalty coupons 300.00 (04-05), bonus points
          150.50 (04-06), rewards 49.50 (05-02): 500.00, total cost 3,000.00
          ratio 8,000/3,000 = 2.67; ROI 5,000/3,000 = 166.7%; ROAS 8,000/2,000 = 4.00 (media
          only); profit 5,000.00; budget used 30.0%; cost per order 3,000/40 = 75.00
          (without loyalty cost: 3.20, 220.0%, 4.00, 5,500.00, 25.0%, 62.50)
  EXPO    budget 5,000; no receipts; revenue 500 (3 orders); coupons 800.00 (04-10): it gives
          away more than it brings in: ratio 500/800 = 0.63; ROI −300/800 = −37.5%;
          profit −300.00; budget used 16.0%; cost per order 266.67; ROAS "—" (no media)
          (without loyalty cost: no cost, so "—", and a profit of 500.00)
  LONG    budget 0; revenue 300 (orders unknown); no cost of any kind: ratios "—"
  Total   approved 2,500; loyalty 1,300.00; total 3,800.00; revenue 8,800; ratio 2.32;
          ROI 131.6%; ROAS 4.40; profit 5,000.00; budget used 3,800/15,000 = 25.3%;
          orders 43; cost per order 88.37
  By month: 2026-04 loyalty 1,250.50, 2026-05 loyalty 49.50 (the rewards' own day).
"""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from campaigns import exports
from campaigns.comparison import compare
from campaigns.report_periods import Period
from campaigns.reports import (
    BASE_COLUMNS,
    COLUMNS,
    LOYALTY_COLUMNS,
    WHY,
    WHY_TOTAL,
    GroupBy,
    RoiReport,
    roi_report,
    with_loyalty_costs,
)

D = Decimal
CAMPAIGNS = [
    (1, "SPRING", "Spring sale", "WeChat", "Ann", "10000"),
    (2, "EXPO", "Trade expo", "Offline event", "Bob", "5000"),
    (3, "LONG", "Long tail", "Email", "Ann", "0"),
]


def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    campaigns = pd.DataFrame(
        [
            {
                "campaign_id": i,
                "code": code,
                "name": name,
                "channel": channel,
                "owner": owner,
                "status": "active",
                "budget": D(budget),
            }
            for i, code, name, channel, owner, budget in CAMPAIGNS
        ]
    )
    costs = pd.DataFrame(
        [
            (1, date(2026, 4, 3), "approved", "media", D(2000)),
            (1, date(2026, 4, 4), "paid", "creative", D(500)),
        ],
        columns=["campaign_id", "day", "status", "category", "amount"],
    )
    revenue = pd.DataFrame(
        [
            (1, date(2026, 4, 9), D(8000), 40),
            (2, date(2026, 4, 12), D(500), 3),
            (3, date(2026, 4, 20), D(300), None),
        ],
        columns=["campaign_id", "day", "amount", "orders"],
    )
    revenue["orders"] = revenue["orders"].astype("Int64")
    return campaigns, costs, revenue


def loyalty(rows: list[tuple[int, date | None, str, str]] | None = None) -> pd.DataFrame:
    if rows is None:
        rows = [
            (1, date(2026, 4, 5), "300.00", "coupons"),
            (1, date(2026, 4, 6), "150.50", "bonus_points"),
            (1, date(2026, 5, 2), "49.50", "rewards"),
            (2, date(2026, 4, 10), "800.00", "coupons"),
        ]
    frame = pd.DataFrame(
        [(c, d, D(a), p) for c, d, a, p in rows],
        columns=["campaign_id", "day", "amount", "part"],
    )
    frame["amount"] = frame["amount"].astype(object)
    return frame


def report(group_by: GroupBy = "campaign", with_loyalty: bool = True) -> RoiReport:
    return roi_report(
        *frames(), group_by=group_by, loyalty_costs=loyalty() if with_loyalty else None
    )


def by_key(r: RoiReport) -> dict[str, dict[str, Any]]:
    return {next(iter(row.key.values())): row.values for row in [*r.rows, r.total]}


def test_loyalty_cost_joins_the_cost_and_every_ratio_on_cost_uses_the_total() -> None:
    rows = by_key(report())
    spring = rows["SPRING"]
    assert (spring["approved_cost"], spring["loyalty_cost"], spring["total_cost"]) == (
        D("2500.00"),
        D("500.00"),
        D("3000.00"),
    )
    assert (spring["coupons_cost"], spring["bonus_points_cost"], spring["rewards_cost"]) == (
        D("300.00"),
        D("150.50"),
        D("49.50"),
    )
    assert spring["io_ratio"] == D("2.67") and spring["roi_pct"] == D("166.7")
    assert spring["roas"] == D("4.00")  # media receipts only
    assert spring["profit"] == D("5000.00") and spring["budget_used_pct"] == D("30.0")
    assert spring["cost_per_order"] == D("75.00")
    total = rows["Total"]
    assert (total["approved_cost"], total["loyalty_cost"], total["total_cost"]) == (
        D("2500.00"),
        D("1300.00"),
        D("3800.00"),
    )
    assert (total["io_ratio"], total["roi_pct"], total["roas"]) == (
        D("2.32"),
        D("131.6"),
        D("4.40"),
    )
    assert (total["profit"], total["budget_used_pct"], total["orders"]) == (
        D("5000.00"),
        D("25.3"),
        43,
    )
    assert total["cost_per_order"] == D("88.37")


def test_a_campaign_that_gives_away_more_than_it_brings_in_shows_it() -> None:
    expo = by_key(report())["EXPO"]
    assert expo["total_cost"] == D("800.00") and expo["revenue"] == D("500.00")
    assert (expo["io_ratio"], expo["roi_pct"], expo["profit"]) == (
        D("0.63"),
        D("-37.5"),
        D("-300.00"),
    )
    assert expo["budget_used_pct"] == D("16.0") and expo["cost_per_order"] == D("266.67")
    assert expo["roas"] is None
    plain = by_key(report(with_loyalty=False))["EXPO"]
    assert (plain["io_ratio"], plain["roi_pct"], plain["profit"]) == (None, None, D("500.00"))


def test_without_it_the_report_is_todays() -> None:
    plain = report(with_loyalty=False)
    assert plain.columns == BASE_COLUMNS == tuple(COLUMNS) and not plain.loyalty_cost
    assert plain == roi_report(*frames())
    spring = by_key(plain)["SPRING"]
    assert "loyalty_cost" not in spring and "total_cost" not in spring
    assert (spring["io_ratio"], spring["roi_pct"], spring["profit"]) == (
        D("3.20"),
        D("220.0"),
        D("5500.00"),
    )
    assert (spring["budget_used_pct"], spring["cost_per_order"]) == (D("25.0"), D("62.50"))
    as_json = plain.as_json()
    assert list(as_json["total"]) == ["code", *COLUMNS]
    assert plain.headers == COLUMNS


def test_with_it_the_report_carries_its_columns() -> None:
    counted = report()
    assert counted.columns == LOYALTY_COLUMNS and counted.loyalty_cost
    assert list(counted.headers)[:4] == ["budget", "approved_cost", "loyalty_cost", "total_cost"]
    assert counted.headers["loyalty_cost"] == "Loyalty cost"
    row = next(r for r in counted.as_json()["rows"] if r["code"] == "SPRING")
    assert [k for k in row if k not in ("code", "name")] == [
        *LOYALTY_COLUMNS,
        "loyalty_cost_parts",
    ]
    assert row["loyalty_cost_parts"] == {
        "coupons": "300.00",
        "bonus_points": "150.50",
        "rewards": "49.50",
    }
    # A report made without it takes it later, the same as made with it.
    assert with_loyalty_costs(report(with_loyalty=False), loyalty()) == counted


def test_nothing_given_away_changes_no_figure_but_adds_the_columns() -> None:
    plain, empty = report(with_loyalty=False), roi_report(*frames(), loyalty_costs=loyalty([]))
    for before, after in zip([*plain.rows, plain.total], [*empty.rows, empty.total], strict=True):
        assert after.values["loyalty_cost"] == D("0.00")
        assert after.values["total_cost"] == before.values["approved_cost"]
        assert {c: after.values[c] for c in COLUMNS} == before.values


@pytest.mark.parametrize("group_by", ["campaign", "channel", "owner", "month"])
def test_rows_add_up_to_the_total(group_by: GroupBy) -> None:
    made = report(group_by)
    for column in ("loyalty_cost", "total_cost", "profit", "coupons_cost", "rewards_cost"):
        figures = [D(str(r.values[column])) for r in made.rows]
        assert sum(figures, D(0)) == made.total.values[column]


def test_by_month_each_loyalty_cost_counts_on_its_own_day() -> None:
    months = by_key(report("month"))
    assert months["2026-04"]["loyalty_cost"] == D("1250.50")
    assert months["2026-05"]["loyalty_cost"] == D("49.50")
    assert months["2026-05"]["approved_cost"] == D("0.00")
    with pytest.raises(ValueError, match="day"):
        roi_report(*frames(), group_by="month", loyalty_costs=loyalty([(1, None, "1", "coupons")]))


def test_why_a_figure_is_missing_names_the_total_cost() -> None:
    counted = report()
    long = next(r for r in counted.rows if r.key["code"] == "LONG")
    assert long.values["total_cost"] == D("0.00")
    assert long.why_missing("io_ratio") == WHY_TOTAL["io_ratio"]
    assert long.why_missing("roi_pct") == WHY_TOTAL["roi_pct"]
    assert long.why_missing("budget_used_pct") == WHY["budget_used_pct"]
    assert long.why_missing("cost_per_order") == WHY["cost_per_order"]  # no orders
    plain = next(r for r in report(with_loyalty=False).rows if r.key["code"] == "LONG")
    assert plain.why_missing("io_ratio") == WHY["io_ratio"]
    headers = dict(counted.notes())
    assert headers["Input-output ratio"] == [WHY_TOTAL["io_ratio"]]


def test_a_campaign_with_only_loyalty_cost_is_shown_when_campaigns_are_chosen_by_period() -> None:
    """`ran`: the campaigns that ran in the period. LONG did not, and has a document (revenue);
    EXPO did not and has only a loyalty cost: shown with it, not without."""
    campaigns, costs, revenue = frames()
    revenue = revenue[revenue["campaign_id"] != 2]
    plain = roi_report(campaigns, costs, revenue, ran={1})
    assert [r.key["code"] for r in plain.rows] == ["LONG", "SPRING"]
    counted = with_loyalty_costs(plain, loyalty())
    assert [r.key["code"] for r in counted.rows] == ["EXPO", "LONG", "SPRING"]
    assert counted.total.values["budget"] == D("15000.00")


def test_the_comparison_follows_the_columns() -> None:
    april, march = report(), roi_report(*frames(), loyalty_costs=loyalty([]))
    periods = (
        Period(date(2026, 4, 1), date(2026, 4, 30)),
        Period(date(2026, 3, 1), date(2026, 3, 31)),
    )
    comparison = compare(april, march, *periods)
    assert comparison.compared == (
        "approved_cost",
        "loyalty_cost",
        "total_cost",
        "revenue",
        "io_ratio",
        "roi_pct",
    )
    spring = next(r for r in comparison.rows if r.key["code"] == "SPRING")
    assert spring.change("loyalty_cost") == D("500.00")
    assert spring.display("total_cost_change") == "+500.00"
    with pytest.raises(ValueError, match="same columns"):
        compare(april, report(with_loyalty=False), *periods)
    plain = compare(report(with_loyalty=False), report(with_loyalty=False), *periods)
    assert plain.compared == ("approved_cost", "revenue", "io_ratio", "roi_pct")


AT = datetime(2026, 5, 14, 9, 5, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_the_exports_carry_the_columns_and_say_whether_loyalty_cost_is_included() -> None:
    header = exports.to_csv(report()).decode("utf-8-sig").splitlines()[0]
    assert header.startswith("Code,Name,Budget,Approved cost,Loyalty cost,Total cost,Paid cost,")
    plain = exports.to_csv(report(with_loyalty=False)).decode("utf-8-sig").splitlines()[0]
    assert plain.startswith("Code,Name,Budget,Approved cost,Paid cost,")
    title = exports.TitleBlock(start=None, end=None, filters=(), generated_at=AT)
    for made, line in (
        (report(), exports.loyalty_words(report())),
        (report(with_loyalty=False), "Loyalty cost: not included (cost is approved receipts only)"),
    ):
        sheet = load_workbook(io.BytesIO(exports.to_xlsx(made, None, title))).active
        assert isinstance(sheet, Worksheet)
        assert sheet.cell(5, 1).value == line
    assert exports.loyalty_words(report()).startswith("Loyalty cost: included in the total cost")
    sheet = load_workbook(io.BytesIO(exports.to_xlsx(report()))).active
    assert isinstance(sheet, Worksheet)
    headers = [c.value for c in sheet[1]]
    assert headers[4:7] == ["Loyalty cost", "Total cost", "Paid cost"]
    total = [c.value for c in sheet[sheet.max_row]]
    assert (
        total[4:6] == [D("1300.00"), D("3800.00")] and sheet.cell(2, 5).number_format == "#,##0.00"
    )
