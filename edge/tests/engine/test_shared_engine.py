"""Two agents on one Docker Engine (``compose.dev.yaml`` runs two; test suites run many).

Each reconciler reads, reports, watches and converges only what carries its own
``io.fleetwire.device``: another device's containers, networks and volumes are invisible to it,
and names include the device, so even one deployment id on two devices cannot collide.
"""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from edge.tests.engine.support import (
    ListSink,
    ReconcilerFactory,
    cleanup_deployment,
    desired,
    release,
)
from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.edge.engine.observed import observe
from fleetwire.edge.engine.reconciler import DockerReconciler
from fleetwire.edge.ports import TargetState
from fleetwire.protocol.events import CommandSucceeded, ContainerStateChanged, ContainerStatus
from fleetwire.protocol.release import NetworkSpec, ReleaseSpec

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


class _Agent:
    """One device: its own id, store, sink and reconciler."""

    def __init__(self, make_reconciler: ReconcilerFactory, name: str) -> None:
        self.device_id = f"{name}-{uuid.uuid4().hex[:8]}"
        self.store = MemoryDesiredStateStore()
        self.sink = ListSink()
        self.ex: DockerReconciler = make_reconciler(
            device_id=self.device_id, store=self.store, sink=self.sink
        )

    def deploy(self, dep: str, rel: ReleaseSpec, **kw: Any) -> None:
        d = desired(dep, rel, **kw)
        self.store.put(d)
        self.ex.submit(dep)
        assert isinstance(self.sink.outcome(d.command_id or ""), CommandSucceeded)

    def container_events(self) -> list[ContainerStateChanged]:
        return [e for e in self.sink.snapshot() if isinstance(e, ContainerStateChanged)]


def _with_network(rel: ReleaseSpec) -> ReleaseSpec:
    web = rel.containers[0].model_copy(update={"networks": ["net"]})
    return rel.model_copy(update={"containers": [web], "networks": [NetworkSpec(name="net")]})


def _labelled(client: docker.DockerClient, dep: str) -> dict[str, set[str]]:
    """Device ids of every container, network and volume of ``dep``, by kind."""
    flt: dict[str, str | list[str] | bool] = {"label": [f"{lb.DEPLOYMENT}={dep}"]}
    return {
        "containers": {c.labels[lb.DEVICE] for c in client.containers.list(all=True, filters=flt)},
        "networks": {
            n.attrs["Labels"][lb.DEVICE] for n in client.networks.list(filters=flt, greedy=True)
        },
        "volumes": {v.attrs["Labels"][lb.DEVICE] for v in client.volumes.list(filters=flt)},
    }


@pytest.fixture
def other_deployment_id(docker_client: docker.DockerClient) -> Iterator[str]:
    dep = f"t-{uuid.uuid4().hex[:12]}"
    yield dep
    cleanup_deployment(docker_client, dep)


def test_each_device_sees_reports_and_watches_only_its_own(
    docker_client: docker.DockerClient,
    make_reconciler: ReconcilerFactory,
    deployment_id: str,
    other_deployment_id: str,
) -> None:
    a, b = _Agent(make_reconciler, "dev-a"), _Agent(make_reconciler, "dev-b")
    a.deploy(deployment_id, _with_network(release()))
    b.deploy(other_deployment_id, _with_network(release()))

    assert _labelled(docker_client, deployment_id) == {
        "containers": {a.device_id},
        "networks": {a.device_id},
        "volumes": {a.device_id},
    }
    for agent, mine in ((a, deployment_id), (b, other_deployment_id)):
        assert [d.deployment_id for d in agent.ex.inventory().deployments] == [mine]
        seen = observe(docker_client, device_id=agent.device_id)
        assert {c.deployment_id for c in seen.containers} == {mine}
        assert {n.deployment_id for n in seen.networks} == {mine}
        assert {v.deployment_id for v in seen.volumes} == {mine}
        assert observe(docker_client, deployment_id=mine, device_id="nobody").containers == ()

    # B's container stops behind the agents' backs: B's watcher reports it, A's stays silent.
    (theirs,) = docker_client.containers.list(
        filters={"label": [f"{lb.DEPLOYMENT}={other_deployment_id}"]}
    )
    theirs.stop(timeout=2)
    b.sink.wait_for(
        lambda e: (
            isinstance(e, ContainerStateChanged)
            and e.data.deployment_id == other_deployment_id
            and e.data.status is ContainerStatus.EXITED
        ),
        timeout=10,
    )
    time.sleep(0.5)  # A's watcher got the same engine events by now (interval 0.2 s)
    assert {e.data.deployment_id for e in a.container_events()} == {deployment_id}
    assert {e.data.deployment_id for e in b.container_events()} == {other_deployment_id}
    assert [d.deployment_id for d in a.ex.inventory().deployments] == [deployment_id]


def test_one_deployment_id_on_two_devices_never_collides(
    docker_client: docker.DockerClient, make_reconciler: ReconcilerFactory, deployment_id: str
) -> None:
    # The hardest case for names and orphans: the same deployment id on both devices, other
    # releases. Before device labels, B removed A's container as "replaced" and shared its volume.
    a, b = _Agent(make_reconciler, "dev-a"), _Agent(make_reconciler, "dev-b")
    a.deploy(deployment_id, _with_network(release("1.0.0", "v1")))
    b.deploy(deployment_id, _with_network(release("2.0.0", "v2")))

    by_device = {
        c.labels[lb.DEVICE]: c
        for c in docker_client.containers.list(
            filters={"label": [f"{lb.DEPLOYMENT}={deployment_id}"]}
        )
    }
    assert sorted(by_device) == sorted([a.device_id, b.device_id])  # both run
    assert by_device[a.device_id].labels[lb.RELEASE] == "1.0.0"
    assert by_device[b.device_id].labels[lb.RELEASE] == "2.0.0"
    assert _labelled(docker_client, deployment_id) == {
        kind: {a.device_id, b.device_id} for kind in ("containers", "networks", "volumes")
    }
    for agent, version in ((a, "1.0.0"), (b, "2.0.0")):
        (inv,) = agent.ex.inventory().deployments
        assert inv.release_version == version
        assert [c.container_id for c in inv.containers] == [by_device[agent.device_id].id]

    # A redeploys, then deletes with purge: B's container, network and volume are untouched.
    b_id, b_name = str(by_device[b.device_id].id), str(by_device[b.device_id].name)
    a.deploy(deployment_id, _with_network(release("1.0.0", "v1")), generation=1)
    a.deploy(
        deployment_id,
        _with_network(release("1.0.0", "v1")),
        target=TargetState.DELETED,
        purge_volumes=True,
    )
    assert _labelled(docker_client, deployment_id) == {
        kind: {b.device_id} for kind in ("containers", "networks", "volumes")
    }
    theirs = docker_client.containers.get(b_id)
    assert theirs.status == "running"
    for e in a.sink.snapshot():  # A never reported, stopped or removed B's container
        assert getattr(e.data, "container_id", None) != b_id
        assert b_name not in (getattr(e.data, "detail", None) or "")
