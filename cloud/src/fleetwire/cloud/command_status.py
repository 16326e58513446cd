"""The statuses a command moves through in the read model, from the API call to the device's answer.

``pending`` (stored, not yet with the broker) -> ``sent`` (the broker has it) -> ``accepted`` (the
device answered) -> one of the terminal statuses. A command never leaves a terminal status.
Import-light on purpose: the operator CLI reads it without loading the database layer.
"""

from enum import StrEnum
from typing import Final


class CommandStatus(StrEnum):
    """A command's status; the string values are what the API and the database carry."""

    PENDING = "pending"
    SENT = "sent"
    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        """True once the command can change no more."""
        return self in TERMINAL

    @property
    def failure(self) -> bool:
        """True for a terminal status that is not success."""
        return self in FAILURES


TERMINAL: Final = frozenset(
    {CommandStatus.SUCCEEDED, CommandStatus.FAILED, CommandStatus.REJECTED, CommandStatus.EXPIRED}
)
FAILURES: Final = TERMINAL - {CommandStatus.SUCCEEDED}
# Open statuses only move forward: a late "sent" never overwrites "accepted".
OPEN_RANK: Final = {CommandStatus.PENDING: 0, CommandStatus.SENT: 1, CommandStatus.ACCEPTED: 2}

__all__ = ["FAILURES", "OPEN_RANK", "TERMINAL", "CommandStatus"]
