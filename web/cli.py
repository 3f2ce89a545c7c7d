"""The `retain` command line: serve, migrate, demo data, users and API keys."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from sqlalchemy.orm import Session

from core import migrations
from core.accounts import api_keys, users
from core.audit import Actor
from core.db import make_engine, make_session_factory
from core.errors import RetainError
from core.settings import Settings, get_settings
from core.timeutil import utcnow

if TYPE_CHECKING:
    from attribution.runs import Comparison
    from web.api.lift import LiftOut

app = typer.Typer(help="Retain: campaign ROI and member loyalty.", no_args_is_help=True)
user_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for integrations.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import CSV files (UTF-8, with or without BOM).", no_args_is_help=True
)
report_app = typer.Typer(help="Reports.", no_args_is_help=True)
jobs_app = typer.Typer(
    help="Scheduled loyalty jobs (run nightly, e.g. from cron).", no_args_is_help=True
)
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(import_app, name="import")
app.add_typer(report_app, name="report")
app.add_typer(jobs_app, name="jobs")
outbox_app = typer.Typer(
    help="Messages to members (activation, reset links).", no_args_is_help=True
)
app.add_typer(outbox_app, name="outbox")
attribution_app = typer.Typer(
    help="Attribution: which channels and campaigns earned the revenue.", no_args_is_help=True
)
app.add_typer(attribution_app, name="attribution")


def _session(settings: Settings) -> Session:
    return make_session_factory(make_engine(settings.sqlalchemy_url))()


def _fail(exc: RetainError) -> None:
    typer.secho(f"Error: {exc.message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _nothing_imported(exc: RetainError) -> NoReturn:
    """An all-or-nothing import refused: every bad line by number, exit 1."""
    typer.secho("Nothing was imported.", fg=typer.colors.RED, err=True)
    for error in exc.details if isinstance(exc.details, list) else []:
        typer.echo(f"  line {error['line']}: {error['message']}", err=True)
    if not isinstance(exc.details, list):
        typer.echo(f"  {exc.message}", err=True)
    raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [RETAIN_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [RETAIN_PORT]")] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes (production: about one per core; not with --reload)",
        ),
    ] = 1,
) -> None:
    """Serve the web app and API."""
    import uvicorn

    settings = get_settings()
    try:
        settings.check_production()  # fail here, clearly, rather than inside the server
    except RetainError as exc:
        _fail(exc)
    host, port = host or settings.host, port or settings.port
    if reload and workers > 1:
        _fail(RetainError("serve.workers", "Use --reload or --workers, not both."))
    typer.secho(f"Retain is running at http://{host}:{port}", fg=typer.colors.GREEN, bold=True)
    if settings.demo_mode:
        from web.demo import DEMO_PASSWORD, DEMO_STAFF

        typer.echo("Demo sign-in (password " + DEMO_PASSWORD + "):")
        for email, _, roles in DEMO_STAFF:
            typer.echo(f"  {email:<24} {', '.join(roles)}")
        from web.demo_loyalty import DEMO_MEMBER_EMAIL, DEMO_MEMBER_PASSWORD

        typer.echo(f"Member portal at /my: {DEMO_MEMBER_EMAIL} / {DEMO_MEMBER_PASSWORD}")
    uvicorn.run(
        "web.app:create_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply database migrations (creates the SQLite file if needed)."""
    settings = get_settings()
    engine = make_engine(settings.sqlalchemy_url)
    migrations.upgrade(engine, revision)
    typer.echo(f"Database at {engine.url.render_as_string(hide_password=True)} is at {revision}.")


@app.command()
def demo(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Only when there are no users yet")
    ] = False,
) -> None:
    """Load the demo data (idempotent; demo mode only)."""
    from web.demo import load

    settings = get_settings()
    with _session(settings) as session:
        if if_empty and users.count(session) > 0:
            typer.echo("Database already has data; demo data not loaded.")
            return
        try:
            result = load(session, settings)
        except RetainError as exc:
            _fail(exc)
        session.commit()
    typer.echo(
        f"Demo data: {len(result.created)} accounts created, {len(result.existing)} already "
        f"there; {result.campaigns} campaigns and {result.members:,} members added."
    )
    from web.demo_loyalty import DEMO_MEMBER_EMAIL, DEMO_MEMBER_PASSWORD

    typer.echo(f"Member portal (/my) sign-in: {DEMO_MEMBER_EMAIL} / {DEMO_MEMBER_PASSWORD}")


@user_app.command("create")
def user_create(
    email: str,
    name: Annotated[str, typer.Option(help="Full name")],
    role: Annotated[list[str], typer.Option(help="admin, marketer or finance; repeat for several")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Prompted for when not given",
        ),
    ],
) -> None:
    """Create an active staff account."""
    settings = get_settings()
    with _session(settings) as session:
        try:
            user = users.create(
                session, Actor.cli(), email=email, name=name, roles=role, password=password
            )
        except RetainError as exc:
            _fail(exc)
        session.commit()
        typer.echo(f"Created {user.email} ({', '.join(sorted(user.roles))}).")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="Name of the system that will use the key")],
    scope: Annotated[
        list[str], typer.Option(help="Repeat for several: " + ", ".join(api_keys.SCOPES))
    ],
) -> None:
    """Create an API key and print it once."""
    settings = get_settings()
    with _session(settings) as session:
        try:
            key, raw = api_keys.create(session, Actor.cli(), name=name, scopes=scope)
        except RetainError as exc:
            _fail(exc)
        session.commit()
    typer.echo(f"API key '{key.name}' with scopes {', '.join(key.scopes)}.")
    typer.echo("Copy it now; it will not be shown again:")
    typer.echo(raw)


def _import(kind: str, path: Path) -> None:
    from campaigns import imports

    settings = get_settings()
    data = path.read_bytes()
    with _session(settings) as session:
        try:
            if kind == "receipts":
                result = imports.import_receipts(session, Actor.cli(), data)
            elif kind == "revenue":
                result = imports.import_revenue(session, Actor.cli(), data)
            else:
                result = imports.import_rates(session, Actor.cli(), data, settings.base_currency)
        except imports.ImportFailed as exc:
            session.rollback()
            _nothing_imported(exc)
        except RetainError as exc:
            session.rollback()
            _fail(exc)
        session.commit()
    typer.echo(f"Imported {result.rows} {kind} row(s) from {path.name}.")


CsvFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


@import_app.command("receipts")
def import_receipts(file: CsvFile) -> None:
    """Receipts: campaign_code, vendor, category, amount, currency, expense_date
    [, description, tax_amount, invoice_number, payment_mode, reimburse_to]."""
    _import("receipts", file)


@import_app.command("revenue")
def import_revenue(file: CsvFile) -> None:
    """Revenue records: campaign_code, received_on, amount, currency [, reference, orders]."""
    _import("revenue", file)


@import_app.command("rates")
def import_rates(file: CsvFile) -> None:
    """Exchange rates: date, currency, rate (units of the base currency per unit)."""
    _import("rates", file)


@import_app.command("purchases")
def import_purchases(
    file: CsvFile,
    row_by_row: Annotated[
        bool, typer.Option(help="Every row through the purchase service (slower)")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=8, help="Chunks loaded at once (PostgreSQL only)")
    ] = 2,
) -> None:
    """Purchases: source, external_id, occurred_at, amount [, currency, member_number,
    discount, channel, store, campaign_code, coupon_codes]. Checked whole first; reruns skip
    rows already imported."""
    from rich.progress import Progress

    from loyalty import imports

    settings = get_settings()
    factory = make_session_factory(make_engine(settings.sqlalchemy_url))
    data = file.read_bytes()
    try:
        with Progress(transient=True) as bar:
            task = bar.add_task(f"Importing {file.name}", total=None)

            def advance(rows: int) -> None:
                bar.update(task, advance=rows)

            report = imports.import_purchases(
                factory,
                Actor.cli(),
                data,
                base=settings.base_currency,
                zone=settings.zone,
                row_by_row=row_by_row,
                progress=advance,
                workers=workers,
            )
    except imports.ImportFailed as exc:
        typer.secho(f"Nothing was imported: {exc.message}", fg=typer.colors.RED, err=True)
        for error in exc.details if isinstance(exc.details, list) else []:
            typer.echo(f"  line {error['line']}: {error['message']}", err=True)
        raise typer.Exit(1) from None
    except RetainError as exc:
        _fail(exc)
    typer.echo(
        f"Imported {report.imported:,} purchase(s) from {file.name} "
        f"({report.skipped:,} already there); {report.points:,} points credited."
    )
    if report.refused:
        typer.secho(
            f"{len(report.refused):,} row(s) refused, nothing written for them; fix them and "
            "run the file again (imported rows are skipped):",
            fg=typer.colors.YELLOW,
            err=True,
        )
        for row in report.refused[: imports.MAX_ERRORS]:
            typer.echo(f"  line {row['line']}: {row['message']}", err=True)
        raise typer.Exit(1)


@jobs_app.command("run")
def jobs_run(
    only: Annotated[
        list[str] | None, typer.Option(help="Run just this job; repeat for several")
    ] = None,
) -> None:
    """Run what is due: unlock pending points, expire lots and coupons, birthday rewards,
    referral completion, tier evaluation. Safe to run twice or at the same time."""
    from loyalty import jobs

    unknown = set(only or []) - set(jobs.JOBS)
    if unknown:
        _fail(
            RetainError(
                "jobs.unknown",
                f"Unknown job {', '.join(sorted(unknown))}; choose from {', '.join(jobs.JOBS)}.",
            )
        )
    settings = get_settings()
    factory = make_session_factory(make_engine(settings.sqlalchemy_url))
    results = jobs.run_due(factory, utcnow(), settings.zone, only)
    for name, counts in results.items():
        typer.echo(f"{name}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


@outbox_app.command("send")
def outbox_send() -> None:
    """Deliver waiting email through RETAIN_SMTP_HOST (run it from cron, like the jobs)."""
    from core import outbox

    settings = get_settings()
    if not settings.smtp_host:
        _fail(
            RetainError(
                "outbox.no_sender",
                "Set RETAIN_SMTP_HOST (and RETAIN_SMTP_PORT, RETAIN_SMTP_FROM) to send email; "
                "until then admins read the messages at /admin/outbox.",
            )
        )
    assert settings.smtp_host is not None
    sender = outbox.SmtpSender(settings.smtp_host, settings.smtp_port, settings.smtp_from)
    with _session(settings) as session:
        sent, failed = outbox.deliver(session, sender)
        session.commit()
    typer.echo(f"Sent {sent:,} message(s); {failed:,} failed and stay queued.")


@report_app.command("roi")
def report_roi(
    out: Annotated[Path, typer.Option("--out", help="File to write")],
    start: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First day of the documents"),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last day of the documents (included)"),
    ] = None,
    group_by: Annotated[str, typer.Option(help="campaign, channel, month or owner")] = "campaign",
    fmt: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
    running_from: Annotated[
        datetime | None,
        typer.Option(
            "--running-from",
            formats=["%Y-%m-%d"],
            help="Only campaigns still running on or after this day",
        ),
    ] = None,
    running_to: Annotated[
        datetime | None,
        typer.Option(
            "--running-to", formats=["%Y-%m-%d"], help="Only campaigns started by this day"
        ),
    ] = None,
    basis: Annotated[
        str,
        typer.Option(
            "--basis",
            help="Revenue basis: direct (records and linked purchases) or an attribution"
            " model's stored run by campaign (first, last, linear, time-decay, position,"
            " markov, shapley, ordered-shapley)",
        ),
    ] = "direct",
    without_loyalty_cost: Annotated[
        bool,
        typer.Option(
            "--without-loyalty-cost",
            help="Cost is approved receipts only: leave out the loyalty cost (coupon"
            " discounts, bonus points and rewards at the value per point)",
        ),
    ] = False,
) -> None:
    """The ROI (input-output ratio) report as CSV or XLSX. --from and --to select documents
    by their own dates (receipts, revenue, purchases, refunds); --running-from and
    --running-to select campaigns by their run dates. --basis chooses the revenue
    (`attribution.roi`): an attribution model's credits replace the linked purchases'.
    The cost counts the loyalty cost (`loyalty.campaign_costs`) beside approved receipts, as
    the page does by default; --without-loyalty-cost leaves it out."""
    from attribution import roi as basis_roi
    from campaigns import exports, report_data
    from campaigns.reports import GROUPS
    from loyalty import campaign_costs

    if group_by not in GROUPS:
        _fail(RetainError("report.group_by", f"--group-by must be one of {', '.join(GROUPS)}."))
    if fmt not in ("csv", "xlsx"):
        _fail(RetainError("report.format", "--format must be csv or xlsx."))
    settings = get_settings()
    with _session(settings) as session:
        try:
            f = report_data.ReportFilter(
                start=start.date() if start else None,
                end=end.date() if end else None,
                running_from=running_from.date() if running_from else None,
                running_to=running_to.date() if running_to else None,
            )
            report, attributed = basis_roi.roi(
                session,
                settings.base_currency,
                f,
                group_by,  # type: ignore[arg-type]
                zone=settings.zone,
                basis=basis,
            )
            if not without_loyalty_cost:
                report = campaign_costs.include(
                    session, report, f, settings.zone, base=settings.base_currency
                )
        except RetainError as exc:
            _fail(exc)
    header = None if attributed is None else f"{basis_roi.BASIS_NAMES[basis]} attribution"
    out.write_bytes(
        exports.to_csv(report, revenue_basis=header)
        if fmt == "csv"
        else exports.to_xlsx(report, revenue_basis=header)
    )
    typer.echo(f"Wrote {len(report.rows)} row(s) and a total to {out}.")


# --- Attribution -------------------------------------------------------------------------------

ATTRIBUTION_MODELS = (
    "first",
    "last",
    "linear",
    "time-decay",
    "position",
    "markov",
    "shapley",
    "ordered-shapley",
    "all",
)


def _credit_rows(comparison: Comparison) -> list[dict[str, str]]:
    rows = []
    for model, result in comparison.runs.items():
        for credit in result.credits:
            effect = credit.removal_effect
            rows.append(
                {
                    "model": model,
                    "key": credit.key,
                    "conversions": str(credit.conversions),
                    "value": str(credit.value),
                    "removal_effect": "" if effect is None else f"{effect:.6f}",
                }
            )
    return rows


def _print_credits(comparison: Comparison, fmt: str) -> None:
    import csv
    import io
    import json

    rows = _credit_rows(comparison)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(
            out,
            ["model", "key", "conversions", "value", "removal_effect"],
            lineterminator="\n",
        )
        writer.writeheader()
        writer.writerows(rows)
        typer.echo(out.getvalue(), nl=False)
        return
    if fmt == "json":
        typer.echo(
            json.dumps(
                [
                    {
                        "model": model,
                        **result.params.described(),
                        "currency": result.currency,
                        "total_conversions": result.total_conversions,
                        "total_value": str(result.total_value),
                        "direct_conversions": result.direct_conversions,
                        "null_journeys": result.null_journeys,
                        "p_conversion": result.p_conversion,
                        "run_id": result.id,
                        "credits": [
                            {k: v for k, v in row.items() if k != "model"}
                            for row in rows
                            if row["model"] == model
                        ],
                    }
                    for model, result in comparison.runs.items()
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    for model, result in comparison.runs.items():
        order = f" (order {result.params.order})" if model == "markov" else ""
        stored = f"; stored as run {result.id}" if result.id is not None else ""
        typer.secho(
            f"{model}{order}: {result.total_conversions:,} conversion(s) worth "
            f"{result.total_value} {result.currency or ''}".rstrip()
            + f"; {result.direct_conversions:,} without a touch; "
            f"{result.null_journeys:,} null journey(s){stored}",
            bold=True,
        )
        mine = [row for row in rows if row["model"] == model]
        width = max([len("key"), *(len(row["key"]) for row in mine)])
        header = f"  {'key':<{width}}  {'conversions':>14}  {'value':>18}"
        typer.echo(header + ("  removal effect" if model == "markov" else ""))
        for row in mine:
            line = f"  {row['key']:<{width}}  {row['conversions']:>14}  {row['value']:>18}"
            if model == "markov":
                line += f"  {row['removal_effect']:>14}"
            typer.echo(line)


@attribution_app.command("run")
def attribution_run(
    paths: Annotated[
        Path | None,
        typer.Option(
            "--paths",
            exists=True,
            dir_okay=False,
            readable=True,
            help="An aggregated paths file (ChannelAttribution's path, total_conversions"
            "[, total_conversion_value, total_null]; ';' or ','): computed in memory, nothing "
            "stored. Without it: the database's touchpoints and purchases, the run stored.",
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="One of " + ", ".join(ATTRIBUTION_MODELS))] = "markov",
    order: Annotated[int, typer.Option(min=1, max=3, help="Markov order")] = 1,
    unit: Annotated[str, typer.Option(help="channel or campaign (database only)")] = "channel",
    collapse: Annotated[
        bool,
        typer.Option(
            "--collapse/--keep-repeats",
            help="Merge consecutive touches of the same channel or campaign into one",
        ),
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    start: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First day of the conversions"),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last day of the conversions (included)"),
    ] = None,
    lookback_days: Annotated[
        int, typer.Option(help="Days a purchase looks back for its touches")
    ] = 90,
    acquisition_lookback_days: Annotated[
        int, typer.Option(help="Days a sign-up or first purchase looks back")
    ] = 30,
    half_life_days: Annotated[int, typer.Option(help="Time decay's half-life in days")] = 7,
    signups: Annotated[
        bool, typer.Option("--signups/--no-signups", help="Count sign-ups as conversions")
    ] = False,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Store a database run (default)")
    ] = True,
) -> None:
    """Credit conversions to channels or campaigns with one model, or all of them, and print
    the credits. Credits add up exactly to the totals."""
    from attribution import runs

    if model not in ATTRIBUTION_MODELS:
        _fail(
            RetainError(
                "attribution.model", f"--model must be one of {', '.join(ATTRIBUTION_MODELS)}."
            )
        )
    if fmt not in ("table", "csv", "json"):
        _fail(RetainError("attribution.format", "--format must be table, csv or json."))
    models = list(runs.MODELS) if model == "all" else [model]
    try:
        params = runs.RunParams(
            model=runs.MODELS[0] if model == "all" else model,
            order=order,
            unit=unit,  # type: ignore[arg-type]
            lookback_days=lookback_days,
            acquisition_lookback_days=acquisition_lookback_days,
            half_life_days=half_life_days,
            collapse_repeats=collapse,
            signups=signups,
            period_from=start.date() if start else None,
            period_to=end.date() if end else None,
        )
        if paths is not None:
            comparison = runs.from_paths(paths.read_bytes(), params, models)
        else:
            settings = get_settings()
            with _session(settings) as session:
                base, zone = settings.base_currency, settings.zone
                if store:
                    comparison = runs.run_all(
                        session, Actor.cli(), params, base=base, zone=zone, models=models
                    )
                    session.commit()
                else:
                    comparison = runs.compare(session, params, base=base, zone=zone, models=models)
    except RetainError as exc:
        _fail(exc)
    _print_credits(comparison, fmt)


@attribution_app.command("derive")
def attribution_derive() -> None:
    """Add the touchpoints Retain's own records imply: coupons issued from a campaign's
    batch, coupons used, purchases carrying a campaign code, referrals. Safe to run again:
    what was derived before is skipped."""
    from attribution import touchpoints

    settings = get_settings()
    with _session(settings) as session:
        try:
            added = touchpoints.derive(session, Actor.cli())
        except RetainError as exc:
            _fail(exc)
        session.commit()
    typer.echo("Derived touchpoints: " + ", ".join(f"{k} {v:,}" for k, v in added.items()))


@attribution_app.command("import")
def attribution_import(file: CsvFile) -> None:
    """Touchpoints: source, external_id, channel, kind, occurred_at [, member_number,
    visitor_id, campaign_code]. All or nothing; rows imported before are skipped."""
    from attribution import imports
    from campaigns.imports import ImportFailed

    settings = get_settings()
    with _session(settings) as session:
        try:
            result = imports.import_touchpoints(session, Actor.cli(), file.read_bytes())
        except ImportFailed as exc:
            session.rollback()
            _nothing_imported(exc)
        except RetainError as exc:
            session.rollback()
            _fail(exc)
        session.commit()
    typer.echo(
        f"Imported {result.created:,} touchpoint(s) from {file.name} "
        f"({result.replayed:,} already there)."
    )


class _LiftGroup(typer.core.TyperGroup):
    """`retain lift CODE` shows a campaign's lift; `retain lift sample-size …` is the
    calculator: a first word that is no subcommand is the campaign code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # click's Context
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


lift_app = typer.Typer(
    cls=_LiftGroup,
    help="Incremental lift: what a campaign added against its holdout (retain lift CODE).",
    no_args_is_help=True,
)
app.add_typer(lift_app, name="lift")


@lift_app.command("show", hidden=True)
def lift_show(
    campaign_code: Annotated[str, typer.Argument(metavar="CAMPAIGN_CODE")],
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """A campaign's lift against its holdout: both groups, lift, incremental conversions,
    revenue, ROAS and ROI, the z-test, the bootstrap interval and the verdict."""
    import json

    from campaigns import planning
    from core.errors import ValidationFailed
    from web.api.lift import lift_out

    if fmt not in ("text", "json"):
        _fail(ValidationFailed("lift.format", "Use --format text or json."))
    settings = get_settings()
    try:
        with _session(settings) as session:
            campaign = planning.by_code(session, campaign_code)
            answer = lift_out(session, settings, campaign.id)
    except RetainError as exc:
        _fail(exc)
        return
    if fmt == "json":
        typer.echo(json.dumps(answer.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    typer.echo(_lift_text(answer))


def _lift_text(answer: LiftOut) -> str:
    from decimal import Decimal

    c, currency = answer.campaign, answer.currency
    lines = [f"{c.code} · {c.name}: {c.starts_on} – {c.ends_on}, money in {currency}"]
    why = {
        "no_target": "No saved target segment: nobody was held out. Set one with a holdout "
        "share before the campaign starts.",
        "no_holdout": "The target segment holds nobody out: nothing to compare against.",
        "no_audience": "The segment had no members when the holdout was set.",
        "not_started": f"The campaign starts on {c.starts_on}: nothing to compare yet "
        f"({answer.treated.members:,} get the campaign, {answer.holdout.members:,} held out).",
    }
    if answer.state != "measured":
        lines.append(why[answer.state])
        return "\n".join(lines)
    share = Decimal(answer.holdout_share or 0) * 100
    lines.append(f"Counted through {answer.through}; {share:.0f}% of the segment held out.")

    def rate(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.2f}%"

    def money(value: Decimal | None) -> str:
        return "—" if value is None else f"{Decimal(value):,}"

    rows = [("group", "members", "converters", "conversion", "revenue", "per member")]
    for label, arm in (("got the campaign", answer.treated), ("held out", answer.holdout)):
        rows.append(
            (
                label,
                f"{arm.members:,}",
                f"{arm.converters or 0:,}",
                rate(arm.conversion_rate),
                money(arm.revenue),
                money(arm.revenue_per_member),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    test, interval, cost = answer.z_test, answer.revenue_interval, answer.cost
    figures = [
        ("lift", "—" if answer.lift is None else f"{answer.lift * 100:+.1f}%"),
        (
            "incremental conversions",
            "—"
            if answer.incremental_conversions is None
            else f"{answer.incremental_conversions:+,.1f}",
        ),
        ("incremental revenue", money(answer.incremental_revenue)),
        (
            "incremental ROAS",
            "—" if answer.incremental_roas is None else str(answer.incremental_roas),
        ),
        (
            "incremental ROI",
            "—" if answer.incremental_roi_pct is None else f"{answer.incremental_roi_pct}%",
        ),
        (
            "cost",
            "—"
            if cost is None
            else f"{money(cost.total)} (receipts {money(cost.receipts)}, "
            f"loyalty {money(cost.loyalty)})",
        ),
        ("z", "—" if test is None else f"{test.z:+.4f}"),
        ("p-value", "—" if test is None else f"{test.p_value:.4f}"),
        (
            "interval (per member)",
            "—"
            if interval is None
            else f"{money(interval.low)} … {money(interval.high)} "
            f"({interval.confidence * 100:g}%, {interval.resamples:,} resamples)",
        ),
    ]
    lines.append("")
    width = max(len(name) for name, _ in figures)
    lines += [f"{name.ljust(width)}  {value}" for name, value in figures]
    for field, reason in answer.reasons.items():
        lines.append(f"  ({field}: {reason})")
    if answer.verdict is not None:
        lines += ["", f"Verdict: {answer.verdict.message}"]
    return "\n".join(lines)


@lift_app.command("sample-size")
def lift_sample_size(
    baseline: Annotated[float, typer.Option(help="Baseline conversion rate, e.g. 0.11")],
    lift: Annotated[float, typer.Option(help="Minimum detectable relative lift, e.g. 0.2")],
    power: Annotated[float, typer.Option(help="Power, 0.5 to below 1")] = 0.8,
    alpha: Annotated[float, typer.Option(help="Significance level, above 0 to 0.5")] = 0.05,
    holdout_share: Annotated[float, typer.Option(help="Share held out, above 0 to 0.5")] = 0.5,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Members a holdout test needs to detect a lift this large (fractions, not %)."""
    import json

    from core.errors import ValidationFailed
    from web.api.lift import sample_size_checked

    if fmt not in ("text", "json"):
        _fail(ValidationFailed("lift.format", "Use --format text or json."))
    try:
        found = sample_size_checked(baseline, lift, power, alpha, holdout_share)
    except RetainError as exc:
        _fail(exc)
        return
    if fmt == "json":
        answer = {
            "baseline": baseline,
            "lift": lift,
            "power": power,
            "alpha": alpha,
            "holdout_share": holdout_share,
            "holdout": found.holdout,
            "treated": found.treated,
            "total": found.total,
        }
        typer.echo(json.dumps(answer, indent=2))
        return
    typer.echo(
        f"To detect a lift of {lift * 100:g}% over a baseline of {baseline * 100:g}% "
        f"with {power * 100:g}% power at the {alpha * 100:g}% level, holding out "
        f"{holdout_share * 100:g}%: {found.holdout:,} held out and {found.treated:,} who get "
        f"the campaign, {found.total:,} in all."
    )


def main() -> None:
    app()


value_app = typer.Typer(
    help="Customer value: lifetime-value models over any transaction log.", no_args_is_help=True
)
app.add_typer(value_app, name="value")


@value_app.command("fit")
def value_fit(
    transactions: Annotated[
        Path,
        typer.Option(
            exists=True, dir_okay=False, help="CSV: customer_id, date, amount[, category]"
        ),
    ],
    calibration_end: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"])],
    holdout_end: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    unit: Annotated[str, typer.Option(help="W (weeks) or D (days)")] = "W",
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Fit BG/NBD and Gamma-Gamma to a transaction log and print the parameters, their
    standard errors, the log-likelihood and the calibration/holdout comparison (the CDNOW
    check: `--calibration-end 1997-09-30 --holdout-end 1998-06-30`)."""
    import json

    from analytics.fit import fit_transactions, parse_transactions_csv
    from core.errors import ValidationFailed

    if fmt not in ("text", "json"):
        _fail(ValidationFailed("value.format", "Use --format text or json."))
    try:
        frame = parse_transactions_csv(transactions.read_text(encoding="utf-8-sig"))
        report = fit_transactions(
            frame,
            calibration_end.date(),
            holdout_end.date() if holdout_end else None,
            unit=unit,
        )
    except RetainError as exc:
        _fail(exc)
        return
    if fmt == "json":
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        typer.echo(report.text())


@value_app.command("run")
def value_run(
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="The last day counted (default: yesterday in the configured zone)",
        ),
    ] = None,
    period_days: Annotated[
        int, typer.Option(help="The pyramid's and the loyalty types' period, ending --as-of")
    ] = 365,
    margin: Annotated[str, typer.Option(help="Gross margin on net purchases (0.3 = 30%)")] = "0.3",
    point_value: Annotated[
        str | None, typer.Option(help="What one point costs (default: the program's value)")
    ] = None,
    service_cost: Annotated[
        str, typer.Option(help="Yearly cost of serving one member, in the base currency")
    ] = "0",
    top_share: Annotated[
        str, typer.Option(help="Share of the positive value the most valuable hold (0.5)")
    ] = "0.5",
    growth_factor: Annotated[
        str, typer.Option(help="Most growable: predicted margin above this × value")
    ] = "1.5",
    horizon_months: Annotated[int, typer.Option(help="Lifetime value's horizon in months")] = 12,
    discount_rate: Annotated[
        str, typer.Option(help="Yearly discount rate of lifetime value (0.1 = 10%)")
    ] = "0.1",
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Compute and store a customer value run against the configured database: every
    member's pyramid layer, RFM segment, loyalty type and lifetime value in six parts. Prints
    the layer table and the members per segment and type (the pages and the API show the
    same run)."""
    import json
    from decimal import Decimal

    from analytics import runs
    from core.errors import ValidationFailed
    from core.money import parse_amount
    from web.api.value import run_out
    from web.pages import value as pages

    if fmt not in ("text", "json"):
        _fail(ValidationFailed("value.format", "Use --format text or json."))
    settings = get_settings()
    try:
        params = runs.ValueParams(
            as_of=as_of.date() if as_of else None,
            period_days=period_days,
            margin=parse_amount(margin, "--margin"),
            point_value=None if point_value is None else parse_amount(point_value, "--point-value"),
            yearly_service_cost=parse_amount(service_cost, "--service-cost"),
            top_share=parse_amount(top_share, "--top-share"),
            growth_factor=parse_amount(growth_factor, "--growth-factor"),
            horizon_months=horizon_months,
            yearly_discount_rate=parse_amount(discount_rate, "--discount-rate"),
        )
        with _session(settings) as session:
            stored = runs.run(
                session, Actor.cli(), params, base=settings.base_currency, zone=settings.zone
            )
            answer = run_out(session, stored)
            session.commit()
    except RetainError as exc:
        _fail(exc)
        return
    if fmt == "json":
        typer.echo(json.dumps(answer.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    currency = answer.currency
    typer.secho(
        f"Stored run {answer.id}: {answer.members:,} member(s) as of {answer.as_of} "
        f"({answer.period_days} days), money in {currency}.",
        bold=True,
    )
    headers = ("layer", "members", "share", f"value ({currency})", "value share", "average")
    table = [
        (
            pages.LAYER_NAMES[row.layer],
            f"{row.members:,}",
            _share_text(row.member_share),
            f"{Decimal(row.value):,}",
            _share_text(row.value_share),
            "—" if row.average_value is None else f"{Decimal(row.average_value):,}",
        )
        for row in answer.layers
    ]
    table.append(
        (
            "All members",
            f"{sum(r.members for r in answer.layers):,}",
            "",
            f"{sum(Decimal(r.value) for r in answer.layers):,}",
            "",
            "",
        )
    )
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    for line in (headers, *table):
        cells = [line[0].ljust(widths[0])]
        cells += [v.rjust(w) for v, w in zip(line[1:], widths[1:], strict=True)]
        typer.echo("  ".join(cells).rstrip())
    typer.echo("\nRFM segments:")
    for segment, members in answer.rfm_segments.items():
        typer.echo(f"  {segment:<20} {members:>10,}")
    typer.echo("\nLoyalty types:")
    for kind, members in answer.loyalty_types.items():
        typer.echo(f"  {pages.TYPE_NAMES[kind]:<20} {members:>10,}")
    model = answer.fit.get("model")
    if model:
        bg = model["bgnbd"]
        fitted = ", ".join(f"{name} {pages.fitted(p['value'])}" for name, p in bg["params"].items())
        typer.echo(f"\nBG/NBD: {fitted}; log-likelihood {pages.fitted(bg['log_likelihood'], 2)}")
        gg = model.get("gamma_gamma")
        if gg:
            spend = ", ".join(
                f"{name} {pages.fitted(p['value'])}" for name, p in gg["params"].items()
            )
            typer.echo(
                f"Gamma-Gamma: {spend}; log-likelihood {pages.fitted(gg['log_likelihood'], 2)}"
            )
        elif model.get("gamma_gamma_note"):
            typer.echo(f"Gamma-Gamma not fitted: {model['gamma_gamma_note']}")
    else:
        typer.echo(f"\nNo model fitted: {answer.fit.get('note', '')}")


def _share_text(value: float | None) -> str:
    from decimal import Decimal

    if value is None:
        return "—"
    return f"{Decimal(str(value)) * 100:.1f}%"


@app.command("liability")
def liability_report(
    until: Annotated[
        str | None,
        typer.Option(help="The month measured, YYYY-MM (default: the last full month)"),
    ] = None,
    method: Annotated[
        str, typer.Option(help="The redemption curve's method: additive or chain_ladder")
    ] = "additive",
    fmt: Annotated[str, typer.Option("--format", help="text, csv or json")] = "text",
    journal: Annotated[
        bool, typer.Option("--journal", help="Print the month's journal lines instead")
    ] = False,
) -> None:
    """The points liability (IFRS 15) from the ledger: the monthly roll-forward of the 12
    months ending --until, in points and in the base currency, with each month's expected
    redemption rate (as the page /finance/liability shows it), or with --journal that
    month's journal lines. CSV has the exports' columns; JSON is the API's answer."""
    from web.api import liability as api
    from web.pages import liability as pages

    if fmt not in ("text", "csv", "json"):
        _fail(RetainError("liability.format", "--format must be text, csv or json."))
    settings = get_settings()
    today = datetime.now(settings.zone).date()
    try:
        month = pages.default_month(today) if until is None else pages.parse_month(until, today)
        chosen = pages.parse_method(method)
        with _session(settings) as session:
            view = pages.build(session, settings.zone, settings.base_currency, month, chosen)
    except RetainError as exc:
        _fail(exc)
        return
    if fmt == "json":
        answer = api.journal_out(view) if journal else api.liability_out(view)
        typer.echo(answer.model_dump_json(indent=2))
        return
    if fmt == "csv":
        spec = pages.JOURNAL_HEADERS if journal else pages.ROLL_FORWARD_HEADERS
        frame = view.journal if journal else view.rows
        headers = pages.headers_of(spec, view.report.base)
        rows = pages.table_rows(frame, spec, view.places)
        typer.echo(pages.to_csv(headers, rows, bom=False).decode(), nl=False)
        return
    for line in pages.text_report(view, journal=journal):
        typer.echo(line)
