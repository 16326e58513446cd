"""Commands in, desired state and command lifecycle events out.

:func:`decide_command` is the pure part: given a command and the deployment's current desired
state it returns the new desired state or a rejection (not to be confused with the engine
planner's per-container ``decide``). :class:`CommandHandler` adds the journal (a repeated command
is answered from it, never executed twice), the outbox and the reconciler.
Nothing here raises on a bad payload: every input gets an answer.
"""

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import ValidationError

from fleetwire.edge.errors import StoreError
from fleetwire.edge.journal import (
    CommandStatus,
    JournalEntry,
    deployment_id_of,
    redacted_command_json,
)
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.ports import DesiredDeployment, DesiredStateStore, Reconciler, TargetState
from fleetwire.edge.tracing import TraceContext, command_span
from fleetwire.protocol.codec import DEFAULT_CODEC, Codec
from fleetwire.protocol.commands import (
    COMMAND_CLASSES,
    Command,
    DeleteCommand,
    DeployCommand,
    RedeployCommand,
    StartCommand,
    StopCommand,
    SyncCommand,
    UpgradeCommand,
)
from fleetwire.protocol.envelope import utcnow
from fleetwire.protocol.errors import DecodeError, UnknownMessageType, UnsupportedVersion
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandAcceptedData,
    CommandFailed,
    CommandFailedData,
    CommandRejected,
    CommandRejectedData,
    CommandSucceeded,
    CommandSucceededData,
    DeviceEvent,
    ErrorInfo,
    Inventory,
    RejectReason,
)
from fleetwire.protocol.ids import new_id

log = logging.getLogger(__name__)

UNKNOWN_COMMAND_ID: Final = "unknown"
"""``command_id`` of a rejection when the payload has no readable ``id``."""

_IDENTIFIER_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_MAX_MESSAGE: Final = 4096


@dataclass(frozen=True)
class Rejection:
    """Why a command is refused."""

    reason: RejectReason
    message: str


class Disposition(StrEnum):
    """What the handler did with a payload."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Handled:
    """The result of handling one payload (for logs and tests)."""

    command_id: str
    disposition: Disposition
    events: list[DeviceEvent] = field(default_factory=list)


def decide_command(
    command: Command, existing: DesiredDeployment | None, system_model: str | None = None
) -> DesiredDeployment | Rejection:
    """The new desired state a deployment command asks for, or why it is refused (pure)."""
    live = existing if existing is not None and existing.target != TargetState.DELETED else None
    meta = {"command_id": command.id, "command_type": command.type}
    if isinstance(command, DeployCommand):
        return _decide_deploy(command, existing, live, system_model)
    if isinstance(command, SyncCommand):  # pragma: no cover - handled before decide_command()
        return Rejection(RejectReason.INVALID, "sync changes no deployment")
    deployment_id = command.data.deployment_id
    if live is None and not (isinstance(command, DeleteCommand) and existing is not None):
        return Rejection(
            RejectReason.UNKNOWN_DEPLOYMENT, f"no deployment {deployment_id} on this device"
        )
    current = live or existing
    assert current is not None
    if isinstance(command, StartCommand):
        return current.model_copy(update={"target": TargetState.RUNNING, **meta})
    if isinstance(command, StopCommand):
        return current.model_copy(update={"target": TargetState.STOPPED, **meta})
    if isinstance(command, RedeployCommand):
        return current.model_copy(
            update={
                "target": TargetState.RUNNING,
                "generation": current.generation + 1,
                **meta,
            }
        )
    if isinstance(command, DeleteCommand):
        return current.model_copy(
            update={
                "target": TargetState.DELETED,
                "purge_volumes": command.data.purge_volumes,
                **meta,
            }
        )
    assert isinstance(command, UpgradeCommand)
    return _decide_upgrade(command, current, system_model, meta)


def _decide_deploy(
    command: DeployCommand,
    existing: DesiredDeployment | None,
    live: DesiredDeployment | None,
    system_model: str | None,
) -> DesiredDeployment | Rejection:
    release = command.data.release
    if system_model is not None and not release.supports(system_model):
        return Rejection(
            RejectReason.INVALID,
            f"release {release.application} {release.version} supports "
            f"{release.system_models}, not this device's model {system_model!r}",
        )
    if live is not None and live.release != release:
        return Rejection(
            RejectReason.CONFLICT,
            f"deployment {command.data.deployment_id} already runs "
            f"{live.release.application} {live.release.version}: use upgrade",
        )
    return DesiredDeployment(
        deployment_id=command.data.deployment_id,
        release=release,
        target=TargetState.RUNNING,
        generation=existing.generation if existing is not None else 0,
        health_timeout_s=command.data.health_timeout_s,
        command_id=command.id,
        command_type=command.type,
    )


def _decide_upgrade(
    command: UpgradeCommand,
    current: DesiredDeployment,
    system_model: str | None,
    meta: dict[str, str],
) -> DesiredDeployment | Rejection:
    new = command.data.release
    if new.application != current.release.application:
        return Rejection(
            RejectReason.INVALID,
            f"upgrade must stay within application {current.release.application}, "
            f"not move to {new.application}",
        )
    if system_model is not None and not new.supports(system_model):
        return Rejection(
            RejectReason.INVALID,
            f"release {new.version} does not support this device's model {system_model!r}",
        )
    return current.model_copy(
        update={
            "release": new,
            "previous_release": current.release,
            "target": TargetState.RUNNING,
            "health_timeout_s": command.data.health_timeout_s,
            **meta,
        }
    )


def _peek(payload: bytes) -> tuple[str, str | None]:
    """Best-effort command id and type of an undecodable payload."""
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        return UNKNOWN_COMMAND_ID, None
    if not isinstance(obj, dict):
        return UNKNOWN_COMMAND_ID, None
    raw_id, raw_type = obj.get("id"), obj.get("type")
    command_id = (
        raw_id if isinstance(raw_id, str) and _IDENTIFIER_RE.match(raw_id) else UNKNOWN_COMMAND_ID
    )
    return command_id, raw_type[:256] if isinstance(raw_type, str) else None


class CommandHandler:
    """Turns command payloads into journal rows, desired state and lifecycle events."""

    def __init__(
        self,
        *,
        device_id: str,
        outbox: Outbox,
        desired: DesiredStateStore,
        reconciler: Reconciler,
        system_model: str | None = None,
        codec: Codec = DEFAULT_CODEC,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.device_id = device_id
        self.outbox = outbox
        self.desired = desired
        self.reconciler = reconciler
        self.system_model = system_model
        self.codec = codec
        self.clock = clock
        self._source = outbox.source

    def handle(self, payload: bytes) -> Handled:
        """Handle one command payload; never raises on bad input."""
        try:
            command: Command = self.codec.decode_as(payload, *COMMAND_CLASSES)  # type: ignore[assignment]
        except DecodeError as exc:
            return self._reject_undecodable(payload, exc)
        extra = {
            "device_id": self.device_id,
            "command_id": command.id,
            "deployment_id": deployment_id_of(command),
        }
        with command_span(command, self.device_id) as trace:
            result = self._handle(command, trace)
        log.info("command %s %s: %s", command.type, command.id, result.disposition, extra=extra)
        return result

    def _reject_undecodable(self, payload: bytes, exc: DecodeError) -> Handled:
        command_id, command_type = _peek(payload)
        unsupported = isinstance(exc, UnknownMessageType | UnsupportedVersion)
        reason = RejectReason.UNSUPPORTED if unsupported else RejectReason.INVALID
        log.warning(
            "rejected an undecodable command (%s): %s",
            reason,
            exc,
            extra={"device_id": self.device_id, "command_id": command_id},
        )
        event = CommandRejected(
            source=self._source,
            correlationid=None if command_id == UNKNOWN_COMMAND_ID else command_id,
            data=CommandRejectedData(
                command_id=command_id,
                command_type=command_type,
                reason=reason,
                message=str(exc)[:_MAX_MESSAGE],
            ),
        )
        return Handled(command_id, Disposition.REJECTED, [self.outbox.append(event)])

    def _entry(self, command: Command, status: CommandStatus, trace: TraceContext) -> JournalEntry:
        return JournalEntry(
            command_id=command.id,
            command_type=command.type,
            received_at=self.clock(),
            deployment_id=deployment_id_of(command),
            status=status,
            command_json=redacted_command_json(command),
            traceparent=trace.traceparent,
            tracestate=trace.tracestate,
        )

    def _handle(self, command: Command, trace: TraceContext) -> Handled:
        entry = self.outbox.store.journal_get(command.id)
        if entry is not None:
            replayed = self._replay(entry)
            if entry.status is CommandStatus.ACCEPTED:
                self._resubmit_credentials(command)
            return replayed
        if command.is_expired(self.clock()):
            assert command.expires is not None
            return self._reject(
                command,
                trace,
                Rejection(
                    RejectReason.EXPIRED, f"command expired at {command.expires.isoformat()}"
                ),
            )
        if isinstance(command, SyncCommand):
            return self._sync(command, trace)
        existing = self.desired.get(command.data.deployment_id)
        decision = decide_command(command, existing, self.system_model)
        if isinstance(decision, Rejection):
            return self._reject(command, trace, decision)
        accepted = self.outbox.record_command(
            self._entry(command, CommandStatus.ACCEPTED, trace),
            self._accepted(command),
            decision,
        )
        credentials = getattr(command.data, "credentials", [])
        try:
            self.reconciler.submit(decision.deployment_id, credentials)
        except Exception as exc:
            log.exception(
                "the reconciler refused %s",
                command.id,
                extra={"device_id": self.device_id, "command_id": command.id},
            )
            # The wire code keeps its old name: operators and integrators may match on it.
            failed = self._fail(command, "executor.submit_failed", str(exc))
            return Handled(command.id, Disposition.FAILED, [accepted, failed])
        return Handled(command.id, Disposition.ACCEPTED, [accepted])

    def _resubmit_credentials(self, command: Command) -> None:
        """Hand a redelivered, still running command's credentials to the reconciler again.

        Credentials are never persisted, so an agent that crashed between journaling a deploy
        or upgrade and ``reconciler.submit`` resumes it from the store without them; the broker
        redelivers the unacknowledged command, and this is the only chance to supply them.
        ``submit`` is idempotent; nothing is journaled or executed a second time. Only while
        the command is still the deployment's desired state: an older command's credentials
        must not replace those of the command that superseded it.
        """
        credentials = getattr(command.data, "credentials", [])
        deployment_id = deployment_id_of(command)
        if not credentials or deployment_id is None:
            return
        desired = self.desired.get(deployment_id)
        if desired is None or desired.command_id != command.id:
            return
        try:
            self.reconciler.submit(deployment_id, credentials)
        except Exception:
            log.exception(
                "the reconciler refused the credentials of redelivered %s",
                command.id,
                extra={"device_id": self.device_id, "command_id": command.id},
            )

    def _accepted(self, command: Command) -> CommandAccepted:
        return CommandAccepted(
            source=self._source,
            subject=deployment_id_of(command),
            correlationid=command.id,
            data=CommandAcceptedData(command_id=command.id, command_type=command.type),
        )

    def _succeeded(self, command: Command) -> CommandSucceeded:
        return CommandSucceeded(
            source=self._source,
            subject=deployment_id_of(command),
            correlationid=command.id,
            data=CommandSucceededData(command_id=command.id, command_type=command.type),
        )

    def _fail(self, command: Command, code: str, message: str) -> DeviceEvent:
        return self.outbox.append(
            CommandFailed(
                source=self._source,
                subject=deployment_id_of(command),
                correlationid=command.id,
                data=CommandFailedData(
                    command_id=command.id,
                    command_type=command.type,
                    error=ErrorInfo(code=code, message=message[:_MAX_MESSAGE]),
                ),
            )
        )

    def _reject(self, command: Command, trace: TraceContext, why: Rejection) -> Handled:
        event = CommandRejected(
            source=self._source,
            subject=deployment_id_of(command),
            correlationid=command.id,
            data=CommandRejectedData(
                command_id=command.id,
                command_type=command.type,
                reason=why.reason,
                message=why.message[:_MAX_MESSAGE],
            ),
        )
        stamped = self.outbox.record_command(
            self._entry(command, CommandStatus.REJECTED, trace), event
        )
        return Handled(command.id, Disposition.REJECTED, [stamped])

    def _sync(self, command: SyncCommand, trace: TraceContext) -> Handled:
        events: list[DeviceEvent] = [
            self.outbox.record_command(
                self._entry(command, CommandStatus.ACCEPTED, trace),
                self._accepted(command),
            )
        ]
        try:
            data = self.reconciler.inventory()
        except Exception as exc:
            log.exception(
                "inventory failed",
                extra={"device_id": self.device_id, "command_id": command.id},
            )
            events.append(self._fail(command, "inventory.failed", str(exc)))
            return Handled(command.id, Disposition.FAILED, events)
        events.append(
            self.outbox.append(Inventory(source=self._source, correlationid=command.id, data=data))
        )
        events.append(self.outbox.append(self._succeeded(command)))
        return Handled(command.id, Disposition.SUCCEEDED, events)

    def _replay(self, entry: JournalEntry) -> Handled:
        """A command seen before: publish its recorded outcome again (new id, new seq)."""
        if entry.outcome_json is None:  # pragma: no cover - every row is written with one
            return Handled(entry.command_id, Disposition.DUPLICATE)
        try:
            recorded = self.codec.decode_as(entry.outcome_json.encode(), *_OUTCOMES)
        except DecodeError:
            log.exception("journal outcome of %s is unreadable", entry.command_id)
            return Handled(entry.command_id, Disposition.DUPLICATE)
        again = recorded.model_copy(update={"id": new_id(), "time": utcnow(), "seq": None})
        try:
            stamped = self.outbox.append(again)
        except (StoreError, ValidationError):
            log.exception("could not republish the outcome of %s", entry.command_id)
            return Handled(entry.command_id, Disposition.DUPLICATE)
        return Handled(entry.command_id, Disposition.DUPLICATE, [stamped])


_OUTCOMES: Final = (CommandAccepted, CommandRejected, CommandSucceeded, CommandFailed)
