"""W3C trace context for commands: an action's trace follows its command to the device."""

import re
import secrets

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def child_traceparent(parent: str | None = None) -> str:
    """A ``traceparent`` for a new span: in ``parent``'s trace when it is valid, else a new one."""
    if parent is not None:
        m = _TRACEPARENT.match(parent.strip().lower())
        if m is not None and m[1] != "0" * 32 and m[2] != "0" * 16:
            return f"00-{m[1]}-{secrets.token_hex(8)}-{m[3]}"
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def trace_id(traceparent: str) -> str:
    """The trace id of a ``traceparent``."""
    return traceparent.split("-")[1]
