"""Run the projector's database work in a child process.

One projector is one MQTT client; receiving (paho, on the parent's network thread) and
decoding/projecting/storing (the child) then run on two cores instead of sharing one GIL.
The parent still acknowledges a batch only after the child has committed it.
"""

import contextlib
import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any

from fleetwire.cloud.errors import CloudError
from fleetwire.cloud.settings import Settings


class WorkerError(CloudError):
    """The projection worker failed on a batch (the batch stays unacknowledged)."""


def _serve(conn: Connection, settings: Settings) -> None:
    # Imported here: the child is a fresh (spawned) interpreter.
    from fleetwire.cloud.db.engine import make_engine
    from fleetwire.cloud.projector import Projector, Received

    engine = make_engine(settings.database_url)
    projector = Projector(engine, settings, client=_NoClient())  # type: ignore[arg-type]
    conn.send(("ready", None))
    try:
        while True:
            batch = conn.recv()
            if batch is None:
                return
            try:
                result = projector.process([Received(t, p) for t, p in batch])
                conn.send(("ok", result))
            except Exception as exc:  # noqa: BLE001 (reported to the parent, which retries)
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()


class _NoClient:
    """Stands in for the MQTT client in the child, which never talks to the broker."""

    on_message: Any = None


class ProjectionWorker:
    """A child process that runs ``Projector.process`` on batches sent to it."""

    def __init__(self, settings: Settings) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, settings), name="fleetwire-projection", daemon=True
        )
        self._proc.start()
        child.close()
        if not self._conn.poll(60) or self._conn.recv()[0] != "ready":
            self.close()
            raise WorkerError("the projection worker did not start")

    def process(self, batch: list[tuple[str, bytes]], timeout: float = 120.0) -> Any:
        """Project ``batch`` in the child; returns its BatchResult or raises WorkerError."""
        if not self._proc.is_alive():
            raise WorkerError("the projection worker is not running")
        self._conn.send(batch)
        if not self._conn.poll(timeout):
            raise WorkerError(f"the projection worker did not answer within {timeout} s")
        status, value = self._conn.recv()
        if status != "ok":
            raise WorkerError(str(value))
        return value

    def close(self) -> None:
        """Stop the child."""
        with contextlib.suppress(OSError):  # the child is already gone
            self._conn.send(None)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()
