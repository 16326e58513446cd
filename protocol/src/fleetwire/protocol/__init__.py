"""Fleetwire protocol: the versioned contract between the cloud and devices.

Message models, topics, the codec and schema export. Nothing here does I/O.
"""

from fleetwire.protocol.codec import DEFAULT_CODEC, MAX_MESSAGE_BYTES, Codec, decode, encode
from fleetwire.protocol.errors import DecodeError, ProtocolError
from fleetwire.protocol.registry import COMMAND_TYPES, EVENT_TYPES, MESSAGE_TYPES, Message

__all__ = [
    "COMMAND_TYPES",
    "DEFAULT_CODEC",
    "EVENT_TYPES",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_TYPES",
    "Codec",
    "DecodeError",
    "Message",
    "ProtocolError",
    "decode",
    "encode",
]

PROTOCOL_VERSION = "1"
