"""The `retain` command line: serve, migrate, demo data, users and API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.orm import Session

from core import migrations
from core.accounts import api_keys, users
from core.audit import Actor
from core.db import make_engine, make_session_factory
from core.errors import RetainError
from core.settings import Settings, get_settings

app = typer.Typer(help="Retain: campaign ROI and member loyalty.", no_args_is_help=True)
user_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for integrations.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")


def _session(settings: Settings) -> Session:
    return make_session_factory(make_engine(settings.sqlalchemy_url))()


def _fail(exc: RetainError) -> None:
    typer.secho(f"Error: {exc.message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [RETAIN_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [RETAIN_PORT]")] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
) -> None:
    """Serve the web app and API."""
    import uvicorn

    settings = get_settings()
    try:
        settings.resolve_secret_key()  # fail here, clearly, rather than inside the server
    except RetainError as exc:
        _fail(exc)
    host, port = host or settings.host, port or settings.port
    typer.secho(f"Retain is running at http://{host}:{port}", fg=typer.colors.GREEN, bold=True)
    if settings.demo_mode:
        from web.demo import DEMO_PASSWORD, DEMO_STAFF

        typer.echo("Demo sign-in (password " + DEMO_PASSWORD + "):")
        for email, _, roles in DEMO_STAFF:
            typer.echo(f"  {email:<24} {', '.join(roles)}")
    uvicorn.run(
        "web.app:create_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
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
        f"Demo data: {len(result.created)} accounts created, {len(result.existing)} already there."
    )


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


def main() -> None:
    app()
