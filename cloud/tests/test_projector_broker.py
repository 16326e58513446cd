"""Projectors over a real Mosquitto with scripted devices."""

from typing import Any

import pytest
from sqlalchemy import text

from cloud.tests.support import (
    ScriptedDevice,
    container_state,
    dep_state,
    inventory,
    make_settings,
)
from fleetwire.cloud.serve import CloudServices
from fleetwire.protocol.envelope import FIRST_SEQ
from fleetwire.protocol.topics import event_topic
from tests.fixtures.waiting import wait_until

S = FIRST_SEQ  # a device's first event

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


def scalar(engine: Any, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _ready(services: CloudServices) -> None:
    wait_until(lambda: all(p.client.subscribed for p in services.projectors), timeout=10)


def test_gap_brings_a_sync_and_malformed_messages_do_not_stop_the_consumer(mosquitto, database_url):
    settings = make_settings(database_url, broker_url=mosquitto.url, gap_timeout_s=0.5)
    with CloudServices(settings, api=False) as services:
        engine = services.engine
        _ready(services)
        device = ScriptedDevice(mosquitto.host, mosquitto.port, "dev-1").connect()
        try:
            device.raw(event_topic("dev-1", "deployment"), b"{not json")
            device.send(dep_state("dev-1", S, "x", "pulling"))
            device.send(dep_state("dev-1", S + 1, "x", "running"))
            device.send(container_state("dev-1", S + 3, "x"))  # S + 2 is lost
            wait_until(lambda: scalar(engine, "SELECT count(*) FROM dead_letter") == 1)
            wait_until(lambda: scalar(engine, "SELECT count(*) FROM held_event") == 1)
            command = device.expect_command(timeout=10)
            assert command.type == "io.fleetwire.command.sync.v1"
            device.send(inventory("dev-1", S + 4, {"x": ["web", "db"]}))
            wait_until(lambda: scalar(engine, "SELECT next_seq FROM device") == S + 5)
            assert scalar(engine, "SELECT count(*) FROM held_event") == 0
            assert scalar(engine, "SELECT count(*) FROM container WHERE gone = false") == 2
            wait_until(lambda: scalar(engine, "SELECT status FROM command") == "sent")
            assert scalar(engine, "SELECT online FROM device")
        finally:
            device.close()


def test_two_projectors_share_the_load_into_one_consistent_read_model(mosquitto, database_url):
    settings = make_settings(database_url, broker_url=mosquitto.url, gap_timeout_s=30)
    with CloudServices(settings, api=False, relay=False, projectors=2) as services:
        engine = services.engine
        _ready(services)
        assert all(p.client.is_v5 for p in services.projectors)
        devices = [
            ScriptedDevice(mosquitto.host, mosquitto.port, f"dev-{i}").connect() for i in range(3)
        ]
        try:
            per_device = 40
            for n in range(per_device):
                for d in devices:
                    state = "running" if n == per_device - 1 else "starting"
                    d.send(dep_state(d.device_id, S + n, f"{d.device_id}-app", state))
            total = per_device * len(devices)
            wait_until(
                lambda: scalar(engine, "SELECT count(*) FROM event WHERE seq IS NOT NULL") == total,
                timeout=30,
            )
        finally:
            for d in devices:
                d.close()
        counts = [p.processed for p in services.projectors]
        assert all(c > 0 for c in counts), counts  # both took part
        assert scalar(engine, "SELECT count(*) FROM held_event") == 0
        assert scalar(engine, f"SELECT count(*) FROM device WHERE next_seq = {S + per_device}") == 3
        assert scalar(engine, "SELECT count(*) FROM deployment WHERE state = 'running'") == 3
        assert scalar(engine, "SELECT count(*) FROM dead_letter") == 0


def test_projector_with_a_worker_process(mosquitto, database_url):
    settings = make_settings(database_url, broker_url=mosquitto.url, projector_worker_process=True)
    with CloudServices(settings, api=False, relay=False) as services:
        engine = services.engine
        _ready(services)
        device = ScriptedDevice(mosquitto.host, mosquitto.port, "dev-w").connect()
        try:
            device.raw(event_topic("dev-w", "container"), b"[]")
            for n in range(20):
                device.send(dep_state("dev-w", S + n, "x", "running" if n == 19 else "starting"))
            wait_until(
                lambda: scalar(engine, "SELECT count(*) FROM event WHERE seq IS NOT NULL") == 20
            )
            assert scalar(engine, "SELECT state FROM deployment") == "running"
            assert scalar(engine, "SELECT count(*) FROM dead_letter") == 1
        finally:
            device.close()
