"""Identifiers: device ids and sortable message ids."""

import re
from typing import Annotated

import uuid_utils
from pydantic import AfterValidator, StringConstraints

# The "fleetwire-" prefix is reserved for the cloud's and integrators' broker identities: the
# broker ACL's per-device pattern rules apply to every username, so a device named like a
# service would inherit a service's topics.
RESERVED_DEVICE_PREFIX = "fleetwire-"
DEVICE_ID_PATTERN = r"^(?!fleetwire-)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)
# pydantic-core's regex engine has no look-ahead, so the reserved prefix is checked apart.
_DEVICE_ID_BASE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _not_reserved(value: str) -> str:
    if value.startswith(RESERVED_DEVICE_PREFIX):
        raise ValueError(f"device ids starting with {RESERVED_DEVICE_PREFIX!r} are reserved")
    return value


# A device id is one whole topic level, so it may hold none of MQTT's separators or wildcards.
DeviceId = Annotated[
    str, StringConstraints(pattern=_DEVICE_ID_BASE_PATTERN), AfterValidator(_not_reserved)
]

# Names of containers, volumes and networks inside a release; Docker accepts this alphabet.
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


def is_valid_device_id(value: str) -> bool:
    """Tell whether ``value`` can be used as a device id (and so as a topic level)."""
    return _DEVICE_ID_RE.fullmatch(value) is not None


def new_id() -> str:
    """Return a new time-ordered unique id (UUIDv7), used for messages, commands, deployments."""
    return str(uuid_utils.uuid7())


def _check_uuid(value: str) -> str:
    uuid_utils.UUID(value)
    return value.lower()


MessageId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Uuid = Annotated[str, StringConstraints(min_length=32, max_length=36), AfterValidator(_check_uuid)]
