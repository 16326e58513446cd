"""Labels and names of every Docker object the agent manages.

Every container, network and volume carries ``io.fleetwire.managed=true``, the device that owns
it (``io.fleetwire.device``) and its deployment, so a restarted agent rebuilds what it manages
from the engine alone, and several agents can share one engine: each reads only what carries its
own device id, and names include the device so two agents never compete for one. A container
also carries the whole spec it was created from (``io.fleetwire.spec``, canonical JSON) and its
hash, so the planner can tell which aspect changed without trusting any local database.
"""

import hashlib
import json
import re
from typing import Final

from pydantic import BaseModel, ConfigDict, ValidationError

from fleetwire.protocol.release import ContainerSpec, NetworkSpec, ReleaseSpec, VolumeSpec

MANAGED: Final = "io.fleetwire.managed"
DEVICE: Final = "io.fleetwire.device"
DEPLOYMENT: Final = "io.fleetwire.deployment"
APPLICATION: Final = "io.fleetwire.application"
RELEASE: Final = "io.fleetwire.release"
CONTAINER: Final = "io.fleetwire.container"
SPEC_HASH: Final = "io.fleetwire.spec-hash"
GENERATION: Final = "io.fleetwire.generation"
SPEC: Final = "io.fleetwire.spec"

MANAGED_FILTER: Final = f"{MANAGED}=true"


def scope_filter(device_id: str, deployment_id: str | None = None) -> list[str]:
    """Docker ``label`` filters (all must match) for the objects one device manages.

    The device label is what keeps agents that share an engine apart: nothing without it is read.
    """
    flt = [MANAGED_FILTER, f"{DEVICE}={device_id}"]
    if deployment_id is not None:
        flt.append(f"{DEPLOYMENT}={deployment_id}")
    return flt


_DOCKER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class AppliedSpec(BaseModel):
    """Everything a container is created from; its hash decides whether to recreate it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    application: str
    release: str
    generation: int
    container: ContainerSpec
    networks: tuple[NetworkSpec, ...] = ()
    volumes: tuple[VolumeSpec, ...] = ()

    def canonical_json(self) -> str:
        """Key-sorted compact JSON: equal specs give equal strings."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        """SHA-256 of the canonical JSON (hex)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def applied_spec(release: ReleaseSpec, container: ContainerSpec, generation: int) -> AppliedSpec:
    """The applied spec of one container of ``release``.

    The credentials label is left out: which secret pulls an image does not change the container.
    """
    nets = {n.name: n for n in release.networks}
    vols = {v.name: v for v in release.volumes}
    used_vols = sorted({m.split(":")[0] for m in container.volumes})
    return AppliedSpec(
        application=release.application,
        release=release.version,
        generation=generation,
        container=container.model_copy(update={"credentials": None}),
        networks=tuple(nets[n] for n in container.networks),
        volumes=tuple(vols[v] for v in used_vols),
    )


def parse_applied_spec(value: str | None) -> AppliedSpec | None:
    """Decode a ``io.fleetwire.spec`` label; ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        return AppliedSpec.model_validate_json(value)
    except ValidationError:
        return None


def _slug(value: str) -> str:
    """``value`` if Docker accepts it in a name, else a sanitised form plus a short hash."""
    if _DOCKER_NAME_RE.fullmatch(value):
        return value
    clean = re.sub(r"[^a-zA-Z0-9_.-]", "_", value).lstrip("_.-") or "x"
    return f"{clean}-{hashlib.sha256(value.encode()).hexdigest()[:6]}"


def device_token(device_id: str) -> str:
    """A short, stable token for a device: part of every network and volume name."""
    return hashlib.sha256(device_id.encode()).hexdigest()[:8]


def deployment_short(device_id: str, deployment_id: str) -> str:
    """A short, stable token for a deployment of a device (ids such as UUIDv7 share prefixes)."""
    return hashlib.sha256(f"{device_id}\0{deployment_id}".encode()).hexdigest()[:10]


def container_name(device_id: str, deployment_id: str, spec: AppliedSpec) -> str:
    """``fw-<sha256(device, deployment)[:10]>-<container>-<version>-<spec hash 8>``."""
    version = _slug(spec.release)
    short = deployment_short(device_id, deployment_id)
    return f"fw-{short}-{spec.container.name}-{version}-{spec.spec_hash()[:8]}"


def network_name(device_id: str, deployment_id: str, name: str) -> str:
    """``fw-<deployment>-<device token>-<network>``."""
    return f"fw-{_slug(deployment_id)}-{device_token(device_id)}-{name}"


def volume_name(device_id: str, deployment_id: str, name: str) -> str:
    """``fw-<deployment>-<device token>-<volume>``: survives upgrades and deletes unless purged."""
    return f"fw-{_slug(deployment_id)}-{device_token(device_id)}-{name}"


def base_labels(device_id: str, deployment_id: str, release: ReleaseSpec) -> dict[str, str]:
    """Labels every managed object of a deployment carries."""
    return {
        MANAGED: "true",
        DEVICE: device_id,
        DEPLOYMENT: deployment_id,
        APPLICATION: release.application,
        RELEASE: release.version,
    }


def container_labels(device_id: str, deployment_id: str, spec: AppliedSpec) -> dict[str, str]:
    """Labels of a managed container."""
    return {
        MANAGED: "true",
        DEVICE: device_id,
        DEPLOYMENT: deployment_id,
        APPLICATION: spec.application,
        RELEASE: spec.release,
        CONTAINER: spec.container.name,
        GENERATION: str(spec.generation),
        SPEC_HASH: spec.spec_hash(),
        SPEC: spec.canonical_json(),
    }


def object_hash(spec: NetworkSpec | VolumeSpec) -> str:
    """Hash of a network or volume spec, stored on the object as ``io.fleetwire.spec-hash``."""
    raw = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()
