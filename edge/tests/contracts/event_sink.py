"""The contract of :class:`~fleetwire.edge.ports.EventSink`, for every adapter and fake.

Subclass :class:`EventSinkContract` as ``Test<Adapter>`` and give it a ``sink_under_test``
fixture: the sink and a function returning what it kept, in emit order (or ``None`` for a sink
that drops events by design, such as the CLI's).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from fleetwire.edge.ports import EventSink
from fleetwire.protocol.envelope import device_source
from fleetwire.protocol.events import (
    CommandSucceeded,
    CommandSucceededData,
    ContainerStateChanged,
    ContainerStateData,
    ContainerStatus,
    DeviceEvent,
)

DEVICE = "contract-device"


@dataclass
class SinkUnderTest:
    sink: EventSink
    kept: Callable[[], list[DeviceEvent] | None]


def succeeded(command_id: str) -> CommandSucceeded:
    """An event as the reconciler emits it: no ``seq``, the device's source."""
    return CommandSucceeded(
        source=device_source(DEVICE),
        correlationid=command_id,
        data=CommandSucceededData(command_id=command_id),
    )


class EventSinkContract:
    """What the reconciler relies on from an event sink."""

    @pytest.fixture
    def sink_under_test(self) -> SinkUnderTest:
        raise NotImplementedError

    def test_an_emitted_event_is_kept_as_it_was(self, sink_under_test: SinkUnderTest) -> None:
        event = ContainerStateChanged(
            source=device_source(DEVICE),
            data=ContainerStateData(
                name="web",
                image="registry.example.com/web:1.0.0",
                status=ContainerStatus.RUNNING,
                deployment_id="dep-1",
                release_version="1.0.0",
            ),
        )
        assert event.seq is None
        sink_under_test.sink.emit(event)
        kept = sink_under_test.kept()
        if kept is None:
            return
        (got,) = kept
        assert (got.id, got.type, got.source, got.data) == (
            event.id,
            event.type,
            event.source,
            event.data,
        )

    def test_events_are_kept_in_emit_order(self, sink_under_test: SinkUnderTest) -> None:
        events = [succeeded(f"cmd-{i:02d}") for i in range(20)]
        for event in events:
            sink_under_test.sink.emit(event)
        kept = sink_under_test.kept()
        if kept is not None:
            assert [e.id for e in kept] == [e.id for e in events]

    def test_emit_is_thread_safe(self, sink_under_test: SinkUnderTest) -> None:
        errors: list[BaseException] = []
        emitted: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(4, timeout=10)

        def emit_many(worker: int) -> None:
            try:
                start.wait()
                for i in range(25):
                    event = succeeded(f"cmd-{worker}-{i:02d}")
                    sink_under_test.sink.emit(event)
                    with lock:
                        emitted.append(event.id)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=emit_many, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert errors == []
        kept = sink_under_test.kept()
        if kept is not None:
            assert sorted(e.id for e in kept) == sorted(emitted)
