"""The Docker reconciler keeps the Reconciler contract (real engine, the busybox test images)."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from edge.tests.contracts.reconciler import CREDENTIALS_REF, ReconcilerContract, ReconcilerFor
from edge.tests.engine.support import release
from fleetwire.edge.engine.reconciler import DockerReconciler
from fleetwire.edge.ports import DesiredStateStore, EventSink, Reconciler
from fleetwire.protocol.release import ReleaseSpec

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


class TestDockerReconciler(ReconcilerContract):
    @pytest.fixture
    def reconciler_for(self, docker_client: docker.DockerClient) -> Iterator[ReconcilerFor]:
        made: list[DockerReconciler] = []

        def make(store: DesiredStateStore, sink: EventSink, device_id: str) -> Reconciler:
            reconciler = DockerReconciler(
                docker_client,
                store,
                sink,
                device_id,
                grace_s=1.0,
                poll_s=0.1,
                event_interval_s=0.2,
                backoff_s=30.0,
                stop_timeout_s=10.0,
            )
            reconciler.start()
            made.append(reconciler)
            return reconciler

        yield make
        for reconciler in made:
            reconciler.stop()

    @pytest.fixture
    def contract_release(self) -> ReleaseSpec:
        # The image is local: the credentials are named but never needed for a pull.
        return release(credentials=CREDENTIALS_REF)

    @pytest.fixture
    def contract_deployment_id(self, deployment_id: str) -> str:
        return deployment_id  # engine/conftest.py removes what carries it afterwards
