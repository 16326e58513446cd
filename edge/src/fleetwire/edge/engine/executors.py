"""Step executors: the only code that changes the Docker Engine.

``EXECUTORS`` maps each step ``action`` to a function ``(ctx, step) -> None``. Every function is
idempotent where the engine allows it (removing what is gone is fine) and raises only
:class:`~fleetwire.edge.engine.errors.EngineError` subclasses.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import docker
import docker.errors

from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.errors import (
    ImageMissing,
    Superseded,
    Unhealthy,
    engine_errors,
)
from fleetwire.edge.engine.images import pull_image
from fleetwire.edge.engine.observed import ObservedContainer, container_from_attrs
from fleetwire.edge.engine.steps import (
    CreateContainer,
    CreateNetwork,
    CreateVolume,
    PullImage,
    RemoveContainer,
    RemoveNetwork,
    RemoveVolume,
    StartContainer,
    Step,
    StopContainer,
    WaitHealthy,
)
from fleetwire.protocol.commands import RegistryCredential
from fleetwire.protocol.events import ContainerStatus, Health
from fleetwire.protocol.release import RestartPolicy, parse_port

_NS = 1_000_000_000


@dataclass
class ExecContext:
    """What executors need besides the step: the client, in-memory credentials, cancellation."""

    client: docker.DockerClient
    credentials: Mapping[str, RegistryCredential] = field(default_factory=dict)
    cancelled: Callable[[], bool] = lambda: False
    poll_s: float = 0.2
    clock: Callable[[], float] = time.monotonic


def _gone(exc: docker.errors.APIError) -> bool:
    return exc.status_code == 404 or (
        exc.status_code == 409 and "already in progress" in str(exc.explanation)
    )


def pull(ctx: ExecContext, step: PullImage) -> None:
    """Pull an image with the credentials its container names, if the agent holds them."""
    credential = ctx.credentials.get(step.credentials) if step.credentials else None
    pull_image(ctx.client, step.image, credential)


def create_network(ctx: ExecContext, step: CreateNetwork) -> None:
    """Create a labelled network."""
    spec = step.spec
    with engine_errors(f"create network {spec.name}"):
        ctx.client.api.create_network(
            step.name,
            driver=spec.driver,
            options=spec.options or None,
            enable_ipv6=spec.ipv6,
            internal=spec.internal,
            labels=step.labels,
            check_duplicate=True,
        )


def create_volume(ctx: ExecContext, step: CreateVolume) -> None:
    """Create a labelled named volume."""
    spec = step.spec
    with engine_errors(f"create volume {spec.name}"):
        ctx.client.api.create_volume(
            step.name, driver=spec.driver, driver_opts=spec.options or None, labels=step.labels
        )


def _health(spec: lb.AppliedSpec) -> dict[str, Any] | None:
    check = spec.container.health_check
    if check is None:
        return None
    if check.test[0] == "NONE":
        return {"test": ["NONE"]}
    return {
        "test": check.test,
        "interval": int(check.interval_s * _NS),
        "timeout": int(check.timeout_s * _NS),
        "retries": check.retries,
        "start_period": int(check.start_period_s * _NS),
    }


def create_container(ctx: ExecContext, step: CreateContainer) -> None:
    """Create a container from its applied spec, attached to its networks with its name as alias."""
    api = ctx.client.api
    spec = step.spec
    c = spec.container
    dev, dep = step.device_id, step.deployment_id
    networks = [lb.network_name(dev, dep, n) for n in c.networks]
    port_bindings: dict[str, list[dict[str, str]]] = {}
    exposed: list[tuple[int, str]] = []
    for raw in c.ports:
        p = parse_port(raw)
        exposed.append((p.container_port, p.protocol))
        port_bindings.setdefault(f"{p.container_port}/{p.protocol}", []).append(
            {
                "HostIp": (p.host_ip or "").strip("[]"),
                "HostPort": str(p.host_port) if p.host_port else "",
            }
        )
    binds = list(c.binds)
    for mount in c.volumes:
        source, rest = mount.split(":", 1)
        binds.append(f"{lb.volume_name(dev, dep, source)}:{rest}")
    restart: dict[str, Any] = {
        "Name": "" if c.restart_policy is RestartPolicy.NO else c.restart_policy.value
    }
    with engine_errors(f"create container {c.name}"):
        host_config = api.create_host_config(
            binds=binds or None,
            port_bindings=cast(Any, port_bindings) or None,
            restart_policy=restart,
            init=c.init or None,
            network_mode=networks[0] if networks else None,
        )
        networking_config = (
            # The stubs say one endpoint config; the API takes a mapping of them.
            api.create_networking_config(
                cast(Any, {networks[0]: api.create_endpoint_config(aliases=[c.name])})
            )
            if networks
            else None
        )
        try:
            created = api.create_container(
                image=c.image,
                name=step.name,
                command=c.command,
                entrypoint=c.entrypoint,
                environment=dict(c.env) or None,
                ports=cast(list[Any], exposed) or None,
                labels=lb.container_labels(dev, dep, spec),
                host_config=host_config,
                networking_config=networking_config,
                healthcheck=_health(spec),
                stop_timeout=c.stop_timeout_s,
                detach=True,
            )
        except docker.errors.ImageNotFound as exc:
            raise ImageMissing(f"image {c.image} of {c.name} is not on the device") from exc
        for net in networks[1:]:
            api.connect_container_to_network(created["Id"], net, aliases=[c.name])


def start_container(ctx: ExecContext, step: StartContainer) -> None:
    """Start (or unpause) a container."""
    api = ctx.client.api
    with engine_errors(f"start {step.container}"):
        state = api.inspect_container(step.container_id)["State"]
        if state.get("Paused"):
            api.unpause(step.container_id)
        elif not state.get("Running"):
            api.start(step.container_id)


def stop_container(ctx: ExecContext, step: StopContainer) -> None:
    """Stop a container gracefully within its stop timeout."""
    with engine_errors(f"stop {step.container}"):
        try:
            ctx.client.api.stop(step.container_id, timeout=step.timeout_s)
        except docker.errors.APIError as exc:
            if not _gone(exc):
                raise


def remove_container(ctx: ExecContext, step: RemoveContainer) -> None:
    """Remove a container and its anonymous volumes (named volumes stay)."""
    with engine_errors(f"remove {step.container}"):
        try:
            ctx.client.api.remove_container(step.container_id, v=True, force=True)
        except docker.errors.APIError as exc:
            if not _gone(exc):
                raise


def remove_network(ctx: ExecContext, step: RemoveNetwork) -> None:
    """Remove a network."""
    with engine_errors(f"remove network {step.name}"):
        try:
            ctx.client.api.remove_network(step.network_id)
        except docker.errors.APIError as exc:
            if not _gone(exc):
                raise


def remove_volume(ctx: ExecContext, step: RemoveVolume) -> None:
    """Remove a named volume (purge)."""
    with engine_errors(f"remove volume {step.name}"):
        try:
            ctx.client.api.remove_volume(step.name)
        except docker.errors.APIError as exc:
            if not _gone(exc):
                raise


def wait_healthy(ctx: ExecContext, step: WaitHealthy) -> None:
    """Wait for Docker's health check to pass, or for ``grace_s`` of uninterrupted running.

    The health check is the release's or, when it names none, the image's ``HEALTHCHECK``.
    Fails fast on ``unhealthy`` or an exit; a newer desired state cancels the wait.
    """
    deadline = ctx.clock() + step.timeout_s
    watch = HealthWatch()
    while True:
        if ctx.cancelled():
            raise Superseded(f"wait for {step.container} cancelled by a newer target")
        with engine_errors(f"inspect {step.container}"):
            attrs = ctx.client.api.inspect_container(step.container_id)
        now = ctx.clock()
        if watch.healthy(step, container_from_attrs(attrs), now):
            return
        if now >= deadline:
            raise Unhealthy(
                f"{step.container} not healthy within {step.timeout_s:g}s (last: {watch.last})"
            )
        time.sleep(ctx.poll_s)


@dataclass
class HealthWatch:
    """What one ``wait_healthy`` has seen so far; its judgement is pure (no Docker, no clock)."""

    run_mark: tuple[object, int] | None = None
    steady_since: float | None = None
    last: str = "not started"

    def healthy(self, step: WaitHealthy, c: ObservedContainer, now: float) -> bool:
        """True once ``c`` counts as healthy; raises :class:`Unhealthy` when it never will."""
        if c.status in (ContainerStatus.EXITED, ContainerStatus.DEAD):
            raise Unhealthy(f"{step.container} exited with code {c.exit_code}")
        # The image's own HEALTHCHECK counts too when the release names none (the engine
        # then reports a health status); only containers without any check use the grace period.
        if step.has_health_check or c.health is not Health.NONE:
            if c.health is Health.HEALTHY and c.running:
                return True
            if c.health is Health.UNHEALTHY:
                raise Unhealthy(f"{step.container} is unhealthy")
            self.last = f"health {c.health.value}"
            return False
        if not c.running:
            self.run_mark, self.steady_since = None, None
            self.last = c.status.value
            return False
        self.last = "running"
        # A restart (new start time or restart count) begins the grace period again.
        mark = (c.started_at, c.restart_count)
        if mark != self.run_mark:
            self.run_mark, self.steady_since = mark, now
            return False
        return self.steady_since is not None and now - self.steady_since >= step.grace_s


EXECUTORS: Mapping[str, Callable[[ExecContext, Any], None]] = {
    "pull_image": pull,
    "create_network": create_network,
    "create_volume": create_volume,
    "create_container": create_container,
    "start_container": start_container,
    "stop_container": stop_container,
    "remove_container": remove_container,
    "wait_healthy": wait_healthy,
    "remove_network": remove_network,
    "remove_volume": remove_volume,
}
"""Action name to the function that carries it out; nothing else touches the engine."""


def execute(ctx: ExecContext, step: Step) -> None:
    """Run one step through :data:`EXECUTORS`."""
    EXECUTORS[step.action](ctx, step)
