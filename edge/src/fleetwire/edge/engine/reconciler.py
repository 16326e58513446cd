"""``DockerReconciler``: the :class:`~fleetwire.edge.ports.Reconciler` that drives Docker.

Concurrency: ``submit`` only records the credentials, marks the deployment due and wakes the
workers. A small pool of worker threads converges deployments; one deployment is converged by
at most one worker at a time, and a newer ``submit`` for it cancels the run in progress (between
steps, and inside health waits), after which it is converged again from the store.

Each run is a loop: observe, plan, execute, until the plan is empty; then the result is assessed
and reported. A failed run is retried with exponential backoff (except when the containers run
but are unhealthy: retrying cannot help, a new target or the restart policy can).

Upgrade (``previous_release`` set): the plan pulls the new images while the old release runs,
creates the new containers, stops the old ones (kept), starts the new ones and waits for health
within ``health_timeout_s``. Success commits (``previous_release=None``) and a second round
removes the old containers. Any failure rolls back: the store gets ``release=previous`` and a
``rollback_reason``, the new containers are removed and the old ones started again, then the
command is answered ``rolled_back``.

Crash rule (``start()`` resumes every stored deployment): an interrupted upgrade is run again from
what the engine holds, with a fresh health deadline: if the new release becomes healthy it is
committed (roll forward), otherwise it is rolled back. An interrupted rollback is finished.
"""

import logging
import threading
import time
from collections.abc import Sequence

import docker
from fleetwire.edge.engine.errors import (
    EngineError,
    NotConverging,
    Superseded,
    Unhealthy,
    engine_errors,
)
from fleetwire.edge.engine.executors import ExecContext, execute
from fleetwire.edge.engine.health import Assessment, assess
from fleetwire.edge.engine.inventory import build_inventory
from fleetwire.edge.engine.observed import ObservedContainer, observe
from fleetwire.edge.engine.planner import PlanContext, plan
from fleetwire.edge.engine.reporting import Reporter
from fleetwire.edge.engine.steps import Step
from fleetwire.edge.ports import DesiredDeployment, DesiredStateStore, EventSink, TargetState
from fleetwire.protocol.commands import RegistryCredential
from fleetwire.protocol.envelope import utcnow
from fleetwire.protocol.events import DeploymentState, ErrorInfo, InventoryData

log = logging.getLogger(__name__)

_PHASES: dict[str, DeploymentState] = {
    "pull_image": DeploymentState.PULLING,
    "create_network": DeploymentState.CREATING,
    "create_volume": DeploymentState.CREATING,
    "create_container": DeploymentState.CREATING,
    "start_container": DeploymentState.STARTING,
    "wait_healthy": DeploymentState.STARTING,
}


class RollbackFailed(EngineError):
    """The previous release could not be restored after a failed upgrade."""

    code = "rollback_failed"


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
        from fleetwire.edge.engine.watcher import ContainerWatcher

        self._client = client
        self._device_id = device_id
        self._store = store
        self._reporter = Reporter(sink, device_id)
        self._workers = max(1, workers)
        self._grace_s = grace_s
        self._poll_s = poll_s
        self._max_rounds = max_rounds
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._stop_timeout_s = stop_timeout_s
        self._cond = threading.Condition()
        self._due: dict[str, float] = {}
        self._running: set[str] = set()
        self._versions: dict[str, int] = {}
        self._failures: dict[str, int] = {}
        self._credentials: dict[str, dict[str, RegistryCredential]] = {}
        self._stopping = False
        self._threads: list[threading.Thread] = []
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

    # -- Reconciler protocol -------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers and the event watcher, and converge every stored deployment."""
        with self._cond:
            self._stopping = False
            for desired in self._store.all():
                self._mark_due(desired.deployment_id, 0.0)
        self._threads = [
            threading.Thread(target=self._work, name=f"fw-reconciler-{i}", daemon=True)
            for i in range(self._workers)
        ]
        for t in self._threads:
            t.start()
        if self._watcher is not None:
            self._watcher.start()

    def stop(self) -> None:
        """Cancel runs in progress and join the threads within ``stop_timeout_s``."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + self._stop_timeout_s
        if self._watcher is not None:
            self._watcher.stop(timeout_s=min(5.0, self._stop_timeout_s))
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("reconciler threads still running after stop: %s", alive)
        self._threads = []

    def submit(self, deployment_id: str, credentials: Sequence[RegistryCredential] = ()) -> None:
        """Converge ``deployment_id`` soon; a run in progress for it is cancelled."""
        with self._cond:
            if credentials:
                self._credentials[deployment_id] = {c.ref: c for c in credentials}
            self._failures.pop(deployment_id, None)
            self._versions[deployment_id] = self._versions.get(deployment_id, 0) + 1
            self._mark_due(deployment_id, 0.0)

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
        with self._cond:
            now = time.monotonic()
            return not self._running and not any(t <= now for t in self._due.values())

    # -- scheduling --------------------------------------------------------------------------

    def _mark_due(self, deployment_id: str, delay_s: float) -> None:
        due = time.monotonic() + delay_s
        self._due[deployment_id] = min(due, self._due.get(deployment_id, due))
        self._cond.notify_all()

    def _next(self) -> str | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                ready = [(t, d) for d, t in self._due.items() if d not in self._running]
                if ready:
                    due, dep = min(ready)
                    if due <= now:
                        del self._due[dep]
                        self._running.add(dep)
                        return dep
                    self._cond.wait(due - now)
                else:
                    self._cond.wait()
            return None

    def _work(self) -> None:
        while (dep := self._next()) is not None:
            try:
                self._converge(dep)
            except Exception:
                log.exception("converging deployment %s failed unexpectedly", dep)
                self._retry(dep)
            finally:
                with self._cond:
                    self._running.discard(dep)
                    self._cond.notify_all()

    def _retry(self, dep: str) -> None:
        with self._cond:
            n = self._failures.get(dep, 0)
            self._failures[dep] = n + 1
            if not self._stopping:
                self._mark_due(dep, min(self._backoff_max_s, self._backoff_s * 2**n))

    # -- one run -----------------------------------------------------------------------------

    def _converge(self, dep: str) -> None:
        desired = self._store.get(dep)
        if desired is None:
            return
        with self._cond:
            version = self._versions.get(dep, 0)
            creds = dict(self._credentials.get(dep, {}))

        def cancelled() -> bool:
            with self._cond:
                return self._stopping or self._versions.get(dep, 0) != version

        run = _Run(self, desired, ExecContext(self._client, creds, cancelled, self._poll_s))
        try:
            run.go()
        except Superseded:
            self._superseded(desired)
        except EngineError as exc:
            self._fail(desired, exc)
            if not isinstance(exc, Unhealthy):
                self._retry(dep)
        else:
            with self._cond:
                self._failures.pop(dep, None)
                if desired.target is TargetState.DELETED:
                    self._credentials.pop(dep, None)

    def _superseded(self, desired: DesiredDeployment) -> None:
        with self._cond:
            if self._stopping:
                return  # like a crash: start() resumes from the store
        now = self._store.get(desired.deployment_id)
        if desired.command_id and (now is None or now.command_id != desired.command_id):
            self._reporter.failed(desired, "superseded", "a newer command replaced this one")

    def _fail(self, desired: DesiredDeployment, exc: EngineError) -> None:
        current = self._store.get(desired.deployment_id) or desired
        message = str(exc)
        log.warning("deployment %s: %s: %s", desired.deployment_id, exc.code, message)
        self._reporter.transition(
            current,
            DeploymentState.ERROR,
            reason=message,
            error=ErrorInfo(code=exc.code, message=message[:4000]),
        )
        if current.command_id is not None:
            self._reporter.failed(current, exc.code, message)
            self._clear(current, rollback_reason=None)

    def _clear(self, desired: DesiredDeployment, **changes: object) -> DesiredDeployment:
        """Store ``desired`` with its command answered (unless a newer target replaced it)."""
        fresh = self._store.get(desired.deployment_id)
        if fresh is None or fresh.command_id != desired.command_id:
            return desired
        updated = fresh.model_copy(update={"command_id": None, "command_type": None, **changes})
        self._store.put(updated)
        return updated


class _Run:
    """One convergence run of one deployment."""

    def __init__(self, ex: DockerReconciler, desired: DesiredDeployment, ctx: ExecContext) -> None:
        self.ex = ex
        self.desired = desired
        self.ctx = ctx
        self.rep = ex._reporter

    def go(self) -> None:
        d = self.desired
        if d.rollback_reason is not None:
            self.finish_rollback(d)
        elif d.previous_release is not None:
            self.upgrade(d)
        else:
            self.apply_and_report(d)

    def check(self) -> None:
        if self.ctx.cancelled():
            raise Superseded("a newer target arrived")

    def converge(self, desired: DesiredDeployment, *, upgrading: bool) -> tuple[Assessment, int]:
        """Plan and execute until the plan is empty; returns the assessment and step count."""
        deadline = time.monotonic() + desired.health_timeout_s
        executed = 0
        for _ in range(self.ex._max_rounds):
            self.check()
            observed = observe(self.ex._client, desired.deployment_id, device_id=self.ex._device_id)
            ctx = PlanContext(
                now=utcnow(),
                device_id=self.ex._device_id,
                grace_s=self.ex._grace_s,
                health_timeout_s=max(0.5, deadline - time.monotonic()),
            )
            steps = plan(observed, desired, ctx)
            if not steps:
                return assess(observed, desired), executed
            if executed == 0 and not upgrading and desired.target is TargetState.RUNNING:
                self.rep.transition(desired, DeploymentState.PENDING)
            for step in steps:
                self.check()
                self.run_step(desired, step, upgrading=upgrading)
                executed += 1
        raise NotConverging(f"not converged after {self.ex._max_rounds} rounds")

    def run_step(self, desired: DesiredDeployment, step: Step, *, upgrading: bool) -> None:
        phase = _PHASES.get(step.action)
        if phase is not None and not upgrading and desired.target is TargetState.RUNNING:
            self.rep.transition(desired, phase)
        detail = step.detail()
        log.info("deployment %s: %s", desired.deployment_id, detail)
        self.rep.progress(desired, step.action, detail)
        execute(self.ctx, step)

    def apply_and_report(self, d: DesiredDeployment, *, upgrading: bool = False) -> None:
        result, executed = self.converge(d, upgrading=upgrading)
        if not result.ok:
            raise Unhealthy(result.reason)
        if d.target is TargetState.DELETED:
            self.rep.transition(d, DeploymentState.DELETED)
            self.rep.succeeded(d)
            self.ex._store.remove(d.deployment_id)
            self.rep.forget(d.deployment_id)
            return
        if executed == 0 and d.command_id is None and self.rep.state_of(d.deployment_id) is None:
            self.rep.record(d.deployment_id, result.state)  # a restarted agent: nothing changed
            return
        self.rep.transition(d, result.state)
        self.rep.succeeded(d)
        self.ex._clear(d)

    def upgrade(self, d: DesiredDeployment) -> None:
        prev = d.previous_release
        assert prev is not None
        self.rep.transition(
            d, DeploymentState.UPGRADING, reason=f"{prev.version} -> {d.release.version}"
        )
        try:
            result, _ = self.converge(d, upgrading=True)
            if not result.ok:
                raise Unhealthy(result.reason)
        except Superseded:
            raise
        except EngineError as exc:
            self.rollback(d, f"{exc.code}: {exc}")
            return
        self.check()
        committed = d.model_copy(update={"previous_release": None})
        self.ex._store.put(committed)
        self.apply_and_report(committed, upgrading=True)

    def rollback(self, d: DesiredDeployment, reason: str) -> None:
        assert d.previous_release is not None
        log.warning("deployment %s: rolling back: %s", d.deployment_id, reason)
        back = d.model_copy(
            update={
                "release": d.previous_release,
                "previous_release": None,
                "rollback_reason": reason,
            }
        )
        self.check()
        self.ex._store.put(back)
        self.finish_rollback(back)

    def finish_rollback(self, d: DesiredDeployment) -> None:
        reason = d.rollback_reason or "rolled back"
        try:
            result, _ = self.converge(d, upgrading=True)
            if not result.ok:
                raise Unhealthy(result.reason)
        except Superseded:
            raise
        except EngineError as exc:
            raise RollbackFailed(
                f"upgrade failed ({reason}) and restoring {d.release.version} failed: {exc}"
            ) from exc
        self.rep.transition(d, DeploymentState.ROLLED_BACK, reason=reason)
        self.rep.failed(d, "rolled_back", f"rolled back to {d.release.version}: {reason}")
        if d.command_id is None:
            fresh = self.ex._store.get(d.deployment_id)
            if fresh is not None and fresh.rollback_reason is not None:
                self.ex._store.put(fresh.model_copy(update={"rollback_reason": None}))
        else:
            self.ex._clear(d, rollback_reason=None)


__all__ = ["DockerReconciler", "ObservedContainer", "RollbackFailed"]
