"""One running projector: its MQTT client, consumer, batch store and gap checker on a thread.

``Projector(engine, settings).start()`` / ``.stop()`` is what ``fleetwire serve`` runs; several
share the load through a shared subscription. This module owns the thread, the reconnection
backoff and the gap-check timer; the work is done by the parts it wires together.
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from fleetwire.cloud.errors import BrokerUnavailable
from fleetwire.cloud.mqtt import BrokerAddress, MqttClient
from fleetwire.cloud.projector.consumer import Consumer
from fleetwire.cloud.projector.gaps import GapChecker
from fleetwire.cloud.projector.store import BatchStore
from fleetwire.cloud.projector.worker import ProjectionWorker
from fleetwire.cloud.settings import Settings
from fleetwire.protocol.codec import DEFAULT_CODEC, Codec

log = logging.getLogger(__name__)


class Projector:
    """One projector instance; several can share the load through a shared subscription.

    With ``worker_process`` (default: ``settings.projector_worker_process``) batches are stored by
    a child process started in :meth:`start`, otherwise by a :class:`BatchStore` on ``engine``.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        client: MqttClient | None = None,
        codec: Codec = DEFAULT_CODEC,
        instance: str = "0",
        shared: bool | None = None,
        on_command: Callable[[], None] | None = None,
        worker_process: bool | None = None,
    ) -> None:
        self.settings = settings
        self.client = client or MqttClient(
            BrokerAddress.from_settings(settings),
            f"{settings.client_id}-projector-{instance}",
            session_expiry_s=settings.mqtt_session_expiry_s,
            protocols=settings.mqtt_protocols,
            receive_maximum=settings.mqtt_receive_maximum,
            manual_ack=True,
        )
        if settings.projector_worker_process if worker_process is None else worker_process:
            self.worker: ProjectionWorker | None = ProjectionWorker(settings)
        else:
            self.worker = None
        self.consumer = Consumer(
            self.client,
            self.worker or BatchStore(engine, codec=codec),
            group=settings.projector_share_group,
            batch_max=settings.projector_batch_max,
            shared=shared,
        )
        self.gaps = GapChecker(engine, settings, on_command=on_command)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def processed(self) -> int:
        """Messages taken off the broker and stored (projected, duplicate or dead-lettered)."""
        return self.consumer.processed

    @property
    def batches(self) -> int:
        """Batches stored and acknowledged."""
        return self.consumer.batches

    def check_gaps(self, now: datetime | None = None) -> list[str]:
        """Ask devices with a lasting sequence gap for an inventory (see :class:`GapChecker`)."""
        return self.gaps.check(now)

    def _loop(self) -> None:
        last_check = 0.0
        failures = 0
        while not self._stop.is_set():
            try:
                self.consumer.run_once()
                if time.monotonic() - last_check >= min(1.0, self.settings.gap_timeout_s / 2):
                    last_check = time.monotonic()
                    self.gaps.check()
                failures = 0
            except BrokerUnavailable as exc:
                failures += 1
                delay = min(self.settings.relay_backoff_max_s, 0.5 * 2 ** min(failures, 10))
                log.warning("projector: broker unavailable (%s); retrying in %.1f s", exc, delay)
                self._stop.wait(delay)
            except Exception:
                log.exception("projector pass failed")
                self._stop.wait(1.0)

    def start(self) -> None:
        """Run in a background thread (after starting the worker process, if configured)."""
        if self.worker is not None:
            self.worker.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fleetwire-projector", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and disconnect (unacknowledged messages stay with the broker)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.client.close()
        if self.worker is not None:
            self.worker.close()
