"""Glue between the database's rows and the pure projection, for one batch (no I/O).

:class:`Loaded` is what the loader read for a batch's devices; :func:`device_view` turns one
device's share into the projection's :class:`DeviceView`; :func:`collect` turns the projection's
outcome back into :class:`Writes`: only the rows that changed, the event history (the processed
markers), the held events that came and went, the device's sequencing columns.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping

from fleetwire.cloud.admission import DeviceOutcome
from fleetwire.cloud.device_view import (
    CommandRow,
    ContainerRow,
    DeploymentRow,
    DeviceRow,
    DeviceView,
)
from fleetwire.cloud.projection import event_command_id, event_deployment_id
from fleetwire.cloud.projector.messages import Received
from fleetwire.protocol.envelope import EventEnvelope

DEAD_LETTER_PAYLOAD_MAX = 4096
"""How much of a dead letter's payload is kept (its start: enough to see what it was)."""

_DEVICE_FIELDS = tuple(f for f in DeviceRow.__dataclass_fields__ if f != "id")


@dataclass
class Loaded:
    """The rows a batch reads, per device id (every device of the batch has an entry)."""

    devices: dict[str, RowMapping]
    """The device rows (created if new, locked for the transaction)."""
    seen: set[str] = field(default_factory=set)
    """Ids of the batch's events already stored; grows as the batch's devices are applied."""
    held: dict[str, dict[int, EventEnvelope]] = field(default_factory=dict)
    deployments: dict[str, dict[str, DeploymentRow]] = field(default_factory=dict)
    containers: dict[str, dict[tuple[str, str], ContainerRow]] = field(default_factory=dict)
    commands: dict[str, dict[str, CommandRow]] = field(default_factory=dict)


@dataclass
class Writes:
    """What a batch stores: rows for the writer, in the shapes it executes them."""

    devices: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[DeploymentRow] = field(default_factory=list)
    containers: list[ContainerRow] = field(default_factory=list)
    commands: list[CommandRow] = field(default_factory=list)
    held_new: list[dict[str, Any]] = field(default_factory=list)
    held_gone: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _text(value: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL characters.
    return value[:limit].replace("\x00", "\ufffd")


def dead_letter_row(item: Received, reason: str, now: datetime) -> dict[str, Any]:
    """The ``dead_letter`` row of a message set aside for ``reason``."""
    return {
        "topic": _text(item.topic, 1024),
        "payload": _text(
            item.payload[:DEAD_LETTER_PAYLOAD_MAX].decode("utf-8", errors="replace"),
            DEAD_LETTER_PAYLOAD_MAX,
        ),
        "reason": _text(reason, 4096),
        "received_at": now,
    }


def history_row(device_id: str, event: EventEnvelope, now: datetime) -> dict[str, Any]:
    """The ``event`` (history) row of an applied event."""
    return {
        "event_id": event.id,
        "device_id": device_id,
        "seq": event.seq,
        "type": event.type,
        "deployment_id": event_deployment_id(event),
        "command_id": event_command_id(event),
        "time": event.time,
        "received_at": now,
        "data": event.data.model_dump(mode="json"),
    }


def device_view(loaded: Loaded, device_id: str) -> DeviceView:
    """The projection's view of one loaded device."""
    row = loaded.devices[device_id]
    return DeviceView(
        device=DeviceRow(
            id=device_id,
            **{f: row[f] for f in _DEVICE_FIELDS if f != "protocol_types"},
            protocol_types=tuple(row["protocol_types"] or ()),
        ),
        deployments=loaded.deployments[device_id],
        containers=loaded.containers[device_id],
        commands=loaded.commands[device_id],
    )


def collect(
    writes: Writes,
    loaded: Loaded,
    device_id: str,
    *,
    before: DeviceView,
    outcome: DeviceOutcome,
    received: Sequence[tuple[EventEnvelope, Received]],
    now: datetime,
) -> None:
    """Add to ``writes`` what ``outcome`` changed for ``device_id`` (``before`` is its view)."""
    row = loaded.devices[device_id]
    original_held = loaded.held[device_id]
    held = outcome.held
    writes.history += [history_row(device_id, event, now) for event in outcome.applied]
    writes.held_gone += [
        {"b_device": device_id, "b_seq": seq} for seq in original_held.keys() - held.keys()
    ]
    if held.keys() - original_held.keys():
        # A held event is stored as it arrived (the first copy), to be decoded again later.
        payloads: dict[str, bytes] = {}
        for event, item in received:
            payloads.setdefault(event.id, item.payload)
        for seq in held.keys() - original_held.keys():
            event = held[seq]
            writes.held_new.append(
                {
                    "device_id": device_id,
                    "seq": seq,
                    "event_id": event.id,
                    "payload": payloads[event.id].decode(),
                    "received_at": now,
                }
            )
    # The gap's start is kept while it lasts: the gap checker measures its age from it.
    gap_since = (row["gap_since"] or now) if held else None
    view = outcome.view
    dev = view.device
    new_dev: dict[str, Any] = {f: getattr(dev, f) for f in _DEVICE_FIELDS}
    new_dev |= {"protocol_types": list(dev.protocol_types), "gap_since": gap_since}
    if any(row[k] != v for k, v in new_dev.items()):
        writes.devices.append({"b_id": device_id, **new_dev})
    writes.deployments += [d for k, d in view.deployments.items() if before.deployments.get(k) != d]
    writes.containers += [c for k, c in view.containers.items() if before.containers.get(k) != c]
    writes.commands += [c for k, c in view.commands.items() if before.commands.get(k) != c]
