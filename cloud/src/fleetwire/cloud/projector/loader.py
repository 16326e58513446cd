"""Read what a batch needs, in its transaction: device rows (created and locked), the batch's
events already stored, held events, deployments, containers and the commands the events answer.

Every query is per chunk of ids, not per event: a batch costs a handful of round trips.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, RowMapping, select
from sqlmodel import SQLModel

from fleetwire.cloud.command_status import CommandStatus
from fleetwire.cloud.device_view import CommandRow, ContainerRow, DeploymentRow
from fleetwire.cloud.projection import event_command_id
from fleetwire.cloud.projector.rows import Loaded
from fleetwire.cloud.projector.writer import ensure_devices
from fleetwire.protocol.codec import Codec
from fleetwire.protocol.envelope import EventEnvelope

_T = SQLModel.metadata.tables
# Bounds one IN (...) list: SQLite builds before 3.32 allow only 999 parameters a statement.
CHUNK = 900


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    """``items`` in slices of at most ``size`` (for ``IN (...)`` lists)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def lock_devices(conn: Connection, ids: list[str], now: datetime) -> dict[str, RowMapping]:
    """The device rows of ``ids``, created if new, locked (in id order) for the transaction.

    The lock serialises projectors that share a device's messages: each sees the other's
    sequencing state only after it committed.
    """
    dev_t = _T["device"]
    ensure_devices(conn, ids, now)
    rows: dict[str, RowMapping] = {}
    for chunk in chunks(ids):
        query = select(dev_t).where(dev_t.c.id.in_(chunk)).order_by(dev_t.c.id).with_for_update()
        for r in conn.execute(query).mappings():
            rows[r["id"]] = r
    return rows


def load(
    conn: Connection,
    codec: Codec,
    by_device: Mapping[str, Sequence[EventEnvelope]],
    now: datetime,
) -> Loaded:
    """Everything projecting ``by_device`` (a batch's decoded events per device) reads."""
    ids = sorted(by_device)
    loaded = Loaded(devices=lock_devices(conn, ids, now))
    for i in ids:
        loaded.held[i], loaded.deployments[i], loaded.containers[i] = {}, {}, {}
        loaded.commands[i] = {}
    _load_seen(conn, loaded, [e.id for evs in by_device.values() for e in evs])
    _load_held(conn, codec, loaded, [i for i in ids if loaded.devices[i]["gap_since"] is not None])
    _load_rows(conn, loaded, ids)
    # Every event that can become ready in this batch may move a command: the batch's own
    # and the held events it can release (a gap filled, an inventory).
    candidates = [e for evs in by_device.values() for e in evs]
    candidates += [e for held in loaded.held.values() for e in held.values()]
    _load_commands(conn, loaded, sorted({c for e in candidates if (c := event_command_id(e))}))
    return loaded


def _load_seen(conn: Connection, loaded: Loaded, event_ids: list[str]) -> None:
    ev_t = _T["event"]
    for chunk in chunks(event_ids):
        loaded.seen.update(conn.scalars(select(ev_t.c.event_id).where(ev_t.c.event_id.in_(chunk))))


def _load_held(conn: Connection, codec: Codec, loaded: Loaded, gapped: list[str]) -> None:
    # Only a device with a gap has held events: the others need no query.
    held_t = _T["held_event"]
    for chunk in chunks(gapped):
        for row in conn.execute(select(held_t).where(held_t.c.device_id.in_(chunk))):
            event = codec.decode(row.payload)
            assert isinstance(event, EventEnvelope)
            loaded.held[row.device_id][row.seq] = event


def _load_rows(conn: Connection, loaded: Loaded, ids: list[str]) -> None:
    """The deployments and containers of the devices ``ids``."""
    dep_t, con_t = _T["deployment"], _T["container"]
    for chunk in chunks(ids):
        for r in conn.execute(select(dep_t).where(dep_t.c.device_id.in_(chunk))):
            loaded.deployments[r.device_id][r.id] = DeploymentRow(
                **{f: getattr(r, f) for f in DeploymentRow.__dataclass_fields__}
            )
        for r in conn.execute(select(con_t).where(con_t.c.device_id.in_(chunk))):
            loaded.containers[r.device_id][(r.deployment_id, r.name)] = ContainerRow(
                **{f: getattr(r, f) for f in ContainerRow.__dataclass_fields__}
            )


def _load_commands(conn: Connection, loaded: Loaded, command_ids: list[str]) -> None:
    # A command of a device outside the batch is left alone: a device's events move only its rows.
    cmd_t = _T["command"]
    for chunk in chunks(command_ids):
        query = select(cmd_t.c.id, cmd_t.c.device_id, cmd_t.c.status, cmd_t.c.detail)
        for r in conn.execute(query.where(cmd_t.c.id.in_(chunk))):
            if r.device_id in loaded.commands:
                loaded.commands[r.device_id][r.id] = CommandRow(
                    r.id, r.device_id, CommandStatus(r.status), r.detail
                )
