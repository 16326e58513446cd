"""The worker-process mode (``FLEETWIRE_PROJECTOR_WORKER_PROCESS``): a batch store in a child.

One projector is one MQTT client; receiving (paho, on the parent's network thread) and
decoding/projecting/storing (a :class:`~fleetwire.cloud.projector.store.BatchStore` in the child)
then run on two cores instead of sharing one GIL. The parent still acknowledges a batch only
after the child has committed it.
"""

import contextlib
import multiprocessing as mp
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from fleetwire.cloud.db.engine import make_engine
from fleetwire.cloud.errors import CloudError
from fleetwire.cloud.projector.messages import BatchResult, Received
from fleetwire.cloud.projector.store import BatchStore
from fleetwire.cloud.settings import Settings


class WorkerError(CloudError):
    """The projection worker failed on a batch (the batch stays unacknowledged)."""


def _serve(conn: Connection, settings: Settings) -> None:
    """The child: a batch store on its own engine, fed (topic, payload) pairs through ``conn``."""
    engine = make_engine(settings.database_url)
    store = BatchStore(engine)
    conn.send(("ready", None))
    try:
        while True:
            batch = conn.recv()
            if batch is None:
                return
            try:
                result = store.process([Received(t, p) for t, p in batch])
                conn.send(("ok", result))
            except Exception as exc:  # noqa: BLE001 (reported to the parent, which retries)
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()


class ProjectionWorker:
    """A child process that runs ``BatchStore.process`` on batches sent to it.

    ``start`` spawns the child and waits until it is ready; ``close`` stops it; it can be started
    again after that.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: Connection | None = None
        self._proc: BaseProcess | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Spawn the child (if not running); raises WorkerError if it is not ready in time."""
        if self._proc is not None:
            return
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, self.settings), name="fleetwire-projection", daemon=True
        )
        self._proc.start()
        child.close()
        if not self._conn.poll(timeout) or self._conn.recv()[0] != "ready":
            self.close()
            raise WorkerError("the projection worker did not start")

    def process(self, batch: Sequence[Received], timeout: float = 120.0) -> BatchResult:
        """Project ``batch`` in the child; returns its BatchResult or raises WorkerError."""
        if self._proc is None or self._conn is None or not self._proc.is_alive():
            raise WorkerError("the projection worker is not running")
        self._conn.send([(m.topic, m.payload) for m in batch])
        if not self._conn.poll(timeout):
            raise WorkerError(f"the projection worker did not answer within {timeout} s")
        status, value = self._conn.recv()
        if status != "ok":
            raise WorkerError(str(value))
        assert isinstance(value, BatchResult)
        return value

    def close(self) -> None:
        """Stop the child (if running)."""
        if self._proc is None or self._conn is None:
            return
        with contextlib.suppress(OSError):  # the child is already gone
            self._conn.send(None)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()
        self._proc = self._conn = None
