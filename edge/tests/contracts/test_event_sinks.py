"""Every EventSink passes one contract: the agent's outbox, the tests' list sink, the CLI's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.tests.contracts.event_sink import DEVICE, EventSinkContract, SinkUnderTest
from edge.tests.engine.support import ListSink
from fleetwire.edge.cli import _DiscardSink
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.store import Store
from fleetwire.protocol.codec import decode
from fleetwire.protocol.events import DeviceEvent


class TestOutbox(EventSinkContract):
    @pytest.fixture
    def sink_under_test(self, tmp_path: Path) -> Iterator[SinkUnderTest]:
        store = Store.open(tmp_path)

        def kept() -> list[DeviceEvent]:
            events = [decode(r.payload) for r in store.pending(0, 10_000)]
            assert all(isinstance(e, DeviceEvent) for e in events)
            return [e for e in events if isinstance(e, DeviceEvent)]

        yield SinkUnderTest(Outbox(store, DEVICE), kept)
        store.close()


class TestListSink(EventSinkContract):
    @pytest.fixture
    def sink_under_test(self) -> SinkUnderTest:
        sink = ListSink()
        return SinkUnderTest(sink, sink.snapshot)


class TestStatusCommandSink(EventSinkContract):
    """``fleetwire-edge status`` only reads: its sink drops every event, and must not fail."""

    @pytest.fixture
    def sink_under_test(self) -> SinkUnderTest:
        return SinkUnderTest(_DiscardSink(), lambda: None)
