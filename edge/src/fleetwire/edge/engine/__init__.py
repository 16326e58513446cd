"""The engine: converges the Docker Engine to desired deployments and reports what happens.

Observed state comes from the engine's labels (:mod:`.observed`), a pure planner turns it into
steps (:mod:`.planner`), a table of step executors carries them out (:mod:`.executors`), and the
reconciler (:mod:`.reconciler`, the agent's ``Reconciler`` port) runs the loop and reports
through the agent's ``EventSink``.
"""

from fleetwire.edge.engine.errors import EngineError, EngineUnreachable
from fleetwire.edge.engine.images import import_image
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.edge.engine.reconciler import DockerReconciler

__all__ = [
    "DockerReconciler",
    "EngineError",
    "EngineUnreachable",
    "MemoryDesiredStateStore",
    "import_image",
]
