"""Fixtures of the reconciler tests: busybox test images, a list sink, reconcilers that clean up.

The images are ours (``fleetwire-engine-test/app:v1..v3``) so this suite does not depend on the
shared fixtures' build: v1 and v2 serve ``/health`` with busybox httpd on 8080, v3 does not.
"""

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from edge.tests.engine.support import (
    BUSYBOX,
    DEVICE,
    DOCKERFILE,
    REPO,
    ListSink,
    ReconcilerFactory,
    cleanup_deployment,
)
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.edge.engine.reconciler import DockerReconciler


def _build(client: docker.DockerClient, tag: str, *, healthy: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="fw-engine-image-") as tmp:
        root = Path(tmp)
        (root / "www").mkdir()
        (root / "www" / "index.html").write_text(f"app {tag}\n", encoding="utf-8")
        if healthy:
            (root / "www" / "health").write_text("ok\n", encoding="utf-8")
        shutil.copy2(BUSYBOX, root / "busybox")
        (root / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
        client.images.build(path=tmp, tag=f"{REPO}:{tag}", rm=True, forcerm=True, pull=False)


@pytest.fixture(scope="session")
def engine_docker() -> Iterator[docker.DockerClient]:
    """A client of the local Docker Engine; skips when there is none."""
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker Engine: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def engine_images(engine_docker: docker.DockerClient) -> dict[str, str]:
    """Build fleetwire-engine-test/app:v1, v2 (healthy) and v3 (no /health)."""
    if not BUSYBOX.is_file():
        pytest.skip("needs /bin/busybox (busybox-static)")
    tags = {"v1": True, "v2": True, "v3": False}
    for tag, healthy in tags.items():
        _build(engine_docker, tag, healthy=healthy)
    return {tag: f"{REPO}:{tag}" for tag in tags}


@pytest.fixture
def deployment_id(engine_docker: docker.DockerClient) -> Iterator[str]:
    """A unique deployment id; everything labelled with it is removed afterwards."""
    dep = f"t-{uuid.uuid4().hex[:12]}"
    yield dep
    cleanup_deployment(engine_docker, dep)


@pytest.fixture
def store() -> MemoryDesiredStateStore:
    return MemoryDesiredStateStore()


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def make_reconciler(
    engine_docker: docker.DockerClient, store: MemoryDesiredStateStore, sink: ListSink
) -> Iterator[ReconcilerFactory]:
    """Build started reconcilers with test timings; all are stopped at teardown.

    ``sink``, ``store`` and ``device_id`` default to the test's own and :data:`DEVICE`.
    """
    made: list[DockerReconciler] = []

    def make(**kwargs: Any) -> DockerReconciler:
        options: dict[str, Any] = {
            "grace_s": 1.0,
            "poll_s": 0.1,
            "event_interval_s": 0.2,
            "backoff_s": 30.0,
            "stop_timeout_s": 10.0,
        }
        target_sink = kwargs.pop("sink", sink)
        target_store = kwargs.pop("store", store)
        device = kwargs.pop("device_id", DEVICE)
        options.update(kwargs)
        ex = DockerReconciler(engine_docker, target_store, target_sink, device, **options)
        made.append(ex)
        ex.start()
        return ex

    yield make
    for ex in made:
        ex.stop()
