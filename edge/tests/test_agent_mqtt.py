"""The agent over real brokers (Mosquitto with MQTT 5, amqtt with the 3.1.1 fallback)."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest

from edge.tests.agent_support import (
    DEVICE,
    EVENTS_FILTER,
    SECRET,
    BrokerUnderTest,
    collect_events,
    deploy,
    once_in_seq_order,
)
from fleetwire.edge.logs import configure_logging
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.session import MqttVersion
from fleetwire.edge.store import Store
from fleetwire.protocol.codec import decode, encode
from fleetwire.protocol.envelope import device_source
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandSucceeded,
    CommandSucceededData,
    PresenceBirth,
    PresenceDeath,
)
from fleetwire.protocol.registry import COMMAND_TYPES
from fleetwire.protocol.topics import command_topic, presence_topic
from tests.fixtures.mqtt import ProbeClient
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.slow


def next_presence(client: ProbeClient, timeout: float = 10.0) -> PresenceBirth | PresenceDeath:
    msg = client.expect(timeout)
    assert msg.topic == presence_topic(DEVICE)
    presence = decode(bytes(msg.payload))
    assert isinstance(presence, PresenceBirth | PresenceDeath)
    return presence


def test_birth_retained_protocol_fallback_and_clean_death(
    broker: BrokerUnderTest, start_agent: Any
) -> None:
    agent = start_agent(protocol="auto")  # the others skip amqtt's MQTT 5 attempt
    agent.wait_connected()
    expected = MqttVersion.MQTT5 if broker.kind == "mosquitto" else MqttVersion.MQTT311
    assert agent.agent.session.protocol is expected
    with broker.client() as cloud:
        cloud.subscribe(presence_topic(DEVICE))
        birth = next_presence(cloud)
        assert isinstance(birth, PresenceBirth), "birth is retained"
        assert birth.data.protocol_types == list(COMMAND_TYPES)
        assert birth.data.docker_version == "20.10.24-fake"
        assert birth.data.hostname
        assert birth.source == device_source(DEVICE)
        agent.stop()
        death = next_presence(cloud)
        assert isinstance(death, PresenceDeath)
        assert death.data.reason == "agent stopped"
    assert agent.reconciler.started
    assert agent.reconciler.stopped


def test_will_is_published_when_the_connection_dies(
    broker: BrokerUnderTest, start_agent: Any
) -> None:
    agent = start_agent()
    agent.wait_connected()
    with broker.client() as cloud:
        cloud.subscribe(presence_topic(DEVICE))
        assert isinstance(next_presence(cloud), PresenceBirth)
        agent.agent.session.kill_connection()
        death = next_presence(cloud)
        assert isinstance(death, PresenceDeath)
        assert death.data.reason == "connection lost"
        # The agent reconnects on its own and announces itself again.
        assert isinstance(next_presence(cloud, timeout=15), PresenceBirth)


def test_a_command_delivered_twice_is_executed_once(
    broker: BrokerUnderTest, start_agent: Any
) -> None:
    agent = start_agent()
    agent.wait_connected()
    with broker.client() as cloud:
        cloud.subscribe(EVENTS_FILTER)
        command = deploy()
        payload = encode(command)
        cloud.publish(command_topic(DEVICE), payload)
        first = collect_events(cloud, 2)
        cloud.publish(command_topic(DEVICE), payload)
        events = first + collect_events(cloud, 1)
    assert [type(e) for e in events] == [CommandAccepted, CommandSucceeded, CommandSucceeded]
    assert events[1].data == events[2].data
    assert [e.seq for e in events] == [1, 2, 3]
    assert all(e.correlationid == command.id for e in events)
    assert len(agent.reconciler.submits) == 1


def test_events_produced_while_the_broker_is_down_arrive_once_in_order(
    broker: BrokerUnderTest, start_agent: Any
) -> None:
    agent = start_agent()
    agent.wait_connected()
    store = agent.agent.store
    cloud = broker.client("test-cloud-outage", clean=False).connect()
    cloud.subscribe(EVENTS_FILTER)
    for i in range(5):
        agent.reconciler.emit_container(i, container=f"c{i}")
    received = collect_events(cloud, 5)
    wait_until(lambda: store.outbox_size() == 0, 10, "acks before the outage")
    cloud.disconnect()

    broker.stop()
    wait_until(lambda: not agent.agent.session.connected.is_set(), 10, "agent sees the outage")
    for i in range(5, 60):
        agent.reconciler.emit_container(i, container=f"c{i}")
    assert store.outbox_size() == 55
    broker.start()

    cloud = broker.client("test-cloud-outage", clean=False).connect()
    try:
        cloud.subscribe(EVENTS_FILTER)
        received += collect_events(cloud, 55, timeout=30)
        cloud.expect_nothing(0.5)
    finally:
        cloud.disconnect()
    # Redeliveries (same id) are allowed by QoS 1 and dropped by consumers; nothing is lost.
    assert once_in_seq_order(received) == list(range(1, 61)), "every event once, in seq order"
    wait_until(lambda: store.outbox_size() == 0, 10, "outbox drained")


def test_a_restarted_agent_replays_its_unacknowledged_outbox(
    broker: BrokerUnderTest, start_agent: Any, tmp_path: Path
) -> None:
    # Events a previous run stored but never got a PUBACK for (it crashed, or the link was down).
    store = Store.open(tmp_path / "data")
    outbox = Outbox(store, DEVICE)
    for i in range(30):
        outbox.emit(
            CommandSucceeded(
                source=device_source(DEVICE), data=CommandSucceededData(command_id=f"old-{i}")
            )
        )
    store.close()
    with broker.client() as cloud:
        cloud.subscribe(EVENTS_FILTER)
        agent = start_agent()
        events = collect_events(cloud, 30)
        assert [e.seq for e in events] == list(range(1, 31))
        assert [getattr(e.data, "command_id", None) for e in events] == [
            f"old-{i}" for i in range(30)
        ]
        wait_until(lambda: agent.agent.store.outbox_size() == 0, 10, "acks")
        agent.stop()
        # The next run continues the sequence.
        agent = start_agent()
        agent.wait_connected()
        agent.reconciler.emit_container(1)
        assert [e.seq for e in collect_events(cloud, 1)] == [31]


def test_credentials_never_reach_disk_or_logs(
    broker: BrokerUnderTest, start_agent: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", "text", DEVICE, stream)
    caplog.set_level(logging.DEBUG)
    try:
        agent = start_agent()
        agent.wait_connected()
        with broker.client() as cloud:
            cloud.subscribe(EVENTS_FILTER)
            cloud.publish(command_topic(DEVICE), encode(deploy()))
            collect_events(cloud, 2)
        assert agent.reconciler.submits[0][1][0].password.get_secret_value() == SECRET

        def leaked() -> list[str]:
            found = [
                str(p)
                for p in (tmp_path / "data").rglob("*")
                if p.is_file() and SECRET.encode() in p.read_bytes()
            ]
            # Only the agent's own records: the in-process amqtt broker logs payloads at DEBUG.
            ours = "\n".join(
                f"{r.getMessage()} {r.__dict__}"
                for r in caplog.records
                if r.name.startswith("fleetwire")
            )
            return found + (["logs"] if SECRET in stream.getvalue() + ours else [])

        assert leaked() == [], "while running (WAL not checkpointed)"
        agent.stop()
        assert leaked() == [], "after stop"
        assert "command io.fleetwire.command.deploy.v1" in stream.getvalue()
    finally:
        logging.getLogger("fleetwire").removeHandler(handler)


def test_commands_sent_while_the_agent_is_away_are_queued_by_the_broker(
    broker: BrokerUnderTest, start_agent: Any
) -> None:
    agent = start_agent()
    agent.wait_connected()
    agent.stop()  # persistent session: the broker keeps the subscription and queues for it
    with broker.client() as cloud:
        cloud.subscribe(EVENTS_FILTER)
        command = deploy()
        cloud.publish(command_topic(DEVICE), encode(command))
        agent = start_agent()
        events = collect_events(cloud, 2)
    assert [type(e) for e in events] == [CommandAccepted, CommandSucceeded]
    assert events[0].correlationid == command.id
