"""End to end on one device: real Mosquitto, the agent and the real Docker reconciler."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from edge.tests.agent_support import DEVICE, EVENTS_FILTER, agent_config, collect_events
from edge.tests.engine.support import cleanup_deployment
from fleetwire.edge.agent import Agent
from fleetwire.protocol.codec import encode
from fleetwire.protocol.commands import (
    DeleteCommand,
    DeleteData,
    DeployCommand,
    DeployData,
    SyncCommand,
    SyncData,
)
from fleetwire.protocol.events import CommandFailed, CommandSucceeded, DeviceEvent, Inventory
from fleetwire.protocol.release import ContainerSpec, ReleaseSpec
from fleetwire.protocol.topics import command_topic
from tests.fixtures.mqtt import ProbeClient

pytestmark = [pytest.mark.docker, pytest.mark.mosquitto, pytest.mark.slow]


def outcome_of(cloud: ProbeClient, command_id: str, timeout: float = 90.0) -> list[DeviceEvent]:
    """Events up to the command's succeeded/failed event."""
    seen: list[DeviceEvent] = []
    while True:
        seen += collect_events(cloud, 1, timeout)
        last = seen[-1]
        if isinstance(last, CommandSucceeded | CommandFailed) and last.correlationid == command_id:
            return seen


def test_deploy_sync_delete_with_the_docker_reconciler(
    mosquitto: Any, docker_client: Any, test_images: Any, tmp_path: Path
) -> None:
    deployment_id = f"e2e-{uuid.uuid4().hex[:10]}"
    agent = Agent(agent_config(tmp_path / "data", mosquitto.url))
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        assert agent.session.connected.wait(15)
        with ProbeClient(mosquitto.host, mosquitto.port, client_id="e2e-cloud") as cloud:
            cloud.subscribe(EVENTS_FILTER)
            release = ReleaseSpec(
                application="e2e",
                version="1.0.0",
                containers=[ContainerSpec(name="web", image=test_images.v1)],
            )
            deploy = DeployCommand(
                data=DeployData(deployment_id=deployment_id, release=release, health_timeout_s=60)
            )
            cloud.publish(command_topic(DEVICE), encode(deploy))
            events = outcome_of(cloud, deploy.id)
            assert isinstance(events[-1], CommandSucceeded), events[-1]

            sync = SyncCommand(data=SyncData())
            cloud.publish(command_topic(DEVICE), encode(sync))
            events = outcome_of(cloud, sync.id)
            inventory = next(e for e in events if isinstance(e, Inventory))
            mine = [d for d in inventory.data.deployments if d.deployment_id == deployment_id]
            assert [c.name for c in mine[0].containers] == ["web"]

            delete = DeleteCommand(data=DeleteData(deployment_id=deployment_id))
            cloud.publish(command_topic(DEVICE), encode(delete))
            assert isinstance(outcome_of(cloud, delete.id)[-1], CommandSucceeded)
    finally:
        agent.stop()
        thread.join(30)
        cleanup_deployment(docker_client, deployment_id)
    assert not thread.is_alive()
