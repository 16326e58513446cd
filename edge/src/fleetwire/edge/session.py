"""The agent's MQTT session: connect, birth, commands in, the outbox out, reconnect.

A thin layer over paho-mqtt 2.x; the application owns reconnection (paho's own reconnect is off).
Each connection attempt builds a fresh paho client, so nothing in paho's memory outlives a
connection: the SQLite outbox is the only queue, replayed from its oldest row on every connect.

Threads: :meth:`MqttSession.run` (the caller's thread) connects, publishes birth and pumps the
outbox; one paho network thread per connection; one command worker that hands each command to
the handler and only then acknowledges it (paho's manual ack), so a command the agent crashed on
is delivered again and answered from the journal. Which PUBACK deletes which outbox event is the
pure :class:`~fleetwire.edge.puback_ledger.PubackLedger`, one per connection; this module does
the paho I/O around it.

Not shared with the cloud's ``fleetwire.cloud.mqtt`` adapter, on purpose. Edge and cloud never
depend on each other and ``protocol`` does no I/O, so one helper would need a package of its own,
for the few lines the two have alike (MQTT 5 CONNECT properties, ``clean_start``, user properties
only on MQTT 5, paho's ``ReasonCode.is_failure`` on a PUBACK). Their policies differ: the agent
falls back to 3.1.1 only when the broker refuses MQTT 5 or does not answer it (amqtt 0.12) and
stays there, never waits on a publish (a window over the outbox, refused events retried after a
backoff), acknowledges commands only once handled and sets a will; the cloud's client falls back
on any refusal but an authentication one, at each ``connect()``, and waits for each PUBACK,
raising on a refusal. What both must agree on (topics, envelope, the user properties mirroring
it) is shared in ``fleetwire.protocol``.
"""

import json
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleetwire.edge.backoff import Backoff
from fleetwire.edge.config import AgentConfig
from fleetwire.edge.errors import StoreError
from fleetwire.edge.puback_ledger import AckedPublish, PubackLedger
from fleetwire.edge.store import OutboxRecord, Store
from fleetwire.protocol.codec import encode, user_properties
from fleetwire.protocol.envelope import device_source
from fleetwire.protocol.events import PresenceBirth, PresenceDeath, PresenceDeathData
from fleetwire.protocol.topics import command_topic, event_topic, presence_topic

log = logging.getLogger(__name__)

QOS: Final = 1
# CONNACK reason "unsupported protocol version": 132 on MQTT 5, return code 1 on MQTT 3.1.1.
_UNSUPPORTED_PROTOCOL: Final = frozenset({1, 132})
_SHUTDOWN_WAIT_S: Final = 5.0
_IDLE_WAIT_S: Final = 1.0


class MqttVersion(StrEnum):
    """The MQTT protocol version of a connection."""

    MQTT5 = "5"
    MQTT311 = "3.1.1"


@dataclass
class _Connection:
    """State of one paho client (one TCP connection); callbacks only touch their own."""

    client: mqtt.Client
    protocol: MqttVersion
    ledger: PubackLedger  # guarded by ``lock``: the network thread and the pump both use it
    connack: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)
    reason: ReasonCode | None = None
    session_present: bool = False
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_sent: int = 0  # the outbox cursor: highest seq published in order (the pump's only)


class _ConnectFailed(Exception):
    def __init__(self, message: str, *, protocol_problem: bool = False) -> None:
        super().__init__(message)
        self.protocol_problem = protocol_problem


class MqttSession:
    """Keeps the device connected and the outbox flowing until ``stop`` is set."""

    def __init__(
        self,
        config: AgentConfig,
        store: Store,
        *,
        birth: Callable[[], PresenceBirth],
        on_command: Callable[[bytes], object],
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.birth = birth
        self.on_command = on_command
        self.backoff = backoff or Backoff(config.backoff_initial_s, config.backoff_max_s)
        self.device_id = config.device_id
        self.connected = threading.Event()
        self.protocol: MqttVersion | None = None
        self._extra = {"device_id": self.device_id}
        self._wake = threading.Event()
        self._conn: _Connection | None = None
        self._commands: queue.Queue[tuple[_Connection, mqtt.MQTTMessage] | None] = queue.Queue()
        self._fallen_back = config.protocol == "3.1.1"

    # --- public ---
    def wake(self) -> None:
        """There is something new in the outbox (thread-safe, non-blocking)."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Connect, serve, reconnect with backoff; on ``stop`` publish death and disconnect."""
        worker = threading.Thread(
            target=self._command_worker, name=f"fleetwire-commands-{self.device_id}", daemon=True
        )
        worker.start()
        try:
            while not stop.is_set():
                protocol = MqttVersion.MQTT311 if self._fallen_back else MqttVersion.MQTT5
                try:
                    conn = self._connect(protocol)
                except _ConnectFailed as exc:
                    if (
                        exc.protocol_problem
                        and protocol is MqttVersion.MQTT5
                        and self.config.protocol == "auto"
                    ):
                        log.info(
                            "broker did not accept MQTT 5 (%s): falling back to MQTT 3.1.1",
                            exc,
                            extra=self._extra,
                        )
                        self._fallen_back = True
                        continue
                    if (
                        exc.protocol_problem
                        and protocol is MqttVersion.MQTT311
                        and self.config.protocol == "auto"
                    ):
                        # 3.1.1 got no answer either: the broker was not refusing MQTT 5 but
                        # struggling; ask for MQTT 5 again next time.
                        self._fallen_back = False
                    delay = self.backoff.next_delay()
                    log.warning(
                        "cannot connect to %s: %s; retrying in %.1f s",
                        self.config.broker,
                        exc,
                        delay,
                        extra=self._extra,
                    )
                    stop.wait(delay)
                    continue
                self.backoff.reset()
                self._serve(conn, stop)
                if stop.is_set():
                    self._shutdown(conn)
                else:
                    self._drop(conn)
                    delay = self.backoff.next_delay()
                    log.warning(
                        "connection to %s lost; reconnecting in %.1f s",
                        self.config.broker,
                        delay,
                        extra=self._extra,
                    )
                    stop.wait(delay)
        finally:
            self._commands.put(None)
            worker.join(_SHUTDOWN_WAIT_S)

    def kill_connection(self) -> None:
        """Cut the TCP connection without DISCONNECT (the broker publishes the will). For tests."""
        conn = self._conn
        sock = conn.client.socket() if conn is not None else None
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)

    # --- connecting ---
    def _new_client(self, protocol: MqttVersion) -> _Connection:
        v5 = protocol is MqttVersion.MQTT5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        ledger = PubackLedger(
            self.config.max_inflight,
            Backoff(self.config.backoff_initial_s, self.config.backoff_max_s),
        )
        conn = _Connection(client=client, protocol=protocol, ledger=ledger)
        client.max_inflight_messages_set(self.config.max_inflight)
        client.connect_timeout = self.config.connect_timeout_s
        if self.config.username is not None:
            client.username_pw_set(self.config.username, self.config.broker_password())
        if self.config.address.tls:
            client.tls_set_context(self._tls_context())
        death = PresenceDeath(
            source=device_source(self.device_id),
            subject=self.device_id,
            data=PresenceDeathData(reason="connection lost"),
        )
        client.will_set(presence_topic(self.device_id), encode(death), qos=QOS, retain=True)
        client.on_connect = lambda _c, _u, flags, reason, _p: self._on_connect(conn, flags, reason)
        client.on_disconnect = lambda _c, _u, _f, reason, _p: self._on_disconnect(conn, reason)
        client.on_message = lambda _c, _u, msg: self._commands.put((conn, msg))
        client.on_publish = lambda _c, _u, mid, reason, _p: self._on_publish(conn, mid, reason)
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        ca = self.config.ca_file
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
        if self.config.cert_file is not None and self.config.key_file is not None:
            context.load_cert_chain(str(self.config.cert_file), str(self.config.key_file))
        return context

    def _connect(self, protocol: MqttVersion) -> _Connection:
        conn = self._new_client(protocol)
        address = self.config.address
        properties: Properties | None = None
        if protocol is MqttVersion.MQTT5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.config.session_expiry_s
        v5 = protocol is MqttVersion.MQTT5
        try:
            conn.client.connect(
                address.host,
                address.port,
                keepalive=self.config.keepalive_s,
                clean_start=False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=properties,
            )
        except (OSError, ValueError) as exc:
            raise _ConnectFailed(f"{type(exc).__name__}: {exc}") from None
        conn.thread = threading.Thread(
            target=conn.client.loop_forever,
            name=f"fleetwire-mqtt-{self.device_id}",
            daemon=True,
        )
        conn.thread.start()
        if not conn.connack.wait(self.config.connect_timeout_s) or conn.reason is None:
            closed = conn.closed.is_set()
            self._drop(conn)
            what = "closed the connection" if closed else "sent no CONNACK"
            raise _ConnectFailed(
                f"broker {what} within {self.config.connect_timeout_s} s (MQTT {protocol})",
                protocol_problem=True,
            )
        if conn.reason.is_failure:
            self._drop(conn)
            raise _ConnectFailed(
                f"CONNECT refused: {conn.reason}",
                protocol_problem=conn.reason.value in _UNSUPPORTED_PROTOCOL,
            )
        self.protocol = protocol
        log.info(
            "connected to %s as %s (MQTT %s, session %s)",
            self.config.broker,
            self.device_id,
            protocol,
            "resumed" if conn.session_present else "new",
            extra=self._extra,
        )
        return conn

    def _drop(self, conn: _Connection) -> None:
        """Close a connection that failed or was lost, without waiting on the network."""
        self.connected.clear()
        if self._conn is conn:
            self._conn = None
        conn.client.disconnect()
        if conn.thread is not None:
            conn.thread.join(_SHUTDOWN_WAIT_S)
            if conn.thread.is_alive():
                log.warning("MQTT network thread did not stop", extra=self._extra)

    # --- paho callbacks (network thread) ---
    def _on_connect(self, conn: _Connection, flags: mqtt.ConnectFlags, reason: ReasonCode) -> None:
        conn.reason = reason
        conn.session_present = flags.session_present
        conn.connack.set()

    def _on_disconnect(self, conn: _Connection, reason: ReasonCode) -> None:
        conn.closed.set()
        # Before CONNACK: let _connect() stop waiting at once.
        conn.connack.set()
        if self._conn is conn:
            self.connected.clear()
            log.info("disconnected: %s", reason, extra=self._extra)
        self._wake.set()

    def _on_publish(self, conn: _Connection, mid: int, reason: ReasonCode) -> None:
        # Called by paho with its own lock held: only short work under our lock here.
        # paho reports a publish as done whatever the reason code; a failure (MQTT 5 PUBACK
        # >= 0x80: not authorized, quota exceeded, ...) means the broker did not take it.
        delivered = not reason.is_failure
        with conn.lock:
            outcome = conn.ledger.puback(mid, delivered=delivered, now=time.monotonic())
        if not delivered and outcome.publish is AckedPublish.PRESENCE:
            log.warning("broker refused a presence publish: %s", reason, extra=self._extra)
        elif not delivered:
            log.warning(
                "broker refused a publish (%s): %s; kept in the outbox, retried later",
                f"seq {outcome.seq}" if outcome.seq is not None else f"mid {mid}",
                reason,
                extra=self._extra,
            )
        self._wake.set()

    def _publish_presence(self, conn: _Connection, info: mqtt.MQTTMessageInfo) -> None:
        """Remember a presence publish's mid so that its PUBACK acknowledges no event."""
        with conn.lock:
            conn.ledger.presence_published(info.mid)

    # --- serving ---
    def _serve(self, conn: _Connection, stop: threading.Event) -> None:
        client = conn.client
        client.subscribe(command_topic(self.device_id), qos=QOS)
        birth = self.birth()
        info = client.publish(
            presence_topic(self.device_id),
            encode(birth),
            qos=QOS,
            retain=True,
            properties=self._properties(user_properties(birth), conn),
        )
        self._publish_presence(conn, info)
        self._conn = conn
        self.connected.set()
        while not stop.is_set() and not conn.closed.is_set():
            self._wake.clear()
            self._pump(conn)
            self._wake.wait(_IDLE_WAIT_S)

    def _pump(self, conn: _Connection) -> None:
        """Delete acknowledged events, then publish more, up to the in-flight window."""
        with conn.lock:
            work = conn.ledger.take(time.monotonic())
        if work.acked:
            try:
                self.store.ack_many(work.acked)
            except StoreError:
                log.exception("could not delete acknowledged events", extra=self._extra)
        room = work.room
        for n, seq in enumerate(work.retry):
            if room <= 0 or not self._retry(conn, seq):
                with conn.lock:  # not sent now: due again on the next pump
                    conn.ledger.requeue(work.retry[n:])
                return
            room -= 1
        if room <= 0:
            return
        for record in self.store.pending(conn.last_sent, room):
            if not self._publish(conn, record):
                return
            conn.last_sent = record.seq

    def _retry(self, conn: _Connection, seq: int) -> bool:
        """Publish a refused event again; False when it could not be handed to paho."""
        records = self.store.pending(seq - 1, 1)
        if not records or records[0].seq != seq:
            return True  # gone (compacted): nothing to retry
        return self._publish(conn, records[0])

    def _publish(self, conn: _Connection, record: OutboxRecord) -> bool:
        info = conn.client.publish(
            event_topic(self.device_id, record.category),
            record.payload,
            qos=QOS,
            properties=self._properties(_user_properties(record.payload), conn),
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        with conn.lock:
            acked = conn.ledger.event_published(info.mid, record.seq, time.monotonic())
        if acked:
            self._wake.set()
        return True

    @staticmethod
    def _properties(props: list[tuple[str, str]], conn: _Connection) -> Properties | None:
        if conn.protocol is not MqttVersion.MQTT5:
            return None
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = props
        return properties

    def _shutdown(self, conn: _Connection) -> None:
        """Clean exit: drain in-flight acks briefly, publish death, DISCONNECT (no will)."""
        client = conn.client
        if not conn.closed.is_set():
            death = PresenceDeath(
                source=device_source(self.device_id),
                subject=self.device_id,
                data=PresenceDeathData(reason="agent stopped"),
            )
            info = client.publish(
                presence_topic(self.device_id), encode(death), qos=QOS, retain=True
            )
            self._publish_presence(conn, info)
            info.wait_for_publish(_SHUTDOWN_WAIT_S)
            self._pump(conn)  # store the acks that arrived meanwhile
        self._drop(conn)

    # --- commands ---
    def _command_worker(self) -> None:
        while True:
            item = self._commands.get()
            if item is None:
                return
            conn, msg = item
            try:
                self.on_command(bytes(msg.payload))
            except Exception:
                # Not acknowledged: the broker delivers it again after a reconnect.
                log.exception("command handling failed; it will be redelivered", extra=self._extra)
                continue
            if not conn.closed.is_set():
                conn.client.ack(msg.mid, msg.qos)


def _user_properties(payload: bytes) -> list[tuple[str, str]]:
    """MQTT 5 user properties mirroring an encoded envelope (see codec.user_properties)."""
    obj = json.loads(payload)
    props = [(f"ce_{k}", str(obj[k])) for k in ("specversion", "id", "type", "source") if k in obj]
    props.extend(
        (k, str(obj[k])) for k in ("traceparent", "tracestate", "correlationid", "seq") if k in obj
    )
    return props
