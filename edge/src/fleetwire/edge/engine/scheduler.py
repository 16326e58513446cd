"""The run scheduler: one run per deployment at a time, newest target wins, backoff on failure.

Knows nothing of Docker or deployments' contents: it calls ``run(key, token)`` on a small pool
of worker threads and acts on the :class:`Outcome` it returns.

- :meth:`RunScheduler.submit` marks a key due now and cancels its run in progress: the run sees
  ``token.cancelled()`` turn true and should stop between steps; the key runs again afterwards.
- A key is run by at most one worker at a time; different keys run in parallel.
- :attr:`Outcome.RETRY` runs the key again after ``backoff_s * 2**failures`` (at most
  ``backoff_max_s``); a new target starts the backoff over.
- :meth:`RunScheduler.stop` cancels every run (``token.stopping()`` is true) and nothing new
  starts; :meth:`RunScheduler.join` waits for the workers, bounded.
"""

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)


class Outcome(Enum):
    """How a run ended, as far as scheduling cares."""

    DONE = "done"
    """Converged: the backoff starts over."""
    RETRY = "retry"
    """Failed in a way another run may fix: run again after the backoff."""
    WAIT = "wait"
    """Not converged, but running again cannot help (or a newer target already will)."""


@dataclass(frozen=True)
class RunToken:
    """What a run asks to know whether to give up."""

    stopping: Callable[[], bool]
    """The scheduler is stopping (like a crash: the run's target stays as it is)."""
    superseded: Callable[[], bool]
    """A newer target for the same key arrived."""

    def cancelled(self) -> bool:
        """Stop as soon as possible: the scheduler stops or a newer target arrived."""
        return self.stopping() or self.superseded()


RunFunction = Callable[[str, RunToken], Outcome]


def backoff_delay(failures: int, initial_s: float, maximum_s: float) -> float:
    """Seconds before the next run; ``failures`` counts the failed runs before this one.

    The first failure waits ``initial_s``, each further one twice as long, up to ``maximum_s``.
    """
    return min(maximum_s, initial_s * 2.0 ** min(failures, 64))


class RunScheduler:
    """Runs ``run`` per key on ``workers`` threads; see the module docstring for the rules.

    ``clock`` is monotonic seconds (injectable for tests of the backoff).
    """

    def __init__(
        self,
        run: RunFunction,
        *,
        workers: int = 2,
        backoff_s: float = 1.0,
        backoff_max_s: float = 300.0,
        name: str = "fw-run",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self._workers = max(1, workers)
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._name = name
        self._clock = clock
        self._cond = threading.Condition()
        self._due: dict[str, float] = {}
        self._running: set[str] = set()
        self._versions: dict[str, int] = {}
        self._failures: dict[str, int] = {}
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def start(self, keys: Iterable[str] = ()) -> None:
        """Start the workers; ``keys`` are due at once."""
        with self._cond:
            self._stopping = False
            for key in keys:
                self._mark_due(key, 0.0)
        self._threads = [
            threading.Thread(target=self._work, name=f"{self._name}-{i}", daemon=True)
            for i in range(self._workers)
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Cancel runs in progress and start no new ones (returns at once; see :meth:`join`)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def join(self, timeout_s: float) -> list[str]:
        """Wait up to ``timeout_s`` for the workers after :meth:`stop`; names still alive."""
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        self._threads = []
        return alive

    def submit(self, key: str) -> None:
        """A new target for ``key``: cancel its run in progress, reset its backoff, run it now."""
        with self._cond:
            self._failures.pop(key, None)
            self._versions[key] = self._versions.get(key, 0) + 1
            self._mark_due(key, 0.0)

    def idle(self) -> bool:
        """True when nothing runs and nothing is due now."""
        with self._cond:
            return self._idle()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` (real time) until :meth:`idle`; whether it is."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._idle():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def due_in(self, key: str) -> float | None:
        """Seconds until ``key`` runs again (``<= 0``: now), or ``None`` when it is not due."""
        with self._cond:
            due = self._due.get(key)
            return None if due is None else due - self._clock()

    # -- workers (every method below runs with or takes self._cond) ------------------------

    def _idle(self) -> bool:
        now = self._clock()
        return not self._running and not any(t <= now for t in self._due.values())

    def _mark_due(self, key: str, delay_s: float) -> None:
        due = self._clock() + delay_s
        self._due[key] = min(due, self._due.get(key, due))
        self._cond.notify_all()

    def _next(self) -> tuple[str, int] | None:
        """The next due key not already running, and its version; None when stopping."""
        with self._cond:
            while not self._stopping:
                now = self._clock()
                ready = [(t, k) for k, t in self._due.items() if k not in self._running]
                if ready:
                    due, key = min(ready)
                    if due <= now:
                        del self._due[key]
                        self._running.add(key)
                        return key, self._versions.get(key, 0)
                    self._cond.wait(due - now)
                else:
                    self._cond.wait()
            return None

    def _work(self) -> None:
        while (picked := self._next()) is not None:
            key, version = picked
            token = RunToken(
                stopping=self._is_stopping,
                superseded=functools.partial(self._is_newer, key, version),
            )
            try:
                outcome = self._run(key, token)
            except Exception:
                log.exception("run of %s failed unexpectedly", key)
                outcome = Outcome.RETRY
            with self._cond:
                self._running.discard(key)
                self._settle(key, outcome)
                self._cond.notify_all()

    def _settle(self, key: str, outcome: Outcome) -> None:
        if outcome is Outcome.DONE:
            self._failures.pop(key, None)
        elif outcome is Outcome.RETRY:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
            if not self._stopping:
                self._mark_due(key, backoff_delay(n, self._backoff_s, self._backoff_max_s))

    def _is_stopping(self) -> bool:
        with self._cond:
            return self._stopping

    def _is_newer(self, key: str, version: int) -> bool:
        with self._cond:
            return self._versions.get(key, 0) != version
