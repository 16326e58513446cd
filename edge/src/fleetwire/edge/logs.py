"""Structured logging: every record may carry ``device_id``, ``command_id`` and ``deployment_id``.

Pass them with ``extra={...}``; the handler installed by :func:`configure_logging` fills in the
device id for records that lack it and renders them as text or one JSON object per line.
Secrets never reach a record: the config holds the password as a ``SecretStr`` and commands are
logged by id and type only.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final, TextIO

CONTEXT_FIELDS: Final = ("device_id", "command_id", "deployment_id")


class ContextFilter(logging.Filter):
    """Gives every record the context fields (None when absent) and a default device id."""

    def __init__(self, device_id: str | None = None) -> None:
        super().__init__()
        self.device_id = device_id

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the missing fields; never drops a record."""
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, None)
        if getattr(record, "device_id", None) is None:
            record.device_id = self.device_id
        return True


class TextFormatter(logging.Formatter):
    """``time level logger [key=value ...] message``."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one line (plus a traceback if any)."""
        context = " ".join(
            f"{k}={v}" for k in CONTEXT_FIELDS if (v := getattr(record, k, None)) is not None
        )
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = f"{stamp} {record.levelname:<7} {record.name}"
        line += f" [{context}] " if context else " "
        line += record.getMessage()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one JSON line."""
        obj: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        obj.update({k: v for k in CONTEXT_FIELDS if (v := getattr(record, k, None)) is not None})
        if record.exc_info:
            obj["exception"] = self.formatException(record.exc_info)
        return json.dumps(obj, default=str)


def configure_logging(
    level: str = "INFO",
    fmt: str = "text",
    device_id: str | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install one handler on the ``fleetwire`` logger; returns it (tests remove it again)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter(device_id))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger = logging.getLogger("fleetwire")
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
