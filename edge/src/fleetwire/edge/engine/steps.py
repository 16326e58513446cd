"""Steps: what the planner asks for, as data. :mod:`.executors` maps each ``action`` to code.

A step never holds a secret: a pull names its credentials by label only.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetwire.edge.engine.labels import AppliedSpec
from fleetwire.protocol.release import NetworkSpec, VolumeSpec


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    reason: str = ""

    def detail(self) -> str:
        """A one-line, secret-free description for progress events and logs."""
        raise NotImplementedError

    def _with_reason(self, text: str) -> str:
        return f"{text} ({self.reason})" if self.reason else text


class PullImage(_Step):
    """Pull an image that is not present locally."""

    action: Literal["pull_image"] = "pull_image"
    image: str
    credentials: str | None = None

    def detail(self) -> str:
        return self._with_reason(f"pull {self.image}")


class CreateNetwork(_Step):
    """Create a deployment network."""

    action: Literal["create_network"] = "create_network"
    deployment_id: str
    name: str
    spec: NetworkSpec
    labels: dict[str, str]

    def detail(self) -> str:
        return self._with_reason(f"create network {self.spec.name}")


class CreateVolume(_Step):
    """Create a deployment volume."""

    action: Literal["create_volume"] = "create_volume"
    deployment_id: str
    name: str
    spec: VolumeSpec
    labels: dict[str, str]

    def detail(self) -> str:
        return self._with_reason(f"create volume {self.spec.name}")


class CreateContainer(_Step):
    """Create a container from its applied spec; the device and deployment name its networks,
    volumes and labels."""

    action: Literal["create_container"] = "create_container"
    device_id: str
    deployment_id: str
    name: str
    spec: AppliedSpec

    def detail(self) -> str:
        c = self.spec.container
        return self._with_reason(f"create {c.name} from {c.image}")


class _OnContainer(_Step):
    container_id: str
    name: str
    container: str


class StartContainer(_OnContainer):
    """Start a created or stopped container."""

    action: Literal["start_container"] = "start_container"

    def detail(self) -> str:
        return self._with_reason(f"start {self.container}")


class StopContainer(_OnContainer):
    """Stop a running container, keeping it."""

    action: Literal["stop_container"] = "stop_container"
    timeout_s: int = 10

    def detail(self) -> str:
        return self._with_reason(f"stop {self.container}")


class RemoveContainer(_OnContainer):
    """Remove a container (forcefully: it is stopped first when the plan allows)."""

    action: Literal["remove_container"] = "remove_container"

    def detail(self) -> str:
        return self._with_reason(f"remove {self.container} ({self.name})")


class WaitHealthy(_OnContainer):
    """Wait until a container is healthy, or running for ``grace_s`` when it has no check."""

    action: Literal["wait_healthy"] = "wait_healthy"
    timeout_s: float
    grace_s: float
    has_health_check: bool

    def detail(self) -> str:
        return self._with_reason(f"wait for {self.container} to be healthy")


class RemoveNetwork(_Step):
    """Remove a network no desired container uses."""

    action: Literal["remove_network"] = "remove_network"
    network_id: str
    name: str

    def detail(self) -> str:
        return self._with_reason(f"remove network {self.name}")


class RemoveVolume(_Step):
    """Remove a volume (only on delete with purge)."""

    action: Literal["remove_volume"] = "remove_volume"
    name: str

    def detail(self) -> str:
        return self._with_reason(f"remove volume {self.name}")


Step = Annotated[
    PullImage
    | CreateNetwork
    | CreateVolume
    | CreateContainer
    | StartContainer
    | StopContainer
    | RemoveContainer
    | WaitHealthy
    | RemoveNetwork
    | RemoveVolume,
    Field(discriminator="action"),
]
"""Any step, discriminated by ``action``."""

ACTIONS: tuple[str, ...] = (
    "pull_image",
    "create_network",
    "create_volume",
    "create_container",
    "start_container",
    "stop_container",
    "remove_container",
    "wait_healthy",
    "remove_network",
    "remove_volume",
)
