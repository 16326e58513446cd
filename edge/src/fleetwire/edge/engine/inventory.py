"""Inventory: the device's whole truth, from the engine's labels and the desired store."""

from collections.abc import Callable, Sequence

from fleetwire.edge.engine.health import assess
from fleetwire.edge.engine.observed import Observed, ObservedContainer
from fleetwire.edge.engine.planner import desired_specs
from fleetwire.edge.ports import DesiredDeployment
from fleetwire.protocol.events import (
    ContainerInfo,
    ContainerStatus,
    DeploymentState,
    InventoryData,
    InventoryDeployment,
)


def _info(c: ObservedContainer) -> ContainerInfo:
    return ContainerInfo(
        name=c.container or c.name[:63],
        container_id=c.id,
        image=c.image or "unknown",
        image_id=c.image_id or None,
        status=c.status,
        health=c.health,
        exit_code=c.exit_code,
        restart_count=c.restart_count,
    )


def build_inventory(
    observed: Observed,
    desired: Sequence[DesiredDeployment],
    state_of: Callable[[str], DeploymentState | None] = lambda _dep: None,
) -> InventoryData:
    """Every deployment in the store or on the engine, with its containers.

    ``observed`` must hold this device's objects only (:func:`observe` reads by device label).
    Desired containers that do not exist are listed as ``missing``; this device's containers of a
    deployment the store does not know are listed too (the engine is the truth).
    """
    deployments: list[InventoryDeployment] = []
    known = set()
    for d in desired:
        known.add(d.deployment_id)
        obs = observed.of(d.deployment_id)
        infos = [_info(c) for c in obs.containers]
        present = {c.spec_hash for c in obs.containers}
        infos += [
            ContainerInfo(
                name=s.container.name, image=s.container.image, status=ContainerStatus.MISSING
            )
            for s in desired_specs(d)
            if s.spec_hash() not in present
        ]
        state = state_of(d.deployment_id) or assess(observed, d).state
        deployments.append(
            InventoryDeployment(
                deployment_id=d.deployment_id,
                application=d.release.application,
                release_version=d.release.version,
                state=state,
                containers=infos,
            )
        )
    strays: dict[str, list[ObservedContainer]] = {}
    for c in observed.containers:
        if c.deployment_id and c.deployment_id not in known:
            strays.setdefault(c.deployment_id, []).append(c)
    for dep, containers in sorted(strays.items()):
        first = containers[0]
        running = any(c.status is ContainerStatus.RUNNING for c in containers)
        deployments.append(
            InventoryDeployment(
                deployment_id=dep,
                application=first.spec.application if first.spec else "unknown",
                release_version=first.release or "unknown",
                state=DeploymentState.RUNNING if running else DeploymentState.STOPPED,
                containers=[_info(c) for c in containers],
            )
        )
    return InventoryData(deployments=deployments)
