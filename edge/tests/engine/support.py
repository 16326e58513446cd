"""Helpers of the reconciler tests: test releases, a list-collecting sink, cleanup by label."""

import threading
import uuid
from collections.abc import Callable
from typing import Any

import docker

from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.reconciler import DockerReconciler
from fleetwire.edge.ports import DesiredDeployment
from fleetwire.protocol.events import CommandFailed, CommandSucceeded, DeviceEvent
from fleetwire.protocol.release import HealthCheck, ReleaseSpec
from tests import factories
from tests.fixtures.docker import APP_REPOSITORY, app_image
from tests.fixtures.waiting import wait_until

REPO = APP_REPOSITORY
DEVICE = "engine-test-device"
# Not "demo": other suites on a shared engine clean up by application label (tests/e2e does).
APPLICATION = "engine-test"
HEALTH = HealthCheck(
    test=["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
    interval_s=0.5,
    timeout_s=2,
    retries=2,
)


def release(
    version: str = "1.0.0",
    tag: str = "v1",
    *,
    image: str | None = None,
    credentials: str | None = None,
    health: HealthCheck | None = HEALTH,
    env: dict[str, str] | None = None,
) -> ReleaseSpec:
    """A one-container release of the shared test image ``tag``, with a named volume."""
    web = factories.container(
        "web",
        image or app_image(tag),
        credentials=credentials,
        env=env or {"MODE": "test"},
        volumes=["data:/data"],
        health_check=health,
        stop_timeout_s=2,
    )
    return factories.release(APPLICATION, version, containers=[web], volumes=[{"name": "data"}])


ReconcilerFactory = Callable[..., DockerReconciler]


class ListSink:
    """An EventSink collecting events, with bounded waits."""

    def __init__(self) -> None:
        self.events: list[DeviceEvent] = []
        self._lock = threading.Lock()

    def emit(self, event: DeviceEvent) -> None:
        assert event.seq is None
        with self._lock:
            self.events.append(event)

    def snapshot(self) -> list[DeviceEvent]:
        with self._lock:
            return list(self.events)

    def wait_for(
        self, predicate: Callable[[DeviceEvent], bool], timeout: float = 60.0
    ) -> DeviceEvent:
        """The first collected event matching ``predicate`` (bounded wait)."""

        def match() -> DeviceEvent | None:
            return next((e for e in self.snapshot() if predicate(e)), None)

        def got() -> str:
            return f"a matching event; got {[e.type.split('.')[-2] for e in self.snapshot()]}"

        return wait_until(match, timeout, got, error=TimeoutError)

    def outcome(self, command_id: str, timeout: float = 60.0) -> DeviceEvent:
        """The CommandSucceeded or CommandFailed answering ``command_id``."""
        return self.wait_for(
            lambda e: (
                isinstance(e, CommandSucceeded | CommandFailed) and e.correlationid == command_id
            ),
            timeout,
        )


def cleanup_deployment(client: docker.DockerClient, deployment_id: str) -> None:
    """Remove every container, network and volume labelled with ``deployment_id``."""
    flt: dict[str, str | list[str] | bool] = {"label": [f"{lb.DEPLOYMENT}={deployment_id}"]}
    for c in client.containers.list(all=True, filters=flt):
        c.remove(force=True, v=True)
    for n in client.networks.list(filters=flt):
        n.remove()
    for v in client.volumes.list(filters=flt):
        v.remove(force=True)


def desired(
    dep: str, rel: ReleaseSpec, command_id: str | None = None, **kw: Any
) -> DesiredDeployment:
    """A desired deployment answering ``command_id`` (a fresh one when omitted)."""
    return DesiredDeployment(
        deployment_id=dep,
        release=rel,
        command_id=command_id or f"cmd-{uuid.uuid4().hex[:12]}",
        health_timeout_s=kw.pop("health_timeout_s", 20.0),
        **kw,
    )
