"""The contract of :class:`~fleetwire.edge.ports.Reconciler`, for the Docker adapter and fakes.

What the command handler and the agent rely on: a submitted target is answered exactly once,
the inventory shows what converged, events come as the sink expects them (no ``seq``, the
device's source), credentials never reach an event, an unknown deployment is ignored.

Subclass :class:`ReconcilerContract` as ``Test<Adapter>`` and give it three fixtures:
``reconciler_for`` (builds a started reconciler on the given store, sink and device id, and
stops it at teardown), ``contract_release`` (a release the adapter can run, whose containers
name the credentials :data:`CREDENTIALS_REF`) and ``contract_deployment_id`` (unique, cleaned up
afterwards).

Not in the shared contract: that ``start()`` resumes what the store holds and that a delete
removes the desired state. The fake reconciler of the agent tests records submits and answers
them, it does not converge; those rules are tested on the Docker reconciler itself
(``edge/tests/engine``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from edge.tests.engine.support import ListSink
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.edge.ports import DesiredDeployment, DesiredStateStore, EventSink, Reconciler
from fleetwire.protocol.codec import encode
from fleetwire.protocol.commands import RegistryCredential
from fleetwire.protocol.envelope import device_source
from fleetwire.protocol.events import CommandFailed, CommandSucceeded
from fleetwire.protocol.release import ReleaseSpec

CREDENTIALS_REF = "acme"
SECRET = "contract-s3cr3t-never-shown"
DEPLOY_TYPE = "io.fleetwire.command.deploy.v1"

ReconcilerFor = Callable[[DesiredStateStore, EventSink, str], Reconciler]


def credential() -> RegistryCredential:
    return RegistryCredential(
        ref=CREDENTIALS_REF,
        registry="registry.example.com",
        username="puller",
        password=SecretStr(SECRET),
    )


@dataclass
class Rig:
    """A started reconciler with its store, sink and device id."""

    reconciler: Reconciler
    store: MemoryDesiredStateStore
    sink: ListSink
    device_id: str

    def deploy(self, deployment_id: str, release: ReleaseSpec) -> str:
        """Persist a target, then submit it, as the command handler does; its command id."""
        command_id = f"cmd-{uuid.uuid4().hex[:12]}"
        self.store.put(
            DesiredDeployment(
                deployment_id=deployment_id,
                release=release,
                command_id=command_id,
                command_type=DEPLOY_TYPE,
                health_timeout_s=20.0,
            )
        )
        self.reconciler.submit(deployment_id, [credential()])
        return command_id


class ReconcilerContract:
    """What the handler and the agent rely on from a reconciler."""

    @pytest.fixture
    def reconciler_for(self) -> ReconcilerFor:
        raise NotImplementedError

    @pytest.fixture
    def contract_release(self) -> ReleaseSpec:
        raise NotImplementedError

    @pytest.fixture
    def contract_deployment_id(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def rig(self, reconciler_for: ReconcilerFor) -> Rig:
        store, sink = MemoryDesiredStateStore(), ListSink()
        # A device id of its own: another test (or suite) on the same engine never interferes.
        device_id = f"contract-{uuid.uuid4().hex[:10]}"
        return Rig(reconciler_for(store, sink, device_id), store, sink, device_id)

    def test_reports_the_engine_version(self, rig: Rig) -> None:
        version = rig.reconciler.docker_version()
        assert isinstance(version, str)
        assert version

    def test_a_submitted_target_is_answered_exactly_once(
        self, rig: Rig, contract_deployment_id: str, contract_release: ReleaseSpec
    ) -> None:
        command_id = rig.deploy(contract_deployment_id, contract_release)
        outcome = rig.sink.outcome(command_id)
        assert isinstance(outcome, CommandSucceeded)
        assert outcome.data.command_type == DEPLOY_TYPE
        rig.reconciler.stop()  # nothing more can come
        answers = [
            e
            for e in rig.sink.snapshot()
            if isinstance(e, CommandSucceeded | CommandFailed) and e.correlationid == command_id
        ]
        assert answers == [outcome]

    def test_events_come_without_seq_from_the_device(
        self, rig: Rig, contract_deployment_id: str, contract_release: ReleaseSpec
    ) -> None:
        rig.sink.outcome(rig.deploy(contract_deployment_id, contract_release))
        rig.reconciler.stop()
        events = rig.sink.snapshot()
        assert events
        assert {e.seq for e in events} == {None}
        assert {e.source for e in events} == {device_source(rig.device_id)}

    def test_inventory_lists_a_converged_deployment(
        self, rig: Rig, contract_deployment_id: str, contract_release: ReleaseSpec
    ) -> None:
        outcome = rig.sink.outcome(rig.deploy(contract_deployment_id, contract_release))
        assert isinstance(outcome, CommandSucceeded)
        listed = {d.deployment_id: d for d in rig.reconciler.inventory().deployments}
        assert contract_deployment_id in listed
        mine = listed[contract_deployment_id]
        assert mine.application == contract_release.application
        assert mine.release_version == contract_release.version
        assert sorted(c.name for c in mine.containers) == sorted(
            c.name for c in contract_release.containers
        )

    def test_credentials_never_reach_an_event(
        self, rig: Rig, contract_deployment_id: str, contract_release: ReleaseSpec
    ) -> None:
        assert any(c.credentials == CREDENTIALS_REF for c in contract_release.containers)
        rig.sink.outcome(rig.deploy(contract_deployment_id, contract_release))
        rig.reconciler.stop()
        assert all(SECRET.encode() not in encode(e) for e in rig.sink.snapshot())

    def test_an_unknown_deployment_is_ignored(self, rig: Rig) -> None:
        rig.reconciler.submit("not-in-the-store", [credential()])
        rig.reconciler.stop()  # joins the reconciler's work: whatever it did is done
        assert rig.sink.snapshot() == []
        assert rig.store.all() == []
