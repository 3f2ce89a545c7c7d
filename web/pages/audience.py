"""The audience page: members by region, city, age band, gender, occupation or industry,
with their revenue in a period, the latest value run's value, pyramid layers, RFM segments and
loyalty types, and how each group responded to campaigns (`analytics.audience`).

Everything is a plain link or a GET form, so the page works without JavaScript and every view
is an address to share: `dimension`, `from`/`to` (local dates, inclusive; the period presets
of the ROI report), `campaign` (one campaign's response; every campaign overlapping the
period without it), `sort`/`dir` (a header sorts by its column; `unknown` stays last). A bad
value is named and left out, and the answer is a 422 with the page still drawn. The exports
(`/audience.csv`, `/audience.xlsx`) take the same parameters and hold the profile table as
shown, with its total. Charts (`static/audience.js`) draw the JSON the page embeds; every
figure is also in a table. Marketers, finance and admins read it; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from analytics import audience
from analytics.audience import LAYER_PREFIX, RFM_PREFIX, TYPE_PREFIX, UNKNOWN
from campaigns.models import Campaign
from core.accounts.models import Role, User
from core.errors import RetainError, ValidationFailed
from core.money import format_decimal, minor_units
from web.deps import AppSettings, Db, require_roles
from web.pages.reports import Now, filter_day, filter_id, period_presets
from web.rendering import N_, render, t

router = APIRouter()
READERS = (Role.MARKETER, Role.FINANCE, Role.ADMIN)
Reader = Annotated[User, Depends(require_roles(*READERS))]

MAX_ROWS = 200  # rows the page draws; the exports hold every group
CHART_GROUPS = 20  # the largest groups charted
CAMPAIGN_CHOICES = 500  # campaigns offered in the list, newest first

DIMENSION_LABELS: dict[str, str] = {
    "region": N_("Region"),
    "city": N_("City"),
    "age_band": N_("Age band"),
    "gender": N_("Gender"),
    "occupation": N_("Occupation"),
    "industry": N_("Industry"),
}
GROUP_LABELS: dict[str, str] = {
    UNKNOWN: N_("Unknown"),
}
AGE_BAND_LABELS: dict[str, str] = {
    "under-18": N_("Under 18"),
    "18-24": "18–24",
    "25-34": "25–34",
    "35-44": "35–44",
    "45-54": "45–54",
    "55-64": "55–64",
    "65-plus": N_("65 and over"),
}
GENDER_LABELS: dict[str, str] = {
    "female": N_("Female"),
    "male": N_("Male"),
    "other": N_("Other"),
}
COLUMN_LABELS: dict[str, str] = {
    "members": N_("Members"),
    "member_share_pct": N_("Share of members"),
    "purchasing_members": N_("Purchasing members"),
    "revenue": N_("Revenue"),
    "revenue_share_pct": N_("Share of revenue"),
    "revenue_per_member": N_("Revenue per member"),
    "scored": N_("Scored members"),
    "value": N_("Value"),
    "average_value": N_("Average value"),
}
LAYER_LABELS: dict[str, str] = {
    "most_valuable": N_("Most valuable"),
    "most_growable": N_("Most growable"),
    "low_contribution": N_("Low contribution"),
    "negative": N_("Negative value"),
}
SEGMENT_LABELS: dict[str, str] = {
    "Champions": N_("Champions"),
    "Loyal Customers": N_("Loyal Customers"),
    "Potential Loyalist": N_("Potential Loyalist"),
    "New Customers": N_("New Customers"),
    "Promising": N_("Promising"),
    "Need Attention": N_("Need Attention"),
    "About To Sleep": N_("About To Sleep"),
    "At Risk": N_("At Risk"),
    "Can't Lose Them": N_("Can't Lose Them"),
    "Hibernating": N_("Hibernating"),
    "Lost": N_("Lost"),
    "No Purchase": N_("No Purchase"),
}
TYPE_LABELS: dict[str, str] = {
    "super_value": N_("Super-value loyalty"),
    "incentive": N_("Incentive loyalty"),
    "price": N_("Price loyalty"),
    "inertia": N_("Inertia loyalty"),
    "none": N_("None / new"),
}
RESPONSE_LABELS: dict[str, str] = {
    "targeted": N_("Targeted"),
    "converted": N_("Converted"),
    "conversion_pct": N_("Conversion rate"),
}
SORTABLE = frozenset({"group", *COLUMN_LABELS, *(LAYER_PREFIX + code for code in LAYER_LABELS)})
MONEY = ("revenue", "revenue_per_member", "value", "average_value")
PERCENT = ("member_share_pct", "revenue_share_pct", "conversion_pct")
DIRECTIONS = ("asc", "desc")


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "…"


@dataclass
class AudienceView:
    """What the page was asked for, understood: bad values named in `problems` and left out."""

    dimension: str = "region"
    start: date | None = None
    end: date | None = None
    campaign_id: int | None = None
    sort: str | None = None
    descending: bool = False
    problems: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)

    def query(self, **changes: str | None) -> str:
        """This view's query string ("?…", or "" when empty) with some parameters changed
        (None or "" drops one)."""
        merged: dict[str, str | None] = {**self.links, **changes}
        query = urlencode({k: v for k, v in merged.items() if v})
        return f"?{query}" if query else ""

    def href(self, **changes: str | None) -> str:
        """This view's address with some parameters changed."""
        return "/audience" + self.query(**changes)


def parse(request: Request, db: Db) -> AudienceView:
    params = dict(request.query_params)
    view = AudienceView()
    problems = view.problems
    dimension = params.get("dimension", "") or "region"
    if dimension in audience.DIMENSIONS:
        view.dimension = dimension
    else:
        problems.append(
            t(request, "'%(dimension)s' is not a way to group members", dimension=_shown(dimension))
        )
    start = filter_day(request, params.get("from", ""), problems)
    end = filter_day(request, params.get("to", ""), problems)
    if start and end and start > end:
        problems.append(
            t(
                request,
                "The period from %(start)s to %(end)s ends before it starts",
                start=start.isoformat(),
                end=end.isoformat(),
            )
        )
        start = end = None
    view.start, view.end = start, end
    campaign = params.get("campaign", "")
    if campaign:
        found = filter_id(request, campaign, "campaign", problems)
        if found is not None and db.get(Campaign, found) is None:
            problems.append(t(request, "There is no campaign #%(id)s", id=found))
            found = None
        view.campaign_id = found
    column, direction = params.get("sort", ""), params.get("dir", "")
    if column and column not in SORTABLE:
        problems.append(
            t(request, "'%(column)s' is not a column to sort by", column=_shown(column))
        )
        column = ""
    if direction and direction not in DIRECTIONS:
        problems.append(
            t(request, "'%(dir)s' is not a sort direction (asc or desc)", dir=_shown(direction))
        )
        direction = ""
    view.sort, view.descending = column or None, direction == "desc"
    view.links = {
        "dimension": "" if view.dimension == "region" else view.dimension,
        "from": start.isoformat() if start else "",
        "to": end.isoformat() if end else "",
        "campaign": str(view.campaign_id) if view.campaign_id else "",
        "sort": column,
        "dir": "desc" if column and view.descending else "",
    }
    return view


# --- how figures read ---------------------------------------------------------------------


def group_label(request: Request, dimension: str, group: str) -> str:
    """A group as people read it: bands and genders in words, unknown translated, other
    values as typed."""
    if group == UNKNOWN:
        return t(request, GROUP_LABELS[UNKNOWN])
    if dimension == "age_band" and group in AGE_BAND_LABELS:
        label = AGE_BAND_LABELS[group]
        return t(request, label) if label[0].isalpha() else label
    if dimension == "gender" and group in GENDER_LABELS:
        return t(request, GENDER_LABELS[group])
    return group


def _display(value: Any, column: str, places: int) -> str:
    if value is None or value is pd.NA:
        return "—"
    if column in MONEY:
        return format_decimal(Decimal(value), places)
    if column in PERCENT:
        return f"{Decimal(value):.2f}%"
    return f"{int(value):,}"


def _number(value: Any) -> float | None:
    return None if value is None else float(str(value))


def _header(view: AudienceView, column: str, label: str, numeric: bool) -> dict[str, Any]:
    active = column == (view.sort or "")
    return {
        "id": column,
        "label": label,
        "numeric": numeric,
        "aria_sort": ("descending" if view.descending else "ascending") if active else None,
        "href": view.href(sort=column, dir="desc" if active and not view.descending else ""),
    }


def _columns(frame: pd.DataFrame) -> list[str]:
    """The main table's figures: the profile, then (with a run) value and the layers."""
    shown = [c for c in COLUMN_LABELS if c in frame.columns]
    return [*shown, *audience.layer_columns(frame)]


def _label(request: Request, column: str) -> str:
    if column in COLUMN_LABELS:
        return t(request, COLUMN_LABELS[column])
    code = column.removeprefix(LAYER_PREFIX)
    return t(request, LAYER_LABELS[code]) if code in LAYER_LABELS else code


def _mix(request: Request, row: Mapping[Any, Any], columns: list[str], prefix: str) -> list[Any]:
    """A row's members per RFM segment or loyalty type: the non-zero ones, largest first."""
    labels = SEGMENT_LABELS if prefix == RFM_PREFIX else TYPE_LABELS
    counts = [(int(row[c]), c.removeprefix(prefix)) for c in columns if int(row[c])]
    counts.sort(key=lambda pair: -pair[0])  # stable: ties keep the display order
    return [
        {"name": t(request, labels[code]) if code in labels else code, "count": f"{n:,}"}
        for n, code in counts
    ]


def profile_table(
    request: Request, view: AudienceView, frame: pd.DataFrame, places: int
) -> dict[str, Any]:
    """The profile as the template draws it: headers that sort, rows of shown figures, the
    total, and each row's RFM segments and loyalty types."""
    columns = _columns(frame)
    headers = [_header(view, "group", t(request, DIMENSION_LABELS[view.dimension]), False)]
    headers += [_header(view, c, _label(request, c), True) for c in columns]
    segments, types = audience.segment_columns(frame), audience.type_columns(frame)
    run = frame.attrs.get("run")
    value_places = minor_units(run["currency"]) if run else places
    rows = []
    for record in frame.head(MAX_ROWS).to_dict("records"):
        rows.append(
            {
                "group": group_label(request, view.dimension, str(record["group"])),
                "unknown": record["group"] == UNKNOWN,
                "cells": [
                    _display(
                        record[c], c, value_places if c in ("value", "average_value") else places
                    )
                    for c in columns
                ],
                "segments": _mix(request, record, segments, RFM_PREFIX),
                "types": _mix(request, record, types, TYPE_PREFIX),
            }
        )
    total = audience.totals(frame)
    return {
        "headers": headers,
        "rows": rows,
        "count": len(frame),
        "total": [
            _display(total.get(c), c, value_places if c in ("value", "average_value") else places)
            for c in columns
        ],
        "total_members": total.get("members", 0),
        "total_revenue": total.get("revenue", Decimal(0)),
        "layer_count": len(audience.layer_columns(frame)),
        "has_mix": bool(segments or types),
    }


def response_table(request: Request, view: AudienceView, frame: pd.DataFrame) -> dict[str, Any]:
    columns = list(RESPONSE_LABELS)
    rows = [
        {
            "group": group_label(request, view.dimension, str(r["group"])),
            "unknown": r["group"] == UNKNOWN,
            "cells": [_display(r[c], c, 0) for c in columns],
        }
        for r in frame.head(MAX_ROWS).to_dict("records")
    ]
    total = audience.totals(frame)
    return {
        "headers": [t(request, RESPONSE_LABELS[c]) for c in columns],
        "rows": rows,
        "count": len(frame),
        "total": [_display(total.get(c), c, 0) for c in columns],
        "targeted": int(total.get("targeted") or 0),
        "campaigns": frame.attrs.get("campaigns", []),
    }


def chart_data(
    request: Request, view: AudienceView, frame: pd.DataFrame, response: pd.DataFrame
) -> dict[str, Any]:
    """The charts' figures: the largest groups (in the profile's own order) and the response
    of each group that was targeted."""
    top = frame.head(CHART_GROUPS)
    reached = response.head(CHART_GROUPS)
    return {
        "labels": [group_label(request, view.dimension, str(g)) for g in top["group"]],
        "members": [int(n) for n in top["members"]],
        "revenue": [_number(v) for v in top["revenue"]],
        "response_labels": [group_label(request, view.dimension, str(g)) for g in reached["group"]],
        "conversion": [_number(v) for v in reached["conversion_pct"]],
        "targeted": [int(n) for n in reached["targeted"]],
        "text": {
            "members": t(request, "Members"),
            "revenue": t(request, "Revenue"),
            "conversion": t(request, "Conversion rate (%)"),
            "targeted": t(request, "Targeted"),
        },
    }


def _campaign_choices(db: Db, chosen: int | None) -> list[Any]:
    """The newest campaigns for the list, and the chosen one when it is older than those."""
    columns = (Campaign.id, Campaign.code, Campaign.name, Campaign.starts_on, Campaign.ends_on)
    found = list(
        db.execute(
            select(*columns)
            .order_by(Campaign.starts_on.desc(), Campaign.id.desc())
            .limit(CAMPAIGN_CHOICES)
        ).all()
    )
    if chosen is not None and all(c.id != chosen for c in found):
        found += db.execute(select(*columns).where(Campaign.id == chosen)).all()
    return found


def _frames(
    db: Db, settings: AppSettings, view: AudienceView, today: date
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The profile in its own order (largest groups first) and as the view sorts it, and the
    campaign response."""
    frame = audience.profile(
        db,
        view.dimension,
        start=view.start,
        end=view.end,
        zone=settings.zone,
        today=today,
        base=settings.base_currency,
    )
    shown = frame
    if view.sort and view.sort in frame.columns:
        shown = audience.sorted_frame(frame, view.sort, descending=view.descending)
    elif view.sort:  # a layer, with no value run to show it: the default order
        view.sort, view.descending = None, False
        view.links.update(sort="", dir="")
    response = audience.campaign_response(
        db,
        view.dimension,
        campaign_id=view.campaign_id,
        start=view.start,
        end=view.end,
        zone=settings.zone,
        today=today,
    )
    return frame, shown, response


@router.get("/audience")
def audience_page(
    request: Request, user: Reader, db: Db, settings: AppSettings, clock: Now
) -> Response:
    view = parse(request, db)
    today = clock.date()
    frame, shown, response = _frames(db, settings, view, today)
    places = minor_units(settings.base_currency)
    all_unknown = len(frame) == 1 and frame["group"].iloc[0] == UNKNOWN
    context: dict[str, Any] = {
        "view": view,
        "params": dict(request.query_params),
        "problems": view.problems,
        "dimensions": [
            {
                "code": d,
                "label": t(request, DIMENSION_LABELS[d]),
                "href": view.href(dimension=d, sort=None, dir=None),
                "current": d == view.dimension,
            }
            for d in audience.DIMENSIONS
        ],
        "dimension_label": t(request, DIMENSION_LABELS[view.dimension]),
        "presets": period_presets(view.href, view.start, view.end, today),
        "campaigns": _campaign_choices(db, view.campaign_id),
        "table": profile_table(request, view, shown, places),
        "response": response_table(request, view, response),
        "chart": chart_data(request, view, frame, response),
        "run": frame.attrs.get("run"),
        "all_unknown": all_unknown,
        "max_rows": MAX_ROWS,
        "chart_groups": CHART_GROUPS,
        "export_query": view.query(),
    }
    return render(
        request,
        "analytics/audience.html",
        context,
        status_code=422 if view.problems else 200,
    )


def _title(view: AudienceView, frame: pd.DataFrame, at: datetime, base: str) -> list[str]:
    """The XLSX title block, in English as the ROI report's."""
    if view.start or view.end:
        start = view.start.isoformat() if view.start else "the beginning"
        end = view.end.isoformat() if view.end else "today"
        period = f"Period: {start} to {end} (local dates, inclusive)"
    else:
        period = "Period: all dates"
    run = frame.attrs.get("run")
    value = (
        f"Value, layers, RFM segments and loyalty types: value run #{run['id']} as of"
        f" {run['as_of'].isoformat()} ({run['currency']})"
        if run
        else "Value, layers, RFM segments and loyalty types: no value run yet"
    )
    return [
        f"Audience by {audience.DIMENSION_NAMES[view.dimension].lower()}",
        period,
        f"Members: those who joined by the end of the period; revenue: net of refunds, in {base}",
        value,
        f"Generated {at:%Y-%m-%d %H:%M} ({at.tzinfo})",
    ]


@router.get("/audience.{fmt}")
def audience_export(
    request: Request, fmt: str, user: Reader, db: Db, settings: AppSettings, clock: Now
) -> Response:
    if fmt not in ("csv", "xlsx"):
        raise RetainError("audience.format", "Export as .csv or .xlsx.")
    view = parse(request, db)
    if view.problems:  # a file is no place to say a filter was ignored: refuse it instead
        raise ValidationFailed(
            "audience.filter", "%(problems)s.", problems="; ".join(view.problems)
        )
    _, frame, _ = _frames(db, settings, view, clock.date())
    name = f"audience-by-{view.dimension.replace('_', '-')}-{clock:%Y%m%d}"
    if fmt == "csv":
        return Response(
            audience.to_csv(frame),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        audience.to_xlsx(frame, _title(view, frame, clock, settings.base_currency)),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )
