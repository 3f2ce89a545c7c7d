"""What the loyalty program gave away for each campaign: the loyalty cost of the ROI report.

`loyalty_costs` answers a frame (campaign_id, day, amount, part) that the caller hands to the
ROI report beside the receipts (`campaigns.reports.roi_report(loyalty_costs=…)`, or
`include` for a report already made), as purchase revenue reaches it from `loyalty.reports`:
the campaigns package never imports loyalty. Amounts are in the base currency, each
document booked once to its minor unit (`campaigns.rates.book`), so the rows add up to the
totals exactly. SQL groups (per campaign, day and what is booked alike); pandas books.

**What counts, in three parts:**

- ``coupons``: the discount of each use of a coupon (or of a public code) of a batch linked to
  the campaign (`coupon_batches.campaign_id`), counted on the local day it was used. A use
  reversed later (a full refund gives the coupon back, `coupons.restore`) counts as minus the
  same amount on the local day it was reversed, as a refund counts in the month it is made:
  over all time only uses not reversed remain, and a month's figure never changes after it
  ends. A discount in the base currency is booked as it is; one in another currency (the
  batch's currency is the purchase's) at its purchase's own booked rate, the purchase's
  booked base amount ÷ its amount, so the coupon converts exactly as the purchase did and its
  reversal takes back exactly what it counted; a use with no purchase (a till redemption
  over the API) converts at the rate of its own local day (`rates.convert`; a missing rate
  raises, naming currency and date, as the report does). A gift coupon records no discount
  and counts nothing: what a gift costs is a receipt.
- ``bonus_points``: the points of each ledger entry written by a bonus rule linked to the
  campaign (`bonus_rules.campaign_id`), on the local day it was written, less the share of
  them each refund of that purchase took back, on the refund's local day. The ledger writes
  a refund's reversal as one entry for the whole purchase (rule ``refund``), not per rule,
  but what it takes is fixed by one rule, `loyalty.plans.refund`: the points earned × the
  share refunded in all, rounded half up, less what earlier refunds took. The rule's share
  is that same rule applied to the rule's own points (called, not copied), so a purchase
  refunded in full takes back exactly the points its campaign rule gave, and partial
  refunds never drift.
- ``rewards``: the points each member spent on a reward whose coupon is of a batch linked to
  the campaign (a ``redeem`` entry and the coupon it paid for, `coupons.reward_entry_id`:
  the batch the coupon was issued from, even if the reward's batch is changed later), on the
  local day they were spent.

Points are valued at the program's value per point (`Program.point_value`, base currency),
each entry booked once: points × value, rounded half up to the minor unit. The program keeps
no history of that value: changing it revalues every period's points.

**Nothing is counted twice.** Each part counts its own records, each record once and in one
part: coupon uses (``coupons``), entries of a campaign's bonus rules (``bonus_points``), and
redeem entries that paid for a campaign's coupon (``rewards``); a refund's share is counted
only against the entries it takes back, never as a use or an entry of its own. A coupon
bought with points is the one record two parts could both see: its cost is the points paid
for it (``rewards``), so its discount, when it is used, is left out of ``coupons``. Revenue is
what customers paid, after their discounts, and nothing here is taken off it: the discount
appears once, as a cost. The three parts value different events: points a campaign's rule
grants (its promise), and points members hand back for its rewards (whoever granted them;
the ledger pools a purchase's points in one lot, so which grant a redemption spent is not
recorded).

**Periods** select each record by its own date, as the report does (uses by when they were
used, reversals by when they were reversed, entries and refunds by when they happened), each
on its own local date in the configured zone (`loyalty.reports.local_day`), so a month
filtered alone equals that month's row. Campaigns are selected by the report's filter
(channel, status, owner, ids, run dates).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, exists, func, literal, null, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from campaigns import rates, report_data
from campaigns.report_data import ReportFilter
from campaigns.reports import RoiReport, with_loyalty_costs
from loyalty import plans
from loyalty import program as program_settings
from loyalty import reports as loyalty_reports
from loyalty.models import (
    Batch,
    BonusRule,
    Coupon,
    EntryType,
    LedgerEntry,
    Program,
    Purchase,
    Redemption,
    Refund,
)
from loyalty.reports import local_day

PARTS: tuple[str, ...] = ("coupons", "bonus_points", "rewards")
FRAME_COLUMNS = ["campaign_id", "day", "amount", "part"]
_WIDE = Context(prec=80)  # exact enough for any product and quotient of two money amounts

Key = tuple[int, date | None, str]


def at_purchase_rate(
    discount: Decimal, amount: Decimal, base_amount: Decimal, base: str
) -> Decimal:
    """A discount in a purchase's currency booked in the base currency at the purchase's own
    booked rate (its base amount ÷ its amount), rounded half up to the minor unit."""
    exact = _WIDE.divide(_WIDE.multiply(Decimal(discount), Decimal(base_amount)), Decimal(amount))
    return exact.quantize(rates.minor_unit(base), rounding=ROUND_HALF_UP, context=_WIDE)


def points_value(points: int, point_value: Decimal, base: str) -> Decimal:
    """`points` at `point_value` each, booked once (half up to the minor unit)."""
    return rates.book(points, point_value, base)


def rule_share_taken(
    points: int, amount: Decimal, before: Decimal, refunded: Decimal, program: Program
) -> int:
    """The points a refund of `refunded` takes back of `points` that a bonus rule gave on a
    purchase of `amount`, after earlier refunds of `before` in all: `plans.refund`'s rule
    applied to those points alone."""

    def sold(refunded_so_far: Decimal, reversed_so_far: int) -> plans.Sold:
        return plans.Sold(
            external_id="",
            amount=Decimal(amount),
            currency="",
            base_amount=Decimal(0),
            refunded_amount=refunded_so_far,
            net_base_amount=Decimal(0),
            points_earned=points,
            points_reversed=reversed_so_far,
        )

    earlier = plans.refund(sold(Decimal(0), 0), before, program).points if before > 0 else 0
    return plans.refund(sold(Decimal(before), earlier), Decimal(refunded), program).points


def _keys(
    session: Session,
    zone: ZoneInfo,
    campaign: Any,
    column: Any,
    where: list[ColumnElement[bool]],
    by_day: bool,
) -> list[Any]:
    """The group keys: the campaign, and for a report by month the local day of `column`
    (else a NULL day, selected but not grouped by)."""
    if by_day:
        return [campaign, local_day(session, zone, column, where)]
    return [campaign]


def _day_of(keys: list[Any]) -> list[Any]:
    return keys[1:] or [null()]


def _in_period(column: Any, f: ReportFilter, zone: ZoneInfo) -> list[ColumnElement[bool]]:
    """`column`'s time within the period's local days, as `loyalty.reports` selects."""
    return loyalty_reports._in_period(column, f, zone)


def _as_date(value: Any) -> date | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


class _Booked:
    """Booked amounts summed exactly per (campaign, day, part), in the base currency's minor
    units (booked amounts are whole minor units: quantizing only sets the exponent)."""

    def __init__(self, base: str) -> None:
        self.unit = rates.minor_unit(base)
        self.sums: defaultdict[Key, Decimal] = defaultdict(Decimal)

    def add(self, campaign_id: Any, day: Any, part: str, amount: Decimal) -> None:
        key = (int(campaign_id), _as_date(day), part)
        self.sums[key] = (self.sums[key] + amount).quantize(self.unit)

    def frame(self) -> pd.DataFrame:
        rows = [(c, d, a, p) for (c, d, p), a in self.sums.items()]
        rows.sort(key=lambda r: (r[0], r[1] or date.min, PARTS.index(r[3])))
        frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
        frame["amount"] = frame["amount"].astype(object)
        return frame


# --- coupons ---------------------------------------------------------------------------------


def _coupon_where(f: ReportFilter) -> list[ColumnElement[bool]]:
    """Uses of the campaigns' batches that gave a discount, bar coupons bought with points."""
    paid_with_points = exists(
        select(Coupon.id).where(
            Coupon.id == Redemption.coupon_id, Coupon.reward_entry_id.is_not(None)
        )
    )
    return [
        Batch.id == Redemption.batch_id,
        Batch.campaign_id.is_not(None),
        *report_data.of_campaigns(Batch.campaign_id, f),
        Redemption.discount != 0,
        ~paid_with_points,
    ]


def _coupons(
    session: Session, f: ReportFilter, zone: ZoneInfo, by_day: bool, base: str, out: _Booked
) -> None:
    for at, sign, extra in (
        (Redemption.redeemed_at, 1, []),
        (Redemption.reversed_at, -1, [Redemption.reversed_at.is_not(None)]),
    ):
        where = [*_coupon_where(f), *extra, *_in_period(at, f, zone)]
        in_base = [*where, Redemption.currency == base]
        keys = _keys(session, zone, Batch.campaign_id, at, in_base, by_day)
        found = report_data.booked_groups(session, keys, Redemption.discount, [], in_base, base)
        days = found["key_1"] if by_day else [None] * len(found)
        for campaign_id, when, amount in zip(found["key_0"], days, found["amount"], strict=True):
            out.add(campaign_id, when, "coupons", sign * amount)
        foreign = [*where, or_(Redemption.currency < base, Redemption.currency > base)]
        # With its purchase: at the purchase's own booked rate.
        with_purchase = [*foreign, Purchase.id == Redemption.purchase_id]
        keys = _keys(session, zone, Batch.campaign_id, at, with_purchase, by_day)
        alike = [Redemption.discount, Purchase.amount, Purchase.base_amount]
        rows = session.execute(
            select(keys[0], *_day_of(keys), *alike, func.count())
            .where(*with_purchase)
            .group_by(*keys, *alike)
        ).all()
        for row in rows:
            campaign_id, when, discount, amount, base_amount, n = tuple(row)
            booked = at_purchase_rate(discount, amount, base_amount, base)
            out.add(campaign_id, when, "coupons", sign * booked * int(n))
        _coupons_alone(session, zone, by_day, base, out, at, sign, foreign)


def _coupons_alone(
    session: Session,
    zone: ZoneInfo,
    by_day: bool,
    base: str,
    out: _Booked,
    at: InstrumentedAttribute[datetime | None],
    sign: int,
    foreign: list[ColumnElement[bool]],
) -> None:
    """Foreign-currency uses with no purchase: at the rate of the use's own local day (a
    reversal too, so it takes back what the use counted)."""
    alone = [*foreign, Redemption.purchase_id.is_(None)]
    used_on = local_day(session, zone, Redemption.redeemed_at, alone)
    keys = _keys(session, zone, Batch.campaign_id, at, alone, by_day)
    alike = [used_on, Redemption.currency, Redemption.discount]
    rows = session.execute(
        select(keys[0], *_day_of(keys), *alike, func.count()).where(*alone).group_by(*keys, *alike)
    ).all()
    if not rows:
        return
    frame = pd.DataFrame(
        [(r[0], r[1], _as_date(r[2]), r[3], r[4], r[5]) for r in rows],
        columns=["campaign_id", "when", "day", "currency", "amount", "n"],
    )
    table = rates.rates_frame(session, set(frame["currency"]))
    booked = rates.convert(frame, table, base)
    for campaign_id, when, amount, n in zip(
        frame["campaign_id"], frame["when"], booked, frame["n"], strict=True
    ):
        out.add(campaign_id, when, "coupons", sign * amount * int(n))


# --- points ------------------------------------------------------------------------------------


def _add_points(
    out: _Booked, rows: Iterable[Any], part: str, point_value: Decimal, base: str, sign: int
) -> None:
    """Rows of (campaign_id, day, points, n): n entries of `points` each, booked one by one."""
    for campaign_id, day, points, n in rows:
        booked = points_value(int(points), point_value, base) * int(n)
        out.add(campaign_id, day, part, sign * booked)


def _bonus_points(
    session: Session,
    f: ReportFilter,
    zone: ZoneInfo,
    by_day: bool,
    base: str,
    program: Program,
    out: _Booked,
) -> None:
    rule_of_campaign = [
        BonusRule.id == LedgerEntry.bonus_rule_id,
        BonusRule.campaign_id.is_not(None),
        *report_data.of_campaigns(BonusRule.campaign_id, f),
        LedgerEntry.type == EntryType.EARN,
    ]
    granted = [*rule_of_campaign, *_in_period(LedgerEntry.occurred_at, f, zone)]
    keys = _keys(session, zone, BonusRule.campaign_id, LedgerEntry.occurred_at, granted, by_day)
    rows = session.execute(
        select(keys[0], *_day_of(keys), LedgerEntry.points, func.count())
        .where(*granted)
        .group_by(*keys, LedgerEntry.points)
    ).all()
    _add_points(out, rows, "bonus_points", program.point_value, base, 1)

    # Refunds of purchases whose points a campaign's rule gave: each refund with what
    # earlier refunds of the same purchase had refunded (in the order they were recorded).
    earlier = aliased(Refund)
    refunds = select(
        Refund.purchase_id,
        Refund.amount,
        Refund.occurred_at,
        select(func.coalesce(func.sum(earlier.amount), literal(0)))
        .where(earlier.purchase_id == Refund.purchase_id, earlier.id < Refund.id)
        .correlate(Refund)
        .scalar_subquery()
        .label("before"),
    ).subquery()
    taken = [
        *rule_of_campaign,
        LedgerEntry.source_type == "purchase",
        LedgerEntry.source_id == refunds.c.purchase_id,
        Purchase.id == refunds.c.purchase_id,
        *_in_period(refunds.c.occurred_at, f, zone),
    ]
    keys = _keys(session, zone, BonusRule.campaign_id, refunds.c.occurred_at, taken, by_day)
    alike = [LedgerEntry.points, Purchase.amount, refunds.c.before, refunds.c.amount]
    rows = session.execute(
        select(keys[0], *_day_of(keys), *alike, func.count()).where(*taken).group_by(*keys, *alike)
    ).all()
    shares: defaultdict[tuple[Any, Any, int], int] = defaultdict(int)
    for row in rows:
        campaign_id, when, points, amount, so_far, refunded, n = tuple(row)
        back = rule_share_taken(int(points), amount, Decimal(so_far or 0), refunded, program)
        if back:
            shares[(campaign_id, when, back)] += int(n)
    _add_points(
        out,
        ((c, d, p, n) for (c, d, p), n in shares.items()),
        "bonus_points",
        program.point_value,
        base,
        -1,
    )


def _rewards(
    session: Session,
    f: ReportFilter,
    zone: ZoneInfo,
    by_day: bool,
    base: str,
    program: Program,
    out: _Booked,
) -> None:
    where = [
        LedgerEntry.type == EntryType.REDEEM,
        Coupon.reward_entry_id == LedgerEntry.id,
        Batch.id == Coupon.batch_id,
        Batch.campaign_id.is_not(None),
        *report_data.of_campaigns(Batch.campaign_id, f),
        *_in_period(LedgerEntry.occurred_at, f, zone),
    ]
    keys = _keys(session, zone, Batch.campaign_id, LedgerEntry.occurred_at, where, by_day)
    rows = session.execute(
        select(keys[0], *_day_of(keys), -LedgerEntry.points, func.count())
        .where(*where)
        .group_by(*keys, LedgerEntry.points)
    ).all()
    _add_points(out, rows, "rewards", program.point_value, base, 1)


def loyalty_costs(
    session: Session, f: ReportFilter, zone: ZoneInfo, *, by_day: bool, base: str = "CNY"
) -> pd.DataFrame:
    """The loyalty cost per campaign and part — and per local day when `by_day` (a report by
    month; else `day` is None) — of the campaigns `f` selects, in its period: columns
    campaign_id, day, amount (booked in `base`, Decimal), part (`PARTS`). One row per
    (campaign, day, part) that has any; see the module docstring for what counts."""
    program = program_settings.get(session)
    out = _Booked(base)
    _coupons(session, f, zone, by_day, base, out)
    _bonus_points(session, f, zone, by_day, base, program, out)
    _rewards(session, f, zone, by_day, base, program, out)
    return out.frame()


def include(
    session: Session, report: RoiReport, f: ReportFilter, zone: ZoneInfo, *, base: str
) -> RoiReport:
    """`report` (made with filter `f`, on any revenue basis) with the loyalty cost of its
    campaigns in its period counted in its cost (`reports.with_loyalty_costs`)."""
    frame = loyalty_costs(session, f, zone, by_day=report.group_by == "month", base=base)
    return with_loyalty_costs(report, frame)
