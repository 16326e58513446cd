"""``fleetwire dev``: the one-command embedded stack."""

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleetwire.cloud.dev import DEFAULT_DEVICE_ID, DevError, DevStack
from fleetwire.cloud.embedded.broker import INTEGRATOR_USER
from fleetwire.cloud.operator.client import dev_dir

console = Console()


def dev(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where everything is kept (FLEETWIRE_DEV_DIR, default ./.fleetwire/dev)."
        ),
    ] = None,
    mqtt_port: Annotated[int, typer.Option(help="Embedded broker port (first start).")] = 1883,
    api_port: Annotated[int, typer.Option(help="API port (first start).")] = 8080,
    device_id: Annotated[
        str, typer.Option(help="Id of the local edge agent (first start).")
    ] = DEFAULT_DEVICE_ID,
    agent: Annotated[bool, typer.Option("--agent/--no-agent", help="Run a local agent.")] = True,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "WARNING",
) -> None:
    """Run broker, API, relay, projector and a local edge agent in one process, on 127.0.0.1."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    stack = DevStack(
        data_dir or dev_dir(),
        mqtt_port=mqtt_port,
        api_port=api_port,
        device_id=device_id,
        agent=agent,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stack.start()
    except DevError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    state = stack.state
    online = stack.wait_agent_online(stop=stop)
    console.print(f"[bold green]Fleetwire dev[/bold green] is running (data in {stack.data_dir})")
    console.print(f"  API        {state.api_url}/v1   (docs: {state.api_url}/docs)")
    console.print(f"  API token  {state.admin_token}   (admin; the CLI finds it by itself)")
    console.print(f"  MQTT       {stack.mqtt_url}   (MQTT 3.1.1, embedded amqtt)")
    console.print(
        f"  integrator user {INTEGRATOR_USER}, password in {stack.state_path}", highlight=False
    )
    if stack.agent is not None and online:
        console.print(f"  edge agent {state.device_id}   online (log: {stack.agent_log})")
    elif stack.agent is not None:
        console.print(
            f"  [yellow]edge agent {state.device_id} is not online yet[/yellow]; "
            f"see {stack.agent_log}",
            highlight=False,
        )
    else:
        console.print(
            f"  [yellow]no local edge agent:[/yellow] {stack.agent_problem}; the cloud runs alone",
            highlight=False,
        )
    console.print("\nTry, in another terminal in this directory:")
    console.print("  examples/demo/build-images.sh")
    console.print("  uv run fleetwire release create examples/demo/demo-1.0.0.yaml")
    console.print(f"  uv run fleetwire deploy demo 1.0.0 --device {state.device_id} --wait")
    console.print("  uv run fleetwire deployments")
    console.print("\nCtrl-C stops everything; the next start keeps the data.", highlight=False)
    try:
        stack.wait(stop)
    finally:
        console.print("stopping...")
        stack.stop()
        console.print("stopped")


def register(app: typer.Typer) -> None:
    """Add ``dev`` to the ``fleetwire`` CLI."""
    app.command()(dev)
