"""Operator commands of the ``fleetwire`` CLI: releases, deployments, devices and events.

Every deployment action of the action table (:mod:`fleetwire.cloud.actions`) is a command; an
action with options of its own (``upgrade``, ``delete``) has a hand-written one, the others share
:func:`_action`.
"""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from fleetwire.cloud.actions import DEPLOY, DEPLOYMENT_ACTIONS, Action
from fleetwire.cloud.operator.client import ApiError, Client, resolve_target
from fleetwire.cloud.operator.compose import ComposeError, load_release
from fleetwire.cloud.operator.progress import Outcome, judge

console = Console()
err_console = Console(stderr=True)

ApiUrlOpt = Annotated[
    str | None,
    typer.Option("--api-url", help="API base URL (FLEETWIRE_API_URL).", show_default=False),
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="Bearer token (FLEETWIRE_TOKEN).", show_default=False)
]
WaitOpt = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Follow progress until the action settles.")
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds --wait waits at most.")]

release_app = typer.Typer(no_args_is_help=True, help="Applications and their releases.")


def _client(api_url: str | None, token: str | None) -> Client:
    return Client(resolve_target(api_url, token))


def _run(fn: Callable[[], int | None]) -> None:
    """Run a command body, turning API and file errors into a plain message and exit 1."""
    try:
        code = fn()
    except (ApiError, ComposeError, OSError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if code:
        raise typer.Exit(code)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        # Ids are copied into the next command: never cut them.
        table.add_column(column, no_wrap=column == "id", min_width=36 if column == "id" else None)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


@release_app.command("create")
def release_create(
    file: Annotated[Path, typer.Argument(help="Compose-like YAML file of the release.")],
    api_url: ApiUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create a release (and its application when new) from a compose-like YAML file."""

    def body() -> None:
        release = load_release(file.read_text(encoding="utf-8"))
        with _client(api_url, token) as client:
            try:
                client.post("/applications", {"name": release.application})
            except ApiError as exc:
                if exc.status != 409:
                    raise
            created = client.post(
                f"/applications/{release.application}/releases",
                release.model_dump(mode="json"),
            )
        console.print(
            f"release [bold]{release.application} {release.version}[/bold] created "
            f"(id {created['id']})"
        )

    _run(body)


@release_app.command("list")
def release_list(
    application: Annotated[str, typer.Argument(help="Application name.")],
    api_url: ApiUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List an application's releases."""

    def body() -> None:
        with _client(api_url, token) as client:
            rows = client.get(f"/applications/{application}/releases")
        console.print(
            _table(
                f"releases of {application}",
                ["version", "id", "deployed", "created"],
                [[r["version"], r["id"], r["deployed"], r["created_at"]] for r in rows],
            )
        )

    _run(body)


def register_device(
    device_id: Annotated[str, typer.Argument(help="The device's id (its broker user name).")],
    model: Annotated[
        str | None, typer.Option("--model", help="System model, matched against releases.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat).")] = None,
    api_url: ApiUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Register a device (its broker identity lives in the broker's password file)."""

    def body() -> None:
        with _client(api_url, token) as client:
            client.post("/devices", {"id": device_id, "system_model": model, "tags": tag or []})
        console.print(f"device {device_id} registered")

    _run(body)


def command(
    command_id: Annotated[str, typer.Argument(help="Command id, as an action printed it.")],
    api_url: ApiUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show a command's status."""

    def body() -> None:
        with _client(api_url, token) as client:
            c = client.get(f"/commands/{command_id}")
        console.print(
            _table(
                f"command {c['id']}",
                ["action", "device", "deployment", "status", "detail", "updated"],
                [
                    [
                        c["action"],
                        c["device_id"],
                        c["deployment_id"],
                        c["status"],
                        c["detail"],
                        c["updated_at"],
                    ]
                ],
            )
        )

    _run(body)


def devices(api_url: ApiUrlOpt = None, token: TokenOpt = None) -> None:
    """List devices with their presence."""

    def body() -> None:
        with _client(api_url, token) as client:
            rows = client.get("/devices")
        console.print(
            _table(
                "devices",
                ["id", "online", "last seen", "agent", "model", "docker"],
                [
                    [
                        d["id"],
                        "yes" if d["online"] else "no",
                        d["last_seen"],
                        d["agent_version"],
                        d["system_model"] or d["reported_system_model"],
                        d["docker_version"],
                    ]
                    for d in rows
                ],
            )
        )

    _run(body)


def _deployment_table(deployment: dict[str, Any]) -> Table:
    title = (
        f"deployment {deployment['id']} on {deployment['device_id']}: "
        f"{deployment['application']} {deployment.get('current_version') or '-'} "
        f"(desired {deployment.get('desired_version')}, {deployment['desired_state']}) "
        f"state [bold]{deployment['state']}[/bold]"
        + (f" ({deployment['reason']})" if deployment.get("reason") else "")
    )
    return _table(
        title,
        ["container", "release", "status", "health", "exit", "restarts", "image"],
        [
            [
                c["name"],
                c["release_version"],
                c["status"],
                c["health"],
                c["exit_code"],
                c["restart_count"],
                c["image"],
            ]
            for c in deployment.get("containers", [])
            if not c.get("gone")
        ],
    )


def deployments(
    device: Annotated[str | None, typer.Option(help="Only this device's.")] = None,
    api_url: ApiUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List deployments."""

    def body() -> None:
        with _client(api_url, token) as client:
            rows = client.get("/deployments", device_id=device)
        console.print(
            _table(
                "deployments",
                ["id", "device", "application", "current", "desired", "state", "containers"],
                [
                    [
                        d["id"],
                        d["device_id"],
                        d["application"],
                        d["current_version"],
                        d["desired_version"],
                        d["state"],
                        ", ".join(
                            f"{c['name']}:{c['status']}/{c['health']}"
                            for c in d.get("containers", [])
                            if not c.get("gone")
                        ),
                    ]
                    for d in rows
                ],
            )
        )

    _run(body)


def deployment(
    deployment_id: Annotated[str, typer.Argument(help="Deployment id.")],
    api_url: ApiUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show one deployment and its containers."""

    def body() -> None:
        with _client(api_url, token) as client:
            console.print(_deployment_table(client.get(f"/deployments/{deployment_id}")))

    _run(body)


def _event_line(event: dict[str, Any]) -> str:
    data = event.get("data", {})
    kind = event["type"].removeprefix("io.fleetwire.event.").rsplit(".v", 1)[0]
    detail = (
        data.get("state")
        or data.get("step")
        or (
            f"{data.get('name')} {data.get('status')}/{data.get('health')}"
            if "name" in data
            else ""
        )
        or (data.get("error") or {}).get("message")
        or data.get("reason")
        or ""
    )
    return f"{event['time'][:19]} {event['device_id']} #{event.get('seq')} {kind} {detail}".rstrip()


def _wait(client: Client, action: str, command_id: str, deployment_id: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    cursor: int | None = None
    lines: list[str] = []
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            command = client.get(f"/commands/{command_id}")
            try:
                current: dict[str, Any] | None = client.get(f"/deployments/{deployment_id}")
            except ApiError as exc:
                if exc.status != 404:
                    raise
                current = None
            page = client.get("/events", deployment_id=deployment_id, cursor=cursor, limit=200)
            for event in page["items"]:
                cursor = event["cursor"]
                lines.append(_event_line(event))
            verdict = judge(action, command, current)
            parts: list[Any] = [_deployment_table(current)] if current else []
            parts.append("\n".join(lines[-12:]))
            parts.append(f"[bold]{verdict.summary}[/bold]")
            live.update(Group(*parts))
            if verdict.outcome is not None:
                return int(verdict.outcome)
            if time.monotonic() >= deadline:
                live.update(Group(*parts[:-1], f"[yellow]timed out: {verdict.summary}[/yellow]"))
                return int(Outcome.TIMEOUT)
            time.sleep(0.5)


def deploy(
    application: Annotated[str, typer.Argument(help="Application name.")],
    version: Annotated[str, typer.Argument(help="Release version.")],
    device: Annotated[list[str], typer.Option("--device", "-d", help="Target device (repeat).")],
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 300.0,
    api_url: ApiUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Deploy a release to devices.

    With --wait: exit 0 when running and healthy, 1 failed, 3 rolled back, 4 timed out.
    """

    def body() -> int:
        with _client(api_url, token) as client:
            accepted = client.post(
                "/deployments",
                {"application": application, "version": version, "device_ids": device},
            )["items"]
            for item in accepted:
                console.print(
                    f"deployment {item['deployment_id']} on {item['device_id']}: "
                    f"command {item['command_id']} accepted"
                )
            if not wait:
                return 0
            return max(
                _wait(client, DEPLOY.name, i["command_id"], i["deployment_id"], timeout)
                for i in accepted
            )

    _run(body)


def _act(
    action: str,
    deployment_id: str,
    body: dict[str, Any],
    target: tuple[str | None, str | None],
    *,
    wait: bool,
    timeout: float,
) -> None:
    """Post an action; with ``wait``, follow it and exit with the outcome's code."""

    def run() -> int:
        with _client(*target) as client:
            accepted = client.post(f"/deployments/{deployment_id}/actions/{action}", body)
            command_id = accepted["command_id"]
            console.print(f"{action} {deployment_id}: command {command_id} accepted")
            if not wait:
                return 0
            return _wait(client, action, command_id, deployment_id, timeout)

    _run(run)


def _action(action: Action) -> Callable[..., None]:
    """A command for an action that takes no options."""

    def command(
        deployment_id: Annotated[str, typer.Argument(help="Deployment id.")],
        wait: WaitOpt = False,
        timeout: TimeoutOpt = 300.0,
        api_url: ApiUrlOpt = None,
        token: TokenOpt = None,
    ) -> None:
        _act(action.name, deployment_id, {}, (api_url, token), wait=wait, timeout=timeout)

    command.__doc__ = f"{action.name.capitalize()} a deployment (exit codes as for deploy --wait)."
    return command


def upgrade(
    deployment_id: Annotated[str, typer.Argument(help="Deployment id.")],
    version: Annotated[str, typer.Argument(help="Target release version (same application).")],
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 300.0,
    api_url: ApiUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Upgrade a deployment; the device rolls back if the new release is not healthy in time."""
    _act(
        "upgrade", deployment_id, {"version": version}, (api_url, token), wait=wait, timeout=timeout
    )


def delete(
    deployment_id: Annotated[str, typer.Argument(help="Deployment id.")],
    purge_volumes: Annotated[bool, typer.Option(help="Remove named volumes too.")] = False,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 300.0,
    api_url: ApiUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Delete a deployment (named volumes are kept unless --purge-volumes)."""
    body = {"purge_volumes": purge_volumes}
    _act("delete", deployment_id, body, (api_url, token), wait=wait, timeout=timeout)


def events(
    device: Annotated[str | None, typer.Option(help="Only this device's events.")] = None,
    deployment_id: Annotated[
        str | None, typer.Option("--deployment", help="Only this deployment's events.")
    ] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this event type.")] = None,
    limit: Annotated[int, typer.Option(help="How many past events.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming.")] = False,
    api_url: ApiUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show the event history, and with --follow the live stream."""

    def body() -> None:
        filters = {"device_id": device, "deployment_id": deployment_id, "type": type_}
        with _client(api_url, token) as client:
            cursor: int | None = None
            while True:
                page = client.get("/events", cursor=cursor, limit=1000, **filters)
                items = page["items"]
                if not items:
                    break
                cursor = items[-1]["cursor"]
                if page["next_cursor"] is None:
                    break
            past = (
                client.get(
                    "/events", cursor=max((cursor or 0) - limit, 0) or None, limit=limit, **filters
                )["items"]
                if cursor
                else []
            )
            for event in past:
                console.print(_event_line(event), highlight=False)
            if follow:
                start = past[-1]["cursor"] if past else None
                for event in client.stream_events(cursor=start, **filters):
                    console.print(_event_line(event), highlight=False)

    _run(body)


# Deployment actions whose command has options of its own.
_WITH_OPTIONS: dict[str, Callable[..., None]] = {"upgrade": upgrade, "delete": delete}


def register(app: typer.Typer) -> None:
    """Add the operator commands to the ``fleetwire`` CLI."""
    app.add_typer(release_app, name="release")
    app.command()(devices)
    app.command("register")(register_device)
    app.command()(command)
    app.command()(deployments)
    app.command()(deployment)
    app.command(DEPLOY.name)(deploy)
    for name, command_ in _WITH_OPTIONS.items():
        app.command(name)(command_)
    for action in DEPLOYMENT_ACTIONS:
        if action.name not in _WITH_OPTIONS:
            app.command(action.name)(_action(action))
    app.command()(events)
