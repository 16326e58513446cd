"""A device's rows as the pure projection reads and writes them (no I/O).

:class:`DeviceView` holds one device's rows: the device itself, its deployments, containers and
the commands its events can answer. The rows are frozen dataclasses; :func:`replace` copies one
with changes. The projector (``fleetwire.cloud.projector``) loads them from the database and
writes back those that changed.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from fleetwire.cloud.command_status import CommandStatus

R = TypeVar("R")


def replace(row: R, **changes: Any) -> R:
    """``dataclasses.replace`` for our frozen rows, without re-running ``__init__``.

    The projector calls it several times per event; the generic version costs ~10 µs a call.
    """
    new = object.__new__(type(row))
    new.__dict__.update(row.__dict__)
    new.__dict__.update(changes)
    return new


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
