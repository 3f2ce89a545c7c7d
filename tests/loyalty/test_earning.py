"""Table-driven tests of `loyalty.earning.earn`, the pure "what does this purchase earn" step.

Covered, each with hand-computed lines:

- base points (net base amount × earn rate, rounded down; zero-point lines dropped);
- the tier line (base × (multiplier − 1), rounded down; none at ×1);
- every kind of bonus rule: multiplier, fixed, channel, campaign (and its reason), product
  category (narrowed and capped spend), minimum spend, inactive, date windows at their edges;
- the order of rules (priority, then id), multipliers that do not compound, "stop further";
- the first purchase and repeat-purchase bonuses;
- the order of the returned lines: base, tier, rules by priority, first purchase, repeat.

No database: the program, tier and rules are transient ORM objects with every attribute that
`earn` and `rule_matches` read set explicitly (column defaults do not apply to them).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from loyalty import earning
from loyalty.earning import Credit, PurchaseFacts, earn
from loyalty.models import BonusRule, EntryType, Program, Tier

DAY = date(2025, 3, 15)
BASE = "Points for your purchase"
FIRST = "First purchase bonus"

Line = tuple[int, str, str]  # points, reason, rule


def make_program(
    *,
    earn_rate: str = "1",
    first_purchase_bonus: int = 200,
    repeat_bonus: int = 300,
    repeat_count: int = 3,
    repeat_days: int = 30,
) -> Program:
    return Program(
        id=1,
        earn_rate=Decimal(earn_rate),
        first_purchase_bonus=first_purchase_bonus,
        repeat_bonus=repeat_bonus,
        repeat_count=repeat_count,
        repeat_days=repeat_days,
    )


def make_tier(name: str = "Member", multiplier: str = "1") -> Tier:
    return Tier(
        id=1,
        code=name.lower(),
        name=name,
        rank=1,
        threshold=0,
        multiplier=Decimal(multiplier),
        benefits="",
    )


def make_rule(
    rule_id: int,
    name: str,
    *,
    multiplier: str | None = None,
    fixed_points: int | None = None,
    priority: int = 100,
    active: bool = True,
    starts_on: date | None = None,
    ends_on: date | None = None,
    channel_id: int | None = None,
    campaign_id: int | None = None,
    category: str | None = None,
    min_spend: str | None = None,
    stop_further: bool = False,
) -> BonusRule:
    assert (multiplier is None) != (fixed_points is None), "a rule is a multiplier or fixed"
    return BonusRule(
        id=rule_id,
        name=name,
        priority=priority,
        active=active,
        starts_on=starts_on,
        ends_on=ends_on,
        channel_id=channel_id,
        campaign_id=campaign_id,
        category=category,
        min_spend=None if min_spend is None else Decimal(min_spend),
        multiplier=None if multiplier is None else Decimal(multiplier),
        fixed_points=fixed_points,
        stop_further=stop_further,
    )


def make_facts(
    amount: str = "100.00",
    *,
    on: date = DAY,
    channel_id: int | None = None,
    campaign_id: int | None = None,
    categories: dict[str, str] | None = None,
    first_purchase: bool = False,
    purchases_in_window: int = 1,
    repeat_given: bool = False,
) -> PurchaseFacts:
    return PurchaseFacts(
        base_amount=Decimal(amount),
        local_date=on,
        channel_id=channel_id,
        campaign_id=campaign_id,
        categories={name: Decimal(spend) for name, spend in (categories or {}).items()},
        first_purchase=first_purchase,
        purchases_in_repeat_window=purchases_in_window,
        repeat_bonus_in_window=repeat_given,
    )


def summary(credits: list[Credit]) -> list[Line]:
    return [(credit.points, credit.reason, credit.rule) for credit in credits]


# --- base points ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earn_rate", "amount", "expected"),
    [
        pytest.param("1", "100.00", [(100, BASE, "base")], id="whole-amount"),
        pytest.param("1", "99.99", [(99, BASE, "base")], id="rounded-down-not-to-nearest"),
        pytest.param("0.5", "15.00", [(7, BASE, "base")], id="half-rate-rounded-down"),
        pytest.param("1.25", "10.99", [(13, BASE, "base")], id="rate-1.25-13.7375"),
        pytest.param("2", "0.50", [(1, BASE, "base")], id="small-amount-high-rate"),
        pytest.param("1", "0.99", [], id="under-one-point-dropped"),
        pytest.param("2", "0.49", [], id="0.98-points-dropped"),
        pytest.param("0", "100.00", [], id="zero-rate-no-line"),
    ],
)
def test_base_points(earn_rate: str, amount: str, expected: list[Line]) -> None:
    credits = earn(make_program(earn_rate=earn_rate), make_tier(), [], make_facts(amount))
    assert summary(credits) == expected
    assert all(c.type == EntryType.EARN and c.bonus_rule_id is None for c in credits)


# --- tier ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earn_rate", "amount", "tier", "expected"),
    [
        pytest.param(
            "1",
            "100.00",
            make_tier("Gold", "1.5"),
            [(100, BASE, "base"), (50, "Gold member ×1.5", "tier")],
            id="gold-1.5",
        ),
        pytest.param(
            "1",
            "99.99",
            make_tier("Gold", "1.5"),
            [(99, BASE, "base"), (49, "Gold member ×1.5", "tier")],
            id="gold-49.5-rounded-down",
        ),
        pytest.param(
            "1",
            "100.00",
            make_tier("Gold", "1.500"),
            [(100, BASE, "base"), (50, "Gold member ×1.5", "tier")],
            id="stored-scale-1.500-shown-as-1.5",
        ),
        pytest.param(
            "1",
            "10.00",
            make_tier("Silver", "1.25"),
            [(10, BASE, "base"), (2, "Silver member ×1.25", "tier")],
            id="silver-2.5-rounded-down",
        ),
        pytest.param(
            "1",
            "100.00",
            make_tier("Platinum", "2"),
            [(100, BASE, "base"), (100, "Platinum member ×2", "tier")],
            id="platinum-2",
        ),
        pytest.param(
            # On base points (9 × 2 = 18), not on the amount (9.99 × 2 = 19.98 → 19).
            "1",
            "9.99",
            make_tier("Diamond", "3"),
            [(9, BASE, "base"), (18, "Diamond member ×3", "tier")],
            id="works-on-base-points-not-amount",
        ),
        pytest.param(
            "0.5",
            "15.00",
            make_tier("Gold", "1.5"),
            [(7, BASE, "base"), (3, "Gold member ×1.5", "tier")],
            id="with-earn-rate-0.5",
        ),
        pytest.param(
            "1",
            "100.00",
            make_tier("Member", "1"),
            [(100, BASE, "base")],
            id="multiplier-1-no-tier-line",
        ),
        pytest.param(
            "1",
            "1.00",
            make_tier("Gold", "1.5"),
            [(1, BASE, "base")],
            id="tier-0.5-points-dropped",
        ),
    ],
)
def test_tier_line(earn_rate: str, amount: str, tier: Tier, expected: list[Line]) -> None:
    credits = earn(make_program(earn_rate=earn_rate), tier, [], make_facts(amount))
    assert summary(credits) == expected
    assert all(c.type == EntryType.EARN and c.bonus_rule_id is None for c in credits)


# --- bonus rule kinds ----------------------------------------------------------------------

DOUBLE = make_rule(7, "Double points", multiplier="2")
ONE_AND_HALF = make_rule(7, "Points ×1.5", multiplier="1.5")
TRIPLE = make_rule(7, "Triple points", multiplier="3")
FIXED = make_rule(8, "Weekend treat", fixed_points=50)
APP_ONLY = make_rule(9, "App bonus", fixed_points=40, channel_id=2)
SPRING = make_rule(10, "Double points", multiplier="2", campaign_id=5)
SHOES_DOUBLE = make_rule(11, "Shoe week", multiplier="2", category="shoes")
SHOES_FIXED = make_rule(12, "Shoe treat", fixed_points=30, category="shoes")
SHOES_MIN_50 = make_rule(13, "Big shoe spend", fixed_points=30, category="shoes", min_spend="50")
MIN_50 = make_rule(14, "Spend 50, get 25", fixed_points=25, min_spend="50.00")
INACTIVE = make_rule(15, "Paused", multiplier="2", active=False)


@pytest.mark.parametrize(
    ("earn_rate", "rule", "facts", "campaign_names", "expected"),
    [
        # Multiplier: (multiplier − 1) × base points of the spend.
        pytest.param(
            "1",
            DOUBLE,
            make_facts("100.00"),
            None,
            [(100, BASE, "base"), (100, "Double points", "bonus_rule:7")],
            id="multiplier-2",
        ),
        pytest.param(
            "1",
            ONE_AND_HALF,
            make_facts("99.99"),
            None,
            [(99, BASE, "base"), (49, "Points ×1.5", "bonus_rule:7")],
            id="multiplier-1.5-rounded-down",
        ),
        pytest.param(
            "0.5",
            TRIPLE,
            make_facts("15.00"),
            None,
            [(7, BASE, "base"), (14, "Triple points", "bonus_rule:7")],
            id="multiplier-3-on-base-points-at-rate-0.5",
        ),
        pytest.param(
            "1",
            ONE_AND_HALF,
            make_facts("1.00"),
            None,
            [(1, BASE, "base")],
            id="multiplier-bonus-under-one-point-dropped",
        ),
        # Fixed.
        pytest.param(
            "1",
            FIXED,
            make_facts("100.00"),
            None,
            [(100, BASE, "base"), (50, "Weekend treat", "bonus_rule:8")],
            id="fixed",
        ),
        pytest.param(
            "1",
            FIXED,
            make_facts("0.50"),
            None,
            [(50, "Weekend treat", "bonus_rule:8")],
            id="fixed-on-a-zero-point-purchase",
        ),
        # Channel.
        pytest.param(
            "1",
            APP_ONLY,
            make_facts("100.00", channel_id=2),
            None,
            [(100, BASE, "base"), (40, "App bonus", "bonus_rule:9")],
            id="channel-matches",
        ),
        pytest.param(
            "1",
            APP_ONLY,
            make_facts("100.00", channel_id=3),
            None,
            [(100, BASE, "base")],
            id="channel-other",
        ),
        pytest.param(
            "1",
            APP_ONLY,
            make_facts("100.00", channel_id=None),
            None,
            [(100, BASE, "base")],
            id="channel-unknown",
        ),
        # Campaign, and its name in the reason.
        pytest.param(
            "1",
            SPRING,
            make_facts("100.00", campaign_id=5),
            {5: "Spring sale"},
            [(100, BASE, "base"), (100, "Double points — Spring sale", "bonus_rule:10")],
            id="campaign-matches-named",
        ),
        pytest.param(
            "1",
            SPRING,
            make_facts("100.00", campaign_id=5),
            None,
            [(100, BASE, "base"), (100, "Double points", "bonus_rule:10")],
            id="campaign-matches-no-names",
        ),
        pytest.param(
            "1",
            SPRING,
            make_facts("100.00", campaign_id=5),
            {6: "Autumn sale"},
            [(100, BASE, "base"), (100, "Double points", "bonus_rule:10")],
            id="campaign-matches-name-unknown",
        ),
        pytest.param(
            "1",
            SPRING,
            make_facts("100.00", campaign_id=6),
            {5: "Spring sale", 6: "Autumn sale"},
            [(100, BASE, "base")],
            id="campaign-other",
        ),
        pytest.param(
            "1",
            SPRING,
            make_facts("100.00", campaign_id=None),
            {5: "Spring sale"},
            [(100, BASE, "base")],
            id="campaign-none",
        ),
        pytest.param(
            "1",
            DOUBLE,
            make_facts("100.00", campaign_id=5),
            {5: "Spring sale"},
            [(100, BASE, "base"), (100, "Double points", "bonus_rule:7")],
            id="rule-without-campaign-keeps-its-name",
        ),
        # Category: narrows the spend to that category's, capped at the base amount.
        pytest.param(
            "1",
            SHOES_DOUBLE,
            make_facts("100.00", categories={"shoes": "40.00", "socks": "60.00"}),
            None,
            [(100, BASE, "base"), (40, "Shoe week", "bonus_rule:11")],
            id="category-multiplier-on-its-spend",
        ),
        pytest.param(
            "1",
            SHOES_DOUBLE,
            make_facts("100.00", categories={"shoes": "40.50"}),
            None,
            [(100, BASE, "base"), (40, "Shoe week", "bonus_rule:11")],
            id="category-spend-rounded-down",
        ),
        pytest.param(
            "0.5",
            SHOES_DOUBLE,
            make_facts("100.00", categories={"shoes": "45.00"}),
            None,
            [(50, BASE, "base"), (22, "Shoe week", "bonus_rule:11")],
            id="category-at-rate-0.5",
        ),
        pytest.param(
            "1",
            SHOES_DOUBLE,
            make_facts("80.00", categories={"shoes": "120.00"}),
            None,
            [(80, BASE, "base"), (80, "Shoe week", "bonus_rule:11")],
            id="category-capped-at-base-amount",
        ),
        pytest.param(
            "1",
            SHOES_DOUBLE,
            make_facts("100.00", categories={"socks": "100.00"}),
            None,
            [(100, BASE, "base")],
            id="category-absent",
        ),
        pytest.param(
            "1",
            SHOES_FIXED,
            make_facts("100.00", categories={"shoes": "1.00"}),
            None,
            [(100, BASE, "base"), (30, "Shoe treat", "bonus_rule:12")],
            id="category-fixed",
        ),
        pytest.param(
            "1",
            SHOES_FIXED,
            make_facts("100.00"),
            None,
            [(100, BASE, "base")],
            id="category-fixed-no-lines-known",
        ),
        # Minimum spend: on the total, or on the category's spend when there is a category.
        pytest.param(
            "1",
            MIN_50,
            make_facts("50.00"),
            None,
            [(50, BASE, "base"), (25, "Spend 50, get 25", "bonus_rule:14")],
            id="min-spend-exactly",
        ),
        pytest.param(
            "1",
            MIN_50,
            make_facts("49.99"),
            None,
            [(49, BASE, "base")],
            id="min-spend-just-below",
        ),
        pytest.param(
            "1",
            SHOES_MIN_50,
            make_facts("200.00", categories={"shoes": "40.00"}),
            None,
            [(200, BASE, "base")],
            id="category-min-spend-not-met-though-total-is",
        ),
        pytest.param(
            "1",
            SHOES_MIN_50,
            make_facts("200.00", categories={"shoes": "50.00"}),
            None,
            [(200, BASE, "base"), (30, "Big shoe spend", "bonus_rule:13")],
            id="category-min-spend-exactly",
        ),
        pytest.param(
            "1",
            SHOES_MIN_50,
            make_facts("200.00", categories={"shoes": "49.99"}),
            None,
            [(200, BASE, "base")],
            id="category-min-spend-just-below",
        ),
        # Inactive.
        pytest.param(
            "1",
            INACTIVE,
            make_facts("100.00"),
            None,
            [(100, BASE, "base")],
            id="inactive-ignored",
        ),
    ],
)
def test_bonus_rule_kinds(
    earn_rate: str,
    rule: BonusRule,
    facts: PurchaseFacts,
    campaign_names: dict[int, str] | None,
    expected: list[Line],
) -> None:
    credits = earn(
        make_program(earn_rate=earn_rate),
        make_tier(),
        [rule],
        facts,
        campaign_names=campaign_names,
    )
    assert summary(credits) == expected
    for credit in credits:
        assert credit.type == EntryType.EARN
        assert credit.bonus_rule_id == (rule.id if credit.rule.startswith("bonus_rule:") else None)


# --- date windows --------------------------------------------------------------------------

MARCH = make_rule(
    20, "March bonus", fixed_points=10, starts_on=date(2025, 3, 1), ends_on=date(2025, 3, 31)
)
FROM_MARCH = make_rule(21, "From March", fixed_points=10, starts_on=date(2025, 3, 1))
UNTIL_MARCH = make_rule(22, "Until March", fixed_points=10, ends_on=date(2025, 3, 31))


@pytest.mark.parametrize(
    ("rule", "on", "applies"),
    [
        pytest.param(MARCH, date(2025, 2, 28), False, id="day-before-start"),
        pytest.param(MARCH, date(2025, 3, 1), True, id="first-day"),
        pytest.param(MARCH, date(2025, 3, 15), True, id="inside"),
        pytest.param(MARCH, date(2025, 3, 31), True, id="last-day"),
        pytest.param(MARCH, date(2025, 4, 1), False, id="day-after-end"),
        pytest.param(FROM_MARCH, date(2025, 2, 28), False, id="open-end-before-start"),
        pytest.param(FROM_MARCH, date(2025, 3, 1), True, id="open-end-first-day"),
        pytest.param(FROM_MARCH, date(2030, 1, 1), True, id="open-end-years-later"),
        pytest.param(UNTIL_MARCH, date(2020, 1, 1), True, id="open-start-years-before"),
        pytest.param(UNTIL_MARCH, date(2025, 3, 31), True, id="open-start-last-day"),
        pytest.param(UNTIL_MARCH, date(2025, 4, 1), False, id="open-start-day-after-end"),
    ],
)
def test_date_window(rule: BonusRule, on: date, applies: bool) -> None:
    credits = earn(make_program(), make_tier(), [rule], make_facts("100.00", on=on))
    bonus: list[Line] = [(10, rule.name, f"bonus_rule:{rule.id}")]
    assert summary(credits) == [(100, BASE, "base"), *(bonus if applies else [])]


# --- order, compounding, stop --------------------------------------------------------------


def test_rules_run_by_priority_then_id_whatever_the_list_order() -> None:
    rules = [
        make_rule(1, "B", fixed_points=20, priority=100),
        make_rule(4, "Early double", multiplier="2", priority=10),
        make_rule(2, "C", fixed_points=30, priority=100),
        make_rule(3, "A", fixed_points=10, priority=50),
    ]
    expected: list[Line] = [
        (100, BASE, "base"),
        (100, "Early double", "bonus_rule:4"),
        (10, "A", "bonus_rule:3"),
        (20, "B", "bonus_rule:1"),
        (30, "C", "bonus_rule:2"),
    ]
    for ordering in (rules, rules[::-1], sorted(rules, key=lambda r: r.name)):
        assert summary(earn(make_program(), make_tier(), ordering, make_facts())) == expected


@pytest.mark.parametrize(
    ("double_priority", "triple_priority", "expected"),
    [
        pytest.param(
            10,
            20,
            [
                (100, BASE, "base"),
                (50, "Gold member ×1.5", "tier"),
                (100, "Double", "bonus_rule:1"),
                (200, "Triple", "bonus_rule:2"),
            ],
            id="double-first",
        ),
        pytest.param(
            20,
            10,
            [
                (100, BASE, "base"),
                (50, "Gold member ×1.5", "tier"),
                (200, "Triple", "bonus_rule:2"),
                (100, "Double", "bonus_rule:1"),
            ],
            id="triple-first",
        ),
    ],
)
def test_multipliers_do_not_compound(
    double_priority: int, triple_priority: int, expected: list[Line]
) -> None:
    rules = [
        make_rule(1, "Double", multiplier="2", priority=double_priority),
        make_rule(2, "Triple", multiplier="3", priority=triple_priority),
    ]
    credits = earn(make_program(), make_tier("Gold", "1.5"), rules, make_facts("100.00"))
    assert summary(credits) == expected
    # Each on the 100 base points: 100 + 50 + 100 + 200, not 100 × 1.5 × 2 × 3 = 900.
    assert sum(c.points for c in credits) == 450


@pytest.mark.parametrize(
    ("rules", "facts", "expected"),
    [
        pytest.param(
            [
                make_rule(1, "Stop here", fixed_points=25, priority=10, stop_further=True),
                make_rule(2, "Double", multiplier="2", priority=20),
            ],
            make_facts(),
            [(100, BASE, "base"), (25, "Stop here", "bonus_rule:1")],
            id="matching-stop-cuts-later-rules",
        ),
        pytest.param(
            [
                make_rule(
                    1, "App stop", fixed_points=25, priority=10, channel_id=9, stop_further=True
                ),
                make_rule(2, "Double", multiplier="2", priority=20),
            ],
            make_facts(channel_id=3),
            [(100, BASE, "base"), (100, "Double", "bonus_rule:2")],
            id="non-matching-stop-cuts-nothing",
        ),
        pytest.param(
            [
                make_rule(
                    1, "Paused stop", fixed_points=25, priority=10, active=False, stop_further=True
                ),
                make_rule(2, "Double", multiplier="2", priority=20),
            ],
            make_facts(),
            [(100, BASE, "base"), (100, "Double", "bonus_rule:2")],
            id="inactive-stop-cuts-nothing",
        ),
        pytest.param(
            [
                make_rule(
                    1, "Min stop", fixed_points=25, priority=10, min_spend="150", stop_further=True
                ),
                make_rule(2, "Double", multiplier="2", priority=20),
            ],
            make_facts("100.00"),
            [(100, BASE, "base"), (100, "Double", "bonus_rule:2")],
            id="stop-below-min-spend-cuts-nothing",
        ),
        pytest.param(
            [
                make_rule(1, "Stop late", fixed_points=25, priority=30, stop_further=True),
                make_rule(2, "Double", multiplier="2", priority=20),
            ],
            make_facts(),
            [
                (100, BASE, "base"),
                (100, "Double", "bonus_rule:2"),
                (25, "Stop late", "bonus_rule:1"),
            ],
            id="stop-cuts-only-what-follows",
        ),
        pytest.param(
            [
                make_rule(6, "Double", multiplier="2", priority=100),
                make_rule(5, "Stop", fixed_points=25, priority=100, stop_further=True),
            ],
            make_facts(),
            [(100, BASE, "base"), (25, "Stop", "bonus_rule:5")],
            id="same-priority-lower-id-stop-first",
        ),
        pytest.param(
            [
                make_rule(4, "Double", multiplier="2", priority=100),
                make_rule(5, "Stop", fixed_points=25, priority=100, stop_further=True),
            ],
            make_facts(),
            [
                (100, BASE, "base"),
                (100, "Double", "bonus_rule:4"),
                (25, "Stop", "bonus_rule:5"),
            ],
            id="same-priority-higher-id-stop-after",
        ),
        pytest.param(
            [
                make_rule(
                    1,
                    "Tiny stop",
                    multiplier="1.5",
                    priority=10,
                    category="socks",
                    stop_further=True,
                ),
                make_rule(2, "Double", multiplier="2", priority=20),
            ],
            make_facts(categories={"socks": "1.00"}),
            [(100, BASE, "base")],
            id="matching-stop-worth-zero-points-still-stops",
        ),
    ],
)
def test_stop_further(rules: list[BonusRule], facts: PurchaseFacts, expected: list[Line]) -> None:
    assert summary(earn(make_program(), make_tier(), rules, facts)) == expected


# --- first purchase and repeat bonuses -----------------------------------------------------


@pytest.mark.parametrize(
    ("bonus", "first_purchase", "amount", "expected"),
    [
        pytest.param(
            200,
            True,
            "100.00",
            [(100, BASE, "base"), (200, FIRST, "first_purchase")],
            id="first-purchase",
        ),
        pytest.param(200, False, "100.00", [(100, BASE, "base")], id="not-first"),
        pytest.param(0, True, "100.00", [(100, BASE, "base")], id="bonus-switched-off"),
        pytest.param(
            200, True, "0.50", [(200, FIRST, "first_purchase")], id="first-of-zero-points"
        ),
    ],
)
def test_first_purchase_bonus(
    bonus: int, first_purchase: bool, amount: str, expected: list[Line]
) -> None:
    program = make_program(first_purchase_bonus=bonus)
    credits = earn(program, make_tier(), [], make_facts(amount, first_purchase=first_purchase))
    assert summary(credits) == expected
    for credit in credits:
        assert credit.bonus_rule_id is None
        assert credit.type == (
            EntryType.BONUS if credit.rule == "first_purchase" else EntryType.EARN
        )


@pytest.mark.parametrize(
    ("program", "in_window", "given", "expected_reason"),
    [
        pytest.param(make_program(), 3, False, "Repeat bonus: 3 purchases in 30 days", id="nth"),
        pytest.param(make_program(), 4, False, "Repeat bonus: 3 purchases in 30 days", id="past-n"),
        pytest.param(make_program(), 2, False, None, id="n-minus-one"),
        pytest.param(make_program(), 3, True, None, id="already-given-in-window"),
        pytest.param(make_program(), 10, True, None, id="past-n-already-given"),
        pytest.param(make_program(repeat_bonus=0), 3, False, None, id="bonus-switched-off"),
        pytest.param(
            make_program(repeat_count=5, repeat_days=14),
            5,
            False,
            "Repeat bonus: 5 purchases in 14 days",
            id="other-settings",
        ),
        pytest.param(
            make_program(repeat_count=5, repeat_days=14), 4, False, None, id="other-settings-n-1"
        ),
    ],
)
def test_repeat_bonus(
    program: Program, in_window: int, given: bool, expected_reason: str | None
) -> None:
    facts = make_facts("100.00", purchases_in_window=in_window, repeat_given=given)
    credits = earn(program, make_tier(), [], facts)
    if expected_reason is None:
        assert summary(credits) == [(100, BASE, "base")]
        return
    assert earning.repeat_reason(program) == expected_reason
    assert credits == [
        Credit(100, BASE, "base"),
        Credit(300, expected_reason, "repeat_purchase", EntryType.BONUS),
    ]


# --- everything together -------------------------------------------------------------------


def test_lines_come_base_tier_rules_first_purchase_repeat() -> None:
    rules = [
        make_rule(2, "Weekend treat", fixed_points=25, priority=200),
        make_rule(9, "Double points", multiplier="2", priority=100, campaign_id=5),
        make_rule(3, "Shoe week", multiplier="3", priority=150, category="shoes"),
        make_rule(4, "Paused", fixed_points=1000, priority=1, active=False),
    ]
    facts = make_facts(
        "120.50",
        campaign_id=5,
        categories={"shoes": "30.00"},
        first_purchase=True,
        purchases_in_window=3,
    )
    credits = earn(
        make_program(),
        make_tier("Gold", "1.5"),
        rules,
        facts,
        campaign_names={5: "Spring sale"},
    )
    assert credits == [
        Credit(120, BASE, "base"),
        Credit(60, "Gold member ×1.5", "tier"),
        Credit(120, "Double points — Spring sale", "bonus_rule:9", EntryType.EARN, 9),
        Credit(60, "Shoe week", "bonus_rule:3", EntryType.EARN, 3),
        Credit(25, "Weekend treat", "bonus_rule:2", EntryType.EARN, 2),
        Credit(200, FIRST, "first_purchase", EntryType.BONUS),
        Credit(300, "Repeat bonus: 3 purchases in 30 days", "repeat_purchase", EntryType.BONUS),
    ]


def test_a_stop_rule_does_not_cut_the_purchase_bonuses() -> None:
    rules = [
        make_rule(1, "Stop here", fixed_points=25, priority=10, stop_further=True),
        make_rule(2, "Double", multiplier="2", priority=20),
    ]
    facts = make_facts("100.00", first_purchase=True, purchases_in_window=3)
    credits = earn(make_program(), make_tier("Gold", "1.5"), rules, facts)
    assert summary(credits) == [
        (100, BASE, "base"),
        (50, "Gold member ×1.5", "tier"),
        (25, "Stop here", "bonus_rule:1"),
        (200, FIRST, "first_purchase"),
        (300, "Repeat bonus: 3 purchases in 30 days", "repeat_purchase"),
    ]


def test_a_purchase_worth_nothing_earns_no_lines() -> None:
    program = make_program(first_purchase_bonus=0, repeat_bonus=0)
    facts = make_facts("0.99", first_purchase=True, purchases_in_window=3)
    assert earn(program, make_tier("Gold", "1.5"), [], facts) == []
