"""The executor: converges the Docker Engine to desired deployments and reports what happens.

Observed state comes from the engine's labels (:mod:`.observed`), a pure planner turns it into
steps (:mod:`.planner`), a table of executors carries them out (:mod:`.executors`), and the
reconciler (:mod:`.reconciler`) runs the loop and reports through the agent's ``EventSink``.
"""

from fleetwire.edge.engine.errors import EngineError, EngineUnreachable
from fleetwire.edge.engine.images import import_image
from fleetwire.edge.engine.memory_store import MemoryDesiredStateStore
from fleetwire.edge.engine.reconciler import DockerExecutor

__all__ = [
    "DockerExecutor",
    "EngineError",
    "EngineUnreachable",
    "MemoryDesiredStateStore",
    "import_image",
]
