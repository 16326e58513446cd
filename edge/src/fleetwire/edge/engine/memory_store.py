"""An in-memory :class:`~fleetwire.edge.ports.DesiredStateStore` for tests and demos."""

import threading

from fleetwire.edge.ports import DesiredDeployment


class MemoryDesiredStateStore:
    """A thread-safe dict of desired deployments (nothing survives the process)."""

    def __init__(self, initial: list[DesiredDeployment] | None = None) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, DesiredDeployment] = {d.deployment_id: d for d in initial or []}

    def get(self, deployment_id: str) -> DesiredDeployment | None:
        """The desired state of one deployment."""
        with self._lock:
            return self._items.get(deployment_id)

    def put(self, desired: DesiredDeployment) -> None:
        """Create or replace the desired state of a deployment."""
        with self._lock:
            self._items[desired.deployment_id] = desired

    def remove(self, deployment_id: str) -> None:
        """Forget a deployment."""
        with self._lock:
            self._items.pop(deployment_id, None)

    def all(self) -> list[DesiredDeployment]:
        """Every deployment's desired state, by id."""
        with self._lock:
            return [self._items[k] for k in sorted(self._items)]
