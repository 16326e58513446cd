"""Upgrade, rollback, restart and crash recovery against the real Docker Engine."""

import docker
import pytest

from edge.tests.engine.support import (
    DEVICE,
    HEALTH,
    ListSink,
    ReconcilerFactory,
    desired,
    release,
)
from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.executors import ExecContext, execute
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.edge.engine.observed import observe
from fleetwire.edge.engine.planner import PlanContext, plan
from fleetwire.edge.engine.steps import CreateContainer, CreateVolume, StartContainer
from fleetwire.protocol.envelope import utcnow
from fleetwire.protocol.events import (
    CommandFailed,
    CommandSucceeded,
    DeploymentState,
    DeploymentStateChanged,
)
from tests.fixtures.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


def _by_release(client: docker.DockerClient, dep: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in client.containers.list(all=True, filters={"label": [f"{lb.DEPLOYMENT}={dep}"]}):
        c.reload()
        health = c.attrs["State"].get("Health", {}).get("Status", "none")
        out.setdefault(c.labels[lb.RELEASE], []).append(f"{c.status}/{health}")
    return out


def _deploy(store, sink, ex, dep, rel) -> None:
    d = desired(dep, rel)
    store.put(d)
    ex.submit(dep)
    assert isinstance(sink.outcome(d.command_id or ""), CommandSucceeded)


def test_upgrade_to_a_healthy_release_removes_the_old_one(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    ex = make_reconciler()
    v1, v2 = release("1.0.0", "v1"), release("2.0.0", "v2")
    _deploy(store, sink, ex, deployment_id, v1)
    up = desired(deployment_id, v2, previous_release=v1, command_type="upgrade")
    store.put(up)
    ex.submit(deployment_id)
    assert isinstance(sink.outcome(up.command_id or ""), CommandSucceeded)
    assert _by_release(docker_client, deployment_id) == {"2.0.0": ["running/healthy"]}
    stored = store.get(deployment_id)
    assert stored is not None
    assert (stored.release.version, stored.previous_release, stored.command_id) == (
        "2.0.0",
        None,
        None,
    )
    states = [
        e.data.state
        for e in sink.snapshot()
        if isinstance(e, DeploymentStateChanged) and e.correlationid == up.command_id
    ]
    assert states == [DeploymentState.UPGRADING, DeploymentState.RUNNING]


def test_upgrade_to_an_unhealthy_release_rolls_back(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    ex = make_reconciler()
    v2, v3 = release("2.0.0", "v2"), release("3.0.0", "v3")
    _deploy(store, sink, ex, deployment_id, v2)
    up = desired(deployment_id, v3, previous_release=v2, health_timeout_s=10)
    store.put(up)
    ex.submit(deployment_id)
    outcome = sink.outcome(up.command_id or "")
    assert isinstance(outcome, CommandFailed)
    assert outcome.data.error.code == "rolled_back"
    assert "unhealthy" in outcome.data.error.message
    (rolled,) = [
        e
        for e in sink.snapshot()
        if isinstance(e, DeploymentStateChanged) and e.data.state is DeploymentState.ROLLED_BACK
    ]
    assert rolled.data.release_version == "2.0.0"
    assert rolled.data.reason
    assert _by_release(docker_client, deployment_id) == {"2.0.0": ["running/healthy"]}
    stored = store.get(deployment_id)
    assert stored is not None
    assert stored.release == v2
    assert (stored.previous_release, stored.command_id, stored.rollback_reason) == (
        None,
        None,
        None,
    )
    answers = [
        e
        for e in sink.snapshot()
        if isinstance(e, CommandSucceeded | CommandFailed) and e.correlationid == up.command_id
    ]
    assert answers == [outcome]


def test_restarted_reconciler_finds_its_containers_and_reports_nothing(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    first_sink = ListSink()
    first = make_reconciler(sink=first_sink)
    _deploy(store, first_sink, first, deployment_id, release())
    before = _by_release(docker_client, deployment_id)
    # No grace period to outwait: the release has a health check and its container is healthy.
    first.stop()

    second_sink = ListSink()
    second = make_reconciler(sink=second_sink, watch=False)
    wait_until(
        lambda: second.state_of(deployment_id) is not None, 20, "the restarted reconciler's state"
    )
    assert second.state_of(deployment_id) is DeploymentState.RUNNING
    assert second_sink.snapshot() == []
    assert _by_release(docker_client, deployment_id) == before
    (inv,) = [d for d in second.inventory().deployments if d.deployment_id == deployment_id]
    assert inv.state is DeploymentState.RUNNING


def test_interrupted_upgrade_ends_on_one_whole_healthy_release(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    # v1 runs; the agent crashed mid-upgrade to v2: v2's container created but never started,
    # v1 stopped, the store still says "upgrading from v1".
    v1 = release("1.0.0", "v1")
    v2 = release("2.0.0", "v2")
    first = make_reconciler(watch=False)
    _deploy(store, sink, first, deployment_id, v1)
    first.stop()
    up = desired(deployment_id, v2, previous_release=v1)
    store.put(up)
    ctx = ExecContext(docker_client)
    steps = plan(
        observe(docker_client, deployment_id, device_id=DEVICE),
        up,
        PlanContext(now=utcnow(), device_id=DEVICE),
    )
    for step in steps:
        if isinstance(step, CreateContainer | CreateVolume):
            execute(ctx, step)
        if isinstance(step, StartContainer):
            break
    for c in docker_client.containers.list(filters={"label": [f"{lb.DEPLOYMENT}={deployment_id}"]}):
        c.stop(timeout=2)
    assert sorted(_by_release(docker_client, deployment_id)) == ["1.0.0", "2.0.0"]

    make_reconciler()
    outcome = sink.outcome(up.command_id or "")
    assert isinstance(outcome, CommandSucceeded)  # the new release became healthy: roll forward
    assert _by_release(docker_client, deployment_id) == {"2.0.0": ["running/healthy"]}
    stored = store.get(deployment_id)
    assert stored is not None
    assert (stored.release.version, stored.previous_release) == ("2.0.0", None)


def test_interrupted_upgrade_to_a_bad_release_rolls_back(
    docker_client: docker.DockerClient,
    store: MemoryDesiredStateStore,
    sink: ListSink,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
) -> None:
    v2 = release("2.0.0", "v2")
    v3 = release("3.0.0", "v3")
    first = make_reconciler(watch=False)
    _deploy(store, sink, first, deployment_id, v2)
    first.stop()
    up = desired(deployment_id, v3, previous_release=v2, health_timeout_s=8)
    store.put(up)
    ctx = ExecContext(docker_client)
    for step in plan(
        observe(docker_client, deployment_id, device_id=DEVICE),
        up,
        PlanContext(now=utcnow(), device_id=DEVICE),
    ):
        if step.action in ("create_container", "stop_container", "start_container"):
            execute(ctx, step)  # new one running, old one stopped; then "kill -9"
    make_reconciler()
    outcome = sink.outcome(up.command_id or "")
    assert isinstance(outcome, CommandFailed)
    assert outcome.data.error.code == "rolled_back"
    assert _by_release(docker_client, deployment_id) == {"2.0.0": ["running/healthy"]}


def test_devices_and_health_constants_are_what_the_suite_expects() -> None:
    assert DEVICE == "engine-test-device"
    assert HEALTH.interval_s < 1
