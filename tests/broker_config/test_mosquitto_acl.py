"""broker-config/mosquitto/acl against a real Mosquitto 2.0.

The broker runs production.conf's settings (minus TLS and file paths) with the shipped ACL file
itself and a password file made with mosquitto_passwd. Mosquitto grants every SUBSCRIBE (the
SUBACK says nothing about the ACL) and silently drops denied publishes and deliveries, so every
"cannot" below is proven by a message that never arrives while a control message does.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from tests.fixtures.mosquitto import (
    PRODUCTION_ACL,
    PRODUCTION_CONF,
    MosquittoBroker,
    MosquittoFactory,
    write_password_file,
)
from tests.fixtures.mqtt import MQTT5, MQTT311, ConnectRefusedError, ProbeClient
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.mosquitto

CLOUD = "fleetwire-cloud"
INTEGRATOR = "fleetwire-integrator"
DEVICE_A = "device-a"
DEVICE_B = "device-b"
PASSWORDS = {CLOUD: "cloud-pw", INTEGRATOR: "integrator-pw", DEVICE_A: "a-pw", DEVICE_B: "b-pw"}
NEGATIVE_WAIT = 1.0
PROTOCOLS = pytest.mark.parametrize("protocol", [MQTT5, MQTT311], ids=["mqtt5", "mqtt311"])


def commands(device: str) -> str:
    return f"fleetwire/v1/devices/{device}/commands"


def events(device: str, category: str = "deployment") -> str:
    return f"fleetwire/v1/devices/{device}/events/{category}"


def presence(device: str) -> str:
    return f"fleetwire/v1/devices/{device}/presence"


@dataclass
class Clients:
    """Connects authenticated probe clients to the ACL broker; disconnects them all after."""

    broker: MosquittoBroker
    opened: list[ProbeClient]

    def connect(
        self,
        user: str,
        *,
        client_id: str | None = None,
        protocol: MQTTProtocolVersion = MQTT5,
        will: tuple[str, bytes, bool] | None = None,
    ) -> ProbeClient:
        client = ProbeClient(
            self.broker.host,
            self.broker.port,
            client_id=client_id or user,
            username=user,
            password=PASSWORDS[user],
            protocol=protocol,
            will=will,
        )
        self.opened.append(client)
        return client.connect()


@pytest.fixture
def acl_broker(mosquitto_factory: MosquittoFactory, tmp_path: Path) -> MosquittoBroker:
    return mosquitto_factory(
        base_config=PRODUCTION_CONF,
        password_file=write_password_file(tmp_path / "passwd", PASSWORDS),
        acl_file=PRODUCTION_ACL,
    )


@pytest.fixture
def clients(acl_broker: MosquittoBroker) -> Iterator[Clients]:
    registry = Clients(acl_broker, [])
    yield registry
    for client in registry.opened:
        client.disconnect()


def test_the_broker_runs_the_shipped_acl_and_production_settings(
    acl_broker: MosquittoBroker,
) -> None:
    conf = acl_broker.conf_path.read_text()
    assert f"acl_file {PRODUCTION_ACL}\n" in conf
    assert "allow_anonymous false\n" in conf
    assert "max_queued_messages 100000\n" in conf
    assert "persistent_client_expiration 7d\n" in conf


def test_anonymous_and_wrong_password_are_refused(acl_broker: MosquittoBroker) -> None:
    anonymous = ProbeClient(acl_broker.host, acl_broker.port, client_id="anon")
    with pytest.raises(ConnectRefusedError):
        anonymous.connect()
    wrong = ProbeClient(
        acl_broker.host, acl_broker.port, client_id=DEVICE_A, username=DEVICE_A, password="nope"
    )
    with pytest.raises(ConnectRefusedError):
        wrong.connect()


@PROTOCOLS
def test_device_reads_its_own_commands_only(
    clients: Clients, protocol: MQTTProtocolVersion
) -> None:
    device_a = clients.connect(DEVICE_A, protocol=protocol)
    device_b = clients.connect(DEVICE_B, protocol=protocol)
    cloud = clients.connect(CLOUD)
    device_a.subscribe(commands(DEVICE_A))
    device_a.subscribe(commands(DEVICE_B))  # granted by the SUBACK, filtered on delivery
    device_a.subscribe("fleetwire/v1/devices/+/commands")
    device_b.subscribe(commands(DEVICE_B))

    cloud.publish(commands(DEVICE_B), b"for-b")
    cloud.publish(commands(DEVICE_A), b"for-a")

    assert device_b.expect().payload == b"for-b"  # the command to B was really published
    # Overlapping subscriptions each deliver a copy: collect for a while, then compare.
    received = [device_a.expect(), *device_a.drain(NEGATIVE_WAIT)]
    assert {(m.topic, m.payload) for m in received} == {(commands(DEVICE_A), b"for-a")}


@PROTOCOLS
def test_device_cannot_publish_another_devices_events(
    clients: Clients, protocol: MQTTProtocolVersion
) -> None:
    cloud = clients.connect(CLOUD)
    cloud.subscribe("fleetwire/v1/devices/+/events/#")
    device_a = clients.connect(DEVICE_A, protocol=protocol)

    device_a.publish(events(DEVICE_B), b"spoofed")  # acknowledged, then dropped by the broker
    device_a.publish(events(DEVICE_A), b"genuine")

    message = cloud.expect()
    assert (message.topic, message.payload) == (events(DEVICE_A), b"genuine")
    cloud.expect_nothing(NEGATIVE_WAIT)


@PROTOCOLS
def test_device_publishes_its_own_events_and_presence(
    clients: Clients, protocol: MQTTProtocolVersion
) -> None:
    cloud = clients.connect(CLOUD)
    cloud.subscribe("fleetwire/v1/devices/+/events/#")
    cloud.subscribe("fleetwire/v1/devices/+/presence")
    device_a = clients.connect(DEVICE_A, protocol=protocol)

    for category in ("command", "deployment", "container", "inventory"):
        device_a.publish(events(DEVICE_A, category), category.encode())
        message = cloud.expect()
        assert (message.topic, message.payload) == (events(DEVICE_A, category), category.encode())

    device_a.publish(presence(DEVICE_A), b"online", retain=True)
    message = cloud.expect()
    assert (message.topic, message.payload) == (presence(DEVICE_A), b"online")

    # Retained: a consumer that subscribes later still learns the presence.
    integrator = clients.connect(INTEGRATOR)
    integrator.subscribe(presence(DEVICE_A))
    late = integrator.expect()
    assert (late.payload, late.retain) == (b"online", True)


def test_device_will_goes_to_its_presence_but_not_to_anothers(clients: Clients) -> None:
    cloud = clients.connect(CLOUD)
    cloud.subscribe("fleetwire/v1/devices/+/presence")
    impostor = clients.connect(
        DEVICE_A, client_id="device-a-2", will=(presence(DEVICE_B), b"x", True)
    )
    impostor.disconnect_with_will()
    device_a = clients.connect(DEVICE_A, will=(presence(DEVICE_A), b"offline", True))
    device_a.disconnect_with_will()

    message = cloud.expect()
    assert (message.topic, message.payload) == (presence(DEVICE_A), b"offline")
    cloud.expect_nothing(NEGATIVE_WAIT)


@PROTOCOLS
def test_only_the_cloud_writes_commands(clients: Clients, protocol: MQTTProtocolVersion) -> None:
    device_a = clients.connect(DEVICE_A, protocol=protocol)
    device_a.subscribe(commands(DEVICE_A))
    device_b = clients.connect(DEVICE_B, protocol=protocol)
    integrator = clients.connect(INTEGRATOR, protocol=protocol)
    cloud = clients.connect(CLOUD, protocol=protocol)

    integrator.publish(commands(DEVICE_A), b"from-integrator")
    device_b.publish(commands(DEVICE_A), b"from-b")
    device_a.publish(commands(DEVICE_A), b"from-a-itself")
    cloud.publish(commands(DEVICE_A), b"from-cloud")

    message = device_a.expect()
    assert (message.topic, message.payload) == (commands(DEVICE_A), b"from-cloud")
    device_a.expect_nothing(NEGATIVE_WAIT)


@PROTOCOLS
def test_integrator_reads_events_and_presence_but_not_commands(
    clients: Clients, protocol: MQTTProtocolVersion
) -> None:
    integrator = clients.connect(INTEGRATOR, protocol=protocol)
    integrator.subscribe("fleetwire/v1/devices/+/commands")
    integrator.subscribe("fleetwire/v1/devices/+/events/#")
    device_a = clients.connect(DEVICE_A)
    cloud = clients.connect(CLOUD)

    cloud.publish(commands(DEVICE_A), b"secret-command")
    device_a.publish(events(DEVICE_A), b"event")

    message = integrator.expect()
    assert (message.topic, message.payload) == (events(DEVICE_A), b"event")
    integrator.expect_nothing(NEGATIVE_WAIT)


def test_cloud_shares_events_among_projectors(clients: Clients) -> None:
    group = "$share/projectors/fleetwire/v1/devices/+/events/#"
    projectors = [clients.connect(CLOUD, client_id=f"projector-{i}") for i in range(2)]
    for projector in projectors:
        assert projector.subscribe(group)[0].value == 1
    device_a = clients.connect(DEVICE_A)
    device_b = clients.connect(DEVICE_B)

    sent = {(events(d), f"{d}-{n}".encode()) for d in (DEVICE_A, DEVICE_B) for n in range(10)}
    for topic, payload in sorted(sent):
        (device_a if DEVICE_A in topic else device_b).publish(topic, payload)

    received: list[tuple[str, bytes]] = []
    per_projector = [0, 0]

    def all_received() -> bool:
        for index, projector in enumerate(projectors):
            with contextlib.suppress(queue.Empty):
                message = projector.messages.get(timeout=0.05)
                received.append((message.topic, bytes(message.payload)))
                per_projector[index] += 1
        return len(received) >= len(sent)

    wait_until(all_received, 10, "every shared event", interval=0)
    for projector in projectors:
        projector.expect_nothing(0.3)
    assert sorted(received) == sorted(sent), "each event exactly once across the group"
    assert all(count > 0 for count in per_projector), "the group shares the load"


def test_shared_subscription_needs_the_plain_read_rule(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    """Mosquitto 2.0 checks a $share delivery against the topic without the $share prefix."""
    acl = tmp_path / "acl"
    acl.write_text(
        "pattern write fleetwire/v1/devices/%u/events/+\n"
        "user fleetwire-cloud\n"
        "topic read $share/+/fleetwire/v1/devices/+/events/#\n",
        encoding="utf-8",
    )
    broker = mosquitto_factory(
        password_file=write_password_file(tmp_path / "passwd", PASSWORDS), acl_file=acl
    )
    registry = Clients(broker, [])
    try:
        projector = registry.connect(CLOUD)
        projector.subscribe("$share/projectors/fleetwire/v1/devices/+/events/#")
        registry.connect(DEVICE_A).publish(events(DEVICE_A), b"event")
        projector.expect_nothing(NEGATIVE_WAIT)
    finally:
        for client in registry.opened:
            client.disconnect()


def test_a_device_added_at_runtime_is_admitted_after_sighup(
    acl_broker: MosquittoBroker, clients: Clients, tmp_path: Path
) -> None:
    """Provisioning a device needs a password-file update and a SIGHUP, not a restart."""
    new_device = "device-c"
    newcomer = ProbeClient(
        acl_broker.host,
        acl_broker.port,
        client_id=new_device,
        username=new_device,
        password="c-pw",
    )
    with pytest.raises(ConnectRefusedError):
        newcomer.connect()

    write_password_file(tmp_path / "passwd", {**PASSWORDS, new_device: "c-pw"})
    acl_broker.reload()

    cloud = clients.connect(CLOUD)
    cloud.subscribe("fleetwire/v1/devices/+/events/#")
    with newcomer:
        newcomer.publish(events(new_device), b"hello")
    message = cloud.expect()
    assert (message.topic, message.payload) == (events(new_device), b"hello")
