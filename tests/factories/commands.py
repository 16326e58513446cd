"""Command envelopes for tests: deploy, upgrade, the deployment verbs, sync, credentials.

Each builder takes the envelope's own fields (``subject``, ``expires``, ``traceparent``, ``id``...)
as keyword arguments, so a test states only what it checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

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
from fleetwire.protocol.envelope import CommandEnvelope, utcnow
from fleetwire.protocol.release import ReleaseSpec
from tests.factories.releases import REGISTRY

CommandKind = Literal["start", "stop", "redeploy", "delete", "sync"]


def credential(
    password: str, ref: str = "acme", registry: str = REGISTRY, username: str = "puller"
) -> RegistryCredential:
    """Registry credentials for ``registry`` whose password is ``password``."""
    return RegistryCredential(
        ref=ref, registry=registry, username=username, password=SecretStr(password)
    )


def _release_data(
    deployment_id: str,
    release: ReleaseSpec,
    credentials: Sequence[RegistryCredential],
    health_timeout_s: float | None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "deployment_id": deployment_id,
        "release": release,
        "credentials": list(credentials),
    }
    # Left out rather than None: the data's own default applies, as for a real cloud's command.
    if health_timeout_s is not None:
        data["health_timeout_s"] = health_timeout_s
    return data


def deploy(
    deployment_id: str,
    release: ReleaseSpec,
    *,
    credentials: Sequence[RegistryCredential] = (),
    health_timeout_s: float | None = None,
    **envelope: Any,
) -> DeployCommand:
    """A deploy command of ``release`` (the data's default health timeout unless given)."""
    data = _release_data(deployment_id, release, credentials, health_timeout_s)
    return DeployCommand(data=DeployData(**data), **envelope)


def upgrade(
    deployment_id: str,
    release: ReleaseSpec,
    *,
    credentials: Sequence[RegistryCredential] = (),
    health_timeout_s: float | None = None,
    **envelope: Any,
) -> UpgradeCommand:
    """An upgrade command to ``release`` (the data's default health timeout unless given)."""
    data = _release_data(deployment_id, release, credentials, health_timeout_s)
    return UpgradeCommand(data=UpgradeData(**data), **envelope)


def simple(kind: CommandKind | str, deployment_id: str = "dep-1", **data: Any) -> CommandEnvelope:
    """start, stop, redeploy, delete or sync (``data``: the delete's or sync's own fields).

    ``kind`` is also a plain ``str`` so parametrized tests can pass theirs.
    """
    if kind == "sync":
        return SyncCommand(data=SyncData(**data))
    if kind == "delete":
        return DeleteCommand(data=DeleteData(deployment_id=deployment_id, **data))
    target = DeploymentCommandData(deployment_id=deployment_id)
    if kind == "start":
        return StartCommand(data=target)
    if kind == "stop":
        return StopCommand(data=target)
    assert kind == "redeploy", kind
    return RedeployCommand(data=target)


def expired(command: CommandEnvelope) -> CommandEnvelope:
    """The same command with an expiry in the past."""
    return command.model_copy(update={"expires": utcnow() - timedelta(minutes=1)})
