"""Fixtures of the agent tests: one broker interface over the shared Mosquitto and amqtt fixtures.

``broker`` is parametrized: every test that uses it runs against a real Mosquitto (MQTT 5) and
the embedded amqtt (MQTT 3.1.1 only, authenticated: the agent connects as ``device-a`` and the
test's cloud-side client as ``fleetwire-cloud``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from edge.tests.agent_support import DEVICE, BrokerUnderTest, RunningAgent, agent_config
from edge.tests.e2e_support import fast_docker_reconciler


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


def _agents(
    broker: BrokerUnderTest, tmp_path: Path, **agent_kw: Any
) -> Iterator[Callable[..., RunningAgent]]:
    """Yield ``start(fake=None, **config_options)``: agents on ``tmp_path/data`` against
    ``broker``, all stopped at teardown."""
    running: list[RunningAgent] = []

    def start(fake: dict[str, Any] | None = None, **options: Any) -> RunningAgent:
        config = agent_config(
            tmp_path / "data", broker.url, **{**broker.agent_options(tmp_path), **options}
        )
        agent = RunningAgent(config, **agent_kw, **(fake or {}))
        running.append(agent)
        return agent

    yield start
    for agent in running:
        if agent.thread.is_alive():
            agent.stop()


@pytest.fixture
def start_agent(broker: BrokerUnderTest, tmp_path: Path) -> Iterator[Any]:
    """Start agents with a fake reconciler (``fake``: its options) against ``broker``."""
    yield from _agents(broker, tmp_path)


@pytest.fixture
def start_docker_agent(
    broker: BrokerUnderTest, tmp_path: Path, docker_client: docker.DockerClient
) -> Iterator[Any]:
    """Like ``start_agent``, with the real Docker reconciler (test timings) instead of a fake."""
    yield from _agents(broker, tmp_path, reconciler_factory=fast_docker_reconciler(docker_client))
