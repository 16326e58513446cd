"""Events (v1): device to cloud, on ``fleetwire/v1/devices/{id}/events/{category}``.

Presence (birth and death) travels on the retained ``presence`` topic instead.
"""

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from fleetwire.protocol.envelope import Data, EventEnvelope, Identifier
from fleetwire.protocol.ids import Name
from fleetwire.protocol.topics import EventCategory

Text = Annotated[str, StringConstraints(max_length=4096)]
ShortText = Annotated[str, StringConstraints(max_length=256)]


class RejectReason(StrEnum):
    """Why a device refused a command without trying it."""

    INVALID = "invalid"
    EXPIRED = "expired"
    UNSUPPORTED = "unsupported"
    UNKNOWN_DEPLOYMENT = "unknown_deployment"
    CONFLICT = "conflict"
    WRONG_DEVICE = "wrong_device"


class DeploymentState(StrEnum):
    """States of a deployment on a device."""

    PENDING = "pending"
    PULLING = "pulling"
    CREATING = "creating"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
    UPGRADING = "upgrading"
    ROLLED_BACK = "rolled_back"
    ERROR = "error"
    DELETED = "deleted"


class ContainerStatus(StrEnum):
    """Docker's container states, plus ``missing`` for a desired container that does not exist."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"
    MISSING = "missing"


class Health(StrEnum):
    """Container health; ``none`` when the container has no health check."""

    NONE = "none"
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class ErrorInfo(Data):
    """A typed error on the wire."""

    code: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]
    message: Text


class CommandAnswerData(Data):
    """Data shared by every command lifecycle event."""

    command_id: Identifier
    command_type: ShortText | None = None


class CommandAcceptedData(CommandAnswerData):
    """The device journaled the command and will carry it out."""


class CommandRejectedData(CommandAnswerData):
    """The device refused the command without acting on it."""

    reason: RejectReason
    message: Text


class CommandProgressData(CommandAnswerData):
    """A step of a command in progress."""

    step: ShortText
    detail: Text | None = None
    percent: Annotated[int, Field(ge=0, le=100)] | None = None


class CommandSucceededData(CommandAnswerData):
    """The command reached its goal."""


class CommandFailedData(CommandAnswerData):
    """The command was tried and did not reach its goal."""

    error: ErrorInfo


class DeploymentStateData(Data):
    """A deployment changed state."""

    deployment_id: Identifier
    application: Name
    release_version: ShortText
    state: DeploymentState
    previous_state: DeploymentState | None = None
    reason: Text | None = None
    error: ErrorInfo | None = None


class ContainerInfo(Data):
    """What the device knows of one managed container."""

    name: Name
    container_id: ShortText | None = None
    image: ShortText
    image_id: ShortText | None = None
    status: ContainerStatus
    health: Health = Health.NONE
    exit_code: int | None = None
    restart_count: Annotated[int, Field(ge=0)] = 0


class ContainerStateData(ContainerInfo):
    """A managed container changed status or health."""

    deployment_id: Identifier
    release_version: ShortText


class InventoryDeployment(Data):
    """One deployment in an inventory."""

    deployment_id: Identifier
    application: Name
    release_version: ShortText
    state: DeploymentState
    containers: list[ContainerInfo] = Field(default_factory=list)


class InventoryData(Data):
    """The whole truth of a device: every managed deployment and container."""

    deployments: list[InventoryDeployment] = Field(default_factory=list)


class PresenceBirthData(Data):
    """Published retained when the agent connects."""

    online: Literal[True] = True
    agent_version: ShortText
    protocol_types: list[ShortText] = Field(
        description="Message types the agent understands; the cloud sends it no others."
    )
    docker_version: ShortText | None = None
    system_model: ShortText | None = None
    hostname: ShortText | None = None


class PresenceDeathData(Data):
    """The will: published by the broker when the agent goes away, or by the agent on exit."""

    online: Literal[False] = False
    reason: ShortText | None = None


class DeviceEvent(EventEnvelope):
    """An event published on an event topic of ``category``."""

    category: ClassVar[EventCategory]


class CommandAccepted(DeviceEvent):
    """``io.fleetwire.event.command.accepted.v1``."""

    category: ClassVar[EventCategory] = EventCategory.COMMAND
    type: Literal["io.fleetwire.event.command.accepted.v1"] = (
        "io.fleetwire.event.command.accepted.v1"
    )
    data: CommandAcceptedData


class CommandRejected(DeviceEvent):
    """``io.fleetwire.event.command.rejected.v1``."""

    category: ClassVar[EventCategory] = EventCategory.COMMAND
    type: Literal["io.fleetwire.event.command.rejected.v1"] = (
        "io.fleetwire.event.command.rejected.v1"
    )
    data: CommandRejectedData


class CommandProgress(DeviceEvent):
    """``io.fleetwire.event.command.progress.v1``."""

    category: ClassVar[EventCategory] = EventCategory.COMMAND
    type: Literal["io.fleetwire.event.command.progress.v1"] = (
        "io.fleetwire.event.command.progress.v1"
    )
    data: CommandProgressData


class CommandSucceeded(DeviceEvent):
    """``io.fleetwire.event.command.succeeded.v1``."""

    category: ClassVar[EventCategory] = EventCategory.COMMAND
    type: Literal["io.fleetwire.event.command.succeeded.v1"] = (
        "io.fleetwire.event.command.succeeded.v1"
    )
    data: CommandSucceededData


class CommandFailed(DeviceEvent):
    """``io.fleetwire.event.command.failed.v1``."""

    category: ClassVar[EventCategory] = EventCategory.COMMAND
    type: Literal["io.fleetwire.event.command.failed.v1"] = "io.fleetwire.event.command.failed.v1"
    data: CommandFailedData


class DeploymentStateChanged(DeviceEvent):
    """``io.fleetwire.event.deployment.state.v1``."""

    category: ClassVar[EventCategory] = EventCategory.DEPLOYMENT
    type: Literal["io.fleetwire.event.deployment.state.v1"] = (
        "io.fleetwire.event.deployment.state.v1"
    )
    data: DeploymentStateData


class ContainerStateChanged(DeviceEvent):
    """``io.fleetwire.event.container.state.v1``."""

    category: ClassVar[EventCategory] = EventCategory.CONTAINER
    type: Literal["io.fleetwire.event.container.state.v1"] = "io.fleetwire.event.container.state.v1"
    data: ContainerStateData


class Inventory(DeviceEvent):
    """``io.fleetwire.event.inventory.v1``."""

    category: ClassVar[EventCategory] = EventCategory.INVENTORY
    type: Literal["io.fleetwire.event.inventory.v1"] = "io.fleetwire.event.inventory.v1"
    data: InventoryData


class PresenceBirth(EventEnvelope):
    """``io.fleetwire.event.presence.birth.v1``, retained on the presence topic."""

    kind: ClassVar[str] = "presence"
    type: Literal["io.fleetwire.event.presence.birth.v1"] = "io.fleetwire.event.presence.birth.v1"
    data: PresenceBirthData


class PresenceDeath(EventEnvelope):
    """``io.fleetwire.event.presence.death.v1``, the will on the presence topic."""

    kind: ClassVar[str] = "presence"
    type: Literal["io.fleetwire.event.presence.death.v1"] = "io.fleetwire.event.presence.death.v1"
    data: PresenceDeathData


DEVICE_EVENT_CLASSES: tuple[type[DeviceEvent], ...] = (
    CommandAccepted,
    CommandRejected,
    CommandProgress,
    CommandSucceeded,
    CommandFailed,
    DeploymentStateChanged,
    ContainerStateChanged,
    Inventory,
)
PRESENCE_CLASSES: tuple[type[EventEnvelope], ...] = (PresenceBirth, PresenceDeath)

Event = (
    CommandAccepted
    | CommandRejected
    | CommandProgress
    | CommandSucceeded
    | CommandFailed
    | DeploymentStateChanged
    | ContainerStateChanged
    | Inventory
)
Presence = PresenceBirth | PresenceDeath
