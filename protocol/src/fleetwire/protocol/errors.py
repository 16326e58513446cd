"""The protocol's exception tree.

Everything the codec, the topic parser or the validators reject is raised as a subclass of
:class:`ProtocolError`, so a consumer needs a single ``except`` to stay alive on bad input.
"""


class ProtocolError(Exception):
    """Base of every error the protocol package raises."""

    code: str = "protocol_error"


class DecodeError(ProtocolError):
    """A payload could not be turned into a message."""

    code = "decode_error"


class MalformedMessage(DecodeError):
    """The payload is not a JSON object (bad bytes, bad UTF-8, bad JSON, not an object)."""

    code = "malformed"


class MessageTooLarge(DecodeError):
    """The payload exceeds :data:`fleetwire.protocol.codec.MAX_MESSAGE_BYTES`."""

    code = "too_large"


class UnknownMessageType(DecodeError):
    """The ``type`` attribute names no message family this protocol knows."""

    code = "unknown_type"


class UnsupportedVersion(DecodeError):
    """The message family is known but not this version of it (e.g. a newer ``.v3``)."""

    code = "unsupported_version"


class SchemaViolation(DecodeError):
    """The payload is JSON of a known type but does not satisfy its schema."""

    code = "schema_violation"


class EncodeError(ProtocolError):
    """A message could not be encoded (for instance it would exceed the size limit)."""

    code = "encode_error"


class TopicError(ProtocolError):
    """A topic does not match the template it was parsed with, or a parameter is invalid."""

    code = "bad_topic"


class ImageReferenceError(ProtocolError, ValueError):
    """An image reference does not follow ``[registry[:port]/][repo/]name[:tag][@digest]``."""

    code = "bad_image_reference"
