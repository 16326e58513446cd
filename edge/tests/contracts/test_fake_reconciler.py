"""The fake reconciler of the agent and handler tests keeps the Reconciler contract."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from edge.tests.agent_support import FakeReconciler, release
from edge.tests.contracts.reconciler import CREDENTIALS_REF, ReconcilerContract, ReconcilerFor
from fleetwire.edge.ports import DesiredStateStore, EventSink, Reconciler
from fleetwire.protocol.release import ReleaseSpec


class TestFakeReconciler(ReconcilerContract):
    @pytest.fixture
    def reconciler_for(self) -> Iterator[ReconcilerFor]:
        made: list[FakeReconciler] = []

        def make(store: DesiredStateStore, sink: EventSink, device_id: str) -> Reconciler:
            fake = FakeReconciler(store, sink, device_id=device_id)
            fake.start()
            made.append(fake)
            return fake

        yield make
        for fake in made:
            fake.stop()

    @pytest.fixture
    def contract_release(self) -> ReleaseSpec:
        spec = release()
        assert spec.containers[0].credentials == CREDENTIALS_REF
        return spec

    @pytest.fixture
    def contract_deployment_id(self) -> str:
        return f"dep-{uuid.uuid4().hex[:8]}"
