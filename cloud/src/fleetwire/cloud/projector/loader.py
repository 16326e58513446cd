"""Read what a batch needs, in its transaction: device rows (created and locked), the batch's
events already stored, held events, deployments, containers and the commands the events answer.

Every query is per chunk of ids, not per event: a batch costs a handful of round trips.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, RowMapping, select
from sqlmodel import SQLModel

from fleetwire.cloud.command_status import CommandStatus
from fleetwire.cloud.projection import CommandRow, ContainerRow, DeploymentRow, event_command_id
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
    dep_t, con_t, cmd_t = _T["deployment"], _T["container"], _T["command"]
    ev_t, held_t = _T["event"], _T["held_event"]
    ids = sorted(by_device)
    loaded = Loaded(devices=lock_devices(conn, ids, now))
    event_ids = [e.id for evs in by_device.values() for e in evs]
    for chunk in chunks(event_ids):
        loaded.seen.update(conn.scalars(select(ev_t.c.event_id).where(ev_t.c.event_id.in_(chunk))))
    for i in ids:
        loaded.held[i], loaded.deployments[i], loaded.containers[i] = {}, {}, {}
        loaded.commands[i] = {}
    gapped = [i for i in ids if loaded.devices[i]["gap_since"] is not None]
    for chunk in chunks(gapped):
        for row in conn.execute(select(held_t).where(held_t.c.device_id.in_(chunk))):
            event = codec.decode(row.payload)
            assert isinstance(event, EventEnvelope)
            loaded.held[row.device_id][row.seq] = event
    for chunk in chunks(ids):
        for r in conn.execute(select(dep_t).where(dep_t.c.device_id.in_(chunk))):
            loaded.deployments[r.device_id][r.id] = DeploymentRow(
                **{f: getattr(r, f) for f in DeploymentRow.__dataclass_fields__}
            )
        for r in conn.execute(select(con_t).where(con_t.c.device_id.in_(chunk))):
            loaded.containers[r.device_id][(r.deployment_id, r.name)] = ContainerRow(
                **{f: getattr(r, f) for f in ContainerRow.__dataclass_fields__}
            )
    # Every event that can become ready in this batch may move a command: the batch's own
    # and the held events it can release (a gap filled, an inventory).
    candidates = [e for evs in by_device.values() for e in evs]
    candidates += [e for held in loaded.held.values() for e in held.values()]
    command_ids = sorted({c for e in candidates if (c := event_command_id(e))})
    for chunk in chunks(command_ids):
        query = select(cmd_t.c.id, cmd_t.c.device_id, cmd_t.c.status, cmd_t.c.detail)
        for r in conn.execute(query.where(cmd_t.c.id.in_(chunk))):
            if r.device_id in loaded.commands:
                loaded.commands[r.device_id][r.id] = CommandRow(
                    r.id, r.device_id, CommandStatus(r.status), r.detail
                )
    return loaded
