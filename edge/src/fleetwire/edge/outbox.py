"""The agent's event sink: every event is stored with its ``seq`` before it is published.

:class:`Outbox` is the :class:`~fleetwire.edge.ports.EventSink` the reconciler reports to. ``emit``
writes to SQLite and wakes the publisher; it never touches the network, so it never blocks on
it. Events that answer a journaled command get that command's trace context and update its
journal row (same transaction as the outbox insert).
"""

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from fleetwire.edge.errors import StoreError
from fleetwire.edge.journal import JournalEntry
from fleetwire.edge.ports import DesiredDeployment
from fleetwire.edge.store import Store
from fleetwire.protocol.envelope import device_source
from fleetwire.protocol.errors import ProtocolError
from fleetwire.protocol.events import DeviceEvent

log = logging.getLogger(__name__)

E = TypeVar("E", bound=DeviceEvent)


class Outbox:
    """Stores events (``ports.EventSink``) and tells the publisher there is work."""

    def __init__(self, store: Store, device_id: str) -> None:
        self.store = store
        self.device_id = device_id
        self.source = device_source(device_id)
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add_listener(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (cheap, non-blocking) after every stored event."""
        with self._lock:
            self._listeners.append(wake)

    def _wake(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for wake in listeners:
            wake()

    def _prepare(self, event: E) -> E:
        update: dict[str, object] = {}
        if event.source != self.source:
            update["source"] = self.source
        command_id = event.correlationid or getattr(event.data, "command_id", None)
        if command_id is not None:
            if event.correlationid is None:
                update["correlationid"] = command_id
            if event.traceparent is None:
                entry = self.store.journal_get(command_id)
                if entry is not None and entry.traceparent is not None:
                    update["traceparent"] = entry.traceparent
                    update["tracestate"] = entry.tracestate
        return event.model_copy(update=update) if update else event

    def emit(self, event: DeviceEvent) -> None:
        """Give ``event`` its ``seq``, store it and wake the publisher (thread-safe).

        A store failure or an event the codec refuses (over the size limit) is logged, not
        raised: the reconciler must keep running.
        """
        try:
            stamped = self.store.append(self._prepare(event))
        except (StoreError, ProtocolError):
            log.exception("could not queue %s", event.type, extra={"device_id": self.device_id})
            return
        log.debug(
            "queued %s seq=%s",
            stamped.type,
            stamped.seq,
            extra={"device_id": self.device_id, "command_id": stamped.correlationid},
        )
        self._wake()

    def append(self, event: E) -> E:
        """Like :meth:`emit` but raising on failure and returning the stamped event."""
        stamped = self.store.append(self._prepare(event))
        self._wake()
        return stamped

    def record_command(
        self, entry: JournalEntry, outcome: E, desired: DesiredDeployment | None = None
    ) -> E:
        """Journal a command with its first outcome (and desired state) in one transaction."""
        stamped = self.store.record_command(entry, self._prepare_new(outcome, entry), desired)
        self._wake()
        return stamped

    def _prepare_new(self, event: E, entry: JournalEntry) -> E:
        # The journal row does not exist yet: take the trace context from the entry itself.
        update: dict[str, object] = {"source": self.source, "correlationid": entry.command_id}
        if event.traceparent is None and entry.traceparent is not None:
            update["traceparent"] = entry.traceparent
            update["tracestate"] = entry.tracestate
        return event.model_copy(update=update)
