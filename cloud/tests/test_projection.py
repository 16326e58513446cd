"""The pure projection: ordering, duplicates, gaps, inventory reconciliation."""

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.tests.support import accepted, birth, container_state, dep_state, inventory, succeeded
from fleetwire.cloud.admission import admit, apply_device
from fleetwire.cloud.command_status import CommandStatus
from fleetwire.cloud.device_view import CommandRow, DeploymentRow, DeviceRow, DeviceView
from fleetwire.protocol.envelope import FIRST_SEQ, EventEnvelope
from fleetwire.protocol.events import PresenceDeath, PresenceDeathData

D = "dev-1"
S = FIRST_SEQ  # a device's first event


def run(
    events: list[Any], view: Any = None, next_seq: int | None = None, held: Any = None
) -> tuple[DeviceView, int | None, dict[int, EventEnvelope]]:
    """Admit and project ``events`` in arrival order; returns (view, next_seq, held)."""
    view = view or DeviceView(
        device=DeviceRow(id=D), commands={"c1": CommandRow("c1", D, CommandStatus.SENT)}
    )
    if next_seq is not None:
        view = replace(view, device=replace(view.device, next_seq=next_seq))
    outcome = apply_device(view, dict(held or {}), events, set())
    return outcome.view, outcome.view.device.next_seq, dict(outcome.held)


def test_in_order_events_are_ready_at_once():
    e0 = dep_state(D, S, "x", "pending")
    adm = admit(None, {}, e0)
    assert adm.ready == (e0,)
    assert adm.next_seq == S + 1
    e1 = dep_state(D, S + 1, "x", "running")
    assert admit(S + 1, {}, e1).ready == (e1,)


def test_a_new_device_starts_at_first_seq():
    assert FIRST_SEQ == 1  # the edge agent's outbox numbers from 1 too
    # Seq 1 of a never-seen device is ready at once, not held as a gap.
    first = dep_state(D, 1, "x", "pending")
    assert admit(None, {}, first).ready == (first,)
    # Seq 2 of a never-seen device waits for seq 1.
    second = dep_state(D, 2, "x", "running")
    adm = admit(None, {}, second)
    assert adm.ready == ()
    assert set(adm.held) == {2}
    assert admit(adm.next_seq, adm.held, first).ready == (first, second)


def test_duplicate_seq_is_dropped():
    e = dep_state(D, 3, "x")
    assert admit(4, {}, e).duplicate
    assert admit(2, {3: e}, dep_state(D, 3, "x")).duplicate


def test_out_of_order_is_held_until_the_gap_fills():
    e1, e2, e3 = (dep_state(D, i, "x") for i in (1, 2, 3))
    adm = admit(1, {}, e3)
    assert adm.ready == ()
    assert set(adm.held) == {3}
    adm = admit(adm.next_seq, adm.held, e2)
    assert adm.ready == ()
    adm = admit(adm.next_seq, adm.held, e1)
    assert adm.ready == (e1, e2, e3)
    assert adm.next_seq == 4
    assert adm.held == {}


def test_inventory_resets_the_sequence_after_applying_older_held_events():
    c = accepted(D, 5, "c1")
    late = dep_state(D, 9, "x")
    inv = inventory(D, 7, {"x": ["web"]})
    adm = admit(2, {5: c, 9: late}, inv)
    assert adm.ready == (c, inv)
    assert adm.next_seq == 8
    assert set(adm.held) == {9}
    assert admit(2, {}, inventory(D, 1, {})).duplicate


def test_late_command_outcome_still_counts():
    view, next_seq, _ = run([inventory(D, 10, {}), succeeded(D, 4, "c1")])
    assert next_seq == 11
    assert view.commands["c1"].status == "succeeded"


def test_apply_device_counts_duplicates_and_takes_each_new_event_once():
    e0, e1, e2 = (dep_state(D, S + i, "x") for i in range(3))
    stored = dep_state(D, S + 5, "x")
    view = DeviceView(device=DeviceRow(id=D))
    outcome = apply_device(view, {}, [e0, e0, e2, stored, e1], seen={stored.id})
    assert outcome.applied == (e0, e1, e2)  # e2 held until e1 came, then released
    assert outcome.duplicates == 2  # the second e0 (by id) and the one already stored
    assert outcome.taken == {e0.id, e1.id, e2.id}
    assert outcome.held == {}
    assert outcome.view.device.next_seq == S + 3
    # Behind the sequence: taken (a new id) but dropped as a duplicate by seq.
    again = dep_state(D, S + 1, "x", "error")
    late = apply_device(outcome.view, outcome.held, [again], seen=outcome.taken)
    assert (late.applied, late.duplicates, late.taken) == ((), 1, frozenset({again.id}))


def test_apply_device_holds_what_is_ahead_and_leaves_the_view_alone():
    ahead = dep_state(D, S + 2, "x")
    view = DeviceView(device=DeviceRow(id=D, next_seq=S))
    outcome = apply_device(view, {}, [ahead], seen=set())
    assert outcome.applied == ()
    assert outcome.held == {S + 2: ahead}
    assert outcome.view == view


def test_presence_birth_and_death():
    b = birth(D, system_model="rpi4")
    view, _, _ = run([b])
    assert view.device.online
    assert view.device.agent_version == "0.1.0"
    assert view.device.reported_system_model == "rpi4"
    assert view.device.last_seen == b.time
    death = PresenceDeath(source=b.source, data=PresenceDeathData())
    view, _, _ = run([death], view=view)
    assert not view.device.online
    # An older birth delivered late does not bring the device back online.
    view, _, _ = run([b], view=view)
    assert not view.device.online


def test_command_status_only_moves_forward():
    view, _, _ = run([succeeded(D, S, "c1"), accepted(D, S + 1, "c1")])
    assert view.commands["c1"].status == "succeeded"
    view, _, _ = run([accepted(D, S, "c1")])
    assert view.commands["c1"].status == "accepted"
    view, _, _ = run([accepted(D, S, "unknown")])
    assert "unknown" not in view.commands


def test_deployment_and_container_state():
    view, _, _ = run(
        [
            dep_state(D, S, "x", "pulling"),
            dep_state(D, S + 1, "x", "running", version="1.0.0"),
            container_state(D, S + 2, "x", status="running"),
            dep_state(D, S + 3, "x", "upgrading", version="1.1.0"),
        ]
    )
    dep = view.deployments["x"]
    assert dep.state == "upgrading"
    assert dep.current_version == "1.0.0"
    assert view.containers[("x", "web")].status == "running"
    assert view.containers[("x", "web")].health == "healthy"
    view, _, _ = run([dep_state(D, S + 4, "x", "deleted")], view=view, next_seq=S + 4)
    assert view.deployments["x"].gone
    assert view.containers[("x", "web")].gone


def test_inventory_reconciles_to_the_device_truth():
    base = DeviceView(
        device=DeviceRow(id=D),
        deployments={
            "known": DeploymentRow("known", D, "thermo", state="running", reported=True),
            "not-yet": DeploymentRow("not-yet", D, "thermo"),  # its deploy is still on the way
        },
    )
    view, _, _ = run(
        [
            dep_state(D, S, "known", "running"),
            container_state(D, S + 1, "known", name="web"),
            container_state(D, S + 2, "known", name="old"),
            inventory(D, S + 3, {"other": ["db"], "known": ["web"]}),
        ],
        view=base,
    )
    assert view.deployments["known"].gone is False
    assert view.containers[("known", "old")].gone is True
    assert view.containers[("known", "web")].gone is False
    assert view.deployments["other"].state == "running"
    assert view.containers[("other", "db")].status == "running"
    assert view.deployments["not-yet"].gone is False
    view, _, _ = run([inventory(D, S + 4, {"other": ["db"]})], view=view, next_seq=S + 4)
    assert view.deployments["known"].gone is True
    assert view.containers[("known", "web")].gone is True


def _stream() -> list[EventEnvelope]:
    events: list[EventEnvelope] = [birth(D)]
    seq = S
    for i in range(4):
        dep = f"dep-{i % 2}"
        for state in ("pulling", "running"):
            events.append(dep_state(D, seq, dep, state))
            seq += 1
        events.append(container_state(D, seq, dep, name=f"c{i}"))
        seq += 1
    events.append(accepted(D, seq, "c1"))
    events.append(succeeded(D, seq + 1, "c1"))
    events.append(dep_state(D, seq + 2, "dep-0", "stopped"))
    return events


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_shuffled_stream_with_duplicates_projects_like_the_clean_stream(data):
    clean = _stream()
    expected, expected_seq, _ = run(clean)
    dupes = data.draw(st.lists(st.sampled_from(clean), max_size=10))
    noisy = data.draw(st.permutations(clean + dupes))
    got, got_seq, held = run(noisy)
    assert held == {}
    assert got_seq == expected_seq
    # last_seen is a max over times, so equal; presence and every row must match exactly.
    assert got == replace(expected)
