"""Request and response bodies (Create/Update/Public variants of the table models)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, model_validator

from fleetwire.cloud.command_status import CommandStatus
from fleetwire.protocol.ids import DeviceId, Name

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64)]

_EXAMPLE_SPEC: dict[str, Any] = {
    "application": "thermo",
    "version": "1.2.0",
    "system_models": ["rpi4"],
    "containers": [
        {
            "name": "web",
            "image": "registry.example.com/thermo/web:1.2.0",
            "credentials": "example-registry",
            "ports": ["8080:80"],
            "volumes": ["data:/var/lib/thermo"],
            "networks": ["backend"],
        }
    ],
    "volumes": [{"name": "data"}],
    "networks": [{"name": "backend"}],
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplicationCreate(_In):
    """A new application."""

    name: Name = Field(examples=["thermo"])
    description: Annotated[str, StringConstraints(max_length=4096)] = Field(
        default="", examples=["Thermostat UI and sensor bridge"]
    )


class ApplicationUpdate(_In):
    """Change an application's description."""

    description: Annotated[str, StringConstraints(max_length=4096)]


class ApplicationPublic(BaseModel):
    """An application."""

    id: str
    name: str
    description: str
    created_at: datetime


class ReleasePublic(BaseModel):
    """A release: its spec as validated by the protocol's ReleaseSpec."""

    id: str
    application_id: str
    application: str
    version: str
    deployed: bool
    spec: dict[str, Any] = Field(examples=[_EXAMPLE_SPEC])
    created_at: datetime


RELEASE_SPEC_EXAMPLE = _EXAMPLE_SPEC


class ImageCredentialCreate(_In):
    """Registry credentials; ``secret`` is write-only."""

    label: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        examples=["example-registry"]
    )
    registry: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        examples=["registry.example.com"]
    )
    username: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        examples=["deploy-bot"]
    )
    secret: SecretStr = Field(examples=["s3cr3t"], description="Write-only: never returned.")


class ImageCredentialUpdate(_In):
    """Rotate a credential."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    secret: SecretStr | None = None


class ImageCredentialPublic(BaseModel):
    """Registry credentials without their secret."""

    id: str
    label: str
    registry: str
    username: str
    created_at: datetime


class DeviceCreate(_In):
    """Register a device. Its broker credentials live in the broker's password file."""

    id: DeviceId = Field(examples=["rpi-0042"])
    system_model: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, examples=["rpi4"]
    )
    tags: list[Tag] = Field(default_factory=list, examples=[["site-lyon", "beta"]])


class DeviceUpdate(_In):
    """Change a device's system model or tags."""

    system_model: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    tags: list[Tag] | None = None


class DevicePublic(BaseModel):
    """A device: registration and presence."""

    id: str
    registered: bool
    system_model: str | None
    tags: list[str]
    online: bool
    last_seen: datetime | None
    agent_version: str | None
    protocol_types: list[str]
    docker_version: str | None
    reported_system_model: str | None
    hostname: str | None
    created_at: datetime


class DeploymentCreate(_In):
    """Deploy a release to devices: one deployment per device."""

    release_id: str | None = Field(default=None, examples=["01932c4e-..."])
    application: Name | None = Field(default=None, examples=["thermo"])
    version: str | None = Field(default=None, examples=["1.2.0"])
    device_ids: Annotated[list[DeviceId], Field(min_length=1, max_length=1000)] = Field(
        examples=[["rpi-0042"]]
    )
    health_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0

    @model_validator(mode="after")
    def _one_release(self) -> "DeploymentCreate":
        by_name = self.application is not None and self.version is not None
        if (self.release_id is None) == (not by_name):
            raise ValueError("give either release_id, or application and version")
        return self


class ActionRequest(_In):
    """Options of an action; ``upgrade`` needs a target release of the same application."""

    release_id: str | None = None
    version: str | None = Field(default=None, examples=["1.3.0"])
    purge_volumes: bool = False
    health_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0


class Accepted(BaseModel):
    """A command was stored; it will reach the device through the relay."""

    command_id: str
    deployment_id: str | None = None
    device_id: str
    status_url: str


class DeploymentsAccepted(BaseModel):
    """One accepted command per device."""

    items: list[Accepted]


class ContainerPublic(BaseModel):
    """A container as its device last reported it."""

    name: str
    release_version: str | None
    container_id: str | None
    image: str
    image_id: str | None
    status: str
    health: str
    exit_code: int | None
    restart_count: int
    gone: bool
    updated_at: datetime


class DeploymentPublic(BaseModel):
    """A deployment: what is desired and what the device reports."""

    id: str
    device_id: str
    application: str
    desired_release_id: str | None
    desired_version: str | None
    current_version: str | None
    desired_state: str
    state: str
    reason: str | None
    gone: bool
    created_at: datetime
    updated_at: datetime
    containers: list[ContainerPublic] = Field(default_factory=list)


class CommandPublic(BaseModel):
    """A command and its status."""

    id: str
    device_id: str
    deployment_id: str | None
    action: str
    type: str
    status: CommandStatus
    detail: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    expires: datetime


class EventPublic(BaseModel):
    """An event of the history."""

    cursor: int
    event_id: str
    device_id: str
    seq: int | None
    type: str
    deployment_id: str | None
    command_id: str | None
    time: datetime
    received_at: datetime
    data: dict[str, Any]


class EventPage(BaseModel):
    """A page of events; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[EventPublic]
    next_cursor: int | None


class TokenCreate(_In):
    """A new API token."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(examples=["ci"])
    role: Literal["admin", "operator", "viewer"] = Field(examples=["operator"])


class TokenPublic(BaseModel):
    """A token's metadata."""

    id: str
    name: str
    role: str
    created_at: datetime
    revoked: bool


class TokenCreated(TokenPublic):
    """A token, shown in clear this once."""

    token: str
