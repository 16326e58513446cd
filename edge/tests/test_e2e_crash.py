"""kill -9 of the agent process during an upgrade: the device ends on one whole, healthy release.

The agent runs as a real process (``python -m fleetwire.edge run``) against Mosquitto and the
real Docker Engine. The probe cloud watches its events and SIGKILLs it at a chosen step of the
upgrade; the agent is then started again on the same data dir and must finish the job: roll
forward to a healthy new release, or back to the old one, and answer the command.

Mosquitto only: the broker plays no part in crash recovery (the data dir and the engine's labels
do), and each case already costs two agent start-ups.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from typer.testing import CliRunner

from edge.tests.agent_support import agent_config
from edge.tests.e2e_support import (
    Cloud,
    containers_by_release,
    healthy,
    new_deployment_id,
    releases,
    wait_for_containers,
)
from edge.tests.engine.support import cleanup_deployment
from fleetwire.edge.cli import app
from fleetwire.protocol.events import (
    CommandFailed,
    CommandSucceeded,
    DeploymentState,
    DeploymentStateChanged,
)
from tests import factories
from tests.agents import AgentProcess
from tests.fixtures.mqtt import ProbeClient

pytestmark = [
    pytest.mark.docker,
    pytest.mark.mosquitto,
    pytest.mark.slow,
    pytest.mark.timeout(90),
]


@pytest.fixture
def device(mosquitto: Any, tmp_path: Path) -> Iterator[AgentProcess]:
    """The agent process of one test, restartable on the same data dir."""
    dev = AgentProcess(agent_config(tmp_path / "data", mosquitto.url), tmp_path / "agent.log")
    yield dev
    dev.terminate()


@pytest.fixture
def deployment_id(docker_client: docker.DockerClient) -> Iterator[str]:
    dep = new_deployment_id()
    yield dep
    cleanup_deployment(docker_client, dep)


# (first release, upgrade to, the step to kill at, a word its detail contains, expected end)
CASES = {
    "while-creating": ("v1", "v2", "create_container", "", "2.0.0"),
    "old-stopped": ("v1", "v2", "start_container", "", "2.0.0"),
    "waiting-for-health": ("v1", "v2", "wait_healthy", "", "2.0.0"),
    "bad-release-health-wait": ("v2", "v3", "wait_healthy", "", "2.0.0"),
    "during-rollback": ("v2", "v3", "remove_container", "3.0.0", "2.0.0"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_kill_9_during_an_upgrade_ends_on_one_whole_release(
    case: str,
    device: AgentProcess,
    mosquitto: Any,
    docker_client: docker.DockerClient,
    test_images: Any,
    deployment_id: str,
) -> None:
    first, target, step, detail, expected = CASES[case]
    rel = releases(test_images)
    with ProbeClient(mosquitto.host, mosquitto.port, client_id="crash-cloud") as probe:
        cloud = Cloud(probe)
        device.start()
        cloud.wait_online()
        deploy = factories.deploy(deployment_id, rel[first], health_timeout_s=20)
        assert isinstance(cloud.outcome(cloud.send(deploy)), CommandSucceeded), device.log
        up = factories.upgrade(deployment_id, rel[target], health_timeout_s=15)
        cloud.send(up)
        cloud.progress(up.id, step, detail)
        device.kill9()
        cut = containers_by_release(docker_client, deployment_id)
        assert cut != healthy(expected), "killed before the device reached the end state"

        device.start()
        outcome = cloud.outcome(up.id, timeout=60)
        wait_for_containers(docker_client, deployment_id, healthy(expected))

    events = cloud.unique()
    log = device.log.read_text()
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "no seq lost or reused"
    answers = [e for e in events if isinstance(e, CommandSucceeded | CommandFailed)]
    assert [e.correlationid for e in answers] == [deploy.id, up.id], "each command answered once"
    states = [
        e
        for e in events
        if isinstance(e, DeploymentStateChanged) and e.data.deployment_id == deployment_id
    ]
    final = states[-1]
    if expected == rel[target].version:
        assert isinstance(outcome, CommandSucceeded), (outcome, cut, log)
        assert final.data.state is DeploymentState.RUNNING
    else:
        assert isinstance(outcome, CommandFailed), (outcome, cut, log)
        assert outcome.data.error.code == "rolled_back"
        assert final.data.state is DeploymentState.ROLLED_BACK
    assert final.data.release_version == expected
    assert "Traceback" not in log, log

    # The journal tells what happened (read while the agent still runs).
    result = CliRunner().invoke(
        app, ["history", "--data-dir", str(device.config.data_dir)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if up.id in line]
    assert "upgrade" in row
    assert deployment_id in row
    if isinstance(outcome, CommandSucceeded):
        assert "succeeded" in row
    else:
        assert "failed" in row
        assert "rolled_back" in row
