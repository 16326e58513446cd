"""Run the cloud components in one process: any of API, relay and projector.

``CloudServices(settings).start()`` / ``.stop()`` is the in-process entry point used by
``fleetwire serve`` (and by ``fleetwire dev`` and tests).
"""

import logging
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from sqlalchemy import Engine

from fleetwire.cloud.api.app import create_app
from fleetwire.cloud.auth import ensure_bootstrap_admin
from fleetwire.cloud.db.engine import make_engine, upgrade
from fleetwire.cloud.projector import Projector
from fleetwire.cloud.relay import Relay
from fleetwire.cloud.settings import Settings

log = logging.getLogger(__name__)


class CloudServices:
    """API, relay and projector(s) sharing one database engine, each optional."""

    def __init__(
        self,
        settings: Settings,
        *,
        api: bool = True,
        relay: bool = True,
        projector: bool = True,
        projectors: int = 1,
    ) -> None:
        self.settings = settings
        self.want_api, self.want_relay, self.want_projector = api, relay, projector
        self.projector_count = projectors
        self.engine: Engine | None = None
        self.relay: Relay | None = None
        self.projectors: list[Projector] = []
        self.bootstrap_token: str | None = None
        """An admin token generated at first start (shown once), if one was."""
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self.api_port: int | None = None

    @property
    def api_url(self) -> str:
        """Base URL of the API (after ``start``)."""
        return f"http://{self.settings.api_host}:{self.api_port}"

    def _notify(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    def start(self, timeout: float = 20.0) -> None:
        """Migrate the database, then start the selected components."""
        upgrade(self.settings.database_url)
        self.engine = make_engine(self.settings.database_url)
        if self.want_api:
            token = self.settings.bootstrap_admin_token
            self.bootstrap_token = ensure_bootstrap_admin(
                self.engine, token.get_secret_value() if token else None
            )
        if self.want_relay:
            self.relay = Relay(self.engine, self.settings)
            self.relay.start()
        if self.want_projector:
            for i in range(self.projector_count):
                projector = Projector(
                    self.engine, self.settings, instance=str(i), on_command=self._notify
                )
                projector.start()
                self.projectors.append(projector)
        if self.want_api:
            self._start_api(timeout)

    def _start_api(self, timeout: float) -> None:
        assert self.engine is not None
        app = create_app(self.settings, self.engine)
        app.state.notify_command = self._notify
        config = uvicorn.Config(
            app,
            host=self.settings.api_host,
            port=self.settings.api_port,
            log_level="warning",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._server_thread = threading.Thread(
            target=self._server.run, name="fleetwire-api", daemon=True
        )
        self._server_thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._server_thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        sockets = self._server.servers[0].sockets
        self.api_port = int(sockets[0].getsockname()[1])
        log.info("API listening on %s", self.api_url)

    def stop(self) -> None:
        """Stop everything that was started."""
        if self._server is not None and self._server_thread is not None:
            self._server.should_exit = True
            self._server_thread.join(10)
            self._server = None
        for projector in self.projectors:
            projector.stop()
        self.projectors = []
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    def wait(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (the CLI sets it on SIGINT/SIGTERM)."""
        stop.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
