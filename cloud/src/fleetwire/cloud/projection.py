"""The read model's projection: one event applied to a device's rows, as pure functions.

``project(view, event)`` returns the :class:`~fleetwire.cloud.device_view.DeviceView` after an
event already admitted in sequence (``fleetwire.cloud.admission``): presence, command status,
deployment and container state, and the inventory that reconciles them to the device's truth.
No I/O, no clock: every time comes from the event.
"""

from datetime import datetime

from fleetwire.cloud.command_status import OPEN_RANK, TERMINAL, CommandStatus
from fleetwire.cloud.device_view import ContainerRow, DeploymentRow, DeviceRow, DeviceView, replace
from fleetwire.protocol.envelope import EventEnvelope
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandAnswerData,
    CommandFailed,
    CommandProgress,
    CommandRejected,
    CommandSucceeded,
    ContainerInfo,
    ContainerStateChanged,
    ContainerStateData,
    DeploymentState,
    DeploymentStateChanged,
    DeploymentStateData,
    Inventory,
    PresenceBirth,
    PresenceDeath,
)

# States in which the device runs the release it reports: that is the current release.
_CURRENT_STATES = frozenset(
    {DeploymentState.RUNNING, DeploymentState.STOPPED, DeploymentState.ROLLED_BACK}
)


def _seen(device: DeviceRow, event: EventEnvelope) -> DeviceRow:
    if device.last_seen is None or event.time > device.last_seen:
        return replace(device, last_seen=event.time)
    return device


def _command(
    view: DeviceView, command_id: str, status: CommandStatus, detail: str | None, at: datetime
) -> DeviceView:
    row = view.commands.get(command_id)
    if row is None or row.status in TERMINAL:
        return view
    if status not in TERMINAL and OPEN_RANK.get(status, 0) <= OPEN_RANK.get(row.status, 0):
        return view
    new = replace(row, status=status, detail=detail, updated_at=at)
    return replace(view, commands={**view.commands, command_id: new})


def _deployment(view: DeviceView, deployment_id: str, application: str) -> DeploymentRow:
    return view.deployments.get(deployment_id) or DeploymentRow(
        id=deployment_id, device_id=view.device.id, application=application
    )


def _container(
    deployment_id: str, device_id: str, info: ContainerInfo, version: str | None, at: datetime
) -> ContainerRow:
    return ContainerRow(
        deployment_id=deployment_id,
        name=info.name,
        device_id=device_id,
        image=info.image,
        status=info.status.value,
        release_version=version,
        container_id=info.container_id,
        image_id=info.image_id,
        health=info.health.value,
        exit_code=info.exit_code,
        restart_count=info.restart_count,
        gone=False,
        updated_at=at,
    )


def _apply_deployment_state(view: DeviceView, event: DeploymentStateChanged) -> DeviceView:
    d = event.data
    row = _deployment(view, d.deployment_id, d.application)
    deleted = d.state == DeploymentState.DELETED
    new = replace(
        row,
        state=d.state.value,
        reason=d.reason or (d.error.message if d.error else None),
        current_version=d.release_version if d.state in _CURRENT_STATES else row.current_version,
        reported=True,
        gone=deleted,
        updated_at=event.time,
    )
    containers = dict(view.containers)
    if deleted:
        for key, c in view.containers.items():
            if key[0] == d.deployment_id and not c.gone:
                containers[key] = replace(c, gone=True, updated_at=event.time)
    return replace(view, deployments={**view.deployments, row.id: new}, containers=containers)


def _apply_container_state(view: DeviceView, event: ContainerStateChanged) -> DeviceView:
    d = event.data
    row = _container(d.deployment_id, view.device.id, d, d.release_version, event.time)
    return replace(view, containers={**view.containers, (d.deployment_id, d.name): row})


def _apply_inventory(view: DeviceView, event: Inventory) -> DeviceView:
    deployments = dict(view.deployments)
    containers = dict(view.containers)
    listed: set[str] = set()
    for dep in event.data.deployments:
        listed.add(dep.deployment_id)
        row = _deployment(view, dep.deployment_id, dep.application)
        deployments[dep.deployment_id] = replace(
            row,
            state=dep.state.value,
            current_version=dep.release_version,
            reported=True,
            gone=dep.state == DeploymentState.DELETED,
            updated_at=event.time,
        )
        names = {c.name for c in dep.containers}
        for key, c in view.containers.items():
            if key[0] == dep.deployment_id and key[1] not in names and not c.gone:
                containers[key] = replace(c, gone=True, updated_at=event.time)
        for info in dep.containers:
            containers[(dep.deployment_id, info.name)] = _container(
                dep.deployment_id, view.device.id, info, dep.release_version, event.time
            )
    # What the device reported before and no longer lists is gone. A deployment it never
    # reported may simply not have reached it yet (its deploy command is still on the way).
    for dep_id, row in view.deployments.items():
        if dep_id not in listed and row.reported and not row.gone:
            deployments[dep_id] = replace(row, gone=True, updated_at=event.time)
            for key, c in view.containers.items():
                if key[0] == dep_id and not c.gone:
                    containers[key] = replace(c, gone=True, updated_at=event.time)
    return replace(view, deployments=deployments, containers=containers)


def _presence_is_newer(device: DeviceRow, event: EventEnvelope) -> bool:
    return device.presence_time is None or event.time >= device.presence_time


def _apply_birth(view: DeviceView, event: PresenceBirth) -> DeviceView:
    if not _presence_is_newer(view.device, event):
        return view
    d = event.data
    device = replace(
        view.device,
        online=True,
        presence_time=event.time,
        agent_version=d.agent_version,
        protocol_types=tuple(d.protocol_types),
        docker_version=d.docker_version,
        reported_system_model=d.system_model,
        hostname=d.hostname,
    )
    return replace(view, device=device)


def _apply_death(view: DeviceView, event: PresenceDeath) -> DeviceView:
    if not _presence_is_newer(view.device, event):
        return view
    return replace(view, device=replace(view.device, online=False, presence_time=event.time))


def project(view: DeviceView, event: EventEnvelope) -> DeviceView:
    """The device's rows after ``event`` (already admitted in sequence)."""
    view = replace(view, device=_seen(view.device, event))
    match event:
        case PresenceBirth():
            return _apply_birth(view, event)
        case PresenceDeath():
            return _apply_death(view, event)
        case CommandAccepted() | CommandProgress():
            return _command(view, event.data.command_id, CommandStatus.ACCEPTED, None, event.time)
        case CommandSucceeded():
            return _command(view, event.data.command_id, CommandStatus.SUCCEEDED, None, event.time)
        case CommandRejected():
            detail = f"{event.data.reason.value}: {event.data.message}"
            return _command(view, event.data.command_id, CommandStatus.REJECTED, detail, event.time)
        case CommandFailed():
            detail = f"{event.data.error.code}: {event.data.error.message}"
            return _command(view, event.data.command_id, CommandStatus.FAILED, detail, event.time)
        case DeploymentStateChanged():
            return _apply_deployment_state(view, event)
        case ContainerStateChanged():
            return _apply_container_state(view, event)
        case Inventory():
            return _apply_inventory(view, event)
    return view


def event_deployment_id(event: EventEnvelope) -> str | None:
    """The deployment an event is about, if any (for the history's filters)."""
    data = event.data
    if isinstance(data, DeploymentStateData | ContainerStateData):
        return data.deployment_id
    return None


def event_command_id(event: EventEnvelope) -> str | None:
    """The command an event answers, if any."""
    data = event.data
    if isinstance(data, CommandAnswerData):
        return data.command_id
    return event.correlationid
