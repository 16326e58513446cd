"""One realistic, fully populated example of every message type.

Used as the examples of the AsyncAPI document and as a starting point for tests. Ids and times
are fixed so that the exported documents are byte-for-byte reproducible.
"""

from datetime import UTC, datetime
from typing import Final, NotRequired, TypedDict

from pydantic import SecretStr

from fleetwire.protocol.commands import (
    DeleteCommand,
    DeleteData,
    DeployCommand,
    DeployData,
    DeploymentCommandData,
    RedeployCommand,
    RegistryCredential,
    StartCommand,
    StopCommand,
    SyncCommand,
    SyncData,
    UpgradeCommand,
    UpgradeData,
)
from fleetwire.protocol.envelope import Envelope, device_source
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandAcceptedData,
    CommandFailed,
    CommandFailedData,
    CommandProgress,
    CommandProgressData,
    CommandRejected,
    CommandRejectedData,
    CommandSucceeded,
    CommandSucceededData,
    ContainerInfo,
    ContainerStateChanged,
    ContainerStateData,
    ContainerStatus,
    DeploymentState,
    DeploymentStateChanged,
    DeploymentStateData,
    ErrorInfo,
    Health,
    Inventory,
    InventoryData,
    InventoryDeployment,
    PresenceBirth,
    PresenceBirthData,
    PresenceDeath,
    PresenceDeathData,
    RejectReason,
)
from fleetwire.protocol.registry import MESSAGE_TYPES
from fleetwire.protocol.release import (
    ContainerSpec,
    HealthCheck,
    NetworkSpec,
    ReleaseSpec,
    RestartPolicy,
    VolumeSpec,
)

DEVICE_ID: Final = "gw-berlin-0042"
DEPLOYMENT_ID: Final = "0190f3a4-5b6c-7d8e-9f00-112233445566"
COMMAND_ID: Final = "0190f3a4-6000-7abc-8def-0123456789ab"
TRACEPARENT: Final = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
_T0: Final = datetime(2024, 7, 15, 9, 30, tzinfo=UTC)
_SOURCE: Final = device_source(DEVICE_ID)


def release_example(version: str = "1.4.2") -> ReleaseSpec:
    """A two-container release with a volume, a network and a private image."""
    return ReleaseSpec(
        application="telemetry",
        version=version,
        system_models=["rpi4-64", "imx8-gateway"],
        containers=[
            ContainerSpec(
                name="collector",
                image=f"registry.example.com:5000/acme/collector:{version}",
                credentials="acme-registry",
                command=["--config", "/etc/collector/config.yaml"],
                entrypoint=["/usr/bin/collector"],
                env={"LOG_LEVEL": "info", "MQTT_URL": "mqtt://localhost:1883"},
                ports=["127.0.0.1:8080:8080/tcp", "5683/udp"],
                binds=["/etc/acme/collector:/etc/collector:ro"],
                volumes=["telemetry-data:/var/lib/collector"],
                networks=["backend"],
                restart_policy=RestartPolicy.UNLESS_STOPPED,
                health_check=HealthCheck(
                    test=["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/healthz"],
                    interval_s=15.0,
                    timeout_s=3.0,
                    retries=4,
                    start_period_s=10.0,
                ),
                init=True,
                stop_timeout_s=20,
            ),
            ContainerSpec(
                name="cache",
                image="redis:7.2-alpine@sha256:"
                "3134997edb04277814aa51a4175a588d45eb4299272f8eff2307bbf8b39e4d43",
                networks=["backend"],
                restart_policy=RestartPolicy.ALWAYS,
            ),
        ],
        volumes=[VolumeSpec(name="telemetry-data", driver="local", options={"type": "tmpfs"})],
        networks=[
            NetworkSpec(
                name="backend",
                driver="bridge",
                options={"com.docker.network.bridge.enable_icc": "true"},
                ipv6=False,
                internal=True,
            )
        ],
    )


def _credential() -> RegistryCredential:
    return RegistryCredential(
        ref="acme-registry",
        registry="registry.example.com:5000",
        username="fleet-puller",
        password=SecretStr("example-password"),
    )


class _CommandAttributes(TypedDict):
    id: str
    time: datetime
    subject: str
    traceparent: str
    tracestate: str
    expires: datetime


class _EventAttributes(TypedDict):
    id: str
    source: str
    time: datetime
    subject: str
    traceparent: NotRequired[str]
    tracestate: NotRequired[str]
    correlationid: NotRequired[str]
    seq: NotRequired[int]


def _command_envelope() -> _CommandAttributes:
    return {
        "id": COMMAND_ID,
        "time": _T0,
        "subject": DEVICE_ID,
        "traceparent": TRACEPARENT,
        "tracestate": "fleetwire=api",
        "expires": datetime(2024, 7, 16, 9, 30, tzinfo=UTC),
    }


def _event_envelope(n: int) -> _EventAttributes:
    return {
        "id": f"0190f3a4-7{n:03x}-7abc-8def-0123456789ab",
        "source": _SOURCE,
        "time": datetime(2024, 7, 15, 9, 30, n, tzinfo=UTC),
        "subject": DEPLOYMENT_ID,
        "traceparent": TRACEPARENT,
        "tracestate": "fleetwire=agent",
        "correlationid": COMMAND_ID,
        "seq": 1040 + n,
    }


def _presence_envelope(n: int) -> _EventAttributes:
    # Presence is not part of the event sequence (the will is fixed at connect time).
    return {
        "id": f"0190f3a4-7{n:03x}-7abc-8def-0123456789ab",
        "source": _SOURCE,
        "time": datetime(2024, 7, 15, 9, 30, n, tzinfo=UTC),
        "subject": DEVICE_ID,
    }


def _container_info() -> ContainerInfo:
    return ContainerInfo(
        name="collector",
        container_id="9f1c2ab34d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8",
        image="registry.example.com:5000/acme/collector:1.4.2",
        image_id="sha256:5d0da3dc976460b72c77d94c8a1ad043720b0416bfc16c52c45d4847e53fadb6",
        status=ContainerStatus.RUNNING,
        health=Health.HEALTHY,
        exit_code=0,
        restart_count=1,
    )


def _answer(command_type: str) -> dict[str, str]:
    return {"command_id": COMMAND_ID, "command_type": command_type}


def examples() -> dict[str, Envelope]:
    """One example message per type, keyed by type string, in registry order."""
    deploy = "io.fleetwire.command.deploy.v1"
    dep = {"deployment_id": DEPLOYMENT_ID}
    error = ErrorInfo(code="image.pull_failed", message="manifest unknown: acme/collector:1.4.2")
    built: list[Envelope] = [
        DeployCommand(
            **_command_envelope(),
            data=DeployData(
                **dep, release=release_example(), credentials=[_credential()], health_timeout_s=90
            ),
        ),
        StartCommand(**_command_envelope(), data=DeploymentCommandData(**dep)),
        StopCommand(**_command_envelope(), data=DeploymentCommandData(**dep)),
        UpgradeCommand(
            **_command_envelope(),
            data=UpgradeData(
                **dep,
                release=release_example("1.5.0"),
                credentials=[_credential()],
                health_timeout_s=180,
            ),
        ),
        RedeployCommand(**_command_envelope(), data=DeploymentCommandData(**dep)),
        DeleteCommand(**_command_envelope(), data=DeleteData(**dep, purge_volumes=True)),
        SyncCommand(**_command_envelope(), data=SyncData(reason="sequence gap after 1041")),
        CommandAccepted(**_event_envelope(1), data=CommandAcceptedData(**_answer(deploy))),
        CommandRejected(
            **_event_envelope(2),
            data=CommandRejectedData(
                **_answer(deploy),
                reason=RejectReason.EXPIRED,
                message="command expired at 2024-07-16T09:30:00Z",
            ),
        ),
        CommandProgress(
            **_event_envelope(3),
            data=CommandProgressData(
                **_answer(deploy),
                step="pulling",
                detail="registry.example.com:5000/acme/collector:1.4.2",
                percent=40,
            ),
        ),
        CommandSucceeded(**_event_envelope(4), data=CommandSucceededData(**_answer(deploy))),
        CommandFailed(**_event_envelope(5), data=CommandFailedData(**_answer(deploy), error=error)),
        DeploymentStateChanged(
            **_event_envelope(6),
            data=DeploymentStateData(
                **dep,
                application="telemetry",
                release_version="1.4.2",
                state=DeploymentState.ROLLED_BACK,
                previous_state=DeploymentState.UPGRADING,
                reason="release 1.5.0 not healthy within 180 s",
                error=ErrorInfo(code="health.timeout", message="collector stayed unhealthy"),
            ),
        ),
        ContainerStateChanged(
            **_event_envelope(7),
            data=ContainerStateData(
                **_container_info().model_dump(),
                deployment_id=DEPLOYMENT_ID,
                release_version="1.4.2",
            ),
        ),
        Inventory(
            **_event_envelope(8),
            data=InventoryData(
                deployments=[
                    InventoryDeployment(
                        **dep,
                        application="telemetry",
                        release_version="1.4.2",
                        state=DeploymentState.RUNNING,
                        containers=[_container_info()],
                    )
                ]
            ),
        ),
        PresenceBirth(
            **_presence_envelope(9),
            data=PresenceBirthData(
                agent_version="0.1.0",
                protocol_types=sorted(MESSAGE_TYPES),
                docker_version="20.10.24",
                system_model="rpi4-64",
                hostname="gw-berlin-0042.local",
            ),
        ),
        PresenceDeath(
            **_presence_envelope(10), data=PresenceDeathData(reason="connection lost (will)")
        ),
    ]
    return {m.type: m for m in built}
