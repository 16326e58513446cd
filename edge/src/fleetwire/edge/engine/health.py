"""Health: is a converged deployment what its target asks for? Pure, like the planner."""

from dataclasses import dataclass

from fleetwire.edge.engine.observed import Observed, ObservedContainer
from fleetwire.edge.engine.planner import desired_specs
from fleetwire.edge.ports import DesiredDeployment, TargetState
from fleetwire.protocol.events import ContainerStatus, DeploymentState, Health


@dataclass(frozen=True)
class Assessment:
    """Whether the deployment reached its target, the state to report and, if not, why."""

    ok: bool
    state: DeploymentState
    reason: str = ""


def assess(observed: Observed, desired: DesiredDeployment) -> Assessment:
    """Judge a deployment once its plan is empty."""
    obs = observed.of(desired.deployment_id)
    if desired.target is TargetState.DELETED:
        return _assess_deleted(obs, desired.purge_volumes)
    by_hash = {c.spec_hash: c for c in obs.containers}
    problems = [
        problem
        for spec in desired_specs(desired)
        if (problem := _problem(spec.container.name, by_hash.get(spec.spec_hash()), desired.target))
    ]
    if problems:
        return Assessment(ok=False, state=DeploymentState.ERROR, reason="; ".join(problems))
    if desired.target is TargetState.STOPPED:
        return Assessment(ok=True, state=DeploymentState.STOPPED)
    return Assessment(ok=True, state=DeploymentState.RUNNING)


def _assess_deleted(obs: Observed, purge_volumes: bool) -> Assessment:
    left = [c.name for c in obs.containers] + [n.name for n in obs.networks]
    if purge_volumes:
        left += [v.name for v in obs.volumes]
    if left:
        return Assessment(
            ok=False, state=DeploymentState.ERROR, reason=f"still present: {', '.join(left)}"
        )
    return Assessment(ok=True, state=DeploymentState.DELETED)


def _problem(name: str, c: ObservedContainer | None, target: TargetState) -> str | None:
    """What keeps container ``name`` from its target, or None when it is there."""
    if c is None:
        return f"{name} is missing"
    if target is TargetState.STOPPED:
        return f"{name} is still running" if c.status is ContainerStatus.RUNNING else None
    if c.status is not ContainerStatus.RUNNING:
        code = f" with code {c.exit_code}" if c.exit_code is not None else ""
        return f"{name} is {c.status.value}{code} (restarts: {c.restart_count})"
    if c.health not in (Health.HEALTHY, Health.NONE):
        return f"{name} is {c.health.value}"
    return None
