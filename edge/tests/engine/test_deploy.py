"""Deploy, stop/start, redeploy and delete against the real Docker Engine."""

import time
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from edge.tests.engine.support import (
    APPLICATION,
    DEVICE,
    ListSink,
    ReconcilerFactory,
    desired,
    release,
)
from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.edge.ports import TargetState
from fleetwire.protocol.events import (
    CommandFailed,
    CommandProgress,
    CommandSucceeded,
    ContainerStateChanged,
    DeploymentState,
    DeploymentStateChanged,
    Health,
)

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


def _containers(client: docker.DockerClient, dep: str) -> list[Container]:
    return client.containers.list(all=True, filters={"label": [f"{lb.DEPLOYMENT}={dep}"]})


def _states(sink: ListSink, dep: str) -> list[DeploymentState]:
    return [
        e.data.state
        for e in sink.snapshot()
        if isinstance(e, DeploymentStateChanged) and e.data.deployment_id == dep
    ]


def _health(c: Container) -> str:
    c.reload()
    return str(c.attrs["State"].get("Health", {}).get("Status", "none"))


def test_deploy_runs_healthy_and_reports_in_order(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    d = desired(deployment_id, release())
    ex = make_reconciler()
    store.put(d)
    ex.submit(deployment_id)
    outcome = sink.outcome(d.command_id or "")
    assert isinstance(outcome, CommandSucceeded)
    assert _states(sink, deployment_id) == [
        DeploymentState.PENDING,
        DeploymentState.CREATING,
        DeploymentState.STARTING,
        DeploymentState.RUNNING,
    ]
    ours = [e for e in sink.snapshot() if e.correlationid == d.command_id]
    assert ours[-1] is outcome
    assert all(e.source == "fleetwire://devices/engine-test-device" for e in ours)
    steps = [e.data.step for e in ours if isinstance(e, CommandProgress)]
    assert steps == ["create_volume", "create_container", "start_container", "wait_healthy"]
    (c,) = _containers(docker_client, deployment_id)
    assert c.status == "running"
    assert _health(c) == "healthy"
    labels = c.labels
    assert labels[lb.MANAGED] == "true"
    assert labels[lb.DEVICE] == DEVICE
    assert labels[lb.RELEASE] == "1.0.0"
    assert labels[lb.CONTAINER] == "web"
    assert labels[lb.APPLICATION] == APPLICATION
    assert labels[lb.GENERATION] == "0"
    assert (c.name or "").startswith(f"fw-{lb.deployment_short(DEVICE, deployment_id)}-web-1.0.0-")
    assert store.get(deployment_id).command_id is None  # type: ignore[union-attr]
    sink.wait_for(
        lambda e: (
            isinstance(e, ContainerStateChanged)
            and e.data.deployment_id == deployment_id
            and e.data.health is Health.HEALTHY
        ),
        timeout=10,
    )
    inv = ex.inventory()
    (mine,) = [x for x in inv.deployments if x.deployment_id == deployment_id]
    assert mine.state is DeploymentState.RUNNING
    assert [ci.name for ci in mine.containers] == ["web"]
    assert ex.docker_version()


def test_same_target_again_just_succeeds(
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    d = desired(deployment_id, release())
    ex = make_reconciler()
    store.put(d)
    ex.submit(deployment_id)
    assert isinstance(sink.outcome(d.command_id or ""), CommandSucceeded)
    again = desired(deployment_id, release())
    store.put(again)
    ex.submit(deployment_id)
    assert isinstance(sink.outcome(again.command_id or ""), CommandSucceeded)
    later = [e for e in sink.snapshot() if e.correlationid == again.command_id]
    assert [type(e) for e in later] == [CommandSucceeded]


def test_stop_then_start_keeps_the_container(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    d = desired(deployment_id, release())
    ex = make_reconciler()
    store.put(d)
    ex.submit(deployment_id)
    sink.outcome(d.command_id or "")
    (before,) = _containers(docker_client, deployment_id)

    stop = desired(deployment_id, release(), target=TargetState.STOPPED)
    store.put(stop)
    ex.submit(deployment_id)
    assert isinstance(sink.outcome(stop.command_id or ""), CommandSucceeded)
    (stopped,) = _containers(docker_client, deployment_id)
    assert stopped.id == before.id
    assert stopped.status == "exited"
    assert ex.state_of(deployment_id) is DeploymentState.STOPPED

    start = desired(deployment_id, release())
    store.put(start)
    ex.submit(deployment_id)
    assert isinstance(sink.outcome(start.command_id or ""), CommandSucceeded)
    (started,) = _containers(docker_client, deployment_id)
    assert started.id == before.id
    assert started.status == "running"
    assert _states(sink, deployment_id)[-3:] == [
        DeploymentState.PENDING,
        DeploymentState.STARTING,
        DeploymentState.RUNNING,
    ]


def test_redeploy_recreates_containers(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    d = desired(deployment_id, release())
    ex = make_reconciler()
    store.put(d)
    ex.submit(deployment_id)
    sink.outcome(d.command_id or "")
    (before,) = _containers(docker_client, deployment_id)
    again = desired(deployment_id, release(), generation=1)
    store.put(again)
    ex.submit(deployment_id)
    assert isinstance(sink.outcome(again.command_id or ""), CommandSucceeded)
    (after,) = _containers(docker_client, deployment_id)
    assert after.id != before.id
    assert after.labels[lb.GENERATION] == "1"
    assert after.status == "running"


@pytest.mark.parametrize("purge", [False, True])
def test_delete_keeps_volumes_unless_purged(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
    purge: bool,
) -> None:
    d = desired(deployment_id, release())
    ex = make_reconciler()
    store.put(d)
    ex.submit(deployment_id)
    sink.outcome(d.command_id or "")
    delete = desired(deployment_id, release(), target=TargetState.DELETED, purge_volumes=purge)
    store.put(delete)
    ex.submit(deployment_id)
    assert isinstance(sink.outcome(delete.command_id or ""), CommandSucceeded)
    assert _containers(docker_client, deployment_id) == []
    assert store.get(deployment_id) is None
    assert _states(sink, deployment_id)[-1] is DeploymentState.DELETED
    volumes = docker_client.volumes.list(filters={"label": [f"{lb.DEPLOYMENT}={deployment_id}"]})
    assert [v.name for v in volumes] == (
        [] if purge else [lb.volume_name(DEVICE, deployment_id, "data")]
    )


def test_unhealthy_deploy_fails_with_unhealthy(
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    d = desired(deployment_id, release(tag="v3"), health_timeout_s=15)
    ex = make_reconciler()
    store.put(d)
    ex.submit(deployment_id)
    outcome = sink.outcome(d.command_id or "")
    assert isinstance(outcome, CommandFailed)
    assert outcome.data.error.code == "unhealthy"
    assert ex.state_of(deployment_id) is DeploymentState.ERROR


@pytest.mark.parametrize(("version", "ok"), [("v1", True), ("v3", False)])
def test_the_images_own_health_check_counts_without_one_in_the_release(
    test_images: Any,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
    version: str,
    ok: bool,
) -> None:
    # The shared test images have a HEALTHCHECK (every 1 s; v3's always fails). A release that
    # names no check must wait for the image's, not for the grace period of check-less ones.
    image = test_images.v1 if version == "v1" else test_images.v3_unhealthy
    d = desired(deployment_id, release(image=image, health=None), health_timeout_s=30)
    ex = make_reconciler(grace_s=60.0)
    store.put(d)
    started = time.monotonic()
    ex.submit(deployment_id)
    outcome = sink.outcome(d.command_id or "", timeout=40)
    assert time.monotonic() - started < 15, "waited the grace period instead of the health check"
    if ok:
        assert isinstance(outcome, CommandSucceeded), outcome
    else:
        assert isinstance(outcome, CommandFailed), outcome
        assert outcome.data.error.code == "unhealthy"
        assert "unhealthy" in outcome.data.error.message
