"""A thin paho-mqtt adapter: MQTT 5 with a fallback to 3.1.1, persistent sessions, bounded waits.

The adapter does not reconnect by itself: the relay and the projector notice ``connected`` is
false and call :meth:`MqttClient.connect` again with their own backoff, and re-subscribe when the
broker did not keep their session.

The edge agent has its own MQTT code (``fleetwire.edge.session``), on purpose: edge and cloud
never depend on each other, ``protocol`` does no I/O, and the lines the two have alike (MQTT 5
CONNECT properties, user properties only on MQTT 5, ``ReasonCode.is_failure``) are too few for a
package of their own. The policies differ: here a fallback to 3.1.1 on any refusal but an
authentication one, tried at every :meth:`MqttClient.connect`, and a wait for each PUBACK that
raises :class:`PublishRejected` on a failure reason code; the agent keeps a window over its
outbox, never waits on a publish and retries refused events itself. The wire contract both obey
(topics, envelope, its user-property mirror) lives in ``fleetwire.protocol``.
"""

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleetwire.cloud.errors import BrokerUnavailable, PublishRejected
from fleetwire.cloud.settings import Settings

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, int, int], None]
"""Called on the network thread with (topic, payload, mid, qos)."""

# CONNACK reason codes that a protocol downgrade cannot fix.
_AUTH_FAILURES = frozenset({0x86, 0x87, 0x8C})


@dataclass(frozen=True)
class BrokerAddress:
    """Where and as whom to connect."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "BrokerAddress":
        """The broker of ``settings``."""
        password = settings.broker_password
        return cls(
            host=settings.broker_host,
            port=settings.broker_port,
            tls=settings.broker_tls,
            username=settings.broker_username,
            password=password.get_secret_value() if password else None,
        )


class MqttClient:
    """One paho client on its own network thread."""

    def __init__(
        self,
        broker: BrokerAddress,
        client_id: str,
        *,
        clean: bool = False,
        session_expiry_s: int = 7 * 24 * 3600,
        receive_maximum: int = 1000,
        max_inflight: int = 20,
        manual_ack: bool = False,
        on_message: MessageHandler | None = None,
        protocols: tuple[MQTTProtocolVersion, ...] = (
            MQTTProtocolVersion.MQTTv5,
            MQTTProtocolVersion.MQTTv311,
        ),
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.clean = clean
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.max_inflight = max_inflight
        self.manual_ack = manual_ack
        self.on_message = on_message
        self.protocols = protocols
        self.protocol: MQTTProtocolVersion | None = None
        self.session_present = False
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._answered = threading.Event()
        self._reason: ReasonCode | None = None
        # PUBACK reason code per mid (MQTT 5): paho marks a message published whatever the code.
        self._puback: dict[int, ReasonCode] = {}
        # SUBACK reason codes per mid, None until the SUBACK arrives; guarded by the condition.
        self._subacks: dict[int, list[ReasonCode] | None] = {}
        self._suback_ready = threading.Condition()
        self._subscribed = threading.Event()

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected.is_set()

    @property
    def subscribed(self) -> bool:
        """True once the broker granted this connection's subscriptions (SUBACK received)."""
        return self._subscribed.is_set() and self.connected

    @property
    def is_v5(self) -> bool:
        """True when connected with MQTT 5."""
        return self.protocol == MQTTProtocolVersion.MQTTv5

    def _make(self, protocol: MQTTProtocolVersion) -> mqtt.Client:
        v5 = protocol == MQTTProtocolVersion.MQTTv5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=protocol,
            clean_session=None if v5 else self.clean,
            manual_ack=self.manual_ack,
        )
        client.max_inflight_messages_set(self.max_inflight)
        client.max_queued_messages_set(0)
        # Re-dialling is the application's job; keep paho's own retry out of the way.
        client.reconnect_delay_set(min_delay=3600, max_delay=3600)
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set_context(ssl.create_default_context())
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        self._puback.clear()
        return client

    def _on_connect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self._reason = reason
        self.session_present = bool(flags.session_present)
        if not reason.is_failure:
            self._connected.set()
        self._answered.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if self._connected.is_set():
            log.warning("mqtt %s disconnected: %s", self.client_id, reason)
        self._connected.clear()
        self._subscribed.clear()
        self._answered.set()
        with self._suback_ready:
            self._suback_ready.notify_all()

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        with self._suback_ready:
            if mid in self._subacks:
                self._subacks[mid] = list(reasons)
                self._suback_ready.notify_all()

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        # Called before paho marks the message published, so a waiter always finds the code.
        self._puback[mid] = reason

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.on_message is not None:
            self.on_message(msg.topic, bytes(msg.payload), msg.mid, msg.qos)

    def _try(self, protocol: MQTTProtocolVersion, timeout: float) -> ReasonCode | None:
        client = self._make(protocol)
        props = None
        clean_start: bool | Literal[3] = mqtt.MQTT_CLEAN_START_FIRST_ONLY
        if protocol == MQTTProtocolVersion.MQTTv5:
            clean_start = self.clean
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0 if self.clean else self.session_expiry_s
            props.ReceiveMaximum = self.receive_maximum
        self._answered.clear()
        self._reason = None
        try:
            client.connect(
                self.broker.host,
                self.broker.port,
                keepalive=30,
                clean_start=clean_start,
                properties=props,
            )
        except (OSError, ValueError) as exc:
            raise BrokerUnavailable(
                f"cannot reach {self.broker.host}:{self.broker.port}: {exc}"
            ) from exc
        client.loop_start()
        self._answered.wait(timeout)
        if self._connected.is_set():
            self._client = client
            self.protocol = protocol
            return None
        client.loop_stop()
        client.disconnect()
        return self._reason

    def connect(self, timeout: float = 5.0) -> None:
        """Connect, preferring MQTT 5; raises :class:`BrokerUnavailable`."""
        self.close()
        last: ReasonCode | None = None
        for protocol in self.protocols:
            last = self._try(protocol, timeout)
            if self.connected:
                log.info(
                    "mqtt %s connected to %s:%s with %s (session present: %s)",
                    self.client_id,
                    self.broker.host,
                    self.broker.port,
                    protocol.name,
                    self.session_present,
                )
                return
            if last is not None and last.value in _AUTH_FAILURES:
                break
        raise BrokerUnavailable(
            f"{self.broker.host}:{self.broker.port} refused {self.client_id}: {last or 'timeout'}"
        )

    def _require(self) -> mqtt.Client:
        if self._client is None or not self.connected:
            raise BrokerUnavailable("not connected to the broker")
        return self._client

    def subscribe(self, filters: list[str], qos: int = 1, timeout: float = 10.0) -> None:
        """Subscribe to ``filters`` and wait for the broker's SUBACK.

        Raises :class:`BrokerUnavailable` when the connection drops or no SUBACK comes in
        ``timeout``, and when the broker refuses a filter (an ACL): a consumer that believes it
        is subscribed when it is not would wait for ever.
        """
        client = self._require()
        # Held across the send: the network thread's SUBACK callback waits for the mid to be known.
        with self._suback_ready:
            result, mid = client.subscribe([(f, qos) for f in filters])
            if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
                raise BrokerUnavailable(f"subscribe failed: {mqtt.error_string(result)}")
            self._subacks[mid] = None
            self._suback_ready.wait_for(
                lambda: self._subacks[mid] is not None or not self.connected, timeout
            )
            reasons = self._subacks.pop(mid)
        if reasons is None:
            raise BrokerUnavailable(f"no SUBACK for {filters} within {timeout} s")
        refused = [f"{f} ({r})" for f, r in zip(filters, reasons, strict=False) if r.is_failure]
        if refused:
            raise BrokerUnavailable(f"the broker refused the subscription to {', '.join(refused)}")
        self._subscribed.set()

    def publish_nowait(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        user_properties: list[tuple[str, str]] | None = None,
    ) -> mqtt.MQTTMessageInfo:
        """Publish; the caller waits on the returned info for the PUBACK.

        ``user_properties`` are sent on MQTT 5 only (they mirror the envelope).
        """
        props = None
        if user_properties and self.is_v5:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.UserProperty = user_properties
        info = self._require().publish(topic, payload, qos=qos, retain=retain, properties=props)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_QUEUE_SIZE):
            raise BrokerUnavailable(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        return info

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> None:
        """Publish and wait for the PUBACK (QoS 1); raises :class:`BrokerUnavailable`."""
        info = self.publish_nowait(topic, payload, qos)
        self.wait_published(info, timeout)

    def wait_published(self, info: mqtt.MQTTMessageInfo, timeout: float) -> None:
        """Wait for the PUBACK of ``info``; raises :class:`BrokerUnavailable` on a timeout and
        :class:`PublishRejected` when the broker answered with a failure reason code (MQTT 5).
        """
        _wait_for_puback(info, timeout)
        reason = self._puback.pop(info.mid, None)
        if reason is not None and reason.is_failure:
            raise PublishRejected(reason)

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received message (with ``manual_ack``)."""
        if self._client is not None and qos > 0:
            self._client.ack(mid, qos)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        client, self._client = self._client, None
        self._connected.clear()
        self._subscribed.clear()
        if client is not None:
            client.disconnect()
            client.loop_stop()


def _wait_for_puback(info: mqtt.MQTTMessageInfo, timeout: float) -> None:
    # Any PUBACK, whatever its reason code: MqttClient.wait_published checks the code after.
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError) as exc:
        raise BrokerUnavailable(f"publish not acknowledged: {exc}") from exc
    if not info.is_published():
        raise BrokerUnavailable(f"publish not acknowledged within {timeout} s")
