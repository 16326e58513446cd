"""Commands (v1): cloud to device, on ``fleetwire/v1/devices/{id}/commands``."""

from typing import Annotated, Literal

from pydantic import Field, SecretStr, StringConstraints, field_serializer

from fleetwire.protocol.envelope import CommandEnvelope, Data, Identifier
from fleetwire.protocol.release import ReleaseSpec

HealthTimeout = Annotated[float, Field(gt=0, le=3600)]


class RegistryCredential(Data):
    """Credentials for pulling images, sent to the device only inside the command that needs them.

    The secret is a :class:`SecretStr`: it never shows in ``repr`` or logs, only in the JSON that
    goes on the wire.
    """

    ref: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="The label a container's ``credentials`` field names."
    )
    registry: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    username: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    password: SecretStr

    @field_serializer("password", when_used="json")
    def _reveal(self, value: SecretStr) -> str:
        return value.get_secret_value()


class DeploymentCommandData(Data):
    """Data of a command that acts on one deployment."""

    deployment_id: Identifier


class DeployData(DeploymentCommandData):
    """Install a release as a new deployment and run it."""

    release: ReleaseSpec
    credentials: list[RegistryCredential] = Field(default_factory=list)
    health_timeout_s: HealthTimeout = 120.0


class UpgradeData(DeployData):
    """Move a deployment to another release of the same application, health-gated."""


class DeleteData(DeploymentCommandData):
    """Remove a deployment's containers and networks; volumes too when ``purge_volumes``."""

    purge_volumes: bool = False


class SyncData(Data):
    """Ask the device to publish a full inventory."""

    reason: Annotated[str, StringConstraints(max_length=256)] | None = None


class DeployCommand(CommandEnvelope):
    """Deploy a release (``io.fleetwire.command.deploy.v1``)."""

    type: Literal["io.fleetwire.command.deploy.v1"] = "io.fleetwire.command.deploy.v1"
    data: DeployData


class StartCommand(CommandEnvelope):
    """Start a stopped deployment."""

    type: Literal["io.fleetwire.command.start.v1"] = "io.fleetwire.command.start.v1"
    data: DeploymentCommandData


class StopCommand(CommandEnvelope):
    """Stop a deployment's containers, keeping them."""

    type: Literal["io.fleetwire.command.stop.v1"] = "io.fleetwire.command.stop.v1"
    data: DeploymentCommandData


class UpgradeCommand(CommandEnvelope):
    """Upgrade a deployment to another release; rolls back when the new one is not healthy."""

    type: Literal["io.fleetwire.command.upgrade.v1"] = "io.fleetwire.command.upgrade.v1"
    data: UpgradeData


class RedeployCommand(CommandEnvelope):
    """Recreate a deployment's containers from its current release."""

    type: Literal["io.fleetwire.command.redeploy.v1"] = "io.fleetwire.command.redeploy.v1"
    data: DeploymentCommandData


class DeleteCommand(CommandEnvelope):
    """Delete a deployment."""

    type: Literal["io.fleetwire.command.delete.v1"] = "io.fleetwire.command.delete.v1"
    data: DeleteData


class SyncCommand(CommandEnvelope):
    """Ask for a full inventory event."""

    type: Literal["io.fleetwire.command.sync.v1"] = "io.fleetwire.command.sync.v1"
    data: SyncData


COMMAND_CLASSES: tuple[type[CommandEnvelope], ...] = (
    DeployCommand,
    StartCommand,
    StopCommand,
    UpgradeCommand,
    RedeployCommand,
    DeleteCommand,
    SyncCommand,
)

Command = (
    DeployCommand
    | StartCommand
    | StopCommand
    | UpgradeCommand
    | RedeployCommand
    | DeleteCommand
    | SyncCommand
)
