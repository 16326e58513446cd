"""The run scheduler with a fake run function: no Docker, no sleeps.

The scheduler runs on threads (the edge agent has no event loop), so the tests synchronise on
``threading.Event``/``Barrier`` and the scheduler's own ``wait_idle``, each bounded. Backoff
delays are read from a fake clock, so they are exact.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from fleetwire.edge.engine.scheduler import Outcome, RunScheduler, RunToken, backoff_delay

TIMEOUT = 10.0


@dataclass
class Call:
    """One call of the fake run function; the run blocks until ``release`` is set."""

    key: str
    token: RunToken
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    cancelled_at_end: bool | None = None


class FakeRun:
    """A run function whose calls the test drives one by one.

    ``outcomes`` are returned in order (then ``DONE``); a callable outcome is called instead
    (it may raise). Calls block until released unless ``blocking`` is False.
    """

    def __init__(self, outcomes: Sequence[Outcome | Callable[[], Outcome]] = ()) -> None:
        self.outcomes = list(outcomes)
        self.blocking = True
        self.calls: list[Call] = []
        self.concurrent: dict[str, int] = {}
        self.max_concurrent: dict[str, int] = {}
        self._cond = threading.Condition()

    def __call__(self, key: str, token: RunToken) -> Outcome:
        call = Call(key, token)
        with self._cond:
            self.calls.append(call)
            self.concurrent[key] = self.concurrent.get(key, 0) + 1
            self.max_concurrent[key] = max(self.max_concurrent.get(key, 0), self.concurrent[key])
            outcome = self.outcomes.pop(0) if self.outcomes else Outcome.DONE
            self._cond.notify_all()
        call.entered.set()
        if self.blocking:
            assert call.release.wait(TIMEOUT), "the test never released the run"
        call.cancelled_at_end = token.cancelled()
        with self._cond:
            self.concurrent[key] -= 1
        return outcome() if callable(outcome) else outcome

    def call(self, n: int) -> Call:
        """The ``n``-th call (from 0), once it has started."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.calls) > n, TIMEOUT), f"no call {n}"
            return self.calls[n]


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scheduler_for(clock: FakeClock) -> Iterator[Callable[..., RunScheduler]]:
    made: list[tuple[RunScheduler, FakeRun]] = []

    def make(run: FakeRun, **options: float) -> RunScheduler:
        # Small fake backoffs: a worker waiting for a due time re-reads the fake clock after
        # that many real seconds at most, so advancing the clock is seen quickly.
        scheduler = RunScheduler(
            run,
            workers=int(options.pop("workers", 2)),
            backoff_s=options.pop("backoff_s", 0.05),
            backoff_max_s=options.pop("backoff_max_s", 0.15),
            clock=clock,
            name="test-run",
        )
        made.append((scheduler, run))
        return scheduler

    yield make
    for scheduler, run in made:
        scheduler.stop()
        for call in run.calls:
            call.release.set()
        assert scheduler.join(TIMEOUT) == []


def settle(scheduler: RunScheduler) -> None:
    assert scheduler.wait_idle(TIMEOUT), "the scheduler did not become idle"


def test_backoff_doubles_from_the_initial_delay_up_to_the_maximum() -> None:
    assert [backoff_delay(n, 1.0, 300.0) for n in range(10)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        64.0,
        128.0,
        256.0,
        300.0,
    ]
    assert backoff_delay(10_000, 1.0, 300.0) == 300.0


def test_started_keys_run_once_and_done_needs_no_second_run(
    scheduler_for: Callable[..., RunScheduler],
) -> None:
    run = FakeRun()
    run.blocking = False
    scheduler = scheduler_for(run)
    scheduler.start(["a", "b"])
    run.call(1)
    settle(scheduler)
    assert sorted(c.key for c in run.calls) == ["a", "b"]
    assert scheduler.due_in("a") is None
    assert scheduler.due_in("b") is None


def test_a_new_target_cancels_the_running_run_and_runs_again_after_it(
    scheduler_for: Callable[..., RunScheduler],
) -> None:
    run = FakeRun([Outcome.WAIT])
    scheduler = scheduler_for(run)
    scheduler.start()
    scheduler.submit("a")
    first = run.call(0)
    assert not first.token.cancelled()

    scheduler.submit("a")
    assert first.token.superseded()
    assert not first.token.stopping()
    # The second run waits for the first, even with a free worker.
    assert scheduler.due_in("a") == pytest.approx(0.0)
    assert not scheduler.idle()
    first.release.set()

    second = run.call(1)
    assert first.cancelled_at_end is True
    assert not second.token.cancelled()
    second.release.set()
    settle(scheduler)
    assert len(run.calls) == 2
    assert second.cancelled_at_end is False
    assert run.max_concurrent["a"] == 1


def test_submits_during_a_run_coalesce_into_one_more_run(
    scheduler_for: Callable[..., RunScheduler],
) -> None:
    run = FakeRun()
    scheduler = scheduler_for(run)
    scheduler.start(["a"])
    first = run.call(0)
    for _ in range(3):
        scheduler.submit("a")
    first.release.set()
    run.call(1).release.set()
    settle(scheduler)
    assert len(run.calls) == 2


def test_different_keys_run_in_parallel(scheduler_for: Callable[..., RunScheduler]) -> None:
    barrier = threading.Barrier(2, timeout=TIMEOUT)

    def meet() -> Outcome:
        barrier.wait()  # raises BrokenBarrierError unless both runs are in progress together
        return Outcome.DONE

    run = FakeRun([meet, meet])
    run.blocking = False
    scheduler = scheduler_for(run, workers=2)
    scheduler.start(["a", "b"])
    settle(scheduler)
    assert not barrier.broken
    assert sorted(c.key for c in run.calls) == ["a", "b"]


def test_retry_backs_off_doubling_and_a_new_target_starts_over(
    scheduler_for: Callable[..., RunScheduler], clock: FakeClock
) -> None:
    run = FakeRun([Outcome.RETRY] * 4 + [Outcome.DONE, Outcome.RETRY])
    run.blocking = False
    scheduler = scheduler_for(run, backoff_s=0.05, backoff_max_s=0.15)
    scheduler.start(["a"])
    settle(scheduler)
    delays: list[float | None] = []
    for n in (1, 2):
        delay = scheduler.due_in("a")
        assert delay is not None
        delays.append(delay)
        clock.now += delay + 0.001  # past the due time, whatever the float rounding
        run.call(n)
        settle(scheduler)
    delays.append(scheduler.due_in("a"))
    assert delays == pytest.approx([0.05, 0.1, 0.15])  # capped at backoff_max_s

    scheduler.submit("a")  # a new target: at once, and the backoff starts over
    run.call(3)
    settle(scheduler)
    assert scheduler.due_in("a") == pytest.approx(0.05)

    clock.now += 0.051
    run.call(4)  # DONE: nothing due, and the next failure starts over too
    settle(scheduler)
    assert scheduler.due_in("a") is None
    scheduler.submit("a")
    run.call(5)
    settle(scheduler)
    assert scheduler.due_in("a") == pytest.approx(0.05)
    assert len(run.calls) == 6


def test_wait_is_not_retried(scheduler_for: Callable[..., RunScheduler]) -> None:
    run = FakeRun([Outcome.WAIT])
    run.blocking = False
    scheduler = scheduler_for(run)
    scheduler.start(["a"])
    run.call(0)
    settle(scheduler)
    assert scheduler.due_in("a") is None
    assert len(run.calls) == 1


def test_an_unexpected_exception_is_retried_like_a_failure(
    scheduler_for: Callable[..., RunScheduler], caplog: pytest.LogCaptureFixture
) -> None:
    def crash() -> Outcome:
        msg = "bug in the run"
        raise RuntimeError(msg)

    run = FakeRun([crash])
    run.blocking = False
    scheduler = scheduler_for(run, backoff_s=0.05)
    scheduler.start(["a"])
    run.call(0)
    settle(scheduler)
    assert scheduler.due_in("a") == pytest.approx(0.05)
    assert "run of a failed unexpectedly" in caplog.text


def test_stop_cancels_the_run_and_schedules_no_retry(
    scheduler_for: Callable[..., RunScheduler],
) -> None:
    run = FakeRun([Outcome.RETRY])
    scheduler = scheduler_for(run)
    scheduler.start(["a"])
    call = run.call(0)
    scheduler.stop()
    assert call.token.stopping()
    assert call.token.cancelled()
    assert not call.token.superseded()
    call.release.set()
    assert scheduler.join(TIMEOUT) == []
    assert call.cancelled_at_end is True
    assert scheduler.due_in("a") is None
    assert len(run.calls) == 1


def test_a_submit_while_stopped_runs_when_started_again(
    scheduler_for: Callable[..., RunScheduler],
) -> None:
    run = FakeRun()
    run.blocking = False
    scheduler = scheduler_for(run)
    scheduler.submit("a")
    assert scheduler.due_in("a") == pytest.approx(0.0)
    assert not scheduler.idle()
    scheduler.start()
    run.call(0)
    settle(scheduler)
    assert [c.key for c in run.calls] == ["a"]
