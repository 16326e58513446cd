"""When is a deployment action finished? Pure rules for ``--wait``.

The state that settles each action comes from the action table (:mod:`fleetwire.cloud.actions`).
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from fleetwire.cloud.actions import ACTIONS
from fleetwire.cloud.command_status import FAILURES, CommandStatus
from fleetwire.protocol.events import ContainerStatus, DeploymentState, Health


class Outcome(IntEnum):
    """How a waited-for action ended; the value is the CLI's exit code."""

    HEALTHY = 0
    FAILED = 1
    ROLLED_BACK = 3
    TIMEOUT = 4


@dataclass(frozen=True)
class Verdict:
    """``outcome`` is None while the action is still in progress."""

    outcome: Outcome | None
    summary: str


def _containers_ready(deployment: dict[str, Any]) -> bool:
    live = [c for c in deployment.get("containers", []) if not c.get("gone")]
    return bool(live) and all(
        c.get("status") == ContainerStatus.RUNNING
        and c.get("health") in (Health.HEALTHY, Health.NONE)
        for c in live
    )


def judge(action: str, command: dict[str, Any], deployment: dict[str, Any] | None) -> Verdict:
    """Decide from the command's status and the deployment's read model."""
    status = command.get("status", CommandStatus.PENDING)
    state = (deployment or {}).get("state", DeploymentState.PENDING)
    reason = (deployment or {}).get("reason") or command.get("detail") or ""
    if state == DeploymentState.ROLLED_BACK:
        return Verdict(Outcome.ROLLED_BACK, f"rolled back: {reason}".rstrip(": "))
    if status in FAILURES:
        return Verdict(Outcome.FAILED, f"command {status}: {reason}".rstrip(": "))
    if status != CommandStatus.SUCCEEDED:
        return Verdict(None, f"command {status}, deployment {state}")
    known = ACTIONS.get(action)
    if known is not None and known.settled_state is None:
        # Nothing to wait for on the deployment: the device's answer is the end.
        return Verdict(Outcome.HEALTHY, "command succeeded")
    settled = known.settled_state if known is not None else DeploymentState.RUNNING
    if deployment is None or state != settled:
        return Verdict(None, f"command succeeded, deployment {state}")
    running = settled == DeploymentState.RUNNING
    if running and not _containers_ready(deployment):
        return Verdict(None, "running, waiting for healthy containers")
    return Verdict(Outcome.HEALTHY, f"{state}" + (" and healthy" if running else ""))
