"""Every DesiredStateStore passes one contract: the agent's SQLite store and the in-memory one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.tests.contracts.desired_state_store import DesiredStateStoreContract
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.edge.ports import DesiredStateStore
from fleetwire.edge.store import Store


class TestMemoryDesiredStateStore(DesiredStateStoreContract):
    @pytest.fixture
    def desired_store(self) -> DesiredStateStore:
        return MemoryDesiredStateStore()


class TestSqliteStore(DesiredStateStoreContract):
    @pytest.fixture
    def desired_store(self, tmp_path: Path) -> Iterator[DesiredStateStore]:
        store = Store.open(tmp_path)
        yield store
        store.close()
