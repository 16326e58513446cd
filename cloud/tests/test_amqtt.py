"""The cloud services on the embedded amqtt broker: MQTT 3.1.1, no shared subscriptions."""

from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from cloud.tests.support import ScriptedDevice, dep_state, make_settings
from fleetwire.cloud.db.engine import session_scope
from fleetwire.cloud.outbox import enqueue, sync_command
from fleetwire.cloud.serve import CloudServices
from fleetwire.protocol.envelope import FIRST_SEQ
from tests.fixtures.mqtt import MQTT311
from tests.fixtures.waiting import wait_until

pytestmark = [pytest.mark.amqtt, pytest.mark.slow]


def scalar(engine: Any, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_projector_and_relay_fall_back_to_mqtt_311(amqtt_broker, database_url):
    settings = make_settings(
        database_url,
        broker_url=amqtt_broker.url,
        broker_username=amqtt_broker.cloud.username,
        broker_password=SecretStr(amqtt_broker.cloud.password),
    )
    creds = amqtt_broker.devices["device-a"]
    with CloudServices(settings, api=False) as services:
        engine = services.engine
        assert engine is not None
        projector = services.projectors[0]
        wait_until(lambda: projector.client.subscribed, timeout=20)
        assert not projector.client.is_v5
        device = ScriptedDevice(
            "127.0.0.1",
            amqtt_broker.port,
            "device-a",
            username=creds.username,
            password=creds.password,
            protocol=MQTT311,
        ).connect()
        try:
            device.send(dep_state("device-a", FIRST_SEQ, "x", "running"))
            wait_until(
                lambda: scalar(engine, "SELECT state FROM deployment") == "running", timeout=20
            )
            wait_until(lambda: scalar(engine, "SELECT online FROM device"), timeout=20)
            with session_scope(engine) as session:
                enqueue(session, sync_command("test", settings.command_ttl), device_id="device-a")
            assert services.relay is not None
            services.relay.wake()
            assert device.expect_command(timeout=20).type == "io.fleetwire.command.sync.v1"
        finally:
            device.close()
