"""Store a batch's writes: the one module of the projector that knows SQL dialects.

Two things here are dialect-specific on purpose, and nowhere else:

- Upserts (``INSERT ... ON CONFLICT``): a device, deployment or container row may exist by the
  time a batch writes it even if the batch did not load it (the API registers devices and
  creates deployments; another projector may create the same device row). SQLAlchemy has no
  portable upsert, only the PostgreSQL and SQLite constructs, which both render
  ``ON CONFLICT``; :func:`_insert` picks the one of the connection.
- The event-history insert goes straight through the driver (:func:`_insert_history`): it is
  the projector's largest write, one row per event, and SQLAlchemy's per-row parameter
  processing cost about as much as the rest of the insert. Values are converted here once, in
  the shapes each driver stores (psycopg's ``Json``; SQLite's text timestamps and JSON).
"""

import json
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import Connection, Table, and_, bindparam, delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from fleetwire.cloud.actions import DEPLOY
from fleetwire.cloud.device_view import DeploymentRow
from fleetwire.cloud.projector.rows import Writes

_T = SQLModel.metadata.tables

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


def _insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which (unlike the generic one) has ``on_conflict_do_*``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _sqlite_ts(value: datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime stores (UTCDateTime stores UTC, naive).
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_history(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert event-history rows straight through the driver (see the module docstring)."""
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


def ensure_devices(conn: Connection, ids: list[str], now: datetime) -> None:
    """Create the rows of devices not yet known (unregistered; the API registers them)."""
    stmt = _insert(conn, _T["device"])
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


def insert_dead_letters(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Store dead letters (rows from :func:`~fleetwire.cloud.projector.rows.dead_letter_row`)."""
    conn.execute(insert(_T["dead_letter"]), rows)


def _upsert_deployments(conn: Connection, rows: list[DeploymentRow], now: datetime) -> None:
    stmt = _insert(conn, _T["deployment"])
    # Only the reported columns: the desired ones belong to the API.
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
            # A deployment first seen in a device's events was deployed there: it should run.
            "desired_state": DEPLOY.desired_state,
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


def write(conn: Connection, w: Writes, now: datetime) -> None:
    """Execute a batch's writes, a few statements each with many rows."""
    dev_t, con_t, cmd_t, held_t = _T["device"], _T["container"], _T["command"], _T["held_event"]
    if w.devices:
        cols: dict[str, Any] = {k: bindparam(k) for k in w.devices[0] if k != "b_id"}
        conn.execute(update(dev_t).where(dev_t.c.id == bindparam("b_id")).values(cols), w.devices)
    if w.deployments:
        _upsert_deployments(conn, w.deployments, now)
    if w.containers:
        stmt = _insert(conn, con_t)
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
