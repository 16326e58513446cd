"""Gap checking: a device whose sequence gap outlived ``gap_timeout_s`` is asked for an inventory.

The batch store records when a device's gap opened (``device.gap_since``); this checker, run
periodically by each projector, enqueues a ``sync`` command through the outbox for such devices.
The device answers with an inventory, which closes the gap (see ``admission.admit``).
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select
from sqlmodel import col

from fleetwire.cloud.actions import SYNC
from fleetwire.cloud.db.engine import session_scope
from fleetwire.cloud.db.tables import Device
from fleetwire.cloud.outbox import enqueue, sync_command
from fleetwire.cloud.settings import Settings
from fleetwire.protocol.envelope import utcnow

log = logging.getLogger(__name__)


class GapChecker:
    """Enqueues a ``sync`` for devices with a lasting gap; ``on_command`` wakes the relay."""

    def __init__(
        self, engine: Engine, settings: Settings, *, on_command: Callable[[], None] | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.on_command = on_command

    def check(self, now: datetime | None = None) -> list[str]:
        """Ask devices whose gap outlived ``gap_timeout_s`` for an inventory; their ids.

        A device is asked at most once per timeout, and only if it announced the ``sync`` type.
        """
        now = now or utcnow()
        limit = now - timedelta(seconds=self.settings.gap_timeout_s)
        sync_type = SYNC.command_type
        synced: list[str] = []
        with session_scope(self.engine) as session:
            rows = session.scalars(
                select(Device)
                .where(
                    col(Device.gap_since).is_not(None),
                    col(Device.gap_since) <= limit,
                    or_(
                        col(Device.sync_requested_at).is_(None),
                        col(Device.sync_requested_at) <= limit,
                    ),
                )
                # Several projectors may check at once: each device is handled by one of them.
                .with_for_update(skip_locked=True)
            ).all()
            for device in rows:
                device.sync_requested_at = now
                session.add(device)
                if sync_type not in device.protocol_types:
                    log.warning("device %s has a gap but did not announce %s", device.id, sync_type)
                    continue
                command = sync_command(
                    f"sequence gap before seq {device.next_seq}", self.settings.command_ttl, now
                )
                enqueue(session, command, device_id=device.id)
                synced.append(device.id)
                log.info(
                    "device %s: gap at seq %s, sync %s", device.id, device.next_seq, command.id
                )
        if synced and self.on_command is not None:
            self.on_command()
        return synced
