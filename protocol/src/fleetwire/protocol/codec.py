"""Bytes to messages and back.

``decode`` raises only subclasses of :class:`~fleetwire.protocol.errors.DecodeError`, whatever
the input: a consumer that catches that one class never dies on a bad payload. Older versions of
a message type are upcast step by step before validation, so handlers see only the newest.
"""

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeVar

from pydantic import ValidationError

from fleetwire.protocol.envelope import REQUIRED_ATTRIBUTES, Envelope, split_type
from fleetwire.protocol.errors import (
    EncodeError,
    MalformedMessage,
    MessageTooLarge,
    ProtocolError,
    SchemaViolation,
    UnknownMessageType,
    UnsupportedVersion,
)
from fleetwire.protocol.registry import MESSAGE_TYPES

MAX_MESSAGE_BYTES: Final = 256 * 1024
# Upcasting chains are short; a longer one means two upcasters point at each other.
_MAX_UPCASTS: Final = 32

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the JSON object of an older message version into the next version's (new ``type``)."""

UPCASTERS: Final[Mapping[str, Upcaster]] = MappingProxyType({})
"""The protocol's own upcasters, keyed by the old ``type``; empty while everything is v1."""

M = TypeVar("M", bound=Envelope)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _summarize(error: ValidationError) -> str:
    parts = []
    for err in error.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


@dataclass(frozen=True)
class Codec:
    """Encodes and decodes envelopes; the upcasters and types are injectable for tests."""

    types: Mapping[str, type[Envelope]] = field(default_factory=lambda: MESSAGE_TYPES)
    upcasters: Mapping[str, Upcaster] = field(default_factory=lambda: UPCASTERS)
    max_bytes: int = MAX_MESSAGE_BYTES

    def encode(self, message: Envelope) -> bytes:
        """Encode ``message`` as a CloudEvents JSON document."""
        if message.type not in self.types:
            raise EncodeError(f"message type {message.type!r} is not part of the protocol")
        payload = message.model_dump_json(exclude_none=True).encode()
        if len(payload) > self.max_bytes:
            raise EncodeError(
                f"{message.type} {message.id} is {len(payload)} bytes, over the "
                f"{self.max_bytes}-byte limit"
            )
        return payload

    def _families(self) -> set[str]:
        families = set()
        for message_type in (*self.types, *self.upcasters):
            # An injected key without a .vN suffix names no family; it must not break decode.
            with contextlib.suppress(ProtocolError):
                families.add(split_type(message_type)[0])
        return families

    def _load(self, payload: bytes | str) -> dict[str, Any]:
        size = len(payload.encode() if isinstance(payload, str) else payload)
        if size > self.max_bytes:
            raise MessageTooLarge(f"payload is {size} bytes, over the {self.max_bytes}-byte limit")
        try:
            obj = json.loads(payload, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise MalformedMessage(f"payload is not valid UTF-8 JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise MalformedMessage(f"payload is a JSON {type(obj).__name__}, not an object")
        return obj

    def _upcast(self, obj: dict[str, Any]) -> dict[str, Any]:
        for _ in range(_MAX_UPCASTS):
            message_type = obj.get("type")
            if not isinstance(message_type, str):
                raise SchemaViolation("type: a string attribute is required")
            upcaster = self.upcasters.get(message_type)
            if upcaster is None:
                return obj
            try:
                obj = upcaster(dict(obj))
            except (KeyError, TypeError, ValueError, ProtocolError) as exc:
                raise SchemaViolation(f"cannot upcast {message_type}: {exc}") from None
            if not isinstance(obj, dict):
                raise SchemaViolation(f"upcasting {message_type} did not produce a JSON object")
        raise SchemaViolation("upcasting did not terminate")

    def _class_for(self, message_type: str) -> type[Envelope]:
        cls = self.types.get(message_type)
        if cls is not None:
            return cls
        try:
            family, version = split_type(message_type)
        except ProtocolError:
            raise UnknownMessageType(f"unknown message type {message_type[:200]!r}") from None
        if family in self._families():
            raise UnsupportedVersion(
                f"{family} version {version} is not supported; known: "
                f"{sorted(t for t in self.types if t.startswith(family + '.v'))}"
            )
        raise UnknownMessageType(f"unknown message type {message_type[:200]!r}")

    def decode(self, payload: bytes | str) -> Envelope:
        """Decode a payload into the newest version of its message model."""
        obj = self._upcast(self._load(payload))
        cls = self._class_for(obj["type"])
        missing = [name for name in REQUIRED_ATTRIBUTES if name not in obj]
        if missing:
            raise SchemaViolation(f"{obj['type']}: missing CloudEvents attributes {missing}")
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise SchemaViolation(f"{obj['type']}: {_summarize(exc)}") from None

    def decode_as(self, payload: bytes | str, *expected: type[M]) -> M:
        """Decode and require one of ``expected`` (e.g. only commands on a command topic)."""
        message = self.decode(payload)
        if not isinstance(message, expected):
            raise UnknownMessageType(
                f"{message.type} is not expected here (expected {[c.__name__ for c in expected]})"
            )
        return message


DEFAULT_CODEC: Final = Codec()


def encode(message: Envelope) -> bytes:
    """Encode with the default codec."""
    return DEFAULT_CODEC.encode(message)


def decode(payload: bytes | str) -> Envelope:
    """Decode with the default codec; raises only :class:`DecodeError` subclasses."""
    return DEFAULT_CODEC.decode(payload)


def user_properties(message: Envelope) -> list[tuple[str, str]]:
    """MQTT 5 user properties that mirror the envelope, for brokers and tools that route on them."""
    props = [
        ("ce_specversion", message.specversion),
        ("ce_id", message.id),
        ("ce_type", message.type),
        ("ce_source", message.source),
    ]
    for name in ("traceparent", "tracestate", "correlationid", "seq"):
        value = getattr(message, name, None)
        if value is not None:
            props.append((name, str(value)))
    return props
