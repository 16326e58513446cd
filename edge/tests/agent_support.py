"""Test helpers for the agent half: a fake reconciler, commands, brokers and a running agent."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from fleetwire.edge.agent import Agent
from fleetwire.edge.config import AgentConfig
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.ports import DesiredStateStore, EventSink, Reconciler
from fleetwire.edge.store import Store
from fleetwire.protocol.codec import decode
from fleetwire.protocol.commands import (
    DeleteCommand,
    DeleteData,
    DeployCommand,
    DeployData,
    DeploymentCommandData,
    RedeployCommand,
    RegistryCredential,
    StartCommand,
    StopCommand,
    SyncCommand,
    SyncData,
    UpgradeCommand,
    UpgradeData,
)
from fleetwire.protocol.envelope import CommandEnvelope, device_source, utcnow
from fleetwire.protocol.events import (
    CommandSucceeded,
    CommandSucceededData,
    ContainerInfo,
    ContainerStateChanged,
    ContainerStateData,
    ContainerStatus,
    DeploymentState,
    DeviceEvent,
    InventoryData,
    InventoryDeployment,
)
from fleetwire.protocol.release import ContainerSpec, ReleaseSpec
from fleetwire.protocol.topics import EVENTS
from tests.fixtures.mqtt import MQTT5, MQTT311, ProbeClient
from tests.fixtures.waiting import wait_until

DEVICE = "device-a"
SECRET = "s3cr3t-registry-pa55word"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
EVENTS_FILTER = EVENTS.filter(device_id=DEVICE)


def release(version: str = "1.0.0", application: str = "app") -> ReleaseSpec:
    """A one-container release."""
    return ReleaseSpec(
        application=application,
        version=version,
        containers=[
            ContainerSpec(
                name="web", image=f"registry.example.com/acme/web:{version}", credentials="acme"
            )
        ],
    )


def credential() -> RegistryCredential:
    """Registry credentials whose password is :data:`SECRET`."""
    return RegistryCredential(
        ref="acme", registry="registry.example.com", username="puller", password=SecretStr(SECRET)
    )


def deploy(
    deployment_id: str = "dep-1",
    version: str = "1.0.0",
    *,
    expires: datetime | None = None,
    credentials: bool = True,
    **envelope: Any,
) -> DeployCommand:
    """A deploy command (with credentials by default)."""
    return DeployCommand(
        subject=DEVICE,
        expires=expires,
        traceparent=TRACEPARENT,
        data=DeployData(
            deployment_id=deployment_id,
            release=release(version),
            credentials=[credential()] if credentials else [],
        ),
        **envelope,
    )


def upgrade(deployment_id: str = "dep-1", version: str = "2.0.0", app: str = "app") -> Any:
    """An upgrade command."""
    return UpgradeCommand(
        data=UpgradeData(
            deployment_id=deployment_id,
            release=release(version, app),
            credentials=[credential()],
            health_timeout_s=30,
        )
    )


def simple(kind: str, deployment_id: str = "dep-1", **data: Any) -> CommandEnvelope:
    """start, stop, redeploy, delete or sync."""
    if kind == "sync":
        return SyncCommand(data=SyncData(**data))
    if kind == "delete":
        return DeleteCommand(data=DeleteData(deployment_id=deployment_id, **data))
    target = DeploymentCommandData(deployment_id=deployment_id)
    if kind == "start":
        return StartCommand(data=target)
    if kind == "stop":
        return StopCommand(data=target)
    assert kind == "redeploy", kind
    return RedeployCommand(data=target)


def expired(command: CommandEnvelope) -> CommandEnvelope:
    """The same command with an expiry in the past."""
    return command.model_copy(update={"expires": utcnow() - timedelta(minutes=1)})


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
                CommandSucceeded(
                    source=device_source(self.device_id),
                    correlationid=desired.command_id,
                    data=CommandSucceededData(
                        command_id=desired.command_id, command_type=desired.command_type
                    ),
                )
            )

    def inventory(self) -> InventoryData:
        if self.fail_inventory:
            msg = "engine unreachable"
            raise ConnectionError(msg)
        return InventoryData(
            deployments=[
                InventoryDeployment(
                    deployment_id=d.deployment_id,
                    application=d.release.application,
                    release_version=d.release.version,
                    state=DeploymentState.RUNNING,
                    containers=[
                        ContainerInfo(name=c.name, image=c.image, status=ContainerStatus.RUNNING)
                        for c in d.release.containers
                    ],
                )
                for d in self.store.all()
            ]
        )

    def docker_version(self) -> str | None:
        return "20.10.24-fake"

    def emit_container(self, n: int, container: str = "web", deployment_id: str = "dep-1") -> None:
        """Emit a ContainerStateChanged with restart count ``n``."""
        self.sink.emit(
            ContainerStateChanged(
                source=device_source(self.device_id),
                data=ContainerStateData(
                    name=container,
                    image="registry.example.com/acme/web:1.0.0",
                    status=ContainerStatus.RUNNING,
                    restart_count=n,
                    deployment_id=deployment_id,
                    release_version="1.0.0",
                ),
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


class RunningAgent:
    """An :class:`Agent` running in a thread (stopped, bounded, by :meth:`stop`).

    The reconciler is a :class:`FakeReconciler` built with ``options``, unless
    ``reconciler_factory`` is given (the real Docker reconciler, say).
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        reconciler_factory: Callable[[AgentConfig, Store, Outbox], Reconciler] | None = None,
        **options: Any,
    ) -> None:
        self.fakes: list[FakeReconciler] = []
        self.agent = Agent(
            config, reconciler_factory=reconciler_factory or fake_factory(self.fakes, **options)
        )
        self.thread = threading.Thread(target=self.agent.run, name="agent-under-test", daemon=True)
        self.thread.start()

    @property
    def reconciler(self) -> FakeReconciler:
        return self.fakes[0]

    def wait_connected(self, timeout: float = 15.0) -> None:
        if not self.agent.session.connected.wait(timeout):
            msg = f"agent did not connect within {timeout} s"
            raise AssertionError(msg)

    def stop(self, timeout: float = 20.0) -> None:
        self.agent.stop()
        # Not from a signal handler here: wake the serving loop instead of letting it notice the
        # stop at its next idle tick (up to a second per stop).
        self.agent.session.wake()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "agent did not stop"


def agent_config(data_dir: Path, url: str, **options: Any) -> AgentConfig:
    """A config with fast reconnects, for tests."""
    values: dict[str, Any] = {
        "device_id": DEVICE,
        "broker": url,
        "data_dir": data_dir,
        "backoff_initial_s": 0.2,
        "backoff_max_s": 1.0,
        "connect_timeout_s": 2.0,
        "keepalive_s": 10,
    }
    values.update(options)
    return AgentConfig.model_validate(values)


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
