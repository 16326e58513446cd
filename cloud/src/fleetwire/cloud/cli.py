"""The ``fleetwire`` command line: cloud processes and the operator's tools."""

import logging
import signal
import threading
from typing import Annotated

import typer

from fleetwire.cloud.auth import Role, create_token
from fleetwire.cloud.db.engine import make_engine, session_scope, upgrade
from fleetwire.cloud.dev_cli import register as register_dev
from fleetwire.cloud.operator.cli import register as register_operator
from fleetwire.cloud.protocol_cli import app as protocol_app
from fleetwire.cloud.serve import CloudServices
from fleetwire.cloud.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Fleetwire cloud and operator CLI.")
app.add_typer(protocol_app, name="protocol")
register_dev(app)
register_operator(app)
db_app = typer.Typer(no_args_is_help=True, help="The database (migrations).")
app.add_typer(db_app, name="db")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
app.add_typer(token_app, name="token")

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", help="SQLAlchemy URL (default: FLEETWIRE_DATABASE_URL)."),
]


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with command-line overrides (None means not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)  # type: ignore[arg-type]


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("0.1.0")


@app.command()
def serve(
    broker: Annotated[
        str | None, typer.Option(help="mqtt://HOST:PORT (default: FLEETWIRE_BROKER_URL).")
    ] = None,
    database: DatabaseOpt = None,
    api: Annotated[bool, typer.Option("--api/--no-api", help="Run the HTTP API.")] = True,
    relay: Annotated[bool, typer.Option("--relay/--no-relay", help="Run the relay.")] = True,
    projector: Annotated[
        bool, typer.Option("--projector/--no-projector", help="Run a projector.")
    ] = True,
    host: Annotated[str | None, typer.Option(help="API listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="API port.")] = None,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
) -> None:
    """Run the API, the relay and the projector (or any of them, to scale them separately)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings = load_settings(broker_url=broker, database_url=database, api_host=host, api_port=port)
    services = CloudServices(settings, api=api, relay=relay, projector=projector)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    services.start()
    if services.bootstrap_token:
        typer.echo(f"bootstrap admin token (shown once): {services.bootstrap_token}")
    parts = [n for n, on in (("api", api), ("relay", relay), ("projector", projector)) if on]
    typer.echo(f"fleetwire serving {', '.join(parts)}" + (f" on {services.api_url}" if api else ""))
    try:
        services.wait(stop)
    finally:
        services.stop()


@db_app.command("upgrade")
def db_upgrade(
    database: DatabaseOpt = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the database migrations."""
    settings = load_settings(database_url=database)
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


@token_app.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="admin, operator or viewer.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    database: DatabaseOpt = None,
) -> None:
    """Create an API token and print it (it is stored hashed: this is the only time it shows)."""
    settings = load_settings(database_url=database)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            token = create_token(session, role, name)
    finally:
        engine.dispose()
    typer.echo(token)


def main() -> None:
    """Run the CLI."""
    app()
