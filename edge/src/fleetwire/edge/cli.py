"""The ``fleetwire-edge`` command line: run the agent, and look at what it knows.

Errors are printed as one plain sentence on stderr: exit code 2 for a bad configuration (such
as an invalid device id), 1 for anything else that stops the agent from starting.
"""

import json
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fleetwire.edge.agent import Agent, agent_version, docker_client, docker_reconciler
from fleetwire.edge.config import AgentConfig, load_config
from fleetwire.edge.errors import ConfigError, EdgeError
from fleetwire.edge.logs import configure_logging
from fleetwire.edge.store import DB_FILE_NAME, Store
from fleetwire.protocol import PROTOCOL_VERSION
from fleetwire.protocol.events import DeviceEvent, InventoryData

app = typer.Typer(no_args_is_help=True, help="Fleetwire edge agent.", add_completion=False)

DataDir = Annotated[Path, typer.Option("--data-dir", help="The agent's data directory.")]


def _fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {message}", markup=False)
    return typer.Exit(code)


@app.command()
def run(
    device_id: Annotated[str | None, typer.Option(help="This device's id.")] = None,
    broker: Annotated[str | None, typer.Option(help="mqtt://HOST:PORT or mqtts://...")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Journal, outbox, state.")] = None,
    username: Annotated[str | None, typer.Option(help="Broker user name.")] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the broker password.")
    ] = None,
    ca_file: Annotated[Path | None, typer.Option(help="CA bundle for mqtts://.")] = None,
    cert_file: Annotated[Path | None, typer.Option(help="Client certificate.")] = None,
    key_file: Annotated[Path | None, typer.Option(help="Client key.")] = None,
    system_model: Annotated[str | None, typer.Option(help="Hardware model.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with the same keys.")] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING, ERROR.")] = None,
    log_format: Annotated[str | None, typer.Option(help="text or json.")] = None,
) -> None:
    """Run the agent until SIGTERM or Ctrl-C.

    Every option can also come from FLEETWIRE_EDGE_<OPTION> (e.g. FLEETWIRE_EDGE_DEVICE_ID) or
    the --config file; the password from --password-file or FLEETWIRE_EDGE_PASSWORD.
    """
    options: dict[str, Any] = {
        "device_id": device_id,
        "broker": broker,
        "data_dir": data_dir,
        "username": username,
        "password_file": password_file,
        "ca_file": ca_file,
        "cert_file": cert_file,
        "key_file": key_file,
        "system_model": system_model,
        "log_level": log_level.upper() if log_level else None,
        "log_format": log_format,
    }
    try:
        cfg = _load(options, config)
        cfg.broker_password()  # an unreadable password file is a configuration error
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    configure_logging(cfg.log_level, cfg.log_format, cfg.device_id)
    try:
        agent = Agent(cfg)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    except EdgeError as exc:
        raise _fail(str(exc), 1) from None

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        agent.run()
    except EdgeError as exc:
        raise _fail(str(exc), 1) from None


def _load(options: dict[str, Any], config_file: Path | None) -> AgentConfig:
    return load_config(options, config_file=config_file)


def _open_store(data_dir: Path) -> Store:
    if not (data_dir / DB_FILE_NAME).exists():
        raise _fail(f"no agent data in {data_dir} (expected {DB_FILE_NAME})", 1)
    try:
        return Store.open(data_dir)
    except EdgeError as exc:
        raise _fail(str(exc), 1) from None


class _DiscardSink:
    def emit(self, event: DeviceEvent) -> None:
        """The status command only reads: events are dropped."""


def _engine_inventory(store: Store, data_dir: Path) -> tuple[InventoryData | None, str]:
    device_id = store.setting("device_id") or "status"
    client: Any = None
    try:
        client = docker_client()
        cfg = AgentConfig(device_id=device_id, data_dir=data_dir)
        reconciler = docker_reconciler(cfg, store, _DiscardSink(), client=client, watch=False)
        return reconciler.inventory(), ""
    except Exception as exc:  # noqa: BLE001 - any failure means: show desired state only
        return None, f"engine not reachable ({type(exc).__name__}: {exc}); desired state only"
    finally:
        if client is not None:
            client.close()


@app.command()
def status(
    data_dir: DataDir,
    engine: Annotated[
        bool, typer.Option("--engine/--no-engine", help="Ask Docker for container state.")
    ] = True,
) -> None:
    """Deployments (desired state) and their containers (from the engine when reachable)."""
    store = _open_store(data_dir)
    try:
        desired = store.all()
        inventory, note = _engine_inventory(store, data_dir) if engine else (None, "")
    finally:
        store.close()
    console = Console()
    observed = {d.deployment_id: d for d in inventory.deployments} if inventory else {}
    table = Table(title="Deployments")
    for column in ("deployment", "application", "release", "target", "state", "last command"):
        table.add_column(column)
    for d in desired:
        seen = observed.get(d.deployment_id)
        table.add_row(
            d.deployment_id,
            d.release.application,
            d.release.version
            + (f" (from {d.previous_release.version})" if d.previous_release else ""),
            d.target.value,
            seen.state.value if seen else "-",
            d.command_type.split(".")[-2] if d.command_type else "-",
        )
    console.print(table)
    if inventory is not None:
        containers = Table(title="Containers")
        for column in ("deployment", "container", "image", "status", "health", "restarts"):
            containers.add_column(column)
        for dep in inventory.deployments:
            for c in dep.containers:
                containers.add_row(
                    dep.deployment_id,
                    c.name,
                    c.image,
                    c.status.value,
                    c.health.value,
                    str(c.restart_count),
                )
        console.print(containers)
    if note:
        console.print(note, markup=False)


def _outcome_summary(outcome_json: str | None) -> str:
    if outcome_json is None:
        return ""
    data = json.loads(outcome_json).get("data", {})
    if "reason" in data:
        return f"{data['reason']}: {data.get('message', '')}"
    if "error" in data:
        return f"{data['error'].get('code')}: {data['error'].get('message')}"
    return ""


@app.command()
def history(
    data_dir: DataDir,
    limit: Annotated[int, typer.Option(min=1, help="How many commands to show.")] = 20,
) -> None:
    """The journal: commands received and their outcomes, newest first."""
    store = _open_store(data_dir)
    try:
        entries = store.journal(limit)
    finally:
        store.close()
    table = Table(title="Command journal (newest first)")
    for column in ("received", "command id", "type", "deployment", "status", "detail"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            e.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.command_id,
            e.command_type.removeprefix("io.fleetwire.command."),
            e.deployment_id or "-",
            e.status.value,
            _outcome_summary(e.outcome_json),
        )
    Console().print(table)


@app.command("import")
def import_package(
    path: Annotated[
        Path, typer.Argument(help="A `docker save` tarball, plain or compressed (.tar.gz).")
    ],
) -> None:
    """Load an offline image package into the Docker Engine (for air-gapped devices).

    Deployments whose images are present locally need no registry: a tag that is present is
    never pulled again.
    """
    # Only this command talks to Docker directly, and the engine package imports the Docker SDK
    # at module level: the CLI's other commands start without either.
    import docker  # noqa: PLC0415
    from docker.errors import DockerException  # noqa: PLC0415

    from fleetwire.edge.engine.errors import EngineError  # noqa: PLC0415
    from fleetwire.edge.engine.images import import_image  # noqa: PLC0415

    try:
        client = docker.from_env()
    except DockerException as exc:
        raise _fail(f"Docker Engine not reachable: {exc}", 1) from None
    try:
        loaded = import_image(client, path)
    except EngineError as exc:
        raise _fail(str(exc), 1) from None
    finally:
        client.close()
    for name in loaded:
        typer.echo(f"loaded {name}")


@app.command()
def version() -> None:
    """Print the agent version and protocol version."""
    typer.echo(f"fleetwire-edge {agent_version()} (protocol v{PROTOCOL_VERSION})")


def main() -> None:
    """Run the CLI."""
    app()
