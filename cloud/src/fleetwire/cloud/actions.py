"""The table of actions the cloud can take on devices: one row per action, read by everyone.

The API (which action a deployment's state allows, which command it sends, what it records as
desired), the outbox (the ``action`` column of a command), the operator CLI (one command per
deployment action) and its ``--wait`` (which state settles an action) all read :data:`ACTIONS`.
Adding an action is one row here plus its command model in ``fleetwire.protocol.commands``.

Import-light on purpose: the operator CLI reads it, so it imports protocol models only, never the
database or API layers.
"""

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from fleetwire.protocol.commands import (
    DeleteCommand,
    DeployCommand,
    RedeployCommand,
    StartCommand,
    StopCommand,
    SyncCommand,
    UpgradeCommand,
)
from fleetwire.protocol.envelope import CommandEnvelope, Data
from fleetwire.protocol.events import DeploymentState
from fleetwire.protocol.registry import type_of

S = DeploymentState


class Target(StrEnum):
    """What an action acts on, which decides where the API offers it."""

    NEW_DEPLOYMENT = "new_deployment"
    """Creates a deployment (``POST /v1/deployments``)."""
    DEPLOYMENT = "deployment"
    """Acts on an existing deployment (``POST /v1/deployments/{id}/actions/{name}``)."""
    DEVICE = "device"
    """Acts on a device as a whole; issued by the cloud itself, not offered by the API."""


@dataclass(frozen=True)
class Action:
    """One action: the command it sends and the deployment states around it."""

    name: str
    """The action's name: the API path segment, the CLI command, ``command.action``."""
    command: type[CommandEnvelope]
    """The protocol command that carries it to the device."""
    target: Target
    allowed_from: frozenset[DeploymentState] = frozenset()
    """Reported deployment states in which the action makes sense (``DEPLOYMENT`` actions)."""
    desired_state: DeploymentState | None = None
    """What the cloud records as the deployment's desired state; None leaves it unchanged."""
    settled_state: DeploymentState | None = None
    """The reported state in which the action is done (``--wait``); None: when the command is."""
    needs_release: bool = False
    """The command carries a release spec (image credentials are then checked and referenced)."""

    @property
    def command_type(self) -> str:
        """The command's CloudEvents ``type``, which a device must announce to receive it."""
        return type_of(self.command)

    @property
    def data(self) -> type[Data]:
        """The model of the command's ``data``: the options it takes are its fields."""
        annotation = self.command.model_fields["data"].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, Data)):
            raise TypeError(f"{self.command.__name__}.data is not a single data model")
        return annotation

    def allows(self, state: str) -> bool:
        """Tell whether a deployment reported as ``state`` may take this action."""
        return state in self.allowed_from


# A release can only be swapped or recreated once the device has finished with the last change.
_SETTLED = frozenset({S.RUNNING, S.STOPPED, S.ERROR, S.ROLLED_BACK})
_BUSY = frozenset({S.PENDING, S.PULLING, S.CREATING, S.STARTING, S.UPGRADING})

DEPLOY: Final = Action(
    "deploy",
    DeployCommand,
    Target.NEW_DEPLOYMENT,
    desired_state=S.RUNNING,
    settled_state=S.RUNNING,
    needs_release=True,
)
START: Final = Action(
    "start",
    StartCommand,
    Target.DEPLOYMENT,
    allowed_from=frozenset({S.STOPPED, S.ERROR, S.ROLLED_BACK}),
    desired_state=S.RUNNING,
    settled_state=S.RUNNING,
)
STOP: Final = Action(
    "stop",
    StopCommand,
    Target.DEPLOYMENT,
    allowed_from=_BUSY | {S.RUNNING, S.ERROR, S.ROLLED_BACK},
    desired_state=S.STOPPED,
    settled_state=S.STOPPED,
)
UPGRADE: Final = Action(
    "upgrade",
    UpgradeCommand,
    Target.DEPLOYMENT,
    allowed_from=_SETTLED,
    desired_state=S.RUNNING,
    settled_state=S.RUNNING,
    needs_release=True,
)
REDEPLOY: Final = Action(
    "redeploy",
    RedeployCommand,
    Target.DEPLOYMENT,
    allowed_from=_SETTLED,
    desired_state=S.RUNNING,
    settled_state=S.RUNNING,
)
DELETE: Final = Action(
    "delete",
    DeleteCommand,
    Target.DEPLOYMENT,
    allowed_from=frozenset(S) - {S.DELETED},
    desired_state=S.DELETED,
    settled_state=S.DELETED,
)
SYNC: Final = Action("sync", SyncCommand, Target.DEVICE)

ACTIONS: Final = MappingProxyType(
    {a.name: a for a in (DEPLOY, START, STOP, UPGRADE, REDEPLOY, DELETE, SYNC)}
)
"""Every action by name, in the order the API and the CLI list them."""
DEPLOYMENT_ACTIONS: Final = tuple(a for a in ACTIONS.values() if a.target is Target.DEPLOYMENT)
"""The actions on an existing deployment."""
ACTION_OF_TYPE: Final = MappingProxyType({a.command_type: a.name for a in ACTIONS.values()})
"""An action's name by its command type."""

__all__ = [
    "ACTIONS",
    "ACTION_OF_TYPE",
    "DELETE",
    "DEPLOY",
    "DEPLOYMENT_ACTIONS",
    "REDEPLOY",
    "START",
    "STOP",
    "SYNC",
    "UPGRADE",
    "Action",
    "Target",
]
