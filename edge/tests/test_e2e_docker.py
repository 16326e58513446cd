"""The whole device end to end: real broker (Mosquitto and amqtt), the agent, the real Docker
reconciler, the shared test images. A probe MQTT client plays the cloud: it publishes commands
and collects the events.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from typer.testing import CliRunner

from edge.tests.agent_support import (
    DEVICE,
    EVENTS_FILTER,
    BrokerUnderTest,
    RunningAgent,
    once_in_seq_order,
)
from edge.tests.e2e_support import (
    CONTAINERS,
    FAST_HEALTH,
    Cloud,
    app_release,
    container_ids,
    containers_by_release,
    healthy,
    new_deployment_id,
    releases,
    wait_for_containers,
)
from edge.tests.engine.support import cleanup_deployment
from fleetwire.edge.cli import app
from fleetwire.edge.logs import configure_logging
from fleetwire.protocol.codec import decode, encode
from fleetwire.protocol.commands import (
    DeployCommand,
    UpgradeCommand,
)
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandFailed,
    CommandProgress,
    CommandSucceeded,
    ContainerStateChanged,
    DeploymentState,
    DeploymentStateChanged,
)
from fleetwire.protocol.release import ReleaseSpec
from tests import factories
from tests.fixtures.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(90)]

S = DeploymentState


@pytest.fixture
def deployment_id(docker_client: docker.DockerClient) -> Iterator[str]:
    dep = new_deployment_id()
    yield dep
    cleanup_deployment(docker_client, dep)


@pytest.fixture
def cloud(broker: BrokerUnderTest) -> Iterator[Cloud]:
    with broker.client() as probe:
        yield Cloud(probe)


def deploy(dep: str, rel: ReleaseSpec, **data: Any) -> DeployCommand:
    """A deploy to :data:`DEVICE` with a 20 s health timeout."""
    return factories.deploy(dep, rel, health_timeout_s=20, subject=DEVICE, **data)


def upgrade(dep: str, rel: ReleaseSpec) -> UpgradeCommand:
    """An upgrade with a 20 s health timeout."""
    return factories.upgrade(dep, rel, health_timeout_s=20)


def test_deploy_stop_start_redeploy_and_status(
    start_docker_agent: Any,
    cloud: Cloud,
    docker_client: docker.DockerClient,
    test_images: Any,
    deployment_id: str,
    tmp_path: Path,
) -> None:
    agent: RunningAgent = start_docker_agent()
    agent.wait_connected()
    v1 = releases(test_images)["v1"]

    command = deploy(deployment_id, v1)
    outcome = cloud.outcome(cloud.send(command))
    assert isinstance(outcome, CommandSucceeded), outcome
    assert containers_by_release(docker_client, deployment_id) == healthy("1.0.0")
    mine = cloud.of_command(command.id)
    assert isinstance(mine[0], CommandAccepted)
    assert mine[-1] is outcome
    assert [e.seq for e in mine] == sorted(e.seq or 0 for e in mine)
    assert cloud.states(deployment_id, command.id) == [S.PENDING, S.CREATING, S.STARTING, S.RUNNING]
    steps = [e.data.step for e in mine if isinstance(e, CommandProgress)]
    assert steps == ["create_container"] * 2 + ["start_container"] * 2 + ["wait_healthy"] * 2
    # Container states arrive too (the engine's own events).
    cloud.wait_for(
        lambda e: (
            isinstance(e, ContainerStateChanged)
            and e.data.deployment_id == deployment_id
            and e.data.health.value == "healthy"
        ),
        what="a healthy container state",
    )

    # `fleetwire-edge status` with the engine reachable, while the agent runs.
    result = CliRunner().invoke(
        app, ["status", "--data-dir", str(tmp_path / "data")], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if deployment_id in line]
    assert len(rows) == 1 + len(CONTAINERS), result.output
    assert "running" in rows[0]
    assert "1.0.0" in rows[0]
    for name in CONTAINERS:
        (row,) = [r for r in rows[1:] if f" {name} " in r]
        assert "running" in row
        assert "healthy" in row
    assert "not reachable" not in result.output

    before = container_ids(docker_client, deployment_id)
    stop = factories.simple("stop", deployment_id)
    assert isinstance(cloud.outcome(cloud.send(stop)), CommandSucceeded)
    stopped = containers_by_release(docker_client, deployment_id)
    assert list(stopped) == ["1.0.0"]
    assert [c.split()[1].split("/")[0] for c in stopped["1.0.0"]] == ["exited"] * len(CONTAINERS)
    assert cloud.states(deployment_id, stop.id) == [S.STOPPED]

    start = factories.simple("start", deployment_id)
    assert isinstance(cloud.outcome(cloud.send(start)), CommandSucceeded)
    assert cloud.states(deployment_id, start.id) == [S.PENDING, S.STARTING, S.RUNNING]
    assert containers_by_release(docker_client, deployment_id) == healthy("1.0.0")
    assert container_ids(docker_client, deployment_id) == before, "start keeps the containers"

    redeploy = factories.simple("redeploy", deployment_id)
    assert isinstance(cloud.outcome(cloud.send(redeploy)), CommandSucceeded)
    assert containers_by_release(docker_client, deployment_id) == healthy("1.0.0")
    assert container_ids(docker_client, deployment_id).isdisjoint(before), "recreated"
    assert cloud.states(deployment_id, redeploy.id)[-1] is S.RUNNING


def test_upgrade_then_rollback_of_an_unhealthy_release(
    start_docker_agent: Any,
    cloud: Cloud,
    docker_client: docker.DockerClient,
    test_images: Any,
    deployment_id: str,
) -> None:
    agent: RunningAgent = start_docker_agent()
    agent.wait_connected()
    rel = releases(test_images)
    assert isinstance(cloud.outcome(cloud.send(deploy(deployment_id, rel["v1"]))), CommandSucceeded)

    to_v2 = upgrade(deployment_id, rel["v2"])
    outcome = cloud.outcome(cloud.send(to_v2))
    assert isinstance(outcome, CommandSucceeded), outcome
    assert containers_by_release(docker_client, deployment_id) == healthy("2.0.0"), "v1 removed"
    assert cloud.states(deployment_id, to_v2.id) == [S.UPGRADING, S.RUNNING]
    v2_ids = container_ids(docker_client, deployment_id)

    to_v3 = upgrade(deployment_id, rel["v3"])
    failed = cloud.outcome(cloud.send(to_v3))
    assert isinstance(failed, CommandFailed), failed
    assert failed.data.error.code == "rolled_back"
    assert "unhealthy" in failed.data.error.message
    assert cloud.states(deployment_id, to_v3.id) == [S.UPGRADING, S.ROLLED_BACK]
    (rolled,) = [
        e
        for e in cloud.of_command(to_v3.id)
        if isinstance(e, DeploymentStateChanged) and e.data.state is S.ROLLED_BACK
    ]
    assert rolled.data.release_version == "2.0.0"
    assert rolled.data.reason
    assert containers_by_release(docker_client, deployment_id) == healthy("2.0.0")
    assert container_ids(docker_client, deployment_id) == v2_ids, "v2's own containers again"
    stored = agent.agent.store.get(deployment_id)
    assert stored is not None
    assert (stored.release.version, stored.previous_release, stored.command_id) == (
        "2.0.0",
        None,
        None,
    )
    assert agent.agent.store.journal_get(to_v3.id).status.value == "failed"  # type: ignore[union-attr]


def test_a_command_delivered_twice_is_executed_once_with_docker(
    start_docker_agent: Any,
    cloud: Cloud,
    docker_client: docker.DockerClient,
    test_images: Any,
    deployment_id: str,
) -> None:
    agent: RunningAgent = start_docker_agent()
    agent.wait_connected()
    command = deploy(deployment_id, releases(test_images)["v1"])
    payload = encode(command)
    cloud.send_raw(payload)
    cloud.send_raw(payload)  # redelivered while the first is being executed
    first = cloud.outcome(command.id)
    ids = container_ids(docker_client, deployment_id)
    cloud.send_raw(payload)  # and again once it is answered
    cloud.wait_for(
        lambda e: (
            isinstance(e, CommandSucceeded) and e.correlationid == command.id and e.id != first.id
        ),
        what="the replayed outcome",
    )
    time.sleep(0.5)  # a second execution would show by now
    mine = cloud.of_command(command.id)
    accepted = [e for e in mine if isinstance(e, CommandAccepted)]
    succeeded = [e for e in mine if isinstance(e, CommandSucceeded)]
    assert len(accepted) == 2
    assert len(succeeded) == 2
    assert accepted[0].data == accepted[1].data
    assert succeeded[0].data == succeeded[1].data, "two identical outcomes"
    assert len({e.id for e in succeeded}) == 2
    creates = [
        e for e in mine if isinstance(e, CommandProgress) and e.data.step.startswith("create")
    ]
    assert len(creates) == len(CONTAINERS), "executed once"
    assert not [e for e in mine if isinstance(e, CommandFailed)]
    assert container_ids(docker_client, deployment_id) == ids
    assert containers_by_release(docker_client, deployment_id) == healthy("1.0.0")
    (entry,) = [e for e in agent.agent.store.journal() if e.command_id == command.id]
    assert entry.status.value == "succeeded"


def test_events_of_a_running_upgrade_survive_a_broker_outage(
    broker: BrokerUnderTest,
    start_docker_agent: Any,
    docker_client: docker.DockerClient,
    test_images: Any,
    deployment_id: str,
) -> None:
    agent: RunningAgent = start_docker_agent()
    agent.wait_connected()
    store = agent.agent.store
    rel = releases(test_images)
    # v2 with a slow first health check: the broker goes down while the agent waits for it.
    slow = app_release(
        "2.0.0", test_images.v2, health=FAST_HEALTH.model_copy(update={"interval_s": 3.0})
    )
    probe = broker.client("e2e-cloud-outage", clean=False).connect()
    cloud = Cloud(probe)
    to_v2 = upgrade(deployment_id, slow)
    try:
        assert isinstance(
            cloud.outcome(cloud.send(deploy(deployment_id, rel["v1"]))), CommandSucceeded
        )
        cloud.send(to_v2)
        cloud.progress(to_v2.id, "wait_healthy")
        wait_until(lambda: store.outbox_size() == 0, 10, "acks before the outage")
        seen_before = len(cloud.unique())
        probe.disconnect()
        broker.stop()
        wait_until(lambda: not agent.agent.session.connected.is_set(), 10, "agent sees the outage")

        # Meanwhile on the device: v2 turns healthy, v1 is removed, the command is answered;
        # then a container dies and is started again.
        wait_until(lambda: store.get(deployment_id).command_id is None, 30, "upgrade done")  # type: ignore[union-attr]
        assert containers_by_release(docker_client, deployment_id) == healthy("2.0.0")
        flt: dict[str, str | list[str] | bool] = {
            "label": [f"io.fleetwire.deployment={deployment_id}", "io.fleetwire.container=worker"]
        }
        (worker,) = docker_client.containers.list(all=True, filters=flt)
        # Stopped, not killed: after a kill the restart policy (unless-stopped) restarts it at
        # once, often before the watcher inspects it, and "exited" was never seen (flaky).
        worker.stop(timeout=2)

        def worker_exit_queued() -> bool:
            # Queued before the restart: the watcher reports the latest state of a container at
            # most every event_interval_s, so a quick restart could hide the exit.
            for record in store.pending(0, 10_000):
                e = decode(record.payload)
                # This very container: the old release's worker also exited (stopped by the
                # upgrade) while the broker was away, and that event is in the outbox too.
                if (
                    isinstance(e, ContainerStateChanged)
                    and e.data.container_id == worker.id
                    and e.data.status.value == "exited"
                ):
                    return True
            return False

        wait_until(worker_exit_queued, 5, "the worker's exit queued")
        worker.start()
        wait_for_containers(docker_client, deployment_id, healthy("2.0.0"))
        queued = store.outbox_size()
        assert queued > 5, queued
        broker.start()
        probe = broker.client("e2e-cloud-outage", clean=False).connect()
        cloud.probe = probe
        probe.subscribe(EVENTS_FILTER)
        wait_until(lambda: store.outbox_size() == 0, 30, "outbox drained after the outage")
        cloud.outcome(to_v2.id, timeout=10)
        time.sleep(0.5)  # anything published twice would arrive by now
        cloud.pump()
    finally:
        probe.disconnect()
    events = cloud.received
    # (Not necessarily from 1: the agent may report states of containers that other tests of
    # this device id left behind before this probe subscribed; other devices' are never seen.)
    once_in_seq_order(events)  # every event once after dropping QoS 1 redeliveries
    assert len(events) >= seen_before + queued
    assert cloud.states(deployment_id, to_v2.id) == [S.UPGRADING, S.RUNNING]
    last = cloud.of_command(to_v2.id)[-1]
    assert isinstance(last, CommandSucceeded)
    worker_states = [
        e.data.status.value
        for e in events
        if isinstance(e, ContainerStateChanged)
        and e.data.name == "worker"
        and e.data.release_version == "2.0.0"
        and (e.seq or 0) > seen_before
    ]
    assert "exited" in worker_states
    assert worker_states[-1] == "running"


SECRET = "e2e-s3cr3t-Registry-Pa55"


@pytest.mark.mosquitto
@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
def test_registry_credentials_leave_no_trace_with_the_docker_reconciler(
    start_docker_agent: Any,
    cloud: Cloud,
    deployment_id: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", "text", DEVICE, stream)
    caplog.set_level(logging.DEBUG)
    # No registry is reachable: the pull with these credentials really goes to the engine and
    # fails there (the engine's error and the SDK's exception are where a secret could leak).
    image = "127.0.0.1:9/acme/private-app:1.0.0"
    rel = factories.release(
        "private", "1.0.0", containers=[factories.container("web", image, credentials="acme")]
    )
    credential = factories.credential(SECRET, registry="127.0.0.1:9", username="robot")
    try:
        agent: RunningAgent = start_docker_agent()
        agent.wait_connected()
        command = deploy(deployment_id, rel, credentials=[credential])
        failed = cloud.outcome(cloud.send(command))
        assert isinstance(failed, CommandFailed)
        assert failed.data.error.code == "pull_failed"
        assert cloud.states(deployment_id, command.id)[-1] is S.ERROR

        def leaked() -> list[str]:
            found = [
                str(p)
                for p in (tmp_path / "data").rglob("*")
                if p.is_file() and SECRET.encode() in p.read_bytes()
            ]
            records = "\n".join(
                f"{r.getMessage()} {r.__dict__} {r.exc_text or ''}"
                for r in caplog.records
                if r.name.startswith("fleetwire")
            )
            if SECRET in stream.getvalue() + records:
                found.append("logs")
            if any(SECRET in e.model_dump_json() for e in cloud.unique()):
                found.append("events")
            return found

        assert leaked() == [], "while running"
        agent.stop()
        assert leaked() == [], "after stop"
        assert "pull" in stream.getvalue()
    finally:
        logging.getLogger("fleetwire").removeHandler(handler)
