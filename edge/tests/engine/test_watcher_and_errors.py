"""Container-state coalescing, engine-unreachable handling and credential scrubbing, no Docker."""

import gc
from typing import Any

import docker
import docker.errors
import pytest
from pydantic import SecretStr

from edge.tests.engine.support import DEVICE, ListSink, desired, release
from fleetwire.edge.engine.errors import EngineUnreachable, PullFailed
from fleetwire.edge.engine.executors import ExecContext, execute
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.edge.engine.observed import ObservedContainer
from fleetwire.edge.engine.reconciler import DockerReconciler
from fleetwire.edge.engine.steps import PullImage
from fleetwire.edge.engine.watcher import Coalescer
from fleetwire.protocol.commands import RegistryCredential
from fleetwire.protocol.events import CommandFailed, ContainerStatus, DeploymentState, Health

SECRET = "hunter2-but-longer"


def _c(
    status: ContainerStatus, health: Health = Health.NONE, restarts: int = 0
) -> ObservedContainer:
    return ObservedContainer(
        id="c1",
        name="fw-x-web",
        deployment_id="d",
        container="web",
        release="1.0.0",
        spec_hash="h",
        generation=0,
        spec=None,
        status=status,
        health=health,
        restart_count=restarts,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_coalescer_drops_repeats_and_rate_limits_latest_wins() -> None:
    out: list[ObservedContainer] = []
    clock = Clock()
    co = Coalescer(out.append, min_interval_s=1.0, clock=clock)
    co.offer(_c(ContainerStatus.RUNNING, Health.STARTING))
    co.offer(_c(ContainerStatus.RUNNING, Health.STARTING))  # same state: dropped
    assert [c.health for c in out] == [Health.STARTING]
    clock.now += 0.1
    co.offer(_c(ContainerStatus.RUNNING, Health.HEALTHY))  # too soon: held
    co.offer(_c(ContainerStatus.RESTARTING, Health.NONE, 1))  # replaces the held one
    assert len(out) == 1
    clock.now += 1.0
    co.flush()
    assert [(c.status, c.restart_count) for c in out[1:]] == [(ContainerStatus.RESTARTING, 1)]
    co.flush()
    assert len(out) == 2
    clock.now += 5
    co.offer(_c(ContainerStatus.RESTARTING, Health.NONE, 1))  # unchanged: nothing
    assert len(out) == 2


def _unreachable_client() -> docker.DockerClient:
    return docker.DockerClient(base_url="unix:///nonexistent/fleetwire/docker.sock", version="1.41")


# docker-py leaks the socket of a refused unix connection (a ResourceWarning at collection time).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_unreachable_engine_is_reported_not_fatal() -> None:
    store = MemoryDesiredStateStore()
    sink = ListSink()
    d = desired("dep-unreachable", release())
    store.put(d)
    client = _unreachable_client()
    ex = DockerReconciler(client, store, sink, DEVICE, watch=False, backoff_s=60)
    ex.start()
    try:
        outcome = sink.outcome(d.command_id or "", timeout=20)
        assert isinstance(outcome, CommandFailed)
        assert outcome.data.error.code == "engine_unreachable"
        assert ex.state_of(d.deployment_id) is DeploymentState.ERROR
        assert ex.docker_version() is None
        with pytest.raises(EngineUnreachable):
            ex.inventory()
    finally:
        ex.stop()
        client.close()
        gc.collect()


class _FakeImages:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def pull(self, repository: str, **kwargs: Any) -> None:
        self.calls.append({"repository": repository, **kwargs})
        response = None
        raise docker.errors.APIError(
            f"denied for password {SECRET}", response=response, explanation=f"bad {SECRET}"
        )


class _FakeClient:
    def __init__(self) -> None:
        self.images = _FakeImages()


def test_pull_uses_the_named_credentials_and_scrubs_them() -> None:
    client = _FakeClient()
    cred = RegistryCredential(
        ref="private", registry="reg.example", username="robot", password=SecretStr(SECRET)
    )
    ctx = ExecContext(client, {"private": cred})  # type: ignore[arg-type]
    with pytest.raises(PullFailed) as info:
        execute(ctx, PullImage(image="reg.example/acme/app:v1", credentials="private"))
    (call,) = client.images.calls
    assert call["repository"] == "reg.example/acme/app"
    assert call["tag"] == "v1"
    assert call["auth_config"]["password"] == SECRET
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
