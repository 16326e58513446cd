"""When is a deployment action finished? Pure rules for ``--wait``."""

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


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


_FAILED_COMMAND = frozenset({"failed", "rejected", "expired"})
_SETTLED_STATES = {
    "start": "running",
    "deploy": "running",
    "upgrade": "running",
    "redeploy": "running",
    "stop": "stopped",
    "delete": "deleted",
}


def _containers_ready(deployment: dict[str, Any]) -> bool:
    live = [c for c in deployment.get("containers", []) if not c.get("gone")]
    return bool(live) and all(
        c.get("status") == "running" and c.get("health") in ("healthy", "none") for c in live
    )


def judge(action: str, command: dict[str, Any], deployment: dict[str, Any] | None) -> Verdict:
    """Decide from the command's status and the deployment's read model."""
    status = command.get("status", "pending")
    state = (deployment or {}).get("state", "pending")
    reason = (deployment or {}).get("reason") or command.get("detail") or ""
    if state == "rolled_back":
        return Verdict(Outcome.ROLLED_BACK, f"rolled back: {reason}".rstrip(": "))
    if status in _FAILED_COMMAND:
        return Verdict(Outcome.FAILED, f"command {status}: {reason}".rstrip(": "))
    if status != "succeeded":
        return Verdict(None, f"command {status}, deployment {state}")
    settled = _SETTLED_STATES.get(action, "running")
    if deployment is None or state != settled:
        return Verdict(None, f"command succeeded, deployment {state}")
    if settled == "running" and not _containers_ready(deployment):
        return Verdict(None, "running, waiting for healthy containers")
    return Verdict(Outcome.HEALTHY, f"{state}" + (" and healthy" if settled == "running" else ""))
