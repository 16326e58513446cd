"""Fixtures of the reconciler tests: a list sink, a desired-state store, reconcilers that clean up.

Docker and the images are the shared fixtures' (``docker_client``, ``test_images`` in
``tests/fixtures/docker.py``): a missing engine fails these tests, it does not skip them.
v1 and v2 serve ``/health`` with busybox httpd on 8080, v3 does not.
"""

import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from edge.tests.engine.support import DEVICE, ListSink, ReconcilerFactory, cleanup_deployment
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.edge.engine.reconciler import DockerReconciler


@pytest.fixture
def deployment_id(docker_client: docker.DockerClient) -> Iterator[str]:
    """A unique deployment id; everything labelled with it is removed afterwards."""
    dep = f"t-{uuid.uuid4().hex[:12]}"
    yield dep
    cleanup_deployment(docker_client, dep)


@pytest.fixture
def store() -> MemoryDesiredStateStore:
    return MemoryDesiredStateStore()


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def make_reconciler(
    docker_client: docker.DockerClient, store: MemoryDesiredStateStore, sink: ListSink
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
        ex = DockerReconciler(docker_client, target_store, target_sink, device, **options)
        made.append(ex)
        ex.start()
        return ex

    yield make
    for ex in made:
        ex.stop()
