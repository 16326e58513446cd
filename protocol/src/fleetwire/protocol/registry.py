"""Every message type of the protocol, by its ``type`` string."""

from types import MappingProxyType
from typing import Final

from fleetwire.protocol.commands import COMMAND_CLASSES, Command
from fleetwire.protocol.envelope import Envelope
from fleetwire.protocol.events import DEVICE_EVENT_CLASSES, PRESENCE_CLASSES, Event, Presence

Message = Command | Event | Presence

MESSAGE_CLASSES: Final[tuple[type[Envelope], ...]] = (
    *COMMAND_CLASSES,
    *DEVICE_EVENT_CLASSES,
    *PRESENCE_CLASSES,
)


def type_of(cls: type[Envelope]) -> str:
    """The ``type`` string a message class is pinned to."""
    default = cls.model_fields["type"].default
    if not isinstance(default, str):
        raise TypeError(f"{cls.__name__} has no type literal")
    return default


MESSAGE_TYPES: Final = MappingProxyType({type_of(cls): cls for cls in MESSAGE_CLASSES})
COMMAND_TYPES: Final = tuple(type_of(cls) for cls in COMMAND_CLASSES)
EVENT_TYPES: Final = tuple(type_of(cls) for cls in (*DEVICE_EVENT_CLASSES, *PRESENCE_CLASSES))
