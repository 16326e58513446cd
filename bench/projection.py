"""Benchmark: raw Mosquitto QoS 1 rate, and the events/s one projector sustains into SQLite and
into PostgreSQL, measured in the same run. Writes docs/benchmarks.md.

    uv run python bench/projection.py [--events 30000] [--devices 100]

Starts its own Mosquitto (/usr/sbin/mosquitto on a free port) and creates a throwaway
PostgreSQL database (FLEETWIRE_BENCH_PG, default postgresql+psycopg://postgres:fleetwire@
127.0.0.1:5432/postgres). The publisher runs in a separate process so it does not share the
projector's GIL; it publishes QoS 1 with 20 messages in flight, like a device.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import platform
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from fleetwire.cloud.db.engine import make_engine, upgrade
from fleetwire.cloud.projector import Projector
from fleetwire.cloud.settings import Settings
from fleetwire.protocol.codec import encode
from fleetwire.protocol.envelope import FIRST_SEQ
from fleetwire.protocol.events import ContainerStateChanged, DeploymentState, DeploymentStateChanged
from fleetwire.protocol.topics import event_topic

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: the repository root (the tests' factories and waits) is not on sys.path.
sys.path.insert(0, str(ROOT))
from tests import factories  # noqa: E402
from tests.fixtures.waiting import wait_until  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
MOSQUITTO = "/usr/sbin/mosquitto"
DEFAULT_PG = "postgresql+psycopg://postgres:fleetwire@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A throwaway Mosquitto with the settings of broker-config/mosquitto/dev.conf."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    "user root" if os.geteuid() == 0 else "",
                    "persistence false",
                    "max_queued_messages 1000000",
                    "max_inflight_messages 20",
                    "log_dest stderr",
                    "log_type error",
                ]
            )
            + "\n"
        )
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
        wait_until(self._listening, 10, "mosquitto to listen", interval=0.05, error=RuntimeError)

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def make_events(devices: int, total: int) -> list[tuple[str, bytes]]:
    """A realistic mix: per device, deployment state changes and container state changes."""
    out: list[tuple[str, bytes]] = []
    event: DeploymentStateChanged | ContainerStateChanged
    per_device = total // devices
    states = [
        DeploymentState.PULLING,
        DeploymentState.CREATING,
        DeploymentState.STARTING,
        DeploymentState.RUNNING,
    ]
    for n in range(per_device):
        seq = FIRST_SEQ + n
        for d in range(devices):
            device_id = f"bench-{d:04d}"
            if n % 2 == 0:
                event = factories.deployment_state(
                    device_id,
                    f"{device_id}-app",
                    states[(n // 2) % len(states)],
                    seq,
                    application="thermo",
                )
            else:
                event = factories.container_state(
                    device_id,
                    f"{device_id}-app",
                    seq,
                    image=factories.image_ref("thermo"),
                    health="healthy",
                    restart_count=n,
                )
            out.append((event_topic(device_id, event.category), encode(event)))
    return out


def publisher(
    port: int, devices: int, total: int, ready: Event, go: Event, done: Queue[tuple[int, float]]
) -> None:
    """Child process: publish ``total`` events QoS 1 (20 in flight) as fast as acks allow."""
    messages = make_events(devices, total)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-pub-{secrets.token_hex(3)}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(20)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.set()
    go.wait()
    start = time.perf_counter()
    last = None
    for topic, payload in messages:
        last = client.publish(topic, payload, qos=1)
    assert last is not None
    last.wait_for_publish(120)
    done.put((len(messages), time.perf_counter() - start))
    client.disconnect()
    client.loop_stop()


def start_publisher(
    port: int, devices: int, total: int
) -> tuple[BaseProcess, Event, Queue[tuple[int, float]]]:
    ctx = mp.get_context("spawn")
    ready, go = ctx.Event(), ctx.Event()
    done: Queue[tuple[int, float]] = ctx.Queue()
    proc = ctx.Process(target=publisher, args=(port, devices, total, ready, go, done))
    proc.start()
    if not ready.wait(120):
        raise RuntimeError("publisher did not start")
    return proc, go, done


@dataclass
class Row:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def raw_rate(port: int, devices: int, total: int) -> Row:
    """One paho publisher (child process), one paho subscriber (here), QoS 1."""
    got = 0
    finished = threading.Event()
    first: list[float] = []

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal got
        if not first:
            first.append(time.perf_counter())
        got += 1
        if got >= total:
            finished.set()

    sub = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-sub", protocol=MQTTProtocolVersion.MQTTv5
    )
    subscribed = threading.Event()
    sub.on_message = on_message
    sub.on_subscribe = lambda *_args: subscribed.set()
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe("fleetwire/v1/devices/+/events/+", qos=1)
    # Messages published before the broker took the subscription would never reach it.
    if not subscribed.wait(10):
        raise RuntimeError("no SUBACK from mosquitto")
    proc, go, _done = start_publisher(port, devices, total)
    t0 = time.perf_counter()
    go.set()
    finished.wait(120)
    elapsed = time.perf_counter() - t0
    proc.join(30)
    sub.disconnect()
    sub.loop_stop()
    return Row("Mosquitto raw QoS 1 (1 publisher, 1 subscriber)", got, elapsed)


def _projector(
    url: str, port: int, client_id: str, group: str, worker: bool
) -> tuple[Projector, Engine]:
    """A started projector (its worker process, if any, is up when this returns)."""
    settings = Settings(
        projector_worker_process=worker,
        environment="development",
        database_url=url,
        broker_url=f"mqtt://127.0.0.1:{port}",
        client_id=client_id,
        projector_share_group=group,
        gap_timeout_s=60,
    )
    engine = make_engine(url)
    projector = Projector(engine, settings)
    projector.start()
    return projector, engine


def _wait_connected(projector: Projector) -> None:
    wait_until(lambda: projector.client.subscribed, 10, "the projector to subscribe", interval=0.01)


def _wait_processed(projector: Projector, total: int) -> float:
    t0 = time.perf_counter()
    deadline = time.monotonic() + 60
    while projector.processed < total and time.monotonic() < deadline:
        time.sleep(0.005)
    return time.perf_counter() - t0


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in ("event", "held_event", "container", "deployment", "device"):
            conn.execute(text(f"DELETE FROM {table}"))


def _stored(engine: Engine, name: str, total: int) -> int:
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM event")).scalar() or 0
        held = conn.execute(text("SELECT count(*) FROM held_event")).scalar() or 0
    if stored != total or held:
        print(f"warning: {name}: {stored} events stored, {held} held, of {total}", file=sys.stderr)
    return int(stored)


def projector_rates(
    db: str, url: str, port: int, devices: int, total: int, worker: bool = False
) -> list[Row]:
    """Two runs of one projector into ``url`` (emptied first).

    backlog: the projector's persistent session is subscribed but offline while ``total`` events
    are published (Mosquitto queues them); then the projector connects and drains the backlog:
    what one projector sustains, independent of how fast one publisher can publish.
    live: a new session; the publisher publishes while the projector consumes.
    """
    upgrade(url)
    rows: list[Row] = []
    label = f"{db}, {'worker process' if worker else 'one process'}"
    client_id, group = f"bench-{secrets.token_hex(3)}", f"bench-{secrets.token_hex(3)}"
    projector, engine = _projector(url, port, client_id, group, worker)
    _clear(engine)
    _wait_connected(projector)
    projector.stop()
    proc, go, done = start_publisher(port, devices, total)
    go.set()
    done.get(timeout=120)
    proc.join(30)
    projector, engine = _projector(url, port, client_id, group, worker)
    seconds = _wait_processed(projector, total)  # from start(): connect + drain
    projector.stop()
    print(f"  {label} backlog: {projector.batches} batches", file=sys.stderr)
    rows.append(Row(f"Projector -> {label}, backlog", _stored(engine, db, total), seconds))
    _clear(engine)
    engine.dispose()
    group = f"bench-{secrets.token_hex(3)}"
    projector, engine = _projector(url, port, f"bench-{secrets.token_hex(3)}", group, worker)
    _wait_connected(projector)
    proc, go, done = start_publisher(port, devices, total)
    go.set()
    seconds = _wait_processed(projector, total)
    proc.join(30)
    projector.stop()
    print(f"  {label} live: {projector.batches} batches", file=sys.stderr)
    rows.append(Row(f"Projector -> {label}, live", _stored(engine, db, total), seconds))
    engine.dispose()
    return rows


def pg_database(base: str) -> tuple[str, str]:
    """Create a throwaway database; returns (its URL, its name)."""
    url = make_url(base)
    name = f"fw_bench_{secrets.token_hex(4)}"
    conninfo = (
        f"host={url.host} port={url.port or 5432} user={url.username} "
        f"password={url.password} dbname={url.database or 'postgres'}"
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.set(database=name).render_as_string(hide_password=False), conninfo


def drop_pg(conninfo: str, name: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def write_doc(rows: list[Row], devices: int, total: int) -> str:
    goals = {"SQLite": 10_000, "PostgreSQL": 5_000}
    lines = [
        "| measurement | events | seconds | events/s | goal |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        goal = next((g for k, g in goals.items() if k in r.name), None)
        verdict = (
            "" if goal is None else (f">= {goal:,}: " + ("met" if r.rate >= goal else "NOT met"))
        )
        lines.append(f"| {r.name} | {r.events:,} | {r.seconds:.2f} | {r.rate:,.0f} | {verdict} |")
    table = "\n".join(lines)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc = f"""# Benchmarks

Generated by `uv run python bench/projection.py` on {now}
({platform.machine()}, {os.cpu_count()} cores shared with other work, load average
{os.getloadavg()[0]:.1f} at the end of the run, Python
{platform.python_version()}, Mosquitto 2.0, PostgreSQL 15, SQLite {sqlite3.sqlite_version}).

## Projection throughput

{total:,} events from {devices} devices (deployment-state and container-state events, in `seq`
order per device), published QoS 1 by one paho client in a separate process with 20 messages in
flight, as a device would. One projector (one MQTT 5 client, manual PUBACK after commit,
receive maximum 1000) decodes, orders, projects and stores them: every event becomes an
event-history row plus updated device/deployment/container rows, in batches of whatever is
queued (one transaction per batch).

{table}

"raw" is the broker's QoS 1 rate with the same publisher and a subscriber that does nothing:
the ceiling for any consumer fed by one device-like publisher here. "backlog" drains events that
Mosquitto queued for the projector's offline persistent session: what one projector sustains,
independent of the publisher. "live" runs publisher and projector at the same time (publisher,
broker and projector then compete for the 2 cores). "one process" receives (paho network thread)
and projects in one interpreter; "worker process" (`FLEETWIRE_PROJECTOR_WORKER_PROCESS=true`)
decodes, projects and stores in a child process while the parent receives and acknowledges.
Numbers vary by 20-30% between runs on this shared machine; run the script again to compare.

## Where the time goes

Measured in-process (no broker; `BatchStore.process` on batches of 1,000, 100 devices):
about 13,000-14,000 events/s into SQLite and 11,000 into PostgreSQL. paho alone drains a
Mosquitto backlog at about 15,000-17,000 messages/s with manual PUBACKs. In one interpreter the
two add up (one GIL): roughly 1 / (1/15,000 + 1/13,000), i.e. 6,000-7,500 events/s, which is what
the "one process" rows show. Per event the projection spends most of its time in pydantic
decoding (the protocol codec), the projection's row copies and the event-history insert; database
round trips are per batch, not per event (a batch is whatever is queued, up to 5,000; Mosquitto
sends up to the projector's receive maximum of 1,000 unacknowledged messages).

To scale further, run more projectors: they share a `$share/fleetwire-projector/...`
subscription on MQTT 5 brokers; per-device ordering across instances is kept by the
`(device, seq)` sequencing in the database (events that arrive ahead are held in `held_event`
until their predecessors are stored).
"""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(doc)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--pg", default=os.environ.get("FLEETWIRE_BENCH_PG", DEFAULT_PG))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    total = args.events - args.events % args.devices
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp))
        try:
            rows = [raw_rate(broker.port, args.devices, total)]
            print(f"{rows[-1].name}: {rows[-1].rate:,.0f}/s", flush=True)
            for worker in (False, True):
                for row in projector_rates(
                    "SQLite", f"sqlite:///{tmp}/bench.db", broker.port, args.devices, total, worker
                ):
                    rows.append(row)
                    print(f"{row.name}: {row.rate:,.0f}/s", flush=True)
            pg_url, conninfo = pg_database(args.pg)
            try:
                for worker in (False, True):
                    for row in projector_rates(
                        "PostgreSQL", pg_url, broker.port, args.devices, total, worker
                    ):
                        rows.append(row)
                        print(f"{row.name}: {row.rate:,.0f}/s", flush=True)
            finally:
                drop_pg(conninfo, make_url(pg_url).database or "")
        finally:
            broker.stop()
    print(write_doc(rows, args.devices, total))


if __name__ == "__main__":
    main()
