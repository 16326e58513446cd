"""The contract of :class:`~fleetwire.edge.ports.DesiredStateStore`, for every adapter and fake.

Subclass :class:`DesiredStateStoreContract` as ``Test<Adapter>`` and give it a
``desired_store`` fixture that yields an empty store.
"""

from __future__ import annotations

import threading

import pytest

from fleetwire.edge.ports import DesiredDeployment, DesiredStateStore, TargetState
from fleetwire.protocol.release import ContainerSpec, ReleaseSpec


def _release(version: str = "1.0.0") -> ReleaseSpec:
    return ReleaseSpec(
        application="contract",
        version=version,
        containers=[ContainerSpec(name="web", image=f"registry.example.com/web:{version}")],
    )


def _desired(deployment_id: str, version: str = "1.0.0", **changes: object) -> DesiredDeployment:
    base = DesiredDeployment(
        deployment_id=deployment_id, release=_release(version), command_id=f"cmd-{version}"
    )
    return base.model_copy(update=changes) if changes else base


class DesiredStateStoreContract:
    """What the handler and the reconciler rely on from a desired-state store."""

    @pytest.fixture
    def desired_store(self) -> DesiredStateStore:
        raise NotImplementedError

    def test_an_unknown_deployment_is_none(self, desired_store: DesiredStateStore) -> None:
        assert desired_store.get("nope") is None
        assert desired_store.all() == []

    def test_put_then_get_returns_an_equal_desired_state(
        self, desired_store: DesiredStateStore
    ) -> None:
        desired = _desired(
            "dep-1",
            target=TargetState.STOPPED,
            generation=3,
            previous_release=_release("0.9.0"),
            rollback_reason="unhealthy: web",
            purge_volumes=True,
        )
        desired_store.put(desired)
        assert desired_store.get("dep-1") == desired

    def test_put_replaces_the_desired_state_of_a_deployment(
        self, desired_store: DesiredStateStore
    ) -> None:
        desired_store.put(_desired("dep-1", "1.0.0"))
        desired_store.put(_desired("dep-1", "2.0.0", command_id=None))
        got = desired_store.get("dep-1")
        assert got is not None
        assert got.release.version == "2.0.0"
        assert got.command_id is None
        assert len(desired_store.all()) == 1

    def test_remove_forgets_and_removing_twice_is_harmless(
        self, desired_store: DesiredStateStore
    ) -> None:
        desired_store.put(_desired("dep-1"))
        desired_store.put(_desired("dep-2"))
        desired_store.remove("dep-1")
        desired_store.remove("dep-1")
        desired_store.remove("never-there")
        assert desired_store.get("dep-1") is None
        assert [d.deployment_id for d in desired_store.all()] == ["dep-2"]

    def test_all_lists_every_deployment_by_id(self, desired_store: DesiredStateStore) -> None:
        for deployment_id in ("dep-c", "dep-a", "dep-b"):
            desired_store.put(_desired(deployment_id))
        assert [d.deployment_id for d in desired_store.all()] == ["dep-a", "dep-b", "dep-c"]

    def test_concurrent_puts_are_all_kept(self, desired_store: DesiredStateStore) -> None:
        errors: list[BaseException] = []

        def put_many(worker: int) -> None:
            try:
                for i in range(20):
                    desired_store.put(_desired(f"dep-{worker}-{i:02d}"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=put_many, args=(w,)) for w in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert errors == []
        assert len(desired_store.all()) == 100
