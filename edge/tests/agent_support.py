"""Test helpers for the agent half: a fake reconciler, commands, brokers and a running agent."""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fleetwire.edge.config import AgentConfig
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.ports import DesiredStateStore, EventSink, Reconciler
from fleetwire.edge.store import Store
from fleetwire.protocol.codec import decode
from fleetwire.protocol.commands import (
    DeployCommand,
    RegistryCredential,
    UpgradeCommand,
)
from fleetwire.protocol.events import (
    DeviceEvent,
    InventoryData,
)
from fleetwire.protocol.release import ReleaseSpec
from fleetwire.protocol.topics import EVENTS
from tests import agents, factories
from tests.agents import AgentThread
from tests.fixtures.mqtt import MQTT5, MQTT311, ProbeClient
from tests.fixtures.waiting import wait_until

DEVICE = "device-a"
SECRET = "s3cr3t-registry-pa55word"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
EVENTS_FILTER = EVENTS.filter(device_id=DEVICE)


def release(version: str = "1.0.0", application: str = "app") -> ReleaseSpec:
    """A one-container release whose image needs the ``acme`` credentials."""
    web = factories.container("web", factories.image_ref("acme", version), credentials="acme")
    return factories.release(application, version, containers=[web])


def credential() -> RegistryCredential:
    """Registry credentials whose password is :data:`SECRET`."""
    return factories.credential(SECRET)


def deploy(
    deployment_id: str = "dep-1",
    version: str = "1.0.0",
    *,
    expires: datetime | None = None,
    credentials: bool = True,
    **envelope: Any,
) -> DeployCommand:
    """A deploy command to :data:`DEVICE`, traced, with credentials by default."""
    return factories.deploy(
        deployment_id,
        release(version),
        credentials=[credential()] if credentials else [],
        subject=DEVICE,
        expires=expires,
        traceparent=TRACEPARENT,
        **envelope,
    )


def upgrade(
    deployment_id: str = "dep-1", version: str = "2.0.0", app: str = "app"
) -> UpgradeCommand:
    """An upgrade command (health timeout 30 s)."""
    return factories.upgrade(
        deployment_id, release(version, app), credentials=[credential()], health_timeout_s=30
    )


simple = factories.simple
expired = factories.expired


@dataclass
class FakeReconciler:
    """Records submits; optionally answers each with CommandSucceeded, like a fast engine."""

    store: DesiredStateStore
    sink: EventSink
    device_id: str = DEVICE
    auto_succeed: bool = True
    submits: list[tuple[str, list[RegistryCredential]]] = field(default_factory=list)
    started: bool = False
    stopped: bool = False
    fail_inventory: bool = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def submit(self, deployment_id: str, credentials: Sequence[RegistryCredential] = ()) -> None:
        self.submits.append((deployment_id, list(credentials)))
        desired = self.store.get(deployment_id)
        if self.auto_succeed and desired is not None and desired.command_id is not None:
            self.sink.emit(
                factories.succeeded(
                    self.device_id, desired.command_id, command_type=desired.command_type
                )
            )

    def inventory(self) -> InventoryData:
        if self.fail_inventory:
            msg = "engine unreachable"
            raise ConnectionError(msg)
        return InventoryData(
            deployments=[
                factories.inventory_deployment(
                    d.deployment_id,
                    [factories.running(c.name, c.image) for c in d.release.containers],
                    application=d.release.application,
                    version=d.release.version,
                )
                for d in self.store.all()
            ]
        )

    def docker_version(self) -> str | None:
        return "20.10.24-fake"

    def emit_container(self, n: int, container: str = "web", deployment_id: str = "dep-1") -> None:
        """Emit a ContainerStateChanged with restart count ``n``."""
        self.sink.emit(
            factories.container_state(
                self.device_id,
                deployment_id,
                name=container,
                image=factories.image_ref("acme"),
                restart_count=n,
            )
        )


def fake_factory(holder: list[FakeReconciler], **options: Any) -> Callable[..., Reconciler]:
    """A reconciler factory for Agent that keeps the fakes it builds in ``holder``."""

    def make(_config: AgentConfig, store: Store, sink: Outbox) -> Reconciler:
        fake = FakeReconciler(store, sink, **options)
        holder.append(fake)
        return fake

    return make


def collect_events(client: Any, count: int, timeout: float = 20.0) -> list[DeviceEvent]:
    """The next ``count`` events (bounded)."""
    out: list[DeviceEvent] = []
    wait_until(lambda: _drain(client, out) >= count, timeout, f"{count} events")
    return out


def _drain(client: Any, out: list[DeviceEvent]) -> int:
    while True:
        try:
            msg = client.messages.get_nowait()
        except queue.Empty:
            return len(out)
        event = decode(bytes(msg.payload))
        assert isinstance(event, DeviceEvent), msg.topic
        out.append(event)


class RunningAgent(AgentThread):
    """An :class:`AgentThread` whose reconciler is a :class:`FakeReconciler` built with
    ``options``, unless ``reconciler_factory`` is given (the real Docker reconciler, say)."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        reconciler_factory: Callable[[AgentConfig, Store, Outbox], Reconciler] | None = None,
        **options: Any,
    ) -> None:
        self.fakes: list[FakeReconciler] = []
        super().__init__(
            config, reconciler_factory=reconciler_factory or fake_factory(self.fakes, **options)
        )

    @property
    def reconciler(self) -> FakeReconciler:
        return self.fakes[0]


def agent_config(data_dir: Path, url: str, **options: Any) -> AgentConfig:
    """The shared test config (:func:`tests.agents.agent_config`) of :data:`DEVICE`."""
    return agents.agent_config(data_dir, url, options.pop("device_id", DEVICE), **options)


_ids = itertools.count()


@dataclass
class BrokerUnderTest:
    """A running broker plus what the agent and a cloud-side test client need to use it."""

    kind: str
    server: Any  # MosquittoBroker | AmqttBroker: both have host, port, url, start(), stop()
    device_username: str | None = None
    device_password: str | None = None
    cloud_username: str | None = None
    cloud_password: str | None = None

    @property
    def url(self) -> str:
        return str(self.server.url)

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()

    def client(self, client_id: str | None = None, *, clean: bool = True) -> ProbeClient:
        """A cloud-side client (not yet connected)."""
        return ProbeClient(
            self.server.host,
            self.server.port,
            client_id=client_id or f"test-cloud-{next(_ids)}",
            username=self.cloud_username,
            password=self.cloud_password,
            protocol=MQTT5 if self.kind == "mosquitto" else MQTT311,
            clean=clean,
        )

    def agent_options(self, tmp_path: Path) -> dict[str, Any]:
        """Credentials for amqtt, and its protocol: the MQTT 5 attempt before the 3.1.1 fallback
        costs ``connect_timeout_s`` per agent start, so only the fallback test asks for ``auto``
        (``start_agent(protocol="auto")``)."""
        options: dict[str, Any] = {}
        if self.kind == "amqtt":
            options["protocol"] = "3.1.1"
        if self.device_username is not None:
            secret = tmp_path / "broker-password"
            secret.write_text(self.device_password or "", encoding="utf-8")
            options.update(username=self.device_username, password_file=secret)
        return options


def once_in_seq_order(events: Sequence[Any]) -> list[int]:
    """The seqs a consumer sees after dropping redeliveries, checked for what QoS 1 allows.

    QoS 1 is at-least-once on each hop: a message whose PUBACK was lost when a connection or the
    broker went away is delivered again, byte for byte (same envelope id, same seq). Consumers
    drop such redeliveries by id and (device, seq), as the cloud's projector does. What must
    never happen is a seq reused by a different event, a lost seq, or a seq out of order.
    """
    first_of_id: dict[str, Any] = {}
    seqs: list[int] = []
    for event in events:
        earlier = first_of_id.get(event.id)
        if earlier is not None:
            assert earlier == event, f"redelivery of {event.id} differs from the first delivery"
            continue
        first_of_id[event.id] = event
        seqs.append(event.seq)
    assert len(set(seqs)) == len(seqs), f"a seq was used by two different events: {seqs}"
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"lost or reordered: {seqs}"
    return seqs
