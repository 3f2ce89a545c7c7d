"""The ROI (input-output ratio) report page: filters, table, charts, CSV and XLSX exports.

Everything the page offers is a plain link or a GET form, so it works without JavaScript and
every address can be shared: period presets (`report_periods`) become `from`/`to`; a header
sorts by its column (`sort`, `dir=desc`; "—" last either way); a row drills down (a channel
or an owner to its campaigns, a month to that month's campaigns, a campaign to its page),
with a breadcrumb back; `compare=1` with a whole period adds the previous period's figures
and the change (`campaigns.comparison`). The exports take the same parameters, so a file
holds what the page showed, in its order.

`basis` chooses the revenue: directly linked (the default: revenue records and purchases that
carried the campaign's code or coupon) or an attribution model's, read from stored runs by
campaign for the report's period (`attribution.roi`: the model's credited value replaces the
linked purchase revenue; revenue records stay). When the run is not stored the page says so
and links to the attribution page, where it can be computed.

`loyalty_cost` chooses the cost: by default (on) the approved receipts plus what the loyalty
program gave away for each campaign in the period (`loyalty.campaign_costs`: coupon
discounts, bonus points and rewards at the value per point), added to the report made on any
basis; `loyalty_cost=0` shows approved receipts only, the report as it was before. The form's
checkbox sends `loyalty_cost=0` from a hidden field before it and `1` when ticked (the last
value counts), so unticking it works without JavaScript; the page, the XLSX title block and
the file name say which."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from attribution import lift_data
from attribution import roi as basis_roi
from attribution.roi import BASIS_NAMES, DIRECT, INCREMENTAL, Attributed, NotComputed
from campaigns import exports, report_data, report_periods
from campaigns.comparison import (
    NOT_IN_CURRENT,
    NOT_IN_PREVIOUS,
    PARTS,
    Comparison,
    Part,
    column_id,
    compare,
)
from campaigns.models import Campaign, CampaignStatus, Channel
from campaigns.report_periods import Period
from campaigns.reports import (
    COLUMNS,
    GROUPS,
    KEY_LABELS,
    LABELS,
    GroupBy,
    RoiReport,
    TableRow,
    sorted_report,
)
from core import bounds
from core.accounts.models import Role, User
from core.errors import RetainError, ValidationFailed
from core.money import format_decimal, minor_units
from core.text import Phrase
from loyalty import campaign_costs
from web.deps import AppSettings, Db, require_roles
from web.rendering import N_, render, say, t

router = APIRouter()
STAFF = (Role.MARKETER, Role.FINANCE, Role.ADMIN)


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "…"


def _ignored(request: Request, exc: RetainError) -> str:
    """A refusal as a filter's problem, in the reader's language: the page adds "; it was
    ignored", so without its full stop."""
    return say(request, exc).rstrip(".。")


def filter_day(request: Request, value: str, problems: list[str]) -> date | None:
    """A filter's YYYY-MM-DD within the bounds of any date; a bad one is named and ignored."""
    if not value:
        return None
    try:
        return bounds.check_day(date.fromisoformat(value), "date", label=f"'{value}'")
    except ValueError:
        problems.append(
            t(request, "'%(value)s' is not a date like 2026-03-31", value=_shown(value))
        )
    except ValidationFailed as exc:
        problems.append(_ignored(request, exc))
    return None


def filter_text(
    request: Request, value: str, label: Phrase, size: int, problems: list[str]
) -> str | None:
    """A filter's text held to its column; a bad one is named (by its `label`, a word the
    catalog translates) and ignored."""
    if not value:
        return None
    try:
        return bounds.check_text(value, "filter", size, label=label)
    except ValidationFailed as exc:
        problems.append(_ignored(request, exc))
        return None


def filter_id(request: Request, value: str, label: str, problems: list[str]) -> int | None:
    """A filter's record id (a choice from a list); a bad one is named and ignored."""
    try:
        return bounds.parse_id(value, label)
    except ValidationFailed as exc:
        problems.append(_ignored(request, exc))
        return None


def parse_filter(
    request: Request, params: dict[str, str]
) -> tuple[report_data.ReportFilter, list[str]]:
    """The report filter from query parameters; bad values are ignored and named, in the
    reader's language. `from` and `to` select documents by their own dates; `running_from`
    and `running_to` select campaigns by their run dates."""
    problems: list[str] = []
    return (
        report_data.ReportFilter(
            start=filter_day(request, params.get("from", ""), problems),
            end=filter_day(request, params.get("to", ""), problems),
            running_from=filter_day(request, params.get("running_from", ""), problems),
            running_to=filter_day(request, params.get("running_to", ""), problems),
            channel=filter_text(
                request,
                params.get("channel", ""),
                N_("The channel"),
                bounds.length(Channel.code),
                problems,
            ),
            status=filter_text(
                request,
                params.get("status", ""),
                N_("The status"),
                bounds.length(Campaign.status),
                problems,
            ),
            owner_id=filter_id(request, params.get("owner", ""), "owner", problems),
        ),
        problems,
    )


def chart_data(report: RoiReport, by_month: RoiReport | None) -> dict[str, Any]:
    def number(value: object) -> float | None:
        return None if value is None else float(str(value))

    # The cost the ratios divide by: with loyalty cost, the total cost.
    cost = "total_cost" if report.loyalty_cost else "approved_cost"
    labels = [r.key.get("code") or next(iter(r.key.values())) for r in report.rows]
    data: dict[str, Any] = {
        "labels": labels,
        "ratio": [number(r.values["io_ratio"]) for r in report.rows],
        "budget": [number(r.values["budget"]) for r in report.rows],
        "cost": [number(r.values[cost]) for r in report.rows],
    }
    if by_month is not None:
        month_cost = "total_cost" if by_month.loyalty_cost else "approved_cost"
        data["months"] = [r.key["month"] for r in by_month.rows]
        data["month_revenue"] = [number(r.values["revenue"]) for r in by_month.rows]
        data["month_cost"] = [number(r.values[month_cost]) for r in by_month.rows]
    return data


def _options(db: Session) -> dict[str, Any]:
    return {
        "channels": db.execute(select(Channel.code, Channel.name).order_by(Channel.name)).all(),
        "owners": db.execute(select(User.id, User.name).order_by(User.name)).all(),
        "statuses": [s.value for s in CampaignStatus],
        "groups": GROUPS,
    }


Staff = Annotated[User, Depends(require_roles(*STAFF))]


def now(settings: AppSettings) -> datetime:
    """The time in the configured zone: today's date for the period presets, and when an
    export was made. A dependency, so a test can fix the day."""
    return datetime.now(settings.zone)


Now = Annotated[datetime, Depends(now)]


def fix_of(exc: RetainError) -> dict[str, str] | None:
    """Who can fix a report error and where, when the error says (a missing or wrong
    exchange rate: finance, on the rates page)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    url = details.get("fix_url")
    if not isinstance(url, str):
        return None
    return {"url": url, "who": str(details.get("fixed_by", "finance"))}


# Every column a report can be sorted by: a group's, a figure, a comparison column.
SORTABLE = frozenset(KEY_LABELS) | frozenset(LABELS) | frozenset(PARTS)
DIRECTIONS = ("asc", "desc")
PARTS_SHOWN: tuple[Part, ...] = ("previous", "change")


@dataclass
class RoiView:
    """The report as the page and its exports show it: filters understood, rows sorted,
    compared with the previous period when asked."""

    filters: report_data.ReportFilter
    group_by: GroupBy
    problems: list[str]
    sort: str | None = None  # None: the report's own order (by its first group column)
    descending: bool = False
    compare: bool = False  # asked for
    report: RoiReport | None = None  # sorted
    unsorted: RoiReport | None = None
    comparison: Comparison | None = None  # sorted as the report
    compare_note: str | None = None  # why a comparison asked for is not shown
    basis: str = DIRECT  # the revenue basis: directly linked, or an attribution model
    loyalty: bool = True  # count the loyalty cost in the cost (the default)
    attributed: Attributed | None = None  # the stored runs an attributed basis read
    links: dict[str, str] = field(default_factory=dict)  # the understood parameters

    def href(self, **changes: str | None) -> str:
        """This report's address with some parameters changed (None or "" drops one)."""
        merged: dict[str, str | None] = {**self.links, **changes}
        query = urlencode({k: v for k, v in merged.items() if v})
        return "/reports/roi" + (f"?{query}" if query else "")


# What `loyalty_cost` may say: on (the default, also when absent) or off.
LOYALTY_SWITCH = {"": True, "1": True, "on": True, "true": True, "0": False, "false": False}


def _with_loyalty(
    db: Db, settings: AppSettings, view: RoiView, report: RoiReport, f: report_data.ReportFilter
) -> RoiReport:
    """`report` with the loyalty cost of its campaigns in `f`'s period, when the view counts
    it; else the report as it is."""
    if not view.loyalty:
        return report
    return campaign_costs.include(db, report, f, settings.zone, base=settings.base_currency)


def _sort_of(params: dict[str, str], request: Request, problems: list[str]) -> tuple[str, bool]:
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
    return column, direction == "desc"


def _parse(request: Request) -> RoiView:
    params = dict(request.query_params)
    filters, problems = parse_filter(request, params)
    group = params.get("group_by", "campaign")
    group_by: GroupBy = group if group in GROUPS else "campaign"
    sort, descending = _sort_of(params, request, problems)
    basis = params.get("basis", "") or DIRECT
    if basis not in BASIS_NAMES:
        problems.append(t(request, "'%(basis)s' is not a revenue basis", basis=_shown(basis)))
        basis = DIRECT
    view = RoiView(filters, group_by, problems, compare=params.get("compare") in ("1", "on"))
    view.basis = basis
    loyalty = params.get("loyalty_cost", "")
    if loyalty not in LOYALTY_SWITCH:
        problems.append(
            t(request, "'%(value)s' is not a loyalty cost choice (1 or 0)", value=_shown(loyalty))
        )
        loyalty = ""
    view.loyalty = LOYALTY_SWITCH[loyalty]
    view.sort, view.descending = sort or None, descending
    f = filters
    view.links = {
        "from": f.start.isoformat() if f.start else "",
        "to": f.end.isoformat() if f.end else "",
        "running_from": f.running_from.isoformat() if f.running_from else "",
        "running_to": f.running_to.isoformat() if f.running_to else "",
        "group_by": "" if group_by == "campaign" else group_by,
        "channel": f.channel or "",
        "status": f.status or "",
        "owner": str(f.owner_id) if f.owner_id else "",
        "compare": "1" if view.compare else "",
        "sort": sort,
        "dir": "desc" if sort and descending else "",
        "basis": "" if basis == DIRECT else basis,
        "loyalty_cost": "" if view.loyalty else "0",
    }
    return view


def _previous(request: Request, view: RoiView) -> tuple[Period, Period] | None:
    """This period and the one before it, when a comparison is asked for and possible;
    otherwise says why not in `view.compare_note`."""
    f = view.filters
    if not view.compare:
        return None
    if not (f.start and f.end):
        view.compare_note = t(
            request,
            "To compare with the previous period, choose both From and To (or a period above).",
        )
        return None
    if f.end < f.start:
        view.compare_note = t(request, "From is after To, so there is no period to compare.")
        return None
    period = report_periods.Period(f.start, f.end)
    before = report_periods.previous(period)
    if before.start < bounds.FIRST_DAY:
        view.compare_note = t(
            request,
            "The previous period would start before %(day)s, the earliest date the report covers.",
            day=bounds.FIRST_DAY.isoformat(),
        )
        return None
    return period, before


def _compute(db: Db, settings: AppSettings, request: Request, view: RoiView) -> None:
    """Build the report (and the previous period's, when compared), sorted. Raises the
    report's RetainError (a missing exchange rate) for the caller to show."""

    report, view.attributed = basis_roi.roi(
        db,
        settings.base_currency,
        view.filters,
        view.group_by,
        zone=settings.zone,
        basis=view.basis,
    )
    report = _with_loyalty(db, settings, view, report, view.filters)
    view.unsorted = report
    periods = _previous(request, view)
    comparison = None
    if periods is not None:
        period, before = periods
        earlier_filters = replace(view.filters, start=before.start, end=before.end)
        try:
            earlier, _ = basis_roi.roi(
                db,
                settings.base_currency,
                earlier_filters,
                view.group_by,
                zone=settings.zone,
                basis=view.basis,
            )
        except NotComputed:
            view.compare_note = t(
                request,
                "The previous period, %(period)s, has no stored %(model)s run by campaign to"
                " compare with; compute it on the attribution page.",
                period=str(before),
                model=t(request, BASIS_NAMES[view.basis]),
            )
        else:
            earlier = _with_loyalty(db, settings, view, earlier, earlier_filters)
            comparison = compare(
                report,
                earlier,
                period,
                before,
                months_apart=report_periods.months_apart(period, before),
            )
    parts = (
        [column_id(c, p) for c in comparison.compared for p in PARTS_SHOWN] if comparison else []
    )
    columns = {*report.key_columns, *report.columns, *parts}
    if view.sort not in columns:  # e.g. sorted by code, then grouped by channel
        view.sort, view.descending = None, False
        view.links.update(sort="", dir="")
    if view.sort:
        report = sorted_report(report, view.sort, descending=view.descending)
        if comparison is not None:
            comparison = comparison.sorted(view.sort, descending=view.descending)
    view.report, view.comparison = report, comparison


# --- the page's table: headers that sort, rows that drill down, a breadcrumb ----------------


def _header(
    view: RoiView, column: str, label: str, part: str | None, numeric: bool
) -> dict[str, Any]:
    assert view.report is not None
    current = view.sort or view.report.key_columns[0]
    active = column == current
    descending = view.descending if view.sort else False
    return {
        "id": column,
        "label": label,
        "part": part,
        "numeric": numeric,
        "aria_sort": ("descending" if descending else "ascending") if active else None,
        "href": view.href(sort=column, dir="desc" if active and not descending else ""),
    }


def _headers(view: RoiView) -> list[dict[str, Any]]:
    assert view.report is not None
    found = [_header(view, k, KEY_LABELS.get(k, k), None, False) for k in view.report.key_columns]
    compared = view.comparison.compared if view.comparison is not None else ()
    for column, label in view.report.headers.items():
        found.append(_header(view, column, label, None, True))
        if column in compared:
            for part in PARTS_SHOWN:
                found.append(_header(view, column_id(column, part), label, part, True))
    return found


def _names(pairs: list[Any]) -> dict[str, Any]:
    """name → its one code or id; a name two share maps to None (no single place to go)."""
    found: dict[str, Any] = {}
    for ref, name in pairs:
        found[name] = None if name in found else ref
    return found


def _drill(view: RoiView, row: TableRow, options: dict[str, Any]) -> str | None:
    """Where a row leads: a campaign to its page; a channel or an owner to its campaigns;
    a month to the campaigns of that month (within the period shown)."""
    if row.campaign_id is not None:
        return f"/campaigns/{row.campaign_id}"
    drop_key_sort = {"sort": None, "dir": None} if view.sort in KEY_LABELS else {}
    to_campaigns = {"group_by": None, **drop_key_sort}
    if view.group_by == "channel":
        code = _names(options["channels"]).get(row.key.get("channel", ""))
        return view.href(channel=code, **to_campaigns) if code else None
    if view.group_by == "owner":
        owner = _names(options["owners"]).get(row.key.get("owner", ""))
        return view.href(owner=str(owner), **to_campaigns) if owner else None
    if view.group_by == "month":
        try:
            month = report_periods.month_period(row.key["month"])
        except (KeyError, ValueError):
            return None
        f = view.filters
        start = max(month.start, f.start) if f.start else month.start
        end = min(month.end, f.end) if f.end else month.end
        return view.href(**{"from": start.isoformat(), "to": end.isoformat()}, **to_campaigns)
    return None


def _breadcrumb(view: RoiView, options: dict[str, Any]) -> list[dict[str, Any]]:
    """ROI report (all channels) › a channel or an owner › what is shown."""
    drop = {"channel": None, "owner": None, "sort": None, "dir": None}
    crumbs: list[dict[str, Any]] = [
        {"kind": "root", "name": "", "href": view.href(group_by="channel", **drop)}
    ]
    f = view.filters
    if f.channel:
        name = dict(options["channels"]).get(f.channel, f.channel)
        crumbs.append(
            {"kind": "channel", "name": name, "href": view.href(group_by=None, owner=None)}
        )
    if f.owner_id:
        name = dict(options["owners"]).get(f.owner_id, f"#{f.owner_id}")
        crumbs.append({"kind": "owner", "name": name, "href": view.href(group_by=None)})
    crumbs.append({"kind": "current", "name": view.group_by, "href": None})
    return crumbs


def period_presets(
    href: Callable[..., str], start: date | None, end: date | None, today: date
) -> list[dict[str, Any]]:
    """The period preset links of a page with `from`/`to` (this month, last quarter, …, all
    dates), each with its link (`href(from=…, to=…)`) and whether it is the period shown."""
    found = []
    for name, period in report_periods.presets(today):
        found.append(
            {
                "name": name,
                "period": str(period),
                "href": href(**{"from": period.start.isoformat(), "to": period.end.isoformat()}),
                "current": (start, end) == (period.start, period.end),
            }
        )
    found.append(
        {
            "name": "all_dates",
            "period": "",
            "href": href(**{"from": None, "to": None}),
            "current": not (start or end),
        }
    )
    return found


def _notes(rows: list[TableRow], headers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each "—" means, per column that has one: the legend under the table. A row in
    one period only is said once for the whole row (`_row_notes`), not under every column."""
    whole_row = {NOT_IN_CURRENT, NOT_IN_PREVIOUS}
    found = []
    for header in headers:
        reasons = [r for r in exports.reasons(rows, header["id"]) if r not in whole_row]
        if header["numeric"] and reasons:
            found.append({**header, "reasons": reasons})
    return found


def _row_notes(comparison: Comparison | None) -> dict[str, bool]:
    rows = comparison.rows if comparison else []
    return {
        "current_only": any(r.previous is None for r in rows),
        "previous_only": any(r.current is None for r in rows),
    }


def _attribution_href(start: date | None, end: date | None) -> str:
    """The attribution page by campaign for a period, where its runs can be computed."""
    query = {"unit": "campaign"}
    if start:
        query["from"] = start.isoformat()
    if end:
        query["to"] = end.isoformat()
    return "/attribution?" + urlencode(query)


def _missing_runs(exc: NotComputed) -> dict[str, Any]:
    """The periods an attributed basis has no stored run for, each with its link."""
    return {
        "model": exc.model,
        "periods": [
            {
                "start": p.period_from,
                "end": p.period_to,
                "href": _attribution_href(p.period_from, p.period_to),
            }
            for p in exc.missing
        ],
    }


def _by_month(db: Db, settings: AppSettings, view: RoiView) -> RoiReport | None:
    """The report by month for the chart, on the page's basis; None when an attributed
    basis cannot give it (no period, or a month without a stored run)."""
    try:
        report, _ = basis_roi.roi(
            db,
            settings.base_currency,
            view.filters,
            "month",
            zone=settings.zone,
            basis=view.basis,
        )
    except (NotComputed, ValidationFailed):
        if view.basis == DIRECT:
            raise
        return None
    return _with_loyalty(db, settings, view, report, view.filters)


def _attributed(found: Attributed | None, base: str) -> dict[str, Any] | None:
    """What the page says of the runs behind an attributed basis."""
    if found is None:
        return None
    places = minor_units(base)
    newest = max(found.runs, key=lambda r: r.id or 0)
    return {
        "runs": len(found.runs),
        "ids": ", ".join(f"#{r.id}" for r in found.runs[:12])
        + ("…" if len(found.runs) > 12 else ""),
        "created_at": newest.created_at,
        "created_by": newest.created_by,
        "credited": format_decimal(found.credited, places),
        "no_campaign": format_decimal(found.no_campaign, places),
        "direct": format_decimal(found.direct_value, places),
    }


def _holdout_campaigns(db: Db, view: RoiView) -> list[dict[str, Any]] | None:
    """On the incremental basis, the campaigns measured against a holdout (with their lift
    page); None on any other basis."""
    if view.basis != INCREMENTAL:
        return None
    held = lift_data.campaigns_with_holdout(db, None)
    rows = db.execute(
        select(Campaign.id, Campaign.code).where(Campaign.id.in_(held)).order_by(Campaign.code)
    ).all()
    return [{"code": code, "href": f"/campaigns/{cid}/lift"} for cid, code in rows]


def basis_words(view: RoiView, translate: exports.Translate = exports.english) -> str | None:
    """An attributed revenue basis in words, for the XLSX title block (in the reader's
    language, as the rest of it); None for the default, directly linked, whose file stays as
    it always was."""
    if view.basis == DIRECT:
        return None
    if view.basis == INCREMENTAL:
        return translate(
            N_(
                "Incremental: for campaigns with a holdout group, what their members bought"
                " beyond the holdout's rate over the campaign window; other campaigns directly"
                " linked; revenue records kept"
            )
        )
    model = translate(BASIS_NAMES[view.basis])
    runs = ""
    if view.attributed is not None:
        runs = ", ".join(f"#{r.id}" for r in view.attributed.runs[:12])
    if runs:
        return exports.fill(
            translate,
            N_(
                "%(model)s attribution (stored run %(runs)s by campaign): purchase revenue as"
                " the model credited it, replacing the purchases linked by code or coupon;"
                " revenue records kept"
            ),
            model=model,
            runs=runs,
        )
    return exports.fill(
        translate,
        N_(
            "%(model)s attribution: purchase revenue as the model credited it, replacing the"
            " purchases linked by code or coupon; revenue records kept"
        ),
        model=model,
    )


def revenue_header(view: RoiView, translate: exports.Translate = exports.english) -> str | None:
    """What the exports' revenue column says of an attributed basis (None: the default)."""
    if view.basis == INCREMENTAL:
        return translate(N_("Incremental revenue"))
    if view.basis == DIRECT:
        return None
    return exports.fill(
        translate, N_("%(model)s attribution"), model=translate(BASIS_NAMES[view.basis])
    )


def reader(request: Request) -> exports.Translate:
    """The staff catalog's words in the request's language, for a file made from the page."""

    def translate(message: str) -> str:
        return t(request, message)

    return translate


@router.get("/reports/roi")
def roi_page(request: Request, user: Staff, db: Db, settings: AppSettings, clock: Now) -> Response:
    view = _parse(request)
    options = _options(db)
    context: dict[str, Any] = {
        "params": dict(request.query_params),
        "columns": COLUMNS,
        "view": view,
        "loyalty_off_href": view.href(loyalty_cost="0"),
        "loyalty_on_href": view.href(loyalty_cost=None),
        "problems": view.problems,
        "presets": period_presets(view.href, view.filters.start, view.filters.end, clock.date()),
        "breadcrumb": _breadcrumb(view, options),
        **options,
    }
    context.update(
        basis_names=BASIS_NAMES,
        basis_missing=None,
        attribution_href=_attribution_href(view.filters.start, view.filters.end),
    )
    try:
        _compute(db, settings, request, view)
    except NotComputed as exc:  # an attributed basis whose run is not stored: say so, link
        context.update(report=None, basis_missing=_missing_runs(exc))
    except RetainError as exc:  # e.g. a missing exchange rate: say which, who fixes it, where
        context.update(report=None, error=say(request, exc), error_fix=fix_of(exc))
    else:
        assert view.report is not None and view.unsorted is not None
        comparison = view.comparison
        rows: list[TableRow] = list(comparison.rows if comparison else view.report.rows)
        total: TableRow = comparison.total if comparison else view.report.total
        shown = [r.current for r in comparison.rows if r.current] if comparison else None
        charted = replace(view.report, rows=shown) if shown is not None else view.report
        by_month = view.unsorted if view.group_by == "month" else _by_month(db, settings, view)
        headers = _headers(view)
        context.update(
            report=view.report,
            comparison=comparison,
            headers=headers,
            lines=[(r, _drill(view, r, options)) for r in rows],
            total=total,
            notes=_notes([*rows, total], headers),
            row_notes=_row_notes(comparison),
            chart=chart_data(charted, by_month),
            attributed=_attributed(view.attributed, settings.base_currency),
            holdout_campaigns=_holdout_campaigns(db, view),
        )
    query = urlencode({k: v for k, v in view.links.items() if v})
    context["export_query"] = f"?{query}" if query else ""
    # The page still shows (without the bad filter), but the answer says the input was bad.
    return render(request, "reports/roi.html", context, status_code=422 if view.problems else 200)


def _title(
    view: RoiView,
    options: dict[str, Any],
    at: datetime,
    translate: exports.Translate = exports.english,
) -> exports.TitleBlock:
    f = view.filters
    order = None
    if view.sort and view.report is not None:
        header = next(
            c.header
            for c in exports.columns(
                view.report,
                view.comparison is not None,
                revenue_header(view, translate),
                translate,
            )
            if c.id == view.sort
        )
        order = exports.fill(
            translate,
            N_("%(column)s, descending") if view.descending else N_("%(column)s, ascending"),
            column=header,
        )
    return exports.TitleBlock(
        start=f.start,
        end=f.end,
        filters=exports.filter_words(
            f,
            channel_name=dict(options["channels"]).get(f.channel) if f.channel else None,
            owner_name=dict(options["owners"]).get(f.owner_id) if f.owner_id else None,
            translate=translate,
        ),
        generated_at=at,
        order=order,
        revenue_basis=basis_words(view, translate),
    )


@router.get("/reports/roi.{fmt}")
def roi_export(
    request: Request, fmt: str, user: Staff, db: Db, settings: AppSettings, clock: Now
) -> Response:
    if fmt not in ("csv", "xlsx"):
        raise RetainError("report.format", "Export as .csv or .xlsx.")
    view = _parse(request)
    if view.problems:  # a file is no place to say a filter was ignored: refuse it instead
        raise ValidationFailed("report.filter", "%(problems)s.", problems="; ".join(view.problems))
    _compute(db, settings, request, view)
    assert view.report is not None
    name = f"roi-by-{view.group_by}-{clock:%Y%m%d}"
    if view.basis != DIRECT:
        name += f"-{view.basis}"
    if not view.loyalty:
        name += "-without-loyalty-cost"
    # In the reader's language, as the page it was exported from (the API's and the CLI's
    # files stay English).
    translate = reader(request)
    basis = revenue_header(view, translate)
    if fmt == "csv":
        return Response(
            exports.to_csv(view.report, view.comparison, basis, translate),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    title = _title(view, _options(db), clock, translate)
    return Response(
        exports.to_xlsx(view.report, view.comparison, title, basis, translate),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )
