"""Admission: a device's events put in ``seq`` order, as pure functions (no I/O, no clock).

``admit`` places one event in its device's sequence (duplicates dropped, early events held until
the gap fills, an inventory resets the sequence); ``apply_device`` admits one device's share of a
batch and projects (``fleetwire.cloud.projection.project``) the events that became ready. The
projector (``fleetwire.cloud.projector``) loads rows, calls ``apply_device`` per device, and stores
the result with the processed markers in one transaction.
"""

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass

from fleetwire.cloud.device_view import DeviceView, replace
from fleetwire.cloud.projection import project
from fleetwire.protocol.envelope import FIRST_SEQ, EventEnvelope
from fleetwire.protocol.events import (
    CommandAccepted,
    CommandFailed,
    CommandProgress,
    CommandRejected,
    CommandSucceeded,
    Inventory,
)

COMMAND_EVENTS = (
    CommandAccepted,
    CommandRejected,
    CommandProgress,
    CommandSucceeded,
    CommandFailed,
)


@dataclass(frozen=True)
class Admission:
    """The outcome of admitting one event into a device's sequence."""

    ready: tuple[EventEnvelope, ...]
    held: Mapping[int, EventEnvelope]
    next_seq: int | None
    duplicate: bool = False


def admit(
    next_seq: int | None, held: Mapping[int, EventEnvelope], event: EventEnvelope
) -> Admission:
    """Place ``event`` in its device's sequence.

    - no ``seq`` (presence): ready at once;
    - the expected ``seq`` (``FIRST_SEQ`` for a device never seen): ready, followed by held
      successors;
    - ahead of the expected ``seq``: held until the gap fills (or an inventory resets it);
    - behind it: a duplicate, except a command lifecycle event never seen before, which is still
      applied (command status only moves forward, so a late one is harmless);
    - an inventory at or ahead of the expected ``seq``: held events before it are applied first,
      then the inventory, which becomes the new base of the sequence.
    """
    seq = event.seq
    if seq is None:
        return Admission((event,), held, next_seq)
    # A device's sequence starts at FIRST_SEQ. A device first seen further on (say, the read model
    # was created after it) waits like any gap, until the gap fills or a sync's inventory resets it.
    next_seq = FIRST_SEQ if next_seq is None else next_seq
    if seq in held:
        return Admission((), held, next_seq, duplicate=True)
    if seq < next_seq:
        if isinstance(event, COMMAND_EVENTS):
            return Admission((event,), held, next_seq)
        return Admission((), held, next_seq, duplicate=True)
    if isinstance(event, Inventory):
        before = tuple(held[s] for s in sorted(s for s in held if s < seq))
        rest = {s: e for s, e in held.items() if s > seq}
        return _drain((*before, event), rest, seq + 1)
    if seq == next_seq:
        return _drain((event,), held, seq + 1)
    return Admission((), {**held, seq: event}, next_seq)


def _drain(
    ready: tuple[EventEnvelope, ...], held: Mapping[int, EventEnvelope], next_seq: int
) -> Admission:
    rest = dict(held)
    out = list(ready)
    while next_seq in rest:
        out.append(rest.pop(next_seq))
        next_seq += 1
    return Admission(tuple(out), rest, next_seq)


@dataclass(frozen=True)
class DeviceOutcome:
    """What one device's share of a batch did: its rows and sequence afterwards."""

    view: DeviceView
    """The device's rows after the events that became ready (``device.next_seq`` included)."""
    held: Mapping[int, EventEnvelope]
    """Events still waiting for a gap to fill, by ``seq``."""
    applied: tuple[EventEnvelope, ...]
    """The events projected, in the order they were applied (the event history to store)."""
    taken: frozenset[str]
    """Ids of the events seen for the first time (processed markers, even if held or dropped)."""
    duplicates: int
    """Events dropped as already seen (by id) or already past (by ``seq``)."""


def apply_device(
    view: DeviceView,
    held: Mapping[int, EventEnvelope],
    events: Iterable[EventEnvelope],
    seen: Set[str],
) -> DeviceOutcome:
    """Admit one device's ``events`` (in arrival order) and project those that become ready.

    ``view`` and ``held`` are the device's rows and held events before the batch; ``seen`` holds
    the ids of events already stored or taken earlier in the batch: those are duplicates, and so is
    a second copy of an event within ``events``. Held events released by a filled gap or an
    inventory are projected too.
    """
    next_seq = view.device.next_seq
    taken: set[str] = set()
    applied: list[EventEnvelope] = []
    duplicates = 0
    for event in events:
        if event.id in seen or event.id in taken:
            duplicates += 1
            continue
        taken.add(event.id)
        adm = admit(next_seq, held, event)
        if adm.duplicate:
            duplicates += 1
            continue
        next_seq, held = adm.next_seq, adm.held
        for ready in adm.ready:
            view = project(view, ready)
            applied.append(ready)
    if next_seq != view.device.next_seq:
        view = replace(view, device=replace(view.device, next_seq=next_seq))
    return DeviceOutcome(view, held, tuple(applied), frozenset(taken), duplicates)
