"""One run of one deployment: converge, upgrade or roll back, and report the result.

:func:`reconcile` is what the scheduler runs for a deployment. It sees only its
:class:`RunContext` (store, reporter, step context, settings), never the reconciler itself.

Each run is a loop: observe, plan, execute, until the plan is empty; then the result is assessed
and reported. Upgrade (``previous_release`` set): the plan pulls the new images while the old
release runs, creates the new containers, stops the old ones (kept), starts the new ones and
waits for health within ``health_timeout_s``. Success commits (``previous_release=None``) and a
second round removes the old containers. Any failure rolls back: the store gets
``release=previous`` and a ``rollback_reason``, the new containers are removed and the old ones
started again, then the command is answered ``rolled_back``.

Crash rule: an interrupted upgrade is run again from what the engine holds, with a fresh health
deadline: if the new release becomes healthy it is committed (roll forward), otherwise it is
rolled back. An interrupted rollback is finished.
"""

import logging
import time
from dataclasses import dataclass

from fleetwire.edge.engine.errors import EngineError, NotConverging, Superseded, Unhealthy
from fleetwire.edge.engine.executors import ExecContext, execute
from fleetwire.edge.engine.health import Assessment, assess
from fleetwire.edge.engine.observed import observe
from fleetwire.edge.engine.planner import PlanContext, plan
from fleetwire.edge.engine.reporting import Reporter
from fleetwire.edge.engine.scheduler import Outcome, RunToken
from fleetwire.edge.engine.steps import Step
from fleetwire.edge.ports import DesiredDeployment, DesiredStateStore, TargetState
from fleetwire.protocol.envelope import utcnow
from fleetwire.protocol.events import DeploymentState, ErrorInfo

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


@dataclass(frozen=True)
class RunContext:
    """Everything one run may use; built by the reconciler for each run."""

    store: DesiredStateStore
    reporter: Reporter
    steps: ExecContext
    """The step executors' context: client, this run's credentials, cancellation, poll interval."""
    token: RunToken
    device_id: str
    grace_s: float
    """How long a container without a health check must run to count as healthy."""
    max_rounds: int
    """Bound on the plan/execute loop of one run."""


def reconcile(ctx: RunContext, desired: DesiredDeployment) -> Outcome:
    """Converge one deployment to ``desired`` and report; how it ended, for the scheduler."""
    try:
        _Run(ctx, desired).go()
    except Superseded:
        _superseded(ctx, desired)
        return Outcome.WAIT
    except EngineError as exc:
        _fail(ctx, desired, exc)
        # Containers that run but are unhealthy: retrying cannot help; a new target or the
        # restart policy can.
        return Outcome.WAIT if isinstance(exc, Unhealthy) else Outcome.RETRY
    return Outcome.DONE


def _superseded(ctx: RunContext, desired: DesiredDeployment) -> None:
    if ctx.token.stopping():
        return  # like a crash: start() resumes from the store
    now = ctx.store.get(desired.deployment_id)
    if desired.command_id and (now is None or now.command_id != desired.command_id):
        ctx.reporter.failed(desired, "superseded", "a newer command replaced this one")


def _fail(ctx: RunContext, desired: DesiredDeployment, exc: EngineError) -> None:
    current = ctx.store.get(desired.deployment_id) or desired
    message = str(exc)
    log.warning("deployment %s: %s: %s", desired.deployment_id, exc.code, message)
    ctx.reporter.transition(
        current,
        DeploymentState.ERROR,
        reason=message,
        error=ErrorInfo(code=exc.code, message=message[:4000]),
    )
    if current.command_id is not None:
        ctx.reporter.failed(current, exc.code, message)
        _answered(ctx.store, current, rollback_reason=None)


def _answered(
    store: DesiredStateStore, desired: DesiredDeployment, **changes: object
) -> DesiredDeployment:
    """Store ``desired`` with its command answered (unless a newer target replaced it)."""
    fresh = store.get(desired.deployment_id)
    if fresh is None or fresh.command_id != desired.command_id:
        return desired
    updated = fresh.model_copy(update={"command_id": None, "command_type": None, **changes})
    store.put(updated)
    return updated


class _Run:
    """One convergence run of one deployment."""

    def __init__(self, ctx: RunContext, desired: DesiredDeployment) -> None:
        self.ctx = ctx
        self.desired = desired
        self.rep = ctx.reporter

    def go(self) -> None:
        d = self.desired
        if d.rollback_reason is not None:
            self.finish_rollback(d)
        elif d.previous_release is not None:
            self.upgrade(d)
        else:
            self.apply_and_report(d)

    def check(self) -> None:
        if self.ctx.token.cancelled():
            raise Superseded("a newer target arrived")

    def converge(self, desired: DesiredDeployment, *, upgrading: bool) -> tuple[Assessment, int]:
        """Plan and execute until the plan is empty; returns the assessment and step count."""
        deadline = time.monotonic() + desired.health_timeout_s
        executed = 0
        for _ in range(self.ctx.max_rounds):
            self.check()
            observed = observe(
                self.ctx.steps.client, desired.deployment_id, device_id=self.ctx.device_id
            )
            plan_ctx = PlanContext(
                now=utcnow(),
                device_id=self.ctx.device_id,
                grace_s=self.ctx.grace_s,
                health_timeout_s=max(0.5, deadline - time.monotonic()),
            )
            steps = plan(observed, desired, plan_ctx)
            if not steps:
                return assess(observed, desired), executed
            if executed == 0 and not upgrading and desired.target is TargetState.RUNNING:
                self.rep.transition(desired, DeploymentState.PENDING)
            for step in steps:
                self.check()
                self.run_step(desired, step, upgrading=upgrading)
                executed += 1
        raise NotConverging(f"not converged after {self.ctx.max_rounds} rounds")

    def converge_healthy(self, desired: DesiredDeployment) -> None:
        """Converge during an upgrade or rollback; a release that ends unhealthy raises."""
        result, _ = self.converge(desired, upgrading=True)
        if not result.ok:
            raise Unhealthy(result.reason)

    def run_step(self, desired: DesiredDeployment, step: Step, *, upgrading: bool) -> None:
        phase = _PHASES.get(step.action)
        if phase is not None and not upgrading and desired.target is TargetState.RUNNING:
            self.rep.transition(desired, phase)
        detail = step.detail()
        log.info("deployment %s: %s", desired.deployment_id, detail)
        self.rep.progress(desired, step.action, detail)
        execute(self.ctx.steps, step)

    def apply_and_report(self, d: DesiredDeployment, *, upgrading: bool = False) -> None:
        result, executed = self.converge(d, upgrading=upgrading)
        if not result.ok:
            raise Unhealthy(result.reason)
        if d.target is TargetState.DELETED:
            self.rep.transition(d, DeploymentState.DELETED)
            self.rep.succeeded(d)
            self.ctx.store.remove(d.deployment_id)
            self.rep.forget(d.deployment_id)
            return
        if executed == 0 and d.command_id is None and self.rep.state_of(d.deployment_id) is None:
            self.rep.record(d.deployment_id, result.state)  # a restarted agent: nothing changed
            return
        self.rep.transition(d, result.state)
        self.rep.succeeded(d)
        _answered(self.ctx.store, d)

    def upgrade(self, d: DesiredDeployment) -> None:
        prev = d.previous_release
        assert prev is not None
        self.rep.transition(
            d, DeploymentState.UPGRADING, reason=f"{prev.version} -> {d.release.version}"
        )
        try:
            self.converge_healthy(d)
        except Superseded:
            raise
        except EngineError as exc:
            self.rollback(d, f"{exc.code}: {exc}")
            return
        self.check()
        committed = d.model_copy(update={"previous_release": None})
        self.ctx.store.put(committed)
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
        self.ctx.store.put(back)
        self.finish_rollback(back)

    def finish_rollback(self, d: DesiredDeployment) -> None:
        reason = d.rollback_reason or "rolled back"
        try:
            self.converge_healthy(d)
        except Superseded:
            raise
        except EngineError as exc:
            raise RollbackFailed(
                f"upgrade failed ({reason}) and restoring {d.release.version} failed: {exc}"
            ) from exc
        self.rep.transition(d, DeploymentState.ROLLED_BACK, reason=reason)
        self.rep.failed(d, "rolled_back", f"rolled back to {d.release.version}: {reason}")
        if d.command_id is None:
            fresh = self.ctx.store.get(d.deployment_id)
            if fresh is not None and fresh.rollback_reason is not None:
                self.ctx.store.put(fresh.model_copy(update={"rollback_reason": None}))
        else:
            _answered(self.ctx.store, d, rollback_reason=None)
