"""The one way tests run an edge agent: in a thread or as a process, from one config builder.

- :func:`agent_config`: an :class:`AgentConfig` with test timings (fast reconnects, short
  connect timeout and keepalive); every agent a test starts is configured by it.
- :class:`AgentThread`: :class:`Agent` in a thread of the test process, with the reconciler the
  test chooses (a fake, or the real Docker one with test timings). Fast, and the test can look
  inside (``agent.session``, the store).
- :class:`AgentProcess`: ``python -m fleetwire.edge run --config <yaml>`` as a child process, for
  what only a real process shows: SIGKILL at any point, a restart on the same data dir.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from fleetwire.edge.agent import Agent
from fleetwire.edge.config import ENV_PREFIX, AgentConfig
from fleetwire.edge.outbox import Outbox
from fleetwire.edge.ports import Reconciler
from fleetwire.edge.store import Store

ReconcilerFactory = Callable[[AgentConfig, Store, Outbox], Reconciler]

TEST_TIMINGS: dict[str, Any] = {
    "backoff_initial_s": 0.2,
    "backoff_max_s": 1.0,
    "connect_timeout_s": 2.0,
    "keepalive_s": 10,
}


def agent_config(data_dir: Path, broker: str, device_id: str, **options: Any) -> AgentConfig:
    """A config with fast reconnects, for tests; ``options`` override any field."""
    values: dict[str, Any] = {
        "device_id": device_id,
        "broker": broker,
        "data_dir": data_dir,
        **TEST_TIMINGS,
    }
    values.update(options)
    return AgentConfig.model_validate(values)


class AgentThread:
    """An :class:`Agent` running in a thread (stopped, bounded, by :meth:`stop`)."""

    def __init__(
        self, config: AgentConfig, *, reconciler_factory: ReconcilerFactory | None = None
    ) -> None:
        self.config = config
        self.agent = (
            Agent(config)  # the real Docker reconciler, with its production timings
            if reconciler_factory is None
            else Agent(config, reconciler_factory=reconciler_factory)
        )
        self.thread = threading.Thread(target=self.agent.run, name="agent-under-test", daemon=True)
        self.thread.start()

    def wait_connected(self, timeout: float = 15.0) -> None:
        """Wait (bounded) until the agent's session is connected."""
        if not self.agent.session.connected.wait(timeout):
            msg = f"agent did not connect within {timeout} s"
            raise AssertionError(msg)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the agent and join its thread (bounded)."""
        self.agent.stop()
        # Not from a signal handler here: wake the serving loop instead of letting it notice the
        # stop at its next idle tick (up to a second per stop).
        self.agent.session.wake()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "agent did not stop"


class AgentProcess:
    """``python -m fleetwire.edge run`` with ``config``: a real process, so SIGKILL is real.

    The config goes in a YAML file next to the log (the password, if any, in the environment,
    as on a device); the process's output is appended to ``log``. ``log_level`` None keeps
    the config's. Restartable on the same
    data dir with :meth:`start`.
    """

    def __init__(self, config: AgentConfig, log: Path, *, log_level: str | None = "DEBUG") -> None:
        self.config, self.log, self.log_level = config, log, log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self.config_file = log.with_suffix(".yaml")
        values = config.model_dump(mode="json", exclude_none=True, exclude={"password"})
        self.config_file.write_text(yaml.safe_dump(values), encoding="utf-8")

    def start(self) -> None:
        """Start the process (again)."""
        env = dict(os.environ)
        if self.config.password is not None:
            env[f"{ENV_PREFIX}PASSWORD"] = self.config.password.get_secret_value()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fleetwire.edge",
                    "run",
                    f"--config={self.config_file}",
                    *([f"--log-level={self.log_level}"] if self.log_level else []),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def kill9(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        """SIGTERM and wait (bounded); SIGKILL if it does not stop in time."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def output(self) -> str:
        """What the process wrote so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")
