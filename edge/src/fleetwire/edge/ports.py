"""The seams between the agent (MQTT, journal, outbox) and the reconciler (planner, Docker).

The agent persists a :class:`DesiredDeployment` for every command that changes a deployment and
then wakes the :class:`Reconciler`; the reconciler converges the Docker Engine to the desired
state and reports through the :class:`EventSink`. The reconciler never sees MQTT; the agent never
calls Docker. Each port has a contract test suite in ``edge/tests/contracts/`` that its adapters
and fakes all pass.
"""

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from fleetwire.protocol.commands import RegistryCredential
from fleetwire.protocol.events import DeviceEvent, InventoryData
from fleetwire.protocol.release import ReleaseSpec


class TargetState(StrEnum):
    """What the operator wants a deployment to be."""

    RUNNING = "running"
    STOPPED = "stopped"
    DELETED = "deleted"


class DesiredDeployment(BaseModel):
    """The persisted target of one deployment; survives agent crashes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deployment_id: str
    release: ReleaseSpec
    target: TargetState = TargetState.RUNNING
    generation: int = Field(default=0, ge=0, description="Bumped by redeploy: forces recreation.")
    previous_release: ReleaseSpec | None = Field(
        default=None,
        description="Set while an upgrade is in flight: the release to roll back to.",
    )
    health_timeout_s: float = Field(default=120.0, gt=0)
    command_id: str | None = Field(
        default=None, description="The command this target answers; None once it is answered."
    )
    command_type: str | None = None
    purge_volumes: bool = False
    rollback_reason: str | None = Field(
        default=None,
        description="Set while a failed upgrade is rolled back (release is then the previous "
        "one): why. Once the previous release runs again the command is answered with "
        "CommandFailed(rolled_back) and this is cleared.",
    )


class EventSink(Protocol):
    """Where the reconciler reports; the agent gives each event its ``seq`` and stores it first.

    ``emit`` is thread-safe and never blocks on the network. Events are passed with ``seq=None``
    and ``source`` set to the device's source.
    """

    def emit(self, event: DeviceEvent) -> None:
        """Queue ``event`` for publication."""
        ...


class DesiredStateStore(Protocol):
    """Persistent desired state of every deployment (SQLite in the agent, a dict in tests)."""

    def get(self, deployment_id: str) -> DesiredDeployment | None:
        """The desired state of one deployment."""
        ...

    def put(self, desired: DesiredDeployment) -> None:
        """Create or replace the desired state of a deployment (durable on return)."""
        ...

    def remove(self, deployment_id: str) -> None:
        """Forget a deployment (after it has been deleted from the engine)."""
        ...

    def all(self) -> list[DesiredDeployment]:
        """Every deployment's desired state."""
        ...


class Reconciler(Protocol):
    """Converges the Docker Engine to the desired state and reports what happens.

    Commands only change the desired state (in the :class:`DesiredStateStore`) and then call
    :meth:`submit`; the reconciler does the rest in the background.
    """

    def start(self) -> None:
        """Start converging every deployment in the store, and watch the engine's events."""
        ...

    def stop(self) -> None:
        """Stop the background work and wait for it (bounded)."""
        ...

    def submit(self, deployment_id: str, credentials: Sequence[RegistryCredential] = ()) -> None:
        """Desired state of ``deployment_id`` changed: converge it (credentials kept in memory)."""
        ...

    def inventory(self) -> InventoryData:
        """Everything the reconciler manages, read from the engine's labels."""
        ...

    def docker_version(self) -> str | None:
        """The engine version, or None when the engine is unreachable."""
        ...
