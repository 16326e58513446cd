"""What the projector takes off the broker: a received message, its decoding, a batch's outcome.

Decoding checks everything a message must satisfy before it may touch the read model: a known
topic, a payload the protocol codec accepts, an event that belongs on its topic's category and
whose source is the topic's device. Anything else is :class:`Invalid` and becomes a dead letter.
"""

from dataclasses import dataclass, field
from functools import lru_cache

from fleetwire.protocol.codec import Codec
from fleetwire.protocol.envelope import EventEnvelope
from fleetwire.protocol.errors import ProtocolError
from fleetwire.protocol.events import DeviceEvent, PresenceBirth, PresenceDeath
from fleetwire.protocol.topics import EVENTS, PRESENCE


@dataclass(frozen=True)
class Received:
    """A message as it came off the broker.

    ``mid``, ``qos`` and ``generation`` (the connection it arrived on) only matter to the consumer,
    which acknowledges it; the store reads ``topic`` and ``payload``.
    """

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

    def add(self, other: "BatchResult") -> None:
        """Count ``other`` (a part of the same batch) in this result."""
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.held += other.held
        self.dead += other.dead
        self.devices |= other.devices


class Invalid(Exception):
    """A message that goes to the dead-letter table."""


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
