"""Reporting: turns what the reconciler does into protocol events for the :class:`EventSink`.

Keeps the last reported state of every deployment and checks each transition against
:data:`TRANSITIONS` (an unexpected one is logged, still reported: the wire must tell the truth).
"""

import logging
import threading
from typing import Final

from fleetwire.edge.engine.observed import ObservedContainer
from fleetwire.edge.ports import DesiredDeployment, EventSink
from fleetwire.protocol.envelope import device_source
from fleetwire.protocol.events import (
    CommandFailed,
    CommandFailedData,
    CommandProgress,
    CommandProgressData,
    CommandSucceeded,
    CommandSucceededData,
    ContainerStateChanged,
    ContainerStateData,
    DeploymentState,
    DeploymentStateChanged,
    DeploymentStateData,
    ErrorInfo,
)

log = logging.getLogger(__name__)

S = DeploymentState
_ACTIVE: Final = frozenset({S.PENDING, S.PULLING, S.CREATING, S.STARTING, S.UPGRADING})
TRANSITIONS: Final[dict[DeploymentState | None, frozenset[DeploymentState]]] = {
    None: frozenset(S),
    S.PENDING: frozenset(S) - {S.PENDING, S.ROLLED_BACK},
    S.PULLING: frozenset({S.CREATING, S.STARTING, S.RUNNING, S.STOPPED, S.ERROR, S.DELETED}),
    S.CREATING: frozenset({S.STARTING, S.RUNNING, S.STOPPED, S.ERROR, S.DELETED, S.PULLING}),
    S.STARTING: frozenset({S.RUNNING, S.ERROR, S.STOPPED, S.DELETED, S.CREATING, S.PULLING}),
    S.RUNNING: frozenset({S.PENDING, S.STOPPED, S.UPGRADING, S.DELETED, S.ERROR}),
    S.STOPPED: frozenset({S.PENDING, S.DELETED, S.ERROR, S.UPGRADING, S.RUNNING}),
    S.UPGRADING: frozenset({S.RUNNING, S.ROLLED_BACK, S.ERROR, S.DELETED}),
    S.ROLLED_BACK: frozenset({S.PENDING, S.UPGRADING, S.STOPPED, S.DELETED, S.ERROR, S.RUNNING}),
    S.ERROR: frozenset(S) - {S.ERROR},
    S.DELETED: frozenset({S.PENDING}),
}
_MAX_TEXT: Final = 4000


def clip(text: str) -> str:
    """Fit ``text`` into a wire text field."""
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


class Reporter:
    """Builds and emits events for one device; thread-safe."""

    def __init__(self, sink: EventSink, device_id: str) -> None:
        self._sink = sink
        self._source = device_source(device_id)
        self._lock = threading.Lock()
        self._states: dict[str, DeploymentState] = {}

    def state_of(self, deployment_id: str) -> DeploymentState | None:
        """The last state reported (or silently recorded) for a deployment."""
        with self._lock:
            return self._states.get(deployment_id)

    def record(self, deployment_id: str, state: DeploymentState) -> None:
        """Remember a state without reporting it (a restarted agent finding what it runs)."""
        with self._lock:
            self._states[deployment_id] = state

    def forget(self, deployment_id: str) -> None:
        """Drop a deleted deployment's state."""
        with self._lock:
            self._states.pop(deployment_id, None)

    def transition(
        self,
        desired: DesiredDeployment,
        state: DeploymentState,
        *,
        reason: str | None = None,
        error: ErrorInfo | None = None,
    ) -> None:
        """Report ``state`` if it differs from the last one."""
        dep = desired.deployment_id
        with self._lock:
            previous = self._states.get(dep)
            if previous is state:
                return
            self._states[dep] = state
        if state not in TRANSITIONS[previous]:
            log.warning("deployment %s: unexpected transition %s -> %s", dep, previous, state)
        self._sink.emit(
            DeploymentStateChanged(
                source=self._source,
                correlationid=desired.command_id,
                subject=dep,
                data=DeploymentStateData(
                    deployment_id=dep,
                    application=desired.release.application,
                    release_version=desired.release.version,
                    state=state,
                    previous_state=previous,
                    reason=clip(reason) if reason else None,
                    error=error,
                ),
            )
        )

    def progress(self, desired: DesiredDeployment, step: str, detail: str) -> None:
        """Report one step of the command in flight (nothing when no command is)."""
        if desired.command_id is None:
            return
        self._sink.emit(
            CommandProgress(
                source=self._source,
                correlationid=desired.command_id,
                subject=desired.deployment_id,
                data=CommandProgressData(
                    command_id=desired.command_id,
                    command_type=desired.command_type,
                    step=step,
                    detail=clip(detail),
                ),
            )
        )

    def succeeded(self, desired: DesiredDeployment) -> None:
        """Answer the command in flight with success."""
        if desired.command_id is None:
            return
        self._sink.emit(
            CommandSucceeded(
                source=self._source,
                correlationid=desired.command_id,
                subject=desired.deployment_id,
                data=CommandSucceededData(
                    command_id=desired.command_id, command_type=desired.command_type
                ),
            )
        )

    def failed(self, desired: DesiredDeployment, code: str, message: str) -> None:
        """Answer the command in flight with a typed error."""
        if desired.command_id is None:
            return
        self._sink.emit(
            CommandFailed(
                source=self._source,
                correlationid=desired.command_id,
                subject=desired.deployment_id,
                data=CommandFailedData(
                    command_id=desired.command_id,
                    command_type=desired.command_type,
                    error=ErrorInfo(code=code, message=clip(message)),
                ),
            )
        )

    def container(self, c: ObservedContainer) -> None:
        """Report a container's status, health, exit code, restart count and image."""
        self._sink.emit(
            ContainerStateChanged(
                source=self._source,
                subject=c.deployment_id,
                data=ContainerStateData(
                    deployment_id=c.deployment_id,
                    release_version=c.release or "unknown",
                    name=c.container or c.name,
                    container_id=c.id[:64] or None,
                    image=c.image or "unknown",
                    image_id=c.image_id or None,
                    status=c.status,
                    health=c.health,
                    exit_code=c.exit_code,
                    restart_count=c.restart_count,
                ),
            )
        )
