"""The CloudEvents 1.0 envelope every Fleetwire message travels in (JSON structured mode).

Each concrete message is a subclass that pins ``type`` to a literal and ``data`` to a closed
model. Envelope attributes the protocol does not know (other CloudEvents extensions) are
ignored on decode, as CloudEvents asks; ``data`` models are closed.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from fleetwire.protocol.errors import ProtocolError
from fleetwire.protocol.ids import DEVICE_ID_PATTERN, new_id

CLOUD_SOURCE: Final = "fleetwire://cloud"
DEVICE_SOURCE_PREFIX: Final = "fleetwire://devices/"
TYPE_PREFIX: Final = "io.fleetwire."
# CloudEvents' REQUIRED attributes: models give them defaults for convenience when building a
# message, but a received message must carry them (a defaulted ``id`` would defeat dedupe).
REQUIRED_ATTRIBUTES: Final = ("specversion", "id", "source", "type")
FIRST_SEQ: Final = 1
"""Where a device's event sequence starts: the first event a device ever publishes has seq 1.

Each further event gets the next integer, without gaps; a consumer that has never seen a device
expects this ``seq`` first."""

_TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
_DEVICE_SOURCE_RE = re.compile(re.escape(DEVICE_SOURCE_PREFIX) + DEVICE_ID_PATTERN[1:])
_TYPE_VERSION_RE = re.compile(r"^(?P<family>.+)\.v(?P<version>0|[1-9][0-9]*)$")

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
Source = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def device_source(device_id: str) -> str:
    """The CloudEvents ``source`` of events a device produces."""
    return f"{DEVICE_SOURCE_PREFIX}{device_id}"


def device_id_from_source(source: str) -> str:
    """The device id in a device ``source``, or :class:`ProtocolError` if it names none."""
    if not _DEVICE_SOURCE_RE.fullmatch(source):
        raise ProtocolError(f"source {source!r} is not fleetwire://devices/<device-id>")
    return source[len(DEVICE_SOURCE_PREFIX) :]


def split_type(message_type: str) -> tuple[str, int]:
    """Split ``io.fleetwire.x.y.v2`` into its family ``io.fleetwire.x.y`` and version ``2``."""
    m = _TYPE_VERSION_RE.fullmatch(message_type)
    if m is None:
        raise ProtocolError(f"message type {message_type!r} has no .v<N> version suffix")
    return m["family"], int(m["version"])


class Data(BaseModel):
    """Base of every ``data`` payload: frozen and closed."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Envelope(BaseModel):
    """CloudEvents 1.0 attributes plus Fleetwire's extensions."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # The message category on the wire: "command", "event" or "presence"; set by subclasses.
    kind: ClassVar[str] = "message"

    specversion: Literal["1.0"] = "1.0"
    id: Identifier = Field(default_factory=new_id, description="Unique, time-sortable id.")
    source: Source
    type: str
    time: AwareDatetime = Field(default_factory=utcnow)
    subject: Annotated[str, StringConstraints(max_length=256)] | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: Data
    traceparent: Annotated[str, StringConstraints(pattern=_TRACEPARENT)] | None = Field(
        default=None, description="W3C trace context (CloudEvents distributed tracing extension)."
    )
    tracestate: Annotated[str, StringConstraints(max_length=512)] | None = None
    correlationid: Identifier | None = Field(
        default=None, description="Id of the command this message answers."
    )


class CommandEnvelope(Envelope):
    """A command from the cloud to one device."""

    kind: ClassVar[str] = "command"
    source: Source = CLOUD_SOURCE
    expires: AwareDatetime | None = Field(
        default=None, description="After this instant the device rejects the command as expired."
    )

    def is_expired(self, now: datetime) -> bool:
        """Tell whether the command has expired at ``now``."""
        return self.expires is not None and now >= self.expires


class EventEnvelope(Envelope):
    """An event a device publishes; ``seq`` orders a device's events without gaps."""

    kind: ClassVar[str] = "event"
    seq: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = Field(
        default=None,
        description="Per-device event sequence number, without gaps; a device's first event has 1.",
    )

    @property
    def device_id(self) -> str:
        """The device that produced the event, from ``source``."""
        return device_id_from_source(self.source)
