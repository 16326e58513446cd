"""Fixtures of the agent tests: one broker interface over the shared Mosquitto and amqtt fixtures.

``broker`` is parametrized: every test that uses it runs against a real Mosquitto (MQTT 5) and
the embedded amqtt (MQTT 3.1.1 only, authenticated: the agent connects as ``device-a`` and the
test's cloud-side client as ``fleetwire-cloud``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge.tests.agent_support import DEVICE, RunningAgent, agent_config
from tests.fixtures.mqtt import MQTT5, MQTT311, ProbeClient

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
        options: dict[str, Any] = {}
        if self.device_username is not None:
            secret = tmp_path / "broker-password"
            secret.write_text(self.device_password or "", encoding="utf-8")
            options.update(username=self.device_username, password_file=secret)
        return options


@pytest.fixture(
    params=[
        pytest.param("mosquitto", marks=pytest.mark.mosquitto),
        pytest.param("amqtt", marks=pytest.mark.amqtt),
    ]
)
def broker(request: pytest.FixtureRequest) -> BrokerUnderTest:
    """A real broker: Mosquitto 2.0 or the embedded amqtt."""
    if request.param == "mosquitto":
        return BrokerUnderTest("mosquitto", request.getfixturevalue("mosquitto"))
    amqtt = request.getfixturevalue("amqtt_broker")
    device = amqtt.devices[DEVICE]
    return BrokerUnderTest(
        "amqtt",
        amqtt,
        device_username=device.username,
        device_password=device.password,
        cloud_username=amqtt.cloud.username,
        cloud_password=amqtt.cloud.password,
    )


@pytest.fixture
def start_agent(broker: BrokerUnderTest, tmp_path: Path) -> Iterator[Any]:
    """Start agents on ``tmp_path/data`` against ``broker`` (all stopped at teardown)."""
    running: list[RunningAgent] = []

    def start(fake: dict[str, Any] | None = None, **options: Any) -> RunningAgent:
        config = agent_config(
            tmp_path / "data", broker.url, **broker.agent_options(tmp_path), **options
        )
        agent = RunningAgent(config, **(fake or {}))
        running.append(agent)
        return agent

    yield start
    for agent in running:
        if agent.thread.is_alive():
            agent.stop()
