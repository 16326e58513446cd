"""The read model's projection, as pure functions (no I/O, no clock).

``admit`` orders a device's events by ``seq`` (duplicates dropped, early events held until the gap
fills, an inventory resets the sequence); ``project`` applies one event to a device's rows;
``apply_device`` runs both over one device's share of a batch. The projector
(``fleetwire.cloud.projector``) loads rows, calls ``apply_device`` per device, and stores the
result with the processed markers in one transaction.
"""

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from fleetwire.cloud.command_status import OPEN_RANK, TERMINAL, CommandStatus
from fleetwire.protocol.envelope import FIRST_SEQ, EventEnvelope
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

R = TypeVar("R")


def replace(row: R, **changes: Any) -> R:
    """``dataclasses.replace`` for our frozen rows, without re-running ``__init__``.

    The projector calls it several times per event; the generic version costs ~10 µs a call.
    """
    new = object.__new__(type(row))
    new.__dict__.update(row.__dict__)
    new.__dict__.update(changes)
    return new


COMMAND_EVENTS = (
    CommandAccepted,
    CommandRejected,
    CommandProgress,
    CommandSucceeded,
    CommandFailed,
)
# States in which the device runs the release it reports: that is the current release.
_CURRENT_STATES = frozenset(
    {DeploymentState.RUNNING, DeploymentState.STOPPED, DeploymentState.ROLLED_BACK}
)


@dataclass(frozen=True)
class DeviceRow:
    """Presence and sequencing columns of a device."""

    id: str
    online: bool = False
    last_seen: datetime | None = None
    presence_time: datetime | None = None
    agent_version: str | None = None
    protocol_types: tuple[str, ...] = ()
    docker_version: str | None = None
    reported_system_model: str | None = None
    hostname: str | None = None
    next_seq: int | None = None


@dataclass(frozen=True)
class DeploymentRow:
    """Reported columns of a deployment."""

    id: str
    device_id: str
    application: str
    current_version: str | None = None
    state: str = "pending"
    reason: str | None = None
    reported: bool = False
    gone: bool = False
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ContainerRow:
    """A container as reported."""

    deployment_id: str
    name: str
    device_id: str
    image: str
    status: str
    release_version: str | None = None
    container_id: str | None = None
    image_id: str | None = None
    health: str = "none"
    exit_code: int | None = None
    restart_count: int = 0
    gone: bool = False
    updated_at: datetime | None = None


@dataclass(frozen=True)
class CommandRow:
    """Status columns of a command."""

    id: str
    device_id: str
    status: CommandStatus = CommandStatus.PENDING
    detail: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class DeviceView:
    """Everything the projection of one device's events reads and writes."""

    device: DeviceRow
    deployments: Mapping[str, DeploymentRow] = field(default_factory=dict)
    containers: Mapping[tuple[str, str], ContainerRow] = field(default_factory=dict)
    commands: Mapping[str, CommandRow] = field(default_factory=dict)


@dataclass(frozen=True)
class Admission:
    """The outcome of admitting one event into a device's sequence."""

    ready: tuple[EventEnvelope, ...]
    held: Mapping[int, EventEnvelope]
    next_seq: int | None
    duplicate: bool = False


def admit(
    next_seq: int | None, held: Mapping[int, EventEnvelope], event: EventEnvelope
) -> Admission:
    """Place ``event`` in its device's sequence.

    - no ``seq`` (presence): ready at once;
    - the expected ``seq`` (``FIRST_SEQ`` for a device never seen): ready, followed by held
      successors;
    - ahead of the expected ``seq``: held until the gap fills (or an inventory resets it);
    - behind it: a duplicate, except a command lifecycle event never seen before, which is still
      applied (command status only moves forward, so a late one is harmless);
    - an inventory at or ahead of the expected ``seq``: held events before it are applied first,
      then the inventory, which becomes the new base of the sequence.
    """
    seq = event.seq
    if seq is None:
        return Admission((event,), held, next_seq)
    # A device's sequence starts at FIRST_SEQ. A device first seen further on (say, the read model
    # was created after it) waits like any gap, until the gap fills or a sync's inventory resets it.
    next_seq = FIRST_SEQ if next_seq is None else next_seq
    if seq in held:
        return Admission((), held, next_seq, duplicate=True)
    if seq < next_seq:
        if isinstance(event, COMMAND_EVENTS):
            return Admission((event,), held, next_seq)
        return Admission((), held, next_seq, duplicate=True)
    if isinstance(event, Inventory):
        before = tuple(held[s] for s in sorted(s for s in held if s < seq))
        rest = {s: e for s, e in held.items() if s > seq}
        return _drain((*before, event), rest, seq + 1)
    if seq == next_seq:
        return _drain((event,), held, seq + 1)
    return Admission((), {**held, seq: event}, next_seq)


def _drain(
    ready: tuple[EventEnvelope, ...], held: Mapping[int, EventEnvelope], next_seq: int
) -> Admission:
    rest = dict(held)
    out = list(ready)
    while next_seq in rest:
        out.append(rest.pop(next_seq))
        next_seq += 1
    return Admission(tuple(out), rest, next_seq)


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


@dataclass(frozen=True)
class DeviceOutcome:
    """What one device's share of a batch did: its rows and sequence afterwards."""

    view: DeviceView
    """The device's rows after the events that became ready (``device.next_seq`` included)."""
    held: Mapping[int, EventEnvelope]
    """Events still waiting for a gap to fill, by ``seq``."""
    applied: tuple[EventEnvelope, ...]
    """The events projected, in the order they were applied (the event history to store)."""
    taken: frozenset[str]
    """Ids of the events seen for the first time (processed markers, even if held or dropped)."""
    duplicates: int
    """Events dropped as already seen (by id) or already past (by ``seq``)."""


def apply_device(
    view: DeviceView,
    held: Mapping[int, EventEnvelope],
    events: Iterable[EventEnvelope],
    seen: Set[str],
) -> DeviceOutcome:
    """Admit one device's ``events`` (in arrival order) and project those that become ready.

    ``view`` and ``held`` are the device's rows and held events before the batch; ``seen`` holds
    the ids of events already stored or taken earlier in the batch: those are duplicates, and so is
    a second copy of an event within ``events``. Held events released by a filled gap or an
    inventory are projected too.
    """
    next_seq = view.device.next_seq
    taken: set[str] = set()
    applied: list[EventEnvelope] = []
    duplicates = 0
    for event in events:
        if event.id in seen or event.id in taken:
            duplicates += 1
            continue
        taken.add(event.id)
        adm = admit(next_seq, held, event)
        if adm.duplicate:
            duplicates += 1
            continue
        next_seq, held = adm.next_seq, adm.held
        for ready in adm.ready:
            view = project(view, ready)
            applied.append(ready)
    if next_seq != view.device.next_seq:
        view = replace(view, device=replace(view.device, next_seq=next_seq))
    return DeviceOutcome(view, held, tuple(applied), frozenset(taken), duplicates)


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
