"""The projector: consumes device events and presence, and keeps the read model.

Messages are decoded, ordered per device (``projection.admit``) and projected
(``projection.project``) in batches: one transaction stores the new rows, the event history
(the processed markers), held events and dead letters; only then are the messages acknowledged
to the broker (manual PUBACK), so a crash loses nothing the broker delivered.
"""

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import SQLModel, col

from fleetwire.cloud.db.engine import session_scope
from fleetwire.cloud.db.tables import Device
from fleetwire.cloud.errors import BrokerUnavailable
from fleetwire.cloud.mqtt import BrokerAddress, MqttClient
from fleetwire.cloud.outbox import enqueue, sync_command
from fleetwire.cloud.projection import (
    CommandRow,
    ContainerRow,
    DeploymentRow,
    DeviceRow,
    DeviceView,
    admit,
    event_command_id,
    event_deployment_id,
    project,
)
from fleetwire.cloud.projector_worker import ProjectionWorker
from fleetwire.cloud.settings import Settings
from fleetwire.protocol.codec import DEFAULT_CODEC, Codec
from fleetwire.protocol.commands import SyncCommand
from fleetwire.protocol.envelope import EventEnvelope, utcnow
from fleetwire.protocol.errors import ProtocolError
from fleetwire.protocol.events import DeviceEvent, PresenceBirth, PresenceDeath
from fleetwire.protocol.registry import type_of
from fleetwire.protocol.topics import EVENTS, PRESENCE

log = logging.getLogger(__name__)

DEAD_LETTER_PAYLOAD_MAX = 4096
_T = SQLModel.metadata.tables


def _transient(error: DBAPIError) -> bool:
    """True for a database error worth retrying (connection lost, lock, timeout)."""
    return isinstance(error, OperationalError) or error.connection_invalidated


def _text(value: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL characters.
    return value[:limit].replace("\x00", "\ufffd")


def _dead_row(item: "Received", reason: str, now: datetime) -> dict[str, Any]:
    return {
        "topic": _text(item.topic, 1024),
        "payload": _text(
            item.payload[:DEAD_LETTER_PAYLOAD_MAX].decode("utf-8", errors="replace"),
            DEAD_LETTER_PAYLOAD_MAX,
        ),
        "reason": _text(reason, 4096),
        "received_at": now,
    }


@dataclass(frozen=True)
class Received:
    """A message as it came off the broker."""

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1
    generation: int = 0


@dataclass
class BatchResult:
    """What one batch did (for tests, metrics and the benchmark)."""

    applied: int = 0
    duplicates: int = 0
    held: int = 0
    dead: int = 0
    devices: set[str] = field(default_factory=set)


@dataclass
class _Loaded:
    devices: dict[str, Any]
    seen: set[str] = field(default_factory=set)
    held: dict[str, dict[int, EventEnvelope]] = field(default_factory=dict)
    deployments: dict[str, dict[str, DeploymentRow]] = field(default_factory=dict)
    containers: dict[str, dict[tuple[str, str], ContainerRow]] = field(default_factory=dict)
    commands: dict[str, dict[str, CommandRow]] = field(default_factory=dict)


@dataclass
class _Writes:
    devices: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[DeploymentRow] = field(default_factory=list)
    containers: list[ContainerRow] = field(default_factory=list)
    commands: list[CommandRow] = field(default_factory=list)
    held_new: list[dict[str, Any]] = field(default_factory=list)
    held_gone: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _history_row(device_id: str, event: EventEnvelope, now: datetime) -> dict[str, Any]:
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


class Invalid(Exception):
    """A message that goes to the dead-letter table."""


def subscription_filters(*, shared: bool, group: str) -> list[str]:
    """The projector's subscriptions: shared (MQTT 5) or plain."""
    if shared:
        return [EVENTS.shared_filter(group), PRESENCE.shared_filter(group)]
    return [EVENTS.filter(), PRESENCE.filter()]


@lru_cache(maxsize=65536)
def parse_topic(topic: str) -> tuple[str, str | None]:
    """(device id, event category or None for presence) of a topic; cached, topics repeat."""
    if PRESENCE.matches(topic):
        return PRESENCE.parse(topic)["device_id"], None
    params = EVENTS.parse(topic)
    return params["device_id"], params["category"]


def decode_message(codec: Codec, topic: str, payload: bytes) -> tuple[str, EventEnvelope]:
    """The device id and event of a message, or :class:`Invalid` with the reason."""
    try:
        device_id, category = parse_topic(topic)
        if category is None:
            event: EventEnvelope = codec.decode_as(payload, PresenceBirth, PresenceDeath)
        else:
            device_event = codec.decode_as(payload, DeviceEvent)
            if device_event.category != category:
                raise Invalid(f"{device_event.type} does not belong on the {category} topic")
            event = device_event
        source_device = event.device_id
    except ProtocolError as exc:
        raise Invalid(f"{type(exc).__name__}: {exc}") from None
    if source_device != device_id:
        raise Invalid(f"source device {source_device!r} does not match topic device {device_id!r}")
    return device_id, event


_HISTORY_COLUMNS = (
    "event_id",
    "device_id",
    "seq",
    "type",
    "deployment_id",
    "command_id",
    "time",
    "received_at",
    "data",
)


def _sqlite_ts(value: datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime stores (UTCDateTime stores UTC, naive).
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_history(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert event-history rows straight through the driver.

    This is the projector's largest write (one row per event); SQLAlchemy's per-row parameter
    processing cost about as much as the rest of the insert, so values are converted here once.
    """
    names = ", ".join(_HISTORY_COLUMNS)
    if conn.dialect.name == "postgresql":
        marks = ", ".join(["%s"] * len(_HISTORY_COLUMNS))
        params: list[tuple[Any, ...]] = [
            (*(r[c] for c in _HISTORY_COLUMNS[:-1]), Json(r["data"])) for r in rows
        ]
    else:
        marks = ", ".join(["?"] * len(_HISTORY_COLUMNS))
        params = [
            (
                r["event_id"],
                r["device_id"],
                r["seq"],
                r["type"],
                r["deployment_id"],
                r["command_id"],
                _sqlite_ts(r["time"]),
                _sqlite_ts(r["received_at"]),
                json.dumps(r["data"]),
            )
            for r in rows
        ]
    conn.exec_driver_sql(f"INSERT INTO event ({names}) VALUES ({marks})", params)  # noqa: S608


def _dialect_insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _chunks(items: Sequence[str], size: int = 900) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Projector:
    """One projector instance; several can share the load through a shared subscription."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        client: MqttClient | None = None,
        codec: Codec = DEFAULT_CODEC,
        instance: str = "0",
        shared: bool | None = None,
        on_command: Callable[[], None] | None = None,
        worker_process: bool | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.codec = codec
        self.shared = shared
        self.on_command = on_command
        self.queue: queue.Queue[Received] = queue.Queue()
        self.client = client or MqttClient(
            BrokerAddress.from_settings(settings),
            f"{settings.client_id}-projector-{instance}",
            session_expiry_s=settings.mqtt_session_expiry_s,
            protocols=settings.mqtt_protocols,
            receive_maximum=settings.mqtt_receive_maximum,
            manual_ack=True,
        )
        self.client.on_message = self._on_message
        self.worker_process = (
            settings.projector_worker_process if worker_process is None else worker_process
        )
        self._worker: ProjectionWorker | None = None
        self.processed = 0
        """Messages taken off the broker and stored (projected, duplicate or dead-lettered)."""
        self.batches = 0
        self._generation = 0
        self._backlog: list[Received] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- network side ---
    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.queue.put(Received(topic, payload, mid, qos, self._generation))

    def connect(self) -> None:
        """Connect and subscribe (shared on MQTT 5 unless ``shared=False``)."""
        self._generation += 1
        self.client.connect()
        shared = self.client.is_v5 if self.shared is None else self.shared
        self.client.subscribe(
            subscription_filters(shared=shared, group=self.settings.projector_share_group)
        )

    def drain(self, timeout: float = 0.2) -> list[Received]:
        """Take what is queued (up to ``projector_batch_max``); wait ``timeout`` for the first."""
        batch = self._backlog
        self._backlog = []
        if not batch:
            try:
                batch.append(self.queue.get(timeout=timeout))
            except queue.Empty:
                return batch
        while len(batch) < self.settings.projector_batch_max:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    # --- the transaction ---
    def process(self, batch: Sequence[Received], now: datetime | None = None) -> BatchResult:
        """Project ``batch`` in one transaction (retried; message by message as a last resort)."""
        now = now or utcnow()
        error: DBAPIError | None = None
        for attempt in range(3):
            try:
                return self._process(batch, now)
            except DBAPIError as exc:
                error = exc
                log.warning("projector batch failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(0.05 * (attempt + 1))
        if len(batch) == 1:
            if error is None or _transient(error):
                raise RuntimeError("projector cannot store a message")  # DB down: caller retries
            # The message itself cannot be stored (bad data, constraint): set it aside, go on.
            return self._dead_letter(batch[0], f"cannot be stored: {error.orig or error}", now)
        total = BatchResult()
        for item in batch:
            r = self.process([item], now)
            total.applied += r.applied
            total.duplicates += r.duplicates
            total.held += r.held
            total.dead += r.dead
            total.devices |= r.devices
        return total

    def _dead_letter(self, item: Received, reason: str, now: datetime) -> BatchResult:
        """Store ``item`` as a dead letter in its own transaction."""
        with self.engine.begin() as conn:
            conn.execute(insert(_T["dead_letter"]), [_dead_row(item, reason, now)])
        log.error("projector: message on %s dead-lettered: %s", item.topic, reason)
        self.processed += 1
        self.batches += 1
        return BatchResult(dead=1)

    def _process(self, batch: Sequence[Received], now: datetime) -> BatchResult:
        result = BatchResult()
        dead: list[dict[str, Any]] = []
        by_device: dict[str, list[tuple[EventEnvelope, Received]]] = {}
        for item in batch:
            try:
                device_id, event = decode_message(self.codec, item.topic, item.payload)
            except Invalid as exc:
                dead.append(_dead_row(item, str(exc), now))
                continue
            by_device.setdefault(device_id, []).append((event, item))
        with self.engine.begin() as conn:
            if dead:
                conn.execute(insert(_T["dead_letter"]), dead)
                result.dead = len(dead)
            if by_device:
                self._project(conn, by_device, now, result)
        self.processed += len(batch)
        self.batches += 1
        return result

    def _project(
        self,
        conn: Connection,
        by_device: dict[str, list[tuple[EventEnvelope, Received]]],
        now: datetime,
        result: BatchResult,
    ) -> None:
        loaded = self._load(conn, by_device, now)
        writes = _Writes()
        for device_id in sorted(by_device):
            self._apply_device(
                device_id, by_device[device_id], loaded, writes, now=now, result=result
            )
        self._write(conn, writes, now)

    def _load(
        self,
        conn: Connection,
        by_device: dict[str, list[tuple[EventEnvelope, Received]]],
        now: datetime,
    ) -> "_Loaded":
        dep_t, con_t, cmd_t = _T["deployment"], _T["container"], _T["command"]
        ev_t, held_t = _T["event"], _T["held_event"]
        ids = sorted(by_device)
        loaded = _Loaded(devices=self._lock_devices(conn, ids, now))
        event_ids = [e.id for evs in by_device.values() for e, _ in evs]
        for chunk in _chunks(event_ids):
            loaded.seen.update(
                conn.scalars(select(ev_t.c.event_id).where(ev_t.c.event_id.in_(chunk)))
            )
        for i in ids:
            loaded.held[i], loaded.deployments[i], loaded.containers[i] = {}, {}, {}
            loaded.commands[i] = {}
        gapped = [i for i in ids if loaded.devices[i]["gap_since"] is not None]
        for chunk in _chunks(gapped):
            for row in conn.execute(select(held_t).where(held_t.c.device_id.in_(chunk))):
                event = self.codec.decode(row.payload)
                assert isinstance(event, EventEnvelope)
                loaded.held[row.device_id][row.seq] = event
        for chunk in _chunks(ids):
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
        candidates = [e for evs in by_device.values() for e, _ in evs]
        candidates += [e for held in loaded.held.values() for e in held.values()]
        command_ids = sorted({c for e in candidates if (c := event_command_id(e))})
        for chunk in _chunks(command_ids):
            query = select(cmd_t.c.id, cmd_t.c.device_id, cmd_t.c.status, cmd_t.c.detail)
            for r in conn.execute(query.where(cmd_t.c.id.in_(chunk))):
                if r.device_id in loaded.commands:
                    loaded.commands[r.device_id][r.id] = CommandRow(
                        r.id, r.device_id, r.status, r.detail
                    )
        return loaded

    def _apply_device(
        self,
        device_id: str,
        events: list[tuple[EventEnvelope, Received]],
        loaded: "_Loaded",
        writes: "_Writes",
        *,
        now: datetime,
        result: BatchResult,
    ) -> None:
        row = loaded.devices[device_id]
        before = DeviceView(
            device=DeviceRow(
                **{f: row[f] for f in DeviceRow.__dataclass_fields__ if f != "protocol_types"},
                protocol_types=tuple(row["protocol_types"] or ()),
            ),
            deployments=loaded.deployments[device_id],
            containers=loaded.containers[device_id],
            commands=loaded.commands[device_id],
        )
        view = before
        held: Mapping[int, EventEnvelope] = loaded.held[device_id]
        original_held = set(held)
        next_seq = before.device.next_seq
        raw: dict[str, Received] = {}
        for event, item in events:
            if event.id in loaded.seen:
                result.duplicates += 1
                continue
            loaded.seen.add(event.id)
            raw[event.id] = item
            adm = admit(next_seq, held, event)
            if adm.duplicate:
                result.duplicates += 1
                continue
            next_seq, held = adm.next_seq, adm.held
            for ready in adm.ready:
                view = project(view, ready)
                writes.history.append(_history_row(device_id, ready, now))
                result.applied += 1
        result.devices.add(device_id)
        writes.held_gone += [
            {"b_device": device_id, "b_seq": seq} for seq in original_held - set(held)
        ]
        for seq in set(held) - original_held:
            ev = held[seq]
            writes.held_new.append(
                {
                    "device_id": device_id,
                    "seq": seq,
                    "event_id": ev.id,
                    "payload": raw[ev.id].payload.decode(),
                    "received_at": now,
                }
            )
        result.held += len(held)
        gap_since = (row["gap_since"] or now) if held else None
        dev = view.device
        new_dev = {f: getattr(dev, f) for f in DeviceRow.__dataclass_fields__ if f != "id"}
        new_dev |= {"protocol_types": list(dev.protocol_types), "next_seq": next_seq}
        new_dev["gap_since"] = gap_since
        if any(row[k] != v for k, v in new_dev.items()):
            writes.devices.append({"b_id": device_id, **new_dev})
        writes.deployments += [
            d for k, d in view.deployments.items() if before.deployments.get(k) != d
        ]
        writes.containers += [
            c for k, c in view.containers.items() if before.containers.get(k) != c
        ]
        writes.commands += [c for k, c in view.commands.items() if before.commands.get(k) != c]

    def _write(self, conn: Connection, w: "_Writes", now: datetime) -> None:
        dev_t, con_t, cmd_t, held_t = _T["device"], _T["container"], _T["command"], _T["held_event"]
        if w.devices:
            cols: dict[str, Any] = {k: bindparam(k) for k in w.devices[0] if k != "b_id"}
            conn.execute(
                update(dev_t).where(dev_t.c.id == bindparam("b_id")).values(cols), w.devices
            )
        if w.deployments:
            self._upsert_deployments(conn, w.deployments, now)
        if w.containers:
            stmt = _dialect_insert(conn, con_t)
            values = [c.__dict__ | {"updated_at": c.updated_at or now} for c in w.containers]
            keys = [k for k in values[0] if k not in ("deployment_id", "name")]
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["deployment_id", "name"],
                    set_={k: getattr(stmt.excluded, k) for k in keys},
                ),
                values,
            )
        if w.commands:
            conn.execute(
                update(cmd_t)
                .where(cmd_t.c.id == bindparam("b_id"))
                .values(
                    status=bindparam("status"),
                    detail=bindparam("detail"),
                    updated_at=bindparam("updated_at"),
                ),
                [
                    {
                        "b_id": c.id,
                        "status": c.status,
                        "detail": c.detail,
                        "updated_at": c.updated_at or now,
                    }
                    for c in w.commands
                ],
            )
        if w.held_gone:
            conn.execute(
                delete(held_t).where(
                    and_(
                        held_t.c.device_id == bindparam("b_device"),
                        held_t.c.seq == bindparam("b_seq"),
                    )
                ),
                w.held_gone,
            )
        if w.held_new:
            conn.execute(insert(held_t), w.held_new)
        if w.history:
            _insert_history(conn, w.history)

    def _lock_devices(self, conn: Connection, ids: list[str], now: datetime) -> dict[str, Any]:
        dev_t = _T["device"]
        stmt = _dialect_insert(conn, dev_t)
        conn.execute(
            stmt.on_conflict_do_nothing(index_elements=["id"]),
            [
                {
                    "id": i,
                    "registered": False,
                    "tags": [],
                    "protocol_types": [],
                    "online": False,
                    "created_at": now,
                }
                for i in ids
            ],
        )
        rows: dict[str, Any] = {}
        for chunk in _chunks(ids):
            query = (
                select(dev_t).where(dev_t.c.id.in_(chunk)).order_by(dev_t.c.id).with_for_update()
            )
            for r in conn.execute(query).mappings():
                rows[r["id"]] = r
        return rows

    def _upsert_deployments(
        self, conn: Connection, rows: list[DeploymentRow], now: datetime
    ) -> None:
        dep_t = _T["deployment"]
        stmt = _dialect_insert(conn, dep_t)
        reported = ["current_version", "state", "reason", "reported", "gone", "updated_at"]
        values = [
            {
                "id": d.id,
                "device_id": d.device_id,
                "application": d.application,
                "current_version": d.current_version,
                "state": d.state,
                "reason": d.reason,
                "reported": d.reported,
                "gone": d.gone,
                "desired_state": "running",
                "created_at": now,
                "updated_at": d.updated_at or now,
            }
            for d in rows
        ]
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["id"], set_={k: getattr(stmt.excluded, k) for k in reported}
            ),
            values,
        )

    # --- gaps ---
    def check_gaps(self, now: datetime | None = None) -> list[str]:
        """Ask devices whose sequence gap outlived ``gap_timeout_s`` for an inventory (``sync``)."""
        now = now or utcnow()
        limit = now - timedelta(seconds=self.settings.gap_timeout_s)
        sync_type = type_of(SyncCommand)
        synced: list[str] = []
        with session_scope(self.engine) as session:
            rows = session.scalars(
                select(Device)
                .where(
                    col(Device.gap_since).is_not(None),
                    col(Device.gap_since) <= limit,
                    or_(
                        col(Device.sync_requested_at).is_(None),
                        col(Device.sync_requested_at) <= limit,
                    ),
                )
                # Several projectors may check at once: each device is handled by one of them.
                .with_for_update(skip_locked=True)
            ).all()
            for device in rows:
                device.sync_requested_at = now
                session.add(device)
                if sync_type not in device.protocol_types:
                    log.warning("device %s has a gap but did not announce %s", device.id, sync_type)
                    continue
                command = sync_command(
                    f"sequence gap before seq {device.next_seq}", self.settings.command_ttl, now
                )
                enqueue(session, command, device_id=device.id)
                synced.append(device.id)
                log.info(
                    "device %s: gap at seq %s, sync %s", device.id, device.next_seq, command.id
                )
        if synced and self.on_command is not None:
            self.on_command()
        return synced

    # --- lifecycle ---
    def _ack(self, batch: Sequence[Received]) -> None:
        for item in batch:
            if item.generation == self._generation:
                self.client.ack(item.mid, item.qos)

    def run_once(self, timeout: float = 0.2) -> BatchResult | None:
        """Connect if needed, then project what is queued and acknowledge it."""
        if not self.client.connected:
            self.connect()
        batch = self.drain(timeout)
        if not batch:
            return None
        try:
            if self._worker is not None:
                result: BatchResult = self._worker.process([(m.topic, m.payload) for m in batch])
                self.processed += len(batch)
                self.batches += 1
            else:
                result = self.process(batch)
        except Exception:
            self._backlog = list(batch)  # keep it (unacknowledged) and try again
            raise
        self._ack(batch)
        return result

    def _loop(self) -> None:
        last_check = 0.0
        failures = 0
        while not self._stop.is_set():
            try:
                self.run_once()
                if time.monotonic() - last_check >= min(1.0, self.settings.gap_timeout_s / 2):
                    last_check = time.monotonic()
                    self.check_gaps()
                failures = 0
            except BrokerUnavailable as exc:
                failures += 1
                delay = min(self.settings.relay_backoff_max_s, 0.5 * 2 ** min(failures, 10))
                log.warning("projector: broker unavailable (%s); retrying in %.1f s", exc, delay)
                self._stop.wait(delay)
            except Exception:
                log.exception("projector pass failed")
                self._stop.wait(1.0)

    def start(self) -> None:
        """Run in a background thread (and a projection child process if configured)."""
        if self.worker_process and self._worker is None:
            self._worker = ProjectionWorker(self.settings)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fleetwire-projector", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and disconnect (unacknowledged messages stay with the broker)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.client.close()
        if self._worker is not None:
            self._worker.close()
            self._worker = None
