"""The release specification: what a deployment runs.

A release is a semver-versioned set of containers plus the named volumes and networks they use.
Validation is strict and explains itself: names are unique, ports and mounts follow Docker's
syntax, and every volume or network a container names is declared by the release.
"""

import re
from enum import StrEnum
from typing import Annotated, Final, Self

import semver
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from fleetwire.protocol.ids import Name
from fleetwire.protocol.images import ImageRef

_FROZEN_CLOSED: Final = ConfigDict(frozen=True, extra="forbid")

_PORT_RE = re.compile(
    r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?"
    r"(?:(?P<host>\d{1,5}):)?(?P<container>\d{1,5})(?:/(?P<proto>tcp|udp|sctp))?$"
)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MOUNT_MODES: Final = frozenset({"ro", "rw"})


def _check_semver(value: str) -> str:
    if not semver.Version.is_valid(value):
        raise ValueError(f"{value!r} is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build])")
    return value


SemVer = Annotated[str, AfterValidator(_check_semver)]


class PortMapping(BaseModel):
    """A parsed ``[ip:][host_port:]container_port[/proto]`` mapping."""

    model_config = _FROZEN_CLOSED
    host_ip: str | None
    host_port: int | None
    container_port: int
    protocol: str


def parse_port(value: str) -> PortMapping:
    """Parse a port mapping, raising ``ValueError`` with the accepted syntax."""
    m = _PORT_RE.fullmatch(value)
    if m is None:
        raise ValueError(
            f"port {value!r} must look like [ip:][host_port:]container_port[/tcp|udp|sctp]"
        )
    host = int(m["host"]) if m["host"] else None
    container = int(m["container"])
    for port in (host, container):
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port {value!r}: {port} is outside 1-65535")
    return PortMapping(
        host_ip=m["ip"], host_port=host, container_port=container, protocol=m["proto"] or "tcp"
    )


def _check_port(value: str) -> str:
    parse_port(value)
    return value


def _split_mount(value: str, kind: str) -> tuple[str, str, str]:
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"{kind} {value!r} must look like SOURCE:/container/path[:ro|rw]")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in _MOUNT_MODES:
        raise ValueError(f"{kind} {value!r}: mode {mode!r} must be ro or rw")
    if not target.startswith("/"):
        raise ValueError(f"{kind} {value!r}: container path {target!r} must be absolute")
    return source, target, mode


def _check_bind(value: str) -> str:
    source, _, _ = _split_mount(value, "bind")
    if not source.startswith("/"):
        raise ValueError(f"bind {value!r}: host path {source!r} must be absolute")
    return value


def _check_volume_mount(value: str) -> str:
    source, _, _ = _split_mount(value, "volume mount")
    if not re.fullmatch(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", source):
        raise ValueError(f"volume mount {value!r}: {source!r} must name a volume of the release")
    return value


def _check_env(value: dict[str, str]) -> dict[str, str]:
    bad = [k for k in value if not _ENV_NAME_RE.fullmatch(k)]
    if bad:
        raise ValueError(f"environment variable names {bad} must match [A-Za-z_][A-Za-z0-9_]*")
    return value


PortSpec = Annotated[str, AfterValidator(_check_port)]
BindSpec = Annotated[str, AfterValidator(_check_bind)]
VolumeMountSpec = Annotated[str, AfterValidator(_check_volume_mount)]
EnvSpec = Annotated[dict[str, str], AfterValidator(_check_env)]
SystemModel = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class RestartPolicy(StrEnum):
    """Docker restart policies."""

    NO = "no"
    ALWAYS = "always"
    UNLESS_STOPPED = "unless-stopped"
    ON_FAILURE = "on-failure"


class HealthCheck(BaseModel):
    """A container health check, as Docker runs it (``CMD``/``CMD-SHELL``/``NONE`` test)."""

    model_config = _FROZEN_CLOSED
    test: Annotated[list[str], Field(min_length=1)]
    interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    retries: Annotated[int, Field(ge=1, le=100)] = 3
    start_period_s: Annotated[float, Field(ge=0, le=3600)] = 0.0

    @model_validator(mode="after")
    def _check_test(self) -> Self:
        head = self.test[0]
        if head not in ("CMD", "CMD-SHELL", "NONE"):
            raise ValueError("health check test must start with CMD, CMD-SHELL or NONE")
        if head != "NONE" and len(self.test) < 2:
            raise ValueError(f"health check test {head} needs a command")
        return self


class ContainerSpec(BaseModel):
    """One container of a release."""

    model_config = _FROZEN_CLOSED
    name: Name
    image: ImageRef
    credentials: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, description="Label of the image credentials used to pull this image."
    )
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    env: EnvSpec = Field(default_factory=dict)
    ports: list[PortSpec] = Field(default_factory=list)
    binds: list[BindSpec] = Field(default_factory=list)
    volumes: list[VolumeMountSpec] = Field(default_factory=list)
    networks: list[Name] = Field(default_factory=list)
    restart_policy: RestartPolicy = RestartPolicy.UNLESS_STOPPED
    health_check: HealthCheck | None = None
    init: bool = False
    stop_timeout_s: Annotated[int, Field(ge=0, le=600)] = 10

    @model_validator(mode="after")
    def _check_unique_targets(self) -> Self:
        targets = [v.split(":")[1] for v in [*self.binds, *self.volumes]]
        dupes = sorted({t for t in targets if targets.count(t) > 1})
        if dupes:
            raise ValueError(f"container {self.name!r} mounts {dupes} more than once")
        if len(set(self.networks)) != len(self.networks):
            raise ValueError(f"container {self.name!r} lists a network twice")
        return self


class VolumeSpec(BaseModel):
    """A named volume, created on the device and kept across upgrades."""

    model_config = _FROZEN_CLOSED
    name: Name
    driver: Name = "local"
    options: dict[str, str] = Field(default_factory=dict)


class NetworkSpec(BaseModel):
    """A network the release's containers can join."""

    model_config = _FROZEN_CLOSED
    name: Name
    driver: Name = "bridge"
    options: dict[str, str] = Field(default_factory=dict)
    ipv6: bool = False
    internal: bool = False


def _duplicates(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


class ReleaseSpec(BaseModel):
    """A release of an application: the whole of what a device runs for a deployment."""

    model_config = _FROZEN_CLOSED
    application: Name
    version: SemVer
    system_models: list[SystemModel] = Field(
        default_factory=list, description="Models this release supports; empty means all."
    )
    containers: Annotated[list[ContainerSpec], Field(min_length=1, max_length=64)]
    volumes: list[VolumeSpec] = Field(default_factory=list)
    networks: list[NetworkSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        problems: list[str] = []
        for kind, names in (
            ("container", [c.name for c in self.containers]),
            ("volume", [v.name for v in self.volumes]),
            ("network", [n.name for n in self.networks]),
        ):
            if dupes := _duplicates(names):
                problems.append(f"duplicate {kind} names {dupes}")
        volumes = {v.name for v in self.volumes}
        networks = {n.name for n in self.networks}
        host_ports: list[str] = []
        for c in self.containers:
            for mount in c.volumes:
                if (vol := mount.split(":")[0]) not in volumes:
                    problems.append(f"container {c.name!r} mounts undeclared volume {vol!r}")
            problems.extend(
                f"container {c.name!r} joins undeclared network {net!r}"
                for net in c.networks
                if net not in networks
            )
            for port in c.ports:
                p = parse_port(port)
                if p.host_port is not None:
                    host_ports.append(f"{p.host_ip or '*'}:{p.host_port}/{p.protocol}")
        if dupes := _duplicates(host_ports):
            problems.append(f"host ports {dupes} are published twice")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def supports(self, system_model: str | None) -> bool:
        """Tell whether a device of ``system_model`` may run this release."""
        return not self.system_models or system_model in self.system_models

    def semver(self) -> semver.Version:
        """The version as a comparable :class:`semver.Version`."""
        return semver.Version.parse(self.version)
