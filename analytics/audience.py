"""Audience analysis: who the members are and which groups respond to campaigns.

Members are grouped by one **dimension** (`DIMENSIONS`): region, city, age band, gender,
occupation or industry. A member's text field is trimmed; an empty or missing one puts the
member in ``unknown`` (so does a closed member, whose profile was erased), which is always the
last row. The age band is the member's age on ``today`` (`analytics.age_bands`: a birthday
without a year on record, or one after ``today``, is ``unknown``). SQL groups and adds up
(GROUP BY, the age band a CASE over the bands' birthday ranges); pandas only shapes the rows.

**Profile** (`profile`), one row per group:

- ``members``: members who had joined by the end of the period (every member when the period
  is open-ended), closed ones included (in ``unknown``) so the revenue adds up to the
  program's; ``member_share_pct`` of all of them.
- ``revenue``: the net base amount (base currency, after refunds, as booked) of the members'
  purchases made in the period, by local date in the configured zone; ``revenue_share_pct``
  and ``revenue_per_member`` (revenue ÷ members, rounded half-up to the minor unit).
  ``purchasing_members``: members with at least one purchase in the period that was not
  wholly refunded.
- From a value run (the latest, highest id, unless one is named): ``scored`` (members of the
  group with a score in the run), ``value`` (total contributed value), ``average_value``
  (value ÷ scored), and the members per pyramid layer (``layer:<code>``), per RFM segment
  (``rfm:<segment>``) and per loyalty type (``type:<code>``); every known layer, segment and
  type is a column, in display order, and any other value found is added after them. With
  no run these columns are absent and ``frame.attrs["run"]`` is None.

Money is Decimal (sums of booked amounts are exact); shares and rates are percentages rounded
half-up to two decimals; a share or rate of nothing (a zero total) is None.

**Campaign response** (`campaign_response`), one row per group: ``targeted``, ``converted``
and ``conversion_pct`` = converted ÷ targeted.

- A member is **targeted** by a campaign when, on or before the campaign's last day (local
  date), they were issued one of its coupons (a coupon of a batch with the campaign's id) or
  had one of its touchpoints (a touchpoint with the campaign's id; an anonymous visitor's
  touchpoints count for the member the visitor is linked to). Touchpoints that record the
  response itself are not targeting: a coupon being used (``coupon_used``), and the
  ``visit``/``click`` Retain derives from a purchase that carried the campaign's code
  (source ``retain``, external id ``purchase:…``); otherwise every buyer would count as
  targeted and converted. A coupon or touch ahead of the start (a teaser, coupons sent the
  week before) targets the member; one after the last day does not.
- A targeted member **converted** when they made a purchase with a positive net amount (not
  wholly refunded) whose local date is within the campaign's dates, at or after the moment
  they were first targeted by it: a purchase made before the campaign reached them is no
  response to it.
- With a campaign given, that campaign alone (whatever the period). Otherwise every campaign
  whose dates overlap the period ``[start, end]`` (either end may be open), each measured over
  its own dates; a member targeted by two campaigns counts once per campaign, so the rate is
  conversions ÷ targetings. ``frame.attrs["campaigns"]`` lists the campaigns counted.

`totals` gives a frame's total row; `sorted_frame` orders rows by a column (``unknown``
last either way); `to_csv` and `to_xlsx` export a profile as the page shows it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    literal,
    not_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from analytics import age_bands, loyalty_types, pyramid, rfm
from analytics.models import MemberScore, ValueRun
from attribution.models import TouchKind, Touchpoint, VisitorLink
from campaigns.models import Campaign
from core import bounds
from core.errors import NotFound, ValidationFailed
from core.exports import safe_cell
from core.money import minor_units
from core.text import N_
from loyalty.models import Batch, Coupon, Member, Purchase, PurchaseState
from loyalty.reports import local_day

Dimension = Literal["region", "city", "age_band", "gender", "occupation", "industry"]
DIMENSIONS: tuple[Dimension, ...] = (
    "region",
    "city",
    "age_band",
    "gender",
    "occupation",
    "industry",
)
DIMENSION_NAMES: dict[str, str] = {
    "region": "Region",
    "city": "City",
    "age_band": "Age band",
    "gender": "Gender",
    "occupation": "Occupation",
    "industry": "Industry",
}
UNKNOWN = age_bands.UNKNOWN
_TEXT_COLUMNS = {
    "region": Member.region,
    "city": Member.city,
    "gender": Member.gender,
    "occupation": Member.occupation,
    "industry": Member.industry,
}

LAYER_NAMES: dict[str, str] = {
    pyramid.MOST_VALUABLE: "Most valuable",
    pyramid.MOST_GROWABLE: "Most growable",
    pyramid.LOW_CONTRIBUTION: "Low contribution",
    pyramid.NEGATIVE: "Negative value",
}
LAYER_PREFIX, RFM_PREFIX, TYPE_PREFIX = "layer:", "rfm:", "type:"

# The profile's columns before the value run's, with the header an export shows.
BASE_COLUMNS: dict[str, str] = {
    "group": "Group",
    "members": "Members",
    "member_share_pct": "Share of members %",
    "purchasing_members": "Purchasing members",
    "revenue": "Revenue",
    "revenue_share_pct": "Share of revenue %",
    "revenue_per_member": "Revenue per member",
}
RUN_COLUMNS: dict[str, str] = {
    "scored": "Scored members",
    "value": "Value",
    "average_value": "Average value",
}
RESPONSE_COLUMNS: dict[str, str] = {
    "group": "Group",
    "targeted": "Targeted",
    "converted": "Converted",
    "conversion_pct": "Conversion rate %",
}
MONEY_COLUMNS = ("revenue", "revenue_per_member", "value", "average_value")
PERCENT_COLUMNS = ("member_share_pct", "revenue_share_pct", "conversion_pct")

ZERO = Decimal(0)
HUNDREDTH = Decimal("0.01")
_DAY = timedelta(days=1)
# Touchpoints Retain derives from a purchase (the response, not a reach): `purchase:<id>`.
DERIVED_SOURCE = "retain"
_DERIVED_PURCHASE = "purchase:%"


# --- inputs -----------------------------------------------------------------------------


def check_dimension(dimension: str) -> Dimension:
    if dimension not in DIMENSIONS:
        shown = dimension[:40].encode("utf-8", "backslashreplace").decode("utf-8")
        raise ValidationFailed(
            "audience.dimension",
            "'%(shown)s' is not a dimension to group members by; use one of %(dimensions)s.",
            shown=shown,
            dimensions=", ".join(DIMENSIONS),
        )
    return dimension


def check_period(start: date | None, end: date | None) -> None:
    if start is not None:
        bounds.check_day(start, "audience.from", label=N_("From"))
    if end is not None:
        bounds.check_day(end, "audience.to", label=N_("To"))
    if start is not None and end is not None and start > end:
        raise ValidationFailed(
            "audience.period",
            "From (%(start)s) is after To (%(end)s); choose a From on or before To.",
            start=start.isoformat(),
            end=end.isoformat(),
        )


def _instant(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of local `day` in `zone`."""
    return datetime.combine(day, time(0), zone)


def _exact(number: Any) -> Decimal:
    """A count (Python's or numpy's int) or an amount as a Decimal."""
    return number if isinstance(number, Decimal) else Decimal(int(number))


def _percent(part: Any, whole: Any) -> Decimal | None:
    if not whole:
        return None
    return (_exact(part) * 100 / _exact(whole)).quantize(HUNDREDTH, rounding=ROUND_HALF_UP)


def _per(total: Decimal, count: int, places: int) -> Decimal | None:
    if not count:
        return None
    return (total / count).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _money(value: Any, places: int) -> Decimal:
    amount = ZERO if value is None else Decimal(value)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def group_key(dimension: Dimension, today: date) -> ColumnElement[str]:
    """The SQL expression of a member's group: a trimmed text field (empty → unknown), or the
    age band on `today` from the bands' birthday ranges."""
    if dimension == "age_band":
        whens: list[tuple[ColumnElement[bool], ColumnElement[str]]] = []
        for code, _, _ in age_bands.BANDS:
            after, by = age_bands.birthdays(code, today)
            conditions: list[ColumnElement[bool]] = []
            if after is not None:
                conditions.append(Member.birthday > after)
            if by is not None:
                conditions.append(Member.birthday <= by)
            whens.append((and_(*conditions), literal(code)))
        return case(*whens, else_=literal(UNKNOWN))
    column = _TEXT_COLUMNS[dimension]
    return func.coalesce(func.nullif(func.trim(column), ""), literal(UNKNOWN))


def _order(frame: pd.DataFrame, dimension: Dimension, by: str) -> pd.DataFrame:
    """Age bands youngest first; other groups largest first (`by`), then by name; unknown
    last."""
    if frame.empty:
        return frame.reset_index(drop=True)
    keys: list[tuple[Any, ...]]
    if dimension == "age_band":
        rank = {code: i for i, code in enumerate(age_bands.CODES)}
        keys = [(rank.get(g, len(rank)), g) for g in frame["group"]]
    else:
        keys = [
            (g == UNKNOWN, -int(n), str(g).casefold(), g)
            for g, n in zip(frame["group"], frame[by], strict=True)
        ]
    order = sorted(range(len(frame)), key=lambda i: keys[i])
    return frame.iloc[order].reset_index(drop=True)


# --- the value run ----------------------------------------------------------------------


def latest_run(session: Session) -> ValueRun | None:
    """The latest value run (highest id), or None before the first."""
    return session.scalars(select(ValueRun).order_by(ValueRun.id.desc()).limit(1)).first()


def _run(session: Session, run_id: int | None) -> ValueRun | None:
    if run_id is None:
        return latest_run(session)
    run = session.get(ValueRun, bounds.check_id(run_id, "audience.run"))
    if run is None:
        raise NotFound(
            "audience.run",
            "No value run #%(run_id)s; the value page lists the runs.",
            run_id=run_id,
        )
    return run


def _run_info(run: ValueRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"id": run.id, "as_of": run.as_of, "currency": run.currency}


def _ordered(known: Sequence[str], found: set[str]) -> list[str]:
    return [*known, *sorted(found - set(known))]


# --- the profile ------------------------------------------------------------------------


def profile(
    session: Session,
    dimension: str,
    *,
    start: date | None,
    end: date | None,
    zone: ZoneInfo,
    today: date,
    run_id: int | None = None,
    base: str = "CNY",
) -> pd.DataFrame:
    """Members, revenue in the period and (with a value run) value, layers, RFM segments and
    loyalty types per group of `dimension` (see the module docstring). `start`/`end` are
    local dates, inclusive; None leaves that end open."""
    dim = check_dimension(dimension)
    check_period(start, end)
    run = _run(session, run_id)
    places = minor_units(base)
    key = group_key(dim, today)
    joined = [Member.joined_at < _instant(end + _DAY, zone)] if end is not None else []
    population = select(Member.id.label("member_id"), key.label("grp")).where(*joined).subquery()

    in_period: list[ColumnElement[bool]] = [Purchase.member_id.is_not(None)]
    if start is not None:
        in_period.append(Purchase.occurred_at >= _instant(start, zone))
    if end is not None:
        in_period.append(Purchase.occurred_at < _instant(end + _DAY, zone))
    bought = (
        select(
            Purchase.member_id.label("member_id"),
            func.sum(Purchase.net_base_amount).label("revenue"),
            func.max(
                case(
                    (
                        and_(
                            Purchase.net_base_amount > 0,
                            Purchase.state != PurchaseState.REFUNDED,
                        ),
                        1,
                    ),
                    else_=0,
                )
            ).label("kept"),
        )
        .where(*in_period)
        .group_by(Purchase.member_id)
        .subquery()
    )
    rows = session.execute(
        select(
            population.c.grp,
            func.count(),
            func.coalesce(func.sum(bought.c.kept), 0),
            func.sum(bought.c.revenue),
        )
        .select_from(population)
        .outerjoin(bought, bought.c.member_id == population.c.member_id)
        .group_by(population.c.grp)
    ).all()
    frame = pd.DataFrame(
        {
            "group": pd.Series([str(r[0]) for r in rows], dtype=object),
            "members": pd.Series([int(r[1]) for r in rows], dtype="int64"),
            "purchasing_members": pd.Series([int(r[2]) for r in rows], dtype="int64"),
            "revenue": pd.Series([_money(r[3], places) for r in rows], dtype=object),
        }
    )
    members_total = int(frame["members"].sum())
    revenue_total: Decimal = sum(frame["revenue"], ZERO)
    frame["member_share_pct"] = pd.Series(
        [_percent(n, members_total) for n in frame["members"]], dtype=object
    )
    frame["revenue_share_pct"] = pd.Series(
        [_percent(r, revenue_total) for r in frame["revenue"]], dtype=object
    )
    frame["revenue_per_member"] = pd.Series(
        [_per(r, int(n), places) for r, n in zip(frame["revenue"], frame["members"], strict=True)],
        dtype=object,
    )
    frame = frame[list(BASE_COLUMNS)]
    if run is not None:
        frame = _with_scores(session, frame, population, run)
    frame = _order(frame, dim, "members")
    frame.attrs.update(dimension=dim, run=_run_info(run), currency=base, start=start, end=end)
    return frame


def _with_scores(
    session: Session, frame: pd.DataFrame, population: Any, run: ValueRun
) -> pd.DataFrame:
    """The run's columns joined to `frame` by group: three small GROUP BYs (layer, segment,
    type) pivoted here."""
    places = minor_units(run.currency)

    def counts(column: Any) -> Select[Any]:
        return (
            select(population.c.grp, column, func.count(), func.sum(MemberScore.value))
            .select_from(population)
            .join(MemberScore, MemberScore.member_id == population.c.member_id)
            .where(MemberScore.run_id == run.id)
            .group_by(population.c.grp, column)
        )

    by_layer = session.execute(counts(MemberScore.layer)).all()
    by_segment = session.execute(counts(MemberScore.rfm_segment)).all()
    by_type = session.execute(counts(MemberScore.loyalty_type)).all()
    groups = list(frame["group"])
    scored: dict[str, int] = dict.fromkeys(groups, 0)
    value: dict[str, Decimal] = dict.fromkeys(groups, ZERO)
    for group, _, n, total in by_layer:
        scored[group] = scored.get(group, 0) + int(n)
        value[group] = value.get(group, ZERO) + (ZERO if total is None else Decimal(total))
    frame = frame.copy()
    frame["scored"] = pd.Series([scored[g] for g in groups], dtype="int64")
    frame["value"] = pd.Series([_money(value[g], places) for g in groups], dtype=object)
    frame["average_value"] = pd.Series(
        [_per(value[g], scored[g], places) for g in groups], dtype=object
    )
    for prefix, known, found_rows in (
        (LAYER_PREFIX, pyramid.LAYERS, by_layer),
        (RFM_PREFIX, rfm.SEGMENTS, by_segment),
        (TYPE_PREFIX, loyalty_types.TYPES, by_type),
    ):
        cells: dict[tuple[str, str], int] = {}
        for group, code, n, _ in found_rows:
            cells[str(group), str(code)] = cells.get((str(group), str(code)), 0) + int(n)
        for code in _ordered(known, {c for _, c in cells}):
            frame[prefix + code] = pd.Series(
                [cells.get((g, code), 0) for g in groups], dtype="int64"
            )
    return frame


def layer_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if str(c).startswith(LAYER_PREFIX)]


def segment_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if str(c).startswith(RFM_PREFIX)]


def type_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if str(c).startswith(TYPE_PREFIX)]


# --- campaign response ------------------------------------------------------------------


def _campaigns(
    session: Session, campaign_id: int | None, start: date | None, end: date | None
) -> list[tuple[int, str, str, date, date]]:
    columns = (Campaign.id, Campaign.code, Campaign.name, Campaign.starts_on, Campaign.ends_on)
    if campaign_id is not None:
        found = session.execute(
            select(*columns).where(Campaign.id == bounds.check_id(campaign_id, "audience.campaign"))
        ).all()
        if not found:
            raise NotFound(
                "audience.campaign",
                "No campaign #%(campaign_id)s; choose one from the campaigns list.",
                campaign_id=campaign_id,
            )
    else:
        overlap: list[ColumnElement[bool]] = []
        if end is not None:
            overlap.append(Campaign.starts_on <= end)
        if start is not None:
            overlap.append(Campaign.ends_on >= start)
        found = session.execute(
            select(*columns).where(*overlap).order_by(Campaign.starts_on, Campaign.id)
        ).all()
    return [(int(i), str(c), str(n), s, e) for i, c, n, s, e in found]


def campaign_response(
    session: Session,
    dimension: str,
    *,
    campaign_id: int | None = None,
    start: date | None,
    end: date | None,
    zone: ZoneInfo,
    today: date,
) -> pd.DataFrame:
    """Targeted members, conversions and the conversion rate per group of `dimension`, for
    one campaign or every campaign overlapping the period (see the module docstring)."""
    dim = check_dimension(dimension)
    check_period(start, end)
    chosen = _campaigns(session, campaign_id, start, end)
    frame = pd.DataFrame(
        {
            "group": pd.Series([], dtype=object),
            "targeted": pd.Series([], dtype="int64"),
            "converted": pd.Series([], dtype="int64"),
        }
    )
    if chosen:
        frame = _response(session, dim, chosen, zone, today)
    frame["conversion_pct"] = pd.Series(
        [_percent(c, t) for c, t in zip(frame["converted"], frame["targeted"], strict=True)],
        dtype=object,
        index=frame.index,
    )
    frame = _order(frame[list(RESPONSE_COLUMNS)], dim, "targeted")
    frame.attrs.update(
        dimension=dim,
        start=start,
        end=end,
        campaigns=[
            {"id": i, "code": c, "name": n, "starts_on": s, "ends_on": e}
            for i, c, n, s, e in chosen
        ],
    )
    return frame


def _response(
    session: Session,
    dimension: Dimension,
    chosen: list[tuple[int, str, str, date, date]],
    zone: ZoneInfo,
    today: date,
) -> pd.DataFrame:
    ids = [c[0] for c in chosen]
    opens = _instant(min(c[3] for c in chosen), zone)
    closes = _instant(max(c[4] for c in chosen) + _DAY, zone)

    issued_where: list[ColumnElement[bool]] = [
        Batch.campaign_id.in_(ids),
        Coupon.member_id.is_not(None),
        Coupon.issued_at < closes,
    ]
    issued_day = local_day(session, zone, Coupon.issued_at, [Coupon.issued_at < closes])
    by_coupon = (
        select(
            Batch.campaign_id.label("campaign_id"),
            Coupon.member_id.label("member_id"),
            Coupon.issued_at.label("at"),
        )
        .join(Batch, Batch.id == Coupon.batch_id)
        .join(Campaign, Campaign.id == Batch.campaign_id)
        .where(*issued_where, issued_day <= Campaign.ends_on)
    )
    person = func.coalesce(Touchpoint.member_id, VisitorLink.member_id)
    touch_where: list[ColumnElement[bool]] = [
        Touchpoint.campaign_id.in_(ids),
        Touchpoint.occurred_at < closes,
    ]
    touch_day = local_day(session, zone, Touchpoint.occurred_at, touch_where)
    by_touch = (
        select(
            Touchpoint.campaign_id.label("campaign_id"),
            person.label("member_id"),
            Touchpoint.occurred_at.label("at"),
        )
        .outerjoin(VisitorLink, VisitorLink.visitor_id == Touchpoint.visitor_id)
        .join(Campaign, Campaign.id == Touchpoint.campaign_id)
        .where(
            *touch_where,
            person.is_not(None),
            Touchpoint.kind != TouchKind.COUPON_USED,
            not_(
                and_(
                    Touchpoint.source == DERIVED_SOURCE,
                    Touchpoint.external_id.like(_DERIVED_PURCHASE),
                )
            ),
            touch_day <= Campaign.ends_on,
        )
    )
    reached = union_all(by_coupon, by_touch).subquery("reached")
    targeted = (
        select(
            reached.c.campaign_id,
            reached.c.member_id,
            func.min(reached.c.at).label("first_at"),
        )
        .group_by(reached.c.campaign_id, reached.c.member_id)
        .subquery("targeted")
    )
    bought_where: list[ColumnElement[bool]] = [
        Purchase.occurred_at >= opens,
        Purchase.occurred_at < closes,
    ]
    bought_day = local_day(session, zone, Purchase.occurred_at, bought_where)
    converted = exists(
        select(Purchase.id).where(
            Purchase.member_id == targeted.c.member_id,
            *bought_where,
            Purchase.net_base_amount > 0,
            Purchase.state != PurchaseState.REFUNDED,
            Purchase.occurred_at >= targeted.c.first_at,
            bought_day >= Campaign.starts_on,
            bought_day <= Campaign.ends_on,
        )
    )
    pairs = (
        select(
            group_key(dimension, today).label("grp"),
            case((converted, 1), else_=0).label("converted"),
        )
        .select_from(targeted)
        .join(Member, Member.id == targeted.c.member_id)
        .join(Campaign, Campaign.id == targeted.c.campaign_id)
        .subquery("pairs")
    )
    rows = session.execute(
        select(pairs.c.grp, func.count(), func.coalesce(func.sum(pairs.c.converted), 0)).group_by(
            pairs.c.grp
        )
    ).all()
    return pd.DataFrame(
        {
            "group": pd.Series([str(r[0]) for r in rows], dtype=object),
            "targeted": pd.Series([int(r[1]) for r in rows], dtype="int64"),
            "converted": pd.Series([int(r[2]) for r in rows], dtype="int64"),
        }
    )


# --- totals, order, exports -------------------------------------------------------------


def totals(frame: pd.DataFrame) -> dict[str, Any]:
    """The total row of a profile or a response frame: counts and money added up, shares,
    rates and averages computed from the totals."""
    found: dict[str, Any] = {"group": None}
    places = minor_units(str(frame.attrs.get("currency") or "CNY"))
    run = frame.attrs.get("run")
    value_places = minor_units(run["currency"]) if run else places
    for column in frame.columns:
        if column == "group" or column in PERCENT_COLUMNS:
            continue
        if column in ("revenue", "value"):
            found[column] = sum(frame[column], ZERO)
        elif column not in ("revenue_per_member", "average_value"):
            found[column] = int(frame[column].sum())
    if "members" in found:
        found["member_share_pct"] = _percent(found["members"], found["members"])
        found["revenue_share_pct"] = _percent(found["revenue"], found["revenue"])
        found["revenue_per_member"] = _per(found["revenue"], found["members"], places)
    if "scored" in found:
        found["average_value"] = _per(found["value"], found["scored"], value_places)
    if "targeted" in found:
        found["conversion_pct"] = _percent(found["converted"], found["targeted"])
    return found


def sorted_frame(frame: pd.DataFrame, column: str, *, descending: bool = False) -> pd.DataFrame:
    """`frame` ordered by `column`: groups as people read them (case aside; age bands by
    age), figures by value, an empty figure after the others; ``unknown`` stays last either
    way."""
    if column not in frame.columns:
        raise ValidationFailed(
            "audience.sort",
            "'%(column)s' is not a column of this table to sort by.",
            column=column[:40],
        )
    values = list(frame[column])
    known = [i for i in range(len(frame)) if frame["group"].iloc[i] != UNKNOWN]
    unknown = [i for i in range(len(frame)) if frame["group"].iloc[i] == UNKNOWN]

    bands = {code: i for i, code in enumerate(age_bands.CODES)}
    by_band = column == "group" and frame.attrs.get("dimension") == "age_band"

    def key(i: int) -> Any:
        v = values[i]
        if by_band:  # youngest first, as the bands read
            return bands.get(str(v), len(bands)), str(v)
        if column == "group":
            return str(v).casefold(), str(v)
        return v

    present = [i for i in known if values[i] is not None]
    missing = [i for i in known if values[i] is None]
    order = sorted(present, key=key, reverse=descending) + missing + unknown
    result = frame.iloc[order].reset_index(drop=True)
    result.attrs = dict(frame.attrs)
    return result


def column_header(column: str) -> str:
    """An English header for an export."""
    if column in BASE_COLUMNS:
        return BASE_COLUMNS[column]
    if column in RUN_COLUMNS:
        return RUN_COLUMNS[column]
    if column in RESPONSE_COLUMNS:
        return RESPONSE_COLUMNS[column]
    if column.startswith(LAYER_PREFIX):
        code = column.removeprefix(LAYER_PREFIX)
        return f"Layer: {LAYER_NAMES.get(code, code)}"
    if column.startswith(RFM_PREFIX):
        return f"RFM: {column.removeprefix(RFM_PREFIX)}"
    if column.startswith(TYPE_PREFIX):
        code = column.removeprefix(TYPE_PREFIX)
        return f"Loyalty type: {loyalty_types.TYPE_NAMES.get(code, code)}"
    return column


Kind = Literal["text", "money", "percent", "count"]


def _kind(column: str) -> Kind:
    if column == "group":
        return "text"
    if column in MONEY_COLUMNS:
        return "money"
    if column in PERCENT_COLUMNS:
        return "percent"
    return "count"


def table(frame: pd.DataFrame) -> pd.DataFrame:
    """The exported table: the rows then the total, English headers (the first names the
    dimension), numbers as numbers (empty where there is none)."""
    dimension = str(frame.attrs.get("dimension") or "group")
    total = totals(frame)
    records = [list(r) for r in frame.itertuples(index=False, name=None)]
    records.append(["Total" if c == "group" else total.get(c) for c in frame.columns])
    headers = [
        DIMENSION_NAMES.get(dimension, "Group") if c == "group" else column_header(str(c))
        for c in frame.columns
    ]
    return pd.DataFrame(records, columns=headers, dtype=object)


def to_csv(frame: pd.DataFrame) -> bytes:
    """UTF-8 with a byte-order mark (so Excel opens Chinese intact): the header, the rows, the
    total; every cell through `safe_cell`."""
    exported = table(frame)
    exported = exported.map(lambda v: "" if v is None else safe_cell(v))
    exported = exported.rename(columns=safe_cell)
    return exported.to_csv(index=False).encode("utf-8-sig")


def to_xlsx(frame: pd.DataFrame, title: Sequence[str] = ()) -> bytes:
    """For people: a title block (when given) above the table, the header frozen, an
    autofilter over the rows (not the total), money in the currency's minor units,
    percentages as fractions shown 0.00%, counts as whole numbers."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    exported = table(frame)
    columns = [str(c) for c in frame.columns]
    places = minor_units(str(frame.attrs.get("currency") or "CNY"))
    money = "#,##0" + ("." + "0" * places if places else "")
    formats: dict[Kind, str] = {
        "text": "General",
        "money": money,
        "percent": "0.00%",
        "count": "#,##0",
    }
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Audience"
    header_row = 1
    if title:
        for number, line in enumerate(title, start=1):
            sheet.cell(number, 1, safe_cell(line))
        sheet["A1"].font = Font(bold=True, size=14)
        header_row = len(title) + 2
    for index, header in enumerate(exported.columns, start=1):
        sheet.cell(header_row, index, safe_cell(str(header))).font = Font(bold=True)
    widths = [len(str(h)) for h in exported.columns]
    for row_index, record in enumerate(
        exported.itertuples(index=False, name=None), start=header_row + 1
    ):
        for index, (value, column) in enumerate(zip(record, columns, strict=True), start=1):
            kind = _kind(column)
            cell_value: Any = None if value is None else value
            if kind == "percent" and cell_value is not None:
                cell_value = Decimal(cell_value) / 100
            elif kind == "count" and cell_value is not None:
                cell_value = int(cell_value)
            elif kind == "text" and cell_value is not None:
                cell_value = safe_cell(str(cell_value))
            cell = sheet.cell(row_index, index, cell_value)
            if cell_value is not None and kind != "text":
                cell.number_format = formats[kind]
            widths[index - 1] = max(widths[index - 1], len(str(value or "")))
    last = header_row + len(exported)
    for cell in sheet[last]:
        cell.font = Font(bold=True)  # the total row
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(40, max(8, width + 2))
    sheet.freeze_panes = f"A{header_row + 1}"
    corner = f"{get_column_letter(len(columns))}{max(last - 1, header_row)}"
    sheet.auto_filter.ref = f"A{header_row}:{corner}"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
