"""``DockerReconciler``: the :class:`~fleetwire.edge.ports.Reconciler` that drives Docker.

It wires three parts together and holds what outlives a run (credentials, the reporter's
states):

- :class:`~.scheduler.RunScheduler`: ``submit`` records the credentials and hands the deployment
  to the scheduler, which runs it on a small pool of worker threads, one run per deployment at a
  time; a newer ``submit`` cancels the run in progress (between steps and inside health waits),
  after which it runs again from the store; failed runs are retried with exponential backoff;
- :func:`~.run.reconcile`: one run (converge, upgrade, roll back, report), given an explicit
  :class:`~.run.RunContext`;
- :class:`~.watcher.ContainerWatcher`: container state events from ``docker events``.

Crash rule: ``start()`` runs every stored deployment again (see :mod:`.run` for what an
interrupted upgrade or rollback then does).
"""

import logging
import threading
import time
from collections.abc import Sequence

import docker

from fleetwire.edge.engine.errors import EngineError, engine_errors
from fleetwire.edge.engine.executors import ExecContext
from fleetwire.edge.engine.inventory import build_inventory
from fleetwire.edge.engine.observed import observe
from fleetwire.edge.engine.reporting import Reporter
from fleetwire.edge.engine.run import RollbackFailed, RunContext, reconcile
from fleetwire.edge.engine.scheduler import Outcome, RunScheduler, RunToken
from fleetwire.edge.engine.watcher import ContainerWatcher
from fleetwire.edge.ports import DesiredStateStore, EventSink, TargetState
from fleetwire.protocol.commands import RegistryCredential
from fleetwire.protocol.events import DeploymentState, InventoryData

log = logging.getLogger(__name__)


class DockerReconciler:
    """Converges a Docker Engine to the desired deployments of ``store``; reports to ``sink``.

    ``grace_s`` is how long a container without a health check must run to count as healthy;
    ``workers`` how many deployments converge at once; ``max_rounds`` bounds one run's
    plan/execute loop; ``backoff_s``/``backoff_max_s`` space retries of failed runs;
    ``event_interval_s`` is the minimum spacing of container state events per container.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        store: DesiredStateStore,
        sink: EventSink,
        device_id: str,
        *,
        workers: int = 2,
        grace_s: float = 5.0,
        poll_s: float = 0.2,
        max_rounds: int = 10,
        backoff_s: float = 1.0,
        backoff_max_s: float = 300.0,
        event_interval_s: float = 1.0,
        watch: bool = True,
        stop_timeout_s: float = 15.0,
    ) -> None:
        self._client = client
        self._device_id = device_id
        self._store = store
        self._reporter = Reporter(sink, device_id)
        self._grace_s = grace_s
        self._poll_s = poll_s
        self._max_rounds = max_rounds
        self._stop_timeout_s = stop_timeout_s
        self._lock = threading.Lock()
        # Registry credentials by deployment, then by ref: memory only, never persisted.
        self._credentials: dict[str, dict[str, RegistryCredential]] = {}
        self._scheduler = RunScheduler(
            self._run,
            workers=workers,
            backoff_s=backoff_s,
            backoff_max_s=backoff_max_s,
            name="fw-reconciler",
        )
        self._watcher = (
            ContainerWatcher(
                client,
                self._reporter.container,
                device_id=device_id,
                min_interval_s=event_interval_s,
            )
            if watch
            else None
        )

    # -- Reconciler protocol -----------------------------------------------------------------

    def start(self) -> None:
        """Start the workers and the event watcher, and converge every stored deployment."""
        self._scheduler.start(d.deployment_id for d in self._store.all())
        if self._watcher is not None:
            self._watcher.start()

    def stop(self) -> None:
        """Cancel runs in progress and join the threads within ``stop_timeout_s``."""
        self._scheduler.stop()
        deadline = time.monotonic() + self._stop_timeout_s
        if self._watcher is not None:
            self._watcher.stop(timeout_s=min(5.0, self._stop_timeout_s))
        alive = self._scheduler.join(max(0.0, deadline - time.monotonic()))
        if alive:
            log.warning("reconciler threads still running after stop: %s", alive)

    def submit(self, deployment_id: str, credentials: Sequence[RegistryCredential] = ()) -> None:
        """Converge ``deployment_id`` soon; a run in progress for it is cancelled."""
        if credentials:
            with self._lock:
                self._credentials[deployment_id] = {c.ref: c for c in credentials}
        self._scheduler.submit(deployment_id)

    def inventory(self) -> InventoryData:
        """This device's deployments and containers, from the engine's labels and the store."""
        return build_inventory(
            observe(self._client, device_id=self._device_id),
            self._store.all(),
            self._reporter.state_of,
        )

    def docker_version(self) -> str | None:
        """The engine's version, or ``None`` when it is unreachable."""
        try:
            with engine_errors("version"):
                return str(self._client.version().get("Version")) or None
        except EngineError:
            return None

    # -- extra API ---------------------------------------------------------------------------

    def state_of(self, deployment_id: str) -> DeploymentState | None:
        """The last state reported for a deployment."""
        return self._reporter.state_of(deployment_id)

    def idle(self) -> bool:
        """True when nothing is running and nothing is due now."""
        return self._scheduler.idle()

    # -- one run -----------------------------------------------------------------------------

    def _run(self, deployment_id: str, token: RunToken) -> Outcome:
        """The scheduler's run function: one run of one deployment from the store."""
        desired = self._store.get(deployment_id)
        if desired is None:
            return Outcome.WAIT
        with self._lock:
            credentials = dict(self._credentials.get(deployment_id, {}))
        ctx = RunContext(
            store=self._store,
            reporter=self._reporter,
            steps=ExecContext(self._client, credentials, token.cancelled, self._poll_s),
            token=token,
            device_id=self._device_id,
            grace_s=self._grace_s,
            max_rounds=self._max_rounds,
        )
        outcome = reconcile(ctx, desired)
        if outcome is Outcome.DONE and desired.target is TargetState.DELETED:
            with self._lock:
                self._credentials.pop(deployment_id, None)
        return outcome


__all__ = ["DockerReconciler", "RollbackFailed"]
