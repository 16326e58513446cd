"""End-to-end helpers: the probe cloud, releases of the shared test images, Docker checks.

The shared ``test_images`` fixture builds ``fleetwire-test/app:v1``/``v2`` (healthy) and ``v3``
(its image HEALTHCHECK always fails). Releases of v1 and v2 carry a fast health check of their
own; v3's carries none, so the image's failing check decides (as on a real device).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import docker

from edge.tests.agent_support import DEVICE, EVENTS_FILTER
from fleetwire.edge.config import AgentConfig
from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.reconciler import DockerReconciler
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.ports import Reconciler
from fleetwire.edge.store import Store
from fleetwire.protocol.codec import decode, encode
from fleetwire.protocol.envelope import CommandEnvelope
from fleetwire.protocol.events import (
    CommandFailed,
    CommandProgress,
    CommandSucceeded,
    DeploymentState,
    DeploymentStateChanged,
    DeviceEvent,
    PresenceBirth,
)
from fleetwire.protocol.release import HealthCheck, ReleaseSpec
from fleetwire.protocol.topics import command_topic, presence_topic
from tests import factories
from tests.fixtures.mqtt import ProbeClient
from tests.fixtures.waiting import wait_until

APPLICATION = "e2e"
CONTAINERS = ("web", "worker")
FAST_HEALTH = HealthCheck(
    test=["CMD", "/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"],
    interval_s=0.5,
    timeout_s=2,
    retries=2,
)


def app_release(
    version: str, image: str, *, health: HealthCheck | None = FAST_HEALTH
) -> ReleaseSpec:
    """A two-container release of one test image (no ports: tests never collide)."""
    return factories.release(
        APPLICATION,
        version,
        containers=[
            factories.container(
                name, image, env={"ROLE": name}, health_check=health, stop_timeout_s=2
            )
            for name in CONTAINERS
        ],
    )


def releases(images: Any) -> dict[str, ReleaseSpec]:
    """v1 and v2 (healthy, fast checks) and v3 (the image's check fails)."""
    return {
        "v1": app_release("1.0.0", images.v1),
        "v2": app_release("2.0.0", images.v2),
        "v3": app_release("3.0.0", images.v3_unhealthy, health=None),
    }


def new_deployment_id() -> str:
    return f"e2e-{uuid.uuid4().hex[:10]}"


def fast_docker_reconciler(client: docker.DockerClient) -> Callable[..., Reconciler]:
    """A reconciler factory for :class:`Agent`: the real Docker reconciler with test timings."""

    def make(config: AgentConfig, store: Store, sink: Outbox) -> Reconciler:
        return DockerReconciler(
            client,
            store,
            sink,
            config.device_id,
            grace_s=1.0,
            poll_s=0.1,
            event_interval_s=0.2,
            backoff_s=5.0,
            stop_timeout_s=10.0,
        )

    return make


# --- the cloud ------------------------------------------------------------------------------


class Cloud:
    """The probe client playing the cloud: sends commands, keeps every event it receives."""

    def __init__(self, probe: ProbeClient) -> None:
        self.probe = probe
        self.received: list[DeviceEvent] = []
        self.births = 0
        probe.subscribe(EVENTS_FILTER)
        probe.subscribe(presence_topic(DEVICE))

    def send(self, command: CommandEnvelope) -> str:
        self.send_raw(encode(command))
        return command.id

    def send_raw(self, payload: bytes) -> None:
        self.probe.publish(command_topic(DEVICE), payload)

    def pump(self) -> None:
        while not self.probe.messages.empty():
            message = decode(bytes(self.probe.messages.get_nowait().payload))
            if isinstance(message, PresenceBirth):
                self.births += 1
            elif isinstance(message, DeviceEvent):
                self.received.append(message)

    def wait_online(self, births: int = 1, timeout: float = 20.0) -> None:
        """Wait until ``births`` presence births arrived (the agent connected and subscribed)."""

        def online() -> bool:
            self.pump()
            return self.births >= births

        wait_until(online, timeout, "the agent to come online")

    def wait_for(
        self, predicate: Callable[[DeviceEvent], bool], timeout: float = 60.0, what: str = ""
    ) -> DeviceEvent:
        """The first received event matching ``predicate`` (bounded wait)."""
        checked = 0

        def match() -> DeviceEvent | None:
            nonlocal checked
            self.pump()
            found = next((e for e in self.received[checked:] if predicate(e)), None)
            checked = len(self.received)
            return found

        def got() -> str:
            return f"an event {what}; got {[describe(e) for e in self.unique()]}"

        return wait_until(match, timeout, got, interval=0.01)

    def outcome(self, command_id: str, timeout: float = 60.0) -> CommandSucceeded | CommandFailed:
        """The command's succeeded/failed event."""
        event = self.wait_for(
            lambda e: (
                isinstance(e, CommandSucceeded | CommandFailed) and e.correlationid == command_id
            ),
            timeout,
            f"answering {command_id}",
        )
        assert isinstance(event, CommandSucceeded | CommandFailed)
        return event

    def progress(self, command_id: str, step: str, detail: str = "", timeout: float = 60.0) -> None:
        """Wait for a CommandProgress of ``command_id`` with ``step`` (and ``detail`` in it)."""
        self.wait_for(
            lambda e: (
                isinstance(e, CommandProgress)
                and e.correlationid == command_id
                and e.data.step == step
                and detail in (e.data.detail or "")
            ),
            timeout,
            f"{step} {detail} of {command_id}",
        )

    def unique(self) -> list[DeviceEvent]:
        """Received events, one per ``seq`` (at least once on the wire), in ``seq`` order."""
        self.pump()
        by_seq: dict[int, DeviceEvent] = {}
        for e in self.received:
            assert e.seq is not None
            first = by_seq.setdefault(e.seq, e)
            assert first.id == e.id, f"seq {e.seq} was given to two events"
        return [by_seq[s] for s in sorted(by_seq)]

    def of_command(self, command_id: str) -> list[DeviceEvent]:
        return [e for e in self.unique() if e.correlationid == command_id]

    def states(self, deployment_id: str, command_id: str | None = None) -> list[DeploymentState]:
        """Deployment states reported (for one command, when given), in ``seq`` order."""
        return [
            e.data.state
            for e in self.unique()
            if isinstance(e, DeploymentStateChanged)
            and e.data.deployment_id == deployment_id
            and (command_id is None or e.correlationid == command_id)
        ]


def describe(e: DeviceEvent) -> str:
    kind = e.type.removeprefix("io.fleetwire.event.").removesuffix(".v1")
    data: Any = e.data
    extra = getattr(data, "state", None) or getattr(data, "step", None) or ""
    return f"{e.seq}:{kind}:{extra}"


# --- Docker ---------------------------------------------------------------------------------


def containers_by_release(client: docker.DockerClient, deployment_id: str) -> dict[str, list[str]]:
    """``{release: ["<container> <status>/<health>", ...]}`` of a deployment, from labels."""
    out: dict[str, list[str]] = {}
    flt: dict[str, str | list[str] | bool] = {"label": [f"{lb.DEPLOYMENT}={deployment_id}"]}
    for c in client.containers.list(all=True, filters=flt, ignore_removed=True):
        health = (c.attrs["State"].get("Health") or {}).get("Status", "none")
        out.setdefault(c.labels[lb.RELEASE], []).append(
            f"{c.labels[lb.CONTAINER]} {c.status}/{health}"
        )
    return {k: sorted(v) for k, v in out.items()}


def healthy(version: str) -> dict[str, list[str]]:
    """What :func:`containers_by_release` shows for a whole, healthy release."""
    return {version: [f"{name} running/healthy" for name in CONTAINERS]}


def container_ids(client: docker.DockerClient, deployment_id: str) -> set[str]:
    flt: dict[str, str | list[str] | bool] = {"label": [f"{lb.DEPLOYMENT}={deployment_id}"]}
    return {str(c.id) for c in client.containers.list(all=True, filters=flt, ignore_removed=True)}


def wait_for_containers(
    client: docker.DockerClient,
    deployment_id: str,
    expected: dict[str, list[str]],
    timeout: float = 30.0,
) -> None:
    """Wait (bounded) until :func:`containers_by_release` shows ``expected``."""
    wait_until(
        lambda: containers_by_release(client, deployment_id) == expected,
        timeout,
        lambda: (
            f"containers of {deployment_id}: {containers_by_release(client, deployment_id)}, "
            f"expected {expected}"
        ),
        interval=0.1,
    )
