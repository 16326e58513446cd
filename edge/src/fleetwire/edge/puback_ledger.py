"""Which PUBACK acknowledges which outbox event, on one MQTT connection (pure, no I/O).

The session hands paho an event, gets a message id (mid) back, and later a PUBACK for that mid.
The ledger turns those mids back into outbox ``seq`` numbers and decides what each PUBACK means:

- a PUBACK that delivered an event: its ``seq`` is deleted from the outbox on the next pump;
- a refused PUBACK (MQTT 5 reason code >= 0x80; paho reports the publish as done regardless):
  the event stays in the outbox and is published again once a jittered backoff has passed;
- a PUBACK of a presence publish (birth, clean death): acknowledges no event, even when paho's
  mid counter has wrapped (65535 publishes on one connection) and an event now has the same mid;
- a PUBACK that arrives before ``publish()`` has returned the mid to the session: kept until the
  session claims the mid, then applied.

One ledger lives exactly as long as one connection: a reconnect starts a new one, and the outbox
replay from its oldest row re-sends whatever the old connection left unacknowledged.

The ledger is not thread-safe; the session calls it under its connection lock (the paho network
thread reports PUBACKs, the session's thread publishes and pumps). Time comes in as ``now``
(``time.monotonic()`` in the session), so tests need no clock.
"""

from dataclasses import dataclass
from enum import StrEnum

from fleetwire.edge.backoff import Backoff


class AckedPublish(StrEnum):
    """What kind of publish a PUBACK's mid belonged to."""

    EVENT = "event"
    PRESENCE = "presence"
    UNCLAIMED = "unclaimed"
    """The mid is not known yet: ``publish()`` has not returned it to the session."""


@dataclass(frozen=True)
class PubackOutcome:
    """What the ledger made of one PUBACK: the kind of publish and, for an event, its ``seq``."""

    publish: AckedPublish
    seq: int | None = None


@dataclass(frozen=True)
class PumpWork:
    """What the next pump has to do, taken from the ledger in one step."""

    acked: list[int]
    """Seqs the broker took: delete them from the outbox."""
    retry: list[int]
    """Refused seqs whose backoff has passed: publish them again (``requeue`` what is not sent)."""
    room: int
    """How many more publishes the in-flight window allows (retries included)."""


class PubackLedger:
    """The PUBACK bookkeeping of one connection; see the module docstring."""

    def __init__(self, window: int, refusal_backoff: Backoff | None = None) -> None:
        self.window = window
        self.refusal_backoff = refusal_backoff or Backoff()
        self.retry_at = 0.0
        """``now`` before which refused events are not published again."""
        self._in_flight: dict[int, int] = {}  # mid -> seq
        # PUBACKs seen before publish() returned: mid -> delivered (False: a failure reason code)
        self._unclaimed: dict[int, bool] = {}
        # Presence mids: outside the outbox, their PUBACKs acknowledge no seq.
        self._presence: set[int] = set()
        self._acked: list[int] = []  # acknowledged, not yet deleted
        self._refused: list[int] = []  # refused, to publish again after the backoff

    # --- what the session tells the ledger ---
    def event_published(self, mid: int, seq: int, now: float) -> bool:
        """Paho took event ``seq`` as ``mid``; True when its PUBACK had already delivered it."""
        delivered = self._unclaimed.pop(mid, None)
        if delivered is None:
            self._in_flight[mid] = seq
            return False
        if delivered:
            self._acked.append(seq)
            return True
        self._refuse(seq, now)
        return False

    def presence_published(self, mid: int) -> None:
        """Paho took a presence publish as ``mid``: its PUBACK must acknowledge no event."""
        if self._unclaimed.pop(mid, None) is None:
            self._presence.add(mid)

    def puback(self, mid: int, *, delivered: bool, now: float) -> PubackOutcome:
        """Record the PUBACK of ``mid``; ``delivered`` is False for a failure reason code."""
        if mid in self._presence:
            self._presence.discard(mid)
            return PubackOutcome(AckedPublish.PRESENCE)
        seq = self._in_flight.pop(mid, None)
        if seq is None:
            self._unclaimed[mid] = delivered
            return PubackOutcome(AckedPublish.UNCLAIMED)
        if delivered:
            self._acked.append(seq)
        else:
            self._refuse(seq, now)
        return PubackOutcome(AckedPublish.EVENT, seq)

    # --- what the pump asks of it ---
    def take(self, now: float) -> PumpWork:
        """The acknowledged seqs, the refused seqs due again, and the room in the window."""
        acked, self._acked = self._acked, []
        retry: list[int] = []
        if self._refused and now >= self.retry_at:
            retry, self._refused = self._refused, []
        return PumpWork(acked=acked, retry=retry, room=self.window - len(self._in_flight))

    def requeue(self, seqs: list[int]) -> None:
        """Retries the pump could not send now: due again on the next pump."""
        self._refused.extend(seqs)

    # --- inspection ---
    @property
    def in_flight(self) -> dict[int, int]:
        """Events awaiting their PUBACK: mid -> seq (a copy)."""
        return dict(self._in_flight)

    @property
    def refused(self) -> list[int]:
        """Refused seqs waiting for their retry (a copy)."""
        return list(self._refused)

    @property
    def unclaimed(self) -> dict[int, bool]:
        """PUBACKs whose mid ``publish()`` has not returned yet: mid -> delivered (a copy)."""
        return dict(self._unclaimed)

    def _refuse(self, seq: int, now: float) -> None:
        self._refused.append(seq)
        self.retry_at = now + self.refusal_backoff.next_delay()
