"""The relay against a real Mosquitto: nothing accepted is lost; a crash means a duplicate."""

import time
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import text

from cloud.tests.support import (
    ScriptedDevice,
    birth,
    feed,
    make_settings,
    register,
    seed_catalog,
)
from fleetwire.cloud.relay import Relay
from fleetwire.protocol.codec import DEFAULT_CODEC
from tests.fixtures.waiting import wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


def _deploy(api: Any, release_id: str, device: str = "dev-1") -> str:
    r = api.client.post(
        "/v1/deployments",
        json={"release_id": release_id, "device_ids": [device]},
        headers=api.operator,
    )
    assert r.status_code == 202, r.text
    command_id: str = r.json()["items"][0]["command_id"]
    return command_id


def _statuses(engine: Any) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT id, status FROM command")).all())


@pytest.fixture
def broker_settings(mosquitto, database_url):
    return make_settings(database_url, broker_url=mosquitto.url)


def test_commands_accepted_while_the_broker_is_away_are_all_published(
    api, engine, broker_settings, mosquitto
):
    (rel, _) = seed_catalog(api)
    register(api, "dev-1")
    feed(engine, broker_settings, birth("dev-1"))
    device = ScriptedDevice(mosquitto.host, mosquitto.port, "dev-1").connect()
    device.close()  # its persistent session now queues commands for it
    relay = Relay(engine, broker_settings)
    relay.start()
    try:
        mosquitto.stop()
        ids = [_deploy(api, rel) for _ in range(5)]
        relay.wake()
        time.sleep(1.0)
        assert set(_statuses(engine).values()) == {"pending"}
        mosquitto.start()
        wait_until(lambda: set(_statuses(engine).values()) == {"sent"}, timeout=20)
    finally:
        relay.stop()
    device = ScriptedDevice(mosquitto.host, mosquitto.port, "dev-1").connect()
    try:
        got = [device.expect_command().id for _ in ids]
        assert sorted(got) == sorted(ids)
        assert got == ids  # in the order they were accepted
    finally:
        device.close()


def test_crash_between_publish_and_mark_gives_a_duplicate_with_the_same_id(
    api, engine, broker_settings, mosquitto
):
    (rel, _) = seed_catalog(api)
    register(api, "dev-1")
    feed(engine, broker_settings, birth("dev-1"))
    device = ScriptedDevice(mosquitto.host, mosquitto.port, "dev-1").connect()
    try:
        ids = [_deploy(api, rel) for _ in range(3)]
        crashed = Relay(engine, broker_settings)
        crashed.client.connect()
        acked, failed = crashed.publish(crashed.due())
        assert len(acked) == 3
        assert not failed
        crashed.client.close()  # dies before mark()
        assert set(_statuses(engine).values()) == {"pending"}
        fresh = Relay(engine, broker_settings)
        try:
            assert fresh.run_once() == 3
            assert fresh.run_once() == 0
        finally:
            fresh.stop()
        first = device.probe.expect()
        assert first.properties is not None
        props = dict(first.properties.UserProperty)  # type: ignore[attr-defined]
        assert props["ce_type"] == "io.fleetwire.command.deploy.v1"
        assert props["traceparent"].startswith("00-")
        got = [DEFAULT_CODEC.decode(bytes(first.payload)).id]
        got += [device.expect_command().id for _ in range(5)]
        device.probe.expect_nothing(0.5)
        assert sorted(got) == sorted(ids * 2)
        assert set(_statuses(engine).values()) == {"sent"}
    finally:
        device.close()


def test_expired_commands_are_not_sent(api, engine, mosquitto, database_url):
    settings = make_settings(database_url, broker_url=mosquitto.url, command_ttl=0.2)
    (rel, _) = seed_catalog(api)
    register(api, "dev-1")
    feed(engine, settings, birth("dev-1"))
    r = api.client.post(
        "/v1/deployments", json={"release_id": rel, "device_ids": ["dev-1"]}, headers=api.operator
    )
    cmd = r.json()["items"][0]["command_id"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE command SET expires = created_at"))
    relay = Relay(engine, settings)
    try:
        assert relay.run_once() == 0
    finally:
        relay.stop()
    assert _statuses(engine)[cmd] == "expired"


def test_a_puback_with_a_failure_reason_code_is_not_a_success(
    api, engine, broker_settings, mosquitto, caplog
):
    # Mosquitto does not send failure PUBACKs (a denied publish is acked with success), so the
    # real PUBACK's reason code is replaced by 0x87 on its way into the adapter's handler.
    (rel, _) = seed_catalog(api)
    register(api, "dev-1")
    feed(engine, broker_settings, birth("dev-1"))
    command_id = _deploy(api, rel)
    relay = Relay(engine, broker_settings)
    try:
        relay.client.connect()
        assert relay.client.is_v5
        paho = relay.client._client
        assert paho is not None
        handler: Any = paho.on_publish

        def refused(client: Any, userdata: Any, mid: int, _reason: Any, props: Any) -> None:
            if handler is not None:
                handler(
                    client, userdata, mid, ReasonCode(PacketTypes.PUBACK, identifier=0x87), props
                )

        paho.on_publish = refused
        assert relay.run_once() == 0
        assert _statuses(engine)[command_id] == "pending"
        with engine.connect() as conn:
            (attempts, sent_at) = conn.execute(text("SELECT attempts, sent_at FROM outbox")).one()
        assert (attempts, sent_at) == (1, None)
        assert "0x87" in caplog.text
        assert "Not authorized" in caplog.text

        paho.on_publish = handler  # the broker accepts it now: the retry goes out
        wait_until(lambda: relay.run_once() == 1, timeout=5)
        assert _statuses(engine)[command_id] == "sent"
    finally:
        relay.stop()
