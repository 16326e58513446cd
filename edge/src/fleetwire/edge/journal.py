"""The device journal: every command id the agent has seen, with its outcome.

A journal entry is what makes a redelivered command harmless: it is not executed again, its
recorded outcome is published again. The stored command never holds a registry password.
"""

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from fleetwire.protocol.commands import Command
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandFailed,
    CommandRejected,
    CommandSucceeded,
    DeviceEvent,
)

REDACTED: Final = "<redacted>"

Outcome = CommandAccepted | CommandRejected | CommandSucceeded | CommandFailed
OUTCOME_CLASSES: Final = (CommandAccepted, CommandRejected, CommandSucceeded, CommandFailed)


class CommandStatus(StrEnum):
    """Where a journaled command stands."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def status_of(event: DeviceEvent) -> CommandStatus | None:
    """The journal status a command lifecycle event records, or None for other events."""
    if isinstance(event, CommandAccepted):
        return CommandStatus.ACCEPTED
    if isinstance(event, CommandRejected):
        return CommandStatus.REJECTED
    if isinstance(event, CommandSucceeded):
        return CommandStatus.SUCCEEDED
    if isinstance(event, CommandFailed):
        return CommandStatus.FAILED
    return None


class JournalEntry(BaseModel):
    """One row of the journal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str
    command_type: str
    received_at: datetime
    deployment_id: str | None = None
    status: CommandStatus
    command_json: str
    """The command as received, with every credential password replaced by ``<redacted>``."""
    outcome_json: str | None = None
    """The last outcome event (accepted, rejected, succeeded or failed) as published."""
    traceparent: str | None = None
    tracestate: str | None = None


def redacted_command_json(command: Command) -> str:
    """The command as JSON, without the secret of any registry credential it carries."""
    # model_dump (python mode) keeps SecretStr objects; only the json serializer reveals them.
    obj: dict[str, Any] = json.loads(command.model_dump_json(exclude_none=True))
    data = obj.get("data")
    if isinstance(data, dict):
        for credential in data.get("credentials", []):
            if isinstance(credential, dict) and "password" in credential:
                credential["password"] = REDACTED
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def deployment_id_of(command: Command) -> str | None:
    """The deployment a command acts on (None for ``sync``)."""
    return getattr(command.data, "deployment_id", None)
