"""The agent's SQLite store: journal, desired state, outbox and the event sequence.

One file, ``<data dir>/agent.db``, in WAL mode with ``synchronous=FULL``: an edge device loses
power without warning, and the contracts above this store promise durability on return (a
desired state, a journaled command, an event given a ``seq``). WAL with ``NORMAL`` could lose
the last commits on power loss, which would reuse a ``seq`` the cloud may already have seen.
The write volume (a few rows per command or state change) makes the extra fsync irrelevant.

One connection shared by every thread, each call under a lock (paho callbacks, the command
worker, the reconciler's threads and the publisher all use it).
"""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar

from fleetwire.edge.errors import StoreError
from fleetwire.edge.journal import CommandStatus, JournalEntry, status_of
from fleetwire.edge.ports import DesiredDeployment
from fleetwire.protocol.codec import DEFAULT_CODEC
from fleetwire.protocol.envelope import FIRST_SEQ
from fleetwire.protocol.events import ContainerStateChanged, DeviceEvent

DB_FILE_NAME: Final = "agent.db"
DEFAULT_OUTBOX_LIMIT: Final = 100_000
SCHEMA_VERSION: Final = 1

E = TypeVar("E", bound=DeviceEvent)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS journal (
    command_id    TEXT PRIMARY KEY,
    command_type  TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    deployment_id TEXT,
    status        TEXT NOT NULL,
    command_json  TEXT NOT NULL,
    outcome_json  TEXT,
    traceparent   TEXT,
    tracestate    TEXT
);
CREATE INDEX IF NOT EXISTS journal_received ON journal (received_at);
CREATE TABLE IF NOT EXISTS desired (
    deployment_id TEXT PRIMARY KEY,
    desired_json  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY,
    category     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    compact_key  TEXT,
    payload      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_compact ON outbox (compact_key) WHERE compact_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxRecord:
    """An event waiting for its PUBACK."""

    seq: int
    category: str
    event_type: str
    payload: bytes


def compact_key(event: DeviceEvent) -> str | None:
    """The key under which newer events supersede older ones (container state only)."""
    if isinstance(event, ContainerStateChanged):
        return f"container/{event.data.deployment_id}/{event.data.name}"
    return None


class Store:
    """SQLite-backed journal, desired state (a ``ports.DesiredStateStore``) and outbox."""

    def __init__(self, path: Path, *, outbox_limit: int = DEFAULT_OUTBOX_LIMIT) -> None:
        self.path = path
        self.outbox_limit = outbox_limit
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=5000")
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                msg = f"{path}: SQLite refused WAL mode (got {mode!r})"
                raise StoreError(msg)
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', ?)", (FIRST_SEQ,)
            )
            self._outbox_count: int = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        except sqlite3.Error as exc:
            msg = f"cannot open the agent store {path}: {exc}"
            raise StoreError(msg) from exc

    @classmethod
    def open(cls, data_dir: Path, *, outbox_limit: int = DEFAULT_OUTBOX_LIMIT) -> "Store":
        """Open (or create) the store in ``data_dir``."""
        return cls(data_dir / DB_FILE_NAME, outbox_limit=outbox_limit)

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    # The in-memory row count may have moved inside the rolled-back transaction.
                    self._outbox_count = self._db.execute("SELECT count(*) FROM outbox").fetchone()[
                        0
                    ]
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                msg = f"agent store {self.path}: {exc}"
                raise StoreError(msg) from exc

    def pragma(self, name: str) -> str:
        """Read a pragma (for diagnostics and tests)."""
        with self._lock:
            return str(self._db.execute(f"PRAGMA {name}").fetchone()[0])

    def set_setting(self, key: str, value: str) -> None:
        """Remember a text setting (e.g. the device id, for the CLI)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def setting(self, key: str) -> str | None:
        """A text setting, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # --- desired state (ports.DesiredStateStore) ---
    def get(self, deployment_id: str) -> DesiredDeployment | None:
        """The desired state of one deployment."""
        with self._lock:
            row = self._db.execute(
                "SELECT desired_json FROM desired WHERE deployment_id = ?", (deployment_id,)
            ).fetchone()
        return None if row is None else DesiredDeployment.model_validate_json(row[0])

    def put(self, desired: DesiredDeployment) -> None:
        """Create or replace the desired state of a deployment (durable on return)."""
        with self._tx() as db:
            self._put(db, desired)

    def remove(self, deployment_id: str) -> None:
        """Forget a deployment."""
        with self._tx() as db:
            db.execute("DELETE FROM desired WHERE deployment_id = ?", (deployment_id,))

    def all(self) -> list[DesiredDeployment]:
        """Every deployment's desired state, by deployment id."""
        with self._lock:
            rows = self._db.execute(
                "SELECT desired_json FROM desired ORDER BY deployment_id"
            ).fetchall()
        return [DesiredDeployment.model_validate_json(r[0]) for r in rows]

    @staticmethod
    def _put(db: sqlite3.Connection, desired: DesiredDeployment) -> None:
        db.execute(
            "INSERT INTO desired (deployment_id, desired_json) VALUES (?, ?) "
            "ON CONFLICT (deployment_id) DO UPDATE SET desired_json = excluded.desired_json",
            (desired.deployment_id, desired.model_dump_json()),
        )

    # --- journal ---
    def journal_get(self, command_id: str) -> JournalEntry | None:
        """The journal entry of a command id, if it was seen."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_JOURNAL_COLUMNS} FROM journal WHERE command_id = ?",  # noqa: S608
                (command_id,),
            ).fetchone()
        return None if row is None else _entry(row)

    def journal(self, limit: int | None = None) -> list[JournalEntry]:
        """Journal entries, newest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_JOURNAL_COLUMNS} FROM journal "  # noqa: S608
                "ORDER BY received_at DESC, rowid DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [_entry(r) for r in rows]

    def record_command(
        self, entry: JournalEntry, outcome: E, desired: DesiredDeployment | None = None
    ) -> E:
        """Journal a command with its first outcome, queue that outcome and set desired state.

        One transaction: after a crash either all of it happened or none of it.
        Returns ``outcome`` with its ``seq``.
        """
        with self._tx() as db:
            stamped = self._append(db, outcome)
            row = entry.model_copy(update={"outcome_json": _json(stamped)})
            db.execute(
                f"INSERT INTO journal ({_JOURNAL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",  # noqa: S608
                _row(row),
            )
            if desired is not None:
                self._put(db, desired)
        return stamped

    def prune_journal(self, older_than: datetime) -> int:
        """Forget finished commands received before ``older_than``; returns how many.

        Only safe far beyond the broker's session expiry (nothing can deliver them again).
        Commands still ``accepted`` (in progress) are kept.
        """
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM journal WHERE received_at < ? AND status != ?",
                (older_than.astimezone(UTC).isoformat(), CommandStatus.ACCEPTED.value),
            )
            return max(cur.rowcount, 0)

    # --- outbox ---
    def append(self, event: E) -> E:
        """Give ``event`` the next ``seq`` and queue it; returns the stamped event.

        A command outcome (accepted, rejected, succeeded, failed) of a journaled command also
        updates that command's journal row, in the same transaction.
        """
        with self._tx() as db:
            stamped = self._append(db, event)
            status = status_of(stamped)
            command_id = getattr(stamped.data, "command_id", None)
            if status is not None and command_id is not None:
                db.execute(
                    "UPDATE journal SET status = ?, outcome_json = ? WHERE command_id = ?",
                    (status.value, _json(stamped), command_id),
                )
        return stamped

    def _append(self, db: sqlite3.Connection, event: E) -> E:
        seq = int(db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0])
        db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (seq + 1,))
        stamped = event.model_copy(update={"seq": seq})
        key = compact_key(stamped)
        db.execute(
            "INSERT INTO outbox (seq, category, event_type, compact_key, payload) "
            "VALUES (?, ?, ?, ?, ?)",
            (seq, str(stamped.category), stamped.type, key, _json(stamped)),
        )
        self._outbox_count += 1
        if self._outbox_count > self.outbox_limit:
            self._compact(db)
        return stamped

    def _compact(self, db: sqlite3.Connection) -> None:
        # Only container-state events are superseded (by a newer one for the same container);
        # command outcomes, deployment states and inventories are never dropped.
        cur = db.execute(
            "DELETE FROM outbox WHERE compact_key IS NOT NULL AND seq NOT IN "
            "(SELECT max(seq) FROM outbox WHERE compact_key IS NOT NULL GROUP BY compact_key)"
        )
        self._outbox_count -= max(cur.rowcount, 0)

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[OutboxRecord]:
        """Queued events with ``seq > after_seq``, in ``seq`` order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, category, event_type, payload FROM outbox WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [OutboxRecord(r[0], r[1], r[2], r[3].encode()) for r in rows]

    def ack(self, seq: int) -> None:
        """The broker acknowledged ``seq``: forget it."""
        self.ack_many([seq])

    def ack_many(self, seqs: list[int]) -> None:
        """The broker acknowledged every ``seq`` in ``seqs``: forget them (one transaction)."""
        with self._tx() as db:
            for seq in seqs:
                cur = db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                self._outbox_count -= max(cur.rowcount, 0)

    def outbox_size(self) -> int:
        """How many events wait for their PUBACK."""
        with self._lock:
            return self._outbox_count

    def next_seq(self) -> int:
        """The ``seq`` the next event will get."""
        with self._lock:
            return int(
                self._db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0]
            )


_JOURNAL_COLUMNS: Final = (
    "command_id, command_type, received_at, deployment_id, status, command_json, outcome_json, "
    "traceparent, tracestate"
)


def _json(event: DeviceEvent) -> str:
    return DEFAULT_CODEC.encode(event).decode()


def _row(e: JournalEntry) -> tuple[str | None, ...]:
    return (
        e.command_id,
        e.command_type,
        e.received_at.astimezone(UTC).isoformat(),
        e.deployment_id,
        e.status.value,
        e.command_json,
        e.outcome_json,
        e.traceparent,
        e.tracestate,
    )


def _entry(row: tuple[str | None, ...]) -> JournalEntry:
    (cid, ctype, received, dep, status, command_json, outcome, tp, ts) = row
    assert cid is not None
    assert ctype is not None
    assert received is not None
    assert status is not None
    assert command_json is not None
    return JournalEntry(
        command_id=cid,
        command_type=ctype,
        received_at=datetime.fromisoformat(received),
        deployment_id=dep,
        status=CommandStatus(status),
        command_json=command_json,
        outcome_json=outcome,
        traceparent=tp,
        tracestate=ts,
    )
