"""Command handling without a broker: journal, desired state, outcomes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from edge.tests.agent_support import (
    DEVICE,
    SECRET,
    TRACEPARENT,
    FakeReconciler,
    deploy,
    expired,
    release,
    simple,
    upgrade,
)
from fleetwire.edge.handler import (
    UNKNOWN_COMMAND_ID,
    CommandHandler,
    Disposition,
    Rejection,
    decide_command,
)
from fleetwire.edge.journal import CommandStatus
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.ports import DesiredDeployment, TargetState
from fleetwire.edge.store import Store
from fleetwire.protocol.codec import decode, encode
from fleetwire.protocol.commands import RegistryCredential
from fleetwire.protocol.envelope import CommandEnvelope
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandAcceptedData,
    CommandFailed,
    CommandRejected,
    CommandSucceeded,
    DeviceEvent,
    Inventory,
    RejectReason,
)


class Harness:
    def __init__(self, tmp_path: Path, *, auto_succeed: bool = True) -> None:
        self.store = Store.open(tmp_path)
        self.outbox = Outbox(self.store, DEVICE)
        self.reconciler = FakeReconciler(self.store, self.outbox, auto_succeed=auto_succeed)
        self.handler = CommandHandler(
            device_id=DEVICE, outbox=self.outbox, desired=self.store, reconciler=self.reconciler
        )

    def send(self, command: CommandEnvelope | bytes):
        payload = command if isinstance(command, bytes) else encode(command)
        return self.handler.handle(payload)

    def published(self) -> list[DeviceEvent]:
        out = []
        for record in self.store.pending(0, 10_000):
            event = decode(record.payload)
            assert isinstance(event, DeviceEvent)
            out.append(event)
        return out


@pytest.fixture
def h(tmp_path: Path):
    harness = Harness(tmp_path)
    yield harness
    harness.store.close()


def test_deploy_accepts_sets_desired_and_submits_with_credentials(h: Harness) -> None:
    command = deploy()
    result = h.send(command)
    assert result.disposition is Disposition.ACCEPTED
    desired = h.store.get("dep-1")
    assert desired is not None
    assert desired.target is TargetState.RUNNING
    assert desired.release == release("1.0.0")
    assert desired.command_id == command.id
    assert desired.command_type == command.type
    assert [d for d, _ in h.reconciler.submits] == ["dep-1"]
    assert h.reconciler.submits[0][1][0].password.get_secret_value() == SECRET
    events = h.published()
    assert [type(e) for e in events] == [CommandAccepted, CommandSucceeded]
    assert [e.seq for e in events] == [1, 2]
    assert all(e.correlationid == command.id for e in events)
    assert all(e.traceparent == TRACEPARENT for e in events), "trace context is carried"
    entry = h.store.journal_get(command.id)
    assert entry is not None
    assert entry.status is CommandStatus.SUCCEEDED
    assert entry.deployment_id == "dep-1"


def test_journal_never_holds_the_registry_password(h: Harness) -> None:
    h.send(deploy())
    entry = h.store.journal()[0]
    assert SECRET not in entry.command_json
    assert json.loads(entry.command_json)["data"]["credentials"][0]["password"] == "<redacted>"
    assert SECRET not in repr(entry)


@pytest.mark.parametrize(
    ("kind", "target", "generation"),
    [
        ("start", TargetState.RUNNING, 0),
        ("stop", TargetState.STOPPED, 0),
        ("redeploy", TargetState.RUNNING, 1),
        ("delete", TargetState.DELETED, 0),
    ],
)
def test_deployment_commands_set_the_target(
    h: Harness, kind: str, target: TargetState, generation: int
) -> None:
    h.send(deploy())
    command = simple(kind)
    result = h.send(command)
    assert result.disposition is Disposition.ACCEPTED
    desired = h.store.get("dep-1")
    assert desired is not None
    assert desired.target is target
    assert desired.generation == generation
    assert desired.command_id == command.id
    assert desired.command_type == command.type
    assert len(h.reconciler.submits) == 2


def test_delete_with_purge(h: Harness) -> None:
    h.send(deploy())
    h.send(simple("delete", purge_volumes=True))
    desired = h.store.get("dep-1")
    assert desired is not None
    assert desired.purge_volumes


def test_upgrade_keeps_the_old_release_for_rollback(h: Harness) -> None:
    h.send(deploy())
    result = h.send(upgrade(version="2.0.0"))
    assert result.disposition is Disposition.ACCEPTED
    desired = h.store.get("dep-1")
    assert desired is not None
    assert desired.release.version == "2.0.0"
    assert desired.previous_release == release("1.0.0")
    assert desired.health_timeout_s == 30
    assert h.reconciler.submits[-1][1][0].username == "puller"


def test_upgrade_to_another_application_is_invalid(h: Harness) -> None:
    h.send(deploy())
    result = h.send(upgrade(app="other"))
    assert result.disposition is Disposition.REJECTED
    event = result.events[0]
    assert isinstance(event, CommandRejected)
    assert event.data.reason is RejectReason.INVALID
    assert len(h.reconciler.submits) == 1


def test_deploy_of_existing_id_with_other_release_is_a_conflict(h: Harness) -> None:
    h.send(deploy())
    result = h.send(deploy(version="1.1.0"))
    event = result.events[0]
    assert isinstance(event, CommandRejected)
    assert event.data.reason is RejectReason.CONFLICT
    desired = h.store.get("dep-1")
    assert desired is not None
    assert desired.release.version == "1.0.0"


def test_deploy_of_same_release_again_is_accepted(h: Harness) -> None:
    h.send(deploy())
    assert h.send(deploy()).disposition is Disposition.ACCEPTED


@pytest.mark.parametrize("kind", ["start", "stop", "redeploy", "delete"])
def test_unknown_deployment(h: Harness, kind: str) -> None:
    result = h.send(simple(kind, "nope"))
    event = result.events[0]
    assert isinstance(event, CommandRejected)
    assert event.data.reason is RejectReason.UNKNOWN_DEPLOYMENT
    assert h.reconciler.submits == []
    entry = h.store.journal_get(result.command_id)
    assert entry is not None
    assert entry.status is CommandStatus.REJECTED


def test_upgrade_of_unknown_deployment(h: Harness) -> None:
    event = h.send(upgrade("nope")).events[0]
    assert isinstance(event, CommandRejected)
    assert event.data.reason is RejectReason.UNKNOWN_DEPLOYMENT


def test_expired_command_is_rejected_and_not_executed(h: Harness) -> None:
    result = h.send(expired(deploy()))
    event = result.events[0]
    assert isinstance(event, CommandRejected)
    assert event.data.reason is RejectReason.EXPIRED
    assert h.store.get("dep-1") is None
    assert h.reconciler.submits == []


def test_duplicate_is_not_executed_and_its_outcome_is_republished(h: Harness) -> None:
    command = deploy()
    h.send(command)
    before = h.published()
    again = h.send(command)
    assert again.disposition is Disposition.DUPLICATE
    assert len(h.reconciler.submits) == 1
    after = h.published()
    assert len(after) == len(before) + 1
    replay = after[-1]
    original = before[-1]
    assert isinstance(replay, CommandSucceeded)
    assert replay.data == original.data
    assert replay.seq == original.seq + 1 if original.seq is not None else False
    assert replay.id != original.id
    assert replay.correlationid == command.id


def test_duplicate_of_a_rejected_command_republishes_the_rejection(h: Harness) -> None:
    command = simple("stop", "nope")
    first = h.send(command).events[0]
    second = h.send(command).events[0]
    assert isinstance(second, CommandRejected)
    assert second.data == first.data


def test_duplicate_while_in_progress_republishes_accepted(tmp_path: Path) -> None:
    h = Harness(tmp_path, auto_succeed=False)
    command = deploy()
    h.send(command)
    again = h.send(command).events[0]
    assert isinstance(again, CommandAccepted)
    assert len(h.store.journal()) == 1, "not executed twice"
    # The reconciler is woken again with the credentials (submit is idempotent): after a crash
    # before the first submit this is the only way the reconciler gets them back.
    assert [d for d, _ in h.reconciler.submits] == ["dep-1", "dep-1"]
    assert h.reconciler.submits[1][1][0].password.get_secret_value() == SECRET
    h.store.close()


@pytest.mark.parametrize(
    ("payload", "reason", "command_id"),
    [
        (b"\xff\xfe not json", RejectReason.INVALID, UNKNOWN_COMMAND_ID),
        (b"[1, 2]", RejectReason.INVALID, UNKNOWN_COMMAND_ID),
        (
            b'{"id": "c-1", "type": "io.fleetwire.command.reboot.v1", "specversion": "1.0"}',
            RejectReason.UNSUPPORTED,
            "c-1",
        ),
        (
            b'{"id": "c-2", "type": "io.fleetwire.command.deploy.v9", "specversion": "1.0"}',
            RejectReason.UNSUPPORTED,
            "c-2",
        ),
        (
            b'{"id": "c-3", "type": "io.fleetwire.command.deploy.v1", "specversion": "1.0",'
            b' "source": "x", "data": {"deployment_id": "d"}}',
            RejectReason.INVALID,
            "c-3",
        ),
        (b'{"id": "bad id with spaces", "type": 3}', RejectReason.INVALID, UNKNOWN_COMMAND_ID),
    ],
)
def test_bad_payloads_are_rejected_never_raised(
    h: Harness, payload: bytes, reason: RejectReason, command_id: str
) -> None:
    result = h.send(payload)
    assert result.disposition is Disposition.REJECTED
    event = result.events[0]
    assert isinstance(event, CommandRejected)
    assert event.data.reason is reason
    assert event.data.command_id == command_id
    assert event.seq is not None


def test_an_event_on_the_command_topic_is_unsupported(h: Harness) -> None:
    event = h.published()  # nothing yet
    assert event == []
    accepted = CommandAccepted(
        source="fleetwire://devices/x", data=CommandAcceptedData(command_id="c")
    )
    result = h.send(encode(accepted))
    rejected = result.events[0]
    assert isinstance(rejected, CommandRejected)
    assert rejected.data.reason is RejectReason.UNSUPPORTED


def test_sync_publishes_inventory_then_succeeded(h: Harness) -> None:
    h.send(deploy())
    command = simple("sync", reason="gap")
    result = h.send(command)
    assert result.disposition is Disposition.SUCCEEDED
    types = [type(e) for e in result.events]
    assert types == [CommandAccepted, Inventory, CommandSucceeded]
    inventory = result.events[1]
    assert isinstance(inventory, Inventory)
    assert [d.deployment_id for d in inventory.data.deployments] == ["dep-1"]
    entry = h.store.journal_get(command.id)
    assert entry is not None
    assert entry.status is CommandStatus.SUCCEEDED


def test_sync_when_the_engine_fails(h: Harness) -> None:
    h.reconciler.fail_inventory = True
    result = h.send(simple("sync"))
    assert isinstance(result.events[-1], CommandFailed)
    entry = h.store.journal_get(result.command_id)
    assert entry is not None
    assert entry.status is CommandStatus.FAILED


def test_decide_command_is_pure_and_rejects_other_system_models() -> None:
    spec = release().model_copy(update={"system_models": ["rpi4-64"]})
    command = deploy().model_copy(
        update={"data": deploy().data.model_copy(update={"release": spec})}
    )
    assert isinstance(decide_command(command, None, "imx8"), Rejection)
    assert isinstance(decide_command(command, None, "rpi4-64"), DesiredDeployment)
    assert isinstance(decide_command(command, None, None), DesiredDeployment)


def test_deploy_after_delete_starts_afresh() -> None:
    gone = DesiredDeployment(
        deployment_id="dep-1", release=release("1.0.0"), target=TargetState.DELETED
    )
    decision = decide_command(deploy(version="3.0.0"), gone)
    assert isinstance(decision, DesiredDeployment)
    assert decision.target is TargetState.RUNNING
    assert decision.release.version == "3.0.0"


class _Crash(BaseException):
    """The process dying (not an error the handler may catch)."""


class CrashingReconciler(FakeReconciler):
    """Dies in ``submit``: after the journal row was committed, before the reconciler woke."""

    def submit(self, deployment_id: str, credentials: Sequence[RegistryCredential] = ()) -> None:
        raise _Crash


def _restarted(h: Harness) -> FakeReconciler:
    """A fresh reconciler and handler on the same store, as after an agent restart."""
    h.reconciler = FakeReconciler(h.store, h.outbox, auto_succeed=False)
    h.handler = CommandHandler(
        device_id=DEVICE, outbox=h.outbox, desired=h.store, reconciler=h.reconciler
    )
    return h.reconciler


@pytest.mark.parametrize("make", [deploy, upgrade], ids=["deploy", "upgrade"])
def test_redelivery_after_a_crash_before_submit_hands_over_the_credentials(
    tmp_path: Path, make
) -> None:
    h = Harness(tmp_path, auto_succeed=False)
    if make is upgrade:
        h.send(deploy(credentials=False))
    command = make()
    h.reconciler = CrashingReconciler(h.store, h.outbox)
    h.handler.reconciler = h.reconciler
    with pytest.raises(_Crash):
        h.send(command)
    entry = h.store.journal_get(command.id)
    assert entry is not None
    assert entry.status is CommandStatus.ACCEPTED
    before = h.published()
    journal_before = h.store.journal()

    reconciler = _restarted(h)
    again = h.send(command)  # the broker redelivers: it was never acknowledged

    assert again.disposition is Disposition.DUPLICATE
    assert [d for d, _ in reconciler.submits] == ["dep-1"]
    credentials = reconciler.submits[0][1]
    assert [c.password.get_secret_value() for c in credentials] == [SECRET]
    journal = [(e.command_id, e.status) for e in h.store.journal()]
    assert journal == [(e.command_id, e.status) for e in journal_before], "not journaled again"
    after = h.published()
    assert len(after) == len(before) + 1
    assert isinstance(after[-1], CommandAccepted), "only the recorded outcome is republished"
    h.store.close()


def test_redelivery_of_a_finished_command_does_not_submit(h: Harness) -> None:
    command = deploy()
    h.send(command)  # the fake reconciler succeeds at once
    reconciler = _restarted(h)
    h.send(command)
    assert reconciler.submits == []


def test_redelivery_of_a_superseded_command_does_not_submit(tmp_path: Path) -> None:
    h = Harness(tmp_path, auto_succeed=False)
    first = deploy()
    h.send(first)
    h.send(upgrade())  # still in flight, first is no longer the desired state's command
    reconciler = _restarted(h)
    h.send(first)
    assert reconciler.submits == []
    h.store.close()
