"""Health: is a converged deployment what its target asks for? Pure, like the planner."""

from dataclasses import dataclass

from fleetwire.edge.engine.observed import Observed
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
        left = [c.name for c in obs.containers] + [n.name for n in obs.networks]
        if desired.purge_volumes:
            left += [v.name for v in obs.volumes]
        if left:
            return Assessment(
                ok=False, state=DeploymentState.ERROR, reason=f"still present: {', '.join(left)}"
            )
        return Assessment(ok=True, state=DeploymentState.DELETED)
    by_hash = {c.spec_hash: c for c in obs.containers}
    problems: list[str] = []
    for spec in desired_specs(desired):
        name = spec.container.name
        c = by_hash.get(spec.spec_hash())
        if c is None:
            problems.append(f"{name} is missing")
        elif desired.target is TargetState.STOPPED:
            if c.status is ContainerStatus.RUNNING:
                problems.append(f"{name} is still running")
        elif c.status is not ContainerStatus.RUNNING:
            code = f" with code {c.exit_code}" if c.exit_code is not None else ""
            problems.append(f"{name} is {c.status.value}{code} (restarts: {c.restart_count})")
        elif c.health not in (Health.HEALTHY, Health.NONE):
            problems.append(f"{name} is {c.health.value}")
    if problems:
        return Assessment(ok=False, state=DeploymentState.ERROR, reason="; ".join(problems))
    if desired.target is TargetState.STOPPED:
        return Assessment(ok=True, state=DeploymentState.STOPPED)
    return Assessment(ok=True, state=DeploymentState.RUNNING)
