"""What a member's recorded purchases say about a new one: the facts earning and tiers need.

Which purchases count as "before" a new purchase at time t, decided once for every path
(it matters when a purchase arrives back-dated or out of order):

- **First purchase**: the member has no purchase recorded yet, whatever its time or state.
  A back-dated purchase that arrives after another never earns the bonus a second time.
- **Repeat window**: recorded purchases, not fully refunded, with a time in (t − D, t]; this
  one makes one more. A repeat bonus already credited for any purchase after t − D (later
  ones included) means none is due: at most one per window, whatever the arrival order.
- **Tier metric**: recorded purchases with a time in [t − W, t] (W the tier window), plus
  this one: points earned minus reversed, or net spend in the base currency.
- **Referral**: the member was referred and the referral still waits for a first purchase.
- **Holdouts**: the campaigns whose frozen audience holds the member out (`loyalty.audiences`),
  whose bonus rules therefore skip the member. A fact of the member rather than of the
  purchases, read in the same statement (as a comma-separated list of campaign ids).

"Recorded" means posted before this one. Live, that is arrival order; a CSV import applies its
rows as if posted one by one in time order (ties in file order), so a file's result does not
depend on how it was sorted.

`statement` reads the facts in SQL (the unit-of-work and the fast path); `Recorded` keeps one
member's history in memory and answers the same (the bulk import). The differential test in
`tests/loyalty/test_paths.py` checks they agree.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Select, String, Table, bindparam, exists, func, select, true, type_coerce
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from core.money import MoneyAmount
from core.timeutil import UTCDateTime
from loyalty.earning import REPEAT_RULE
from loyalty.models import (
    CampaignAudience,
    LedgerEntry,
    Program,
    Purchase,
    PurchaseState,
    Referral,
    ReferralState,
    TierMetric,
)
from loyalty.tiers import window_start


@dataclass(frozen=True, slots=True)
class Facts:
    purchases: int  # recorded purchases of the member, any time, any state
    in_repeat_window: int  # recorded, not fully refunded, time in (t − D, t]
    repeat_bonus_since: bool  # a repeat bonus credited for a purchase after t − D
    tier_metric: Decimal  # over [t − W, t], this purchase not included
    referral_pending: bool
    held_out: frozenset[int] = frozenset()  # campaigns whose holdout the member is in


def repeat_from(program: Program, at: datetime) -> datetime:
    return at - timedelta(days=program.repeat_days)


def params(program: Program, member_id: int, at: datetime) -> dict[str, Any]:
    """The bind parameters of `statement` for a purchase at `at`."""
    return {
        "member_id": member_id,
        "at": at,
        "repeat_from": repeat_from(program, at),
        "window_from": window_start(program, at),
    }


def from_row(row: Any) -> Facts:
    purchases, in_window, bonus_since, metric, referral, held_out = row
    return Facts(
        int(purchases),
        int(in_window),
        bool(bonus_since),
        Decimal(metric or 0),
        bool(referral),
        held_out_of(held_out),
    )


def held_out_of(listed: str | None) -> frozenset[int]:
    """The campaign ids of the statement's comma-separated list (None: none)."""
    if not listed:
        return frozenset()
    return frozenset(int(part) for part in str(listed).split(","))


_purchases = cast(Table, Purchase.__table__)
_entries = cast(Table, LedgerEntry.__table__)
_referrals = cast(Table, Referral.__table__)
_audiences = cast(Table, CampaignAudience.__table__)


class _Listed(FunctionElement[str]):
    """Values joined with commas: `string_agg` on PostgreSQL, `group_concat` elsewhere. The
    separator is written into the SQL, not bound: the fast path sends the compiled text as is.
    (`func.aggregate_strings` binds it.)"""

    type = String()
    inherit_cache = True
    name = "listed"


@compiles(_Listed)
def _listed(element: _Listed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, ',')"


@compiles(_Listed, "postgresql")
def _listed_pg(element: _Listed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, ',')"


def _statement(metric: ColumnElement[Any]) -> Select[Any]:
    mine = _purchases.c.member_id == bindparam("member_id")
    at = bindparam("at", type_=UTCDateTime())
    since = bindparam("repeat_from", type_=UTCDateTime())
    return select(
        select(func.count()).select_from(_purchases).where(mine).scalar_subquery(),
        select(func.count())
        .select_from(_purchases)
        .where(
            mine,
            _purchases.c.occurred_at > since,
            _purchases.c.occurred_at <= at,
            _purchases.c.state != PurchaseState.REFUNDED.value,
        )
        .scalar_subquery(),
        exists()
        .where(
            _entries.c.member_id == bindparam("member_id"),
            _entries.c.rule == REPEAT_RULE,
            _entries.c.occurred_at > since,
        )
        .correlate(None),
        select(func.sum(metric))
        .where(
            mine,
            _purchases.c.occurred_at >= bindparam("window_from", type_=UTCDateTime()),
            _purchases.c.occurred_at <= at,
        )
        .scalar_subquery(),
        exists()
        .where(
            _referrals.c.referee_id == bindparam("member_id"),
            _referrals.c.state == ReferralState.PENDING.value,
        )
        .correlate(None),
        select(_Listed(sql_cast(_audiences.c.campaign_id, String())))
        .where(
            _audiences.c.member_id == bindparam("member_id"),
            _audiences.c.held_out == true(),
        )
        .scalar_subquery(),
    )


# One statement per tier metric, built once (the fast path compiles them for its driver).
STATEMENTS = {
    TierMetric.POINTS.value: _statement(_purchases.c.points_earned - _purchases.c.points_reversed),
    TierMetric.SPEND.value: _statement(
        type_coerce(_purchases.c.net_base_amount, cast(Any, MoneyAmount()))
    ),
}


def statement(program: Program) -> Select[Any]:
    return STATEMENTS[program.tier_metric]


def metric_of(program: Program, points: int, net_base_amount: Decimal) -> Decimal:
    """One recorded purchase's part of the tier metric."""
    if program.tier_metric == TierMetric.SPEND:
        return net_base_amount
    return Decimal(points)


class Recorded:
    """One member's recorded purchases in memory, answering `facts` as `statement` does:
    load every purchase from the earliest window start the import needs, then `add` each
    purchase as it is planned."""

    __slots__ = (
        "bonuses",
        "count",
        "counts",
        "held_out",
        "metrics",
        "referral_pending",
        "times",
    )

    def __init__(
        self,
        count: int = 0,
        referral_pending: bool = False,
        held_out: frozenset[int] = frozenset(),
    ) -> None:
        self.count = count  # all recorded purchases, loaded or not
        self.times: list[datetime] = []  # the loaded ones, by time
        self.counts: list[bool] = []  # not fully refunded
        self.metrics: list[Decimal] = []
        self.bonuses: list[datetime] = []  # times of repeat bonuses credited
        self.referral_pending = referral_pending
        self.held_out = held_out  # campaigns whose holdout the member is in

    def load(self, at: datetime, not_refunded: bool, metric: Decimal) -> None:
        """A purchase already in the database (`count` includes it)."""
        i = bisect_right(self.times, at)
        self.times.insert(i, at)
        self.counts.insert(i, not_refunded)
        self.metrics.insert(i, metric)

    def facts(self, program: Program, at: datetime) -> Facts:
        since = repeat_from(program, at)
        end = bisect_right(self.times, at)
        in_window = sum(self.counts[bisect_right(self.times, since) : end])
        window = self.metrics[bisect_left(self.times, window_start(program, at)) : end]
        return Facts(
            self.count,
            in_window,
            any(b > since for b in self.bonuses),
            sum(window, Decimal(0)),
            self.referral_pending,
            self.held_out,
        )

    def add(
        self, at: datetime, metric: Decimal, *, repeat_bonus: bool, referral_started: bool
    ) -> None:
        """A purchase just planned: it is recorded before the next one."""
        self.count += 1
        self.load(at, True, metric)
        if repeat_bonus:
            insort(self.bonuses, at)
        if referral_started:
            self.referral_pending = False
