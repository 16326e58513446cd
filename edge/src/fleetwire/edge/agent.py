"""Wiring: store, outbox, reconciler, command handler and MQTT session of one device.

``Agent(config).run()`` blocks until :meth:`Agent.stop` (or SIGTERM/SIGINT through the CLI).
The reconciler comes from a factory so tests can pass a fake; the default factory builds the
:class:`~fleetwire.edge.engine.reconciler.DockerReconciler` with a Docker client (the only
Docker call here).
"""

import contextlib
import fcntl
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, cast

from fleetwire.edge.config import AgentConfig
from fleetwire.edge.errors import ConfigError, ReconcilerUnavailable
from fleetwire.edge.handler import CommandHandler
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.ports import EventSink, Reconciler
from fleetwire.edge.session import MqttSession
from fleetwire.edge.store import Store
from fleetwire.protocol.envelope import device_source, utcnow
from fleetwire.protocol.events import PresenceBirth, PresenceBirthData
from fleetwire.protocol.registry import COMMAND_TYPES

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)

LOCK_FILE_NAME: Final = "agent.lock"
# The Docker API version used when the engine cannot be asked for its own (it is down at start):
# Docker Engine 20.10, the oldest engine Fleetwire is tested with.
FALLBACK_DOCKER_API: Final = "1.41"

ReconcilerFactory = Callable[[AgentConfig, Store, Outbox], Reconciler]


def agent_version() -> str:
    """The installed fleetwire-edge version."""
    try:
        return version("fleetwire-edge")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def docker_client() -> object:
    """A Docker client from the environment (``DOCKER_HOST`` or the local socket)."""
    # The Docker SDK (and requests) load only when a real reconciler is built: the CLI's other
    # commands and the fake-reconciler tests start without them.
    import docker  # noqa: PLC0415
    from docker.errors import DockerException  # noqa: PLC0415

    try:
        return docker.from_env()
    except DockerException as exc:
        # The engine may come up later: the reconciler reports it unreachable meanwhile.
        log.warning("Docker Engine unreachable (%s); the reconciler will keep trying", exc)
        return docker.from_env(version=FALLBACK_DOCKER_API)


def docker_reconciler(
    config: AgentConfig,
    store: Store,
    sink: EventSink,
    *,
    client: object | None = None,
    **options: Any,
) -> Reconciler:
    """The real reconciler: ``DockerReconciler(client, store, sink, device_id, **options)``.

    ``client`` defaults to :func:`docker_client`; the caller of a client it passes closes it.
    Raises :class:`ReconcilerUnavailable` when the engine package cannot be imported.
    """
    try:
        # Imported here, not at the top: the engine pulls in the Docker SDK and requests, which
        # the CLI's other commands (status --no-engine, journal, --help) and fake-reconciler
        # tests do not need.
        from fleetwire.edge.engine.reconciler import DockerReconciler  # noqa: PLC0415
    except ImportError as exc:
        msg = f"the Docker reconciler is not available: {exc}"
        raise ReconcilerUnavailable(msg) from exc
    engine = docker_client() if client is None else client
    return DockerReconciler(cast("DockerClient", engine), store, sink, config.device_id, **options)


class _DataDirLock:
    """An exclusive lock on the data dir: two agents on one journal would break its promises."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = (data_dir / LOCK_FILE_NAME).open("a", encoding="utf-8")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            msg = f"another agent is running with the data dir {data_dir}"
            raise ConfigError(msg) from None

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


class Agent:
    """One device's agent."""

    def __init__(
        self, config: AgentConfig, *, reconciler_factory: ReconcilerFactory = docker_reconciler
    ) -> None:
        self.config = config
        self._lock = _DataDirLock(config.data_dir)
        try:
            self.store = Store.open(config.data_dir, outbox_limit=config.outbox_limit)
            self.store.set_setting("device_id", config.device_id)
            self.outbox = Outbox(self.store, config.device_id)
            self.reconciler = reconciler_factory(config, self.store, self.outbox)
        except BaseException:
            self._lock.release()
            raise
        self.handler = CommandHandler(
            device_id=config.device_id,
            outbox=self.outbox,
            desired=self.store,
            reconciler=self.reconciler,
            system_model=config.system_model,
        )
        self.session = MqttSession(
            config, self.store, birth=self.birth, on_command=self.handler.handle
        )
        self.outbox.add_listener(self.session.wake)
        self._stop = threading.Event()

    def birth(self) -> PresenceBirth:
        """The retained presence message published on every connect."""
        try:
            docker_version = self.reconciler.docker_version()
        except Exception:
            log.exception("could not read the Docker version")
            docker_version = None
        return PresenceBirth(
            source=device_source(self.config.device_id),
            subject=self.config.device_id,
            data=PresenceBirthData(
                agent_version=agent_version(),
                protocol_types=list(COMMAND_TYPES),
                docker_version=docker_version,
                system_model=self.config.system_model,
                hostname=socket.gethostname()[:256],
            ),
        )

    def run(self) -> None:
        """Run until :meth:`stop`; always releases the store and the data dir."""
        log.info(
            "agent %s starting (pid %d, data dir %s)",
            agent_version(),
            os.getpid(),
            self.config.data_dir,
            extra={"device_id": self.config.device_id},
        )
        cutoff = utcnow() - timedelta(days=self.config.journal_retention_days)
        pruned = self.store.prune_journal(cutoff)
        if pruned:
            log.info("forgot %d journal entries older than %s", pruned, cutoff.date())
        try:
            self.reconciler.start()
            try:
                self.session.run(self._stop)
            finally:
                self.reconciler.stop()
        finally:
            self.store.close()
            self._lock.release()
            log.info("agent stopped", extra={"device_id": self.config.device_id})

    def stop(self) -> None:
        """Ask :meth:`run` to publish death, disconnect and return (thread- and signal-safe)."""
        self._stop.set()
