"""The projector's MQTT side: subscribe, queue what arrives, hand batches to a store, acknowledge.

A thin adapter over :class:`~fleetwire.cloud.mqtt.MqttClient` with manual PUBACK: a batch is
acknowledged only after the store has committed it, so a crash loses nothing the broker
delivered. A batch the store fails on is kept (unacknowledged) and handed in again.
"""

import queue
from collections.abc import Sequence
from typing import Protocol

from fleetwire.cloud.errors import BrokerUnavailable
from fleetwire.cloud.mqtt import MqttClient
from fleetwire.cloud.projector.messages import BatchResult, Received
from fleetwire.protocol.topics import EVENTS, PRESENCE


class BatchProcessor(Protocol):
    """Where the consumer's batches go: a ``BatchStore``, or a ``ProjectionWorker`` wrapping one."""

    def process(self, batch: Sequence[Received]) -> BatchResult:
        """Store ``batch`` durably, or raise (the batch then stays unacknowledged)."""
        ...


def subscription_filters(*, shared: bool, group: str) -> list[str]:
    """The projector's subscriptions: shared (MQTT 5) or plain."""
    if shared:
        return [EVENTS.shared_filter(group), PRESENCE.shared_filter(group)]
    return [EVENTS.filter(), PRESENCE.filter()]


class Consumer:
    """Feeds a store from one MQTT client (``manual_ack=True``)."""

    def __init__(
        self,
        client: MqttClient,
        store: BatchProcessor,
        *,
        group: str,
        batch_max: int,
        shared: bool | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.group = group
        self.batch_max = batch_max
        self.shared = shared
        """Subscribe shared or not; ``None``: shared when connected with MQTT 5."""
        self.queue: queue.Queue[Received] = queue.Queue()
        self.processed = 0
        """Messages taken off the broker and stored (projected, duplicate or dead-lettered)."""
        self.batches = 0
        """Batches handed to the store and acknowledged."""
        # Bumped on every connect: a message of an earlier connection is not acknowledged on
        # this one (its mid means nothing here; the broker redelivers it).
        self._generation = 0
        self._backlog: list[Received] = []
        client.on_message = self._on_message

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.queue.put(Received(topic, payload, mid, qos, self._generation))

    def connect(self) -> None:
        """Connect and subscribe (shared on MQTT 5 unless ``shared=False``)."""
        self._generation += 1
        self.client.connect()
        shared = self.client.is_v5 if self.shared is None else self.shared
        try:
            self.client.subscribe(subscription_filters(shared=shared, group=self.group))
        except BrokerUnavailable:
            # Connected but not subscribed looks healthy and receives nothing: drop the link so
            # the next pass connects and subscribes again.
            self.client.close()
            raise

    def drain(self, timeout: float = 0.2) -> list[Received]:
        """Take what is queued (up to ``batch_max``); wait ``timeout`` for the first."""
        batch = self._backlog
        self._backlog = []
        if not batch:
            try:
                batch.append(self.queue.get(timeout=timeout))
            except queue.Empty:
                return batch
        while len(batch) < self.batch_max:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _ack(self, batch: Sequence[Received]) -> None:
        for item in batch:
            if item.generation == self._generation:
                self.client.ack(item.mid, item.qos)

    def run_once(self, timeout: float = 0.2) -> BatchResult | None:
        """Connect if needed, then store what is queued and acknowledge it."""
        if not self.client.connected:
            self.connect()
        batch = self.drain(timeout)
        if not batch:
            return None
        try:
            result = self.store.process(batch)
        except Exception:
            self._backlog = list(batch)  # keep it (unacknowledged) and try again
            raise
        self.processed += len(batch)
        self.batches += 1
        self._ack(batch)
        return result
