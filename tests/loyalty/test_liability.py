"""The points liability's pure rules: IFRS 15 Illustrative Example 52, allocation, redemption
curves, catch-up, breakage, refunds, the current portion and the journal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty import liability
from loyalty.liability import allocate

D = Decimal
Y1, Y2, Y3 = date(2021, 1, 1), date(2021, 2, 1), date(2021, 3, 1)
ZERO_FLOW = {"issued": 0, "redeemed": 0, "expired": 0, "forfeited": 0, "reversed": 0, "settled": 0}


def flow(cohort: date, month: date, **moves: int) -> dict[str, Any]:
    return {"cohort": cohort, "month": month, **ZERO_FLOW, **moves}


def ledger_of(flows: Sequence[dict[str, Any]], sales: dict[date, Decimal]) -> pd.DataFrame:
    """Month facts for flows without owed points: the ledger says what the lots say."""
    months = sorted({f["month"] for f in flows} | set(sales))
    first, last = months[0], months[-1]
    every = []
    at = first
    while at <= last:
        every.append(at)
        at = date(at.year + at.month // 12, at.month % 12 + 1, 1)
    rows, balance = [], 0
    for month in every:
        here = [f for f in flows if f["month"] == month]
        sums = {k: sum(f[k] for f in here) for k in ZERO_FLOW}
        reversed_ = sums["reversed"] + sums["settled"]
        moved = sums["issued"] - sums["redeemed"] - sums["expired"] - reversed_ - sums["forfeited"]
        rows.append(
            {
                "month": month,
                "opening": balance,
                "issued": sums["issued"],
                "sold": sums["issued"],
                "sales": sales.get(month, D(0)),
                "redeemed": sums["redeemed"],
                "expired": sums["expired"],
                "reversed": reversed_,
                "forfeited": sums["forfeited"],
                "closing": balance + moved,
            }
        )
        balance += moved
    return pd.DataFrame(rows)


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


# --- IFRS 15 Illustrative Example 52 ----------------------------------------------------


def example_52() -> tuple[pd.DataFrame, pd.DataFrame, dict[date, Decimal]]:
    """Sales 100,000 earning 10,000 points (value 1 each), 9,500 expected to be redeemed;
    4,500 redeemed in year 1; 4,000 more in year 2, when 9,700 are expected in all. The
    years are the periods here (months to the roll-forward)."""
    flows = [flow(Y1, Y1, issued=10_000, redeemed=4_500), flow(Y1, Y2, redeemed=4_000)]
    return ledger_of(flows, {Y1: D(100_000)}), pd.DataFrame(flows), {Y1: D("0.95"), Y2: D("0.97")}


def test_example_52_allocation() -> None:
    ssp = liability.points_ssp(10_000, D(1), D("0.95"))
    assert ssp == D(9_500)  # the likelihood of redemption is in the points' SSP
    assert allocate(D(100_000), ssp, D(100_000), places=0) == (D(91_324), D(8_676))


def test_example_52_year_by_year() -> None:
    months, flows, rates = example_52()
    allocated = liability.allocated_values(months, D(1), rates, places=0)
    assert allocated == {Y1: D(8_676), Y2: D(0)}
    year1, year2 = rows_of(liability.roll_forward(months, flows, rates, allocated, places=0))

    assert year1["issued_value"] == D(8_676)
    assert year1["revenue"] == year1["redeemed_value"] == D(4_110)  # 8,676 × 4,500 ÷ 9,500
    assert year1["closing_value"] == D(4_566)
    assert year1["closing_points"] == 5_500 and year1["expected_points"] == 5_000

    # 8,676 × 8,500 ÷ 9,700 = 7,603 recognised to date, less 4,110 recognised before
    assert year2["revenue"] == D(3_493)
    assert year2["catch_up_value"] == D(-85)  # 8,676 × 4,500 ÷ 9,700 = 4,025 − 4,110
    assert year2["redeemed_value"] == D(3_578)
    assert year2["breakage_value"] == D(0)
    assert year2["closing_value"] == D(1_073)
    assert year2["closing_points"] == 1_500 and year2["expected_points"] == 1_200
    assert year2["expected_rate"] == D("0.97")


def test_example_52_journal() -> None:
    months, flows, rates = example_52()
    allocated = liability.allocated_values(months, D(1), rates, places=0)
    frame = liability.roll_forward(months, flows, rates, allocated, places=0)
    journal = liability.journal_lines(frame)
    lines = [
        (row["date"], row["entry"], row["kind"], row["account"], row["debit"], row["credit"])
        for row in rows_of(journal)
    ]
    cl, sales = liability.CONTRACT_LIABILITY, liability.SALES_REVENUE
    redeemed = liability.REDEMPTION_REVENUE
    jan, feb = date(2021, 1, 31), date(2021, 2, 28)
    assert lines == [
        (jan, "LOY-2021-01-01", "issue", sales, D(8_676), D(0)),
        (jan, "LOY-2021-01-01", "issue", cl, D(0), D(8_676)),
        (jan, "LOY-2021-01-02", "redeem", cl, D(4_110), D(0)),
        (jan, "LOY-2021-01-02", "redeem", redeemed, D(0), D(4_110)),
        (feb, "LOY-2021-02-01", "redeem", cl, D(3_578), D(0)),
        (feb, "LOY-2021-02-01", "redeem", redeemed, D(0), D(3_578)),
        # the negative catch-up: revenue recognised before is taken back
        (feb, "LOY-2021-02-02", "catch_up", redeemed, D(85), D(0)),
        (feb, "LOY-2021-02-02", "catch_up", cl, D(0), D(85)),
    ]


# --- Allocation ---------------------------------------------------------------------------


@given(
    price=st.decimals(min_value=0, max_value=10**9, places=4),
    points=st.decimals(min_value=0, max_value=10**7, places=4),
    goods=st.decimals(min_value=0, max_value=10**9, places=4),
    places=st.sampled_from([0, 2, 3]),
)
def test_allocation_parts_add_up_to_the_price(
    price: Decimal, points: Decimal, goods: Decimal, places: int
) -> None:
    if points + goods == 0:
        return
    split = allocate(price, points, goods, places=places)
    assert split.goods + split.points == liability.rounded(price, places)
    assert split.points == split.points.quantize(liability.quantum(places))
    exact = price * points / (points + goods)
    assert abs(split.points - exact) <= liability.quantum(places) / 2


def test_allocation_edges() -> None:
    assert allocate(D(100), D(0), D(100)) == (D("100.00"), D("0.00"))
    assert allocate(D(100), D(5), D(0)) == (D("0.00"), D("100.00"))
    assert allocate(D(0), D(0), D(0)) == (D("0.00"), D("0.00"))
    assert allocate(D("10.01"), D(1), D(1)) == (D("5.00"), D("5.01"))  # half up, rest to goods
    assert allocate(D("10.005"), D(1), D(1)) == (D("5.01"), D("5.00"))  # the price rounds too
    with pytest.raises(ValueError, match="negative"):
        allocate(D(100), D(-1), D(100))
    with pytest.raises(ValueError, match="cannot be allocated"):
        allocate(D(100), D(0), D(0))


# --- Redemption curves ------------------------------------------------------------------

# Three issue months valued at the end of the third: Jan issued 1,000 and redeemed 100, 300,
# 100 at ages 0, 1, 2; Feb issued 2,000 and redeemed 400, 400; Mar issued 1,000, nothing yet.
TRIANGLE = [
    flow(Y1, Y1, issued=1_000, redeemed=100),
    flow(Y1, Y2, redeemed=300),
    flow(Y1, Y3, redeemed=100),
    flow(Y2, Y2, issued=2_000, redeemed=400),
    flow(Y2, Y3, redeemed=400),
    flow(Y3, Y3, issued=1_000),
    flow(Y1, date(2021, 4, 1), redeemed=999),  # after the valuation month: not known yet
]


def test_additive_curve_on_a_hand_made_triangle() -> None:
    made = liability.estimate(pd.DataFrame(TRIANGLE), Y3, method="additive")
    assert made is not None
    # Shares redeemed at each age: 500 ÷ 4,000; 700 ÷ 3,000; 100 ÷ 1,000.
    assert made.increments == (D("0.125"), D(700) / D(3_000), D("0.1"))
    assert made.curve[-1] == D("0.125") + D(700) / D(3_000) + D("0.1")
    ultimates = [c.ultimate for c in made.cohorts]
    assert ultimates[0] == 500  # Jan is as old as the curve
    assert ultimates[1] == 800 + 2_000 * D("0.1")
    assert ultimates[2] == 1_000 * (D(700) / D(3_000) + D("0.1"))  # nothing yet, still expected
    assert made.issued == 4_000
    assert made.rate == D("0.4583")  # 1,833.33 ÷ 4,000
    assert [c.age for c in made.cohorts] == [2, 1, 0]
    assert "Additive development" in made.describe() and "45.83%" in made.describe()


def test_chain_ladder_on_the_same_triangle() -> None:
    made = liability.estimate(pd.DataFrame(TRIANGLE), Y3, method="chain_ladder")
    assert made is not None
    # Cumulative: Jan 100, 400, 500; Feb 400, 800; Mar 0.
    assert made.factors == (D("2.4"), D("1.25"))  # 1,200 ÷ 500; 500 ÷ 400
    assert [c.ultimate for c in made.cohorts] == [500, 1_000, 0]  # Mar: 0 × 3 = 0
    assert made.rate == D("0.375")  # 1,500 ÷ 4,000
    assert made.curve == (D("0.125"), D("0.3"), D("0.375"))  # rate ÷ cumulative factor
    # The liability does not take Mar to redeem nothing: redeemed + issued × what is still
    # expected at its age (Bornhuetter–Ferguson on the chain-ladder curve).
    assert made.cohorts[2].expected == 1_000 * (D("0.375") - D("0.125"))
    assert "Chain ladder" in made.describe()


def test_refunds_come_off_the_points_issued() -> None:
    rows = [
        flow(Y1, Y1, issued=1_000, redeemed=200, reversed=100),
        flow(Y1, Y2, redeemed=100, settled=100),
    ]
    made = liability.estimate(pd.DataFrame(rows), Y2)
    assert made is not None
    assert made.cohorts[0].issued == 800
    assert made.rate == D("0.375")  # 300 ÷ 800


def test_no_estimate_without_points() -> None:
    assert liability.estimate(pd.DataFrame(TRIANGLE), date(2020, 12, 1)) is None
    empty = pd.DataFrame(columns=list(liability.FLOW_COLUMNS))
    assert liability.estimate(empty, Y1) is None
    with pytest.raises(ValueError, match="unknown method"):
        liability.estimate(empty, Y1, method="guess")  # type: ignore[arg-type]


def test_expected_rates_fall_back_until_there_is_history() -> None:
    rates = liability.expected_rates(
        pd.DataFrame(TRIANGLE), [Y1, Y2, Y3], min_history=2, fallback=D("0.9")
    )
    assert [(e.rate, e.estimated) for e in rates.values()] == [
        (D("0.9"), False),
        (D("0.9"), False),
        (D("0.4583"), True),
    ]
    last = rates[Y3].estimate
    assert last is not None and last.as_of == Y3


# --- Catch-up, breakage, refunds --------------------------------------------------------


def test_a_lower_rate_catches_up_revenue_already_recognised() -> None:
    flows = [flow(Y1, Y1, issued=1_000, redeemed=400), flow(Y1, Y2, redeemed=100)]
    months = ledger_of(flows, {Y1: D(10_000)})
    rates = {Y1: D("1.0"), Y2: D("0.8")}
    allocated = {Y1: D(1_000)}
    first, second = rows_of(
        liability.roll_forward(months, pd.DataFrame(flows), rates, allocated, places=2)
    )
    assert first["revenue"] == D(400)  # 1,000 × 400 ÷ 1,000
    # Fewer redemptions expected: the 400 redeemed before are now worth 1,000 × 400 ÷ 800.
    assert second["catch_up_value"] == D(100)
    assert second["redeemed_value"] == D(125)  # 1,000 × 500 ÷ 800 − 500
    assert second["closing_value"] == D(375)  # 1,000 × (800 − 500) ÷ 800
    assert second["revenue"] == second["catch_up_value"] + second["redeemed_value"]


def test_expiry_beyond_expectation_is_breakage_and_a_closed_cohort_releases_all() -> None:
    flows = [
        flow(Y1, Y1, issued=1_000, redeemed=400),
        flow(Y1, Y2, expired=500),
        flow(Y1, Y3, expired=100),
    ]
    months = ledger_of(flows, {Y1: D(10_000)})
    rates = dict.fromkeys((Y1, Y2, Y3), D("0.8"))
    one, two, three = rows_of(
        liability.roll_forward(months, pd.DataFrame(flows), rates, {Y1: D(1_000)}, places=2)
    )
    assert one["revenue"] == D(500) and one["expected_points"] == 400
    # 100 points left can be redeemed at most: expected 500 in all, not 800.
    assert two["breakage_value"] == D(300) and two["catch_up_value"] == 0
    assert two["closing_value"] == D(200) and two["expected_points"] == 100
    assert three["breakage_value"] == D(200) and three["closing_value"] == 0
    assert three["closing_points"] == 0


def test_a_refund_takes_the_points_value_back() -> None:
    flows = [flow(Y1, Y1, issued=1_000, reversed=100), flow(Y1, Y2, redeemed=450)]
    months = ledger_of(flows, {Y1: D(10_000)})
    rates = {Y1: D("0.9"), Y2: D("0.9")}
    one, two = rows_of(
        liability.roll_forward(months, pd.DataFrame(flows), rates, {Y1: D(900)}, places=2)
    )
    assert one["reversed_value"] == D(90) and one["revenue"] == 0
    assert one["closing_value"] == D(810) and one["expected_points"] == 810
    assert two["revenue"] == D(450)  # 810 × 450 ÷ 810: 900 × 0.9 issued points expected
    assert two["catch_up_value"] == 0


def test_points_given_without_a_sale_carry_no_value() -> None:
    (row,) = rows_of(ledger_of([flow(Y1, Y1, issued=1_100)], {Y1: D(10_000)}))
    months = pd.DataFrame([{**row, "sold": 1_000}])  # 100 of the 1,100 were a sign-up bonus
    allocated = liability.allocated_values(months, D("0.5"), {Y1: D(1)}, places=2)
    # Only the 1,000 points sold count: SSP 500 against goods 10,000.
    assert allocated == {Y1: allocate(D(10_000), D(500), D(10_000)).points}


# --- The current portion ----------------------------------------------------------------


def straight_curve(as_of: date, months: int = 24, each: str = "0.03") -> liability.Estimate:
    step = D(each)
    curve = tuple(step * (k + 1) for k in range(months))
    return liability.Estimate(
        method="additive",
        as_of=as_of,
        increments=(step,) * months,
        factors=(None,) * (months - 1),
        curve=curve,
        cohorts=(),
        issued=0,
        ultimate=D(0),
        rate=curve[-1],
    )


def test_the_current_portion_follows_the_curve() -> None:
    curve = straight_curve(Y1)
    assert curve.still_expected(0) == D("0.69")
    assert curve.share_within(0) == D("0.36") / D("0.69")
    assert curve.share_within(11) == 1  # every later age is within 12 months
    assert curve.share_within(40) == 1

    flows = [flow(Y1, Y1, issued=1_000, redeemed=30)]
    months = ledger_of(flows, {Y1: D(10_000)})
    (row,) = rows_of(
        liability.roll_forward(
            months,
            pd.DataFrame(flows),
            {Y1: curve.rate},
            {Y1: D(690)},
            places=2,
            curves={Y1: curve},
        )
    )
    # Expected in all: 30 + 1,000 × 0.69 = 720; recognised 690 × 30 ÷ 720 = 28.75.
    assert row["expected_points"] == 690 and row["current_points"] == 360
    assert row["closing_value"] == D("661.25")
    assert row["current_value"] == D("345.00")  # 661.25 × 12 ÷ 23
    assert row["non_current_value"] == D("316.25")


def test_without_a_curve_all_is_current() -> None:
    months, flows, rates = example_52()
    frame = liability.roll_forward(months, flows, rates, {Y1: D(8_676)}, places=0)
    assert list(frame["current_value"]) == list(frame["closing_value"])
    assert list(frame["non_current_value"]) == [0, 0]


# --- Checks on the input ------------------------------------------------------------------


def test_flows_must_tell_the_ledgers_story() -> None:
    months, flows, rates = example_52()
    wrong = flows.copy()
    wrong.loc[1, "redeemed"] = 3_999
    with pytest.raises(ValueError, match="redeemed"):
        liability.roll_forward(months, wrong, rates, {}, places=0)
    with pytest.raises(ValueError, match="no expected redemption rate"):
        liability.roll_forward(months, flows, {Y1: D(1)}, {}, places=0)
    with pytest.raises(ValueError, match="consecutive"):
        liability.roll_forward(months.iloc[[0, 0]], flows, rates, {}, places=0)
    with pytest.raises(ValueError, match="opening points"):
        liability.roll_forward(months.iloc[[1]], flows, rates, {}, places=0)
    with pytest.raises(ValueError, match="outside the months"):
        liability.roll_forward(months.iloc[[0]], flows, rates, {Y1: D(8_676)}, places=0)
    with pytest.raises(ValueError, match="not in"):
        liability.roll_forward(months, flows, {Y1: D(2), Y2: D(1)}, {}, places=0)
    too_many = pd.DataFrame([flow(Y1, Y1, issued=10_000, redeemed=4_500, expired=6_000)])
    ledger = ledger_of([flow(Y1, Y1, issued=10_000, redeemed=4_500, expired=6_000)], {})
    with pytest.raises(ValueError, match="more points left"):
        liability.roll_forward(ledger, too_many, {Y1: D(1)}, {}, places=0)


# --- Properties ---------------------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[date, Decimal], int]:
    """Random cohorts over a year: issues, redemptions, expiry, forfeits and refunds, each
    a share of what the cohort still holds, with random rates; the last month expires all."""
    count = draw(st.integers(min_value=1, max_value=12))
    months = [date(2022, m, 1) for m in range(1, count + 1)] + [date(2023, 1, 1)]
    held: dict[date, int] = {}
    flows: list[dict[str, Any]] = []
    for i, month in enumerate(months):
        last = i == len(months) - 1
        for cohort in list(held):
            left = held[cohort]
            moves = {}
            for name in ("redeemed", "forfeited", "reversed", "settled"):
                take = 0 if last else draw(st.integers(min_value=0, max_value=left))
                moves[name] = take
                left -= take
            moves["expired"] = left if last else draw(st.integers(min_value=0, max_value=left))
            left -= moves["expired"]
            held[cohort] = left
            if any(moves.values()):
                flows.append(flow(cohort, month, **moves))
        if not last:
            issued = draw(st.integers(min_value=0, max_value=5_000))
            if issued:
                held[month] = issued
                flows.append(flow(month, month, issued=issued))
    rates = {m: draw(st.decimals(min_value=D("0.3"), max_value=1, places=2)) for m in months}
    return flows, rates, draw(st.sampled_from([0, 2]))


@settings(max_examples=100, deadline=None)
@given(histories())
def test_the_roll_forward_always_adds_up(
    history: tuple[list[dict[str, Any]], dict[date, Decimal], int],
) -> None:
    flows, rates, places = history
    if not flows:
        return
    sales = {f["month"]: D(f["issued"] * 10) for f in flows if f["issued"]}
    months = ledger_of(flows, sales)
    rates = {liability.month_of(m): rates.get(liability.month_of(m), D(1)) for m in months["month"]}
    allocated = liability.allocated_values(months, D("0.05"), rates, places=places)
    frame = liability.roll_forward(months, pd.DataFrame(flows), rates, allocated, places=places)
    rows = rows_of(frame)
    for row in rows:
        assert row["closing_value"] == (
            row["opening_value"] + row["issued_value"] - row["reversed_value"] - row["revenue"]
        )
        assert row["revenue"] == (
            row["redeemed_value"] + row["catch_up_value"] + row["breakage_value"]
        )
        assert row["closing_value"] >= 0 and row["reversed_value"] >= 0
        assert row["redeemed_value"] >= 0 and row["breakage_value"] >= 0
        assert row["owed_points"] == 0 and row["held_points"] == row["closing_points"]
    # Everything expired at the end: all value deferred went to revenue or back to sales.
    assert rows[-1]["closing_value"] == 0
    issued = sum(r["issued_value"] for r in rows)
    assert issued == sum(r["revenue"] + r["reversed_value"] for r in rows)

    journal = liability.journal_lines(frame)
    assert sum(journal["debit"]) == sum(journal["credit"])
    for row in rows:
        lines = rows_of(journal[journal["entry"].str.startswith(f"LOY-{row['month']:%Y-%m}")])
        by_account: dict[str, Decimal] = {}
        for line in lines:
            by_account[line["account"]] = (
                by_account.get(line["account"], D(0)) + line["credit"] - line["debit"]
            )
        assert by_account.get(liability.CONTRACT_LIABILITY, 0) == (
            row["closing_value"] - row["opening_value"]
        )
        revenue = by_account.get(liability.REDEMPTION_REVENUE, 0) + by_account.get(
            liability.BREAKAGE_REVENUE, 0
        )
        assert revenue == row["revenue"]
        assert by_account.get(liability.SALES_REVENUE, 0) == (
            row["reversed_value"] - row["issued_value"]
        )
