"""Container state events from the engine's event stream, coalesced and rate-limited.

A reader thread follows ``docker events`` for the containers of one device (the engine filters
on ``io.fleetwire.device``, and the reporter checks the label again); a second thread inspects each
touched container and reports it only when ``(status, health, exit code, restart count)``
changed, at most once per container per ``min_interval_s`` (the latest state wins), so a crash
looping container cannot flood the link.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from fleetwire.edge.engine import labels as lb
from fleetwire.edge.engine.observed import ObservedContainer, container_from_attrs
from fleetwire.protocol.events import ContainerStatus

log = logging.getLogger(__name__)

_STATE_ACTIONS = frozenset(
    {"create", "start", "restart", "die", "stop", "kill", "oom", "pause", "unpause", "destroy"}
)


@dataclass
class _Slot:
    key: tuple[object, ...] | None = None
    emitted_at: float = float("-inf")
    pending: ObservedContainer | None = None


def state_key(c: ObservedContainer) -> tuple[object, ...]:
    """What makes a container state worth reporting."""
    return (c.status, c.health, c.exit_code, c.restart_count)


class Coalescer:
    """Per-container coalescing and rate limiting; pure bookkeeping, clock injected."""

    def __init__(
        self,
        emit: Callable[[ObservedContainer], None],
        *,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._min = min_interval_s
        self._clock = clock
        self._slots: dict[str, _Slot] = {}

    def offer(self, c: ObservedContainer) -> None:
        """Record the newest state of a container and emit it if allowed."""
        slot = self._slots.setdefault(c.id, _Slot())
        slot.pending = None if state_key(c) == slot.key else c
        self.flush()

    def flush(self) -> None:
        """Emit every pending state whose container is out of its quiet interval."""
        now = self._clock()
        for cid, slot in list(self._slots.items()):
            c = slot.pending
            if c is None or now - slot.emitted_at < self._min:
                continue
            slot.key, slot.emitted_at, slot.pending = state_key(c), now, None
            try:
                self._emit(c)
            except Exception:
                log.exception("reporting container %s failed", c.name)
            if c.status is ContainerStatus.MISSING:
                del self._slots[cid]


class ContainerWatcher:
    """Follows the engine's events for the containers of ``device_id`` and reports changes."""

    def __init__(
        self,
        client: docker.DockerClient,
        emit: Callable[[ObservedContainer], None],
        *,
        device_id: str,
        min_interval_s: float = 1.0,
        retry_s: float = 2.0,
    ) -> None:
        self._client = client
        self._device_id = device_id
        self._coalescer = Coalescer(emit, min_interval_s=min_interval_s)
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stopping = threading.Event()
        self._retry_s = retry_s
        # Guards the hand-over of the stream between the reader and stop(): a stream opened
        # while stopping is closed by whoever sees the other's step second.
        self._stream_lock = threading.Lock()
        self._stream: Any = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the reader and the reporter threads."""
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._read, name="fw-engine-events", daemon=True),
            threading.Thread(target=self._report, name="fw-engine-states", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop following events; joins both threads within ``timeout_s``."""
        with self._stream_lock:
            self._stopping.set()
            stream, self._stream = self._stream, None
        if stream is not None:
            _close(stream)
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _read(self) -> None:
        while not self._stopping.is_set():
            try:
                stream = self._client.events(
                    decode=True,
                    filters={"label": lb.scope_filter(self._device_id), "type": ["container"]},
                )
                with self._stream_lock:
                    if self._stopping.is_set():  # stop() came while the stream was opening
                        _close(stream)
                        return
                    self._stream = stream
                try:
                    for event in stream:
                        self._queue.put(event)
                        if self._stopping.is_set():
                            break
                finally:
                    _close(stream)
            except Exception:  # noqa: BLE001 - the engine may restart; follow it again
                if not self._stopping.is_set():
                    log.warning("engine event stream lost; retrying in %ss", self._retry_s)
            self._stopping.wait(self._retry_s)

    def _report(self) -> None:
        while not self._stopping.is_set():
            try:
                event = self._queue.get(timeout=0.2)
            except queue.Empty:
                self._coalescer.flush()
                continue
            action = str(event.get("Action") or event.get("status") or "").split(":")[0]
            if action in _STATE_ACTIONS or action.startswith("health_status"):
                observed = self._inspect(event, action)
                if observed is not None and observed.device_id == self._device_id:
                    self._coalescer.offer(observed)

    def _inspect(self, event: dict[str, Any], action: str) -> ObservedContainer | None:
        cid = str(event.get("id") or (event.get("Actor") or {}).get("ID") or "")
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        if action != "destroy":
            try:
                return container_from_attrs(self._client.api.inspect_container(cid))
            except docker.errors.NotFound:
                pass
            except Exception:
                log.debug("inspect %s failed", cid, exc_info=True)
                return None
        return ObservedContainer(
            id=cid,
            name=str(attrs.get("name", "")),
            deployment_id=str(attrs.get(lb.DEPLOYMENT, "")),
            container=str(attrs.get(lb.CONTAINER, "")),
            release=str(attrs.get(lb.RELEASE, "")),
            spec_hash=str(attrs.get(lb.SPEC_HASH, "")),
            generation=0,
            spec=None,
            status=ContainerStatus.MISSING,
            image=str(attrs.get("image", "")),
            device_id=str(attrs.get(lb.DEVICE, "")),
        )


def _close(stream: Any) -> None:
    """Close an event stream and its response (twice is harmless).

    The SDK's ``CancellableStream.close`` shuts the socket down to wake the reader, but the
    socket's descriptor stays open while the response's file object refers to it: closing the
    response too frees it now instead of whenever the garbage collector gets there.
    """
    try:
        stream.close()
    except Exception:  # already broken or closed: nothing is left to free
        log.debug("closing the event stream failed", exc_info=True)
    response = getattr(stream, "_response", None)
    if response is not None:
        response.close()
