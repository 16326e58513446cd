"""The SQLite store: WAL, seq across restarts, replay order, compaction, desired-state port."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from edge.tests.agent_support import DEVICE, TRACEPARENT, FakeReconciler, deploy, release
from fleetwire.edge.errors import StoreError
from fleetwire.edge.handler import CommandHandler
from fleetwire.edge.journal import CommandStatus, JournalEntry, redacted_command_json
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.ports import DesiredDeployment, DesiredStateStore, TargetState
from fleetwire.edge.store import Store
from fleetwire.protocol.codec import decode, encode
from fleetwire.protocol.envelope import device_source, utcnow
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandAcceptedData,
    CommandFailed,
    CommandFailedData,
    CommandSucceeded,
    CommandSucceededData,
    ContainerStateChanged,
    ErrorInfo,
)


def succeeded(n: int) -> CommandSucceeded:
    return CommandSucceeded(
        source=device_source(DEVICE), data=CommandSucceededData(command_id=f"c-{n}")
    )


def test_wal_and_synchronous_full(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == "2"  # FULL
    store.close()


def test_desired_state_port(tmp_path: Path) -> None:
    store: DesiredStateStore = Store.open(tmp_path)
    d = DesiredDeployment(deployment_id="b", release=release())
    store.put(d)
    store.put(DesiredDeployment(deployment_id="a", release=release(), target=TargetState.STOPPED))
    assert store.get("b") == d
    assert [x.deployment_id for x in store.all()] == ["a", "b"]
    store.remove("a")
    assert store.get("a") is None
    assert isinstance(store, Store)
    store.close()


def test_seq_is_monotonic_across_restarts_and_acks(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    seqs = [store.append(succeeded(i)).seq for i in range(5)]
    store.ack_many([1, 2, 3, 4, 5])
    store.close()
    store = Store.open(tmp_path)
    seqs += [store.append(succeeded(i)).seq for i in range(5, 8)]
    assert seqs == list(range(1, 9))
    store.close()


def test_pending_replays_in_seq_order_after_restart(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    for i in range(10):
        store.append(succeeded(i))
    store.ack(3)
    store.ack(7)
    store.close()
    store = Store.open(tmp_path)
    records = store.pending(0, 100)
    assert [r.seq for r in records] == [1, 2, 4, 5, 6, 8, 9, 10]
    assert [r.seq for r in store.pending(5, 2)] == [6, 8]
    event = decode(records[0].payload)
    assert isinstance(event, CommandSucceeded)
    assert event.seq == 1
    assert store.outbox_size() == 8
    store.close()


def test_compaction_drops_only_superseded_container_states(tmp_path: Path) -> None:
    store = Store.open(tmp_path, outbox_limit=100)
    outbox = Outbox(store, DEVICE)
    fake = FakeReconciler(store, outbox)
    for i in range(60):
        fake.emit_container(i, container="web")
        fake.emit_container(i, container="db")
        outbox.emit(succeeded(i))
        outbox.emit(
            CommandFailed(
                source=device_source(DEVICE),
                data=CommandFailedData(command_id=f"f-{i}", error=ErrorInfo(code="x", message="y")),
            )
        )
    events = [decode(r.payload) for r in store.pending(0, 10_000)]
    outcomes = [e for e in events if isinstance(e, CommandSucceeded | CommandFailed)]
    assert len(outcomes) == 120, "command outcomes are never compacted"
    containers = [e for e in events if isinstance(e, ContainerStateChanged)]
    latest = {(e.data.name, e.data.restart_count) for e in containers}
    assert ("web", 59) in latest
    assert ("db", 59) in latest
    assert len(containers) < 120
    seqs = [int(getattr(e, "seq", 0)) for e in events]
    assert seqs == sorted(seqs)
    store.close()


def test_emit_is_thread_safe(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    outbox = Outbox(store, DEVICE)

    def work(k: int) -> None:
        for i in range(50):
            outbox.emit(succeeded(k * 100 + i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [r.seq for r in store.pending(0, 1000)] == list(range(1, 201))
    store.close()


def test_outbox_sets_source_and_trace_from_the_journal(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    outbox = Outbox(store, DEVICE)
    fake = FakeReconciler(store, outbox, auto_succeed=False)
    handler = CommandHandler(device_id=DEVICE, outbox=outbox, desired=store, reconciler=fake)
    command = deploy()
    handler.handle(encode(command))
    outbox.emit(
        CommandSucceeded(
            source="fleetwire://devices/elsewhere",
            data=CommandSucceededData(command_id=command.id),
        )
    )
    last = decode(store.pending(0, 10)[-1].payload)
    assert isinstance(last, CommandSucceeded)
    assert last.source == device_source(DEVICE)
    assert last.traceparent == TRACEPARENT
    assert last.correlationid == command.id
    store.close()


def test_a_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    command = deploy()
    entry = JournalEntry(
        command_id=command.id,
        command_type=command.type,
        received_at=utcnow(),
        status=CommandStatus.ACCEPTED,
        command_json=redacted_command_json(command),
    )
    store.record_command(entry, succeeded(1))
    with pytest.raises(StoreError):
        store.record_command(entry, succeeded(2))  # same command id: the journal refuses it
    assert store.outbox_size() == 1
    assert store.next_seq() == 2
    store.close()


def test_prune_journal_keeps_recent_and_in_progress(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    now = utcnow()
    for n, (age_days, status) in enumerate(
        [(100, CommandStatus.SUCCEEDED), (100, CommandStatus.ACCEPTED), (1, CommandStatus.FAILED)]
    ):
        command = deploy(f"dep-{n}")
        entry = JournalEntry(
            command_id=command.id,
            command_type=command.type,
            received_at=now - timedelta(days=age_days),
            status=status,
            command_json=redacted_command_json(command),
        )
        store.record_command(
            entry,
            succeeded(n)
            if status is not CommandStatus.ACCEPTED
            else CommandAccepted(
                source=device_source(DEVICE), data=CommandAcceptedData(command_id=command.id)
            ),
        )
    assert store.prune_journal(now - timedelta(days=90)) == 1
    assert sorted(e.status for e in store.journal()) == ["accepted", "failed"]
    store.close()
