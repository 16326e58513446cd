"""Golden payloads: one frozen, fully populated wire payload per message type.

Files under ``golden/`` are the protocol's memory: they must keep decoding forever. Never edit
or delete one; when a type gets a new version, add a golden file for it.
"""

import json
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).parent / "golden"

# Every type that ever had a golden file. This list only grows: removing an entry (or a file)
# would let a release stop decoding messages that devices in the field still send.
GOLDEN_TYPES = (
    "io.fleetwire.command.deploy.v1",
    "io.fleetwire.command.start.v1",
    "io.fleetwire.command.stop.v1",
    "io.fleetwire.command.upgrade.v1",
    "io.fleetwire.command.redeploy.v1",
    "io.fleetwire.command.delete.v1",
    "io.fleetwire.command.sync.v1",
    "io.fleetwire.event.command.accepted.v1",
    "io.fleetwire.event.command.rejected.v1",
    "io.fleetwire.event.command.progress.v1",
    "io.fleetwire.event.command.succeeded.v1",
    "io.fleetwire.event.command.failed.v1",
    "io.fleetwire.event.deployment.state.v1",
    "io.fleetwire.event.container.state.v1",
    "io.fleetwire.event.inventory.v1",
    "io.fleetwire.event.presence.birth.v1",
    "io.fleetwire.event.presence.death.v1",
)


def golden_path(message_type: str) -> Path:
    """The golden file of ``message_type``."""
    return GOLDEN_DIR / f"{message_type}.json"


def golden_bytes(message_type: str) -> bytes:
    """The golden payload of ``message_type`` as it would arrive on the wire."""
    return golden_path(message_type).read_bytes()


def golden_json(message_type: str) -> dict[str, Any]:
    """The golden payload of ``message_type`` as a JSON object."""
    obj: dict[str, Any] = json.loads(golden_bytes(message_type))
    return obj
