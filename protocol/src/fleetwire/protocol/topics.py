"""MQTT topics of the protocol, as code.

One :class:`TopicTemplate` per topic: it builds a topic from parameters, derives a subscription
filter (missing parameters become ``+``) and parses a received topic back into parameters. Each
parameter fills a whole topic level, which is what lets broker ACLs use ``%u``/``%c`` patterns.
"""

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from fleetwire.protocol.errors import TopicError
from fleetwire.protocol.ids import DEVICE_ID_PATTERN

PREFIX: Final = "fleetwire/v1"


class EventCategory(StrEnum):
    """The ``{category}`` level of an event topic."""

    COMMAND = "command"
    DEPLOYMENT = "deployment"
    CONTAINER = "container"
    INVENTORY = "inventory"


_PARAM_RE = re.compile(r"^\{([a-z_]+)\}$")
_CATEGORY_PATTERN = "^(" + "|".join(c.value for c in EventCategory) + ")$"


@dataclass(frozen=True)
class TopicTemplate:
    """A topic with ``{name}`` placeholders, each a whole level."""

    template: str
    patterns: dict[str, str] = field(default_factory=dict)

    @property
    def levels(self) -> list[str]:
        """The template split into levels."""
        return self.template.split("/")

    @property
    def parameters(self) -> list[str]:
        """The names of the placeholders, in order."""
        return [m.group(1) for lvl in self.levels if (m := _PARAM_RE.match(lvl))]

    def _check(self, name: str, value: str) -> str:
        if not value or any(c in value for c in "/+#\x00"):
            raise TopicError(f"topic parameter {name}={value!r} must be one non-empty topic level")
        pattern = self.patterns.get(name)
        if pattern is not None and re.fullmatch(pattern, value) is None:
            raise TopicError(f"topic parameter {name}={value!r} does not match {pattern}")
        return value

    def build(self, **params: str) -> str:
        """Build a concrete topic; every parameter is required and validated."""
        missing = set(self.parameters) - params.keys()
        extra = params.keys() - set(self.parameters)
        if missing or extra:
            raise TopicError(
                f"{self.template}: missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        out = []
        for lvl in self.levels:
            m = _PARAM_RE.match(lvl)
            out.append(self._check(m.group(1), params[m.group(1)]) if m else lvl)
        return "/".join(out)

    def filter(self, **params: str) -> str:
        """A subscription filter: given parameters are filled in, the others become ``+``."""
        extra = params.keys() - set(self.parameters)
        if extra:
            raise TopicError(f"{self.template}: unexpected {sorted(extra)}")
        out = []
        for lvl in self.levels:
            m = _PARAM_RE.match(lvl)
            if m is None:
                out.append(lvl)
            elif m.group(1) in params:
                out.append(self._check(m.group(1), params[m.group(1)]))
            else:
                out.append("+")
        return "/".join(out)

    def shared_filter(self, group: str, **params: str) -> str:
        """An MQTT 5 shared-subscription filter (``$share/<group>/<filter>``)."""
        if not group or any(c in group for c in "/+#"):
            raise TopicError(f"share group {group!r} must be one topic level")
        return f"$share/{group}/{self.filter(**params)}"

    def parse(self, topic: str) -> dict[str, str]:
        """Parse a received topic back into its parameters, or raise :class:`TopicError`."""
        levels = topic.split("/")
        if len(levels) != len(self.levels):
            raise TopicError(f"{topic!r} does not match {self.template}")
        params: dict[str, str] = {}
        for tpl, lvl in zip(self.levels, levels, strict=True):
            m = _PARAM_RE.match(tpl)
            if m is None:
                if tpl != lvl:
                    raise TopicError(f"{topic!r} does not match {self.template}")
            else:
                params[m.group(1)] = self._check(m.group(1), lvl)
        return params

    def matches(self, topic: str) -> bool:
        """Tell whether ``topic`` is an instance of this template."""
        try:
            self.parse(topic)
        except TopicError:
            return False
        return True


_DEVICE = {"device_id": DEVICE_ID_PATTERN}

COMMANDS: Final = TopicTemplate(f"{PREFIX}/devices/{{device_id}}/commands", _DEVICE)
EVENTS: Final = TopicTemplate(
    f"{PREFIX}/devices/{{device_id}}/events/{{category}}",
    {**_DEVICE, "category": _CATEGORY_PATTERN},
)
PRESENCE: Final = TopicTemplate(f"{PREFIX}/devices/{{device_id}}/presence", _DEVICE)


def command_topic(device_id: str) -> str:
    """The topic a device receives its commands on."""
    return COMMANDS.build(device_id=device_id)


def event_topic(device_id: str, category: EventCategory | str) -> str:
    """The topic a device publishes events of ``category`` on."""
    return EVENTS.build(device_id=device_id, category=str(category))


def presence_topic(device_id: str) -> str:
    """The retained presence topic of a device (birth message and will)."""
    return PRESENCE.build(device_id=device_id)
