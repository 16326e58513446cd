"""The projector: consumes device events and presence, and keeps the read model.

- ``service``: :class:`Projector`, one running instance (thread, reconnection, gap timer);
- ``consumer``: the thin MQTT adapter (subscribe, batch, acknowledge after commit);
- ``store``: :class:`BatchStore`, a batch in one transaction, with retries and dead letters;
- ``messages``: a received message, its decoding and validation, a batch's result;
- ``loader`` / ``rows`` / ``writer``: read a batch's rows, glue them to the pure projection
  (``fleetwire.cloud.admission``, ``projection``, ``device_view``), write the differences (the
  only dialect-specific SQL);
- ``gaps``: :class:`GapChecker`, a ``sync`` for devices whose sequence gap lasts;
- ``worker``: the worker-process mode, a batch store in a child process.
"""

from fleetwire.cloud.projector.gaps import GapChecker
from fleetwire.cloud.projector.messages import BatchResult, Received
from fleetwire.cloud.projector.service import Projector
from fleetwire.cloud.projector.store import BatchStore

__all__ = ["BatchResult", "BatchStore", "GapChecker", "Projector", "Received"]
