"""Device event envelopes for tests: command answers, deployment and container state,
inventory and presence birth.

Every builder takes the device id and, optionally, the ``seq`` (left unset when None, as an agent's
sink receives events before its outbox numbers them) and any other envelope field as keywords.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleetwire.protocol.envelope import device_source
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandAcceptedData,
    CommandSucceeded,
    CommandSucceededData,
    ContainerInfo,
    ContainerStateChanged,
    ContainerStateData,
    ContainerStatus,
    DeploymentState,
    DeploymentStateChanged,
    DeploymentStateData,
    Health,
    Inventory,
    InventoryData,
    InventoryDeployment,
    PresenceBirth,
    PresenceBirthData,
)
from fleetwire.protocol.registry import COMMAND_TYPES
from tests.factories.releases import APPLICATION, VERSION, image_ref


def _envelope(device_id: str, seq: int | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    envelope: dict[str, Any] = {"source": device_source(device_id), **fields}
    if seq is not None:
        envelope["seq"] = seq
    return envelope


def accepted(device_id: str, command_id: str, seq: int | None = None) -> CommandAccepted:
    """A command-accepted event answering ``command_id``."""
    return CommandAccepted(
        **_envelope(device_id, seq, {"correlationid": command_id}),
        data=CommandAcceptedData(command_id=command_id),
    )


def succeeded(
    device_id: str, command_id: str, seq: int | None = None, *, command_type: str | None = None
) -> CommandSucceeded:
    """A command-succeeded event answering ``command_id``."""
    return CommandSucceeded(
        **_envelope(device_id, seq, {"correlationid": command_id}),
        data=CommandSucceededData(command_id=command_id, command_type=command_type),
    )


def deployment_state(
    device_id: str,
    deployment_id: str,
    state: DeploymentState | str = DeploymentState.RUNNING,
    seq: int | None = None,
    *,
    application: str = APPLICATION,
    version: str = VERSION,
    **envelope: Any,
) -> DeploymentStateChanged:
    """A deployment-state event."""
    return DeploymentStateChanged(
        **_envelope(device_id, seq, envelope),
        data=DeploymentStateData(
            deployment_id=deployment_id,
            application=application,
            release_version=version,
            state=DeploymentState(state),
        ),
    )


def container_state(
    device_id: str,
    deployment_id: str,
    seq: int | None = None,
    *,
    name: str = "web",
    image: str | None = None,
    status: ContainerStatus | str = ContainerStatus.RUNNING,
    health: Health | str = Health.NONE,
    version: str = VERSION,
    restart_count: int = 0,
    **envelope: Any,
) -> ContainerStateChanged:
    """A container-state event (the image defaults to ``image_ref(APPLICATION, version)``)."""
    return ContainerStateChanged(
        **_envelope(device_id, seq, envelope),
        data=ContainerStateData(
            deployment_id=deployment_id,
            release_version=version,
            name=name,
            image=image or image_ref(APPLICATION, version, name=name),
            status=ContainerStatus(status),
            health=Health(health),
            restart_count=restart_count,
        ),
    )


def inventory_deployment(
    deployment_id: str,
    containers: Sequence[ContainerInfo],
    *,
    application: str = APPLICATION,
    version: str = VERSION,
    state: DeploymentState = DeploymentState.RUNNING,
) -> InventoryDeployment:
    """One deployment of an inventory."""
    return InventoryDeployment(
        deployment_id=deployment_id,
        application=application,
        release_version=version,
        state=state,
        containers=list(containers),
    )


def running(name: str, image: str) -> ContainerInfo:
    """An inventory's running container."""
    return ContainerInfo(name=name, image=image, status=ContainerStatus.RUNNING)


def inventory(
    device_id: str, deployments: Sequence[InventoryDeployment], seq: int | None = None
) -> Inventory:
    """An inventory event of ``deployments``."""
    return Inventory(
        **_envelope(device_id, seq, {}), data=InventoryData(deployments=list(deployments))
    )


def birth(
    device_id: str,
    types: Sequence[str] = COMMAND_TYPES,
    system_model: str | None = "rpi4",
    **envelope: Any,
) -> PresenceBirth:
    """A presence birth announcing the command ``types``."""
    return PresenceBirth(
        source=device_source(device_id),
        data=PresenceBirthData(
            agent_version="0.1.0",
            protocol_types=list(types),
            docker_version="20.10",
            system_model=system_model,
        ),
        **envelope,
    )
