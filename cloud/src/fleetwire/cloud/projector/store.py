"""The batch store: project a batch of received messages into the read model, in one transaction.

Messages are decoded (``messages``), the rows they touch loaded (``loader``), each device's
events admitted and projected (``admission.apply_device``), and the differences written
(``writer``) together with the event history (the processed markers), held events and dead
letters. No MQTT here: the consumer hands batches in and acknowledges them after ``process``
returns, so a crash loses nothing the broker delivered.

Failure policy: a batch whose transaction fails is retried; a batch that keeps failing is
retried message by message; a single message that fails with a non-transient error (bad data,
a constraint) becomes a dead letter, while a transient one (connection lost, lock) is raised so
that the message stays unacknowledged and comes again.
"""

import logging
import time
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from fleetwire.cloud.admission import apply_device
from fleetwire.cloud.errors import CloudError
from fleetwire.cloud.projector import loader, writer
from fleetwire.cloud.projector.messages import BatchResult, Invalid, Received, decode_message
from fleetwire.cloud.projector.rows import Writes, collect, dead_letter_row, device_view
from fleetwire.protocol.codec import DEFAULT_CODEC, Codec
from fleetwire.protocol.envelope import EventEnvelope, utcnow

log = logging.getLogger(__name__)

ATTEMPTS = 3
"""Tries of one transaction before the batch is split (or, for one message, given up)."""


def _transient(error: DBAPIError) -> bool:
    """True for a database error worth retrying (connection lost, lock, timeout)."""
    return isinstance(error, OperationalError) or error.connection_invalidated


class StoreUnavailable(CloudError):
    """A message cannot be stored for now (the database is down): the caller retries later."""

    status = 503
    title = "Database unavailable"


class BatchStore:
    """Projects batches of received messages into the read model on ``engine``."""

    def __init__(self, engine: Engine, *, codec: Codec = DEFAULT_CODEC) -> None:
        self.engine = engine
        self.codec = codec

    def process(self, batch: Sequence[Received], now: datetime | None = None) -> BatchResult:
        """Project ``batch`` in one transaction (retried; message by message as a last resort).

        Raises :class:`StoreUnavailable` when a message cannot be stored for a transient reason.
        """
        now = now or utcnow()
        error: DBAPIError | None = None
        for attempt in range(ATTEMPTS):
            try:
                return self._process(batch, now)
            except DBAPIError as exc:
                error = exc
                log.warning("projector batch failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(0.05 * (attempt + 1))  # back off before retrying, not synchronisation
        if len(batch) == 1:
            if error is None or _transient(error):
                raise StoreUnavailable("projector cannot store a message") from error
            # The message itself cannot be stored (bad data, constraint): set it aside, go on.
            return self._dead_letter(batch[0], f"cannot be stored: {error.orig or error}", now)
        total = BatchResult()
        for item in batch:
            total.add(self.process([item], now))
        return total

    def _dead_letter(self, item: Received, reason: str, now: datetime) -> BatchResult:
        """Store ``item`` as a dead letter in its own transaction."""
        with self.engine.begin() as conn:
            writer.insert_dead_letters(conn, [dead_letter_row(item, reason, now)])
        log.error("projector: message on %s dead-lettered: %s", item.topic, reason)
        return BatchResult(dead=1)

    def _process(self, batch: Sequence[Received], now: datetime) -> BatchResult:
        result = BatchResult()
        dead: list[dict[str, object]] = []
        by_device: dict[str, list[tuple[EventEnvelope, Received]]] = {}
        for item in batch:
            try:
                device_id, event = decode_message(self.codec, item.topic, item.payload)
            except Invalid as exc:
                dead.append(dead_letter_row(item, str(exc), now))
                continue
            by_device.setdefault(device_id, []).append((event, item))
        with self.engine.begin() as conn:
            if dead:
                writer.insert_dead_letters(conn, dead)
                result.dead = len(dead)
            if by_device:
                self._project(conn, by_device, now, result)
        return result

    def _project(
        self,
        conn: Connection,
        by_device: dict[str, list[tuple[EventEnvelope, Received]]],
        now: datetime,
        result: BatchResult,
    ) -> None:
        events = {d: [e for e, _ in received] for d, received in by_device.items()}
        loaded = loader.load(conn, self.codec, events, now)
        writes = Writes()
        for device_id in sorted(by_device):
            before = device_view(loaded, device_id)
            outcome = apply_device(before, loaded.held[device_id], events[device_id], loaded.seen)
            loaded.seen |= outcome.taken
            collect(
                writes,
                loaded,
                device_id,
                before=before,
                outcome=outcome,
                received=by_device[device_id],
                now=now,
            )
            result.applied += len(outcome.applied)
            result.duplicates += outcome.duplicates
            result.held += len(outcome.held)
            result.devices.add(device_id)
        writer.write(conn, writes, now)
