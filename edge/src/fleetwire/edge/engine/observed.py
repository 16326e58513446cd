"""Observed state: a frozen snapshot of what the engine runs, read through labels.

:func:`observe` is the only reader; the planner works on the snapshot and never calls Docker.
It reads only objects labelled with its device (``io.fleetwire.device``): another agent sharing
the engine is invisible, so nothing of it can be reported, planned for or removed.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker

from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.errors import engine_errors
from fleetwire.edge.engine.images import local_images
from fleetwire.protocol.events import ContainerStatus, Health


@dataclass(frozen=True)
class ObservedContainer:
    """One managed container as the engine reports it."""

    id: str
    name: str
    deployment_id: str
    container: str
    release: str
    spec_hash: str
    generation: int
    spec: lb.AppliedSpec | None
    status: ContainerStatus
    health: Health = Health.NONE
    exit_code: int | None = None
    restart_count: int = 0
    image: str = ""
    image_id: str = ""
    started_at: datetime | None = None
    networks: frozenset[str] = frozenset()
    device_id: str = ""

    @property
    def running(self) -> bool:
        """Running (restarting and paused do not count)."""
        return self.status is ContainerStatus.RUNNING


@dataclass(frozen=True)
class ObservedNetwork:
    """A managed network."""

    id: str
    name: str
    deployment_id: str
    spec_hash: str


@dataclass(frozen=True)
class ObservedVolume:
    """A managed volume."""

    name: str
    deployment_id: str
    spec_hash: str


@dataclass(frozen=True)
class Observed:
    """Everything the planner needs to know about the engine, gathered first."""

    containers: tuple[ObservedContainer, ...] = ()
    networks: tuple[ObservedNetwork, ...] = ()
    volumes: tuple[ObservedVolume, ...] = ()
    images: Mapping[str, str] = field(default_factory=dict)

    def of(self, deployment_id: str) -> "Observed":
        """The part of the snapshot that belongs to one deployment (images are shared)."""
        return Observed(
            containers=tuple(c for c in self.containers if c.deployment_id == deployment_id),
            networks=tuple(n for n in self.networks if n.deployment_id == deployment_id),
            volumes=tuple(v for v in self.volumes if v.deployment_id == deployment_id),
            images=self.images,
        )


def _parse_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):
        return None
    # Docker gives nanoseconds; fromisoformat takes at most microseconds.
    head, _, rest = value.rstrip("Z").partition(".")
    frac = "".join(ch for ch in rest if ch.isdigit())[:6]
    try:
        stamp = datetime.fromisoformat(f"{head}.{frac or '0'}")
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC)


def container_from_attrs(attrs: Mapping[str, Any]) -> ObservedContainer:
    """Build an :class:`ObservedContainer` from ``docker inspect`` output."""
    config = attrs.get("Config") or {}
    labels = config.get("Labels") or {}
    state = attrs.get("State") or {}
    status = ContainerStatus(state.get("Status", "dead"))
    health_status = (state.get("Health") or {}).get("Status")
    health = Health(str(health_status)) if health_status in set(Health) else Health.NONE
    nets = ((attrs.get("NetworkSettings") or {}).get("Networks")) or {}
    try:
        generation = int(labels.get(lb.GENERATION, "0"))
    except ValueError:
        generation = -1
    return ObservedContainer(
        id=attrs["Id"],
        name=str(attrs.get("Name", "")).lstrip("/"),
        deployment_id=labels.get(lb.DEPLOYMENT, ""),
        container=labels.get(lb.CONTAINER, ""),
        release=labels.get(lb.RELEASE, ""),
        spec_hash=labels.get(lb.SPEC_HASH, ""),
        generation=generation,
        spec=lb.parse_applied_spec(labels.get(lb.SPEC)),
        status=status,
        health=health,
        exit_code=None if status is ContainerStatus.RUNNING else state.get("ExitCode"),
        restart_count=int(attrs.get("RestartCount") or 0),
        image=config.get("Image", ""),
        image_id=attrs.get("Image", ""),
        started_at=_parse_time(state.get("StartedAt")),
        networks=frozenset(nets),
        device_id=labels.get(lb.DEVICE, ""),
    )


def observe(
    client: docker.DockerClient, deployment_id: str | None = None, *, device_id: str
) -> Observed:
    """Read every object ``device_id`` manages (of one deployment, when given) and the images."""
    label_filter = lb.scope_filter(device_id, deployment_id)
    with engine_errors("observe engine"):
        containers = client.containers.list(
            all=True, filters={"label": label_filter}, ignore_removed=True
        )
        networks = client.api.networks(filters={"label": label_filter})
        volumes = (client.api.volumes(filters={"label": label_filter}) or {}).get("Volumes") or []
    images = local_images(client)

    def lbl(obj: Mapping[str, Any], key: str) -> str:
        return str((obj.get("Labels") or {}).get(key, ""))

    return Observed(
        containers=tuple(
            sorted((container_from_attrs(c.attrs) for c in containers), key=lambda c: c.name)
        ),
        networks=tuple(
            sorted(
                (
                    ObservedNetwork(
                        id=n["Id"],
                        name=n["Name"],
                        deployment_id=lbl(n, lb.DEPLOYMENT),
                        spec_hash=lbl(n, lb.SPEC_HASH),
                    )
                    for n in networks
                ),
                key=lambda n: n.name,
            )
        ),
        volumes=tuple(
            sorted(
                (
                    ObservedVolume(
                        name=v["Name"],
                        deployment_id=lbl(v, lb.DEPLOYMENT),
                        spec_hash=lbl(v, lb.SPEC_HASH),
                    )
                    for v in volumes
                ),
                key=lambda v: v.name,
            )
        ),
        images=images,
    )
